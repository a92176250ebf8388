//! The one deterministic random-number generator of the crate: SplitMix64 (Steele, Lea &
//! Flood, 2014). Used for parameter initialisation, dropout, negative sampling, shuffling,
//! the baselines and test data, so that every run is reproducible under a seed.
//!
//! Each step adds the golden-ratio increment `0x9E3779B97F4A7C15` to the state and mixes
//! it with two xor-shift-multiply rounds; the outputs pass BigCrush and every seed
//! (including 0) gives a full-period stream.

/// SplitMix64: a small, fast, deterministic generator.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform integer in `0..n` by Lemire's multiply-shift (`n > 0`; returns 0 for
    /// `n == 0`). The bias is below 2⁻³² for catalog-sized `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Integer in `0..n` by reduction modulo `n` (`n > 0`; returns 0 for `n == 0`). The
    /// trainer's sampling rule since its first release: kept so that training runs
    /// reproduce bit for bit under a seed. New code uses [`SplitMix64::below`].
    pub fn below_mod(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform float in `[0, 1)` (24 random bits).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::SplitMix64;

    #[test]
    fn matches_the_reference_stream() {
        // First outputs for seed 1234567 from the reference C implementation
        // (Vigna, splitmix64.c).
        let mut r = SplitMix64::new(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
    }

    #[test]
    fn ranges_stay_in_bounds() {
        let mut r = SplitMix64::new(3);
        for n in 1..200u64 {
            assert!(r.below(n) < n);
            assert!(r.below_mod(n as usize) < n as usize);
            let f = r.next_f32();
            assert!((0.0..1.0).contains(&f));
        }
        assert_eq!(r.below(0), 0);
        assert_eq!(r.below_mod(0), 0);
    }
}
