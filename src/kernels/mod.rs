//! Compute kernels for the scoring head, behind one dispatch point.
//!
//! The item side ([`HeadPlan`], built once per model load) holds the item vectors; one
//! request is: `H = relu(V · M + a)` with `V` `[n × d]` and `M` `[d × h]`,
//! optional further Dense→ReLU layers, then `score_i = H_i · w_out + b_out + dot_i` where
//! `dot_i = v_i · u` (the dot-product term, carried as column `h` of `M`).
//!
//! Paths: a scalar reference (the test oracle), wasm SIMD128 (plain, or with relaxed-SIMD
//! fused multiply-add in a second build), a native fast CPU path, and a wgpu
//! compute-shader path. This module is the only place with `cfg` gates on them.
//! Used by the recommendation engine (browser and CLI) and by evaluation (native).
//!
//! [`top_k`] is the one ranking routine every path shares: descending scores, NaN below
//! every number, ties broken by the lower item index.

#[cfg(feature = "gpu")]
pub mod gpu;
pub mod native;
pub mod scalar;
pub mod scorer;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128;

/// Item-side tensors of the scoring head, built once per model load.
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
    /// `M`, row-major `[d × (h + 1)]`: columns `0..h` are the first layer's weights on
    /// the item vector for this user (`diag(u)·W₁ₚ + W₁ᵥ`), column `h` is `u` itself (the
    /// dot-product term).
    pub m: Vec<f32>,
    /// The first layer's user part plus its bias, `[h]`.
    pub a: Vec<f32>,
}

/// A plan or query whose tensor lengths do not match its declared shapes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// A tensor has the wrong number of elements.
    #[error("{name}: expected {expected} values, got {got}")]
    Length {
        /// Which tensor.
        name: String,
        /// Elements the shapes call for.
        expected: usize,
        /// Elements present.
        got: usize,
    },
    /// A shape product overflows `usize`.
    #[error("shape overflow in {0}")]
    Overflow(String),
}

fn expect_len(name: &str, expected: Option<usize>, got: usize) -> Result<(), ShapeError> {
    match expected {
        None => Err(ShapeError::Overflow(name.to_string())),
        Some(e) if e == got => Ok(()),
        Some(e) => Err(ShapeError::Length {
            name: name.to_string(),
            expected: e,
            got,
        }),
    }
}

impl HeadPlan {
    /// Width of the last hidden layer (the length `w_out` must have).
    pub fn last_width(&self) -> usize {
        self.layers.last().map_or(self.hidden, |(_, b)| b.len())
    }

    /// Multiply-adds per item for one request (first layer incl. the dot-product column,
    /// further layers, output); `2 ×` this is the FLOP count per item.
    pub fn macs_per_item(&self) -> usize {
        let mut macs = self.dim * (self.hidden + 1);
        let mut width = self.hidden;
        for (_, b) in &self.layers {
            macs += width * b.len();
            width = b.len();
        }
        macs + width
    }

    /// Checks every tensor length against `n_items`, `dim`, `hidden` and the layer
    /// chain (each layer's `in` is the previous width, its `out` is its bias length).
    pub fn validate(&self) -> Result<(), ShapeError> {
        let (n, d, h) = (self.n_items, self.dim, self.hidden);
        expect_len("item_vectors", n.checked_mul(d), self.item_vectors.len())?;
        let mut width = h;
        for (l, (w, b)) in self.layers.iter().enumerate() {
            expect_len(
                &format!("layers[{l}].weights"),
                width.checked_mul(b.len()),
                w.len(),
            )?;
            width = b.len();
        }
        expect_len("w_out", Some(width), self.w_out.len())
    }

    /// Checks a query's lengths against this plan (`m` is `[d × (h + 1)]`, `a` is `[h]`).
    pub fn validate_query(&self, query: &UserQuery) -> Result<(), ShapeError> {
        let cols = self.hidden.checked_add(1);
        expect_len(
            "query.m",
            cols.and_then(|c| c.checked_mul(self.dim)),
            query.m.len(),
        )?;
        expect_len("query.a", Some(self.hidden), query.a.len())
    }
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
    /// Every path, in order of preference from slowest to fastest.
    pub const ALL: [CpuKernel; 3] = [CpuKernel::Scalar, CpuKernel::Simd128, CpuKernel::Native];

    /// The fastest CPU path available on this build and machine.
    pub fn best() -> CpuKernel {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        {
            CpuKernel::Simd128
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            CpuKernel::Native
        }
        #[cfg(all(target_arch = "wasm32", not(target_feature = "simd128")))]
        {
            CpuKernel::Scalar
        }
    }

    /// Whether this path runs its own code on this build (`Simd128` only on
    /// wasm32 with SIMD128; an unavailable path falls back to [`CpuKernel::Scalar`]).
    pub fn available(self) -> bool {
        match self {
            CpuKernel::Scalar | CpuKernel::Native => true,
            CpuKernel::Simd128 => cfg!(all(target_arch = "wasm32", target_feature = "simd128")),
        }
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
    ///
    /// # Panics
    /// If the plan or query fails [`HeadPlan::validate`] / [`HeadPlan::validate_query`]
    /// or `out.len() != plan.n_items` (shapes come from a validated model; use
    /// [`CpuKernel::try_scores`] for unchecked inputs).
    pub fn scores(self, plan: &HeadPlan, query: &UserQuery, out: &mut [f32]) {
        if let Err(e) = self.try_scores(plan, query, out) {
            panic!("CpuKernel::scores: {e}");
        }
    }

    /// As [`CpuKernel::scores`], returning a [`ShapeError`] instead of panicking.
    pub fn try_scores(
        self,
        plan: &HeadPlan,
        query: &UserQuery,
        out: &mut [f32],
    ) -> Result<(), ShapeError> {
        plan.validate()?;
        plan.validate_query(query)?;
        expect_len("out", Some(plan.n_items), out.len())?;
        match self {
            CpuKernel::Scalar => scalar::scores(plan, query, out),
            CpuKernel::Native => native::scores(plan, query, out),
            CpuKernel::Simd128 => {
                #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
                simd128::scores(plan, query, out);
                #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
                scalar::scores(plan, query, out);
            }
        }
        Ok(())
    }

    /// The `k` best of `scores`, best first; same as [`top_k`].
    pub fn top_k(scores: &[f32], k: usize) -> Vec<(u32, f32)> {
        top_k(scores, k)
    }
}

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
/// and ties go to the lower index. `O(n log k)`-ish via selection, then a sort of `k`.
///
/// Indices are `u32`; items past `u32::MAX` are ignored.
pub fn top_k(scores: &[f32], k: usize) -> Vec<(u32, f32)> {
    let n = scores.len().min(u32::MAX as usize);
    let k = k.min(n);
    if k == 0 {
        return Vec::new();
    }
    let mut all: Vec<(u32, f32)> = scores[..n]
        .iter()
        .enumerate()
        .map(|(i, &s)| (i as u32, s))
        .collect();
    if k < n {
        all.select_nth_unstable_by(k - 1, rank_cmp);
        all.truncate(k);
    }
    all.sort_unstable_by(rank_cmp);
    all
}

/// Which SIMD instruction set this build's CPU kernels use: `"relaxed-simd"` (wasm
/// SIMD128 plus relaxed-SIMD fused multiply-add), `"simd128"`, `"scalar"` (wasm without
/// SIMD) or `"native"`. The browser package ships a plain-SIMD128 and a relaxed-SIMD
/// build; the page's loader picks one by feature detection.
pub fn simd_build() -> &'static str {
    if cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd")) {
        "relaxed-simd"
    } else if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
        "simd128"
    } else if cfg!(target_arch = "wasm32") {
        "scalar"
    } else {
        "native"
    }
}

/// A throughput probe of this thread's arithmetic ceiling, for benchmark reports:
/// with `fused == false`, independent multiplies and adds (wasm SIMD128 `f32x4.mul` /
/// `f32x4.add`, the plain build's instruction mix); with `fused == true`, fused
/// multiply-adds (relaxed-SIMD `relaxed_madd` in the relaxed build, AVX2/FMA natively).
/// Returns `(checksum, flops)`, or `None` when this build has no such instruction (a
/// fused probe in the plain wasm build). The caller times it.
pub fn peak_probe(iters: u64, fused: bool) -> Option<(f32, u64)> {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        if !fused {
            return Some(simd128::peak_mul_add(iters));
        }
        #[cfg(target_feature = "relaxed-simd")]
        return Some(simd128::peak_fma(iters));
        #[cfg(not(target_feature = "relaxed-simd"))]
        return None;
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        let _ = fused;
        Some(native::fma_peak(iters))
    }
}
