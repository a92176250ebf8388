//! Compute kernels for the scoring head, behind one dispatch point.
//!
//! After the item-side precomputation ([`HeadPlan`], built once per model load), one
//! request is: `H = relu(V · M + item_bias + a)` with `V` `[n × d]` and `M` `[d × h]`,
//! optional further Dense→ReLU layers, then `score_i = H_i · w_out + b_out + dot_i` where
//! `dot_i = v_i · u` (the dot-product term, carried as column `h` of `M`).
//!
//! Paths: a scalar reference (the test oracle), wasm SIMD128, a native fast CPU path, and
//! a wgpu compute-shader path. This module is the only place with `cfg` gates on them.

#[cfg(feature = "gpu")]
pub mod gpu;

/// Item-side tensors of the scoring head, precomputed once per model load.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadPlan {
    /// Number of items `n`.
    pub n_items: usize,
    /// Item vector width `d`.
    pub dim: usize,
    /// First hidden width `h`.
    pub hidden: usize,
    /// Item vectors `V`, row-major `[n × d]`.
    pub item_vectors: Vec<f32>,
    /// Item-only part of the first layer plus its bias, row-major `[n × h]`.
    pub item_bias: Vec<f32>,
    /// Further hidden layers: (weights row-major `[in × out]`, bias `[out]`), each
    /// followed by ReLU.
    pub layers: Vec<(Vec<f32>, Vec<f32>)>,
    /// Output weights `[last hidden]`.
    pub w_out: Vec<f32>,
    /// Output bias.
    pub b_out: f32,
}

/// The per-request, user-side inputs of the scoring head.
#[derive(Debug, Clone, PartialEq)]
pub struct UserQuery {
    /// `M`, row-major `[d × (h + 1)]`: columns `0..h` are the user-dependent first-layer
    /// weights `diag(u) · C`, column `h` is `u` itself (the dot-product term).
    pub m: Vec<f32>,
    /// User-only part of the first layer, `[h]`.
    pub a: Vec<f32>,
}

/// The CPU compute paths. [`CpuKernel::Scalar`] is the reference every other path is
/// tested against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuKernel {
    /// Plain loops; the test oracle.
    Scalar,
    /// wasm SIMD128 (wasm32 builds only).
    Simd128,
    /// Native fast path (x86-64 AVX2/FMA or a blocked GEMM) for the trainer and CLI.
    Native,
}

impl CpuKernel {
    /// The fastest CPU path available on this build and machine.
    pub fn best() -> CpuKernel {
        CpuKernel::Scalar
    }

    /// Short name: `scalar`, `simd`, `native`.
    pub fn name(self) -> &'static str {
        match self {
            CpuKernel::Scalar => "scalar",
            CpuKernel::Simd128 => "simd",
            CpuKernel::Native => "native",
        }
    }

    /// Scores every item: `out[i]` is the head's logit for item `i` (`out.len()` must be
    /// `plan.n_items`).
    pub fn scores(self, plan: &HeadPlan, query: &UserQuery, out: &mut [f32]) {
        let _ = (plan, query, out);
        todo!("kernels helper")
    }
}
