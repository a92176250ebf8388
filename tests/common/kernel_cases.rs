//! Helpers shared by the native (`tests/kernels.rs`) and browser (`tests/web_kernels.rs`)
//! kernel parity tests: a deterministic generator, random head plans and queries, the
//! tolerance check against the scalar scores, and the odd shapes to try.
#![allow(dead_code)] // each test crate uses its own subset

use vitrine::kernels::{CpuKernel, HeadPlan, UserQuery};

pub const TOL: f32 = 1e-4;

/// xorshift64* generator: deterministic, no dependencies.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn vec(&mut self, len: usize, scale: f32) -> Vec<f32> {
        (0..len).map(|_| self.unit() * scale).collect()
    }
}

pub fn random_plan(rng: &mut Rng, n: usize, d: usize, h: usize, extra: &[usize]) -> HeadPlan {
    let mut layers = Vec::new();
    let mut width = h;
    for &w in extra {
        let scale = 1.0 / (width as f32).sqrt();
        layers.push((rng.vec(width * w, scale), rng.vec(w, 0.1)));
        width = w;
    }
    HeadPlan {
        n_items: n,
        dim: d,
        hidden: h,
        item_vectors: rng.vec(n * d, 1.0),
        layers,
        w_out: rng.vec(width, 1.0 / (width as f32).sqrt()),
        b_out: rng.unit(),
    }
}

pub fn random_query(rng: &mut Rng, plan: &HeadPlan) -> UserQuery {
    let scale = 1.0 / (plan.dim as f32).sqrt();
    UserQuery {
        m: rng.vec(plan.dim * (plan.hidden + 1), scale),
        a: rng.vec(plan.hidden, 0.3),
    }
}

pub fn scores(kernel: CpuKernel, plan: &HeadPlan, query: &UserQuery) -> Vec<f32> {
    let mut out = vec![f32::NAN; plan.n_items];
    kernel.scores(plan, query, &mut out);
    out
}

pub fn assert_close(what: &str, expected: &[f32], got: &[f32]) {
    assert_eq!(expected.len(), got.len(), "{what}: length");
    for (i, (x, y)) in expected.iter().zip(got).enumerate() {
        assert!(
            (x - y).abs() <= TOL * (1.0 + x.abs()),
            "{what}: item {i}: scalar {x}, got {y}"
        );
    }
}

/// Shapes: every n with a rotating (d, h), plus every (d, h) at a middling n with the
/// first `extras_at_37` extra-layer settings.
pub fn shapes(extras_at_37: usize) -> Vec<(usize, usize, usize, Vec<usize>)> {
    let ns = [0usize, 1, 7, 33, 1000, 4099];
    let ds = [1usize, 3, 16, 33, 64];
    let hs = [1usize, 5, 32, 64];
    let extras: [&[usize]; 3] = [&[], &[17], &[32, 5]];
    let mut out = Vec::new();
    for (i, &n) in ns.iter().enumerate() {
        for (e, extra) in extras.iter().enumerate() {
            let d = ds[(i + e) % ds.len()];
            let h = hs[(i + 2 * e) % hs.len()];
            out.push((n, d, h, extra.to_vec()));
        }
    }
    for &d in &ds {
        for &h in &hs {
            for extra in &extras[..extras_at_37] {
                out.push((37, d, h, extra.to_vec()));
            }
        }
    }
    out
}
