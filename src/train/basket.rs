//! Training the "frequently bought together" section ([`crate::basket`]): orders from the
//! training sequences, their co-occurrence counts, the top-`M` lists, and the tuning of
//! the pair score and of its blend with the model on validation orders. Native only.
//!
//! # Orders
//! [`orders_of`]: in a user's time-sorted sequence, a run of consecutive events with the
//! same timestamp is one order (Online Retail stamps every line of an invoice with the
//! invoice's time; `crate::data` keeps a stock code once per invoice), its items taken
//! once each. [`tune`] counts only the training part of the split
//! ([`crate::eval::Split`]'s `train`), so no validation or test line is in the counts it
//! chooses with; [`BasketTuning::refit`] then counts the refit's sequences (the
//! validation lines join; never a test target). Orders of more than
//! [`MAX_ORDER_ITEMS`] distinct items count towards `c_i` but not towards pairs (a bound
//! on the `O(|o|²)` pair work for inputs whose timestamps are coarse, e.g. dates).
//!
//! # Counts and lists
//! [`PairCounts::build`] counts `c_i` and `c_bi` exactly (module docs of
//! [`crate::basket`]); [`PairCounts::basket`] scores every pair with `(β, λ)` and keeps
//! each row's `M` best.
//!
//! # Tuning ([`tune`])
//! Objective: NDCG@10 under [`Protocol::Basket`] on the validation basket cases
//! ([`crate::eval::basket_cases`]). Coordinate search, two sweeps, one parameter at a
//! time over [`GRID`]:
//! 1. the co-occurrence ranker alone ([`BasketRanker`]: evidence first, items without
//!    evidence below by `c_i`), over `δ`, `β`, `λ`, aggregation and `M`;
//! 2. the blend ([`BlendRanker`]: the model's logit with the basket as cart events, plus
//!    the memory, `+ α·E_i`), over `α`, `δ`, `β`, `λ`, aggregation and `M`, starting
//!    from step 1's choice; the model's logits of every validation case are computed
//!    once.
//!
//! `M` is a size/quality trade: the smallest `M` of the grid whose validation NDCG@10
//! is within [`M_TOLERANCE`] (relative) of the best one is kept. The shipped `α` is the
//! blend's when it beats the model alone on validation, else 0 (the model's ranking; the
//! section then only supplies the evidence of the reasons).
use std::collections::HashMap;

use rayon::prelude::*;

use crate::basket::{Aggregate, Basket, BasketParams};
use crate::eval::{basket_of, evaluate, EvalCase, EvalOptions, ModelRanker, Protocol, Ranker};
use crate::history::HistoryEvent;
use crate::model::Model;

/// Orders with more distinct items than this add to `c_i` only (see the module docs).
pub const MAX_ORDER_ITEMS: usize = 1000;
/// Relative validation loss accepted for a smaller `M` (0.5%).
pub const M_TOLERANCE: f64 = 0.005;
/// Most floats the cached validation logits may take (`cases × items`, 256 MiB): beyond
/// it, an evenly spaced subset of the cases is used.
pub const MAX_CACHE_FLOATS: usize = 1 << 26;

/// The tuning grid, per parameter in search order.
pub const GRID: Grid = Grid {
    decay: &[1.0, 0.8, 0.6, 0.4, 0.2, 0.1],
    beta: &[0.0, 0.25, 0.5, 0.75, 1.0],
    shrink: &[0.0, 1.0, 3.0, 10.0, 30.0, 100.0],
    top_m: &[10, 20, 30, 50, 100],
    alpha: &[0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 1e4],
};

/// Values tried per parameter by [`tune`].
#[derive(Debug, Clone, Copy)]
pub struct Grid {
    /// Decays `δ` of older basket items' weight.
    pub decay: &'static [f32],
    /// Exponents `β`.
    pub beta: &'static [f32],
    /// Shrinkages `λ`.
    pub shrink: &'static [f32],
    /// Neighbours kept per item, `M`.
    pub top_m: &'static [usize],
    /// Blend weights `α` (besides 0, the model alone).
    pub alpha: &'static [f32],
}

/// The orders of every sequence (module docs): distinct items per order, in first-seen
/// order; items outside `0..n_items` are dropped.
pub fn orders_of(sequences: &[Vec<HistoryEvent>], n_items: usize) -> Vec<Vec<u32>> {
    let mut out = Vec::new();
    for seq in sequences {
        let mut start = 0;
        while start < seq.len() {
            let at = seq[start].at;
            let len = seq[start..].iter().take_while(|e| e.at == at).count();
            let mut order: Vec<u32> = Vec::with_capacity(len);
            for e in &seq[start..start + len] {
                if (e.item as usize) < n_items && !order.contains(&e.item) {
                    order.push(e.item);
                }
            }
            if !order.is_empty() {
                out.push(order);
            }
            start += len;
        }
    }
    out
}

/// Exact order counts: `c_i` and, per item, every co-ordered item with `c_bi`.
#[derive(Debug, Clone, PartialEq)]
pub struct PairCounts {
    /// `c_i`, orders holding item `i`.
    pub item_orders: Vec<u32>,
    /// Row `b`: `(i, c_bi)` for every `i ≠ b` ordered with `b`, increasing `i`.
    rows: Vec<Vec<(u32, u32)>>,
    /// Number of orders counted.
    pub n_orders: usize,
}

impl PairCounts {
    /// Counts `orders` (distinct items each, as [`orders_of`] gives them) over a
    /// catalogue of `n_items` items. Parallel over items; the result does not depend on
    /// the number of threads.
    pub fn build(orders: &[Vec<u32>], n_items: usize) -> PairCounts {
        let mut item_orders = vec![0u32; n_items];
        let mut occ: Vec<Vec<u32>> = vec![Vec::new(); n_items];
        for (o, order) in orders.iter().enumerate() {
            for &i in order {
                if let Some(c) = item_orders.get_mut(i as usize) {
                    *c += 1;
                    if order.len() <= MAX_ORDER_ITEMS {
                        occ[i as usize].push(o as u32);
                    }
                }
            }
        }
        let rows = (0..n_items)
            .into_par_iter()
            .map_init(
                || (vec![0u32; n_items], Vec::<u32>::new()),
                |(count, touched), b| {
                    for &o in &occ[b] {
                        for &i in &orders[o as usize] {
                            if i as usize == b || i as usize >= n_items {
                                continue;
                            }
                            if count[i as usize] == 0 {
                                touched.push(i);
                            }
                            count[i as usize] += 1;
                        }
                    }
                    touched.sort_unstable();
                    let row: Vec<(u32, u32)> =
                        touched.iter().map(|&i| (i, count[i as usize])).collect();
                    for &i in touched.iter() {
                        count[i as usize] = 0;
                    }
                    touched.clear();
                    row
                },
            )
            .collect();
        PairCounts {
            item_orders,
            rows,
            n_orders: orders.len(),
        }
    }

    /// Row `b`: `(i, c_bi)`, increasing `i` (empty outside the catalogue).
    pub fn row(&self, b: usize) -> &[(u32, u32)] {
        self.rows.get(b).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Number of catalogue items.
    pub fn n_items(&self) -> usize {
        self.item_orders.len()
    }

    /// The section with `params`, each row keeping its `top_m` pairs of highest
    /// `s(b → i)` (ties: the lower `i`).
    pub fn basket(&self, params: BasketParams, top_m: usize) -> Basket {
        let n = self.n_items();
        let lists: Vec<Vec<(u32, u32)>> = (0..n)
            .into_par_iter()
            .map(|b| {
                let c_b = self.item_orders[b];
                let mut scored: Vec<(u32, u32, f32)> = self.rows[b]
                    .iter()
                    .map(|&(i, c)| {
                        let s = crate::basket::pair_score(
                            c,
                            c_b,
                            self.item_orders[i as usize],
                            params.beta,
                            params.shrink,
                        );
                        (i, c, s)
                    })
                    .collect();
                let cmp = |x: &(u32, u32, f32), y: &(u32, u32, f32)| {
                    y.2.total_cmp(&x.2).then(x.0.cmp(&y.0))
                };
                if scored.len() > top_m {
                    if top_m == 0 {
                        scored.clear();
                    } else {
                        scored.select_nth_unstable_by(top_m - 1, cmp);
                        scored.truncate(top_m);
                    }
                }
                let mut kept: Vec<(u32, u32)> = scored.iter().map(|&(i, c, _)| (i, c)).collect();
                kept.sort_unstable();
                kept
            })
            .collect();
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0u32);
        let (mut items, mut orders) = (Vec::new(), Vec::new());
        for list in lists {
            for (i, c) in list {
                items.push(i);
                orders.push(c);
            }
            offsets.push(items.len() as u32);
        }
        Basket::new(n, offsets, items, orders, self.item_orders.clone(), params)
            .expect("exact counts with in-range parameters make a valid section")
    }
}

/// The basket items of a case: its [`basket_of`] events' items.
fn basket_items(history: &[HistoryEvent], now: f64) -> Vec<u32> {
    basket_of(history, now).iter().map(|e| e.item).collect()
}

/// Writes `E_i` where positive, else `−1 + c_i / (max_j c_j + 1)` (in `[−1, 0)`): the
/// evidence ranks first, the rest by order count below it.
fn evidence_then_popularity(basket: &Basket, items: &[u32], out: &mut [f32]) {
    basket.evidence(items, out);
    let max = (0..out.len())
        .map(|i| basket.item_orders(i))
        .max()
        .unwrap_or(0) as f32;
    for (i, o) in out.iter_mut().enumerate() {
        if *o <= 0.0 {
            *o = -1.0 + basket.item_orders(i) as f32 / (max + 1.0);
        }
    }
}

/// The co-occurrence model alone as a [`Ranker`]: the basket's evidence `E_i` first,
/// items without evidence below, by their training order count `c_i`.
pub struct BasketRanker<'a> {
    /// The section.
    pub basket: &'a Basket,
}

impl Ranker for BasketRanker<'_> {
    fn name(&self) -> String {
        "basket co-occurrence alone".into()
    }

    fn score_all(&self, history: &[HistoryEvent], now: f64, out: &mut [f32]) {
        evidence_then_popularity(self.basket, &basket_items(history, now), out);
    }
}

/// The served ranking of a basket request as a [`Ranker`]: the model's logit for the
/// history with the basket as cart events (deep part + memory, [`ModelRanker`]), plus
/// `α·E_i` ([`Basket::add_to`]), the arithmetic `recommend({ basket })` runs.
pub struct BlendRanker<'a> {
    /// The model.
    pub model: &'a ModelRanker<'a>,
    /// The section.
    pub basket: &'a Basket,
    /// Row name.
    pub name: String,
}

impl Ranker for BlendRanker<'_> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn score_all(&self, history: &[HistoryEvent], now: f64, out: &mut [f32]) {
        self.model.score_all(history, now, out);
        self.basket.add_to(&basket_items(history, now), out);
    }
}

/// [`BlendRanker`] over precomputed model logits (one row per case, found by the case's
/// user, target and time).
struct CachedBlend<'a> {
    logits: &'a [f32],
    row: &'a HashMap<(usize, u32, u64), usize>,
    basket: &'a Basket,
}

impl Ranker for CachedBlend<'_> {
    fn name(&self) -> String {
        "blend (cached)".into()
    }

    fn score_all(&self, _history: &[HistoryEvent], _now: f64, out: &mut [f32]) {
        out.fill(f32::NEG_INFINITY);
    }

    fn score_case(&self, case: &EvalCase, out: &mut [f32]) {
        let n = out.len();
        match self.row.get(&(case.user, case.target, case.now.to_bits())) {
            Some(&r) if self.logits.len() >= (r + 1) * n => {
                out.copy_from_slice(&self.logits[r * n..(r + 1) * n]);
                self.basket
                    .add_to(&basket_items(&case.history, case.now), out);
            }
            _ => out.fill(f32::NEG_INFINITY),
        }
    }
}

/// Validation NDCG@10 under [`Protocol::Basket`].
fn ndcg10(ranker: &dyn Ranker, cases: &[EvalCase], n_items: usize) -> f64 {
    let opts = EvalOptions {
        ks: vec![10],
        ..EvalOptions::default()
    };
    evaluate(ranker, cases, n_items, Protocol::Basket, &opts)
        .get("NDCG@10")
        .unwrap_or(0.0)
}

/// What [`tune`] chose and measured.
#[derive(Debug, Clone)]
pub struct BasketTuning {
    /// The section to ship: the blend's parameters and lists (`α = 0` when the blend
    /// does not beat the model alone on validation, or was tuned without a model).
    pub basket: Basket,
    /// The co-occurrence model tuned alone (for [`BasketRanker`]).
    pub alone: Basket,
    /// `M` of `basket` and of `alone`.
    pub top_m: (usize, usize),
    /// Validation NDCG@10: the co-occurrence model alone, the model alone (basket as
    /// cart events), and the best blend (the last two `None` when tuned without a
    /// model).
    pub valid_alone: f64,
    /// See [`BasketTuning::valid_alone`].
    pub valid_model: Option<f64>,
    /// See [`BasketTuning::valid_alone`].
    pub valid_blend: Option<f64>,
    /// Orders counted (the training orders; the refit's after [`BasketTuning::refit`]).
    pub n_orders: usize,
    /// Validation cases tuned on.
    pub n_valid: usize,
    /// Every configuration tried (description, validation NDCG@10), in order.
    pub trials: Vec<(String, f64)>,
}

/// One point of the search.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    params: BasketParams,
    top_m: usize,
}

impl std::fmt::Display for Point {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.params;
        write!(
            f,
            "decay={} beta={} shrink={} aggregate={:?} M={} alpha={}",
            p.decay, p.beta, p.shrink, p.aggregate, self.top_m, p.alpha
        )
    }
}

/// Coordinate search (two sweeps) of `score` over the parameters in `coords`, from
/// `start`; `M` is settled last in each sweep with the [`M_TOLERANCE`] rule.
fn coordinate_search(
    start: Point,
    coords: &[&str],
    grid: &Grid,
    trials: &mut Vec<(String, f64)>,
    label: &str,
    score: &(dyn Fn(Point) -> f64 + Sync),
) -> (Point, f64) {
    let mut best = start;
    let mut best_score = score(best);
    trials.push((format!("{label} {best}"), best_score));
    for _sweep in 0..2 {
        for &coord in coords {
            let candidates: Vec<Point> = match coord {
                "decay" => (grid.decay.iter())
                    .map(|&v| Point {
                        params: BasketParams {
                            decay: v,
                            ..best.params
                        },
                        ..best
                    })
                    .collect(),
                "beta" => (grid.beta.iter())
                    .map(|&v| Point {
                        params: BasketParams {
                            beta: v,
                            ..best.params
                        },
                        ..best
                    })
                    .collect(),
                "shrink" => (grid.shrink.iter())
                    .map(|&v| Point {
                        params: BasketParams {
                            shrink: v,
                            ..best.params
                        },
                        ..best
                    })
                    .collect(),
                "aggregate" => [Aggregate::Sum, Aggregate::Max]
                    .iter()
                    .map(|&a| Point {
                        params: BasketParams {
                            aggregate: a,
                            ..best.params
                        },
                        ..best
                    })
                    .collect(),
                "alpha" => (grid.alpha.iter())
                    .map(|&v| Point {
                        params: BasketParams {
                            alpha: v,
                            ..best.params
                        },
                        ..best
                    })
                    .collect(),
                _ => (grid.top_m.iter())
                    .map(|&m| Point { top_m: m, ..best })
                    .collect(),
            };
            let scored: Vec<(Point, f64)> = candidates
                .into_iter()
                .map(|p| {
                    let s = if p == best { best_score } else { score(p) };
                    (p, s)
                })
                .collect();
            for (p, s) in &scored {
                if *p != best {
                    trials.push((format!("{label} {p}"), *s));
                }
            }
            if coord == "top_m" {
                let top = scored.iter().map(|x| x.1).fold(f64::MIN, f64::max);
                // The smallest M within the tolerance of the best (grid is increasing).
                if let Some((p, s)) = scored.iter().find(|(_, s)| *s >= top * (1.0 - M_TOLERANCE)) {
                    best = *p;
                    best_score = *s;
                }
            } else {
                for (p, s) in scored {
                    if s > best_score {
                        best = p;
                        best_score = s;
                    }
                }
            }
        }
    }
    (best, best_score)
}

/// Tunes the section on `valid` (basket cases, [`crate::eval::basket_cases`] of the
/// validation cases) from the orders of `train` (module docs): the co-occurrence model
/// alone, then, given a `model`, the blend with it; without one the section shipped is
/// the co-occurrence model's with `α = 0` and no blend figure is measured (a model that
/// has trained on the validation lines must not choose: `vitrine basket-eval` on a refit
/// model). `progress(1)` is called per validation case of the model's pass over them.
/// `None` when there is no validation basket case or no training order with two items.
pub fn tune(
    model: Option<&Model>,
    train: &[Vec<HistoryEvent>],
    valid: &[EvalCase],
    n_items: usize,
    grid: &Grid,
    progress: &(dyn Fn(usize) + Sync),
) -> Option<BasketTuning> {
    let orders = orders_of(train, n_items);
    let counts = PairCounts::build(&orders, n_items);
    if valid.is_empty() || counts.rows.iter().all(Vec::is_empty) {
        return None;
    }
    let stride = (valid.len() * n_items).div_ceil(MAX_CACHE_FLOATS).max(1);
    let valid: Vec<EvalCase> = valid.iter().step_by(stride).cloned().collect();
    let mut trials = Vec::new();

    // 1. The co-occurrence model alone.
    let start = Point {
        params: BasketParams::default(),
        top_m: *grid.top_m.last().unwrap_or(&50),
    };
    let alone_score = |p: Point| {
        let b = counts.basket(p.params, p.top_m);
        ndcg10(&BasketRanker { basket: &b }, &valid, n_items)
    };
    let coords = ["decay", "beta", "shrink", "aggregate", "top_m"];
    let (alone, valid_alone) =
        coordinate_search(start, &coords, grid, &mut trials, "alone", &alone_score);
    let zero = Point {
        params: BasketParams {
            alpha: 0.0,
            ..alone.params
        },
        ..alone
    };

    // 2. The blend over the model's logits, computed once per validation case.
    let (chosen, valid_model, valid_blend) = match model {
        None => (zero, None, None),
        Some(model) => {
            let ranker = ModelRanker::new(model);
            let mut logits = vec![0.0f32; valid.len() * n_items];
            logits
                .par_chunks_mut(n_items)
                .zip(valid.par_iter())
                .for_each(|(out, case)| {
                    ranker.score_case(case, out);
                    progress(1);
                });
            let row: HashMap<(usize, u32, u64), usize> = (valid.iter().enumerate())
                .map(|(r, c)| ((c.user, c.target, c.now.to_bits()), r))
                .collect();
            let blend_score = |p: Point| {
                let b = counts.basket(p.params, p.top_m);
                let r = CachedBlend {
                    logits: &logits,
                    row: &row,
                    basket: &b,
                };
                ndcg10(&r, &valid, n_items)
            };
            let valid_model = blend_score(zero);
            trials.push((format!("model alone {zero}"), valid_model));
            let coords = ["alpha", "decay", "beta", "shrink", "aggregate", "top_m"];
            let (blend, valid_blend) =
                coordinate_search(alone, &coords, grid, &mut trials, "blend", &blend_score);
            let chosen = if valid_blend > valid_model {
                blend
            } else {
                zero
            };
            (chosen, Some(valid_model), Some(valid_blend))
        }
    };
    Some(BasketTuning {
        basket: counts.basket(chosen.params, chosen.top_m),
        alone: counts.basket(alone.params, alone.top_m),
        top_m: (chosen.top_m, alone.top_m),
        valid_alone,
        valid_model,
        valid_blend,
        n_orders: counts.n_orders,
        n_valid: valid.len(),
        trials,
    })
}

impl BasketTuning {
    /// Counts the orders of `sequences` again and rebuilds both sections with the
    /// parameters and `M` tuning chose (the refit: [`crate::eval::Split::refit_sequences`]
    /// once validation has made every choice). `n_orders` becomes the new count; the
    /// validation figures stay those of the tuning.
    pub fn refit(&mut self, sequences: &[Vec<HistoryEvent>], n_items: usize) {
        let counts = PairCounts::build(&orders_of(sequences, n_items), n_items);
        self.basket = counts.basket(self.basket.params(), self.top_m.0);
        self.alone = counts.basket(self.alone.params(), self.top_m.1);
        self.n_orders = counts.n_orders;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventKind;

    fn ev(item: u32, at: f64) -> HistoryEvent {
        HistoryEvent {
            item,
            kind: EventKind::Purchase,
            at,
        }
    }

    #[test]
    fn orders_are_runs_of_one_timestamp() {
        let seqs = vec![
            vec![ev(0, 1.0), ev(1, 1.0), ev(1, 1.0), ev(2, 2.0), ev(9, 3.0)],
            vec![ev(3, 1.0), ev(0, 5.0), ev(3, 5.0)],
        ];
        assert_eq!(
            orders_of(&seqs, 5),
            vec![vec![0, 1], vec![2], vec![3], vec![0, 3]]
        );
    }
}
