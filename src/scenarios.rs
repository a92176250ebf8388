//! Scenario evaluation: how the model does on the shelves a storefront shows, beyond
//! next-item prediction ([`crate::eval`]). Three protocols, all on the leave-last-out
//! split (or `--split time`), deterministic under a seed; `vitrine scenario-eval` runs
//! them and writes `artifacts/scenarios.md`, `scenarios.json` and `diversity-curve.svg`
//! (`docs/scenarios.md` has the commands and the reading). Native only.
//!
//! # 1. Cold-start items ("new in" shelf)
//! - **Hold-out** ([`choose_held_out`]): `m = round(f · n)` of the `n` catalogue items
//!   (`f = 0.1`), a seeded partial Fisher–Yates shuffle (SplitMix64, [`SplitMix64::below`]).
//! - **Split** ([`cold_split`]): from the normal split, every event of a held-out item is
//!   removed from the training sequences and from every case's history. Cases whose
//!   history is then empty are dropped. Validation cases whose target is not held out
//!   (`valid_warm`) are for early stopping; validation cases whose target is held out
//!   (`valid_cold`) tune the rival only; test cases whose target is held out
//!   (`test_cold`) are the evaluation. The held-out items stay in the catalogue, so after
//!   training ([`crate::train::train`] zeroes the ID row of every item without a training
//!   event) their vectors are content-only: category, price, title tokens.
//! - **Candidates**: the held-out items (the shelf of new items); the target is one of them.
//! - **Tie rule**: the target's rank `R` is uniform over the order of the candidates tied
//!   with it, and the metrics are exact expectations ([`expected_at`]): with `a` candidates
//!   scoring strictly above the target and `t` tied with it,
//!   `E[NDCG@K] = 1/(t+1) · Σ_{r=a+1}^{a+t+1} [r ≤ K] / log2(r + 1)`,
//!   `E[HR@K] = #{r ∈ a+1..=a+t+1 : r ≤ K} / (t + 1)`, `E[RR] = 1/(t+1) · Σ 1/r`.
//!   With no ties this is the usual rank. A constant scorer is then exactly **random**:
//!   `E[NDCG@K] = (1/m) Σ_{r=1}^{min(K,m)} 1/log2(r+1)`. (The project's pessimistic rule,
//!   [`crate::eval`], would rank a rival that ties within a category last among its ties.)
//! - **Rival** ([`CategoryShare`], "popularity within category"): cold items have no
//!   interactions, so the strongest simple signal is how much of the shopper's history
//!   lies in the item's category. With history events `h_0 … h_{n−1}` (oldest first),
//!   weights `w_j = λ^{n−1−j}` and `W = Σ w_j`:
//!   ```text
//!   share(c)   = Σ_{j : cat(h_j) = c} w_j / W
//!   a(t)       = Σ_{j : t ∈ T(h_j)} w_j / W                  (T = hashed title tokens)
//!   tok(i)     = Σ_{t ∈ T_i} u(t)·a(t) / Σ_{t ∈ T_i} u(t)     (u = 1, or u = idf)
//!   idf(t)     = ln(n / df(t))   (df: catalogue items whose title has t)
//!   price(i)   = −|p_i − p̄|  (p̄ = w-weighted mean normalised price of the priced history;
//!                             −0.5 when either is unknown)
//!   score(i)   = share(cat i) + 10⁻⁶ · pop(cat i) + β · tok(i) + γ · price(i)
//!   ```
//!   `pop(c)` is category `c`'s share of all training events (ties between categories the
//!   shopper has not touched go to the popular one). Two rows are reported: the plain
//!   rule (`λ = 1, β = γ = 0`: share, ties by category popularity) and the best of
//!   [`RIVAL_GRID`] (`λ, β, γ` and `u`) on `valid_cold` NDCG@10
//!   ([`tune_category_share`]).
//!
//! # 2. Cross-category ([`shelf_report`])
//! For each test case, `H` = the set of categories of its whole history. For a result
//! list `L` (top-`K`, `K = 10`) of the real [`Recommender`] pipeline:
//! ```text
//! outside share   = mean over cases with L ≠ ∅ of |{i ∈ L : cat(i) ∉ H}| / |L|
//! outside cases   = #{cases : cat(target) ∉ H}
//! outside hits    = #{cases : cat(target) ∉ H and target ∈ L}
//! outside HR@K    = outside hits / outside cases
//! ```
//! for the default request ("for you") and for the "other departments" request,
//! `filter.excludeCategories` = the names of `H` (its outside share is 1 by construction).
//!
//! # 3. Diversity curve
//! The same pipeline with `diversity` δ ∈ [`DIVERSITY_GRID`] (the MMR-style re-rank of
//! [`crate::recommend::rank`]), with `excludeSeen` true (the storefront default) and false
//! (comparable to `vitrine eval`'s full ranking). Per δ: HR@K and NDCG@K of the target's
//! position `p` in `L` (`1/log2(p + 1)`; lists have no ties), catalogue
//! **coverage@K** = `|∪ L| / n`, and the **intra-list category count** = mean over lists
//! of the number of distinct categories in `L`. [`write_diversity_svg`] draws it.
use std::collections::HashSet;
use std::io::Write;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::eval::{EvalCase, Ranker, Split};
use crate::features::ItemFeatureTable;
use crate::history::HistoryEvent;
use crate::recommend::{score, Filter, RecommendError, RecommendOptions, Recommender};
use crate::rng::SplitMix64;

/// Share of the catalogue held out as cold items by default.
pub const HOLDOUT_FRACTION: f64 = 0.1;
/// The cutoff `K` of every scenario metric.
pub const CUTOFF: usize = 10;
/// The diversity values of the curve.
pub const DIVERSITY_GRID: [f32; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];
/// Weight of the category popularity in [`CategoryShare`]: a tie-break.
pub const POP_TIE: f64 = 1e-6;
/// The settings of the rival tried by [`tune_category_share`]: every combination.
#[derive(Debug, Clone, Copy)]
pub struct RivalGrid {
    /// Recency decays `λ`.
    pub decay: &'static [f64],
    /// Title-token weights `β`.
    pub tokens: &'static [f64],
    /// Price weights `γ`.
    pub price: &'static [f64],
    /// Token weighting `u`: 1 (false) or idf (true).
    pub idf: &'static [bool],
}

impl RivalGrid {
    /// Number of combinations.
    pub fn len(&self) -> usize {
        self.decay.len() * self.tokens.len() * self.price.len() * self.idf.len()
    }

    /// True when some list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The grid of [`tune_category_share`] (wide enough that the chosen setting on Online
/// Retail is inside it, not on its edge).
pub const RIVAL_GRID: RivalGrid = RivalGrid {
    decay: &[1.0, 0.9, 0.7, 0.5, 0.3],
    tokens: &[0.0, 0.25, 1.0, 4.0, 16.0, 64.0],
    price: &[0.0, 0.5, 2.0, 8.0, 32.0],
    idf: &[false, true],
};

/// Called with `1` after each case (from worker threads), for a progress bar.
pub type Progress<'a> = Option<&'a (dyn Fn(usize) + Sync)>;

// ---------------------------------------------------------------------------------------
// 1. Cold-start items
// ---------------------------------------------------------------------------------------

/// The `round(fraction · n_items)` held-out items (clamped to `0..=n_items`; a
/// non-finite or negative fraction holds out none), ascending. Deterministic in `seed`:
/// the first `m` places of a partial Fisher–Yates shuffle of `0..n_items`.
pub fn choose_held_out(n_items: usize, fraction: f64, seed: u64) -> Vec<u32> {
    let n = n_items.min(u32::MAX as usize);
    let m = if fraction.is_finite() && fraction > 0.0 {
        ((n as f64 * fraction.min(1.0)).round() as usize).min(n)
    } else {
        0
    };
    let mut idx: Vec<u32> = (0..n as u32).collect();
    let mut rng = SplitMix64::new(seed ^ 0x5CE9_A710_C01D_0001);
    for i in 0..m {
        let j = i + rng.below((n - i) as u64) as usize;
        idx.swap(i, j);
    }
    idx.truncate(m);
    idx.sort_unstable();
    idx
}

/// The split with the held-out items made cold (see the module docs, part 1).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColdSplit {
    /// The held-out items, ascending (only those inside the catalogue).
    pub held_out: Vec<u32>,
    /// Training sequences without any event of a held-out item (indexed like the input).
    pub train: Vec<Vec<HistoryEvent>>,
    /// Validation cases whose target is not held out (early stopping).
    pub valid_warm: Vec<EvalCase>,
    /// Validation cases whose target is held out (tuning the rival).
    pub valid_cold: Vec<EvalCase>,
    /// Test cases whose target is held out (the evaluation).
    pub test_cold: Vec<EvalCase>,
    /// Training events removed.
    pub removed_train_events: usize,
    /// Validation and test cases dropped because their history had only held-out items.
    pub dropped_empty: usize,
}

/// Builds the [`ColdSplit`] of `split` for the `held_out` items of a catalogue of
/// `n_items` (indices outside it are ignored).
pub fn cold_split(split: &Split, held_out: &[u32], n_items: usize) -> ColdSplit {
    let mut is_out = vec![false; n_items];
    for &i in held_out {
        if let Some(b) = is_out.get_mut(i as usize) {
            *b = true;
        }
    }
    let out = |item: u32| is_out.get(item as usize).copied().unwrap_or(false);
    let keep = |seq: &[HistoryEvent]| -> Vec<HistoryEvent> {
        seq.iter().filter(|e| !out(e.item)).copied().collect()
    };
    let mut cs = ColdSplit {
        held_out: (0..n_items as u32).filter(|&i| out(i)).collect(),
        ..ColdSplit::default()
    };
    for seq in &split.train {
        let kept = keep(seq);
        cs.removed_train_events += seq.len() - kept.len();
        cs.train.push(kept);
    }
    let mut filtered = |c: &EvalCase| -> Option<EvalCase> {
        let history = keep(&c.history);
        if history.is_empty() {
            cs.dropped_empty += 1;
            return None;
        }
        Some(EvalCase {
            history,
            ..c.clone()
        })
    };
    let (mut valid_warm, mut valid_cold, mut test_cold) = (Vec::new(), Vec::new(), Vec::new());
    for c in &split.valid {
        if let Some(c) = filtered(c) {
            if out(c.target) {
                valid_cold.push(c);
            } else {
                valid_warm.push(c);
            }
        }
    }
    for c in split.test.iter().filter(|c| out(c.target)) {
        test_cold.extend(filtered(c));
    }
    cs.valid_warm = valid_warm;
    cs.valid_cold = valid_cold;
    cs.test_cold = test_cold;
    cs
}

/// Where a target lands among the candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Candidates scoring strictly higher than the target.
    pub above: usize,
    /// Candidates (the target excluded) scoring the same as the target.
    pub tied: usize,
}

fn key(s: f64) -> f64 {
    if s.is_nan() {
        f64::NEG_INFINITY
    } else {
        s
    }
}

/// The target's [`Placement`] among `candidates` (`scores[r]` is the score of
/// `candidates[r]`; the target's own entries are skipped, so a target missing from the
/// list is placed among them all the same). NaN counts as −∞.
pub fn place(candidates: &[u32], scores: &[f64], target: u32, target_score: f64) -> Placement {
    let t = key(target_score);
    let mut p = Placement { above: 0, tied: 0 };
    for (&c, &s) in candidates.iter().zip(scores) {
        if c == target {
            continue;
        }
        let s = key(s);
        if s > t {
            p.above += 1;
        } else if s == t {
            p.tied += 1;
        }
    }
    p
}

/// One case's metrics at a cutoff.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseMetrics {
    /// NDCG@K.
    pub ndcg: f64,
    /// HR@K.
    pub hr: f64,
    /// Reciprocal rank (no cutoff).
    pub rr: f64,
}

/// The expected metrics when the tied candidates are in uniformly random order (the
/// module docs' tie rule).
pub fn expected_at(p: Placement, k: usize) -> CaseMetrics {
    let ranks = p.above + 1..=p.above + p.tied + 1;
    let n = (p.tied + 1) as f64;
    let mut m = CaseMetrics::default();
    for r in ranks {
        if r <= k {
            m.ndcg += 1.0 / ((r + 1) as f64).log2();
            m.hr += 1.0;
        }
        m.rr += 1.0 / r as f64;
    }
    m.ndcg /= n;
    m.hr /= n;
    m.rr /= n;
    m
}

/// Scores a case's candidates (higher first). `out.len() == candidates.len()`.
pub trait CandidateScorer: Sync {
    /// Name in the tables.
    fn name(&self) -> String;
    /// Writes the score of `candidates[r]` into `out[r]` for `case`.
    fn score(&self, case: &EvalCase, candidates: &[u32], out: &mut [f64]);
}

/// A [`Ranker`] (the whole catalogue scored, the candidates read out) as a
/// [`CandidateScorer`].
pub struct RankerScorer<'a> {
    /// The ranker.
    pub ranker: &'a dyn Ranker,
    /// Its catalogue size.
    pub n_items: usize,
    /// Name in the tables.
    pub name: String,
}

impl CandidateScorer for RankerScorer<'_> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn score(&self, case: &EvalCase, candidates: &[u32], out: &mut [f64]) {
        let mut all = vec![f32::NEG_INFINITY; self.n_items];
        self.ranker.score_case(case, &mut all);
        for (o, &c) in out.iter_mut().zip(candidates) {
            *o = all.get(c as usize).map_or(f64::NEG_INFINITY, |&s| s as f64);
        }
    }
}

/// Every candidate scores the same: under the tie rule, the expectation of a uniformly
/// random order.
pub struct RandomOrder;

impl CandidateScorer for RandomOrder {
    fn name(&self) -> String {
        "random order (exact expectation)".into()
    }

    fn score(&self, _case: &EvalCase, _candidates: &[u32], out: &mut [f64]) {
        out.fill(0.0);
    }
}

/// Settings of [`CategoryShare`] (the module docs' `λ, β, γ`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CategoryShareParams {
    /// Recency decay `λ` of the history weights (1 = plain share).
    pub decay: f64,
    /// Weight `β` of the title-token affinity.
    pub tokens: f64,
    /// Weight `γ` of the price closeness.
    pub price: f64,
    /// Weigh title tokens by their idf (else all 1).
    pub idf: bool,
}

impl CategoryShareParams {
    /// The plain rule: share of the history in the category, ties by its popularity.
    pub const PLAIN: CategoryShareParams = CategoryShareParams {
        decay: 1.0,
        tokens: 0.0,
        price: 0.0,
        idf: false,
    };
}

impl std::fmt::Display for CategoryShareParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "decay {}, tokens {}{}, price {}",
            self.decay,
            self.tokens,
            if self.idf { " (idf)" } else { "" },
            self.price
        )
    }
}

/// The "popularity within category" rival for items without interactions (module docs,
/// part 1).
pub struct CategoryShare<'a> {
    features: &'a ItemFeatureTable,
    /// Share of training events per category index.
    category_pop: Vec<f64>,
    /// Token weight `u(t)` (module docs); absent tokens weigh 0 under idf.
    token_weight: std::collections::HashMap<u32, f64>,
    /// Its settings.
    pub params: CategoryShareParams,
    name: String,
}

/// Each category's share of the events in `train` (categories from `features`; an
/// event of an item outside the table counts for no category).
pub fn category_popularity(train: &[Vec<HistoryEvent>], features: &ItemFeatureTable) -> Vec<f64> {
    let n_cat = features
        .category
        .iter()
        .max()
        .map_or(0, |&c| c as usize + 1);
    let mut pop = vec![0.0; n_cat];
    let mut total = 0.0;
    for e in train.iter().flatten() {
        if let Some(&c) = features.category.get(e.item as usize) {
            pop[c as usize] += 1.0;
            total += 1.0;
        }
    }
    if total > 0.0 {
        pop.iter_mut().for_each(|p| *p /= total);
    }
    pop
}

/// The hashed title tokens of item `i` (empty when the table has none or is malformed).
fn tokens_of(f: &ItemFeatureTable, i: usize) -> &[u32] {
    match (f.token_offsets.get(i), f.token_offsets.get(i + 1)) {
        (Some(&a), Some(&b)) => f.tokens.get(a as usize..b as usize).unwrap_or(&[]),
        _ => &[],
    }
}

/// Normalised price of item `i`, `None` when unknown.
fn price_of(f: &ItemFeatureTable, i: usize) -> Option<f64> {
    let missing = f.price_missing.get(i).copied().unwrap_or(1.0) > 0.5;
    (!missing)
        .then(|| f.price.get(i).map(|&p| p as f64))
        .flatten()
}

impl<'a> CategoryShare<'a> {
    /// The rival over `features` with per-category popularity `category_pop`
    /// ([`category_popularity`]).
    pub fn new(
        features: &'a ItemFeatureTable,
        category_pop: Vec<f64>,
        params: CategoryShareParams,
        name: impl Into<String>,
    ) -> CategoryShare<'a> {
        let mut df: std::collections::HashMap<u32, usize> = Default::default();
        for i in 0..features.category.len() {
            let mut toks = tokens_of(features, i).to_vec();
            toks.sort_unstable();
            toks.dedup();
            toks.into_iter()
                .for_each(|t| *df.entry(t).or_insert(0) += 1);
        }
        let n = features.category.len().max(1) as f64;
        let token_weight = (df.into_iter())
            .map(|(t, d)| (t, if params.idf { (n / d as f64).ln() } else { 1.0 }))
            .collect();
        CategoryShare {
            features,
            category_pop,
            token_weight,
            params,
            name: name.into(),
        }
    }
}

impl CandidateScorer for CategoryShare<'_> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn score(&self, case: &EvalCase, candidates: &[u32], out: &mut [f64]) {
        let f = self.features;
        let p = self.params;
        let n = case.history.len();
        let mut share = vec![0.0; self.category_pop.len()];
        let mut token_w: std::collections::HashMap<u32, f64> = Default::default();
        let (mut total, mut price_sum, mut price_w) = (0.0, 0.0, 0.0);
        for (j, e) in case.history.iter().enumerate() {
            let i = e.item as usize;
            let w = p.decay.powi((n - 1 - j) as i32);
            total += w;
            if let Some(s) = f.category.get(i).and_then(|&c| share.get_mut(c as usize)) {
                *s += w;
            }
            if p.tokens != 0.0 {
                for &t in tokens_of(f, i) {
                    *token_w.entry(t).or_insert(0.0) += w;
                }
            }
            if let Some(pr) = price_of(f, i) {
                price_sum += w * pr;
                price_w += w;
            }
        }
        let total = if total > 0.0 { total } else { 1.0 };
        let mean_price = (price_w > 0.0).then(|| price_sum / price_w);
        for (o, &c) in out.iter_mut().zip(candidates) {
            let i = c as usize;
            let cat = f.category.get(i).map(|&c| c as usize);
            let cat_share = cat.and_then(|c| share.get(c)).map_or(0.0, |s| s / total);
            let pop = cat.and_then(|c| self.category_pop.get(c)).copied();
            let mut s = cat_share + POP_TIE * pop.unwrap_or(0.0);
            if p.tokens != 0.0 {
                let (mut num, mut den) = (0.0, 0.0);
                for t in tokens_of(f, i) {
                    let u = self.token_weight.get(t).copied().unwrap_or(0.0);
                    num += u * token_w.get(t).copied().unwrap_or(0.0);
                    den += u;
                }
                if den > 0.0 {
                    s += p.tokens * num / total / den;
                }
            }
            if p.price != 0.0 {
                let closeness = match (price_of(f, i), mean_price) {
                    (Some(x), Some(m)) => -(x - m).abs(),
                    _ => -0.5,
                };
                s += p.price * closeness;
            }
            *o = s;
        }
    }
}

/// One scorer's results on the cold cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColdReport {
    /// The scorer.
    pub ranker: String,
    /// Cases evaluated.
    pub n_cases: usize,
    /// Candidates per case (the held-out items).
    pub n_candidates: usize,
    /// Expected NDCG@10.
    pub ndcg10: f64,
    /// Expected HR@10.
    pub hr10: f64,
    /// Expected MRR.
    pub mrr: f64,
    /// Cases whose target tied with at least one other candidate.
    pub tied_cases: usize,
}

/// Evaluates `scorer` on `cases`, each ranking its target among `candidates` (module
/// docs, part 1). Parallel; the result does not depend on the number of threads.
pub fn evaluate_cold(
    scorer: &dyn CandidateScorer,
    cases: &[EvalCase],
    candidates: &[u32],
    progress: Progress<'_>,
) -> ColdReport {
    let per_case: Vec<(CaseMetrics, bool)> = cases
        .par_iter()
        .map_init(
            || vec![0.0; candidates.len()],
            |buf, case| {
                scorer.score(case, candidates, buf);
                let target_score = candidates
                    .iter()
                    .position(|&c| c == case.target)
                    .map(|r| buf[r])
                    .unwrap_or_else(|| {
                        let mut one = [0.0];
                        scorer.score(case, &[case.target], &mut one);
                        one[0]
                    });
                let p = place(candidates, buf, case.target, target_score);
                if let Some(pr) = progress {
                    pr(1);
                }
                (expected_at(p, CUTOFF), p.tied > 0)
            },
        )
        .collect();
    let n = per_case.len().max(1) as f64;
    let sum = |f: fn(&CaseMetrics) -> f64| per_case.iter().map(|(m, _)| f(m)).sum::<f64>() / n;
    ColdReport {
        ranker: scorer.name(),
        n_cases: per_case.len(),
        n_candidates: candidates.len(),
        ndcg10: sum(|m| m.ndcg),
        hr10: sum(|m| m.hr),
        mrr: sum(|m| m.rr),
        tied_cases: per_case.iter().filter(|(_, t)| *t).count(),
    }
}

/// One setting of the rival tried on validation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RivalTrial {
    /// The setting.
    pub params: CategoryShareParams,
    /// Its validation NDCG@10.
    pub valid_ndcg10: f64,
}

/// Tries every setting of [`RIVAL_GRID`] on `valid` (ranking among `candidates`) and
/// returns the trials in grid order; the best is the first with the highest NDCG@10.
pub fn tune_category_share(
    features: &ItemFeatureTable,
    category_pop: &[f64],
    valid: &[EvalCase],
    candidates: &[u32],
) -> Vec<RivalTrial> {
    let g = RIVAL_GRID;
    let mut grid = Vec::with_capacity(g.len());
    for &decay in g.decay {
        for &tokens in g.tokens {
            for &price in g.price {
                for &idf in g.idf {
                    grid.push(CategoryShareParams {
                        decay,
                        tokens,
                        price,
                        idf,
                    });
                }
            }
        }
    }
    grid.into_iter()
        .map(|params| {
            let r = CategoryShare::new(features, category_pop.to_vec(), params, "");
            let rep = evaluate_cold(&r, valid, candidates, None);
            RivalTrial {
                params,
                valid_ndcg10: rep.ndcg10,
            }
        })
        .collect()
}

/// The first trial with the highest validation NDCG@10.
pub fn best_trial(trials: &[RivalTrial]) -> Option<RivalTrial> {
    trials.iter().copied().fold(None, |best, t| match best {
        Some(b) if b.valid_ndcg10 >= t.valid_ndcg10 => Some(b),
        _ => Some(t),
    })
}

// ---------------------------------------------------------------------------------------
// 2 and 3. Shelves through the real pipeline
// ---------------------------------------------------------------------------------------

/// One request made for every test case.
#[derive(Debug, Clone, PartialEq)]
pub struct Shelf {
    /// Name in the tables.
    pub name: String,
    /// The request (`k` is the list length).
    pub options: RecommendOptions,
    /// Add the categories of the case's history to `filter.excludeCategories`.
    pub exclude_history_categories: bool,
}

/// One case's result list on one shelf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShelfList {
    /// The held-out item.
    pub target: u32,
    /// The list, best first.
    pub items: Vec<u32>,
    /// The categories of the case's history, ascending, each once.
    pub history_categories: Vec<u32>,
}

/// The categories of `history`'s items, ascending, each once (items outside `category`
/// have none).
pub fn history_categories(history: &[HistoryEvent], category: &[u32]) -> Vec<u32> {
    let mut cats: Vec<u32> = history
        .iter()
        .filter_map(|e| category.get(e.item as usize).copied())
        .collect();
    cats.sort_unstable();
    cats.dedup();
    cats
}

/// Runs every shelf for every case through the real pipeline: [`Recommender::prepare`]
/// and the head's logits once per case, then [`Recommender::finish`] per shelf. Returns
/// `lists[shelf][case]`. Fails with the first case the engine refuses.
pub fn shelf_lists(
    rec: &Recommender,
    cases: &[EvalCase],
    shelves: &[Shelf],
    progress: Progress<'_>,
) -> Result<Vec<Vec<ShelfList>>, RecommendError> {
    let category = &rec.metadata.items.category;
    let per_case: Vec<Vec<ShelfList>> = cases
        .par_iter()
        .map(|case| {
            let base = RecommendOptions::default();
            let mut prepared = rec.prepare(&case.history, &base)?;
            let mut logits = vec![0.0; rec.n_items()];
            if let Some(q) = &prepared.query {
                score::head_logits(rec.kernel, &rec.plan, q, &mut logits)
                    .map_err(|e| RecommendError::Inconsistent(format!("scoring head: {e}")))?;
            }
            let cats = history_categories(&case.history, category);
            let mut out = Vec::with_capacity(shelves.len());
            for shelf in shelves {
                let mut o = shelf.options.clone();
                if shelf.exclude_history_categories {
                    let names = (cats.iter())
                        .filter_map(|&c| rec.metadata.categories.get(c as usize).cloned());
                    o.filter = Filter {
                        exclude_categories: o
                            .filter
                            .exclude_categories
                            .into_iter()
                            .chain(names)
                            .collect(),
                        ..o.filter
                    };
                }
                prepared.options = o;
                let items = rec
                    .finish(&prepared, &logits)
                    .iter()
                    .map(|r| r.index)
                    .collect();
                out.push(ShelfList {
                    target: case.target,
                    items,
                    history_categories: cats.clone(),
                });
            }
            if let Some(p) = progress {
                p(1);
            }
            Ok(out)
        })
        .collect::<Result<_, RecommendError>>()?;
    let mut lists: Vec<Vec<ShelfList>> = vec![Vec::with_capacity(cases.len()); shelves.len()];
    for case in per_case {
        for (s, l) in case.into_iter().enumerate() {
            lists[s].push(l);
        }
    }
    Ok(lists)
}

/// One shelf's metrics (module docs, parts 2 and 3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShelfReport {
    /// The shelf.
    pub shelf: String,
    /// Cases.
    pub n_cases: usize,
    /// The cutoff `K` (lists are cut to it).
    pub k: usize,
    /// HR@K.
    pub hr: f64,
    /// NDCG@K.
    pub ndcg: f64,
    /// Distinct items in any list, over the catalogue size.
    pub coverage: f64,
    /// Mean number of distinct categories per list.
    pub mean_categories: f64,
    /// Mean share of a (non-empty) list outside the history's categories.
    pub outside_share: f64,
    /// Cases whose target's category is not in the history's.
    pub outside_cases: usize,
    /// Of those, the cases whose target is in the list.
    pub outside_hits: usize,
    /// `outside_hits / outside_cases` (0 without such cases).
    pub outside_hr: f64,
}

/// The metrics of one shelf's `lists` over a catalogue whose item `i` has category
/// `category[i]` (items outside it count as category `u32::MAX`), cut at `k`.
pub fn shelf_report(name: &str, lists: &[ShelfList], category: &[u32], k: usize) -> ShelfReport {
    let cat = |i: u32| category.get(i as usize).copied().unwrap_or(u32::MAX);
    let n_items = category.len();
    let mut covered = vec![false; n_items];
    let (mut hr, mut ndcg, mut cats, mut share, mut nonempty) = (0.0, 0.0, 0.0, 0.0, 0usize);
    let (mut out_cases, mut out_hits) = (0usize, 0usize);
    for l in lists {
        let items = &l.items[..l.items.len().min(k)];
        let pos = items.iter().position(|&i| i == l.target);
        if let Some(p) = pos {
            hr += 1.0;
            ndcg += 1.0 / ((p + 2) as f64).log2();
        }
        let in_history = |c: u32| l.history_categories.binary_search(&c).is_ok();
        if !in_history(cat(l.target)) {
            out_cases += 1;
            out_hits += usize::from(pos.is_some());
        }
        if !items.is_empty() {
            nonempty += 1;
            let outside = items.iter().filter(|&&i| !in_history(cat(i))).count();
            share += outside as f64 / items.len() as f64;
        }
        let distinct: HashSet<u32> = items.iter().map(|&i| cat(i)).collect();
        cats += distinct.len() as f64;
        for &i in items {
            if let Some(c) = covered.get_mut(i as usize) {
                *c = true;
            }
        }
    }
    let n = lists.len().max(1) as f64;
    ShelfReport {
        shelf: name.to_string(),
        n_cases: lists.len(),
        k,
        hr: hr / n,
        ndcg: ndcg / n,
        coverage: if n_items == 0 {
            0.0
        } else {
            covered.iter().filter(|&&c| c).count() as f64 / n_items as f64
        },
        mean_categories: cats / n,
        outside_share: share / nonempty.max(1) as f64,
        outside_cases: out_cases,
        outside_hits: out_hits,
        outside_hr: if out_cases > 0 {
            out_hits as f64 / out_cases as f64
        } else {
            0.0
        },
    }
}

/// One point of the diversity curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiversityPoint {
    /// The request's `diversity`.
    pub diversity: f32,
    /// The request's `excludeSeen`.
    pub exclude_seen: bool,
    /// The shelf's metrics.
    pub report: ShelfReport,
}

/// The diversity curve as an SVG chart (the plain style of
/// [`crate::train::write_curve_svg`]): NDCG@K (blue, left axis) and coverage@K (orange,
/// right axis) against δ for the points with `excludeSeen` true, each point labelled with
/// its intra-list category count.
pub fn write_diversity_svg(points: &[DiversityPoint], out: &mut dyn Write) -> std::io::Result<()> {
    let pts: Vec<&DiversityPoint> = points.iter().filter(|p| p.exclude_seen).collect();
    let (w, h, pad) = (720.0f64, 360.0f64, 56.0f64);
    let max_of = |f: fn(&ShelfReport) -> f64| {
        pts.iter()
            .map(|p| f(&p.report))
            .fold(0.0, f64::max)
            .max(1e-9)
            * 1.1
    };
    let (nmax, cmax) = (max_of(|r| r.ndcg), max_of(|r| r.coverage));
    let x = |d: f32| pad + (w - 2.0 * pad) * (d as f64).clamp(0.0, 1.0);
    let y = |v: f64, max: f64| h - pad - (h - 2.0 * pad) * (v / max);
    let k = pts.first().map_or(CUTOFF, |p| p.report.k);
    writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    )?;
    writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#)?;
    writeln!(
        out,
        r#"<text x="{}" y="20" text-anchor="middle" font-size="14">vitrine diversity curve: NDCG@{k} (blue, left) and coverage@{k} (orange, right) per diversity</text>"#,
        w / 2.0
    )?;
    for (x1, y1, x2, y2) in [
        (pad, h - pad, w - pad, h - pad),
        (pad, pad, pad, h - pad),
        (w - pad, pad, w - pad, h - pad),
    ] {
        writeln!(
            out,
            r#"<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="black"/>"#
        )?;
    }
    for (f, max, color) in [
        (
            (|r: &ShelfReport| r.ndcg) as fn(&ShelfReport) -> f64,
            nmax,
            "#1f77b4",
        ),
        (|r: &ShelfReport| r.coverage, cmax, "#ff7f0e"),
    ] {
        let path: Vec<String> = pts
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.diversity), y(f(&p.report), max)))
            .collect();
        writeln!(
            out,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        )?;
        for p in &pts {
            writeln!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                x(p.diversity),
                y(f(&p.report), max)
            )?;
        }
    }
    for p in &pts {
        writeln!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            x(p.diversity),
            h - pad + 16.0,
            p.diversity
        )?;
        writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="gray">{:.1} cat.</text>"#,
            x(p.diversity),
            y(p.report.ndcg, nmax) + 20.0,
            p.report.mean_categories
        )?;
    }
    for (v, max, xx, anchor) in [
        (nmax / 1.1, nmax, pad - 6.0, "end"),
        (cmax / 1.1, cmax, w - pad + 6.0, "start"),
        (0.0, nmax, pad - 6.0, "end"),
        (0.0, cmax, w - pad + 6.0, "start"),
    ] {
        writeln!(
            out,
            r#"<text x="{xx}" y="{:.1}" text-anchor="{anchor}">{v:.4}</text>"#,
            y(v, max) + 4.0
        )?;
    }
    writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">diversity (excludeSeen: true); gray: distinct categories per top-{k}</text>"#,
        w / 2.0,
        h - 16.0
    )?;
    writeln!(out, "</svg>")
}

// ---------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------

/// Part 1's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColdResult {
    /// Share of the catalogue held out.
    pub fraction: f64,
    /// The hold-out seed.
    pub seed: u64,
    /// Held-out items (the candidates).
    pub held_out: usize,
    /// Training events removed.
    pub removed_train_events: usize,
    /// Validation cases with a held-out target (rival tuning).
    pub valid_cases: usize,
    /// Cases dropped for an empty history.
    pub dropped_empty: usize,
    /// The cold model's training.
    pub training: ColdTraining,
    /// One row per scorer.
    pub rows: Vec<ColdReport>,
    /// The rival's trials on validation.
    pub rival_trials: Vec<RivalTrial>,
}

/// How the cold model was trained (part 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColdTraining {
    /// Embedding width.
    pub dim: usize,
    /// Most epochs.
    pub max_epochs: usize,
    /// Epochs run (early stopping may stop sooner).
    pub epochs: usize,
    /// The epoch kept.
    pub best_epoch: usize,
    /// Its NDCG@10 on (a sample of) the warm validation cases.
    pub best_val_ndcg10: f64,
    /// Wall time of the training, seconds.
    pub seconds: f64,
    /// Items whose ID row was zeroed (the held-out ones and any other item without a
    /// training event).
    pub cold_items: usize,
    /// ID dropout of the training (`vitrine train --id-dropout`; 0 = off).
    #[serde(default)]
    pub id_dropout: f32,
}

impl std::fmt::Display for ColdTraining {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.id_dropout > 0.0 {
            write!(f, "ID dropout {}, ", self.id_dropout)?;
        }
        write!(
            f,
            "d = {}, {} of at most {} epochs (kept epoch {}, warm validation NDCG@10 {:.4}), trained in {:.0} s; {} items with a zeroed ID row",
            self.dim,
            self.epochs,
            self.max_epochs,
            self.best_epoch,
            self.best_val_ndcg10,
            self.seconds,
            self.cold_items
        )
    }
}

/// Everything `vitrine scenario-eval` measured (`scenarios.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioReport {
    /// The weight file of parts 2 and 3 (and the reference row of part 1).
    pub model: Option<String>,
    /// Test cases of parts 2 and 3.
    pub test_cases: usize,
    /// Part 1.
    pub cold: Option<ColdResult>,
    /// Part 2: the default request and the "other departments" request.
    pub cross: Vec<ShelfReport>,
    /// Part 3.
    pub diversity: Vec<DiversityPoint>,
}

impl ScenarioReport {
    /// The markdown report (`scenarios.md`).
    pub fn markdown(&self) -> String {
        let mut s = String::from("# Scenario evaluation\n\nProtocols: `docs/scenarios.md`.\n\n");
        if let Some(c) = &self.cold {
            s.push_str(&format!(
                "## Cold-start items (\"new in\" shelf)\n\n{} items held out ({:.0}%, seed {}), {} training events removed; {} test cases with a held-out target ({} cases dropped for an empty history), each ranking its target among the {} held-out items; ties in random order (exact expectation). Cold model: {}.\n\n",
                c.held_out,
                c.fraction * 100.0,
                c.seed,
                c.removed_train_events,
                c.rows.first().map_or(0, |r| r.n_cases),
                c.dropped_empty,
                c.held_out,
                c.training
            ));
            s.push_str(
                "| ranker | NDCG@10 | HR@10 | MRR | cases with ties |\n|---|---:|---:|---:|---:|\n",
            );
            for r in &c.rows {
                s.push_str(&format!(
                    "| {} | {:.4} | {:.4} | {:.4} | {} |\n",
                    r.ranker, r.ndcg10, r.hr10, r.mrr, r.tied_cases
                ));
            }
            s.push('\n');
        }
        if !self.cross.is_empty() {
            s.push_str(&format!(
                "## Cross-category ({} test cases, model {})\n\n",
                self.test_cases,
                self.model.as_deref().unwrap_or("-")
            ));
            s.push_str("| request | share of top-10 outside the history's categories | cases with target outside | hits outside | HR@10 outside | HR@10 | NDCG@10 |\n|---|---:|---:|---:|---:|---:|---:|\n");
            for r in &self.cross {
                s.push_str(&format!(
                    "| {} | {:.4} | {} | {} | {:.4} | {:.4} | {:.4} |\n",
                    r.shelf,
                    r.outside_share,
                    r.outside_cases,
                    r.outside_hits,
                    r.outside_hr,
                    r.hr,
                    r.ndcg
                ));
            }
            s.push('\n');
        }
        if !self.diversity.is_empty() {
            s.push_str(&format!(
                "## Diversity curve ({} test cases; chart: diversity-curve.svg)\n\n",
                self.test_cases
            ));
            s.push_str("| diversity | excludeSeen | NDCG@10 | HR@10 | coverage@10 | categories per top-10 | share outside the history's categories |\n|---:|---|---:|---:|---:|---:|---:|\n");
            for p in &self.diversity {
                let r = &p.report;
                s.push_str(&format!(
                    "| {} | {} | {:.4} | {:.4} | {:.4} | {:.2} | {:.4} |\n",
                    p.diversity,
                    p.exclude_seen,
                    r.ndcg,
                    r.hr,
                    r.coverage,
                    r.mean_categories,
                    r.outside_share
                ));
            }
            s.push('\n');
        }
        s
    }
}
