//! Stage 2 of the pipeline: one final logit per item.
//!
//! # Math
//! For item `i`, with `base_i` the head's logit (or, with no signal at all, the
//! popularity logit `logit(pop_i / Σ pop)`):
//!
//! ```text
//! boost_i = Σ_b w_b · [i ∈ ids_b  or  category(i) = category_b]     (each boost once per item)
//! z_i     = clean(clean(base_i) + boost_i + β · new_i)               β = newItemsBoost
//! z_i    += memory_i(h)                                              (personal requests only)
//! z_i    += α · E_i(B)                                               (a basket B, with a basket section)
//! z_i    += λ · σ(z) · cos(v_c, v_i)                                 (context item c given)
//! score_i = sigmoid(z_i)
//! ```
//!
//! where `clean(x)` maps NaN to `-inf` (ranked last) and `-0.0` to `+0.0` (so ties are
//! ties), `memory_i(h)` is the model's transition-memory term over the encoder's
//! input ([`super::score::add_memory`]) and `α · E_i(B)` the co-purchase evidence of the
//! basket's items from the weight file's `basket.*` section
//! ([`crate::basket::Basket::add_to`]; added only where `E_i > 0`: items never bought
//! with a basket item keep the model's logit and order, the evidence lifts the others).
//! The context term ranks "similar items" by the context item first and the history
//! second: `cos` is the cosine of the item vectors (0 when either is zero), `σ(z)` the
//! standard deviation of the finite `z` before the term (the spread of the personal
//! ranking, so the term's size does not depend on the model's logit scale) and `λ` =
//! [`CONTEXT_WEIGHT`]: an item whose vector is close to the context item's gains up to
//! `λ` standard deviations over an unrelated one. The sums run in exactly this order
//! (boosts in request order, the memory term, the evidence, the context term), which
//! fixes the bits of every score.
use super::{RecommendError, Recommender};
use crate::kernels::quant::dot_and_square_i8;
use crate::kernels::shortlist::blended;
use crate::kernels::ItemVectors;

/// `λ`: how many standard deviations of the personal ranking a cosine of 1 with the
/// context item adds ("similar items" rank by the context first, the history second).
pub const CONTEXT_WEIGHT: f32 = 3.0;

/// The Euclidean norm of a vector (the one the context term's cosines use).
pub fn norm(x: &[f32]) -> f32 {
    x.iter().map(|a| a * a).sum::<f32>().sqrt()
}

/// The Euclidean norm of each `d`-long row of f32 `vectors`, kept by the recommender.
/// An int8 plan keeps none: [`add_context_similarity`] computes its cosines from the
/// int8 values ([`crate::kernels::quant::dot_and_square_i8`]), instead of holding 4
/// bytes an item.
pub fn norms(vectors: &ItemVectors, d: usize) -> Vec<f32> {
    match vectors {
        ItemVectors::F32(v) => v.chunks_exact(d.max(1)).map(norm).collect(),
        ItemVectors::Int8(_) => Vec::new(),
    }
}

/// Adds the context term `λ · σ(z) · cos(v_c, v_i)` to every finite logit (module docs;
/// f32 plans' norms are the recommender's, computed once at load). For an int8 plan,
/// `v_i = s_i · q_i` with a scale `s_i ≥ 0` (the weight file's rule), so the scales
/// cancel: `cos = (q_c · q_i) / √((q_c · q_c)(q_i · q_i))` for `s_c, s_i > 0` (0
/// otherwise, a zero vector), from exact integer sums and one division in f64: the
/// dequantised rows' cosine, better rounded, without a catalogue-sized f32 pass.
pub fn add_context_similarity(rec: &Recommender, context: u32, logit: &mut [f32]) {
    let d = rec.plan.dim;
    let v = rec.item_vectors();
    let (Some(vc), Some(nc)) = (v.row(context as usize, d), rec.item_norm(context as usize)) else {
        return;
    };
    let (mut n, mut sum, mut sq) = (0f64, 0f64, 0f64);
    for &z in logit.iter().filter(|z| z.is_finite()) {
        n += 1.0;
        sum += z as f64;
        sq += (z as f64) * (z as f64);
    }
    if n < 2.0 || nc == 0.0 {
        return;
    }
    let mean = sum / n;
    let sigma = ((sq / n - mean * mean).max(0.0)).sqrt() as f32;
    let scale = CONTEXT_WEIGHT * sigma;
    let add = |z: &mut f32, vi: &[f32], ni: f32| {
        if z.is_finite() && ni > 0.0 {
            let dot: f32 = vc.iter().zip(vi).map(|(a, b)| a * b).sum();
            *z += scale * (dot / (nc * ni));
        }
    };
    match v {
        ItemVectors::F32(v) => {
            let norms = rec.item_norms();
            for ((z, vi), &ni) in logit.iter_mut().zip(v.chunks_exact(d)).zip(norms) {
                add(z, vi, ni);
            }
        }
        ItemVectors::Int8(q) => {
            let qc = q.row(context as usize);
            let sq_c = dot_and_square_i8(qc, qc).1;
            if !(q.scale[context as usize] > 0.0 && sq_c > 0) {
                return;
            }
            let rows = q.q.chunks_exact(q.stride).zip(&q.scale);
            for (z, (qi, &si)) in logit.iter_mut().zip(rows) {
                if z.is_finite() && si > 0.0 {
                    let (dot, sq) = dot_and_square_i8(qc, qi);
                    if sq > 0 {
                        let cos = dot as f64 / (sq_c as f64 * sq as f64).sqrt();
                        *z += scale * cos as f32;
                    }
                }
            }
        }
    }
}

/// A boost with its ids and category resolved to catalog indices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResolvedBoost {
    /// Boosted item indices, sorted, without duplicates.
    pub ids: Vec<u32>,
    /// Boosted category index.
    pub category: Option<u32>,
    /// Added to the logit.
    pub weight: f32,
}

impl ResolvedBoost {
    /// Resolves `boost` (the `j`-th of the request). `strict`: unknown ids or category
    /// names are errors; otherwise they are skipped.
    pub fn resolve(
        rec: &Recommender,
        boost: &super::Boost,
        j: usize,
        strict: bool,
    ) -> Result<ResolvedBoost, RecommendError> {
        let mut ids = Vec::new();
        for (k, id) in boost.ids.iter().enumerate() {
            match rec.item_index(id) {
                Some(i) => ids.push(i),
                None if strict => {
                    return Err(RecommendError::UnknownOptionItem {
                        field: format!("boost[{j}].ids[{k}]"),
                        id: id.clone(),
                    })
                }
                None => {}
            }
        }
        ids.sort_unstable();
        ids.dedup();
        let category = match &boost.category {
            Some(name) => match rec.category_index(name) {
                Some(c) => Some(c),
                None if strict => {
                    return Err(RecommendError::InvalidOption(format!(
                        "boost[{j}].category: unknown category {name:?}"
                    )))
                }
                None => None,
            },
            None => None,
        };
        Ok(ResolvedBoost {
            ids,
            category,
            weight: boost.weight,
        })
    }
}

/// `boost_i` of item `i`: the weights of the boosts naming it or its category, summed
/// in request order from `0.0` (non-finite weights are skipped).
#[inline]
pub fn boost_of(rec: &Recommender, boosts: &[ResolvedBoost], i: usize) -> f32 {
    let c = rec.category_of(i);
    sum_boosts(boosts, |b| {
        b.ids.binary_search(&(i as u32)).is_ok() || b.category == Some(c)
    })
}

/// `boost_i` of an item of category `c` that no boost names by id: what the GPU
/// shortlist adds per category ([`crate::kernels::shortlist::CategoryRule::boost`]).
#[inline]
pub fn category_boost(boosts: &[ResolvedBoost], c: u32) -> f32 {
    sum_boosts(boosts, |b| b.category == Some(c))
}

/// The finite weights of the boosts that `hit`, summed in request order from `0.0`.
#[inline]
fn sum_boosts(boosts: &[ResolvedBoost], hit: impl Fn(&ResolvedBoost) -> bool) -> f32 {
    let mut x = 0.0f32;
    for b in boosts {
        if b.weight.is_finite() && hit(b) {
            x += b.weight;
        }
    }
    x
}

/// `z_i = clean(clean(base_i) + boost_i + β·new_i)` for the `n` items `0..n` (`base(i)`,
/// `boost(i)`: item `i`'s base logit and boost, computed as they are needed: no
/// catalogue-sized buffer but the result), by [`crate::kernels::shortlist::blended`]
/// (the GPU shortlist's scalar reference uses the same function). The memory term is
/// added afterwards.
pub fn blend(
    n: usize,
    base: impl Fn(usize) -> f32,
    boost: impl Fn(usize) -> f32,
    is_new: impl Fn(usize) -> bool,
    new_items_boost: f32,
) -> Vec<f32> {
    (0..n)
        .map(|i| blended(base(i), boost(i), new_items_boost, is_new(i)))
        .collect()
}

/// [`blend`] with the base logits in `z`, blended where they lie (the same values).
pub fn blend_in_place(
    z: &mut [f32],
    boost: impl Fn(usize) -> f32,
    is_new: impl Fn(usize) -> bool,
    new_items_boost: f32,
) {
    for (i, x) in z.iter_mut().enumerate() {
        *x = blended(*x, boost(i), new_items_boost, is_new(i));
    }
}
