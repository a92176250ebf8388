//! The shortlist: a filtered, blended top-`m` per chunk of the catalogue, so that a
//! recommendation served on the GPU reads back `O(m · chunks)` candidates instead of all
//! `n` logits. [`shortlist_reference`] is the scalar reference of the GPU pass
//! (`topk.wgsl` in its shortlist mode, [`super::gpu::GpuScorer::shortlist`]); the
//! recommendation engine builds the [`ShortlistRequest`] and finishes from the
//! [`Shortlist`] (`crate::recommend::shortlist`).
//!
//! # Math
//! Each item `i` has fixed attributes ([`ItemAttributes`]): a category `c_i`, a "new"
//! flag `new_i` and an optional price `p_i`. A request gives a rule per category
//! (`allowed_c`, `boost_c`), the new-item boost `β`, `newOnly`, price bounds and a sorted
//! set `S` of items the pass must leave out (the engine's sparse terms; their head logits
//! are gathered instead). Item `i` is a *candidate* iff
//!
//! ```text
//! c_i < #rules  ∧  allowed_{c_i}  ∧  (¬newOnly ∨ new_i)  ∧  i ∉ S
//!   ∧  (no price bound  ∨  p_i finite ∧ ¬(p_i < lo) ∧ ¬(p_i > hi))
//! ```
//!
//! and its blended logit is the engine's `z_i = clean(clean(base_i) + boost_{c_i} + β·new_i)`
//! ([`blended`]: `clean` maps NaN to `-inf`; the result's `-0.0` is `+0.0`). Within each
//! chunk of `chunk` consecutive items the `m` best candidates by
//! [`super::topk::rank_cmp`] on `z` are kept, best first.
//!
//! # Exactness on the GPU
//! Every test above is an integer comparison on the GPU (prices through
//! [`super::topk::sort_key`] of the price with `-0.0` made `+0.0`, which orders finite
//! floats exactly as `<` does), and so are `clean` and the `-0.0` rule (bit tests). The
//! only floating-point operations are the two additions, and only for an item whose
//! offset `boost_{c_i}` or `β·new_i` is non-zero (adding a zero changes nothing once `-0.0`
//! is made `+0.0`): WGSL rounds `f32` addition correctly, so the GPU's `z_i` is the
//! CPU's. A GPU that flushed subnormals or reassociated would break that; the engine
//! therefore checks every candidate's returned `z_i` against its own and falls back to
//! the full read-back on any difference.
//!
//! Bound: a request holds at most [`MAX_PER_CHUNK`] per chunk and [`MAX_SPARSE`] items in
//! `S`.
use super::topk::{rank_cmp, sort_key};

/// Largest `m` (candidates per chunk) a shortlist may ask for.
pub const MAX_PER_CHUNK: usize = 256;
/// Largest `|S|` (items left out and gathered).
pub const MAX_SPARSE: usize = 65_536;

/// The fixed per-item attributes the shortlist filters on, one entry per catalogue item.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemAttributes {
    /// Category index of each item.
    pub category: Vec<u32>,
    /// Whether each item counts as new.
    pub is_new: Vec<bool>,
    /// Price of each item, when known.
    pub price: Vec<Option<f32>>,
}

impl ItemAttributes {
    /// Number of items.
    pub fn len(&self) -> usize {
        self.category.len()
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.category.is_empty()
    }

    /// Whether the three columns have the same length.
    pub fn is_consistent(&self) -> bool {
        self.is_new.len() == self.category.len() && self.price.len() == self.category.len()
    }
}

/// What one category contributes to a shortlist.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CategoryRule {
    /// Whether the category's items may be candidates.
    pub allowed: bool,
    /// `boost_c`, added to the logit of the category's items.
    pub boost: f32,
}

/// One shortlist request (module docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShortlistRequest {
    /// `m`: candidates kept per chunk (at most [`MAX_PER_CHUNK`]; 0 gathers only).
    pub per_chunk: usize,
    /// One rule per category index.
    pub categories: Vec<CategoryRule>,
    /// `β`, added to new items' logits.
    pub new_boost: f32,
    /// Only new items.
    pub new_only: bool,
    /// Lower price bound (finite).
    pub price_min: Option<f32>,
    /// Upper price bound (finite).
    pub price_max: Option<f32>,
    /// `S`: sorted, distinct item indices left out of the candidates; their head logits
    /// are returned in [`Shortlist::sparse_logits`].
    pub sparse: Vec<u32>,
}

/// One kept candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Item index.
    pub index: u32,
    /// The head's logit `base_i`.
    pub base: f32,
    /// The blended logit `z_i` as the pass computed it.
    pub blended: f32,
}

/// What a shortlist pass returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shortlist {
    /// Each chunk's best candidates, chunk by chunk, each chunk's best first.
    pub candidates: Vec<Candidate>,
    /// The head's logit of each item of [`ShortlistRequest::sparse`], in its order.
    pub sparse_logits: Vec<f32>,
}

/// `clean(clean(base) + boost + β·new)` with `-0.0` made `+0.0`: the engine's blend of
/// one item (`crate::recommend::blend::blend` computes the same, in the same order).
#[inline]
pub fn blended(base: f32, boost: f32, new_boost: f32, is_new: bool) -> f32 {
    let base = if base.is_nan() {
        f32::NEG_INFINITY
    } else {
        base
    };
    let x = base + boost + if is_new { new_boost } else { 0.0 };
    if x.is_nan() {
        f32::NEG_INFINITY
    } else {
        x + 0.0
    }
}

/// The price as the GPU compares it: 0 when unknown or not finite, else the order key of
/// the price with `-0.0` made `+0.0` (never 0).
pub fn price_key(price: Option<f32>) -> u32 {
    match price {
        Some(p) if p.is_finite() => sort_key(p + 0.0),
        _ => 0,
    }
}

impl ShortlistRequest {
    /// Whether item `i` with these attributes is a candidate (module docs).
    pub fn admits(&self, attrs: &ItemAttributes, i: usize) -> bool {
        let (Some(&c), Some(&new)) = (attrs.category.get(i), attrs.is_new.get(i)) else {
            return false;
        };
        let Some(rule) = self.categories.get(c as usize) else {
            return false;
        };
        if !rule.allowed || (self.new_only && !new) {
            return false;
        }
        if self.price_min.is_some() || self.price_max.is_some() {
            let key = price_key(attrs.price.get(i).copied().flatten());
            let lo = self.price_min.map(|p| price_key(Some(p)));
            let hi = self.price_max.map(|p| price_key(Some(p)));
            if key == 0 || lo.is_some_and(|lo| key < lo) || hi.is_some_and(|hi| key > hi) {
                return false;
            }
        }
        self.sparse.binary_search(&(i as u32)).is_err()
    }
}

/// The scalar reference of the shortlist pass over the head's `logits`, in chunks of
/// `chunk` items (the GPU's `TOPK_CHUNK`).
pub fn shortlist_reference(
    logits: &[f32],
    attrs: &ItemAttributes,
    req: &ShortlistRequest,
    chunk: usize,
) -> Shortlist {
    let n = logits.len().min(attrs.len()).min(u32::MAX as usize);
    let mut candidates = Vec::new();
    for start in (0..n).step_by(chunk.max(1)) {
        let end = (start + chunk.max(1)).min(n);
        let mut entries: Vec<(u32, f32)> = (start..end)
            .filter(|&i| req.admits(attrs, i))
            .map(|i| {
                let boost = req.categories[attrs.category[i] as usize].boost;
                let z = blended(logits[i], boost, req.new_boost, attrs.is_new[i]);
                (i as u32, z)
            })
            .collect();
        entries.sort_unstable_by(rank_cmp);
        entries.truncate(req.per_chunk);
        candidates.extend(entries.into_iter().map(|(index, blended)| Candidate {
            index,
            base: logits[index as usize],
            blended,
        }));
    }
    let sparse_logits = (req.sparse.iter())
        .map(|&i| logits.get(i as usize).copied().unwrap_or(f32::NAN))
        .collect();
    Shortlist {
        candidates,
        sparse_logits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_follow_the_rules_and_the_order() {
        let attrs = ItemAttributes {
            category: vec![0, 1, 1, 0, 2, 1],
            is_new: vec![false, true, false, false, true, true],
            price: vec![
                Some(1.0),
                Some(5.0),
                None,
                Some(-0.0),
                Some(9.0),
                Some(f32::NAN),
            ],
        };
        let logits = [3.0, 1.0, 9.0, f32::NAN, 2.0, -0.0];
        let mut req = ShortlistRequest {
            per_chunk: 2,
            categories: vec![
                CategoryRule {
                    allowed: true,
                    boost: 0.0,
                },
                CategoryRule {
                    allowed: true,
                    boost: 0.5,
                },
            ],
            new_boost: 2.0,
            sparse: vec![0],
            ..ShortlistRequest::default()
        };
        // Item 4's category has no rule; item 0 is in S; chunk 0 = items 0..4.
        let got = shortlist_reference(&logits, &attrs, &req, 4);
        let idx: Vec<u32> = got.candidates.iter().map(|c| c.index).collect();
        assert_eq!(idx, vec![2, 1, 5]);
        assert_eq!(got.candidates[1].blended, 3.5); // 1 + 0.5 + 2
        assert_eq!(got.sparse_logits, vec![3.0]);
        // A price bound drops unpriced and non-finite prices; -0.0 passes a 0 bound.
        req.price_min = Some(0.0);
        req.price_max = Some(5.0);
        req.sparse.clear();
        let idx: Vec<u32> = (shortlist_reference(&logits, &attrs, &req, 4).candidates)
            .iter()
            .map(|c| c.index)
            .collect();
        assert_eq!(idx, vec![1, 0]);
        assert!(req.admits(&attrs, 3));
        assert_eq!(blended(f32::NAN, 1.0, 0.0, false), f32::NEG_INFINITY);
        assert_eq!(blended(-0.0, 0.0, 0.0, false).to_bits(), 0);
    }
}
