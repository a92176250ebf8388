//! The native trainer (not compiled to wasm): hand-written backward passes
//! ([`backprop`]), Adam, mini-batches processed in parallel with rayon, deterministic
//! under a seed, early stopping on validation NDCG@10, and the training-curve chart.
//!
//! Objective, per training window (the last `max_len + 1` events of a user's training
//! sequence, or a random earlier window for long sequences):
//! - at every position `t`, the next item is the target: softmax cross-entropy of the
//!   dot-product logits `u_t · v_j` over the whole catalog (or over `negatives` items
//!   sampled uniformly per batch, the target added), which trains the encoders;
//! - at the last `head_positions` positions, softmax cross-entropy of the full head's
//!   logits (`u·v + MLP`) over the target and `head_negatives` items sampled per batch,
//!   which trains the MLP to correct the dot product.
//!
//! Each position's terms are weighted by the kind of its target event,
//! `w_t = kind_weights[k_{t+1}]` ([`TrainConfig::kind_weights`]; all 1 by default), and
//! each term is a weighted mean over the batch: `L = Σ_t w_t ℓ_t / Σ_t w_t` (the head term
//! over its positions likewise). Every event, whatever its kind, is an encoder input; a
//! weight 0 only removes that kind's targets. On a log of several kinds, `vitrine train`
//! chooses the weights on validation ([`kinds`]).
//!
//! With ID dropout ([`TrainConfig::id_dropout`] `= p`), each batch leaves every item's
//! ID row out of its vector with probability `p` (`v_i = c_i`, the content part alone,
//! wherever the item appears in the batch), and those rows take no step from it.
//!
//! Batches are split into a fixed number of chunks whose gradients are summed in order,
//! so results do not depend on the number of threads.
//!
//! The refit ([`train_refit`], [`TrainConfig::refit_epochs`] `= R`): once early stopping
//! has kept epoch `e*`, training goes on from those parameters (and the optimiser's
//! state) for `R` epochs `e* + 1, …, e* + R` over the refit sequences, the training
//! sequences with every validation target appended — the newest events, which
//! validation had to hold back, and the ones a test or a shopper's next visit is most
//! like —, at the learning rate the schedule gives those epochs (at least its final
//! 10%). Nothing validates it (its targets are trained on): `R` and everything else
//! chosen on validation are chosen before it, with the kept epoch's model.
pub mod backprop;
pub mod basket;
mod batch;
pub mod blend;
pub mod kinds;

use std::io::Write;
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::history::{EventKind, HistoryEvent};
use crate::model::layers::linear;
use crate::model::memory::{Memory, MemoryParams};
use crate::model::params::{flat, flat_mut, param_table, ParamsMut};
use crate::model::{Dropout, Model, ModelConfig};
use crate::rng::SplitMix64;
use backprop::{item_encoder_backward, Grads};
use batch::{BatchCtx, Window, Work};

/// Hyper-parameters of [`train`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Most epochs.
    pub epochs: usize,
    /// Training windows per batch.
    pub batch_size: usize,
    /// Adam learning rate at the first epoch; it decays linearly to 10% over `epochs`.
    pub lr: f32,
    /// Dropout probability (embeddings, attention and feed-forward outputs).
    pub dropout: f32,
    /// Seed of initialisation, shuffling, windows, sampling and dropout.
    pub seed: u64,
    /// Sampled negatives per batch for the dot-product loss; 0 = full softmax.
    pub negatives: usize,
    /// Sampled negatives per batch for the head loss. 255 by default, chosen on
    /// validation on 2026-12-07 over the earlier 63 (higher deep-part and blend NDCG@10
    /// on Online Retail, Toys and Sports; README "Public benchmarks").
    pub head_negatives: usize,
    /// Positions (from the end of each window) that train the head.
    pub head_positions: usize,
    /// Stop after this many epochs without a better validation NDCG@10.
    pub patience: usize,
    /// Clip the global gradient norm to this value.
    pub clip: f32,
    /// L2 weight decay on the dense weights (not embeddings, norms or biases).
    pub weight_decay: f32,
    /// Loss weight of a position by the kind of its target event, indexed by
    /// [`EventKind::index`] (view, cart, purchase); finite and non-negative, 0 drops
    /// that kind's targets (its events stay inputs). Default: all 1.
    #[serde(default = "unit_kind_weights")]
    pub kind_weights: [f32; 3],
    /// Decay of the exponential moving average of the parameters that validation reads
    /// and the run keeps (Polyak averaging): after step `t` the average moves towards
    /// the parameters by `1 - min(ema, (1 + t) / (10 + t))`. 0 turns it off (validation
    /// and the result read the parameters themselves).
    #[serde(default)]
    pub ema: f32,
    /// Probability that an item's ID embedding is left out of its vector for one batch
    /// (everywhere it appears in that batch: history, target, negatives), so the
    /// vector is its content part alone and only the content tables learn from it
    /// (DropoutNet, Volkovs et al., NeurIPS 2017): trains the content-only vectors
    /// that new items get. 0 turns it off.
    #[serde(default)]
    pub id_dropout: f32,
    /// Neighbour mixing of the ID rows while training: each item's ID part is
    /// `id_i + m · Σ_j w_ij · id_j` over its [`MIX_NEIGHBOURS`] strongest co-occurring
    /// items in the training sequences (transition counts within 2 events, both
    /// directions, the weights `w_ij` summing to 1), so an item's vector moves with its
    /// neighbours' rows; folded into the rows at the end ([`Model::fold_id_mix`]). 0 = off;
    /// the default 0.5 was chosen on validation (README "Public benchmarks"). Missing from
    /// a serialised config (older files' training metadata): 0, what those runs used.
    #[serde(default)]
    pub neighbour_mix: f32,
    /// Zero the ID rows of items without training events after every epoch, before
    /// validation, so that early stopping validates the model as it will be shipped
    /// (those rows are zeroed at the end in any case; until then they move as sampled
    /// negatives). On by default, chosen on validation on all three datasets (README
    /// "Public benchmarks": Toys' deep part +3% NDCG@10 on validation, Sports' blend +2%,
    /// Online Retail within noise). Missing from a serialised config (older files'
    /// training metadata): off, what those runs used.
    #[serde(default)]
    pub zero_cold_rows: bool,
    /// Epochs of the refit: once early stopping has chosen its epoch, training goes on
    /// from those parameters for this many epochs over the refit sequences (the
    /// training sequences with the validation targets appended: every event but the
    /// test targets, [`crate::eval::Split::refit_sequences`]), at the learning rate the
    /// schedule gives the epochs after the chosen one, with no validation (its targets
    /// are trained on). So the shipped model has learned the newest events, which
    /// validation held back. 0 = off; only [`train_refit`] refits. The default 1 was
    /// chosen one step back in time, on the validation targets and never the test's
    /// (`vitrine train --drop-last-events 1`: 1 against 0 and 2; README "The refit").
    /// Missing from a serialised config (older files' training metadata): 0, what those
    /// runs used.
    #[serde(default)]
    pub refit_epochs: usize,
}

/// Neighbours per item of [`TrainConfig::neighbour_mix`].
pub const MIX_NEIGHBOURS: usize = 20;

/// Every kind's target counts 1 ([`TrainConfig::kind_weights`]'s default).
fn unit_kind_weights() -> [f32; 3] {
    [1.0; 3]
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 12,
            batch_size: 32,
            lr: 2e-3,
            dropout: 0.2,
            seed: 42,
            negatives: 512,
            head_negatives: 255,
            head_positions: 8,
            patience: 3,
            clip: 5.0,
            weight_decay: 0.0,
            kind_weights: unit_kind_weights(),
            ema: 0.0,
            id_dropout: 0.0,
            neighbour_mix: 0.5,
            zero_cold_rows: true,
            refit_epochs: 1,
        }
    }
}

/// Reported after every batch (for progress bars).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainProgress {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Batch within the epoch (1-based).
    pub batch: usize,
    /// Batches per epoch.
    pub batches: usize,
    /// Mean loss of this batch.
    pub loss: f32,
}

/// One epoch's summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Mean training loss (dot-product + head terms).
    pub loss: f64,
    /// Validation NDCG@10 after the epoch.
    pub val_ndcg10: f64,
    /// Wall time of the epoch's training part, seconds.
    pub seconds: f64,
    /// Training positions (examples) seen.
    pub examples: usize,
}

/// One refit epoch's summary ([`TrainConfig::refit_epochs`]; no validation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefitEpoch {
    /// Epoch number in the learning-rate schedule (after the chosen epoch).
    pub epoch: usize,
    /// Mean training loss (dot-product + head terms).
    pub loss: f64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Training positions (examples) seen.
    pub examples: usize,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Per-epoch summaries.
    pub epochs: Vec<EpochReport>,
    /// Epoch whose parameters were kept (best validation NDCG@10).
    pub best_epoch: usize,
    /// Its validation NDCG@10.
    pub best_val_ndcg10: f64,
    /// Training throughput, positions per second (training time only).
    pub examples_per_sec: f64,
    /// Items whose ID embedding was zeroed because they have no training interaction.
    pub cold_items: usize,
    /// The event kinds that were encoder inputs (their `user.kind` row trained), in
    /// funnel order ([`input_kinds`]). The caller records them on the model
    /// ([`Model::set_trained_kinds`]) before writing the weight file.
    pub trained_kinds: Vec<EventKind>,
    /// The refit's epochs ([`TrainConfig::refit_epochs`]; empty when there was none).
    #[serde(default)]
    pub refit: Vec<RefitEpoch>,
}

const CHUNKS: usize = 8;

/// Number of batches per epoch for these sequences.
pub fn batches_per_epoch(sequences: &[Vec<HistoryEvent>], cfg: &TrainConfig) -> usize {
    let n = sequences.iter().filter(|s| s.len() >= 2).count();
    n.div_ceil(cfg.batch_size.max(1))
}

/// Adam optimiser state: first and second moments, flat like [`Model::params`].
struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
}

impl Adam {
    fn new(model: &Model) -> Adam {
        let z = Grads::zeros(model).g;
        Adam {
            m: z.clone(),
            v: z,
            t: 0,
        }
    }

    fn step(&mut self, model: &mut Model, grads: &Grads, cfg: &TrainConfig, lr: f32) {
        let (b1, b2, eps) = (0.9f32, 0.98f32, 1e-8f32);
        self.t += 1;
        let c1 = 1.0 - b1.powi(self.t);
        let c2 = 1.0 - b2.powi(self.t);
        for spec in param_table(&model.config) {
            let name = &spec.name;
            let decay = if spec.shape.len() == 2
                && !name.starts_with("item.")
                && !name.starts_with("user.")
            {
                cfg.weight_decay
            } else {
                0.0
            };
            let r = spec.range();
            let (w, g) = (&mut model.params[r.clone()], &grads.g[r.clone()]);
            let (m, v) = (&mut self.m[r.clone()], &mut self.v[r]);
            for i in 0..w.len() {
                let gi = g[i] + decay * w[i];
                m[i] = b1 * m[i] + (1.0 - b1) * gi;
                v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
                w[i] -= lr * (m[i] / c1) / ((v[i] / c2).sqrt() + eps);
            }
        }
    }
}

/// Sorted sample of `k` distinct items out of `n` (all of them when `k >= n`).
fn sample_items(rng: &mut SplitMix64, n: usize, k: usize) -> Vec<u32> {
    if k >= n {
        return (0..n as u32).collect();
    }
    let mut seen = std::collections::HashSet::with_capacity(k);
    let mut out = Vec::with_capacity(k);
    while out.len() < k {
        let i = rng.below_mod(n) as u32;
        if seen.insert(i) {
            out.push(i);
        }
    }
    out
}

/// Trains `model` in place on `sequences` (one time-ordered event sequence per user;
/// sequences shorter than 2 are skipped). After every epoch `validate` returns the
/// validation NDCG@10 of the current parameters; the best epoch's parameters are kept
/// and training stops after `patience` epochs without improvement. `progress` is called
/// after every batch. Finally the ID embeddings of items that never occur in the
/// training sequences are zeroed, so their vectors are content-only (cold start).
pub fn train(
    model: &mut Model,
    sequences: &[Vec<HistoryEvent>],
    cfg: &TrainConfig,
    validate: &mut dyn FnMut(&Model) -> f64,
    progress: &mut dyn FnMut(&TrainProgress),
) -> TrainReport {
    train_refit(model, sequences, &[], cfg, validate, progress).0
}

/// [`train`], then the refit ([`TrainConfig::refit_epochs`] epochs over `refit`, when
/// both are non-empty): it starts from the chosen epoch's parameters with the
/// optimiser's state as training left it, keeps the neighbour mix of the training
/// sequences (folded at the end as in [`train`]), and reports its epochs in
/// [`TrainReport::refit`] (progress too, numbered after the chosen epoch). Items are
/// cold (their ID rows zeroed) when `refit` never contains them. Any sequences do as
/// `refit`; [`crate::eval::Split::refit_sequences`] gives the usual ones.
///
/// Also returns, when a refit ran, the model as [`train`] would have returned it (the
/// chosen epoch's, bit for bit): anything else chosen on validation (the memory's
/// blend, the basket's) must be chosen with that one, since the refit trains on the
/// validation targets.
pub fn train_refit<'a>(
    model: &mut Model,
    sequences: &'a [Vec<HistoryEvent>],
    refit: &'a [Vec<HistoryEvent>],
    cfg: &TrainConfig,
    validate: &mut dyn FnMut(&Model) -> f64,
    progress: &mut dyn FnMut(&TrainProgress),
) -> (TrainReport, Option<Model>) {
    let users = trainable_users(sequences, model.config.n_items);
    model.id_mix = neighbour_mix(sequences, model.config.n_items, cfg.neighbour_mix);
    let mut run = Trainer {
        sequences,
        cfg,
        adam: Adam::new(model),
        rng: SplitMix64::new(cfg.seed ^ 0xA076_1D64_78BD_642F),
        batches: users.len().div_ceil(cfg.batch_size.max(1)),
        works: (0..CHUNKS).map(|_| Work::new(model)).collect(),
        total: Work::new(model),
        average: Average::new(&model.params, cfg.ema),
    };
    let mut report = TrainReport {
        epochs: Vec::new(),
        best_epoch: 0,
        best_val_ndcg10: f64::NEG_INFINITY,
        examples_per_sec: 0.0,
        cold_items: 0,
        trained_kinds: input_kinds(sequences, model.config.n_items),
        refit: Vec::new(),
    };
    let mut stop = EarlyStop {
        best: model.params.clone(),
        since_best: 0,
    };
    let (mut total_examples, mut total_secs) = (0usize, 0f64);
    let seen = seen_items(sequences, model.config.n_items);
    for epoch in 1..=cfg.epochs {
        let t0 = Instant::now();
        let windows = run.epoch_windows(model, &users);
        let (loss, examples) = run.epoch(model, epoch, &windows, progress);
        run.zero_cold(model, &seen);
        let secs = t0.elapsed().as_secs_f64();
        total_secs += secs;
        total_examples += examples;
        // Validation (and early stopping's copy) read the average when there is one;
        // training goes on from the parameters themselves.
        if let Some(avg) = &mut run.average {
            std::mem::swap(&mut model.params, &mut avg.params);
        }
        report.epochs.push(EpochReport {
            epoch,
            loss: loss / run.batches.max(1) as f64,
            val_ndcg10: validate(model),
            seconds: secs,
            examples,
        });
        let halt = stop.should_stop(&mut report, model, cfg.patience);
        if let Some(avg) = &mut run.average {
            std::mem::swap(&mut model.params, &mut avg.params);
        }
        if halt {
            break;
        }
    }
    if report.best_epoch > 0 {
        model.params = stop.best;
    }
    report.examples_per_sec = if total_secs > 0.0 {
        total_examples as f64 / total_secs
    } else {
        0.0
    };
    let mut chosen = None;
    let seen = if cfg.refit_epochs > 0 && !refit.is_empty() {
        let mut m = model.clone();
        zero_cold_rows(&m.config, &mut m.params, &seen);
        m.fold_id_mix();
        chosen = Some(m);
        run.refit(model, refit, report.best_epoch, &mut report, progress)
    } else {
        seen
    };
    report.cold_items = zero_cold_rows(&model.config, &mut model.params, &seen);
    model.fold_id_mix();
    (report, chosen)
}

/// The event kinds the encoder reads as inputs while training on `sequences`: the kinds
/// of every event but the last of each sequence that trains (at least 2 events, every
/// item in the catalog), in funnel order. Only these kinds' `user.kind` rows receive
/// gradients.
pub fn input_kinds(sequences: &[Vec<HistoryEvent>], n_items: usize) -> Vec<EventKind> {
    let mut seen = [false; 3];
    for &s in &trainable_users(sequences, n_items) {
        let seq = &sequences[s];
        for e in &seq[..seq.len() - 1] {
            seen[e.kind.index()] = true;
        }
    }
    EventKind::ALL
        .into_iter()
        .filter(|k| seen[k.index()])
        .collect()
}

/// Indices of the sequences that train: at least 2 events, every item in the catalog.
fn trainable_users(sequences: &[Vec<HistoryEvent>], n_items: usize) -> Vec<usize> {
    (0..sequences.len())
        .filter(|&s| {
            sequences[s].len() >= 2 && sequences[s].iter().all(|e| (e.item as usize) < n_items)
        })
        .collect()
}

/// Early stopping on validation NDCG@10: the best parameters so far and the epochs since.
struct EarlyStop {
    best: Vec<f32>,
    since_best: usize,
}

impl EarlyStop {
    /// Records the last epoch of `report` (keeping `model`'s parameters when its
    /// validation NDCG@10 is the best so far); true after `patience` epochs without one.
    fn should_stop(&mut self, report: &mut TrainReport, model: &Model, patience: usize) -> bool {
        let Some(last) = report.epochs.last() else {
            return false;
        };
        let (epoch, val) = (last.epoch, last.val_ndcg10);
        if val > report.best_val_ndcg10 {
            report.best_val_ndcg10 = val;
            report.best_epoch = epoch;
            self.best = model.params.clone();
            self.since_best = 0;
            false
        } else {
            self.since_best += 1;
            self.since_best >= patience
        }
    }
}

/// The neighbour lists of [`TrainConfig::neighbour_mix`] `= m` over `n` items (`None`
/// when `m` is 0): [`MIX_NEIGHBOURS`] per item from [`Memory::build`]'s transition
/// counts (window 2, no shrinkage), each list's weights scaled to sum to `m`.
fn neighbour_mix(sequences: &[Vec<HistoryEvent>], n: usize, m: f32) -> Option<Memory> {
    if m == 0.0 {
        return None;
    }
    let params = MemoryParams {
        window: 2,
        top_k: MIX_NEIGHBOURS,
        shrink: 0.0,
    };
    let counts = Memory::build(sequences, n, params);
    Some(Memory::from_lists((0..n).map(|i| {
        let total: f32 = counts.neighbours(i).map(|(_, w)| w).sum();
        counts
            .neighbours(i)
            .map(move |(j, w)| (j, if total > 0.0 { m * w / total } else { 0.0 }))
    })))
}

/// Which of the `n` items some sequence contains.
fn seen_items(sequences: &[Vec<HistoryEvent>], n: usize) -> Vec<bool> {
    let mut seen = vec![false; n];
    for s in sequences {
        for e in s {
            if let Some(x) = seen.get_mut(e.item as usize) {
                *x = true;
            }
        }
    }
    seen
}

/// Zeroes, in `params` (a flat parameter vector of `config`'s layout: the model's or the
/// moving average's), the ID embedding of every item that `seen` marks false (their
/// vectors become content-only); returns how many.
fn zero_cold_rows(config: &ModelConfig, params: &mut [f32], seen: &[bool]) -> usize {
    let d = config.dim;
    let mut params = ParamsMut::view_mut(config, params);
    let id = flat_mut(&mut params.item.id);
    let mut cold = 0;
    for (i, s) in seen.iter().enumerate() {
        if !s {
            id[i * d..(i + 1) * d].fill(0.0);
            cold += 1;
        }
    }
    cold
}

/// The state a run carries across epochs and batches.
struct Trainer<'a> {
    sequences: &'a [Vec<HistoryEvent>],
    cfg: &'a TrainConfig,
    adam: Adam,
    /// Windows, shuffling and negative sampling, in that order within an epoch.
    rng: SplitMix64,
    batches: usize,
    /// Per-chunk accumulators, reused by every batch.
    works: Vec<Work>,
    /// The batch's summed accumulators.
    total: Work,
    /// The moving average of the parameters ([`TrainConfig::ema`]), when on.
    average: Option<Average>,
}

/// An exponential moving average of the parameters, updated after every Adam step.
struct Average {
    params: Vec<f32>,
    decay: f32,
    steps: u64,
}

impl Average {
    /// Starts at `params`; `None` when `decay` is not in (0, 1).
    fn new(params: &[f32], decay: f32) -> Option<Average> {
        (decay > 0.0 && decay < 1.0).then(|| Average {
            params: params.to_vec(),
            decay,
            steps: 0,
        })
    }

    /// Moves the average towards `params` by `1 - min(decay, (1 + t) / (10 + t))`.
    fn update(&mut self, params: &[f32]) {
        self.steps += 1;
        let t = self.steps as f32;
        let d = self.decay.min((1.0 + t) / (10.0 + t));
        for (a, &p) in self.params.iter_mut().zip(params) {
            *a = d * *a + (1.0 - d) * p;
        }
    }
}

/// The negatives sampled for one batch.
struct BatchSamples {
    /// Dot-product candidates (empty: full softmax).
    cands: Vec<u32>,
    /// Their vectors `[K × d]`.
    cands_v: Vec<f32>,
    /// `(item, slot)` per candidate, sorted by item.
    cand_slots: Vec<(u32, u32)>,
    /// Head negatives.
    head_negs: Vec<u32>,
    /// Their item vectors `[k × d]`.
    head_negs_v: Vec<f32>,
    /// Their item parts `V·W₁ᵥ + b₁` `[k × h]`.
    head_negs_part: Vec<f32>,
}

impl<'a> Trainer<'a> {
    /// With [`TrainConfig::zero_cold_rows`], zeroes the ID rows of the items `seen`
    /// marks false in the parameters and in their moving average (after each epoch).
    fn zero_cold(&mut self, model: &mut Model, seen: &[bool]) {
        if self.cfg.zero_cold_rows {
            zero_cold_rows(&model.config, &mut model.params, seen);
            if let Some(avg) = &mut self.average {
                zero_cold_rows(&model.config, &mut avg.params, seen);
            }
        }
    }

    /// The refit ([`train_refit`]): `cfg.refit_epochs` epochs over `refit` from the
    /// current parameters, numbered after epoch `chosen`; returns which items `refit`
    /// contains (the rest are cold). With a moving average on, it restarts at the
    /// current parameters and is what the model keeps.
    fn refit(
        &mut self,
        model: &mut Model,
        refit: &'a [Vec<HistoryEvent>],
        chosen: usize,
        report: &mut TrainReport,
        progress: &mut dyn FnMut(&TrainProgress),
    ) -> Vec<bool> {
        let users = trainable_users(refit, model.config.n_items);
        self.sequences = refit;
        self.batches = users.len().div_ceil(self.cfg.batch_size.max(1));
        self.average = Average::new(&model.params, self.cfg.ema);
        let seen = seen_items(refit, model.config.n_items);
        for r in 1..=self.cfg.refit_epochs {
            let t0 = Instant::now();
            let epoch = chosen.max(1) + r;
            let windows = self.epoch_windows(model, &users);
            let (loss, examples) = self.epoch(model, epoch, &windows, progress);
            self.zero_cold(model, &seen);
            report.refit.push(RefitEpoch {
                epoch,
                loss: loss / self.batches.max(1) as f64,
                seconds: t0.elapsed().as_secs_f64(),
                examples,
            });
        }
        if let Some(avg) = self.average.take() {
            model.params = avg.params;
        }
        seen
    }

    /// One epoch's windows, shuffled: per user the most recent `max_len + 1` events, or
    /// (half of the time, for long sequences) a random earlier window.
    fn epoch_windows(&mut self, model: &Model, users: &[usize]) -> Vec<Window> {
        let span = model.config.max_len + 1;
        let rng = &mut self.rng;
        let mut windows: Vec<Window> = users
            .iter()
            .map(|&s| {
                let len = self.sequences[s].len();
                let end = if len > span && rng.next_u64().is_multiple_of(2) {
                    span + rng.below_mod(len - span + 1)
                } else {
                    len
                };
                Window { seq: s, end }
            })
            .collect();
        for i in (1..windows.len()).rev() {
            let j = rng.below_mod(i + 1);
            windows.swap(i, j);
        }
        windows
    }

    /// Trains one epoch over `windows`, batch by batch; returns the summed batch losses
    /// and the training positions seen.
    fn epoch(
        &mut self,
        model: &mut Model,
        epoch: usize,
        windows: &[Window],
        progress: &mut dyn FnMut(&TrainProgress),
    ) -> (f64, usize) {
        let cfg = self.cfg;
        let (mut epoch_loss, mut epoch_examples) = (0f64, 0usize);
        // Linear learning-rate decay to 10% over the planned epochs (a refit's epochs
        // past them stay at 10%).
        let lr = cfg.lr * (1.0 - 0.9 * (epoch - 1) as f32 / cfg.epochs.max(1) as f32).max(0.1);
        for (bi, batch) in windows.chunks(cfg.batch_size.max(1)).enumerate() {
            let drop_seed = cfg.seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
                ^ ((epoch as u64) << 40)
                ^ ((bi as u64) << 20);
            let Some((loss, n_pos)) = self.batch(model, batch, drop_seed, lr) else {
                continue;
            };
            epoch_loss += loss;
            epoch_examples += n_pos;
            progress(&TrainProgress {
                epoch,
                batch: bi + 1,
                batches: self.batches,
                loss: loss as f32,
            });
        }
        (epoch_loss, epoch_examples)
    }

    /// Samples the batch's negatives from the run's generator.
    fn sample(&mut self, model: &Model, v: &[f32]) -> BatchSamples {
        let (n, d, h) = (
            model.config.n_items,
            model.config.dim,
            model.config.mlp_hidden[0],
        );
        let cands = if self.cfg.negatives == 0 {
            Vec::new()
        } else {
            sample_items(&mut self.rng, n, self.cfg.negatives)
        };
        let head_negs = sample_items(&mut self.rng, n, self.cfg.head_negatives.min(n));
        let gather = |items: &[u32]| -> Vec<f32> {
            items
                .iter()
                .flat_map(|&i| v[i as usize * d..(i as usize + 1) * d].iter().copied())
                .collect()
        };
        let cands_v = gather(&cands);
        let mut cand_slots: Vec<(u32, u32)> = cands
            .iter()
            .enumerate()
            .map(|(j, &i)| (i, j as u32))
            .collect();
        cand_slots.sort_unstable();
        let head_negs_v = gather(&head_negs);
        let p = model.view();
        let head_negs_part = linear(
            &head_negs_v,
            flat(&p.head.w1v),
            p.head.b1,
            head_negs.len(),
            d,
            h,
        );
        BatchSamples {
            cands,
            cands_v,
            cand_slots,
            head_negs,
            head_negs_v,
            head_negs_part,
        }
    }

    /// One optimiser step on `batch`: samples negatives, computes the gradients, clips
    /// them and steps Adam. Returns the batch loss and its training positions (`None`
    /// for an empty batch).
    fn batch(
        &mut self,
        model: &mut Model,
        batch: &[Window],
        drop_seed: u64,
        lr: f32,
    ) -> Option<(f64, usize)> {
        let cfg = self.cfg;
        let dropped = id_dropout_mask(model.config.n_items, cfg.id_dropout, drop_seed);
        let v = model.item_vectors_without_ids(dropped.as_deref());
        let s = self.sample(model, &v);
        let lens: Vec<usize> = batch
            .iter()
            .map(|w| (w.end - 1).min(model.config.max_len))
            .collect();
        let n_pos: usize = lens.iter().sum();
        let (w_dot, w_head) = self.target_weights(batch, &lens);
        let ctx = BatchCtx {
            model,
            sequences: self.sequences,
            v: &v,
            cands: &s.cands,
            cands_v: &s.cands_v,
            cand_slots: &s.cand_slots,
            head_negs: &s.head_negs,
            head_negs_v: &s.head_negs_v,
            head_negs_part: &s.head_negs_part,
            scale_dot: inverse(w_dot),
            scale_head: inverse(w_head),
            cfg,
        };
        if batch.is_empty() {
            return None;
        }
        let loss = batch_gradients(&ctx, batch, drop_seed, &mut self.works, &mut self.total);
        let total = &mut self.total;
        total.rows.sort_unstable();
        item_encoder_backward(
            model,
            &total.dv,
            (!total.all_rows).then_some(&total.rows[..]),
            dropped.as_deref(),
            &mut total.grads,
        );
        let norm = total.grads.norm();
        if norm.is_finite() && norm > cfg.clip {
            total.grads.scale(cfg.clip / norm);
        }
        if norm.is_finite() {
            self.adam.step(model, &total.grads, cfg, lr);
            if let Some(avg) = &mut self.average {
                avg.update(&model.params);
            }
        }
        total.grads.g.fill(0.0);
        total.clear_rows();
        Some((loss, n_pos))
    }
}

/// The items whose ID embedding a batch leaves out ([`TrainConfig::id_dropout`]), each
/// with probability `p`, from a generator of the batch's own (seeded by its dropout
/// seed), so the run's other draws do not depend on `p`. `None` when `p` is 0.
fn id_dropout_mask(n_items: usize, p: f32, drop_seed: u64) -> Option<Vec<bool>> {
    if p <= 0.0 {
        return None;
    }
    let mut rng = SplitMix64::new(drop_seed ^ 0x1D_D20F_0F7E_5EED);
    Some((0..n_items).map(|_| rng.next_f32() < p).collect())
}

/// `1 / w`, or 0 for a batch without weighted targets.
fn inverse(w: f32) -> f32 {
    if w > 0.0 {
        1.0 / w
    } else {
        0.0
    }
}

impl Trainer<'_> {
    /// The summed target weights `Σ w_t` of a batch's positions and of its head positions
    /// (`lens`: each window's positions). With every weight 1 they are the position
    /// counts, exactly (sums of ones in `f32`).
    fn target_weights(&self, batch: &[Window], lens: &[usize]) -> (f32, f32) {
        let kw = &self.cfg.kind_weights;
        let (mut all, mut head) = (0f32, 0f32);
        for (w, &len) in batch.iter().zip(lens) {
            let targets = &self.sequences[w.seq][w.end - len..w.end];
            for (t, e) in targets.iter().enumerate() {
                let x = kw[e.kind.index()];
                all += x;
                if t >= len.saturating_sub(self.cfg.head_positions) {
                    head += x;
                }
            }
        }
        (all, head)
    }
}

/// The gradients and loss of a batch into `total`: its windows split into [`CHUNKS`]
/// chunks run in parallel on their own accumulators (`works`), summed in chunk order (so
/// independent of the thread count), then the shared candidates' gradients routed.
/// Returns the loss.
fn batch_gradients(
    ctx: &BatchCtx<'_>,
    batch: &[Window],
    drop_seed: u64,
    works: &mut [Work],
    total: &mut Work,
) -> f64 {
    let per_chunk = batch.len().div_ceil(CHUNKS).max(1);
    works
        .par_iter_mut()
        .zip(batch.par_chunks(per_chunk))
        .enumerate()
        .for_each(|(ci, (work, chunk))| {
            work.begin(ctx);
            let mut drop = Dropout::new(ctx.cfg.dropout, drop_seed ^ ci as u64);
            for &w in chunk {
                batch::run_window(ctx, w, &mut drop, work);
            }
        });
    total.begin(ctx);
    let from = item_params_len(&ctx.model.config);
    let used = batch.len().div_ceil(per_chunk);
    for w in &mut works[..used] {
        batch::merge_into(total, w, from);
    }
    batch::route_shared(ctx, total);
    total.loss
}

/// Parameters of the item encoder (the start of the flat vector): their gradients come
/// only from [`item_encoder_backward`], once per batch.
fn item_params_len(c: &crate::config::ModelConfig) -> usize {
    param_table(c)
        .iter()
        .take_while(|s| s.name.starts_with("item."))
        .map(|s| s.len())
        .sum()
}

/// Writes the training curves (loss and validation NDCG@10 per epoch) as an SVG chart.
pub fn write_curve_svg(report: &TrainReport, out: &mut dyn Write) -> std::io::Result<()> {
    let c = CurveChart::new(&report.epochs, &report.refit);
    c.write_frame(out)?;
    c.write_series(out, &report.epochs)?;
    c.write_labels(out, &report.epochs)?;
    if report.best_epoch > 0 {
        c.write_best_marker(out, report.best_epoch)?;
    }
    c.write_refit(out, report)?;
    writeln!(out, "</svg>")
}

/// Geometry of the training-curve chart: a `w × h` canvas with `pad` margins; epochs
/// spread evenly on x (the refit's epochs after the validated ones), the loss scaled to
/// its min–max range on the left axis, NDCG@10 from 0 to 1.1 × its maximum on the right
/// axis.
struct CurveChart {
    w: f64,
    h: f64,
    pad: f64,
    /// Points on the x axis (at least 2).
    n: f64,
    lmin: f64,
    lmax: f64,
    vmax: f64,
}

impl CurveChart {
    fn new(e: &[EpochReport], refit: &[RefitEpoch]) -> CurveChart {
        let losses = e.iter().map(|r| r.loss).chain(refit.iter().map(|r| r.loss));
        let (lmin, lmax) = losses.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), l| {
            (a.min(l), b.max(l))
        });
        CurveChart {
            w: 720.0,
            h: 360.0,
            pad: 56.0,
            n: (e.len() + refit.len()).max(2) as f64,
            lmin,
            lmax,
            vmax: e.iter().map(|r| r.val_ndcg10).fold(0.0, f64::max).max(1e-9),
        }
    }

    /// x of the `i`-th epoch (0-based).
    fn x(&self, i: usize) -> f64 {
        self.pad + (self.w - 2.0 * self.pad) * (i as f64) / (self.n - 1.0)
    }

    /// y of a loss value (mid-height when every loss is the same).
    fn loss_y(&self, l: f64) -> f64 {
        let (lmin, lmax) = (self.lmin, self.lmax);
        self.h
            - self.pad
            - (self.h - 2.0 * self.pad)
                * if lmax > lmin {
                    (l - lmin) / (lmax - lmin)
                } else {
                    0.5
                }
    }

    /// y of an NDCG@10 value.
    fn val_y(&self, v: f64) -> f64 {
        self.h - self.pad - (self.h - 2.0 * self.pad) * (v / (self.vmax * 1.1))
    }

    /// The opening tag, background, title and the three axis lines.
    fn write_frame(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let (w, h, pad) = (self.w, self.h, self.pad);
        writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
        )?;
        writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#)?;
        writeln!(
            out,
            r#"<text x="{}" y="20" text-anchor="middle" font-size="14">vitrine training: loss (blue, left) and validation NDCG@10 (orange, right) per epoch</text>"#,
            w / 2.0
        )?;
        writeln!(
            out,
            r#"<line x1="{pad}" y1="{}" x2="{}" y2="{}" stroke="black"/>"#,
            h - pad,
            w - pad,
            h - pad
        )?;
        writeln!(
            out,
            r#"<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{}" stroke="black"/>"#,
            h - pad
        )?;
        writeln!(
            out,
            r#"<line x1="{}" y1="{pad}" x2="{}" y2="{}" stroke="black"/>"#,
            w - pad,
            w - pad,
            h - pad
        )
    }

    /// The loss (blue) and validation NDCG@10 (orange) polylines.
    fn write_series(&self, out: &mut dyn Write, e: &[EpochReport]) -> std::io::Result<()> {
        let path = |y: &dyn Fn(&EpochReport) -> f64| {
            e.iter()
                .enumerate()
                .map(|(i, r)| format!("{:.1},{:.1}", self.x(i), y(r)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        writeln!(
            out,
            r##"<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{}"/>"##,
            path(&|r| self.loss_y(r.loss))
        )?;
        writeln!(
            out,
            r##"<polyline fill="none" stroke="#ff7f0e" stroke-width="2" points="{}"/>"##,
            path(&|r| self.val_y(r.val_ndcg10))
        )
    }

    /// Epoch numbers under the x axis, the axis title and both y axes' bounds.
    fn write_labels(&self, out: &mut dyn Write, e: &[EpochReport]) -> std::io::Result<()> {
        let (w, h, pad) = (self.w, self.h, self.pad);
        let (lmin, lmax, vmax) = (self.lmin, self.lmax, self.vmax);
        for (i, r) in e.iter().enumerate() {
            writeln!(
                out,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                self.x(i),
                h - pad + 16.0,
                r.epoch
            )?;
        }
        writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">epoch</text>"#,
            w / 2.0,
            h - 12.0
        )?;
        writeln!(
            out,
            r##"<text x="8" y="{}" fill="#1f77b4">{lmax:.3}</text><text x="8" y="{}" fill="#1f77b4">{lmin:.3}</text>"##,
            pad,
            h - pad
        )?;
        writeln!(
            out,
            r##"<text x="{}" y="{}" fill="#ff7f0e">{:.4}</text><text x="{}" y="{}" fill="#ff7f0e">0</text>"##,
            w - pad + 4.0,
            self.val_y(vmax),
            vmax,
            w - pad + 4.0,
            h - pad
        )
    }

    /// The refit's epochs (none: nothing written) after the validated ones: their loss
    /// as circles on a dashed blue line from the chosen epoch's loss, each labelled
    /// `R` and its epoch number under the axis, and a note of what `R` means.
    fn write_refit(&self, out: &mut dyn Write, report: &TrainReport) -> std::io::Result<()> {
        let refit = &report.refit;
        if refit.is_empty() {
            return Ok(());
        }
        let (h, pad) = (self.h, self.pad);
        let after = report.epochs.len();
        let mut points: Vec<String> = Vec::new();
        if let Some(best) = report.best_epoch.checked_sub(1) {
            if let Some(r) = report.epochs.get(best) {
                points.push(format!("{:.1},{:.1}", self.x(best), self.loss_y(r.loss)));
            }
        }
        for (i, r) in refit.iter().enumerate() {
            let (x, y) = (self.x(after + i), self.loss_y(r.loss));
            points.push(format!("{x:.1},{y:.1}"));
            writeln!(
                out,
                r##"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="white" stroke="#1f77b4" stroke-width="2"/><text x="{x:.1}" y="{}" text-anchor="middle" fill="#1f77b4">R{}</text>"##,
                h - pad + 16.0,
                r.epoch
            )?;
        }
        writeln!(
            out,
            r##"<polyline fill="none" stroke="#1f77b4" stroke-width="1" stroke-dasharray="4 3" points="{}"/>"##,
            points.join(" ")
        )?;
        // The note goes under the title: the bottom margin holds the epochs' labels.
        writeln!(
            out,
            r##"<text x="{}" y="36" text-anchor="middle" fill="#1f77b4">R: the refit from the chosen epoch, with the validation targets (its loss; no validation)</text>"##,
            self.w / 2.0
        )
    }

    /// A dashed vertical line at the best epoch (1-based), labelled "best".
    fn write_best_marker(&self, out: &mut dyn Write, best_epoch: usize) -> std::io::Result<()> {
        let (h, pad) = (self.h, self.pad);
        let bx = self.x(best_epoch - 1);
        writeln!(
            out,
            r#"<line x1="{bx:.1}" y1="{pad}" x2="{bx:.1}" y2="{}" stroke="gray" stroke-dasharray="4 3"/><text x="{bx:.1}" y="{}" text-anchor="middle" fill="gray">best</text>"#,
            h - pad,
            pad - 6.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn report(losses: &[(f64, f64)], best_epoch: usize) -> TrainReport {
        TrainReport {
            epochs: losses
                .iter()
                .enumerate()
                .map(|(i, &(loss, val))| EpochReport {
                    epoch: i + 1,
                    loss,
                    val_ndcg10: val,
                    seconds: 1.0,
                    examples: 10,
                })
                .collect(),
            best_epoch,
            best_val_ndcg10: 0.0,
            examples_per_sec: 0.0,
            cold_items: 0,
            trained_kinds: Vec::new(),
            refit: Vec::new(),
        }
    }

    /// The refit's epochs come after the validated ones, joined to the chosen epoch's
    /// loss, on a loss scale that holds them; nothing of the sort without a refit.
    #[test]
    fn curve_svg_shows_the_refit_epochs() {
        let mut r = report(&[(7.5, 0.10), (6.25, 0.18), (6.0, 0.21), (5.9, 0.2)], 3);
        let text = |r: &TrainReport| {
            let mut out = Vec::new();
            write_curve_svg(r, &mut out).expect("writes to a Vec");
            String::from_utf8(out).expect("UTF-8")
        };
        assert!(!text(&r).contains("<circle"));
        r.refit = vec![RefitEpoch {
            epoch: 4,
            loss: 5.0,
            seconds: 1.0,
            examples: 12,
        }];
        let svg = text(&r);
        assert_eq!(svg.matches("<circle").count(), 1, "{svg}");
        // Five points on x: the refit's is the last (x = w − pad), at the bottom of the
        // loss axis (its loss is the lowest, y = h − pad), labelled R4.
        assert!(svg.contains(r#"<circle cx="664.0" cy="304.0""#), "{svg}");
        assert!(svg.contains(">R4</text>"), "{svg}");
        // The chosen epoch (3 of 5 points) starts the dashed line.
        let third = 56.0 + 608.0 * 2.0 / 4.0;
        assert!(
            svg.contains(&format!(r#"stroke-dasharray="4 3" points="{third:.1},"#)),
            "{svg}"
        );
        assert!(
            svg.contains(">5.000</text>"),
            "loss axis down to the refit's: {svg}"
        );
    }

    fn svg_sha(r: &TrainReport) -> String {
        let mut out = Vec::new();
        write_curve_svg(r, &mut out).expect("writes to a Vec");
        crate::format::to_hex(&Sha256::digest(&out))
    }

    /// The chart's bytes are those of the writer before it was split into parts.
    #[test]
    fn curve_svg_bytes_are_unchanged() {
        let r = report(&[(7.5, 0.10), (6.25, 0.18), (6.0, 0.21), (5.9, 0.2)], 3);
        let flat = report(&[(3.0, 0.0)], 0);
        let got = [svg_sha(&r), svg_sha(&flat), svg_sha(&report(&[], 0))];
        assert_eq!(
            got,
            [
                "024e6b4ea60d497cd79f3fdca1df8c803abbaf718b79b85dbc698a68084a68ec",
                "be372a723b5f5ffa4d3a6d2fbe727c77e41677437da2ae0b4ca1dd1d400fb60f",
                "32491feb647cd20992502ed9f6820d68c70dd911d898162f1ce1dd8337609492",
            ]
        );
    }
}
