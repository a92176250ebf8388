//! One stable sort for the paths that are not hot: the history's events by time, the
//! search's facets, typo corrections and re-ranked hits, a result's reasons, the weight
//! file's layout checks. The standard library's `sort_by` is compiled once per element
//! type and comparator: the browser package held thirteen copies of its stable sort
//! (about 6 KB of wasm each). These paths now share this one; of the other copies, two
//! were map `collect`s (now inserts) and one the search's suggestions (now the top-k).
//!
//! # Method
//! [`sort_by`] sorts the positions `0..n` stably by `cmp(&v[a], &v[b])` with the
//! standard stable sort, called through a `&mut dyn FnMut` (so compiled once for the
//! crate), then moves the elements into that order by following the permutation's
//! cycles with swaps (no `Clone`, no second buffer of elements). A stable sort's output
//! is unique given the comparator — equal elements keep their order — so the result is
//! `v.sort_by(cmp)`'s exactly. Cost: `O(n log n)` comparisons through one indirect
//! call each, `n` positions of scratch; the hot paths (top-k, the search's best `k`)
//! keep their own selection.

use std::cmp::Ordering;

/// Sorts `v` stably by `cmp`: the same order as `v.sort_by(cmp)`.
pub fn sort_by<T>(v: &mut [T], mut cmp: impl FnMut(&T, &T) -> Ordering) {
    if v.len() < 2 {
        return;
    }
    let mut order: Vec<usize> = (0..v.len()).collect();
    sort_positions(&mut order, &mut |a, b| cmp(&v[a], &v[b]));
    permute(v, &mut order);
}

/// Sorts `v` stably by the key `f` (`v.sort_by_key(f)`'s order).
pub fn sort_by_key<T, K: Ord>(v: &mut [T], mut f: impl FnMut(&T) -> K) {
    sort_by(v, |a, b| f(a).cmp(&f(b)));
}

/// The crate's one instance of the standard stable sort.
#[inline(never)]
fn sort_positions(order: &mut [usize], cmp: &mut dyn FnMut(usize, usize) -> Ordering) {
    order.sort_by(|&a, &b| cmp(a, b));
}

/// Puts `v[order[i]]` at position `i` for every `i` (`order` a permutation of
/// `0..v.len()`; consumed: each entry is marked as its cycle is walked).
fn permute<T>(v: &mut [T], order: &mut [usize]) {
    const DONE: usize = usize::MAX;
    for start in 0..v.len() {
        // Walk the cycle through `start`: position `j` takes the element at `order[j]`,
        // which no earlier step of this cycle has moved.
        let mut j = start;
        while order[j] != DONE {
            let src = order[j];
            order[j] = DONE;
            if src == start {
                break;
            }
            v.swap(j, src);
            j = src;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    #[test]
    fn same_order_as_the_standard_stable_sort() {
        let mut rng = SplitMix64::new(7);
        for n in [0usize, 1, 2, 3, 17, 64, 1000] {
            // Few distinct keys, so equal keys are common and stability shows.
            let v: Vec<(u32, usize)> = (0..n).map(|i| (rng.below(5) as u32, i)).collect();
            let (mut got, mut want) = (v.clone(), v.clone());
            sort_by(&mut got, |a, b| a.0.cmp(&b.0));
            want.sort_by_key(|a| a.0);
            assert_eq!(got, want, "n = {n}");
            let (mut got, mut want) = (v.clone(), v);
            sort_by_key(&mut got, |x| std::cmp::Reverse(x.0));
            want.sort_by_key(|x| std::cmp::Reverse(x.0));
            assert_eq!(got, want, "n = {n}, by key");
        }
    }

    #[test]
    fn floats_by_total_order_and_owned_elements() {
        let mut v = vec![3.0f32, f32::NAN, -0.0, 0.0, -1.0, f32::INFINITY, 3.0];
        let mut want = v.clone();
        sort_by(&mut v, f32::total_cmp);
        want.sort_by(f32::total_cmp);
        assert_eq!(
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            want.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        let mut s: Vec<String> = ["b", "a", "c", "a"].map(String::from).to_vec();
        sort_by(&mut s, |a, b| a.cmp(b));
        assert_eq!(s, ["a", "a", "b", "c"]);
    }
}
