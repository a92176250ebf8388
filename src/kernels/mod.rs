//! Compute kernels for the scoring head, behind one dispatch point.
//!
//! The item side ([`HeadPlan`], built once per model load) holds the item vectors; one
//! request is: `H = relu(V · M + a)` with `V` `[n × d]` and `M` `[d × h]`,
//! optional further Dense→ReLU layers, then `score_i = H_i · w_out + b_out + dot_i` where
//! `dot_i = v_i · u` (the dot-product term, carried as column `h` of `M`).
//!
//! Paths: a scalar reference ([`scalar`], the test oracle, on every target), a native
//! fast CPU path (`native`, native builds only), wasm SIMD128 (`simd128`, wasm32
//! with the `simd128` target feature only; plain, or with relaxed-SIMD fused
//! multiply-add in a second build), and a wgpu compute-shader path (`gpu`, feature
//! `gpu`). The blocked CPU paths share their operand packing (`pack`). This module is
//! the only place with `cfg` gates on them: a [`CpuKernel`] variant exists only where
//! its code runs, and [`CpuKernel::ALL`] lists exactly those (the parity tests iterate
//! over it). Used by the recommendation engine (browser and CLI) and by evaluation
//! (native).
//!
//! [`CpuKernel::try_scores_of`] scores a list of items instead of the whole catalogue
//! (a search's candidate pool), with the same per-item arithmetic, so each listed item
//! gets exactly its full-catalogue score.
//!
//! **int8 plans** ([`ItemVectors::Int8`], what an int8 weight file loads to): every CPU
//! kernel runs the first layer and the dot-product term as an integer GEMM on the int8
//! item rows and the per-request query quantised to 7 bits ([`QueryI8`]), with exact
//! i32 sums — the same integers on every kernel ([`CpuKernel::int8_products`]) — then
//! the f32 tail; [`quant`] says which operations stay f32 and why. Scalar: plain i32
//! loops; native: an auto-vectorised i32 loop (AVX2 where present); SIMD128:
//! `i32x4.dot_i16x8_s` on sign-extended pairs, or in the relaxed build
//! `i32x4.relaxed_dot_i8x16_i7x16_add_s` on the query shifted to `[1, 127]` — or the same
//! integers in two steps, whichever [`DotForm`] the scorer timed as faster.
//!
//! [`shortlist`] is the recommendation's filtered, blended top-`m` per chunk (run on the
//! GPU so a recommendation reads back a few candidates, not every logit), with its
//! scalar reference.
//!
//! [`top_k`] ([`topk`]) is the one ranking routine every path shares (kernels, the
//! recommendation engine, evaluation): descending scores, NaN below every number, ties
//! broken by the lower item index.

pub mod gemm;
#[cfg(feature = "gpu")]
pub mod gpu;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(any(not(target_arch = "wasm32"), target_feature = "simd128"))]
mod pack;
pub mod quant;
pub mod scalar;
pub mod scorer;
pub mod shortlist;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128;
pub mod topk;

pub use quant::{Int8Items, ItemRows, ItemVectors, QueryI8};
pub use topk::{rank_cmp, sort_key, top_k, top_k_among, top_k_of, top_k_where};

/// Item-side tensors of the scoring head, built once per model load.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadPlan {
    /// Number of items `n`.
    pub n_items: usize,
    /// Item vector width `d`.
    pub dim: usize,
    /// First hidden width `h`.
    pub hidden: usize,
    /// Item vectors `V`, `[n × d]`: f32, or int8 with a per-row scale (scored with the
    /// integer first layer, [`quant`]).
    pub item_vectors: ItemVectors,
    /// Further hidden layers: (weights row-major `[in × out]`, bias `[out]`), each
    /// followed by ReLU.
    pub layers: Vec<(Vec<f32>, Vec<f32>)>,
    /// Output weights `[last hidden]`.
    pub w_out: Vec<f32>,
    /// Output bias.
    pub b_out: f32,
    /// The GPU holds f32 item vectors as f16, two to a word (an f16 weight file): half
    /// the GPU memory and bandwidth, each element widened back to f32 as it is read. The
    /// CPU kernels ignore it (they score the f32 vectors); int8 vectors ignore it too.
    pub gpu_f16: bool,
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
    /// An item index to score is not in the catalogue.
    #[error("item {item} is out of range (the plan has {n_items} items)")]
    ItemOutOfRange {
        /// The index asked for.
        item: u32,
        /// Items in the plan.
        n_items: usize,
    },
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
        match &self.item_vectors {
            ItemVectors::F32(v) => expect_len("item_vectors", n.checked_mul(d), v.len())?,
            ItemVectors::Int8(q) => q.validate(n, d)?,
        }
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

/// How the relaxed-SIMD build's int8 kernels multiply four int8 pairs into an i32 lane.
/// The two forms give the same integers (`simd128::dot_add`), so the choice changes
/// speed, never a score; which is faster depends on how the browser's engine lowers
/// them on the processor at hand. An x86 engine can run the fused instruction as one
/// VNNI `vpdpbusd`; without one it takes three instructions and a rebuilt constant
/// (`vpmaddubsw`, `vpmaddwd` with ones, `vpaddd`), and the split form, whose constant
/// stays in a register, ran 13–17% faster on an AMD EPYC core without AVX-VNNI
/// (README, "The host changed"). [`scorer::Scorer`] times both on the first requests
/// and keeps the faster ([`scorer::DotTuner`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DotForm {
    /// `i32x4.relaxed_dot_i8x16_i7x16_add_s`: the default.
    Fused,
    /// `i16x8.relaxed_dot_i8x16_i7x16_s`, then `i32x4.dot_i16x8_s` with ones and
    /// `i32x4.add`.
    Split,
}

impl DotForm {
    /// The forms this build can run: both in the relaxed-SIMD wasm build, none in the
    /// others (one int8 multiply each, nothing to choose).
    pub fn choices() -> &'static [DotForm] {
        if cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd")) {
            &[DotForm::Fused, DotForm::Split]
        } else {
            &[]
        }
    }

    /// The form the int8 kernels run now; `None` where there is no choice.
    pub fn current() -> Option<DotForm> {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return simd128::dot_form();
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        None
    }

    /// Makes the int8 kernels run in this form from the next request on (for the whole
    /// wasm instance); `false`, with nothing changed, where there is no choice.
    pub fn select(self) -> bool {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return simd128::set_dot_form(self);
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        {
            let _ = self;
            false
        }
    }

    /// `fused` or `split`.
    pub fn name(self) -> &'static str {
        match self {
            DotForm::Fused => "fused",
            DotForm::Split => "split",
        }
    }
}

/// The CPU compute paths that exist on this target: a variant is compiled in only where
/// its code runs, so a kernel that cannot run can be neither constructed nor listed.
/// [`CpuKernel::Scalar`] is the reference every other path is tested against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuKernel {
    /// Plain loops; the test oracle. Every target.
    Scalar,
    /// wasm SIMD128 (wasm32 builds with the `simd128` target feature only).
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    Simd128,
    /// Native fast path (a blocked GEMM, AVX2/FMA on x86-64 when the processor has
    /// them) for the trainer and CLI (native builds only).
    #[cfg(not(target_arch = "wasm32"))]
    Native,
}

impl CpuKernel {
    /// Every path this target has, from slowest to fastest: the scalar reference first,
    /// the target's fast path last (natively `[Scalar, Native]`, on wasm32 with SIMD128
    /// `[Scalar, Simd128]`, on wasm32 without it `[Scalar]`).
    #[cfg(not(target_arch = "wasm32"))]
    pub const ALL: &'static [CpuKernel] = &[CpuKernel::Scalar, CpuKernel::Native];
    /// Every path this target has, from slowest to fastest: the scalar reference first,
    /// the target's fast path last (natively `[Scalar, Native]`, on wasm32 with SIMD128
    /// `[Scalar, Simd128]`, on wasm32 without it `[Scalar]`).
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    pub const ALL: &'static [CpuKernel] = &[CpuKernel::Scalar, CpuKernel::Simd128];
    /// Every path this target has, from slowest to fastest: the scalar reference first,
    /// the target's fast path last (natively `[Scalar, Native]`, on wasm32 with SIMD128
    /// `[Scalar, Simd128]`, on wasm32 without it `[Scalar]`).
    #[cfg(all(target_arch = "wasm32", not(target_feature = "simd128")))]
    pub const ALL: &'static [CpuKernel] = &[CpuKernel::Scalar];

    /// The fastest CPU path on this target: the last of [`CpuKernel::ALL`].
    pub fn best() -> CpuKernel {
        Self::ALL[Self::ALL.len() - 1]
    }

    /// Short name: `scalar`, `simd`, `native`.
    pub fn name(self) -> &'static str {
        match self {
            CpuKernel::Scalar => "scalar",
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            CpuKernel::Simd128 => "simd",
            #[cfg(not(target_arch = "wasm32"))]
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
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            CpuKernel::Simd128 => simd128::scores(plan, query, out),
            #[cfg(not(target_arch = "wasm32"))]
            CpuKernel::Native => native::scores(plan, query, out),
        }
        Ok(())
    }

    /// Scores only the listed items: `out[r]` is the head's logit for item `items[r]`
    /// (`out.len()` must be `items.len()`; any order, repeats allowed), bit for bit what
    /// [`CpuKernel::try_scores`] with the same kernel gives that item — every kernel
    /// computes an item's row on its own; the blocked ones gather the listed vectors a
    /// block at a time. Work and scratch memory are proportional to `items.len()`,
    /// not to the catalogue (for a search's candidate pool).
    pub fn try_scores_of(
        self,
        plan: &HeadPlan,
        query: &UserQuery,
        items: &[u32],
        out: &mut [f32],
    ) -> Result<(), ShapeError> {
        plan.validate()?;
        plan.validate_query(query)?;
        expect_len("out", Some(items.len()), out.len())?;
        if let Some(&item) = items.iter().find(|&&i| i as usize >= plan.n_items) {
            return Err(ShapeError::ItemOutOfRange {
                item,
                n_items: plan.n_items,
            });
        }
        match self {
            CpuKernel::Scalar => scalar::scores_of(plan, query, items, out),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            CpuKernel::Simd128 => simd128::scores_of(plan, query, items, out),
            #[cfg(not(target_arch = "wasm32"))]
            CpuKernel::Native => native::scores_of(plan, query, items, out),
        }
        Ok(())
    }
}

impl CpuKernel {
    /// The exact i32 first-layer products of an int8 plan as this kernel computes them:
    /// `out[i · q.cols + j] = Σ_k items_ik · q_kj` for every row `i` of `items`
    /// ([`quant`]; the parity tests compare every kernel's integers with
    /// [`scalar::products_i8`] bit for bit).
    ///
    /// # Errors
    /// [`ShapeError`] when `q.stride != items.stride`, `q` has the wrong length, or
    /// `out.len() != rows · q.cols`.
    pub fn int8_products(
        self,
        items: &Int8Items,
        q: &QueryI8,
        out: &mut [i32],
    ) -> Result<(), ShapeError> {
        let n = items.n_rows();
        items.validate(n, items.dim)?;
        expect_len("query.stride", Some(items.stride), q.stride)?;
        expect_len("query.q", q.stride.checked_mul(q.cols), q.q.len())?;
        expect_len("query.scale", Some(q.cols), q.scale.len())?;
        expect_len("out", n.checked_mul(q.cols), out.len())?;
        match self {
            CpuKernel::Scalar => scalar::products_i8(items, q, 0, n, out),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            CpuKernel::Simd128 => simd128::products_i8(items, q, out),
            #[cfg(not(target_arch = "wasm32"))]
            CpuKernel::Native => native::products_i8(items, q, out),
        }
        Ok(())
    }
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
/// multiply-adds (relaxed-SIMD `relaxed_madd` in the relaxed build). Natively both are
/// the native kernel's own instruction set ([`native::fma_peak`]: AVX2/FMA where
/// present). Returns `(checksum, flops)`, or `None` when this build has no such
/// instruction (a fused probe in the plain wasm build, any probe in a wasm build without
/// SIMD128). The caller times it.
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
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = fused;
        Some(native::fma_peak(iters))
    }
    #[cfg(all(target_arch = "wasm32", not(target_feature = "simd128")))]
    {
        let _ = (iters, fused);
        None
    }
}
