//! `recommend()` from a GPU shortlist: the same list, scores and reasons as
//! [`Recommender::finish`] over every logit, from `O(m · chunks + |S|)` numbers read
//! back instead of `n`.
//!
//! # Why it is exact
//! [`super::blend`]'s final logit of item `i` is `z_i = d_i + memory_i + α·E_i`, where
//! `d_i = clean(clean(base_i) + boost_i + β·new_i)`. Split the catalogue:
//! - `S` (sparse, at most [`MAX_SPARSE`] items): the items the request names or the
//!   sparse terms touch — excluded, seen and earlier shelves' items, the context and
//!   basket items, boosted ids, promoted ids, the memory term's items
//!   ([`super::score::memory_items`]) and the basket evidence's
//!   ([`crate::basket::Basket::evidence_items`]);
//! - the rest, `A`: for `i ∈ A`, `memory_i = E_i = 0` and `boost_i = boost_{c_i}` (only
//!   category boosts reach it), so `z_i = d_i` depends on `base_i` and the item's fixed
//!   attributes only, and eligibility on the filter only.
//!
//! The GPU ([`crate::kernels::shortlist`]) computes `d_i` and the filter for `A`, keeps
//! the best `r` per chunk of each (`r` = `k` minus the promoted places) and gathers
//! `base_i` for `S`. The CPU then computes `z_i` for the eligible items of `S` and for
//! the candidates with the same functions the full path uses ([`super::blend::blend`],
//! [`super::score::add_memory_for`], [`crate::basket::Basket::add_to_for`], each equal
//! to its whole-catalogue form item by item), pins the promoted items
//! ([`super::rank::promote_by`]) and takes the top `r` of the rest by
//! [`crate::kernels::rank_cmp`]. The top `r` of `A ∪ S` is among the top `r` of each
//! chunk of `A` plus `S`, and the order is strict, so the result is the full path's:
//! same items, order, score bits and reasons.
//!
//! Every candidate is checked (inside the catalogue, eligible, not in `S`, not
//! repeated, its GPU `d_i` equal to the CPU's bit for bit); any failure is a
//! [`ShortlistError`] and the caller scores every item instead.
//!
//! # When the full read-back stays
//! [`FullPath`] names the cases: no head pass at all (the popularity prior ranks); a
//! context item (its term `λ · σ(z) · cos` needs the standard deviation of every item's
//! logit, and lifts items outside any sparse set); diversity `δ > 0` (the re-ranking
//! draws from the top [`super::DIVERSITY_POOL`] = 5,000, beyond the GPU's
//! [`MAX_PER_CHUNK`] per chunk); more than [`MAX_PER_CHUNK`] places; a sparse set
//! over [`MAX_SPARSE`]. A page's shelves share one head pass through all logits
//! ([`super::page`]), so `page()` keeps the full read-back too.
use std::collections::HashMap;

use super::{blend, rank, request, score, Prepared, Recommendation};
use super::{Recommender, MAX_K};
use crate::kernels::shortlist::{
    CategoryRule, ItemAttributes, Shortlist, ShortlistRequest, MAX_PER_CHUNK, MAX_SPARSE,
};
use crate::kernels::top_k_of;

/// Why a request is served from every logit instead of a shortlist (module docs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FullPath {
    /// No history, context or basket: the popularity prior ranks and no head runs.
    #[error("no head pass: the popularity prior ranks")]
    NoQuery,
    /// A context item: its term needs the standard deviation of every logit.
    #[error("a context item's term needs every logit")]
    Context,
    /// Diversity above 0: the re-ranking draws from the top 5,000.
    #[error("diversity re-ranks a pool larger than a shortlist")]
    Diversity,
    /// More places to fill than a shortlist keeps per chunk.
    #[error("{places} places exceed the shortlist's {MAX_PER_CHUNK} per chunk")]
    TooManyPlaces {
        /// Places left after the promoted items.
        places: usize,
    },
    /// The sparse set is larger than a shortlist gathers.
    #[error("{items} sparse items exceed the shortlist's {MAX_SPARSE}")]
    TooSparse {
        /// Items in the sparse set.
        items: usize,
    },
    /// The options do not resolve (the full path returns an empty list for them).
    #[error("the options do not resolve")]
    Unresolved,
}

/// A shortlist that does not fit its request: the caller scores every item instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShortlistError {
    /// The gathered logits do not match the sparse set's length.
    #[error("{got} gathered logits for {expected} sparse items")]
    SparseLength {
        /// Items in the sparse set.
        expected: usize,
        /// Logits returned.
        got: usize,
    },
    /// A candidate outside the catalogue, ineligible, in the sparse set, or repeated.
    #[error("item {index} is not a candidate of this request")]
    NotACandidate {
        /// The item.
        index: u32,
    },
    /// A candidate whose blended logit differs from the CPU's (a GPU whose `f32`
    /// additions are not IEEE's).
    #[error("item {index}: blended logit {gpu} on the GPU, {cpu} on the CPU")]
    Blend {
        /// The item.
        index: u32,
        /// The GPU's value.
        gpu: f32,
        /// The CPU's value.
        cpu: f32,
    },
}

/// A request served by a shortlist: what the GPU computes ([`ShortlistPlan::request`])
/// and what finishing it needs.
#[derive(Debug, Clone)]
pub struct ShortlistPlan {
    /// The GPU's part.
    pub request: ShortlistRequest,
    /// Whether each item of `request.sparse` may appear.
    sparse_eligible: Vec<bool>,
    /// The promoted items pinned first.
    picked: Vec<u32>,
    /// Places in the list (`k`).
    k: usize,
    /// The items left out (sorted): excluded, seen, shown.
    excluded: Vec<u32>,
}

impl Recommender {
    /// Each item's category, newness and price, for [`crate::kernels::gpu::GpuScorer::set_items`]
    /// (through [`crate::kernels::scorer::Scorer::set_items`]).
    pub fn item_attributes(&self) -> ItemAttributes {
        let n = self.n_items();
        ItemAttributes {
            category: (0..n).map(|i| self.category_of(i)).collect(),
            is_new: (0..n).map(|i| self.is_new(i)).collect(),
            price: (0..n).map(|i| self.price(i)).collect(),
        }
    }

    /// The shortlist for `prepared` with the items `shown` on earlier shelves left out,
    /// or why it takes the full path (module docs). Costs `O(|S| log |S| + categories)`.
    pub fn plan_shortlist(
        &self,
        prepared: &Prepared,
        shown: &[u32],
    ) -> Result<ShortlistPlan, FullPath> {
        if prepared.query.is_none() {
            return Err(FullPath::NoQuery);
        }
        let o = &prepared.options;
        let r = self.resolve(o, false).map_err(|_| FullPath::Unresolved)?;
        if r.context.is_some() {
            return Err(FullPath::Context);
        }
        if super::finite_or_zero(o.diversity).clamp(0.0, 1.0) > 0.0 {
            return Err(FullPath::Diversity);
        }
        let n = self.n_items();
        let k = o.k.clamp(1, MAX_K).min(n);
        let excluded = self.excluded(prepared, &r, shown);
        let eligible = |i: u32| {
            (i as usize) < n
                && r.filter.admits(self, i as usize)
                && excluded.binary_search(&i).is_err()
        };
        let slots = o.promote.as_ref().map_or(0, |p| p.slots);
        let picked = rank::promote_by(&r.promote, slots.min(k), eligible);
        let places = k - picked.len();
        if places > MAX_PER_CHUNK {
            return Err(FullPath::TooManyPlaces { places });
        }
        let mut sparse = excluded.clone();
        sparse.extend(r.boosts.iter().flat_map(|b| b.ids.iter().copied()));
        sparse.extend_from_slice(&r.promote);
        sparse.extend(score::memory_items(&self.model, &prepared.history));
        if let Some(b) = &self.basket {
            sparse.extend(b.evidence_items(&r.basket));
        }
        sparse.retain(|&i| (i as usize) < n);
        sparse.sort_unstable();
        sparse.dedup();
        if sparse.len() > MAX_SPARSE {
            return Err(FullPath::TooSparse {
                items: sparse.len(),
            });
        }
        let categories = (0..self.metadata.categories.len().max(1) as u32)
            .map(|c| CategoryRule {
                allowed: r.filter.allows_category(c),
                boost: blend::category_boost(&r.boosts, c),
            })
            .collect();
        let (price_min, price_max) = r.filter.price_bounds();
        let sparse_eligible = sparse.iter().map(|&i| eligible(i)).collect();
        Ok(ShortlistPlan {
            request: ShortlistRequest {
                per_chunk: places,
                categories,
                new_boost: super::finite_or_zero(o.new_items_boost),
                new_only: r.filter.new_only(),
                price_min,
                price_max,
                sparse,
            },
            sparse_eligible,
            picked,
            k,
            excluded,
        })
    }

    /// The items a request leaves out besides the filter: `exclude`, the context and
    /// basket items, with `excludeSeen` the shopper's seen items, and `shown`; sorted,
    /// without repeats (the full path bans the same items one by one).
    fn excluded(&self, prepared: &Prepared, r: &request::Resolved, shown: &[u32]) -> Vec<u32> {
        let o = &prepared.options;
        let mut out = r.banned();
        if o.exclude_seen {
            let own = &prepared.history[..super::n_real(prepared, r)];
            out.extend(super::eligibility::seen_items(own, o.allow_repurchase));
        }
        out.extend_from_slice(shown);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The recommendations from the GPU's shortlist for `plan` (made by
    /// [`Recommender::plan_shortlist`] for the same `prepared`): exactly
    /// [`Recommender::finish_page`]'s list over every logit (module docs).
    ///
    /// # Errors
    /// [`ShortlistError`] when `got` does not fit the request; score every item then.
    pub fn finish_shortlist(
        &self,
        prepared: &Prepared,
        plan: &ShortlistPlan,
        got: &Shortlist,
    ) -> Result<Vec<Recommendation>, ShortlistError> {
        let req = &plan.request;
        if got.sparse_logits.len() != req.sparse.len() {
            return Err(ShortlistError::SparseLength {
                expected: req.sparse.len(),
                got: got.sparse_logits.len(),
            });
        }
        let o = &prepared.options;
        let Ok(r) = self.resolve(o, false) else {
            return Ok(Vec::new());
        };
        let n = self.n_items();
        // The eligible items of S, then the candidates, each with its head logit.
        let (mut items, mut base): (Vec<u32>, Vec<f32>) = (req.sparse.iter())
            .zip(&plan.sparse_eligible)
            .zip(&got.sparse_logits)
            .filter(|((_, &e), _)| e)
            .map(|((&i, _), &l)| (i, l))
            .unzip();
        let from = items.len();
        let mut seen = Vec::with_capacity(got.candidates.len());
        for c in &got.candidates {
            let i = c.index;
            let ok = (i as usize) < n
                && r.filter.admits(self, i as usize)
                && plan.excluded.binary_search(&i).is_err()
                && req.sparse.binary_search(&i).is_err();
            if !ok {
                return Err(ShortlistError::NotACandidate { index: i });
            }
            seen.push(i);
            items.push(i);
            base.push(c.base);
        }
        seen.sort_unstable();
        if let Some(w) = seen.windows(2).find(|w| w[0] == w[1]) {
            return Err(ShortlistError::NotACandidate { index: w[0] });
        }
        let boost: Vec<f32> = (items.iter())
            .map(|&i| blend::boost_of(self, &r.boosts, i as usize))
            .collect();
        let new_boost = super::finite_or_zero(o.new_items_boost);
        let mut z = blend::blend(
            items.len(),
            |p| base[p],
            |p| boost[p],
            |p| self.is_new(items[p] as usize),
            new_boost,
        );
        for (c, &cpu) in got.candidates.iter().zip(&z[from..]) {
            if c.blended.to_bits() != cpu.to_bits() {
                return Err(ShortlistError::Blend {
                    index: c.index,
                    gpu: c.blended,
                    cpu,
                });
            }
        }
        score::add_memory_for(&self.model, &prepared.history, &items, &mut z);
        if let Some(b) = &self.basket {
            b.add_to_for(&r.basket, &items, &mut z);
        }
        let mut picked = plan.picked.clone();
        picked.sort_unstable();
        let entries: Vec<(u32, f32)> = (items.iter().copied().zip(z.iter().copied()))
            .filter(|(i, _)| picked.binary_search(i).is_err())
            .collect();
        let places = plan.k - plan.picked.len();
        let mut ranked = rank::Ranked {
            items: plan.picked.clone(),
            n_promoted: plan.picked.len(),
        };
        ranked
            .items
            .extend(top_k_of(entries, places).into_iter().map(|(i, _)| i));
        // Where each placed item sits in `items`.
        let mut at: HashMap<u32, usize> = ranked.items.iter().map(|&i| (i, 0)).collect();
        for (p, i) in items.iter().enumerate() {
            if let Some(slot) = at.get_mut(i) {
                *slot = p;
            }
        }
        let logit = |i: usize| at.get(&(i as u32)).map_or(f32::NAN, |&p| z[p]);
        let boost_of = |i: usize| at.get(&(i as u32)).map_or(0.0, |&p| boost[p]);
        Ok(self.present(prepared, &r, &ranked, logit, boost_of))
    }
}
