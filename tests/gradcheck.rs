#![cfg(not(target_arch = "wasm32"))]
//! Finite-difference gradient checks of every hand-written backward pass in
//! `vitrine::train::backprop`, and the trainer's determinism and learning on a toy task.
#![cfg(not(target_arch = "wasm32"))]
mod common;

use common::fixtures::{history, tiny_weight_file};
use vitrine::history::HistoryEvent;
use vitrine::model::layers::{causal_attention, layer_norm, linear, softmax_xent};
use vitrine::model::memory::Memory;
use vitrine::model::params::{flat, param_table, ParamSpec};
use vitrine::model::{Dropout, Model};
use vitrine::rng::SplitMix64;
use vitrine::train::backprop::{
    attention_backward, encoder_backward, head_backward, item_encoder_backward, item_part_backward,
    layer_norm_backward, linear_backward, Grads,
};
use vitrine::train::{train, TrainConfig};

/// Uniform test values in `[-1, 1)`.
struct Xs(SplitMix64);
impl Xs {
    fn new(seed: u64) -> Xs {
        Xs(SplitMix64::new(seed))
    }
    fn f(&mut self) -> f32 {
        self.0.next_f32() * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f()).collect()
    }
}

/// Central differences of `loss` at up to 40 coordinates of `x`, compared with `grad`.
fn check(name: &str, x: &[f32], grad: &[f32], loss: impl Fn(&[f32]) -> f64) {
    assert_eq!(x.len(), grad.len(), "{name}: gradient length");
    let eps: f32 = std::env::var("GC_EPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1e-3);
    let step = if std::env::var("GC_ALL").is_ok() {
        1
    } else {
        (x.len() / 40).max(1)
    };
    // Errors are relative to the entry, floored by the tensor's gradient scale (entries
    // that are exactly zero analytically, like key biases, read as float noise). A
    // coordinate whose perturbation crosses a ReLU kink differs legitimately, so up to
    // 10% of the checked coordinates may miss; a wrong backward pass misses nearly all.
    let rms =
        (grad.iter().map(|g| (*g as f64).powi(2)).sum::<f64>() / grad.len().max(1) as f64).sqrt();
    let (mut worst, mut misses, mut checked) = (0.0f64, Vec::new(), 0usize);
    for i in (0..x.len()).step_by(step) {
        let mut xp = x.to_vec();
        xp[i] += eps;
        let lp = loss(&xp);
        xp[i] -= 2.0 * eps;
        let lm = loss(&xp);
        let num = (lp - lm) / (2.0 * eps as f64);
        let ana = grad[i] as f64;
        let err = (num - ana).abs() / (num.abs().max(ana.abs()) + 0.05 * rms + 1e-4);
        checked += 1;
        if err >= 5e-2 {
            misses.push(format!("[{i}] numeric {num:.6} vs analytic {ana:.6}"));
        } else {
            worst = worst.max(err);
        }
    }
    assert!(
        misses.len() * 10 <= checked,
        "{name}: {} of {checked} coordinates differ: {}",
        misses.len(),
        misses.join("; ")
    );
    eprintln!("{name}: worst relative error {worst:.2e}");
}

fn weighted(y: &[f32], r: &[f32]) -> f64 {
    y.iter()
        .zip(r)
        .map(|(a, b)| (*a as f64) * (*b as f64))
        .sum()
}

#[test]
fn linear_layer() {
    let mut g = Xs::new(1);
    let (m, k, n) = (3, 5, 4);
    let (x, w, b, r) = (g.vec(m * k), g.vec(k * n), g.vec(n), g.vec(m * n));
    let (mut dw, mut db) = (vec![0.0; k * n], vec![0.0; n]);
    let dx = linear_backward(&x, &w, &r, m, k, n, &mut dw, Some(&mut db));
    check("linear dx", &x, &dx, |x| {
        weighted(&linear(x, &w, &b, m, k, n), &r)
    });
    check("linear dw", &w, &dw, |w| {
        weighted(&linear(&x, w, &b, m, k, n), &r)
    });
    check("linear db", &b, &db, |b| {
        weighted(&linear(&x, &w, b, m, k, n), &r)
    });
}

#[test]
fn layer_norm_layer() {
    let mut g = Xs::new(2);
    let (m, d) = (3, 8);
    let (x, gain, bias, r) = (g.vec(m * d), g.vec(d), g.vec(d), g.vec(m * d));
    let (_, cache) = layer_norm(&x, &gain, &bias, m, d);
    let (mut dg, mut db) = (vec![0.0; d], vec![0.0; d]);
    let dx = layer_norm_backward(&cache, &gain, &r, m, d, &mut dg, &mut db);
    check("ln dx", &x, &dx, |x| {
        weighted(&layer_norm(x, &gain, &bias, m, d).0, &r)
    });
    check("ln dg", &gain, &dg, |gn| {
        weighted(&layer_norm(&x, gn, &bias, m, d).0, &r)
    });
    check("ln db", &bias, &db, |b| {
        weighted(&layer_norm(&x, &gain, b, m, d).0, &r)
    });
}

#[test]
fn causal_attention_layer() {
    let mut g = Xs::new(3);
    let (len, dim, heads) = (5, 8, 2);
    let (q, k, v, r) = (
        g.vec(len * dim),
        g.vec(len * dim),
        g.vec(len * dim),
        g.vec(len * dim),
    );
    let (_, probs) = causal_attention(&q, &k, &v, len, dim, heads);
    let (dq, dk, dv) = attention_backward(&q, &k, &v, &probs, &r, len, dim, heads);
    check("attn dq", &q, &dq, |q| {
        weighted(&causal_attention(q, &k, &v, len, dim, heads).0, &r)
    });
    check("attn dk", &k, &dk, |k| {
        weighted(&causal_attention(&q, k, &v, len, dim, heads).0, &r)
    });
    check("attn dv", &v, &dv, |v| {
        weighted(&causal_attention(&q, &k, v, len, dim, heads).0, &r)
    });
}

#[test]
fn softmax_cross_entropy() {
    let mut g = Xs::new(4);
    let z = g.vec(7);
    let mut grad = vec![0.0; 7];
    softmax_xent(&z, 3, &mut grad);
    let mut scratch = vec![0.0; 7];
    check("xent", &z, &grad, |z| {
        softmax_xent(z, 3, &mut scratch.clone()) as f64
    });
    scratch.clear();
}

fn tiny() -> Model {
    Model::from_weights(&tiny_weight_file(40, 11)).unwrap()
}

fn with_param(model: &Model, p: &ParamSpec, vals: &[f32]) -> Model {
    let mut m = model.clone();
    m.params[p.range()].copy_from_slice(vals);
    m
}

/// The encoder (with dropout masks fixed by the seed) against every parameter group and
/// the input item vectors.
#[test]
fn encoder_all_parameters() {
    check_encoder(tiny());
}

/// The same with gated residuals and SwiGLU feed-forward layers (LiGR blocks).
#[test]
fn gated_encoder_all_parameters() {
    let model = common::fixtures::ligr_model(&tiny(), 3, 0.4);
    check_encoder(model);
}

fn check_encoder(mut model: Model) {
    // Non-trivial layer-norm gains/biases, and embeddings of unit scale so the finite
    // differences stay in the locally linear range of the first layer norm.
    let mut g = Xs::new(5);
    for p in param_table(&model.config) {
        let (name, v) = (&p.name, &mut model.params[p.range()]);
        if name.starts_with("item.") || name.starts_with("user.") {
            v.iter_mut().for_each(|x| *x *= 10.0);
        }
        if name.ends_with(".g") || name.ends_with(".b") {
            v.iter_mut().for_each(|x| *x += 0.3 * g.f());
        }
    }
    let iv = model.item_vectors();
    let (input, _) = model.seq_input(&history(&[3, 7, 7, 12, 1, 30]));
    let d = model.config.dim;
    let r = g.vec(input.len() * d);
    let fwd = |m: &Model, v: &[f32]| {
        let mut drop = Dropout::new(0.25, 9);
        weighted(&m.encode_sequence(v, &input, Some(&mut drop)).0, &r)
    };
    let mut grads = Grads::zeros(&model);
    let mut dv = vec![0.0; iv.len()];
    let mut drop = Dropout::new(0.25, 9);
    let (_, cache) = model.encode_sequence(&iv, &input, Some(&mut drop));
    encoder_backward(&model, &cache, &r, &mut grads, &mut dv);
    check("encoder d item vectors", &iv, &dv, |v| fwd(&model, v));
    let encoder = param_table(&model.config)
        .into_iter()
        .filter(|p| !p.name.starts_with("item.") && !p.name.starts_with("head."));
    let mut checked = 0;
    for p in encoder {
        let (name, gp) = (&p.name, &grads.g[p.range()]);
        checked += 1;
        if name.ends_with("attn.bk") {
            // Adding the same vector to every key shifts each softmax row by a constant:
            // the exact gradient is zero (finite differences only see float noise).
            assert!(gp.iter().all(|g| g.abs() < 1e-4), "{name}: {gp:?}");
            continue;
        }
        let x = model.params[p.range()].to_vec();
        check(name, &x, gp, |x| fwd(&with_param(&model, &p, x), &iv));
    }
    // pos, kind, gap, 16 per block (20 gated), final layer norm.
    let per_block = 16 + 4 * model.config.gated as usize + 2 * model.config.swiglu as usize;
    assert_eq!(checked, 3 + per_block * model.config.n_blocks + 2);
}

/// The scoring head (dot product + MLP) against u, the candidates and every head weight.
#[test]
fn scoring_head_all_parameters() {
    let model = tiny();
    let mut g = Xs::new(6);
    let d = model.config.dim;
    let h = model.config.mlp_hidden[0];
    let c = 9;
    let u = g.vec(d);
    let cand = g.vec(c * d);
    let r = g.vec(c);
    let item_part = |m: &Model, cand: &[f32]| {
        let p = m.view();
        linear(cand, flat(&p.head.w1v), p.head.b1, c, d, h)
    };
    let fwd = |m: &Model, u: &[f32], cand: &[f32]| {
        let part = item_part(m, cand);
        weighted(&m.head_forward(u, cand, &part, c).0, &r)
    };
    let part = item_part(&model, &cand);
    let (_, cache) = model.head_forward(&u, &cand, &part, c);
    let mut grads = Grads::zeros(&model);
    let (du, mut dcand, dpart) = head_backward(&model, &u, &cand, c, &cache, &r, &mut grads);
    item_part_backward(&model, &cand, c, &dpart, &mut grads, &mut dcand);
    check("head du", &u, &du, |u| fwd(&model, u, &cand));
    check("head dcand", &cand, &dcand, |cd| fwd(&model, &u, cd));
    let head = param_table(&model.config)
        .into_iter()
        .filter(|p| p.name.starts_with("head."));
    for p in head {
        let x = model.params[p.range()].to_vec();
        check(&p.name, &x, &grads.g[p.range()], |x| {
            fwd(&with_param(&model, &p, x), &u, &cand)
        });
    }
}

/// The item encoder (ID + category + title tokens + price) against its four tables.
#[test]
fn item_encoder_all_parameters() {
    check_item_encoder(&tiny(), None, 7);
}

/// [`item_encoder_backward`] against finite differences of
/// [`Model::item_vectors_without_ids`] in each `item.*` table, for a random upstream
/// gradient drawn from `seed`.
fn check_item_encoder(model: &Model, dropped: Option<&[bool]>, seed: u64) {
    let mut g = Xs::new(seed);
    let r = g.vec(model.config.n_items * model.config.dim);
    let mut grads = Grads::zeros(model);
    item_encoder_backward(model, &r, None, dropped, &mut grads);
    let item = param_table(&model.config)
        .into_iter()
        .filter(|p| p.name.starts_with("item."));
    for p in item {
        let x = model.params[p.range()].to_vec();
        check(&p.name, &x, &grads.g[p.range()], |x| {
            weighted(
                &with_param(model, &p, x).item_vectors_without_ids(dropped),
                &r,
            )
        });
    }
}

/// The item encoder with the trainer's neighbour mixing of the ID rows
/// (`id_i + Σ_j w_ij · id_j`, some lists empty, an item its neighbour's neighbour) and
/// with ID dropout (the marked items' vectors are their content parts alone), against
/// its four tables; then folding the mix into the rows leaves every vector bit for bit.
#[test]
fn item_encoder_with_neighbour_mixing_and_id_dropout() {
    let mut model = tiny();
    let n = model.config.n_items;
    model.id_mix = Some(Memory::from_lists((0..n as u32).map(|i| match i % 3 {
        0 => vec![],
        1 => vec![((i + 1) % n as u32, 0.7), ((i + 5) % n as u32, 0.2)],
        _ => vec![((i + n as u32 - 1) % n as u32, 0.4)],
    })));
    let dropped: Vec<bool> = (0..n).map(|i| i % 4 == 1).collect();
    check_item_encoder(&model, Some(&dropped), 11);
    let before = model.item_vectors();
    assert_ne!(before, tiny().item_vectors(), "the mix moves the vectors");
    model.fold_id_mix();
    assert!(model.id_mix.is_none());
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&model.item_vectors()),
        bits(&before),
        "folding keeps every vector"
    );
}

/// Synthetic sequences with a learnable rule: after item i comes item (i + 1) mod n.
fn cyclic_sequences(n: u32, users: usize) -> Vec<Vec<HistoryEvent>> {
    (0..users)
        .map(|u| {
            let start = (u as u32 * 7) % n;
            let items: Vec<u32> = (0..12).map(|t| (start + t) % n).collect();
            history(&items)
        })
        .collect()
}

#[test]
fn training_is_deterministic_and_learns() {
    let seqs = cyclic_sequences(40, 120);
    let cfg = TrainConfig {
        epochs: 12,
        batch_size: 16,
        lr: 5e-3,
        dropout: 0.1,
        seed: 3,
        patience: 10,
        // The exact successor: neighbour mixing (the default) pulls 13's row towards
        // its neighbours 11, 12, 14 and 15, which this 40-item rule punishes.
        neighbour_mix: 0.0,
        ..TrainConfig::default()
    };
    let run = || {
        let mut m = tiny();
        let mut losses = Vec::new();
        // Every epoch "validates" better than the last, so the final parameters are kept.
        let mut epoch = 0.0;
        let mut validate = |_: &Model| {
            epoch += 1.0;
            epoch
        };
        let rep = train(&mut m, &seqs, &cfg, &mut validate, &mut |p| {
            losses.push(p.loss)
        });
        (m, rep, losses)
    };
    let (m1, r1, l1) = run();
    let (m2, _, l2) = run();
    assert_eq!(l1, l2, "losses differ between two runs with the same seed");
    assert_eq!(
        m1.params, m2.params,
        "parameters differ between two runs with the same seed"
    );
    let first = r1.epochs.first().unwrap().loss;
    let last = r1.epochs.last().unwrap().loss;
    assert!(last < 0.7 * first, "loss did not fall: {first} -> {last}");
    // The learned rule: after 10, 11, 12 comes 13.
    let v = m1.item_vectors();
    let u = m1.encode_user(&v, &history(&[10, 11, 12])).u;
    let scores: Vec<f32> = (0..40).map(|i| m1.score_reference(&v, &u, i)).collect();
    let best = (0..40)
        .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
        .unwrap();
    assert_eq!(best, 13, "model did not learn the successor rule");
}

/// With and without the default's neighbour mixing: the run stops two epochs after the
/// best and keeps the best epoch's model. Without the mix, its parameters bit for bit;
/// with it, the mix is folded into the `item.id` rows at the end, so the item vectors
/// (what every score reads) are the best epoch's bit for bit, and so is every parameter
/// outside `item.id`.
#[test]
fn early_stopping_keeps_the_best_epoch() {
    let seqs = cyclic_sequences(40, 40);
    assert!(
        TrainConfig::default().neighbour_mix > 0.0,
        "the default mixes"
    );
    for neighbour_mix in [0.0, TrainConfig::default().neighbour_mix] {
        let cfg = TrainConfig {
            epochs: 10,
            batch_size: 16,
            patience: 2,
            neighbour_mix,
            ..TrainConfig::default()
        };
        let mut m = tiny();
        let vals = [0.1, 0.3, 0.2, 0.25, 0.9];
        let mut i = 0;
        let mut snapshots = Vec::new();
        let rep = train(
            &mut m,
            &seqs,
            &cfg,
            &mut |m| {
                snapshots.push((m.params.clone(), m.item_vectors()));
                i += 1;
                vals[i - 1]
            },
            &mut |_| {},
        );
        assert_eq!(rep.epochs.len(), 4, "should stop 2 epochs after the best");
        assert_eq!(rep.best_epoch, 2);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let (params, vectors) = &snapshots[1];
        assert_eq!(
            bits(&m.item_vectors()),
            bits(vectors),
            "mix {neighbour_mix}"
        );
        assert!(m.id_mix.is_none(), "the mix is folded at the end");
        // Parameters are those of epoch 2 (except zeroed cold-item IDs: none here).
        let id = param_table(&m.config)
            .into_iter()
            .find(|s| s.name == "item.id")
            .expect("an item.id tensor")
            .range();
        if neighbour_mix == 0.0 {
            assert_eq!(&m.params, params);
        } else {
            assert_ne!(m.params[id.clone()], params[id.clone()], "folded rows");
            assert_eq!(m.params[..id.start], params[..id.start]);
            assert_eq!(m.params[id.end..], params[id.end..]);
        }
    }
}
