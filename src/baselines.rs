//! Baseline rankers the model is compared against, each tuned on the validation cases so
//! the comparison is against their best, not their defaults. Native only.
//!
//! - [`Popularity`]: interaction counts over the training sequences, optionally with an
//!   exponential time decay (half-life in days).
//! - [`ItemKnn`]: item-to-item similarities from co-occurrence within a window of the
//!   training sequences (separate "followed-by" and "preceded-by" counts, asymmetric
//!   cosine with shrinkage, top-N neighbours), scored over the last `L` history items
//!   with a recency decay, plus a repeat-item term and a small popularity prior.
//! - [`Bpr`]: BPR matrix factorisation (SGD, uniform negatives, L2, item biases,
//!   deterministic given a seed). A case of a user seen in training is scored with the
//!   user's learned factor; any other history is folded in as the mean of its items'
//!   factors.
//!
//! Each has a `tune_*` function: a grid or coordinate search on validation NDCG@10 under
//! a given protocol, returning the refit best model, its parameters and every trial.
//! Configurations are evaluated in parallel (rayon); results do not depend on the
//! number of threads.
use std::fmt;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::eval::{evaluate, EvalCase, EvalOptions, MetricReport, Protocol, Ranker, SplitMix64};
use crate::history::HistoryEvent;

/// Validation NDCG@10 of `ranker` under `protocol` (the tuning objective).
fn valid_ndcg10(
    ranker: &dyn Ranker,
    valid: &[EvalCase],
    n_items: usize,
    protocol: Protocol,
) -> f64 {
    let opts = EvalOptions {
        ks: vec![10],
        ..EvalOptions::default()
    };
    evaluate(ranker, valid, n_items, protocol, &opts)
        .get("NDCG@10")
        .unwrap_or(0.0)
}

/// Result of a `tune_*` function.
#[derive(Debug, Clone)]
pub struct Tuned<R, P> {
    /// The best ranker, fitted with `params`.
    pub ranker: R,
    /// The parameters chosen.
    pub params: P,
    /// Its validation NDCG@10 under the tuning protocol.
    pub valid_ndcg10: f64,
    /// Every configuration tried (description, validation NDCG@10), in trial order.
    pub trials: Vec<(String, f64)>,
}

// ---------------------------------------------------------------------------------------
// Popularity
// ---------------------------------------------------------------------------------------

/// Most-popular ranker: each item's (optionally time-decayed) interaction count in the
/// training sequences. The same ranking for everyone.
#[derive(Debug, Clone, PartialEq)]
pub struct Popularity {
    scores: Vec<f32>,
    half_life_days: Option<f64>,
}

impl Popularity {
    /// Counts the items of `train`. With `half_life_days`, an event `Δ` days older than
    /// the last training event weighs `2^(−Δ / half_life)`. Items outside `0..n_items`
    /// are ignored; a non-positive or non-finite half-life means no decay.
    pub fn fit(
        train: &[Vec<HistoryEvent>],
        n_items: usize,
        half_life_days: Option<f64>,
    ) -> Popularity {
        let half_life_days = half_life_days.filter(|h| h.is_finite() && *h > 0.0);
        let t_ref = train
            .iter()
            .flatten()
            .map(|e| e.at)
            .filter(|t| t.is_finite())
            .fold(f64::NEG_INFINITY, f64::max);
        let mut acc = vec![0.0f64; n_items];
        for e in train.iter().flatten() {
            if let Some(a) = acc.get_mut(e.item as usize) {
                *a += match half_life_days {
                    Some(h) if e.at.is_finite() => (-(t_ref - e.at) / (h * 86_400.0)).exp2(),
                    _ => 1.0,
                };
            }
        }
        let max = acc.iter().cloned().fold(0.0f64, f64::max);
        let scores = acc
            .iter()
            .map(|&a| if max > 0.0 { (a / max) as f32 } else { 0.0 })
            .collect();
        Popularity {
            scores,
            half_life_days,
        }
    }

    /// The half-life used, if any.
    pub fn half_life_days(&self) -> Option<f64> {
        self.half_life_days
    }

    /// Normalised scores (the largest is 1).
    pub fn scores(&self) -> &[f32] {
        &self.scores
    }
}

impl Ranker for Popularity {
    fn name(&self) -> String {
        "popularity".to_string()
    }

    fn score_all(&self, _history: &[HistoryEvent], _now: f64, out: &mut [f32]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.scores.get(i).copied().unwrap_or(0.0);
        }
    }
}

/// Half-lives (days) tried by [`tune_popularity`]; `None` is no decay.
pub const POPULARITY_HALF_LIVES: [Option<f64>; 7] = [
    None,
    Some(3.0),
    Some(7.0),
    Some(14.0),
    Some(30.0),
    Some(90.0),
    Some(180.0),
];

/// Chooses the half-life (including none) with the best validation NDCG@10.
pub fn tune_popularity(
    train: &[Vec<HistoryEvent>],
    valid: &[EvalCase],
    n_items: usize,
    protocol: Protocol,
) -> Tuned<Popularity, Option<f64>> {
    let trials: Vec<(Option<f64>, f64)> = POPULARITY_HALF_LIVES
        .par_iter()
        .map(|&h| {
            let p = Popularity::fit(train, n_items, h);
            (h, valid_ndcg10(&p, valid, n_items, protocol))
        })
        .collect();
    let (best_h, best) =
        trials.iter().cloned().fold(
            (None, f64::NEG_INFINITY),
            |acc, t| if t.1 > acc.1 { t } else { acc },
        );
    Tuned {
        ranker: Popularity::fit(train, n_items, best_h),
        params: best_h,
        valid_ndcg10: best,
        trials: trials
            .iter()
            .map(|(h, v)| (format!("half_life_days={h:?}"), *v))
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------
// Item kNN
// ---------------------------------------------------------------------------------------

/// Parameters of [`ItemKnn`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KnnParams {
    /// Two events co-occur when at most this many positions apart in a training sequence.
    pub window: usize,
    /// Weight of "b came before a" relative to "b followed a" (1 = symmetric).
    pub backward: f32,
    /// Asymmetric cosine exponent: `sim(a, b) = c(a, b) / (n_a^α n_b^(1−α) + shrink)`.
    pub alpha: f32,
    /// Shrinkage of the similarity's denominator (damps rare items).
    pub shrink: f32,
    /// Neighbours kept per item.
    pub max_neighbors: usize,
    /// Number of most recent history events that vote.
    pub last_l: usize,
    /// Weight of the `l`-th most recent event is `decay^l`.
    pub decay: f32,
    /// Weight of an item already in the history (repeat purchases), per vote.
    pub self_weight: f32,
    /// Weight of the normalised popularity prior.
    pub pop_weight: f32,
}

impl Default for KnnParams {
    fn default() -> Self {
        KnnParams {
            window: 10,
            backward: 1.0,
            alpha: 0.5,
            shrink: 10.0,
            max_neighbors: 200,
            last_l: 20,
            decay: 0.9,
            self_weight: 0.0,
            pop_weight: 0.0,
        }
    }
}

impl fmt::Display for KnnParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "window={} backward={} alpha={} shrink={} max_neighbors={} last_l={} decay={} self_weight={} pop_weight={}",
            self.window,
            self.backward,
            self.alpha,
            self.shrink,
            self.max_neighbors,
            self.last_l,
            self.decay,
            self.self_weight,
            self.pop_weight
        )
    }
}

/// Raw co-occurrence counts of the training sequences at one window.
#[derive(Debug, Clone)]
pub struct CoCounts {
    window: usize,
    /// Per item `a`: `(b, followed_by, preceded_by)` counts, `b` ascending, `b ≠ a`.
    rows: Vec<Vec<(u32, f32, f32)>>,
    /// Occurrences of each item.
    counts: Vec<f32>,
}

impl CoCounts {
    /// Counts, for every pair of distinct items, how often `b` follows (and precedes) `a`
    /// within `window` positions in the training sequences. Items outside `0..n_items`
    /// are ignored. Parallel over items.
    pub fn build(train: &[Vec<HistoryEvent>], n_items: usize, window: usize) -> CoCounts {
        let mut counts = vec![0.0f32; n_items];
        let mut occ: Vec<Vec<(u32, u32)>> = vec![Vec::new(); n_items];
        for (s, seq) in train.iter().enumerate() {
            for (p, e) in seq.iter().enumerate() {
                if let Some(o) = occ.get_mut(e.item as usize) {
                    o.push((s as u32, p as u32));
                    counts[e.item as usize] += 1.0;
                }
            }
        }
        let rows = (0..n_items)
            .into_par_iter()
            .map_init(
                || {
                    (
                        vec![0.0f32; n_items],
                        vec![0.0f32; n_items],
                        Vec::<u32>::new(),
                    )
                },
                |(fwd, bwd, touched), a| {
                    for &(s, p) in &occ[a] {
                        let seq = &train[s as usize];
                        let p = p as usize;
                        let lo = p.saturating_sub(window);
                        let hi = (p + window).min(seq.len() - 1);
                        for (q, e) in seq.iter().enumerate().take(hi + 1).skip(lo) {
                            let b = e.item as usize;
                            if b == a || b >= n_items || q == p {
                                continue;
                            }
                            if fwd[b] == 0.0 && bwd[b] == 0.0 {
                                touched.push(b as u32);
                            }
                            if q > p {
                                fwd[b] += 1.0;
                            } else {
                                bwd[b] += 1.0;
                            }
                        }
                    }
                    touched.sort_unstable();
                    let row: Vec<(u32, f32, f32)> = touched
                        .iter()
                        .map(|&b| (b, fwd[b as usize], bwd[b as usize]))
                        .collect();
                    for &b in touched.iter() {
                        fwd[b as usize] = 0.0;
                        bwd[b as usize] = 0.0;
                    }
                    touched.clear();
                    row
                },
            )
            .collect();
        CoCounts {
            window,
            rows,
            counts,
        }
    }

    /// The window the counts were built with.
    pub fn window(&self) -> usize {
        self.window
    }
}

/// Item-based collaborative filtering over co-occurrence in the training sequences.
#[derive(Debug, Clone)]
pub struct ItemKnn {
    params: KnnParams,
    /// Per item: `(neighbour, similarity)`, best first.
    neighbors: Vec<Vec<(u32, f32)>>,
    /// Popularity normalised to a maximum of 1.
    pop: Vec<f32>,
}

impl ItemKnn {
    /// Fits the ranker: counts co-occurrences at `params.window`, then normalises.
    pub fn fit(train: &[Vec<HistoryEvent>], n_items: usize, params: KnnParams) -> ItemKnn {
        let counts = CoCounts::build(train, n_items, params.window);
        ItemKnn::from_counts(&counts, params)
    }

    /// Normalises precomputed counts with `params` (its `window` is replaced by the
    /// counts' window).
    pub fn from_counts(counts: &CoCounts, mut params: KnnParams) -> ItemKnn {
        params.window = counts.window;
        let n = counts.counts.len();
        let alpha = params.alpha.clamp(0.0, 1.0);
        let neighbors = counts
            .rows
            .par_iter()
            .enumerate()
            .map(|(a, row)| {
                let na = counts.counts[a].max(1.0).powf(alpha);
                let mut sims: Vec<(u32, f32)> = row
                    .iter()
                    .map(|&(b, f, bw)| {
                        let nb = counts.counts[b as usize].max(1.0).powf(1.0 - alpha);
                        (
                            b,
                            (f + params.backward * bw) / (na * nb + params.shrink.max(0.0)),
                        )
                    })
                    .filter(|&(_, s)| s > 0.0 && s.is_finite())
                    .collect();
                let keep = params.max_neighbors.min(sims.len());
                let cmp = |x: &(u32, f32), y: &(u32, f32)| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0));
                if keep < sims.len() {
                    if keep == 0 {
                        sims.clear();
                    } else {
                        sims.select_nth_unstable_by(keep - 1, cmp);
                        sims.truncate(keep);
                    }
                }
                sims.sort_by(cmp);
                sims
            })
            .collect();
        let max = counts.counts.iter().cloned().fold(0.0f32, f32::max);
        let pop = (0..n)
            .map(|i| {
                if max > 0.0 {
                    counts.counts[i] / max
                } else {
                    0.0
                }
            })
            .collect();
        ItemKnn {
            params,
            neighbors,
            pop,
        }
    }

    /// The parameters.
    pub fn params(&self) -> &KnnParams {
        &self.params
    }

    /// The stored neighbours of `item` with their similarities, best first.
    pub fn neighbors(&self, item: u32) -> &[(u32, f32)] {
        self.neighbors
            .get(item as usize)
            .map(|v| v.as_slice())
            .unwrap_or(&[])
    }
}

impl Ranker for ItemKnn {
    fn name(&self) -> String {
        "item-kNN".to_string()
    }

    fn score_all(&self, history: &[HistoryEvent], _now: f64, out: &mut [f32]) {
        let p = &self.params;
        for (i, o) in out.iter_mut().enumerate() {
            *o = p.pop_weight * self.pop.get(i).copied().unwrap_or(0.0);
        }
        let mut w = 1.0f32;
        let mut total = 0.0f32;
        let mut votes: Vec<(u32, f32)> = Vec::with_capacity(p.last_l.min(history.len()));
        for e in history.iter().rev().take(p.last_l) {
            votes.push((e.item, w));
            total += w;
            w *= p.decay;
        }
        if total <= 0.0 || !total.is_finite() {
            return;
        }
        for (item, w) in votes {
            let w = w / total;
            if let Some(o) = out.get_mut(item as usize) {
                *o += w * p.self_weight;
            }
            for &(b, s) in self.neighbors(item) {
                if let Some(o) = out.get_mut(b as usize) {
                    *o += w * s;
                }
            }
        }
    }
}

/// Sets one kNN parameter from a grid value.
type Setter = fn(&mut KnnParams, f32);

/// The grid of [`tune_knn`]: per parameter, in search order, the values tried.
fn knn_grid() -> [(&'static str, &'static [f32], Setter); 9] {
    [
        ("window", &[2.0, 5.0, 10.0, 25.0, 50.0], |p, v| {
            p.window = v as usize
        }),
        ("last_l", &[1.0, 3.0, 10.0, 30.0, 100.0], |p, v| {
            p.last_l = v as usize
        }),
        ("decay", &[0.5, 0.7, 0.85, 0.95, 1.0], |p, v| p.decay = v),
        (
            "self_weight",
            &[0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 10.0],
            |p, v| p.self_weight = v,
        ),
        ("backward", &[0.0, 0.25, 0.5, 1.0], |p, v| p.backward = v),
        ("alpha", &[0.1, 0.3, 0.5, 0.7, 0.9], |p, v| p.alpha = v),
        ("shrink", &[0.0, 3.0, 10.0, 30.0, 100.0], |p, v| {
            p.shrink = v
        }),
        ("max_neighbors", &[50.0, 200.0, 1000.0], |p, v| {
            p.max_neighbors = v as usize
        }),
        (
            "pop_weight",
            &[0.0, 0.001, 0.003, 0.01, 0.03, 0.1],
            |p, v| p.pop_weight = v,
        ),
    ]
}

/// The state of [`tune_knn`]'s search: the best parameters so far, their counts and
/// score, and every trial.
struct KnnSearch<'a> {
    train: &'a [Vec<HistoryEvent>],
    valid: &'a [EvalCase],
    n_items: usize,
    protocol: Protocol,
    best: KnnParams,
    best_score: f64,
    counts: CoCounts,
    trials: Vec<(String, f64)>,
}

impl KnnSearch<'_> {
    /// Tries window sizes one at a time (each needs its own counts).
    fn try_windows(&mut self, candidates: Vec<KnnParams>) {
        for p in candidates {
            let c = CoCounts::build(self.train, self.n_items, p.window);
            let knn = ItemKnn::from_counts(&c, p);
            let s = valid_ndcg10(&knn, self.valid, self.n_items, self.protocol);
            self.trials.push((p.to_string(), s));
            if s > self.best_score {
                self.best_score = s;
                self.best = p;
                self.counts = c;
            }
        }
    }

    /// Tries parameters that share the current counts, in parallel (kept in order).
    fn try_with_counts(&mut self, candidates: Vec<KnnParams>) {
        let scored: Vec<(KnnParams, f64)> = candidates
            .par_iter()
            .map(|&p| {
                let knn = ItemKnn::from_counts(&self.counts, p);
                (
                    p,
                    valid_ndcg10(&knn, self.valid, self.n_items, self.protocol),
                )
            })
            .collect();
        for (p, s) in scored {
            self.trials.push((p.to_string(), s));
            if s > self.best_score {
                self.best_score = s;
                self.best = p;
            }
        }
    }
}

/// Coordinate search over the kNN parameters (two sweeps, one parameter at a time, each
/// over a small grid, [`knn_grid`]) on validation NDCG@10 under `protocol`.
pub fn tune_knn(
    train: &[Vec<HistoryEvent>],
    valid: &[EvalCase],
    n_items: usize,
    protocol: Protocol,
) -> Tuned<ItemKnn, KnnParams> {
    let best = KnnParams::default();
    let counts = CoCounts::build(train, n_items, best.window);
    let best_score = valid_ndcg10(
        &ItemKnn::from_counts(&counts, best),
        valid,
        n_items,
        protocol,
    );
    let mut search = KnnSearch {
        train,
        valid,
        n_items,
        protocol,
        best,
        best_score,
        counts,
        trials: vec![(best.to_string(), best_score)],
    };
    let grids = knn_grid();
    for _sweep in 0..2 {
        for (name, grid, set) in grids.iter() {
            let candidates: Vec<KnnParams> = grid
                .iter()
                .map(|&v| {
                    let mut p = search.best;
                    set(&mut p, v);
                    p
                })
                .filter(|p| *p != search.best)
                .collect();
            if *name == "window" {
                search.try_windows(candidates);
            } else {
                search.try_with_counts(candidates);
            }
        }
    }
    Tuned {
        ranker: ItemKnn::from_counts(&search.counts, search.best),
        params: search.best,
        valid_ndcg10: search.best_score,
        trials: search.trials,
    }
}

// ---------------------------------------------------------------------------------------
// BPR
// ---------------------------------------------------------------------------------------

/// Items [`Bpr::score_with`] scores at a time.
const SCORE_LANES: usize = 8;

/// Parameters of [`Bpr`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BprParams {
    /// Number of latent factors.
    pub factors: usize,
    /// SGD learning rate.
    pub lr: f32,
    /// L2 regularisation.
    pub reg: f32,
    /// Passes over the positive (user, item) pairs.
    pub epochs: usize,
    /// Seed of the initialisation and of the sampling.
    pub seed: u64,
}

impl Default for BprParams {
    fn default() -> Self {
        BprParams {
            factors: 64,
            lr: 0.05,
            reg: 0.005,
            epochs: 30,
            seed: 42,
        }
    }
}

impl fmt::Display for BprParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "factors={} lr={} reg={} epochs={} seed={}",
            self.factors, self.lr, self.reg, self.epochs, self.seed
        )
    }
}

/// BPR matrix factorisation: `score(u, i) = p_u · q_i + b_i`.
#[derive(Debug, Clone)]
pub struct Bpr {
    params: BprParams,
    n_items: usize,
    /// User factors `[n_users × k]`.
    p: Vec<f32>,
    /// Item factors `[n_items × k]`.
    q: Vec<f32>,
    /// Item biases.
    b: Vec<f32>,
    /// Whether each user had training positives (otherwise its factor is untrained).
    known: Vec<bool>,
    /// `q` of each full block of [`SCORE_LANES`] items, factor-major (`[f][lane]`), for
    /// [`Bpr::score_with`]; rebuilt by [`Bpr::refresh_blocks`] whenever `q` is handed out
    /// trained.
    q_blocks: Vec<f32>,
}

/// Training state of [`Bpr`] (positives per user and the sampler).
struct BprTrainer {
    pairs: Vec<(u32, u32)>,
    user_items: Vec<Vec<u32>>,
    rng: SplitMix64,
}

impl Bpr {
    /// Trains on the training sequences (user = sequence index), deterministic given
    /// `params.seed`. Single-threaded sequential SGD (no hogwild), so runs are
    /// reproducible; [`tune_bpr`] runs configurations in parallel instead.
    pub fn fit(train: &[Vec<HistoryEvent>], n_items: usize, params: BprParams) -> Bpr {
        let mut last = None;
        Bpr::fit_with_checkpoints(train, n_items, params, &[params.epochs], |_, m| {
            last = Some(m.clone())
        });
        last.unwrap_or_else(|| Bpr::init(train.len(), n_items, params))
    }

    fn init(n_users: usize, n_items: usize, params: BprParams) -> Bpr {
        let k = params.factors.max(1);
        let mut rng = SplitMix64::new(params.seed ^ 0xB9B9_0000_0000_0001);
        let scale = 0.1 / (k as f32).sqrt();
        let mut draw = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| (rng.next_f32() * 2.0 - 1.0) * scale)
                .collect()
        };
        let p = draw(n_users * k);
        let q = draw(n_items * k);
        Bpr {
            params: BprParams {
                factors: k,
                ..params
            },
            n_items,
            p,
            q,
            b: vec![0.0; n_items],
            known: vec![false; n_users],
            q_blocks: Vec::new(),
        }
        .with_blocks()
    }

    fn with_blocks(mut self) -> Bpr {
        self.refresh_blocks();
        self
    }

    /// Rebuilds `q_blocks` from `q`.
    fn refresh_blocks(&mut self) {
        let k = self.params.factors;
        let full = self.n_items / SCORE_LANES;
        self.q_blocks.clear();
        self.q_blocks.reserve(full * SCORE_LANES * k);
        for c in 0..full {
            let rows = &self.q[c * SCORE_LANES * k..(c + 1) * SCORE_LANES * k];
            for f in 0..k {
                self.q_blocks
                    .extend((0..SCORE_LANES).map(|l| rows[l * k + f]));
            }
        }
    }

    /// Trains for `max(checkpoints)` epochs, calling `at(epoch, &model)` after each
    /// epoch listed in `checkpoints` (the model's `epochs` parameter is set to it).
    pub fn fit_with_checkpoints(
        train: &[Vec<HistoryEvent>],
        n_items: usize,
        params: BprParams,
        checkpoints: &[usize],
        mut at: impl FnMut(usize, &Bpr),
    ) {
        let mut m = Bpr::init(train.len(), n_items, params);
        let mut user_items: Vec<Vec<u32>> = train
            .iter()
            .map(|s| {
                let mut v: Vec<u32> = s
                    .iter()
                    .map(|e| e.item)
                    .filter(|&i| (i as usize) < n_items)
                    .collect();
                v.sort_unstable();
                v.dedup();
                v
            })
            .collect();
        for (u, items) in user_items.iter().enumerate() {
            m.known[u] = !items.is_empty();
        }
        let pairs: Vec<(u32, u32)> = user_items
            .iter()
            .enumerate()
            .flat_map(|(u, items)| items.iter().map(move |&i| (u as u32, i)))
            .collect();
        let mut t = BprTrainer {
            pairs,
            user_items: std::mem::take(&mut user_items),
            rng: SplitMix64::new(params.seed ^ 0x5EED_0000_0000_0002),
        };
        let max_epochs = checkpoints.iter().copied().max().unwrap_or(0);
        if max_epochs == 0 && checkpoints.contains(&0) {
            at(0, &m);
        }
        for epoch in 1..=max_epochs {
            m.epoch(&mut t);
            if checkpoints.contains(&epoch) {
                m.params.epochs = epoch;
                m.refresh_blocks();
                at(epoch, &m);
            }
        }
    }

    fn epoch(&mut self, t: &mut BprTrainer) {
        let k = self.params.factors;
        let (lr, reg) = (self.params.lr, self.params.reg);
        let n_pairs = t.pairs.len();
        if n_pairs == 0 || self.n_items < 2 {
            return;
        }
        let mut pu = vec![0.0f32; k];
        for _ in 0..n_pairs {
            let (u, i) = t.pairs[t.rng.below(n_pairs as u64) as usize];
            let seen = &t.user_items[u as usize];
            if seen.len() >= self.n_items {
                continue;
            }
            let mut j = t.rng.below(self.n_items as u64) as u32;
            let mut tries = 0;
            while seen.binary_search(&j).is_ok() && tries < 20 {
                j = t.rng.below(self.n_items as u64) as u32;
                tries += 1;
            }
            if seen.binary_search(&j).is_ok() {
                continue;
            }
            let (u, i, j) = (u as usize, i as usize, j as usize);
            pu.copy_from_slice(&self.p[u * k..(u + 1) * k]);
            let mut x = self.b[i] - self.b[j];
            let (qi_row, qj_row) = (&self.q[i * k..(i + 1) * k], &self.q[j * k..(j + 1) * k]);
            for ((p, a), b) in pu.iter().zip(qi_row).zip(qj_row) {
                x += p * (a - b);
            }
            let g = 1.0 / (1.0 + x.exp()); // sigmoid(-x)
            #[allow(clippy::needless_range_loop)] // three rows of two matrices, one index
            for f in 0..k {
                let qi = self.q[i * k + f];
                let qj = self.q[j * k + f];
                self.p[u * k + f] += lr * (g * (qi - qj) - reg * pu[f]);
                self.q[i * k + f] += lr * (g * pu[f] - reg * qi);
                self.q[j * k + f] += lr * (-g * pu[f] - reg * qj);
            }
            self.b[i] += lr * (g - reg * self.b[i]);
            self.b[j] += lr * (-g - reg * self.b[j]);
        }
    }

    /// The parameters.
    pub fn params(&self) -> &BprParams {
        &self.params
    }

    /// `out[i] = b[i] + Σ_f u[f]·q[i][f]` (the sum in factor order from −0.0, the bits of
    /// `iter().sum::<f32>()`), −∞ past the catalog. Items go [`SCORE_LANES`] at a time
    /// from `q_blocks`, each with its own accumulator in the same order, so the sums run
    /// side by side in vector lanes instead of waiting on one add chain; the result is bit-identical to
    /// [`Bpr::score_one`], one item at a time.
    fn score_with(&self, u: &[f32], out: &mut [f32]) {
        let k = self.params.factors;
        let n = out.len().min(self.n_items);
        let (scored, rest) = out.split_at_mut(n);
        rest.fill(f32::NEG_INFINITY);
        let mut chunks = scored.chunks_exact_mut(SCORE_LANES);
        let blocks = self.q_blocks.chunks_exact(SCORE_LANES * k);
        for (c, (o, block)) in chunks.by_ref().zip(blocks).enumerate() {
            let i0 = c * SCORE_LANES;
            let mut acc = [-0.0f32; SCORE_LANES];
            for (&uf, q) in u.iter().zip(block.chunks_exact(SCORE_LANES)) {
                for (a, &qf) in acc.iter_mut().zip(q) {
                    *a += uf * qf;
                }
            }
            for (l, o) in o.iter_mut().enumerate() {
                *o = self.b[i0 + l] + acc[l];
            }
        }
        let done = n - chunks.into_remainder().len();
        for (i, o) in out[done..n].iter_mut().enumerate() {
            *o = self.score_one(u, done + i);
        }
    }

    /// One item's score: the reference of [`Bpr::score_with`].
    fn score_one(&self, u: &[f32], i: usize) -> f32 {
        let k = self.params.factors;
        let q = &self.q[i * k..(i + 1) * k];
        self.b[i] + u.iter().zip(q).map(|(a, b)| a * b).sum::<f32>()
    }

    /// Folding-in: the mean of the history items' factors.
    fn fold_in(&self, history: &[HistoryEvent]) -> Vec<f32> {
        let k = self.params.factors;
        let mut u = vec![0.0f32; k];
        let mut n = 0usize;
        for e in history {
            let i = e.item as usize;
            if i < self.n_items {
                for (a, b) in u.iter_mut().zip(&self.q[i * k..(i + 1) * k]) {
                    *a += b;
                }
                n += 1;
            }
        }
        if n > 0 {
            u.iter_mut().for_each(|a| *a /= n as f32);
        }
        u
    }
}

impl Ranker for Bpr {
    fn name(&self) -> String {
        "BPR-MF".to_string()
    }

    fn score_all(&self, history: &[HistoryEvent], _now: f64, out: &mut [f32]) {
        let u = self.fold_in(history);
        self.score_with(&u, out);
    }

    fn score_case(&self, case: &EvalCase, out: &mut [f32]) {
        let k = self.params.factors;
        if self.known.get(case.user).copied().unwrap_or(false) {
            let u = &self.p[case.user * k..(case.user + 1) * k];
            self.score_with(u, out);
        } else {
            self.score_all(&case.history, case.now, out);
        }
    }
}

/// Grid search over factors, learning rate and regularisation, with the number of
/// epochs chosen among checkpoints, on validation NDCG@10 under `protocol`.
/// Configurations train in parallel; each training is deterministic given `seed`.
pub fn tune_bpr(
    train: &[Vec<HistoryEvent>],
    valid: &[EvalCase],
    n_items: usize,
    protocol: Protocol,
    seed: u64,
) -> Tuned<Bpr, BprParams> {
    let mut grid = Vec::new();
    for &factors in &[32usize, 64] {
        for &lr in &[0.02f32, 0.05, 0.1] {
            for &reg in &[0.001f32, 0.005, 0.02] {
                grid.push(BprParams {
                    factors,
                    lr,
                    reg,
                    epochs: 0,
                    seed,
                });
            }
        }
    }
    tune_bpr_grid(train, valid, n_items, protocol, &grid, &[5, 10, 20, 40])
}

/// [`tune_bpr`] over an explicit grid (the `epochs` of each entry is ignored) and
/// epoch checkpoints.
pub fn tune_bpr_grid(
    train: &[Vec<HistoryEvent>],
    valid: &[EvalCase],
    n_items: usize,
    protocol: Protocol,
    grid: &[BprParams],
    checkpoints: &[usize],
) -> Tuned<Bpr, BprParams> {
    type Trials = Vec<(BprParams, f64)>;
    let per_config: Vec<(Trials, Option<(Bpr, f64)>)> = grid
        .par_iter()
        .map(|&params| {
            let mut trials = Vec::new();
            let mut best: Option<(Bpr, f64)> = None;
            Bpr::fit_with_checkpoints(train, n_items, params, checkpoints, |_, m| {
                let s = valid_ndcg10(m, valid, n_items, protocol);
                trials.push((*m.params(), s));
                if best.as_ref().is_none_or(|b| s > b.1) {
                    best = Some((m.clone(), s));
                }
            });
            (trials, best)
        })
        .collect();
    let mut trials = Vec::new();
    let mut best: Option<(Bpr, f64)> = None;
    for (t, b) in per_config {
        trials.extend(t.into_iter().map(|(p, s)| (p.to_string(), s)));
        if let Some((m, s)) = b {
            if best.as_ref().is_none_or(|bb| s > bb.1) {
                best = Some((m, s));
            }
        }
    }
    let (ranker, score) = best.unwrap_or_else(|| {
        let p = BprParams::default();
        (Bpr::init(train.len(), n_items, p), f64::NEG_INFINITY)
    });
    Tuned {
        params: *ranker.params(),
        ranker,
        valid_ndcg10: score,
        trials,
    }
}

/// Evaluates a baseline under several protocols at once (convenience for reports).
pub fn evaluate_all(
    ranker: &dyn Ranker,
    cases: &[EvalCase],
    n_items: usize,
    protocols: &[Protocol],
) -> Vec<MetricReport> {
    protocols
        .iter()
        .map(|&p| evaluate(ranker, cases, n_items, p, &EvalOptions::default()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The interleaved scorer against the one-item reference, bit for bit: catalogs
    /// that are and are not a multiple of the lane count, an output longer than the
    /// catalog, factor counts down to 1, and signed zeros in the factors.
    #[test]
    fn interleaved_scores_equal_the_one_item_reference_bit_for_bit() {
        for (n_items, factors) in [(1, 1), (7, 3), (8, 8), (37, 64), (64, 32)] {
            let mut m = Bpr::init(
                3,
                n_items,
                BprParams {
                    factors,
                    seed: n_items as u64,
                    ..BprParams::default()
                },
            );
            for (i, b) in m.b.iter_mut().enumerate() {
                *b = if i % 5 == 0 {
                    -0.0
                } else {
                    i as f32 * 0.37 - 2.0
                };
            }
            m.q[0] = -0.0;
            m.refresh_blocks();
            let u: Vec<f32> = (0..factors)
                .map(|f| {
                    if f == 0 {
                        -0.0
                    } else {
                        (f as f32 * 0.71).sin()
                    }
                })
                .collect();
            let mut out = vec![0.0f32; n_items + 3];
            m.score_with(&u, &mut out);
            for (i, got) in out[..n_items].iter().enumerate() {
                assert_eq!(
                    got.to_bits(),
                    m.score_one(&u, i).to_bits(),
                    "item {i} of {n_items}, {factors} factors"
                );
            }
            assert!(out[n_items..].iter().all(|&s| s == f32::NEG_INFINITY));
        }
    }
}
