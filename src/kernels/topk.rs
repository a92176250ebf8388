//! The one top-k routine of the crate: every ranking (the CPU and GPU kernels, the
//! recommendation engine, evaluation) orders with [`rank_cmp`].
//!
//! # Ordering rule
//! Entries are `(index, score)`. Scores compare through [`sort_key`], an order-preserving
//! map `f32 → u32`: a larger key is a better score, every NaN maps to 0 (below `-inf`,
//! all NaNs tied), and `-0.0` sorts just below `+0.0` (the IEEE total order on every
//! non-NaN value). Equal keys are broken by the lower index. Since indices are distinct,
//! this is a strict total order, so the top `k` is unique and does not depend on the
//! selection algorithm.
//!
//! Cost: `O(n)` average selection (`select_nth_unstable_by`) of the `k`-th entry, then a
//! sort of the `k` kept, `O(k log k)`.
use super::CpuKernel;

/// Order-preserving map of an `f32` to a `u32`: a larger key is a better score, every NaN
/// maps to 0 (below `-inf`), and `-0.0` sorts just below `+0.0`. The GPU top-k shader
/// uses the same map, so both rank identically.
pub fn sort_key(x: f32) -> u32 {
    if x.is_nan() {
        return 0;
    }
    let b = x.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// Ranking order of two `(index, score)` entries: better score first, NaN last, ties by
/// lower index.
pub fn rank_cmp(a: &(u32, f32), b: &(u32, f32)) -> std::cmp::Ordering {
    sort_key(b.1)
        .cmp(&sort_key(a.1))
        .then_with(|| a.0.cmp(&b.0))
}

/// The `k` highest scores as `(index, score)`, best first; NaN ranks below every number
/// and ties go to the lower index (see the module docs).
///
/// Indices are `u32`; items past `u32::MAX` are ignored.
pub fn top_k(scores: &[f32], k: usize) -> Vec<(u32, f32)> {
    let n = scores.len().min(u32::MAX as usize);
    let entries: Vec<(u32, f32)> = scores[..n]
        .iter()
        .enumerate()
        .map(|(i, &s)| (i as u32, s))
        .collect();
    top_k_of(entries, k)
}

/// The `k` best of arbitrary `(index, score)` entries (a candidate subset), best first,
/// in the order of [`rank_cmp`]. Indices should be distinct (the order is then strict).
pub fn top_k_of(mut entries: Vec<(u32, f32)>, k: usize) -> Vec<(u32, f32)> {
    let k = k.min(entries.len());
    if k == 0 {
        return Vec::new();
    }
    if k < entries.len() {
        entries.select_nth_unstable_by(k - 1, rank_cmp);
        entries.truncate(k);
    }
    entries.sort_unstable_by(rank_cmp);
    entries
}

/// The indices of the `k` best `scores` among `candidates` (indices into `scores`; ones
/// out of range are skipped), best first, in the order of [`rank_cmp`].
pub fn top_k_among(
    scores: &[f32],
    candidates: impl IntoIterator<Item = u32>,
    k: usize,
) -> Vec<u32> {
    let entries: Vec<(u32, f32)> = candidates
        .into_iter()
        .filter_map(|i| scores.get(i as usize).map(|&s| (i, s)))
        .collect();
    top_k_of(entries, k).into_iter().map(|(i, _)| i).collect()
}

impl CpuKernel {
    /// The `k` best of `scores`, best first; same as [`top_k`].
    pub fn top_k(scores: &[f32], k: usize) -> Vec<(u32, f32)> {
        top_k(scores, k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_is_last_and_ties_go_to_the_lower_index() {
        let s = [1.0, f32::NAN, 1.0, 3.0, f32::NEG_INFINITY, -0.0, 0.0];
        let got: Vec<u32> = top_k(&s, 7).iter().map(|e| e.0).collect();
        assert_eq!(got, vec![3, 0, 2, 6, 5, 4, 1]);
        assert_eq!(top_k_among(&s, [1, 4, 2, 0, 99], 3), vec![0, 2, 4]);
        assert!(top_k_among(&s, 0..7, 0).is_empty());
        assert!(top_k(&s, 0).is_empty());
        assert_eq!(
            top_k_of(vec![(9, 2.0), (4, 2.0)], 5),
            vec![(4, 2.0), (9, 2.0)]
        );
    }
}
