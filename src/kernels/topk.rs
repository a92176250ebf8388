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
    top_k_where(scores, |_| true, k)
}

/// The `k` best of `scores` among the indices `eligible` accepts, as `(index, score)`,
/// best first: the same list as [`top_k_among`] over `(0..n).filter(eligible)`, from
/// a buffer of at most `max(2k, 1024)` entries as in [`top_k_streamed`]. Indices come
/// in increasing order, so an entry beats the bar (the `k`-th best of the last cut, an
/// earlier index) only with a larger [`sort_key`]: one integer comparison per item,
/// before `eligible` is asked.
pub fn top_k_where(scores: &[f32], eligible: impl Fn(u32) -> bool, k: usize) -> Vec<(u32, f32)> {
    if k == 0 {
        return Vec::new();
    }
    let n = scores.len().min(u32::MAX as usize);
    let cap = k.saturating_mul(2).max(1024);
    let mut kept: Vec<(u32, f32)> = Vec::new();
    // No cut yet: every key (NaN's 0 included) passes.
    let mut bar: Option<u32> = None;
    for (i, &s) in scores[..n].iter().enumerate() {
        let i = i as u32;
        if bar.is_some_and(|b| sort_key(s) <= b) || !eligible(i) {
            continue;
        }
        kept.push((i, s));
        if kept.len() >= cap {
            kept.select_nth_unstable_by(k - 1, rank_cmp);
            kept.truncate(k);
            bar = Some(sort_key(kept[k - 1].1));
        }
    }
    top_k_of(kept, k)
}

/// [`top_k_of`] over entries read one at a time, holding at most `max(2k, 1024)` of
/// them (not one per entry: 8 MiB at 1,000,000 items, which wasm memory would keep).
/// The buffer is cut back to its best `k` whenever it fills, and an entry that does
/// not beat the `k`-th best of the last cut is not kept: with distinct indices the
/// order is strict, so it cannot be in the top `k`. Same list as [`top_k_of`].
pub fn top_k_streamed(entries: impl IntoIterator<Item = (u32, f32)>, k: usize) -> Vec<(u32, f32)> {
    if k == 0 {
        return Vec::new();
    }
    let cap = k.saturating_mul(2).max(1024);
    let mut kept: Vec<(u32, f32)> = Vec::new();
    let mut bar: Option<(u32, f32)> = None;
    for e in entries {
        if bar.is_some_and(|b| rank_cmp(&e, &b).is_ge()) {
            continue;
        }
        kept.push(e);
        if kept.len() >= cap {
            kept.select_nth_unstable_by(k - 1, rank_cmp);
            kept.truncate(k);
            bar = Some(kept[k - 1]);
        }
    }
    top_k_of(kept, k)
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
    let entries = (candidates.into_iter()).filter_map(|i| scores.get(i as usize).map(|&s| (i, s)));
    top_k_streamed(entries, k)
        .into_iter()
        .map(|(i, _)| i)
        .collect()
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

    #[test]
    fn streamed_top_k_is_the_whole_selection() {
        let mut rng = crate::rng::SplitMix64::new(11);
        for n in [0usize, 1, 5, 1023, 1024, 1025, 5000, 20_000] {
            let scores: Vec<f32> = (0..n)
                .map(|_| match rng.below(10) {
                    0 => f32::NAN,
                    1 => f32::NEG_INFINITY,
                    2 => -0.0,
                    3 => 0.0,
                    4..=6 => rng.below(8) as f32,
                    _ => rng.below(1 << 20) as f32 / 1024.0 - 512.0,
                })
                .collect();
            // Indices in a scrambled order, some left out.
            let candidates: Vec<u32> = (0..n as u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 3) % n.max(1) as u32)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .rev()
                .collect();
            for k in [0usize, 1, 2, 10, 511, 512, 513, 3000, n + 1] {
                let all: Vec<(u32, f32)> = scores
                    .iter()
                    .enumerate()
                    .map(|(i, &s)| (i as u32, s))
                    .collect();
                let key = |v: Vec<(u32, f32)>| {
                    v.into_iter()
                        .map(|(i, s)| (i, s.to_bits()))
                        .collect::<Vec<_>>()
                };
                let kept = |i: u32| i % 3 != 1;
                let filtered = all.iter().copied().filter(|e| kept(e.0)).collect();
                assert_eq!(key(top_k(&scores, k)), key(top_k_of(all, k)), "n {n} k {k}");
                assert_eq!(
                    key(top_k_where(&scores, kept, k)),
                    key(top_k_of(filtered, k)),
                    "n {n} k {k}"
                );
                let listed: Vec<(u32, f32)> = candidates
                    .iter()
                    .map(|&i| (i, scores[i as usize]))
                    .collect();
                let want: Vec<u32> = top_k_of(listed, k).into_iter().map(|e| e.0).collect();
                assert_eq!(
                    top_k_among(&scores, candidates.iter().copied(), k),
                    want,
                    "n {n} k {k}"
                );
            }
        }
    }
}
