//! Stage 3 of the pipeline: the ordered result list from the final logits and the
//! eligibility mask.
//!
//! # Rule
//! 1. Promotion ([`promote`]): up to `slots` (at most `k`) eligible promoted items, in
//!    the request's order and without repeats, take the first places and stop being
//!    candidates.
//! 2. The remaining `r = k − promoted` places: the top `r` eligible items by logit
//!    ([`top_k`], the one order of [`crate::kernels::topk`]: NaN last, ties by the lower
//!    index). With diversity `δ > 0` ([`diversify`]): from the pool of the top
//!    `max(r, DIVERSITY_POOL)`, greedily take the item maximising
//!    `z_i − w(δ) · taken(category(i))`, where `taken` counts the items already placed
//!    (promoted ones included) per category and `w(δ) = δ / (1 − δ) · gap`, `gap` being
//!    the mean step between consecutive places of the undiversified top `r`
//!    (`(z_(1) − z_(r)) / (r − 1)`, + 10⁻⁶): a category's next item drops about
//!    `δ / (1 − δ)` places per item the category already has (`δ = 0.5`: one place,
//!    `0.75`: three, `0.9`: nine), so the knob is gradual; `δ = 1` (`w = ∞`) never
//!    repeats a category while another still has candidates. (Scaling by the whole
//!    pool's range instead made `δ = 0.25` act like `δ = 1`.) Ties: higher raw logit,
//!    then lower index.
use std::collections::HashMap;

use super::eligibility::Eligibility;
use super::{Recommender, DIVERSITY_POOL};
use crate::kernels::topk;

/// The `k` best eligible items by `scores`, best first (`eligible(i)` for item `i`;
/// items past the scores' end are not candidates).
pub fn top_k(scores: &[f32], eligible: impl Fn(u32) -> bool, k: usize) -> Vec<u32> {
    let top = topk::top_k_where(scores, eligible, k);
    top.into_iter().map(|(i, _)| i).collect()
}

/// Pins up to `slots` eligible `promoted` items (in order, no repeats) and marks them
/// ineligible for the rest of the ranking.
pub fn promote(eligible: &mut Eligibility, promoted: &[u32], slots: usize) -> Vec<u32> {
    let picked = promote_by(promoted, slots, |p| eligible.is_eligible(p));
    for &p in &picked {
        eligible.ban(p);
    }
    picked
}

/// The items [`promote`] pins, with eligibility given per item (the GPU shortlist knows
/// it only for the few items it asks about).
pub fn promote_by(promoted: &[u32], slots: usize, eligible: impl Fn(u32) -> bool) -> Vec<u32> {
    let mut picked: Vec<u32> = Vec::with_capacity(slots.min(promoted.len()));
    for &p in promoted {
        if picked.len() >= slots {
            break;
        }
        if eligible(p) && !picked.contains(&p) {
            picked.push(p);
        }
    }
    picked
}

/// A ranked result list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranked {
    /// Item indices, best first.
    pub items: Vec<u32>,
    /// How many leading items are promoted.
    pub n_promoted: usize,
}

/// Promotion, then the top `k` (diversified when `diversity > 0`), as the module docs
/// say.
pub fn rank(
    rec: &Recommender,
    logit: &[f32],
    mut eligible: Eligibility,
    promoted: &[u32],
    slots: usize,
    k: usize,
    diversity: f32,
) -> Ranked {
    let mut items = promote(&mut eligible, promoted, slots.min(k));
    let n_promoted = items.len();
    let rest = k - n_promoted;
    if diversity > 0.0 {
        let pool = top_k(logit, |i| eligible.is_eligible(i), rest.max(DIVERSITY_POOL));
        let counts = items.iter().fold(HashMap::new(), |mut m, &i| {
            *m.entry(rec.category_of(i as usize)).or_insert(0usize) += 1;
            m
        });
        let category = |i: u32| rec.category_of(i as usize);
        items.extend(diversify(&pool, logit, rest, diversity, counts, category));
    } else {
        items.extend(top_k(logit, |i| eligible.is_eligible(i), rest));
    }
    Ranked { items, n_promoted }
}

/// Greedy category diversification over `pool` (sorted best first): `k` items, each step
/// taking the item maximising `logit − w(diversity) × counts[category]` (see the module
/// docs). `counts` holds the items already placed per category.
pub fn diversify(
    pool: &[u32],
    logit: &[f32],
    k: usize,
    diversity: f32,
    mut counts: HashMap<u32, usize>,
    category: impl Fn(u32) -> u32,
) -> Vec<u32> {
    let top = (pool.iter().take(k))
        .map(|&i| logit[i as usize])
        .filter(|x| x.is_finite());
    let (lo, hi, n) = top.fold(
        (f32::INFINITY, f32::NEG_INFINITY, 0usize),
        |(lo, hi, n), x| (lo.min(x), hi.max(x), n + 1),
    );
    let gap = if hi >= lo && n > 1 {
        (hi - lo) / (n - 1) as f32
    } else {
        0.0
    };
    // δ = 1: the penalty is infinite, i.e. fewer items taken from a category always wins
    // (compared first), then the raw logit.
    let strict = diversity >= 1.0;
    let weight = if strict {
        0.0
    } else {
        diversity / (1.0 - diversity) * (gap + 1e-6)
    };
    // Per category, its candidates best first, categories in first-seen order.
    let mut order: Vec<u32> = Vec::new();
    let mut groups: HashMap<u32, Vec<u32>> = HashMap::new();
    for &i in pool {
        let c = category(i);
        groups
            .entry(c)
            .or_insert_with(|| {
                order.push(c);
                Vec::new()
            })
            .push(i);
    }
    let mut head: HashMap<u32, usize> = order.iter().map(|&c| (c, 0)).collect();
    let mut out = Vec::with_capacity(k.min(pool.len()));
    while out.len() < k {
        let mut best: Option<(f32, f32, u32, u32)> = None; // (adjusted, raw, item, cat)
        for &c in &order {
            let Some(&i) = groups[&c].get(head[&c]) else {
                continue;
            };
            let raw = logit[i as usize];
            let taken = counts.get(&c).copied().unwrap_or(0) as f32;
            let adj = if strict { -taken } else { raw - weight * taken };
            let better = match best {
                None => true,
                Some((ba, br, bi, _)) => adj
                    .total_cmp(&ba)
                    .then(raw.total_cmp(&br))
                    .then(bi.cmp(&i))
                    .is_gt(),
            };
            if better {
                best = Some((adj, raw, i, c));
            }
        }
        let Some((_, _, i, c)) = best else { break };
        out.push(i);
        *head.get_mut(&c).expect("category has a head") += 1;
        *counts.entry(c).or_insert(0) += 1;
    }
    out
}
