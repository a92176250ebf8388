//! Order statistics without a copy: the `k`-th largest of values that can be read
//! again, by radix select.
//!
//! # Math
//! Each value maps to an unsigned key with the same order as [`f64::total_cmp`]
//! ([`f32::total_cmp`]): a negative value's bits flipped whole, a positive one's with
//! the sign bit set. The `k`-th largest key is found 16 bits at a time from the top:
//! one pass counts, among the values whose key starts with the digits chosen so far,
//! how many have each next digit (a 65,536-entry histogram); walking the digits from
//! the largest, the first whose running count reaches `k` is the next digit, and `k`
//! drops by the counts above it. Four passes for an `f64`, two for an `f32`; memory is
//! the histogram, whatever the number of values (a sorted copy of 1,000,000 dates would
//! take 8 MiB, and in wasm stay taken).

/// A float ranked by its order-keeping key.
pub trait OrderKey: Copy {
    /// Significant bits of the key (the rest are zero).
    const BITS: u32;
    /// The key: `a.total_cmp(&b)` is `key(a).cmp(&key(b))`.
    fn key(self) -> u64;
    /// The value of a key.
    fn from_key(key: u64) -> Self;
}

impl OrderKey for f64 {
    const BITS: u32 = 64;
    fn key(self) -> u64 {
        let b = self.to_bits();
        if b >> 63 == 1 {
            !b
        } else {
            b | 1 << 63
        }
    }
    fn from_key(key: u64) -> f64 {
        f64::from_bits(if key >> 63 == 1 {
            key & !(1 << 63)
        } else {
            !key
        })
    }
}

impl OrderKey for f32 {
    const BITS: u32 = 32;
    fn key(self) -> u64 {
        let b = self.to_bits();
        u64::from(if b >> 31 == 1 { !b } else { b | 1 << 31 })
    }
    fn from_key(key: u64) -> f32 {
        let key = key as u32;
        f32::from_bits(if key >> 31 == 1 {
            key & !(1 << 31)
        } else {
            !key
        })
    }
}

/// The `k`-th largest (1-based) of the values `values()` yields, in `total_cmp`'s order
/// (`values` is called once a pass). `None` when `k` is 0 or more than their number.
pub fn kth_largest<T: OrderKey, I: Iterator<Item = T>>(
    values: impl Fn() -> I,
    k: usize,
) -> Option<T> {
    if k == 0 {
        return None;
    }
    let (mut prefix, mut mask, mut k) = (0u64, 0u64, k);
    let mut hist = vec![0usize; 1 << 16];
    let mut shift = T::BITS;
    while shift > 0 {
        shift -= 16;
        hist.fill(0);
        for x in values() {
            let key = x.key();
            if key & mask == prefix {
                hist[(key >> shift) as usize & 0xffff] += 1;
            }
        }
        let mut found = false;
        for digit in (0..1usize << 16).rev() {
            if hist[digit] >= k {
                prefix |= (digit as u64) << shift;
                found = true;
                break;
            }
            k -= hist[digit];
        }
        if !found {
            return None;
        }
        mask |= 0xffff << shift;
    }
    Some(T::from_key(prefix))
}

/// The `k`-th smallest (0-based: `k = 0` is the least) of the `len` values `values()`
/// yields (`len` their number), in `total_cmp`'s order. `None` when `k >= len`.
pub fn kth_smallest<T: OrderKey, I: Iterator<Item = T>>(
    values: impl Fn() -> I,
    len: usize,
    k: usize,
) -> Option<T> {
    kth_largest(values, len.checked_sub(k)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn sample<T>(
        rng: &mut SplitMix64,
        len: usize,
        f: impl Fn(&mut SplitMix64, usize) -> T,
    ) -> Vec<T> {
        (0..len).map(|i| f(rng, i)).collect()
    }

    #[test]
    fn kth_largest_is_the_sorted_values_kth() {
        let mut rng = SplitMix64::new(7);
        for len in [1usize, 2, 5, 100, 3000] {
            let values = sample(&mut rng, len, |rng, i| match rng.below(7) {
                0 => -0.0,
                1 => 0.0,
                2 => (rng.below(5) as f64) * 1e9,
                3 => -(rng.below(1000) as f64) / 7.0,
                4 => f64::from_bits(rng.next_u64() & !(0x7ff << 52)) * (i as f64),
                5 => f64::INFINITY,
                _ => 1.7e9 + rng.below(100_000) as f64 + 0.25,
            });
            let mut sorted = values.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            for k in (1..=len).filter(|&k| k < 8 || k % 97 == 0 || k + 3 > len) {
                let got = kth_largest(|| values.iter().copied(), k).unwrap();
                assert_eq!(got.to_bits(), sorted[k - 1].to_bits(), "len {len} k {k}");
            }
            assert!(kth_largest(|| values.iter().copied(), 0).is_none());
            assert!(kth_largest(|| values.iter().copied(), len + 1).is_none());
        }
    }

    #[test]
    fn kth_smallest_f32_is_the_sorted_values_kth() {
        let mut rng = SplitMix64::new(9);
        for len in [1usize, 3, 64, 2000] {
            let values = sample(&mut rng, len, |rng, _| match rng.below(5) {
                0 => -0.0f32,
                1 => rng.below(20) as f32 * 0.5,
                2 => -(rng.below(20) as f32) * 1e-3,
                3 => f32::from_bits(rng.next_u64() as u32 & !(0xff << 23)),
                _ => 9.99 + rng.below(1000) as f32,
            });
            let mut sorted = values.clone();
            sorted.sort_by(f32::total_cmp);
            for k in (0..len).filter(|&k| k < 8 || k % 89 == 0 || k + 3 > len) {
                let got = kth_smallest(|| values.iter().copied(), len, k).unwrap();
                assert_eq!(got.to_bits(), sorted[k].to_bits(), "len {len} k {k}");
            }
            assert!(kth_smallest(|| values.iter().copied(), len, len).is_none());
        }
    }
}
