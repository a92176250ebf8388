#![cfg(not(target_arch = "wasm32"))]
//! "Frequently bought together": order counting and pair scores on hand-built baskets,
//! the held-out protocol on a tiny hand-made log, the weight file's `basket.*` section
//! (round trip, every corruption a typed error, files without it), the reasons' order
//! counts, and `recommend({ basket })` on a model trained here.
use std::collections::HashSet;
use std::process::Command;

mod common;
use common::fixtures::tiny_weight_file;
use vitrine::basket::{
    pair_score, Aggregate, Basket, BasketError, BasketParams, ITEMS_TENSOR, ITEM_ORDERS_TENSOR,
    OFFSETS_TENSOR, ORDERS_TENSOR, PARAMS_TENSOR,
};
use vitrine::eval::{
    self, basket_cases, evaluate, leave_last_out, EvalCase, EvalOptions, Protocol, Ranker,
};
use vitrine::format::{Quantization, Tensor, TensorData, WeightFile};
use vitrine::history::{EventKind, HistoryEvent};
use vitrine::kernels::CpuKernel;
use vitrine::model::layers::sigmoid;
use vitrine::model::Model;
use vitrine::recommend::{Reason, RecommendError, RecommendOptions, Recommender};
use vitrine::rng::SplitMix64;
use vitrine::train::basket::{orders_of, tune, PairCounts, GRID};
use vitrine::train::{train, TrainConfig};

fn buy(item: u32, at: f64) -> HistoryEvent {
    HistoryEvent {
        item,
        kind: EventKind::Purchase,
        at,
    }
}

/// One user's orders, the `k`-th at time `k + 1`, lines in the given order.
fn user(orders: &[&[u32]]) -> Vec<HistoryEvent> {
    (orders.iter().enumerate())
        .flat_map(|(k, o)| o.iter().map(move |&i| buy(i, (k + 1) as f64)))
        .collect()
}

/// Orders {0,1,2}, {0,1}, {0,3}, {1}, {1,1} (a repeated line counts once); item 4 is
/// never bought. c = [3, 4, 1, 1, 0]; c01 = 2, c02 = c12 = c03 = 1.
fn hand_counts() -> PairCounts {
    let seqs = vec![
        user(&[&[0, 1, 2], &[0, 1]]),
        user(&[&[3, 0], &[1], &[1, 1]]),
    ];
    let orders = orders_of(&seqs, 5);
    assert_eq!(
        orders,
        vec![vec![0, 1, 2], vec![0, 1], vec![3, 0], vec![1], vec![1]]
    );
    PairCounts::build(&orders, 5)
}

fn params(beta: f32, shrink: f32, aggregate: Aggregate) -> BasketParams {
    BasketParams {
        beta,
        shrink,
        alpha: 1.0,
        aggregate,
        decay: 1.0,
    }
}

#[test]
fn counts_and_scores_on_hand_built_baskets() {
    let c = hand_counts();
    assert_eq!(c.item_orders, vec![3, 4, 1, 1, 0]);
    assert_eq!(c.n_orders, 5);
    assert_eq!(c.row(0), &[(1, 2), (2, 1), (3, 1)]);
    assert_eq!(c.row(1), &[(0, 2), (2, 1)]);
    assert_eq!(c.row(2), &[(0, 1), (1, 1)]);
    assert_eq!(c.row(3), &[(0, 1)]);
    assert!(c.row(4).is_empty());

    // β = 1, λ = 0: s(b → i) = c_bi / c_b.
    let b = c.basket(params(1.0, 0.0, Aggregate::Sum), 10);
    assert_eq!(b.score_of(0, 1), Some(2.0 / 3.0));
    assert_eq!(b.score_of(1, 0), Some(0.5));
    assert_eq!(b.score_of(2, 0), Some(1.0));
    assert_eq!(b.orders_of(0, 1), Some(2));
    assert_eq!(b.orders_of(3, 1), None);
    // Evidence of the basket {0, 2}: sum and max.
    let mut e = vec![0.0; 5];
    b.evidence(&[0, 2], &mut e);
    assert_eq!(e, vec![1.0, 2.0 / 3.0 + 1.0, 1.0 / 3.0, 1.0 / 3.0, 0.0]);
    let b = c.basket(params(1.0, 0.0, Aggregate::Max), 10);
    b.evidence(&[0, 2], &mut e);
    assert_eq!(e, vec![1.0, 1.0, 1.0 / 3.0, 1.0 / 3.0, 0.0]);

    // β = 0 (lift order): s(0 → i) = c_0i / c_i favours the rare items 2 and 3.
    let b = c.basket(params(0.0, 0.0, Aggregate::Sum), 10);
    assert_eq!(b.score_of(0, 1), Some(0.5));
    assert_eq!(b.score_of(0, 2), Some(1.0));
    // β = ½, λ = 1 (cosine, shrunk): s(0 → 1) = 2 / (√12 + 1).
    let b = c.basket(params(0.5, 1.0, Aggregate::Sum), 10);
    let want = (2.0 / (12f64.sqrt() + 1.0)) as f32;
    assert_eq!(b.score_of(0, 1), Some(want));
    assert_eq!(pair_score(2, 3, 4, 0.5, 1.0), want);

    // Top M = 2 of row 0 under β = 1: item 1 (2/3), then the tie 2 vs 3 (1/3 each)
    // goes to the lower index.
    let b = c.basket(params(1.0, 0.0, Aggregate::Sum), 2);
    let row: Vec<u32> = b.neighbours(0).map(|x| x.0).collect();
    assert_eq!(row, vec![1, 2]);
    assert_eq!(b.n_pairs(), 2 + 2 + 2 + 1);
}

/// Scores fixed per item, whatever the history.
struct Fixed(Vec<f32>);
impl Ranker for Fixed {
    fn name(&self) -> String {
        "fixed".into()
    }
    fn score_all(&self, _: &[HistoryEvent], _: f64, out: &mut [f32]) {
        out.copy_from_slice(&self.0);
    }
}

#[test]
fn held_out_protocol_on_a_tiny_log() {
    // User 0: order {0, 1} at t = 1, order {0, 2, 3} at t = 2. User 1: one line per
    // order (no basket anywhere).
    let seqs = vec![user(&[&[0, 1], &[0, 2, 3]]), user(&[&[5], &[6], &[7]])];
    let split = leave_last_out(&seqs);
    // Test: hide 3, basket = {0, 2} (cart events), history = order 1.
    let test = basket_cases(&split.test);
    assert_eq!(test.len(), 1, "user 1 has no basket");
    let t = &test[0];
    assert_eq!((t.user, t.target, t.now), (0, 3, 2.0));
    let kinds: Vec<(u32, EventKind)> = t.history.iter().map(|e| (e.item, e.kind)).collect();
    use EventKind::{Cart, Purchase};
    assert_eq!(
        kinds,
        vec![(0, Purchase), (1, Purchase), (0, Cart), (2, Cart)]
    );
    assert_eq!(eval::basket_of(&t.history, t.now).len(), 2);
    // Validation: hide 2, basket = {0}.
    let valid = basket_cases(&split.valid);
    assert_eq!(valid.len(), 1);
    assert_eq!((valid[0].target, valid[0].history.len()), (2, 3));
    // Training orders never hold a held-out line: 2 and 3 are never counted.
    let counts = PairCounts::build(&orders_of(&split.train, 8), 8);
    assert_eq!(counts.row(0), &[(1, 1)]);
    assert_eq!(counts.item_orders[2..4], [0, 0]);

    // Ranking: the basket's items (0, 2) are not candidates, the earlier purchase 1 is.
    let scores = Fixed(vec![9.0, 4.0, 8.0, 3.0, 0.0, 0.0, 0.0, 0.0]);
    let rank = |p: Protocol| {
        let opts = EvalOptions {
            ks: vec![1, 2],
            ..EvalOptions::default()
        };
        let r = evaluate(&scores, &test, 8, p, &opts);
        (r.get("HR@1").unwrap(), r.get("HR@2").unwrap(), r.mrr)
    };
    assert_eq!(rank(Protocol::Basket), (0.0, 1.0, 0.5));
    assert_eq!(
        rank(Protocol::Full {
            exclude_seen: false
        }),
        (0.0, 0.0, 0.25)
    );
    assert_eq!(rank(Protocol::Full { exclude_seen: true }), (1.0, 1.0, 1.0));
}

/// The tiny model's weight file with a section counted from hand-made orders over its
/// 30 items: 0 and 1 in 5 orders, 0 and 2 in 2, 3 with 1 in 1.
fn file_with_section() -> (WeightFile, Basket) {
    let mut orders: Vec<Vec<u32>> = vec![vec![0, 1]; 3];
    orders.extend([vec![0, 1, 2], vec![0, 1, 2], vec![3, 1], vec![4]]);
    let b = PairCounts::build(&orders, 30).basket(params(0.5, 1.0, Aggregate::Sum), 10);
    let mut file = tiny_weight_file(30, 5);
    b.write_into(&mut file);
    (file, b)
}

#[test]
fn section_round_trips_and_old_files_load() {
    let (file, b) = file_with_section();
    for q in [Quantization::F32, Quantization::F16, Quantization::Int8] {
        let bytes = file.to_bytes(q).unwrap();
        let rec = Recommender::from_bytes(&bytes).unwrap();
        assert_eq!(rec.basket_model(), Some(&b), "{q:?}");
    }
    let back = WeightFile::from_bytes(&file.to_bytes(Quantization::F32).unwrap()).unwrap();
    assert_eq!(Basket::from_weight_file(&back, 30), Ok(Some(b.clone())));
    assert_eq!(b.size_bytes(), 4 * (31 + 2 * b.n_pairs() + 30 + 5));
    // Without the section: loads, no basket model.
    let old = tiny_weight_file(30, 5);
    assert_eq!(Basket::from_weight_file(&old, 30), Ok(None));
    assert!(Recommender::from_weight_file(old)
        .unwrap()
        .basket_model()
        .is_none());
}

fn ints<'a>(file: &'a mut WeightFile, name: &str) -> &'a mut Vec<i32> {
    match &mut file.tensors.get_mut(name).unwrap().data {
        TensorData::I32(v) => v,
        _ => panic!("{name} is not I32"),
    }
}

/// Loads `file` and returns the section's error (failing if it loads).
fn load_err(file: WeightFile) -> BasketError {
    match Recommender::from_weight_file(file) {
        Err(RecommendError::Basket(e)) => e,
        Err(e) => panic!("not a basket error: {e}"),
        Ok(_) => panic!("a corrupt section loaded"),
    }
}

#[test]
fn every_corrupt_section_is_its_typed_error() {
    type Corrupt = fn(&mut WeightFile);
    type Expected = fn(&BasketError) -> bool;
    let cases: Vec<(&str, Corrupt, Expected)> = vec![
        (
            "missing tensor",
            |f| {
                f.tensors.remove(ORDERS_TENSOR);
            },
            |e| *e == BasketError::MissingTensor(ORDERS_TENSOR),
        ),
        (
            "neighbour outside the catalogue",
            |f| ints(f, ITEMS_TENSOR)[0] = 30,
            |e| {
                matches!(
                    e,
                    BasketError::BadNeighbour {
                        row: 0,
                        item: 30,
                        ..
                    }
                )
            },
        ),
        (
            "neighbour is the row's item",
            |f| ints(f, ITEMS_TENSOR)[0] = 0,
            |e| {
                matches!(
                    e,
                    BasketError::BadNeighbour {
                        row: 0,
                        item: 0,
                        ..
                    }
                )
            },
        ),
        (
            "unsorted row",
            |f| {
                ints(f, ITEMS_TENSOR).swap(0, 1);
                ints(f, ORDERS_TENSOR).swap(0, 1);
            },
            |e| matches!(e, BasketError::BadNeighbour { row: 0, .. }),
        ),
        (
            "zero count",
            |f| ints(f, ORDERS_TENSOR)[0] = 0,
            |e| matches!(e, BasketError::BadCount { orders: 0, .. }),
        ),
        (
            "count above the items' order counts",
            |f| ints(f, ORDERS_TENSOR)[0] = 6,
            |e| matches!(e, BasketError::BadCount { orders: 6, .. }),
        ),
        (
            "pair counted differently each way",
            |f| ints(f, ORDERS_TENSOR)[0] = 4,
            |e| {
                matches!(
                    e,
                    BasketError::BadCount { orders: 4, .. }
                        | BasketError::BadCount { orders: 5, .. }
                )
            },
        ),
        (
            "negative count",
            |f| ints(f, ITEM_ORDERS_TENSOR)[7] = -1,
            |e| {
                matches!(
                    e,
                    BasketError::Negative {
                        index: 7,
                        value: -1,
                        ..
                    }
                )
            },
        ),
        (
            "offsets decrease",
            |f| ints(f, OFFSETS_TENSOR)[1] = 99,
            |e| matches!(e, BasketError::BadOffsets(_)),
        ),
        (
            "offsets too short",
            |f| {
                let t = f.tensors.get_mut(OFFSETS_TENSOR).unwrap();
                t.shape = vec![30];
                if let TensorData::I32(v) = &mut t.data {
                    v.pop();
                }
            },
            |e| {
                matches!(
                    e,
                    BasketError::WrongShape {
                        tensor: OFFSETS_TENSOR,
                        expected: 31,
                        ..
                    }
                )
            },
        ),
        (
            "params of the wrong type",
            |f| {
                f.tensors.insert(
                    PARAMS_TENSOR.into(),
                    Tensor {
                        shape: vec![5],
                        data: TensorData::I32(vec![0; 5]),
                    },
                );
            },
            |e| {
                matches!(
                    e,
                    BasketError::WrongDtype {
                        tensor: PARAMS_TENSOR,
                        ..
                    }
                )
            },
        ),
        (
            "beta out of range",
            |f| set_param(f, 0, 2.0),
            |e| matches!(e, BasketError::BadParam { name: "beta", .. }),
        ),
        (
            "negative shrinkage",
            |f| set_param(f, 1, -1.0),
            |e| matches!(e, BasketError::BadParam { name: "shrink", .. }),
        ),
        (
            "non-finite alpha",
            |f| set_param(f, 2, f32::INFINITY),
            |e| matches!(e, BasketError::BadParam { name: "alpha", .. }),
        ),
        (
            "unknown aggregation",
            |f| set_param(f, 3, 0.5),
            |e| {
                matches!(
                    e,
                    BasketError::BadParam {
                        name: "aggregation",
                        ..
                    }
                )
            },
        ),
        (
            "zero decay",
            |f| set_param(f, 4, 0.0),
            |e| matches!(e, BasketError::BadParam { name: "decay", .. }),
        ),
        (
            "params of the wrong length",
            |f| {
                f.tensors.insert(
                    PARAMS_TENSOR.into(),
                    Tensor {
                        shape: vec![4],
                        data: TensorData::F32(vec![0.5, 1.0, 1.0, 0.0]),
                    },
                );
            },
            |e| {
                matches!(
                    e,
                    BasketError::WrongShape {
                        tensor: PARAMS_TENSOR,
                        expected: 5,
                        ..
                    }
                )
            },
        ),
    ];
    for (what, corrupt, expected) in cases {
        let (mut file, _) = file_with_section();
        corrupt(&mut file);
        let e = load_err(file);
        assert!(expected(&e), "{what}: got {e:?}");
        assert!(!e.to_string().is_empty());
    }
    // Through the bytes too: the format's checks pass, the section's fail.
    let (mut file, _) = file_with_section();
    ints(&mut file, ITEMS_TENSOR)[0] = 30;
    let bytes = file.to_bytes(Quantization::F32).unwrap();
    assert!(matches!(
        Recommender::from_bytes(&bytes),
        Err(RecommendError::Basket(BasketError::BadNeighbour { .. }))
    ));
}

fn set_param(f: &mut WeightFile, k: usize, x: f32) {
    if let TensorData::F32(v) = &mut f.tensors.get_mut(PARAMS_TENSOR).unwrap().data {
        v[k] = x;
    }
}

#[test]
fn reasons_state_the_order_count_and_only_with_evidence() {
    let (file, b) = file_with_section();
    let mut rec = Recommender::from_weight_file(file).unwrap();
    rec.kernel = CpuKernel::Scalar;
    let o = RecommendOptions {
        k: 28,
        basket: vec!["I0".into(), "I3".into()],
        now: Some(1e9),
        ..RecommendOptions::default()
    };
    let recs = rec.recommend(&[], &o).unwrap();
    assert_eq!(recs.len(), 28);
    let find = |i: u32| recs.iter().find(|r| r.index == i).unwrap();
    // Item 1: bought with 0 in 5 orders and with 3 in 1; s(0 → 1) = 5/(√(5·6) + 1) =
    // 0.77 beats s(3 → 1) = 1/(√(1·6) + 1) = 0.29, so 0 is named, with its count.
    assert_eq!(
        find(1).reasons[0],
        Reason::BoughtTogether {
            item: "I0".into(),
            title: rec.catalog().titles[0].to_owned(),
            orders: 5
        }
    );
    assert_eq!(
        find(2).reasons[0],
        Reason::BoughtTogether {
            item: "I0".into(),
            title: rec.catalog().titles[0].to_owned(),
            orders: 2
        }
    );
    // Everything else has no co-purchase with the basket: no such claim.
    for r in recs.iter().filter(|r| r.index > 3) {
        assert!(
            !(r.reasons.iter()).any(|x| matches!(x, Reason::BoughtTogether { .. })),
            "item {}: {:?}",
            r.index,
            r.reasons
        );
        assert!(matches!(r.reasons[0], Reason::Similar { .. }));
    }
    // The logit is the model's (basket as cart events) + α·E: the scores say so.
    let events: Vec<HistoryEvent> = [0u32, 3]
        .iter()
        .map(|&item| HistoryEvent {
            item,
            kind: EventKind::Cart,
            at: 1e9,
        })
        .collect();
    let v = rec.item_vectors().to_f32();
    let enc = rec.model.encode_user(&*v, &events);
    let mut e = vec![0.0; 30];
    b.evidence(&[0, 3], &mut e);
    for r in &recs {
        let z = rec.model.score_reference(&v, &enc.u, r.index as usize)
            + b.params().alpha * e[r.index as usize];
        assert!((r.score - sigmoid(z)).abs() < 1e-4, "item {}", r.index);
    }
    // The CLI says it in words.
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = file_with_section();
    std::fs::write(
        dir.path().join("m.vitrine"),
        file.to_bytes(Quantization::F32).unwrap(),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vitrine"))
        .args(["recommend", "--model", "m.vitrine", "--options"])
        .arg(r#"{"k": 28, "basket": ["I0", "I3"]}"#)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("bought together with I0 in 5 orders"),
        "{text}"
    );
    assert!(
        text.contains("bought together with I0 in 2 orders"),
        "{text}"
    );
}

/// 40 items in 20 pairs `(2k, 2k+1)`; every order holds two random pairs, lines
/// shuffled; 160 users with 5 orders each.
fn paired_orders() -> Vec<Vec<HistoryEvent>> {
    let mut rng = SplitMix64::new(11);
    (0..160)
        .map(|_| {
            let mut seq = Vec::new();
            for k in 0..5 {
                let a = rng.below(20) as u32;
                let b = (a + 1 + rng.below(19) as u32) % 20;
                let mut lines = [2 * a, 2 * a + 1, 2 * b, 2 * b + 1];
                for i in (1..lines.len()).rev() {
                    lines.swap(i, rng.below(i as u64 + 1) as usize);
                }
                seq.extend(lines.iter().map(|&i| buy(i, 1e9 + k as f64 * 86_400.0)));
            }
            seq
        })
        .collect()
}

#[test]
fn a_trained_model_recommends_the_co_purchase_first() {
    let seqs = paired_orders();
    let split = leave_last_out(&seqs);
    let mut model = Model::from_weights(&tiny_weight_file(40, 3)).unwrap();
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 16,
        seed: 3,
        ..TrainConfig::default()
    };
    // Every epoch "validates" better than the last: the final parameters are kept.
    let mut epoch = 0.0;
    let mut validate = |_: &Model| {
        epoch += 1.0;
        epoch
    };
    train(&mut model, &split.train, &cfg, &mut validate, &mut |_| {});
    let valid: Vec<EvalCase> = basket_cases(&split.valid);
    assert!(valid.len() > 100, "{} validation baskets", valid.len());
    let tuning =
        tune(Some(&model), &split.train, &valid, 40, &GRID, &|_| {}).expect("orders to count");
    let counts = PairCounts::build(&orders_of(&split.train, 40), 40);
    let mut file = tiny_weight_file(40, 3);
    file.tensors.extend(model.tensors());
    tuning.basket.write_into(&mut file);
    let rec = Recommender::from_bytes(&file.to_bytes(Quantization::F32).unwrap()).unwrap();
    let mut seen = HashSet::new();
    for k in 0..20u32 {
        let o = RecommendOptions {
            k: 5,
            basket: vec![format!("I{}", 2 * k)],
            now: Some(2e9),
            ..RecommendOptions::default()
        };
        let recs = rec.recommend(&[], &o).unwrap();
        let top = &recs[0];
        assert_eq!(top.index, 2 * k + 1, "basket I{}: {recs:?}", 2 * k);
        let c = counts.row(2 * k as usize).iter().find(|p| p.0 == 2 * k + 1);
        assert_eq!(
            top.reasons[0],
            Reason::BoughtTogether {
                item: format!("I{}", 2 * k),
                title: rec.catalog().titles[2 * k as usize].to_owned(),
                orders: c.unwrap().1
            }
        );
        for r in &recs {
            let claimed = r.reasons.iter().find_map(|x| match x {
                Reason::BoughtTogether { orders, .. } => Some(*orders),
                _ => None,
            });
            let truth = counts.row(2 * k as usize).iter().find(|p| p.0 == r.index);
            if let Some(n) = claimed {
                assert_eq!(Some(n), truth.map(|p| p.1), "item {}", r.index);
            }
            seen.insert(claimed.is_some());
        }
    }
    assert!(seen.contains(&true));
}

/// [`paired_orders`] split leave-last-out, an untrained model of its 40 items, and the
/// validation basket cases.
fn paired_split() -> (eval::Split, Model, Vec<EvalCase>) {
    let split = leave_last_out(&paired_orders());
    let model = Model::from_weights(&tiny_weight_file(40, 3)).unwrap();
    let valid = basket_cases(&split.valid);
    (split, model, valid)
}

/// The refit counts the refit's orders again and keeps every tuned choice: the same
/// parameters and `M`, the lists of a section built from those orders, the order count
/// of those orders; the validation figures stay the tuning's.
#[test]
fn the_refit_counts_the_refit_sequences_with_the_tuned_choices() {
    let (split, model, valid) = paired_split();
    let tuned =
        tune(Some(&model), &split.train, &valid, 40, &GRID, &|_| {}).expect("orders to count");
    let refit_seqs = split.refit_sequences(EventKind::Purchase);
    let mut refitted = tuned.clone();
    refitted.refit(&refit_seqs, 40);
    let counts = PairCounts::build(&orders_of(&refit_seqs, 40), 40);
    assert_eq!(
        refitted.basket,
        counts.basket(tuned.basket.params(), tuned.top_m.0)
    );
    assert_eq!(
        refitted.alone,
        counts.basket(tuned.alone.params(), tuned.top_m.1)
    );
    assert_eq!(refitted.n_orders, counts.n_orders);
    // The validation lines are counted now (each user's last order has two of its four
    // lines in training, three in the refit), the test lines not.
    let lines = |b: &Basket| (0..40).map(|i| b.item_orders(i)).sum::<u32>();
    assert_eq!(lines(&tuned.basket), 160 * 5 * 4 - 2 * 160);
    assert_eq!(lines(&refitted.basket), 160 * 5 * 4 - 160);
    assert_eq!(refitted.n_orders, tuned.n_orders);
    let valid_figures = |t: &vitrine::train::basket::BasketTuning| {
        (
            t.valid_alone,
            t.valid_model,
            t.valid_blend,
            t.top_m,
            t.n_valid,
        )
    };
    assert_eq!(valid_figures(&refitted), valid_figures(&tuned));
    // Refitting on the training sequences gives the tuned sections back.
    let mut same = tuned.clone();
    same.refit(&split.train, 40);
    assert_eq!((same.basket, same.alone), (tuned.basket, tuned.alone));
}

/// Without a model, tuning makes the co-occurrence model's choices alone (the same as
/// with one), ships them with `α = 0`, and measures no blend.
#[test]
fn tuning_without_a_model_chooses_the_co_occurrence_model_alone() {
    let (split, model, valid) = paired_split();
    let with = tune(Some(&model), &split.train, &valid, 40, &GRID, &|_| {}).expect("orders");
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let count = |n: usize| {
        calls.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    };
    let without = tune(None, &split.train, &valid, 40, &GRID, &count).expect("orders");
    assert_eq!(calls.into_inner(), 0, "no model pass without a model");
    assert_eq!(
        (&without.alone, without.top_m.1),
        (&with.alone, with.top_m.1)
    );
    assert_eq!(without.valid_alone, with.valid_alone);
    assert_eq!((without.valid_model, without.valid_blend), (None, None));
    assert!(with.valid_model.is_some() && with.valid_blend.is_some());
    let alone = without.alone.params();
    assert_eq!(
        without.basket.params(),
        BasketParams {
            alpha: 0.0,
            ..alone
        }
    );
    assert_eq!(without.top_m.0, without.top_m.1);
    let counts = PairCounts::build(&orders_of(&split.train, 40), 40);
    assert_eq!(
        without.basket,
        counts.basket(without.basket.params(), without.top_m.0)
    );
}
