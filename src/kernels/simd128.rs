//! The wasm SIMD128 path for the browser runtime: the same blocked structure as the
//! native path (operands packed and zero-padded once per request by `super::pack`,
//! blocks of [`BLOCK`] items kept in cache — the next items of the catalogue, or of a
//! list of items gathered by `super::pack::Rows`), with an explicit 4 × 8 register block of `f32x4` accumulators
//! (K loop innermost, operands read through pointers: one `v128.load32_splat` per row
//! of `A`, two `v128.load`s of `B`, no bounds checks) and `f32x4` dot products. Built
//! only for wasm32 with the `simd128` target feature (set in `.cargo/config.toml`).
//!
//! Two browser builds compile this file (`scripts/build-wasm.sh`): the plain one
//! multiplies then adds; the one with the `relaxed-simd` target feature uses
//! `f32x4.relaxed_madd` (a fused multiply-add where the hardware has one). The page's
//! loader picks the relaxed build by feature detection, the plain one otherwise.
use core::arch::wasm32::*;

use super::pack::{padded_cols, I8Rows, Operands, Padded, Rows, BLOCK, COL_MULTIPLE};
use super::pack::{Int8Request, PackI8};
#[cfg(target_feature = "relaxed-simd")]
use super::quant::QUERY_OFFSET;
use super::quant::{activation_max, quantize_activation, Int8Items, QueryI8, ACT_MAX, K_MULTIPLE};
use super::scalar::dequant;
use super::{DotForm, HeadPlan, UserQuery};
#[cfg(target_feature = "relaxed-simd")]
use core::sync::atomic::{AtomicBool, Ordering};

/// Rows of the register block (items).
const MR: usize = 4;
/// Columns of the register block (two `f32x4`); padded widths are multiples of
/// [`COL_MULTIPLE`], hence of `NR`.
const NR: usize = 8;
const _: () = assert!(COL_MULTIPLE.is_multiple_of(NR));

#[inline(always)]
fn load4(s: &[f32]) -> v128 {
    let s = &s[..4];
    // Safety: `s` is 4 initialised f32 = 16 readable bytes; `v128_load` has no
    // alignment requirement.
    unsafe { v128_load(s.as_ptr() as *const v128) }
}

#[inline(always)]
fn store4(s: &mut [f32], v: v128) {
    let s = &mut s[..4];
    // Safety: `s` is 4 f32 = 16 writable bytes; `v128_store` has no alignment
    // requirement.
    unsafe { v128_store(s.as_mut_ptr() as *mut v128, v) }
}

/// `acc + a·b` lane-wise: one fused multiply-add in the relaxed-SIMD build
/// (`f32x4.relaxed_madd`, which may or may not round once), a multiply then an add
/// otherwise.
#[inline(always)]
fn fmadd(a: v128, b: v128, acc: v128) -> v128 {
    #[cfg(target_feature = "relaxed-simd")]
    {
        f32x4_relaxed_madd(a, b, acc)
    }
    #[cfg(not(target_feature = "relaxed-simd"))]
    {
        f32x4_add(acc, f32x4_mul(a, b))
    }
}

fn hsum(v: v128) -> f32 {
    (f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<2>(v))
        + (f32x4_extract_lane::<1>(v) + f32x4_extract_lane::<3>(v))
}

/// The register block: `MR` rows × `NR` columns of `C` over the whole `K` loop.
///
/// # Safety
/// Each `a[r]` must be valid for `k` reads, and `b` for reads of `NR` floats at
/// `b + kk · ldb` for every `kk < k`.
#[inline(always)]
unsafe fn block(a: [*const f32; MR], b: *const f32, ldb: usize, k: usize) -> [[v128; 2]; MR] {
    let z = f32x4_splat(0.0);
    let (mut c00, mut c01, mut c10, mut c11) = (z, z, z, z);
    let (mut c20, mut c21, mut c30, mut c31) = (z, z, z, z);
    let [a0, a1, a2, a3] = a;
    let mut bp = b;
    for kk in 0..k {
        // Safety: `kk < k`, so `bp = b + kk · ldb` and `a[r] + kk` are in bounds by the
        // caller's contract; `v128_load` and `v128_load32_splat` need no alignment.
        let (b0, b1, x0, x1, x2, x3) = unsafe {
            (
                v128_load(bp as *const v128),
                v128_load(bp.add(4) as *const v128),
                v128_load32_splat(a0.add(kk) as *const u32),
                v128_load32_splat(a1.add(kk) as *const u32),
                v128_load32_splat(a2.add(kk) as *const u32),
                v128_load32_splat(a3.add(kk) as *const u32),
            )
        };
        c00 = fmadd(x0, b0, c00);
        c01 = fmadd(x0, b1, c01);
        c10 = fmadd(x1, b0, c10);
        c11 = fmadd(x1, b1, c11);
        c20 = fmadd(x2, b0, c20);
        c21 = fmadd(x2, b1, c21);
        c30 = fmadd(x3, b0, c30);
        c31 = fmadd(x3, b1, c31);
        // Safety: one row further down `b`; only dereferenced while `kk < k`
        // (`wrapping_add` keeps the final, unused step defined).
        bp = bp.wrapping_add(ldb);
    }
    [[c00, c01], [c10, c11], [c20, c21], [c30, c31]]
}

/// `c[r][j] = Σ_k a[r][k] · b[k][j]` for `rows` rows and `j < b.padded`.
#[allow(clippy::too_many_arguments)]
// Not inlined: called once per block, so V8 can move it from its baseline compiler to
// the optimising one between calls (wasm has no on-stack replacement: one long call
// over a 1,000,000-item catalogue ran in baseline code, 9.6 s against 1.1 s warm).
#[inline(never)]
fn gemm(
    a: &[f32],
    lda: usize,
    rows: usize,
    k: usize,
    b: &Padded,
    zeros: &[f32],
    c: &mut [f32],
    ldc: usize,
) {
    let ldb = b.padded;
    assert!(
        ldb.is_multiple_of(NR) && b.data.len() >= k * ldb && zeros.len() >= k,
        "simd128::gemm: operand shapes"
    );
    let zeros = zeros[..k].as_ptr();
    let mut r0 = 0;
    while r0 < rows {
        let row = |r: usize| -> *const f32 {
            if r0 + r < rows {
                a[(r0 + r) * lda..(r0 + r) * lda + k].as_ptr()
            } else {
                zeros
            }
        };
        let ptrs = [row(0), row(1), row(2), row(3)];
        let mut j0 = 0;
        while j0 < ldb {
            // Safety: every row pointer comes from a `k`-long slice (a row of `a` or
            // `zeros`), and `b.data` holds `k` rows of `ldb ≥ j0 + NR` floats (asserted
            // above), so `b.data[kk · ldb + j0 ..][..NR]` is in bounds for `kk < k`.
            let acc = unsafe { block(ptrs, b.data.as_ptr().add(j0), ldb, k) };
            for (r, [lo, hi]) in acc.iter().enumerate().take((rows - r0).min(MR)) {
                let dst = &mut c[(r0 + r) * ldc + j0..(r0 + r) * ldc + j0 + NR];
                store4(dst, *lo);
                store4(&mut dst[4..], *hi);
            }
            j0 += NR;
        }
        r0 += MR;
    }
}

// Inlined into `output` whatever the build's inline threshold (Cargo.toml's `wasm`
// profile): a call per item row costs the head about 3%.
#[inline(always)]
fn dot(x: &[f32], y: &[f32]) -> f32 {
    let n = x.len().min(y.len());
    let (mut s0, mut s1) = (f32x4_splat(0.0), f32x4_splat(0.0));
    let mut i = 0;
    while i + 8 <= n {
        s0 = fmadd(load4(&x[i..]), load4(&y[i..]), s0);
        s1 = fmadd(load4(&x[i + 4..]), load4(&y[i + 4..]), s1);
        i += 8;
    }
    let mut tail = 0.0;
    while i < n {
        tail += x[i] * y[i];
        i += 1;
    }
    hsum(f32x4_add(s0, s1)) + tail
}

/// ReLU of `row + bias` in place, four lanes at a time; `pmax(0, x)` maps NaN to 0
/// like the scalar `x.max(0.0)`.
fn bias_relu(row: &mut [f32], bias: &[f32]) {
    let n = row.len();
    let zero = f32x4_splat(0.0);
    let mut j = 0;
    while j + 4 <= n {
        let x = f32x4_add(load4(&row[j..]), load4(&bias[j..]));
        store4(&mut row[j..], f32x4_pmax(zero, x));
        j += 4;
    }
    while j < n {
        row[j] = (row[j] + bias[j]).max(0.0);
        j += 1;
    }
}

/// One request's operands, the int8 query packed for [`gemm_i8`].
type Request<'a> = super::pack::Request<'a, PackedI8>;

impl Request<'_> {
    fn run(&self, rows: Rows<'_>, out: &mut [f32]) {
        match &self.int8 {
            None => run(&self.ops, rows, out),
            Some(int8) if split_dot() => run_i8::<true>(&self.ops, int8, rows, out),
            Some(int8) => run_i8::<false>(&self.ops, int8, rows, out),
        }
    }
}

/// Scores every item with SIMD128 (an int8 plan's first layer as an integer GEMM).
/// Shapes must already be validated.
pub fn scores(plan: &HeadPlan, query: &UserQuery, out: &mut [f32]) {
    let n = plan.n_items.min(out.len());
    if n == 0 {
        return;
    }
    Request::new(plan, query).run(Rows::Range(0), &mut out[..n]);
}

/// Scores the listed items: `out[r]` = the score of item `items[r]`, bit for bit what
/// [`scores`] gives that item (each row is computed on its own). Shapes and indices
/// must already be validated.
pub fn scores_of(plan: &HeadPlan, query: &UserQuery, items: &[u32], out: &mut [f32]) {
    let n = items.len().min(out.len());
    if n == 0 {
        return;
    }
    Request::new(plan, query).run(Rows::Of(&items[..n]), &mut out[..n]);
}

/// Scores `rows` (`out[r]` for output row `r`) block by block.
fn run(ops: &Operands<'_>, rows: Rows<'_>, out: &mut [f32]) {
    let plan = ops.plan;
    let (d, h) = (plan.dim, plan.hidden);
    let stride = ops.max_padded;
    let mut cur = vec![0.0f32; BLOCK * stride];
    let mut next = vec![0.0f32; BLOCK * stride];
    let mut dots = [0.0f32; BLOCK];
    let mut gathered = Vec::new();
    if matches!(rows, Rows::Of(_)) {
        gathered.reserve_exact(BLOCK * d);
    }
    for (bi, out_b) in out.chunks_mut(BLOCK).enumerate() {
        let n_rows = out_b.len();
        let v = rows.vectors(plan, bi * BLOCK, n_rows, &mut gathered);
        gemm(v, d, n_rows, d, &ops.m, &ops.zeros, &mut cur, stride);
        for r in 0..n_rows {
            bias_relu(&mut cur[r * stride..r * stride + h], ops.a);
            dots[r] = dot(&v[r * d..(r + 1) * d], &ops.u);
        }
        tail(ops, &mut cur, &mut next, &dots, out_b);
    }
}

/// The further layers and the output of one block, from the first hidden rows in `cur`
/// (row stride `ops.max_padded`) and each row's dot-product term in `dots`.
// Not inlined, for V8's tier-up between calls: see `gemm`.
#[inline(never)]
fn tail(
    ops: &Operands<'_>,
    cur: &mut Vec<f32>,
    next: &mut Vec<f32>,
    dots: &[f32],
    out_b: &mut [f32],
) {
    let plan = ops.plan;
    let stride = ops.max_padded;
    let n_rows = out_b.len();
    let mut width = plan.hidden;
    for (w, b) in &ops.layers {
        gemm(cur, stride, n_rows, width, w, &ops.zeros, next, stride);
        for r in 0..n_rows {
            bias_relu(&mut next[r * stride..r * stride + w.cols], b);
        }
        std::mem::swap(cur, next);
        width = w.cols;
    }
    output(ops, cur, width, dots, out_b);
}

/// The output layer of one block: `out_b[r] = cur_r[..width] · w_out + b_out + dots[r]`
/// (row stride `ops.max_padded`).
fn output(ops: &Operands<'_>, cur: &[f32], width: usize, dots: &[f32], out_b: &mut [f32]) {
    let stride = ops.max_padded;
    for (r, o) in out_b.iter_mut().enumerate() {
        let hid = &cur[r * stride..r * stride + width];
        *o = dot(hid, &ops.plan.w_out) + ops.plan.b_out + dots[r];
    }
}

/// Columns of the int8 register block (two `i32x4`).
const NR_I8: usize = 8;
/// `k` values one step of the int8 block consumes: 4 bytes per lane
/// (`relaxed_dot_i8x16_i7x16_add`) in the relaxed build, 2 (`dot_i16x8`) otherwise.
#[cfg(target_feature = "relaxed-simd")]
const KSTEP: usize = 4;
#[cfg(not(target_feature = "relaxed-simd"))]
const KSTEP: usize = 2;
const _: () = assert!(K_MULTIPLE.is_multiple_of(KSTEP));

/// The int8 query packed for [`gemm_i8`]: for each group of [`KSTEP`] rows `k`, each
/// hidden column `j < cols - 1` (padded to a multiple of [`NR_I8`]) holds its `KSTEP`
/// values side by side, so one 16-byte load covers 4 columns. The last column (the
/// dot-product term) is kept apart in `dot`, `k` after `k`, for [`row_dot_i8`]: one
/// column of its own would cost the GEMM a whole block of [`NR_I8`]. Relaxed build:
/// bytes `r + 64` (in `[1, 127]`, the instruction's 7-bit operand; padding is the
/// shifted 0); plain build: the values sign-extended to i16. A further layer's weights
/// are packed the same way ([`PackI8::layer`]): every column, unshifted, no `dot`.
struct PackedI8 {
    data: Vec<Packed>,
    dot: Vec<Packed>,
    /// Columns packed in `data` (the query's `cols - 1`, a layer's `cols`), rounded up
    /// to a multiple of [`NR_I8`].
    padded: usize,
    groups: usize,
}

/// One packed element: relaxed build, the byte (`shift` added: the first layer's query
/// goes into `[1, 127]`); plain build, the value sign-extended to i16 (`shift` unused).
#[cfg(target_feature = "relaxed-simd")]
type Packed = u8;
#[cfg(not(target_feature = "relaxed-simd"))]
type Packed = i16;

#[cfg(target_feature = "relaxed-simd")]
fn pack_value(x: i8, shift: i32) -> Packed {
    (x as i32 + shift) as u8
}
#[cfg(not(target_feature = "relaxed-simd"))]
fn pack_value(x: i8, _shift: i32) -> Packed {
    x as i16
}

impl PackI8 for PackedI8 {
    /// The first layer's query: the hidden columns shifted by [`QUERY_OFFSET`] in the
    /// relaxed build (they are the instruction's 7-bit operand), the last column apart.
    fn query(q: &QueryI8) -> PackedI8 {
        #[cfg(target_feature = "relaxed-simd")]
        let shift = QUERY_OFFSET;
        #[cfg(not(target_feature = "relaxed-simd"))]
        let shift = 0;
        let hidden = q.cols.saturating_sub(1);
        let dot = (0..q.stride / KSTEP * KSTEP)
            .map(|k| match q.cols {
                0 => pack_value(0, shift),
                c => pack_value(q.q[k * c + c - 1], shift),
            })
            .collect();
        PackedI8 {
            dot,
            ..PackedI8::columns(q, hidden, shift)
        }
    }

    /// A further layer's weights: every column, unshifted (they are the relaxed
    /// instruction's signed operand; the activations are the 7-bit one), no dot column.
    fn layer(w: &QueryI8) -> PackedI8 {
        PackedI8::columns(w, w.cols, 0)
    }
}

impl PackedI8 {
    /// Columns `0 .. cols` of `q`, [`KSTEP`] values of `k` side by side per column,
    /// padded to a multiple of [`NR_I8`] with the packed 0; no dot column.
    fn columns(q: &QueryI8, cols: usize, shift: i32) -> PackedI8 {
        let padded = padded_cols(cols, NR_I8);
        let groups = q.stride / KSTEP;
        let mut data = vec![pack_value(0, shift); groups * padded * KSTEP];
        for g in 0..groups {
            for j in 0..cols {
                for m in 0..KSTEP {
                    let x = q.q[(g * KSTEP + m) * q.cols + j];
                    data[(g * padded + j) * KSTEP + m] = pack_value(x, shift);
                }
            }
        }
        PackedI8 {
            data,
            dot: Vec::new(),
            padded,
            groups,
        }
    }
}

/// The relaxed build's int8 multiply form: `false` for [`DotForm::Fused`] (the
/// default), `true` for [`DotForm::Split`]. Set by [`set_dot_form`]; read once per
/// request. (wasm32 has one thread per instance here: a relaxed load and store.)
#[cfg(target_feature = "relaxed-simd")]
static SPLIT_DOT: AtomicBool = AtomicBool::new(false);

/// Whether the int8 kernels run in [`DotForm::Split`] (always `false` in the plain
/// build, which has one form).
#[inline(always)]
fn split_dot() -> bool {
    #[cfg(target_feature = "relaxed-simd")]
    return SPLIT_DOT.load(Ordering::Relaxed);
    #[cfg(not(target_feature = "relaxed-simd"))]
    false
}

/// Selects the form of the relaxed build's int8 multiplies; `false` in the plain build
/// (which has one form: `i32x4.dot_i16x8_s` on sign-extended pairs), where nothing
/// changes. The two forms give the same integers (see [`dot_add`]), so this changes
/// speed, never a score.
pub fn set_dot_form(form: DotForm) -> bool {
    #[cfg(target_feature = "relaxed-simd")]
    {
        SPLIT_DOT.store(form == DotForm::Split, Ordering::Relaxed);
        true
    }
    #[cfg(not(target_feature = "relaxed-simd"))]
    {
        let _ = form;
        false
    }
}

/// The selected form in the relaxed build; `None` in the plain build.
pub fn dot_form() -> Option<DotForm> {
    if cfg!(target_feature = "relaxed-simd") {
        Some(if split_dot() {
            DotForm::Split
        } else {
            DotForm::Fused
        })
    } else {
        None
    }
}

/// `c + Σ` of the four products `s_i · u_i` in each i32 lane (`s` signed bytes, `u`
/// bytes in `[0, 127]`), in one of the two [`DotForm`]s: `SPLIT` false,
/// `i32x4.relaxed_dot_i8x16_i7x16_add_s`; true, `i16x8.relaxed_dot_i8x16_i7x16_s` (the
/// pairs' sums in i16 lanes), `i32x4.dot_i16x8_s` with ones (adjacent i16 lanes summed
/// into i32) and `i32x4.add`. Both are exact: a pair's sum is at most `2 · 128 · 127 =
/// 32,512` in magnitude, so the i16 step neither wraps nor saturates (the freedom the
/// relaxed instructions leave an engine is only what happens when it would), and the
/// i32 sums cannot overflow for the row lengths the kernels see. LLVM fuses
/// `i32x4.extadd_pairwise_i16x8_s` of the i16 dot back into the first form, which is
/// why the split one widens through a dot with ones. `ones` is `i16x8.splat(1)`,
/// hoisted by the caller.
#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
fn dot_add<const SPLIT: bool>(s: v128, u: v128, c: v128, ones: v128) -> v128 {
    if SPLIT {
        i32x4_add(
            c,
            i32x4_dot_i16x8(i16x8_relaxed_dot_i8x16_i7x16(s, u), ones),
        )
    } else {
        i32x4_relaxed_dot_i8x16_i7x16_add(s, u, c)
    }
}

/// The int8 register block: `MR` item rows × [`NR_I8`] columns, exact i32 sums over
/// `groups` steps of [`KSTEP`] values of `k`, each added to its row's `init` (for the
/// first layer the caller passes `-64 · Σ_k a_rk`, which removes the shifted query's
/// offset from every sum). `ldb` is the packed operand's group stride in elements
/// (`padded · KSTEP`). `ACT`: the rows are activations in `[0, 127]` and `b` signed
/// weights, so the two swap places in the instruction (its second operand must be
/// 7-bit); otherwise the rows are signed item values and `b` the shifted query.
///
/// # Safety
/// Each `a[r]` must be valid for `groups · KSTEP` byte reads, and `b` for reads of
/// `NR_I8 · KSTEP` elements at `b + g · ldb` for every `g < groups`.
#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
unsafe fn block_i8<const ACT: bool, const SPLIT: bool>(
    a: [*const i8; MR],
    b: *const u8,
    ldb: usize,
    groups: usize,
    init: [v128; MR],
) -> [[v128; 2]; MR] {
    let [i0, i1, i2, i3] = init;
    let (mut c00, mut c01, mut c10, mut c11) = (i0, i0, i1, i1);
    let (mut c20, mut c21, mut c30, mut c31) = (i2, i2, i3, i3);
    let [a0, a1, a2, a3] = a;
    let mut bp = b;
    let ones = i16x8_splat(1);
    for g in 0..groups {
        let k = g * KSTEP;
        // Safety: `g < groups`, so `bp = b + g · ldb` covers 32 readable bytes and
        // `a[r] + k` 4 readable bytes, by the caller's contract; the loads need no
        // alignment.
        let (b0, b1, x0, x1, x2, x3) = unsafe {
            (
                v128_load(bp as *const v128),
                v128_load(bp.add(16) as *const v128),
                v128_load32_splat(a0.add(k) as *const u32),
                v128_load32_splat(a1.add(k) as *const u32),
                v128_load32_splat(a2.add(k) as *const u32),
                v128_load32_splat(a3.add(k) as *const u32),
            )
        };
        // `dot(s, u, c)`: `s` the signed operand, `u` the 7-bit one.
        let dot = |x: v128, y: v128, c: v128| {
            let (s, u) = if ACT { (y, x) } else { (x, y) };
            dot_add::<SPLIT>(s, u, c, ones)
        };
        c00 = dot(x0, b0, c00);
        c01 = dot(x0, b1, c01);
        c10 = dot(x1, b0, c10);
        c11 = dot(x1, b1, c11);
        c20 = dot(x2, b0, c20);
        c21 = dot(x2, b1, c21);
        c30 = dot(x3, b0, c30);
        c31 = dot(x3, b1, c31);
        bp = bp.wrapping_add(ldb);
    }
    [[c00, c01], [c10, c11], [c20, c21], [c30, c31]]
}

/// The int8 register block: `MR` item rows × [`NR_I8`] columns, exact i32 sums over
/// `groups` steps of [`KSTEP`] values of `k`, each added to its row's `init` (zero
/// here). `ldb` is the packed operand's group stride in elements (`padded · KSTEP`).
/// `ACT` (activation rows, weight columns) changes nothing here: both operands are
/// sign-extended to i16.
///
/// # Safety
/// Each `a[r]` must be valid for `groups · KSTEP` byte reads, and `b` for reads of
/// `NR_I8 · KSTEP` elements at `b + g · ldb` for every `g < groups`.
#[cfg(not(target_feature = "relaxed-simd"))]
#[inline(always)]
unsafe fn block_i8<const ACT: bool, const SPLIT: bool>(
    a: [*const i8; MR],
    b: *const i16,
    ldb: usize,
    groups: usize,
    init: [v128; MR],
) -> [[v128; 2]; MR] {
    let [i0, i1, i2, i3] = init;
    let (mut c00, mut c01, mut c10, mut c11) = (i0, i0, i1, i1);
    let (mut c20, mut c21, mut c30, mut c31) = (i2, i2, i3, i3);
    let [a0, a1, a2, a3] = a;
    let mut bp = b;
    for g in 0..groups {
        let k = g * KSTEP;
        // Safety: `g < groups`, so `bp = b + g · ldb` covers 16 readable i16 and
        // `a[r] + k` 2 readable bytes, by the caller's contract; the loads need no
        // alignment.
        let (b0, b1, x0, x1, x2, x3) = unsafe {
            (
                v128_load(bp as *const v128),
                v128_load(bp.add(8) as *const v128),
                v128_load16_splat(a0.add(k) as *const u16),
                v128_load16_splat(a1.add(k) as *const u16),
                v128_load16_splat(a2.add(k) as *const u16),
                v128_load16_splat(a3.add(k) as *const u16),
            )
        };
        // [a_k, a_k+1] × 4 as i16: lane l of the dot is column j0 + l.
        let (x0, x1) = (i16x8_extend_low_i8x16(x0), i16x8_extend_low_i8x16(x1));
        let (x2, x3) = (i16x8_extend_low_i8x16(x2), i16x8_extend_low_i8x16(x3));
        c00 = i32x4_add(c00, i32x4_dot_i16x8(x0, b0));
        c01 = i32x4_add(c01, i32x4_dot_i16x8(x0, b1));
        c10 = i32x4_add(c10, i32x4_dot_i16x8(x1, b0));
        c11 = i32x4_add(c11, i32x4_dot_i16x8(x1, b1));
        c20 = i32x4_add(c20, i32x4_dot_i16x8(x2, b0));
        c21 = i32x4_add(c21, i32x4_dot_i16x8(x2, b1));
        c30 = i32x4_add(c30, i32x4_dot_i16x8(x3, b0));
        c31 = i32x4_add(c31, i32x4_dot_i16x8(x3, b1));
        bp = bp.wrapping_add(ldb);
    }
    [[c00, c01], [c10, c11], [c20, c21], [c30, c31]]
}

/// The exact i32 sums `Σ_k a[r · k_len + k] · q_kj` for `rows` int8 rows (`k_len`, the
/// items' stride, a multiple of [`KSTEP`]; `sums` their row sums) and `j < b.padded`,
/// handed to `sink(r, j0, lo, hi)` one register block row at a time: `lo` holds columns
/// `j0 .. j0 + 4`, `hi` the next four. `zeros` (at least `k_len`) stands in for rows past
/// `rows`. Sinks may rely on `r < rows` and `j0 + NR_I8 ≤ b.padded` (`j0` a multiple of
/// [`NR_I8`]), which is all this function hands over.
// Not inlined, for V8's tier-up between calls: see `gemm`.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn gemm_i8<const ACT: bool, const SPLIT: bool>(
    a: &[i8],
    k_len: usize,
    rows: usize,
    sums: &[i32],
    b: &PackedI8,
    zeros: &[i8],
    mut sink: impl FnMut(usize, usize, v128, v128),
) {
    let ldb = b.padded * KSTEP;
    assert!(
        k_len.is_multiple_of(KSTEP)
            && b.groups * KSTEP == k_len
            && b.data.len() >= b.groups * ldb
            && a.len() >= rows * k_len
            && (ACT || sums.len() >= rows)
            && zeros.len() >= k_len,
        "simd128::gemm_i8: operand shapes"
    );
    let mut r0 = 0;
    while r0 < rows {
        let live = (rows - r0).min(MR);
        let row = |r: usize| -> *const i8 {
            if r < live {
                a[(r0 + r) * k_len..(r0 + r + 1) * k_len].as_ptr()
            } else {
                zeros.as_ptr()
            }
        };
        let ptrs = [row(0), row(1), row(2), row(3)];
        // The relaxed build's first-layer sums start at `-64 · Σ_k a_rk`, so they come
        // out exact (activation rows need no correction).
        #[cfg(target_feature = "relaxed-simd")]
        let start = |r: usize| {
            i32x4_splat(if r < live && !ACT {
                -QUERY_OFFSET * sums[r0 + r]
            } else {
                0
            })
        };
        #[cfg(not(target_feature = "relaxed-simd"))]
        let start = |_: usize| i32x4_splat(0);
        let init = [start(0), start(1), start(2), start(3)];
        let mut j0 = 0;
        while j0 < b.padded {
            // Safety: every row pointer comes from a `k_len`-long slice (a row of `a`
            // or `zeros`), `k_len = groups · KSTEP`, and `b.data` holds `groups` groups
            // of `ldb = padded · KSTEP ≥ (j0 + NR_I8) · KSTEP` elements (asserted
            // above), so every read of `block_i8` is in bounds.
            let acc = unsafe {
                block_i8::<ACT, SPLIT>(ptrs, b.data.as_ptr().add(j0 * KSTEP), ldb, b.groups, init)
            };
            for (r, &[lo, hi]) in acc.iter().enumerate().take(live) {
                sink(r0 + r, j0, lo, hi);
            }
            j0 += NR_I8;
        }
        r0 += MR;
    }
}

/// [`gemm_i8`] into `c[r · ldc + j]`.
#[allow(clippy::too_many_arguments)]
fn gemm_i8_into<const SPLIT: bool>(
    a: &[i8],
    k_len: usize,
    rows: usize,
    sums: &[i32],
    b: &PackedI8,
    zeros: &[i8],
    c: &mut [i32],
    ldc: usize,
) {
    assert!(
        c.len() >= rows.saturating_sub(1) * ldc + b.padded && ldc >= b.padded,
        "simd128::gemm_i8_into: output shape"
    );
    gemm_i8::<false, SPLIT>(a, k_len, rows, sums, b, zeros, |r, j0, lo, hi| {
        let dst = &mut c[r * ldc + j0..r * ldc + j0 + NR_I8];
        store_i32x4(dst, lo);
        store_i32x4(&mut dst[4..], hi);
    });
}

/// The exact i32 sum `Σ_k a_k · u_k` of one int8 row `a` (`a.len()` a multiple of
/// [`KSTEP`], at most `u.len()`) with the packed dot-product column `u`
/// ([`PackedI8::dot`]); `sum` is the row's `Σ_k a_k` (the relaxed build removes the
/// query's shift with it).
// Not inlined, for V8's tier-up between calls: see `gemm`.
#[inline(never)]
fn row_dot_i8<const SPLIT: bool>(a: &[i8], b: &PackedI8, sum: i32) -> i32 {
    let u = &b.dot[..a.len()];
    let mut acc = i32x4_splat(0);
    #[cfg(target_feature = "relaxed-simd")]
    let ones = i16x8_splat(1);
    let mut k = 0;
    while k + 16 <= a.len() {
        // Safety: `k + 16 ≤ a.len() = u.len()`: 16 bytes of `a` and 16 elements of `u`
        // are readable at `k`; the loads need no alignment.
        #[cfg(target_feature = "relaxed-simd")]
        unsafe {
            let x = v128_load(a.as_ptr().add(k) as *const v128);
            let y = v128_load(u.as_ptr().add(k) as *const v128);
            acc = dot_add::<SPLIT>(x, y, acc, ones);
        }
        #[cfg(not(target_feature = "relaxed-simd"))]
        unsafe {
            let x = v128_load(a.as_ptr().add(k) as *const v128);
            let (y0, y1) = (
                v128_load(u.as_ptr().add(k) as *const v128),
                v128_load(u.as_ptr().add(k + 8) as *const v128),
            );
            acc = i32x4_add(acc, i32x4_dot_i16x8(i16x8_extend_low_i8x16(x), y0));
            acc = i32x4_add(acc, i32x4_dot_i16x8(i16x8_extend_high_i8x16(x), y1));
        }
        k += 16;
    }
    let mut total = i32x4_extract_lane::<0>(acc)
        .wrapping_add(i32x4_extract_lane::<1>(acc))
        .wrapping_add(i32x4_extract_lane::<2>(acc))
        .wrapping_add(i32x4_extract_lane::<3>(acc));
    for (&x, &y) in a[k..].iter().zip(&u[k..]) {
        total = total.wrapping_add(x as i32 * y as i32);
    }
    #[cfg(target_feature = "relaxed-simd")]
    let total = total.wrapping_sub(QUERY_OFFSET * sum);
    #[cfg(not(target_feature = "relaxed-simd"))]
    let _ = sum;
    total
}

#[inline(always)]
fn store_i32x4(s: &mut [i32], v: v128) {
    let s = &mut s[..4];
    // Safety: `s` is 4 i32 = 16 writable bytes; `v128_store` has no alignment
    // requirement.
    unsafe { v128_store(s.as_mut_ptr() as *mut v128, v) }
}

/// `relu(acc as f32 * (s * t) + a)` lane by lane, the same operations in the same order
/// as the scalar reference (`sv` is `s` splat; `t`, `a` four columns' values). A NaN
/// comes out 0, as from the reference's `max(0.0)` ([`nan0`]: the relaxed build may
/// lower `pmax` to `f32x4.relaxed_max`), so the rows [`quantize_row_with`] reads have
/// no NaN.
#[inline(always)]
fn dequant_bias_relu4(acc: v128, sv: v128, t: v128, a: v128) -> v128 {
    let x = f32x4_mul(f32x4_convert_i32x4(acc), f32x4_mul(sv, t));
    nan0(f32x4_pmax(f32x4_splat(0.0), f32x4_add(x, a)))
}

/// One register block row back in f32: `dst[j] = relu(acc_j as f32 * (s * t[j]) +
/// bias[j])` for the 8 columns of `lo` (the first four) and `hi`. Returns the two
/// stored vectors' lane by lane maximum with `max`: the running maximum the next
/// layer's quantiser needs, kept in a register.
///
/// # Safety
/// `t` and `bias` must be valid for reads of 8 f32, `dst` for writes of 8 f32.
#[inline(always)]
unsafe fn store_dequant8(
    dst: *mut f32,
    lo: v128,
    hi: v128,
    s: f32,
    t: *const f32,
    bias: *const f32,
    max: v128,
) -> v128 {
    let sv = f32x4_splat(s);
    // Safety: 8 readable f32 at `t` and `bias` and 8 writable at `dst`, by the caller's
    // contract; the loads and stores need no alignment.
    unsafe {
        let (t0, t1) = (
            v128_load(t as *const v128),
            v128_load(t.add(4) as *const v128),
        );
        let (b0, b1) = (
            v128_load(bias as *const v128),
            v128_load(bias.add(4) as *const v128),
        );
        let (x0, x1) = (
            dequant_bias_relu4(lo, sv, t0, b0),
            dequant_bias_relu4(hi, sv, t1, b1),
        );
        v128_store(dst as *mut v128, x0);
        v128_store(dst.add(4) as *mut v128, x1);
        f32x4_pmax(max, f32x4_pmax(x0, x1))
    }
}

/// `x` with its NaN lanes zeroed (`x & (x == x)`): the reference's `max(0.0)` and its
/// quantiser's maximum skip NaN, and the relaxed build may lower `pmax` to
/// `f32x4.relaxed_max`, whose NaN result is the engine's choice.
#[inline(always)]
fn nan0(x: v128) -> v128 {
    v128_and(x, f32x4_eq(x, x))
}

/// The maximum of the lanes of `m` (running maxima, no NaN) and of
/// `rest`, from 0 as the reference's [`activation_max`] fold: the same value, the
/// maximum being independent of the order.
#[inline(always)]
fn fold_max(m: v128, rest: &[f32]) -> f32 {
    let lanes = [
        f32x4_extract_lane::<0>(m),
        f32x4_extract_lane::<1>(m),
        f32x4_extract_lane::<2>(m),
        f32x4_extract_lane::<3>(m),
    ];
    // Plain loops, not an iterator chain, which the `wasm` profile's inline threshold
    // leaves as a call per row.
    let mut max = 0.0f32;
    for x in lanes {
        max = activation_max(max, x);
    }
    for &x in rest {
        max = activation_max(max, x);
    }
    max
}

/// [`run`] for an int8 plan: the integer first layer, the integer further layers
/// ([`LayersI8::run`]), the f32 output. The first layer's blocks of hidden columns are
/// dequantised (bias, ReLU) straight from the registers into the f32 rows, each row's
/// running maximum kept beside them for the next layer's quantiser; only the columns
/// from the last whole block below `h` on (hidden columns sharing a block with padding)
/// go through an i32 row and the scalar [`dequant`]; the dot-product column is
/// [`row_dot_i8`].
fn run_i8<const SPLIT: bool>(
    ops: &Operands<'_>,
    req: &Int8Request<'_, PackedI8>,
    rows: Rows<'_>,
    out: &mut [f32],
) {
    let (items, qi, packed) = (req.items, &req.query, &req.packed);
    let h = ops.plan.hidden;
    let stride = ops.max_padded;
    // Hidden columns `fused` and up are dequantised from `acc`; those below, in the sink.
    let fused = h / NR_I8 * NR_I8;
    let rest = packed.padded - fused;
    let (t, a) = (&qi.scale[..h + 1], &ops.a[..h]);
    let mut cur = vec![0.0f32; BLOCK * stride];
    let mut next = vec![0.0f32; BLOCK * stride];
    let mut acc = vec![0i32; BLOCK * rest];
    let mut layers = LayersI8::new(ops, req);
    let zeros = vec![0i8; items.stride.max(layers.k_max)];
    let mut dots = [0.0f32; BLOCK];
    let mut maxv = [f32x4_splat(0.0); BLOCK];
    let mut gathered = I8Rows::default();
    for (bi, out_b) in out.chunks_mut(BLOCK).enumerate() {
        let n_rows = out_b.len();
        let (q, scale, sums) = rows.int8(items, bi * BLOCK, n_rows, &mut gathered);
        maxv.fill(f32x4_splat(0.0));
        assert!(
            scale.len() >= n_rows
                && cur.len() >= n_rows * stride
                && stride >= fused
                && acc.len() >= n_rows * rest
                && n_rows <= BLOCK,
            "simd128::run_i8: block shapes"
        );
        let (cur_p, acc_p, maxv_p) = (cur.as_mut_ptr(), acc.as_mut_ptr(), maxv.as_mut_ptr());
        gemm_i8::<false, SPLIT>(
            q,
            items.stride,
            n_rows,
            sums,
            packed,
            &zeros,
            |r, j0, lo, hi| {
                // Safety: `gemm_i8` hands over `r < n_rows` and `j0 + NR_I8 ≤ packed.padded`
                // only; so a block below `fused` reads `t`, `a` at `j0 .. j0 + 8 ≤ fused ≤ h`
                // (both at least `h` long) and writes `cur` at `r · stride + j0 + 8 ≤
                // n_rows · stride` (`fused ≤ stride`); the others write `acc` at
                // `r · rest + (j0 - fused) + 8 ≤ n_rows · rest`, `padded = fused + rest`;
                // `maxv` holds `BLOCK ≥ n_rows` vectors. All asserted above; the loads and
                // stores need no alignment.
                unsafe {
                    if j0 < fused {
                        let dst = cur_p.add(r * stride + j0);
                        let s = *scale.get_unchecked(r);
                        let (tj, aj) = (t.as_ptr().add(j0), a.as_ptr().add(j0));
                        let m = maxv_p.add(r);
                        *m = store_dequant8(dst, lo, hi, s, tj, aj, *m);
                    } else {
                        let dst = acc_p.add(r * rest + (j0 - fused));
                        v128_store(dst as *mut v128, lo);
                        v128_store(dst.add(4) as *mut v128, hi);
                    }
                }
            },
        );
        let st = items.stride;
        for r in 0..n_rows {
            let accr = &acc[r * rest..(r + 1) * rest];
            for j in fused..h {
                cur[r * stride + j] = (dequant(accr[j - fused], scale[r], t[j]) + a[j]).max(0.0);
            }
            layers.row_max[r] = fold_max(maxv[r], &cur[r * stride + fused..r * stride + h]);
            let dot = row_dot_i8::<SPLIT>(&q[r * st..(r + 1) * st], packed, sums[r]);
            dots[r] = dequant(dot, scale[r], t[h]);
        }
        if !layers.run::<SPLIT>(ops, req, &zeros, &mut cur, &mut next, &dots, out_b) {
            output(ops, &cur, layers.width, &dots, out_b);
        }
    }
}

/// Scratch and padded operands of an int8 plan's further layers ([`LayersI8::run`]).
struct LayersI8 {
    /// Each layer's column scales and biases, zero-padded to its packed width.
    padded: Vec<(Vec<f32>, Vec<f32>)>,
    /// Quantised activation rows, `[BLOCK × k]` for the layer at hand.
    p: Vec<i8>,
    /// Each row's activation scale.
    row_scale: [f32; BLOCK],
    /// Each row's maximum of the next layer's input (NaN skipped), as the layer before
    /// found it: [`run_i8`] for the first further layer, [`LayersI8::run`] for the rest.
    row_max: [f32; BLOCK],
    /// The widest activation row stride.
    k_max: usize,
    /// The output width of the last layer run (`h` with no further layer).
    width: usize,
}

impl LayersI8 {
    fn new(ops: &Operands<'_>, req: &Int8Request<'_, PackedI8>) -> LayersI8 {
        let padded = req
            .layers
            .iter()
            .zip(&ops.layers)
            .map(|((l, lp), (_, b))| {
                let mut t = l.scale.clone();
                let mut bias = b.to_vec();
                t.resize(lp.padded, 0.0);
                bias.resize(lp.padded, 0.0);
                (t, bias)
            })
            .collect();
        let k_max = req.layers.iter().map(|(l, _)| l.stride).max().unwrap_or(0);
        LayersI8 {
            padded,
            p: vec![0; BLOCK * k_max],
            row_scale: [0.0; BLOCK],
            row_max: [0.0; BLOCK],
            k_max,
            width: ops.plan.hidden,
        }
    }

    /// The integer further layers of one block: each row of `cur` (its first `h`
    /// values; row stride `ops.max_padded`) quantised ([`quantize_activations`], with
    /// the row's maximum in `self.row_max`, as the layer before found it), the
    /// integer GEMM with the layer's weights, and `relu(acc as f32 * (s_r * t_j) +
    /// b_j)` straight from the registers into `next`, each row's maximum kept for the
    /// layer after; then `cur` and `next` swap.
    ///
    /// The last layer, when its width is a multiple of [`NR_I8`], also does the output
    /// layer: its activations go from the registers straight into each row's two
    /// running `f32x4` sums with `w_out` (nothing stored), column block by column block
    /// in increasing order — the order and operations of [`dot`] over the stored row,
    /// which has no scalar tail at such a width — and `out_b[r] = (hsum + 0) + b_out +
    /// dots[r]` as [`output`] computes it: the same bits. Returns whether it wrote
    /// `out_b` (otherwise the caller runs [`output`] over `cur`).
    // Not inlined, for V8's tier-up between calls: see `gemm`.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn run<const SPLIT: bool>(
        &mut self,
        ops: &Operands<'_>,
        req: &Int8Request<'_, PackedI8>,
        zeros: &[i8],
        cur: &mut Vec<f32>,
        next: &mut Vec<f32>,
        dots: &[f32],
        out_b: &mut [f32],
    ) -> bool {
        let n_rows = out_b.len();
        let stride = ops.max_padded;
        let mut width = ops.plan.hidden;
        let n_layers = req.layers.len();
        for (li, ((layer, lp), (t, b))) in req.layers.iter().zip(&self.padded).enumerate() {
            let ks = layer.stride;
            for r in 0..n_rows {
                let row = &cur[r * stride..r * stride + width];
                let p = &mut self.p[r * ks..(r + 1) * ks];
                self.row_scale[r] = quantize_row_with::<true>(row, self.row_max[r], p);
            }
            assert!(
                next.len() >= n_rows * stride
                    && stride >= lp.padded
                    && t.len() >= lp.padded
                    && b.len() >= lp.padded
                    && n_rows <= BLOCK,
                "simd128::LayersI8::run: block shapes"
            );
            let w_out = &ops.plan.w_out;
            if li + 1 == n_layers
                && layer.cols.is_multiple_of(NR_I8)
                && lp.padded == layer.cols
                && w_out.len() == layer.cols
                && dots.len() >= n_rows
            {
                let mut sums = [[f32x4_splat(0.0); 2]; BLOCK];
                let (row_scale, sums_p) = (&self.row_scale, sums.as_mut_ptr());
                gemm_i8::<true, SPLIT>(&self.p, ks, n_rows, &[], lp, zeros, |r, j0, lo, hi| {
                    // Safety: `gemm_i8` hands over `r < n_rows ≤ BLOCK` and `j0 + NR_I8 ≤
                    // lp.padded = layer.cols`; `t` and `b` are `lp.padded` long, `w_out`
                    // `layer.cols` long and `sums` holds `BLOCK` rows (checked above); the
                    // loads need no alignment.
                    unsafe {
                        let sv = f32x4_splat(row_scale[r]);
                        let (tp, bp, wp) = (
                            t.as_ptr().add(j0),
                            b.as_ptr().add(j0),
                            w_out.as_ptr().add(j0),
                        );
                        let x0 = dequant_bias_relu4(
                            lo,
                            sv,
                            v128_load(tp as *const v128),
                            v128_load(bp as *const v128),
                        );
                        let x1 = dequant_bias_relu4(
                            hi,
                            sv,
                            v128_load(tp.add(4) as *const v128),
                            v128_load(bp.add(4) as *const v128),
                        );
                        let acc = &mut *sums_p.add(r);
                        acc[0] = fmadd(x0, v128_load(wp as *const v128), acc[0]);
                        acc[1] = fmadd(x1, v128_load(wp.add(4) as *const v128), acc[1]);
                    }
                });
                for (r, o) in out_b.iter_mut().enumerate() {
                    let [s0, s1] = sums[r];
                    *o = (hsum(f32x4_add(s0, s1)) + 0.0) + ops.plan.b_out + dots[r];
                }
                self.width = layer.cols;
                return true;
            }
            let mut maxv = [f32x4_splat(0.0); BLOCK];
            let (next_p, row_scale) = (next.as_mut_ptr(), &self.row_scale);
            let maxv_p = maxv.as_mut_ptr();
            gemm_i8::<true, SPLIT>(&self.p, ks, n_rows, &[], lp, zeros, |r, j0, lo, hi| {
                // Safety: `gemm_i8` hands over `r < n_rows ≤ BLOCK` and `j0 + NR_I8 ≤
                // lp.padded`; `t` and `b` are `lp.padded` long, `next` holds `n_rows`
                // rows of `stride ≥ lp.padded` and `maxv` `BLOCK` vectors (asserted
                // above); the loads and stores need no alignment.
                unsafe {
                    let dst = next_p.add(r * stride + j0);
                    let (tp, bp) = (t.as_ptr().add(j0), b.as_ptr().add(j0));
                    let m = maxv_p.add(r);
                    *m = store_dequant8(dst, lo, hi, row_scale[r], tp, bp, *m);
                }
            });
            // The padding columns (zero weights, scale and bias) hold 0: no change.
            for (m, &v) in self.row_max.iter_mut().zip(&maxv).take(n_rows) {
                *m = fold_max(v, &[]);
            }
            std::mem::swap(cur, next);
            width = layer.cols;
        }
        self.width = width;
        false
    }
}

/// One activation row quantised for the integer further layers, bit for bit
/// [`super::quant::quantize_activations`]: `out[..h.len()]` the values in `[0, 127]`,
/// the rest of `out` zeroed; returns the row's scale.
pub fn quantize_activations(h: &[f32], out: &mut [i8]) -> f32 {
    quantize_row(h, out)
}

/// [`quantize_activations`], inlined into the block loop. A NaN lane is zeroed as it is
/// loaded (`x & (x == x)`): the reference's maximum skips it and its clamp-then-cast
/// maps it to 0, and the relaxed build may lower `pmax` to `f32x4.relaxed_max`, whose
/// NaN result is the engine's choice. Then the same maximum (four independent lanes,
/// then the lanes and the tail), the same product `x · inv`, and the reference's
/// ties-to-even rounding done by the FPU: `y + 1.5 · 2²³` rounds `y ∈ [0, 2²²)` to an
/// integer in the low mantissa bits (default rounding: to nearest, ties to even), read
/// back by subtracting the constant's bit pattern; `max(0, ·)` maps a negative value
/// (and -0) to 0 like the reference's clamp, and nothing exceeds 127.5 (`x ≤ max`), so
/// the upper clamp never bites.
#[inline(always)]
fn quantize_row(h: &[f32], out: &mut [i8]) -> f32 {
    quantize_row_with::<false>(h, row_max(h), out)
}

/// The maximum of `h` from 0, NaN skipped: the reference's [`activation_max`] fold.
#[inline(always)]
fn row_max(h: &[f32]) -> f32 {
    let n = h.len();
    let zero = f32x4_splat(0.0);
    let load = |k: usize| nan0(load4(&h[k..]));
    let (mut m0, mut m1, mut m2, mut m3) = (zero, zero, zero, zero);
    let mut k = 0;
    while k + 16 <= n {
        m0 = f32x4_pmax(m0, load(k));
        m1 = f32x4_pmax(m1, load(k + 4));
        m2 = f32x4_pmax(m2, load(k + 8));
        m3 = f32x4_pmax(m3, load(k + 12));
        k += 16;
    }
    while k + 4 <= n {
        m0 = f32x4_pmax(m0, load(k));
        k += 4;
    }
    let m = f32x4_pmax(f32x4_pmax(m0, m1), f32x4_pmax(m2, m3));
    fold_max(m, &h[k..])
}

/// [`quantize_row`] with the row's maximum `max` (as [`row_max`] finds it) given.
/// `RELU`: `h` is a row [`store_dequant8`] wrote, every value `≥ 0` or `-0`, none NaN, so
/// the vector loop needs neither the NaN mask nor the clamp at 0 (`x · inv ≥ -0`, and
/// `-0 + 1.5 · 2²³` is the constant itself, 0).
#[inline(always)]
fn quantize_row_with<const RELU: bool>(h: &[f32], max: f32, out: &mut [i8]) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    let n = h.len();
    let (head, pad) = out.split_at_mut(n);
    pad.fill(0);
    let zero = f32x4_splat(0.0);
    // Four values of `h` at `k`, a NaN read as 0.
    let load = |k: usize| {
        let x = load4(&h[k..]);
        if RELU {
            x
        } else {
            nan0(x)
        }
    };
    if !(max > 0.0 && max.is_finite()) {
        head.fill(0);
        return 0.0;
    }
    let inv = ACT_MAX / max;
    let (iv, magic) = (f32x4_splat(inv), f32x4_splat(MAGIC));
    let magic_bits = i32x4_splat(MAGIC.to_bits() as i32);
    let quant4 = |x: v128| {
        let y = f32x4_mul(x, iv);
        let y = f32x4_add(if RELU { y } else { f32x4_pmax(zero, y) }, magic);
        i32x4_sub(y, magic_bits)
    };
    let mut k = 0;
    while k + 16 <= n {
        let (a, b) = (quant4(load(k)), quant4(load(k + 4)));
        let (c, d) = (quant4(load(k + 8)), quant4(load(k + 12)));
        // Each i32 lane, in [0, 127], is the i16 pair (q, 0): narrowing the pairs gives
        // the bytes (q, 0), i.e. the i16 lanes q, which the second narrowing packs in
        // order (`i16x8_narrow_i32x4` would do it in one step, but LLVM lowers that one
        // to clamps and a shuffle).
        let (ab, cd) = (i8x16_narrow_i16x8(a, b), i8x16_narrow_i16x8(c, d));
        let bytes = i8x16_narrow_i16x8(ab, cd);
        let dst = &mut head[k..k + 16];
        // Safety: `dst` is 16 writable bytes; `v128_store` has no alignment requirement.
        unsafe { v128_store(dst.as_mut_ptr() as *mut v128, bytes) };
        k += 16;
    }
    for (o, &x) in head[k..].iter_mut().zip(&h[k..]) {
        *o = quantize_activation(x, inv);
    }
    max / ACT_MAX
}

/// The exact i32 products of every row of `items` with `q` (`out[r · cols + j]`), as
/// [`scores`] computes them for an int8 plan.
pub fn products_i8(items: &Int8Items, q: &QueryI8, out: &mut [i32]) {
    if split_dot() {
        products_i8_as::<true>(items, q, out)
    } else {
        products_i8_as::<false>(items, q, out)
    }
}

/// [`products_i8`] in one [`DotForm`] (`SPLIT`).
fn products_i8_as<const SPLIT: bool>(items: &Int8Items, q: &QueryI8, out: &mut [i32]) {
    let packed = PackedI8::query(q);
    let cols = q.cols.max(1);
    let hidden = q.cols.saturating_sub(1);
    let mut acc = vec![0i32; BLOCK * packed.padded];
    let zeros = vec![0i8; items.stride];
    let st = items.stride;
    for (bi, chunk) in out.chunks_mut(BLOCK * cols).enumerate() {
        let n_rows = chunk.len() / cols;
        let first = bi * BLOCK;
        let a = &items.q[first * st..(first + n_rows) * st];
        let sums = &items.row_sum[first..first + n_rows];
        gemm_i8_into::<SPLIT>(
            a,
            st,
            n_rows,
            sums,
            &packed,
            &zeros,
            &mut acc,
            packed.padded,
        );
        for r in 0..n_rows {
            let row = &mut chunk[r * cols..(r + 1) * cols];
            row[..hidden].copy_from_slice(&acc[r * packed.padded..r * packed.padded + hidden]);
            if q.cols > 0 {
                row[hidden] = row_dot_i8::<SPLIT>(&a[r * st..(r + 1) * st], &packed, sums[r]);
            }
        }
    }
}

/// Independent multiply chains and add chains of [`peak_mul_add`]: enough of each to
/// cover the latency of both on the machines we measured (x86 cores with two multiply
/// and two add ports); 2 × 7 vectors + 2 constants fit the 16 SIMD registers.
const PEAK_CHAINS: usize = 7;
/// Independent accumulators of [`peak_fma`] (FMA latency × ports, with margin).
#[cfg(target_feature = "relaxed-simd")]
const PEAK_FMA_CHAINS: usize = 12;

/// The SIMD128 multiply+add ceiling of this thread, for the browser bench page:
/// `iters` rounds of [`PEAK_CHAINS`] independent `f32x4` multiplies and as many
/// independent `f32x4` adds (the instruction mix of the plain build's register block, with
/// no dependency between a multiply and its add, so it measures throughput rather than
/// latency). Each multiply+add pair counts as 2 flops per lane. Returns
/// `(checksum, flops)`.
pub fn peak_mul_add(iters: u64) -> (f32, u64) {
    let mut prods = [f32x4_splat(1.0); PEAK_CHAINS];
    let mut sums = [f32x4_splat(1.0); PEAK_CHAINS];
    // × 1.0 keeps the products normal (no subnormal slow path); the optimiser cannot
    // see the value.
    let mul = f32x4_splat(core::hint::black_box(1.0));
    let add = f32x4_splat(core::hint::black_box(1e-4));
    for _ in 0..iters {
        for p in prods.iter_mut() {
            *p = f32x4_mul(*p, mul);
        }
        for s in sums.iter_mut() {
            *s = f32x4_add(*s, add);
        }
    }
    let all = prods
        .iter()
        .chain(&sums)
        .fold(f32x4_splat(0.0), |s, a| f32x4_add(s, *a));
    (hsum(all), 2 * iters * (PEAK_CHAINS * 4) as u64)
}

/// The fused multiply-add ceiling of this thread in the relaxed-SIMD build:
/// `iters` rounds of `f32x4.relaxed_madd` on [`PEAK_FMA_CHAINS`] independent
/// accumulators. Returns `(checksum, flops)`.
#[cfg(target_feature = "relaxed-simd")]
pub fn peak_fma(iters: u64) -> (f32, u64) {
    let mut acc = [f32x4_splat(1.0); PEAK_FMA_CHAINS];
    let mul = f32x4_splat(core::hint::black_box(0.999_9));
    let add = f32x4_splat(core::hint::black_box(1e-4));
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = f32x4_relaxed_madd(*a, mul, add);
        }
    }
    let sum = acc.iter().fold(f32x4_splat(0.0), |s, a| f32x4_add(s, *a));
    (hsum(sum), 2 * iters * (PEAK_FMA_CHAINS * 4) as u64)
}
