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
#[cfg(target_feature = "relaxed-simd")]
use super::quant::QUERY_OFFSET;
use super::quant::{Int8Items, QueryI8, K_MULTIPLE};
use super::scalar::dequant;
use super::{HeadPlan, UserQuery};

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
            Some((items, qi, packed)) => run_i8(&self.ops, qi, packed, items, rows, out),
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
    Request::new(plan, query, PackedI8::new).run(Rows::Range(0), &mut out[..n]);
}

/// Scores the listed items: `out[r]` = the score of item `items[r]`, bit for bit what
/// [`scores`] gives that item (each row is computed on its own). Shapes and indices
/// must already be validated.
pub fn scores_of(plan: &HeadPlan, query: &UserQuery, items: &[u32], out: &mut [f32]) {
    let n = items.len().min(out.len());
    if n == 0 {
        return;
    }
    Request::new(plan, query, PackedI8::new).run(Rows::Of(&items[..n]), &mut out[..n]);
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
    for (r, o) in out_b.iter_mut().enumerate() {
        let hid = &cur[r * stride..r * stride + width];
        *o = dot(hid, &plan.w_out) + plan.b_out + dots[r];
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
/// column `j` (padded to a multiple of [`NR_I8`]) holds its `KSTEP` values side by
/// side, so one 16-byte load covers 4 columns. Relaxed build: bytes `r + 64` (in
/// `[1, 127]`, the instruction's 7-bit operand; padding is the shifted 0); plain build:
/// the values sign-extended to i16.
struct PackedI8 {
    #[cfg(target_feature = "relaxed-simd")]
    data: Vec<u8>,
    #[cfg(not(target_feature = "relaxed-simd"))]
    data: Vec<i16>,
    padded: usize,
    groups: usize,
}

impl PackedI8 {
    fn new(q: &QueryI8) -> PackedI8 {
        let padded = padded_cols(q.cols, NR_I8);
        let groups = q.stride / KSTEP;
        #[cfg(target_feature = "relaxed-simd")]
        let mut data = vec![QUERY_OFFSET as u8; groups * padded * KSTEP];
        #[cfg(not(target_feature = "relaxed-simd"))]
        let mut data = vec![0i16; groups * padded * KSTEP];
        for g in 0..groups {
            for j in 0..q.cols {
                for m in 0..KSTEP {
                    let x = q.q[(g * KSTEP + m) * q.cols + j];
                    #[cfg(target_feature = "relaxed-simd")]
                    let x = (x as i32 + QUERY_OFFSET) as u8;
                    #[cfg(not(target_feature = "relaxed-simd"))]
                    let x = x as i16;
                    data[(g * padded + j) * KSTEP + m] = x;
                }
            }
        }
        PackedI8 {
            data,
            padded,
            groups,
        }
    }
}

/// The int8 register block: `MR` item rows × [`NR_I8`] columns, exact i32 sums over
/// `groups` steps of [`KSTEP`] values of `k` (relaxed build: each sum still carries
/// `64 · Σ_k a_rk`, removed by the caller). `ldb` is the packed query's group stride in
/// elements (`padded · KSTEP`).
///
/// # Safety
/// Each `a[r]` must be valid for `groups · KSTEP` byte reads, and `b` for reads of
/// `NR_I8 · KSTEP` elements at `b + g · ldb` for every `g < groups`.
#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
unsafe fn block_i8(a: [*const i8; MR], b: *const u8, ldb: usize, groups: usize) -> [[v128; 2]; MR] {
    let z = i32x4_splat(0);
    let (mut c00, mut c01, mut c10, mut c11) = (z, z, z, z);
    let (mut c20, mut c21, mut c30, mut c31) = (z, z, z, z);
    let [a0, a1, a2, a3] = a;
    let mut bp = b;
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
        c00 = i32x4_relaxed_dot_i8x16_i7x16_add(x0, b0, c00);
        c01 = i32x4_relaxed_dot_i8x16_i7x16_add(x0, b1, c01);
        c10 = i32x4_relaxed_dot_i8x16_i7x16_add(x1, b0, c10);
        c11 = i32x4_relaxed_dot_i8x16_i7x16_add(x1, b1, c11);
        c20 = i32x4_relaxed_dot_i8x16_i7x16_add(x2, b0, c20);
        c21 = i32x4_relaxed_dot_i8x16_i7x16_add(x2, b1, c21);
        c30 = i32x4_relaxed_dot_i8x16_i7x16_add(x3, b0, c30);
        c31 = i32x4_relaxed_dot_i8x16_i7x16_add(x3, b1, c31);
        bp = bp.wrapping_add(ldb);
    }
    [[c00, c01], [c10, c11], [c20, c21], [c30, c31]]
}

/// The int8 register block: `MR` item rows × [`NR_I8`] columns, exact i32 sums over
/// `groups` steps of [`KSTEP`] values of `k`. `ldb` is the packed query's group stride
/// in elements (`padded · KSTEP`).
///
/// # Safety
/// Each `a[r]` must be valid for `groups · KSTEP` byte reads, and `b` for reads of
/// `NR_I8 · KSTEP` elements at `b + g · ldb` for every `g < groups`.
#[cfg(not(target_feature = "relaxed-simd"))]
#[inline(always)]
unsafe fn block_i8(
    a: [*const i8; MR],
    b: *const i16,
    ldb: usize,
    groups: usize,
) -> [[v128; 2]; MR] {
    let z = i32x4_splat(0);
    let (mut c00, mut c01, mut c10, mut c11) = (z, z, z, z);
    let (mut c20, mut c21, mut c30, mut c31) = (z, z, z, z);
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

/// `c[r · ldc + j] = Σ_k a[r · k_len + k] · q_kj` in exact i32 for `rows` int8 rows
/// (`k_len`, the items' stride, a multiple of [`KSTEP`]; `sums` their row sums) and
/// `j < b.padded`. `zeros` (at least `k_len`) stands in for rows past `rows`.
#[allow(clippy::too_many_arguments)]
// Not inlined, for V8's tier-up between calls: see `gemm`.
#[inline(never)]
fn gemm_i8(
    a: &[i8],
    k_len: usize,
    rows: usize,
    sums: &[i32],
    b: &PackedI8,
    zeros: &[i8],
    c: &mut [i32],
    ldc: usize,
) {
    let ldb = b.padded * KSTEP;
    assert!(
        k_len.is_multiple_of(KSTEP)
            && b.groups * KSTEP == k_len
            && b.data.len() >= b.groups * ldb
            && a.len() >= rows * k_len
            && sums.len() >= rows
            && zeros.len() >= k_len
            && c.len() >= rows.saturating_sub(1) * ldc + b.padded
            && ldc >= b.padded,
        "simd128::gemm_i8: operand shapes"
    );
    #[cfg(not(target_feature = "relaxed-simd"))]
    let _ = sums;
    let mut r0 = 0;
    while r0 < rows {
        let row = |r: usize| -> *const i8 {
            if r0 + r < rows {
                a[(r0 + r) * k_len..(r0 + r + 1) * k_len].as_ptr()
            } else {
                zeros.as_ptr()
            }
        };
        let ptrs = [row(0), row(1), row(2), row(3)];
        let mut j0 = 0;
        while j0 < b.padded {
            // Safety: every row pointer comes from a `k_len`-long slice (a row of `a`
            // or `zeros`), `k_len = groups · KSTEP`, and `b.data` holds `groups` groups
            // of `ldb = padded · KSTEP ≥ (j0 + NR_I8) · KSTEP` elements (asserted
            // above), so every read of `block_i8` is in bounds.
            let acc = unsafe { block_i8(ptrs, b.data.as_ptr().add(j0 * KSTEP), ldb, b.groups) };
            for (r, &[lo, hi]) in acc.iter().enumerate().take((rows - r0).min(MR)) {
                #[cfg(target_feature = "relaxed-simd")]
                let (lo, hi) = {
                    let off = i32x4_splat(QUERY_OFFSET * sums[r0 + r]);
                    (i32x4_sub(lo, off), i32x4_sub(hi, off))
                };
                let dst = &mut c[(r0 + r) * ldc + j0..(r0 + r) * ldc + j0 + NR_I8];
                store_i32x4(dst, lo);
                store_i32x4(&mut dst[4..], hi);
            }
            j0 += NR_I8;
        }
        r0 += MR;
    }
}

#[inline(always)]
fn store_i32x4(s: &mut [i32], v: v128) {
    let s = &mut s[..4];
    // Safety: `s` is 4 i32 = 16 writable bytes; `v128_store` has no alignment
    // requirement.
    unsafe { v128_store(s.as_mut_ptr() as *mut v128, v) }
}

#[inline(always)]
fn load_i32x4(s: &[i32]) -> v128 {
    let s = &s[..4];
    // Safety: `s` is 4 initialised i32 = 16 readable bytes; `v128_load` has no
    // alignment requirement.
    unsafe { v128_load(s.as_ptr() as *const v128) }
}

/// `row[j] = relu(acc[j] as f32 * (s * t[j]) + a[j])`, four lanes at a time, the same
/// operations in the same order as the scalar reference.
// Not inlined, for V8's tier-up between calls: see `gemm`.
#[inline(never)]
fn dequant_bias_relu(row: &mut [f32], acc: &[i32], s: f32, t: &[f32], a: &[f32]) {
    let n = row.len();
    let (zero, sv) = (f32x4_splat(0.0), f32x4_splat(s));
    let mut j = 0;
    while j + 4 <= n {
        let x = f32x4_convert_i32x4(load_i32x4(&acc[j..]));
        let x = f32x4_mul(x, f32x4_mul(sv, load4(&t[j..])));
        let x = f32x4_add(x, load4(&a[j..]));
        store4(&mut row[j..], f32x4_pmax(zero, x));
        j += 4;
    }
    while j < n {
        row[j] = (dequant(acc[j], s, t[j]) + a[j]).max(0.0);
        j += 1;
    }
}

/// [`run`] for an int8 plan: the integer first layer, then the f32 tail.
fn run_i8(
    ops: &Operands<'_>,
    qi: &QueryI8,
    packed: &PackedI8,
    items: &Int8Items,
    rows: Rows<'_>,
    out: &mut [f32],
) {
    let h = ops.plan.hidden;
    let stride = ops.max_padded;
    let mut cur = vec![0.0f32; BLOCK * stride];
    let mut next = vec![0.0f32; BLOCK * stride];
    let mut acc = vec![0i32; BLOCK * packed.padded];
    let zeros = vec![0i8; items.stride];
    let mut dots = [0.0f32; BLOCK];
    let mut gathered = I8Rows::default();
    for (bi, out_b) in out.chunks_mut(BLOCK).enumerate() {
        let n_rows = out_b.len();
        let (q, scale, sums) = rows.int8(items, bi * BLOCK, n_rows, &mut gathered);
        gemm_i8(
            q,
            items.stride,
            n_rows,
            sums,
            packed,
            &zeros,
            &mut acc,
            packed.padded,
        );
        for r in 0..n_rows {
            let accr = &acc[r * packed.padded..(r + 1) * packed.padded];
            dequant_bias_relu(
                &mut cur[r * stride..r * stride + h],
                accr,
                scale[r],
                &qi.scale,
                ops.a,
            );
            dots[r] = dequant(accr[h], scale[r], qi.scale[h]);
        }
        tail(ops, &mut cur, &mut next, &dots, out_b);
    }
}

/// The exact i32 products of every row of `items` with `q` (`out[r · cols + j]`), as
/// [`scores`] computes them for an int8 plan.
pub fn products_i8(items: &Int8Items, q: &QueryI8, out: &mut [i32]) {
    let packed = PackedI8::new(q);
    let cols = q.cols.max(1);
    let mut acc = vec![0i32; BLOCK * packed.padded];
    let zeros = vec![0i8; items.stride];
    for (bi, chunk) in out.chunks_mut(BLOCK * cols).enumerate() {
        let n_rows = chunk.len() / cols;
        let first = bi * BLOCK;
        let a = &items.q[first * items.stride..(first + n_rows) * items.stride];
        let sums = &items.row_sum[first..first + n_rows];
        gemm_i8(
            a,
            items.stride,
            n_rows,
            sums,
            &packed,
            &zeros,
            &mut acc,
            packed.padded,
        );
        for r in 0..n_rows {
            chunk[r * cols..(r + 1) * cols]
                .copy_from_slice(&acc[r * packed.padded..r * packed.padded + cols]);
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
