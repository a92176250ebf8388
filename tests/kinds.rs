//! Event kinds (issue #10): on a log of several kinds the trainer learns from every kind
//! (views and carts are inputs, targets weighted by kind, weights chosen on validation),
//! and a kind that never occurred in training reads the closest trained kind's row
//! instead of its random initial value (recorded in the weight file, applied at load).
#![cfg(not(target_arch = "wasm32"))]
mod common;

use common::fixtures::tiny_weight_file;
use vitrine::eval::{evaluate, EvalCase, EvalOptions, ModelRanker, Protocol};
use vitrine::format::{FormatError, Quantization, WeightFile};
use vitrine::history::{EventKind, HistoryEvent};
use vitrine::kernels::CpuKernel;
use vitrine::model::params::row;
use vitrine::model::{Model, ModelConfig};
use vitrine::recommend::score;
use vitrine::rng::SplitMix64;
use vitrine::train::kinds::{self, SplitRule};
use vitrine::train::{train, TrainConfig, TrainReport};

use EventKind::{Cart, Purchase, View};

/// Catalog size of the generated log (items come in pairs `i`, `i ^ 1`).
const N: usize = 40;

/// A multi-behaviour log where views predict purchases by construction: each user has
/// `sessions` sessions; in each, the user views a random item `a` and, an hour later,
/// buys its pair `a ^ 1`. Purchases are independent of earlier purchases, so a
/// purchase-only history says nothing about the next purchase; the view before it says
/// everything.
fn paired_log(users: usize, sessions: usize, seed: u64) -> Vec<Vec<HistoryEvent>> {
    let mut rng = SplitMix64::new(seed);
    (0..users)
        .map(|u| {
            let mut at = 1.3e9 + u as f64 * 1e5;
            let mut seq = Vec::with_capacity(2 * sessions);
            for _ in 0..sessions {
                let a = rng.below(N as u64) as u32;
                seq.push(HistoryEvent {
                    item: a,
                    kind: View,
                    at,
                });
                seq.push(HistoryEvent {
                    item: a ^ 1,
                    kind: Purchase,
                    at: at + 3600.0,
                });
                at += 86_400.0;
            }
            seq
        })
        .collect()
}

/// The log with every view dropped (what a purchase-only trainer sees).
fn without_views(log: &[Vec<HistoryEvent>]) -> Vec<Vec<HistoryEvent>> {
    log.iter()
        .map(|s| s.iter().copied().filter(|e| e.kind != View).collect())
        .collect()
}

/// The tiny fixture's shape over `N` items, one block, and its item features.
fn fresh_model(seed: u64) -> Model {
    let file = tiny_weight_file(N, 7);
    let features = Model::from_weights(&file).expect("fixture loads").features;
    let config = ModelConfig {
        n_blocks: 1,
        ..file.metadata.model.clone()
    };
    Model::new(config, features, seed).expect("valid config")
}

fn train_config(kind_weights: [f32; 3]) -> TrainConfig {
    TrainConfig {
        epochs: 15,
        batch_size: 16,
        lr: 1e-2,
        dropout: 0.1,
        seed: 11,
        negatives: 0,
        head_negatives: 7,
        head_positions: 4,
        patience: 15,
        kind_weights,
        ..TrainConfig::default()
    }
}

/// Full-ranking metric `name` of the deep part on `cases`.
fn metric(model: &Model, cases: &[EvalCase], name: &str) -> f64 {
    let ranker = ModelRanker::new(model).without_memory();
    let full = Protocol::Full {
        exclude_seen: false,
    };
    let r = evaluate(&ranker, cases, N, full, &EvalOptions::default());
    r.get(name)
        .unwrap_or_else(|| panic!("no metric {name} in the report"))
}

/// Trains a fresh model on `train_seqs` with early stopping on `valid`'s NDCG@10.
fn fit(train_seqs: &[Vec<HistoryEvent>], valid: &[EvalCase], w: [f32; 3]) -> (Model, TrainReport) {
    let mut model = fresh_model(5);
    let mut validate = |m: &Model| metric(m, valid, "NDCG@10");
    let report = train(
        &mut model,
        train_seqs,
        &train_config(w),
        &mut validate,
        &mut |_| {},
    );
    (model, report)
}

fn kind_row(model: &Model, kind: EventKind) -> Vec<f32> {
    row(&model.view().user.kind, kind.index()).to_vec()
}

fn distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

/// The model trained with views ranks the by-construction purchase far above chance and
/// far above a model trained with the views dropped; its view row was trained, its cart
/// row (no carts in the log) was not, and the grid kept its best weight.
#[test]
fn views_are_learned_and_predict_purchases() {
    let log = paired_log(300, 6, 17);
    let split = kinds::split(&log, SplitRule::LeaveLastOut, Purchase);
    assert_eq!(split.test.len(), 300, "every user has a test purchase");
    for c in split.valid.iter().chain(&split.test) {
        let last = c.history.last().expect("a case has a history");
        assert_eq!(
            (last.kind, last.item ^ 1),
            (View, c.target),
            "by construction"
        );
    }

    let grid = [0.0, 0.25, 1.0];
    let mut runs = 0;
    let mut train_one = |w: [f32; 3]| -> Result<_, ()> {
        runs += 1;
        Ok(fit(&split.train, &split.valid, w))
    };
    let (model, report, choice) = kinds::search_kind_weights(&grid, Purchase, &mut train_one)
        .expect("training does not fail")
        .expect("a non-empty grid");
    assert_eq!(runs, 3);
    assert_eq!(choice.trials.len(), 3);
    let best = choice
        .trials
        .iter()
        .map(|t| t.val_ndcg10)
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(
        report.best_val_ndcg10, best,
        "the best validation run is kept"
    );
    let kept = choice
        .trials
        .iter()
        .find(|t| t.val_ndcg10 == best)
        .expect("the best trial");
    assert_eq!(
        choice.weights,
        kinds::weights_for(Purchase, kept.aux_weight)
    );
    assert_eq!(report.trained_kinds, vec![View, Purchase]);

    let purchases_only = without_views(&log);
    let split_p = kinds::split(&purchases_only, SplitRule::LeaveLastOut, Purchase);
    let (model_p, report_p) = fit(&split_p.train, &split_p.valid, [1.0; 3]);
    assert_eq!(report_p.trained_kinds, vec![Purchase]);

    let hr_views = metric(&model, &split.test, "HR@5");
    let hr_purchases = metric(&model_p, &split_p.test, "HR@5");
    let chance = 5.0 / N as f64;
    eprintln!(
        "HR@5: trained with views {hr_views:.3}, views dropped {hr_purchases:.3}, chance {chance:.3}; grid {:?}",
        choice.trials
    );
    assert!(
        hr_views > 0.8,
        "with views HR@5 {hr_views:.3} is not far above chance {chance:.3}"
    );
    assert!(
        hr_views > hr_purchases + 0.5,
        "views do not help: {hr_views:.3} vs {hr_purchases:.3} without them"
    );
    assert!(
        hr_purchases < 3.0 * chance,
        "purchases alone should not predict the next one: HR@5 {hr_purchases:.3}"
    );

    let init = fresh_model(5);
    let moved = distance(&kind_row(&model, View), &kind_row(&init, View));
    let norm = distance(&kind_row(&init, View), &vec![0.0; model.config.dim]);
    assert!(
        moved > 0.5 * norm,
        "the view row barely moved: {moved} (initial norm {norm})"
    );
    assert_eq!(
        kind_row(&model, Cart),
        kind_row(&init, Cart),
        "no carts in the log: the cart row keeps its initial value"
    );
}

/// Trains briefly on the purchase-only log; returns the model (trained kinds not yet
/// recorded) and its report.
fn purchase_model() -> (Model, TrainReport) {
    let log = without_views(&paired_log(60, 4, 3));
    let cfg = TrainConfig {
        epochs: 2,
        ..train_config([1.0; 3])
    };
    let mut model = fresh_model(9);
    let report = train(&mut model, &log, &cfg, &mut |_| 0.0, &mut |_| {});
    (model, report)
}

fn to_file(model: &Model) -> WeightFile {
    let fixture = tiny_weight_file(N, 7);
    let wf = model.to_weight_file(
        fixture.metadata.items.clone(),
        fixture.metadata.categories.clone(),
        vec![1.0; N],
        serde_json::json!({}),
        serde_json::json!({}),
        serde_json::json!({}),
    );
    let bytes = wf.to_bytes(Quantization::F32).expect("writes");
    WeightFile::from_bytes(&bytes).expect("reads")
}

/// Logits of every item (deep part and head, the path `recommend()` takes) for `history`.
fn logits(model: &Model, history: &[HistoryEvent]) -> Vec<f32> {
    let plan = model.head_plan(model.item_vectors());
    let mut out = vec![0.0; N];
    score::logits(model, &plan, CpuKernel::Scalar, history, false, &mut out)
        .expect("scores the catalog");
    out
}

fn as_kind(history: &[HistoryEvent], kind: EventKind) -> Vec<HistoryEvent> {
    history
        .iter()
        .map(|e| HistoryEvent { kind, ..*e })
        .collect()
}

/// A purchase-only model records `["purchase"]`; loaded, views and carts read the
/// purchase row, so a view history scores exactly as the same history of purchases,
/// and purchase histories score exactly as from a file without the record.
#[test]
fn untrained_kinds_read_the_closest_trained_row_at_load() {
    let (trained, report) = purchase_model();
    assert_eq!(report.trained_kinds, vec![Purchase]);
    let old_file = to_file(&trained);
    assert_eq!(old_file.metadata.trained_kinds, None);
    let mut recorded = trained.clone();
    recorded.set_trained_kinds(&report.trained_kinds);
    let new_file = to_file(&recorded);
    assert_eq!(new_file.metadata.trained_kinds, Some(vec![Purchase]));

    let old = Model::from_weights(&old_file).expect("loads");
    let new = Model::from_weights(&new_file).expect("loads");
    // Without the record: rows as stored (the untrained view row is random, as before).
    assert_eq!(old.trained_kinds, None);
    assert_eq!(old.params, trained.params);
    assert_ne!(kind_row(&old, View), kind_row(&old, Purchase));
    // With it: view and cart read purchase; every other parameter is as trained.
    assert_eq!(new.trained_kinds, Some(vec![Purchase]));
    for k in [View, Cart] {
        assert_eq!(kind_row(&new, k), kind_row(&new, Purchase), "{k:?} row");
    }
    assert_eq!(kind_row(&new, Purchase), kind_row(&trained, Purchase));
    let mapped = new.kind_map().mapped();
    assert_eq!(mapped, vec![(View, Purchase), (Cart, Purchase)]);

    let purchases: Vec<HistoryEvent> = (0..6u32)
        .map(|i| HistoryEvent {
            item: (i * 7) % N as u32,
            kind: Purchase,
            at: 1.3e9 + 3600.0 * i as f64,
        })
        .collect();
    let views = as_kind(&purchases, View);
    assert_eq!(
        logits(&new, &purchases),
        logits(&old, &purchases),
        "purchase histories score exactly as before"
    );
    assert_eq!(
        logits(&new, &views),
        logits(&new, &purchases),
        "a view reads the purchase row"
    );
    assert_ne!(
        logits(&old, &views),
        logits(&new, &views),
        "without the record a view reads its own (random) row"
    );
    // Loading twice maps nothing further (the written rows are already mapped).
    let again = Model::from_weights(&to_file(&new)).expect("loads");
    assert_eq!(again.params, new.params);
}

/// The record is validated: an empty list, a repeated kind and an unknown kind name are
/// typed errors, for the writer and the reader.
#[test]
fn trained_kinds_are_validated() {
    let (mut model, _) = purchase_model();
    model.trained_kinds = Some(Vec::new());
    let fixture = tiny_weight_file(N, 7);
    let wf = model.to_weight_file(
        fixture.metadata.items,
        fixture.metadata.categories,
        vec![1.0; N],
        serde_json::json!({}),
        serde_json::json!({}),
        serde_json::json!({}),
    );
    assert!(matches!(
        wf.to_bytes(Quantization::F32),
        Err(FormatError::BadTrainedKinds(_))
    ));
    let mut twice = wf.clone();
    twice.metadata.trained_kinds = Some(vec![Purchase, View, Purchase]);
    assert!(matches!(
        twice.to_bytes(Quantization::F32),
        Err(FormatError::BadTrainedKinds(m)) if m.contains("purchase")
    ));
    let mut ok = wf;
    ok.metadata.trained_kinds = Some(vec![View, Purchase]);
    let bytes = ok.to_bytes(Quantization::Int8).expect("writes");
    // The reader: the same rules on a hand-edited header.
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let field = r#"\"trained_kinds\":[\"view\",\"purchase\"]"#;
    assert!(text.contains(field), "the field is in the metadata string");
    for (bad, want_kinds_error) in [
        (r#"\"trained_kinds\":[\"view\",\"view\"]"#, true),
        (r#"\"trained_kinds\":[]"#, true),
        (r#"\"trained_kinds\":[\"wishlist\"]"#, false),
    ] {
        let edited = replace_in_header(&bytes, field, bad);
        match WeightFile::from_bytes(&edited) {
            Err(FormatError::BadTrainedKinds(_)) if want_kinds_error => {}
            Err(FormatError::BadMetadata(m)) if !want_kinds_error => {
                assert!(m.contains("wishlist"), "{m}")
            }
            other => panic!("{bad}: unexpected {other:?}"),
        }
    }
    let loaded = WeightFile::from_bytes(&bytes).expect("reads");
    assert_eq!(loaded.metadata.trained_kinds, Some(vec![View, Purchase]));
}

/// `bytes` with `from` replaced by `to` in its JSON header (the length prefix adjusted;
/// the data section and so the content hash unchanged).
fn replace_in_header(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n]).expect("UTF-8 header");
    assert!(header.contains(from), "{from} not in the header");
    let header = header.replacen(from, to, 1);
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    out
}
