//! The fast CPU path for native builds (trainer, CLI, evaluation): a cache-blocked,
//! register-blocked GEMM in safe Rust that the compiler vectorises, with the bias, ReLU,
//! further layers and output fused per block of items while the block is in L1.
//!
//! Per block of [`BLOCK`] items with vectors `V_b` (`[rows × d]`; the next items of the
//! catalogue, or of a list of items gathered by `super::pack::Rows`):
//! `H = relu(V_b · M[:, 0..h] + a)`, then `H ← relu(H · W + b)` for each further layer,
//! then `score_r = H_r · w_out + b_out + V_b[r] · u`. The operands come packed by
//! `super::pack` (zero-padded to a multiple of `NR` columns); the micro-kernel keeps
//! an `MR × NR` block of accumulators over the whole `K` loop.
//!
//! On x86-64 the same code is also compiled with AVX2+FMA enabled and picked at run time
//! when the processor has them (fused multiply-adds then); otherwise it multiplies and
//! adds. Large catalogs are split over threads with rayon. Native builds only: the
//! browser's fast path is `CpuKernel::Simd128`.
use super::pack::{padded_cols, I8Rows, Operands, Padded, Rows, BLOCK, COL_MULTIPLE};
use super::pack::{Int8Request, PackI8};
use super::quant::{quantize_activations, Int8Items, QueryI8};
use super::scalar::dequant;
use super::{HeadPlan, UserQuery};

/// Rows of the register block (items).
const MR: usize = 4;
/// Columns of the register block (hidden units): the packing's column multiple, so a
/// padded width is a whole number of register blocks.
const NR: usize = COL_MULTIPLE;
/// Items per parallel task.
const PAR_CHUNK: usize = 1024;
/// Catalogs at least this large are scored on several threads.
const PAR_MIN: usize = 8192;

#[inline(always)]
fn madd<const FMA: bool>(x: f32, y: f32, acc: f32) -> f32 {
    if FMA {
        x.mul_add(y, acc)
    } else {
        x * y + acc
    }
}

/// `c[r][j] = Σ_k a[r][k] · b[k][j]` for `rows` rows, `j < b.padded`. `a` rows have
/// stride `lda` and length `k`; `c` has row stride `ldc ≥ b.padded`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gemm<const FMA: bool>(
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
    let zeros = &zeros[..k];
    let mut r0 = 0;
    while r0 < rows {
        let row = |r: usize| -> &[f32] {
            if r0 + r < rows {
                &a[(r0 + r) * lda..(r0 + r) * lda + k]
            } else {
                zeros
            }
        };
        let (a0, a1, a2, a3) = (row(0), row(1), row(2), row(3));
        let mut j0 = 0;
        while j0 < ldb {
            let mut acc = [[0.0f32; NR]; MR];
            for kk in 0..k {
                let brow: &[f32; NR] = b.data[kk * ldb + j0..kk * ldb + j0 + NR]
                    .try_into()
                    .expect("NR-wide slice");
                let x = [a0[kk], a1[kk], a2[kk], a3[kk]];
                for r in 0..MR {
                    for j in 0..NR {
                        acc[r][j] = madd::<FMA>(x[r], brow[j], acc[r][j]);
                    }
                }
            }
            for (r, acc_r) in acc.iter().enumerate().take((rows - r0).min(MR)) {
                let dst = &mut c[(r0 + r) * ldc + j0..(r0 + r) * ldc + j0 + NR];
                dst.copy_from_slice(acc_r);
            }
            j0 += NR;
        }
        r0 += MR;
    }
}

#[inline(always)]
fn dot<const FMA: bool>(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let xs = x.chunks_exact(8);
    let ys = y.chunks_exact(8);
    let (xr, yr) = (xs.remainder(), ys.remainder());
    for (xc, yc) in xs.zip(ys) {
        for l in 0..8 {
            acc[l] = madd::<FMA>(xc[l], yc[l], acc[l]);
        }
    }
    let mut s = 0.0;
    for (p, q) in xr.iter().zip(yr) {
        s = madd::<FMA>(*p, *q, s);
    }
    s + ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// Scores `rows` (`out[r]` for output row `r`) block by block.
#[inline(always)]
fn run<const FMA: bool>(ops: &Operands<'_>, rows: Rows<'_>, out: &mut [f32]) {
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
        gemm::<FMA>(v, d, n_rows, d, &ops.m, &ops.zeros, &mut cur, stride);
        for r in 0..n_rows {
            let row = &mut cur[r * stride..r * stride + h];
            for (x, a) in row.iter_mut().zip(ops.a) {
                *x = (*x + a).max(0.0);
            }
            dots[r] = dot::<FMA>(&v[r * d..(r + 1) * d], &ops.u);
        }
        tail::<FMA>(ops, &mut cur, &mut next, &dots, out_b);
    }
}

/// The further layers and the output of one block, from the first hidden rows in `cur`
/// (row stride `ops.max_padded`) and each row's dot-product term in `dots`.
#[inline(always)]
fn tail<const FMA: bool>(
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
        gemm::<FMA>(cur, stride, n_rows, width, w, &ops.zeros, next, stride);
        for r in 0..n_rows {
            let row = &mut next[r * stride..r * stride + w.cols];
            for (x, bias) in row.iter_mut().zip(*b) {
                *x = (*x + bias).max(0.0);
            }
        }
        std::mem::swap(cur, next);
        width = w.cols;
    }
    for (r, o) in out_b.iter_mut().enumerate() {
        let hid = &cur[r * stride..r * stride + width];
        *o = dot::<FMA>(hid, &plan.w_out) + plan.b_out + dots[r];
    }
}

/// Columns of the int8 register block.
const NR_I8: usize = 16;

/// The int8 query packed for [`gemm_i8`]: `[stride × padded]` as i16, zero columns
/// past `cols`.
pub(super) struct PackedI8 {
    data: Vec<i16>,
    padded: usize,
}

impl PackI8 for PackedI8 {
    fn query(q: &QueryI8) -> PackedI8 {
        PackedI8::new(q)
    }
    fn layer(w: &QueryI8) -> PackedI8 {
        PackedI8::new(w)
    }
}

impl PackedI8 {
    fn new(q: &QueryI8) -> PackedI8 {
        let padded = padded_cols(q.cols, NR_I8);
        let mut data = vec![0i16; q.stride * padded];
        for k in 0..q.stride {
            for j in 0..q.cols {
                data[k * padded + j] = q.q[k * q.cols + j] as i16;
            }
        }
        PackedI8 { data, padded }
    }
}

/// `c[r · ldc + j] = Σ_k a[r · k_len + k] · b[k][j]` in exact i32 for `rows` rows of
/// int8 `a` (row length `k_len`, the items' stride) and `j < b.padded`.
#[inline(always)]
fn gemm_i8(a: &[i8], k_len: usize, rows: usize, b: &PackedI8, c: &mut [i32], ldc: usize) {
    let ldb = b.padded;
    for r in 0..rows {
        let ar = &a[r * k_len..(r + 1) * k_len];
        let mut j0 = 0;
        while j0 < ldb {
            let mut acc = [0i32; NR_I8];
            for (kk, &x) in ar.iter().enumerate() {
                let brow: &[i16; NR_I8] = b.data[kk * ldb + j0..kk * ldb + j0 + NR_I8]
                    .try_into()
                    .expect("NR_I8-wide slice");
                let x = x as i32;
                for j in 0..NR_I8 {
                    acc[j] += x * brow[j] as i32;
                }
            }
            c[r * ldc + j0..r * ldc + j0 + NR_I8].copy_from_slice(&acc);
            j0 += NR_I8;
        }
    }
}

/// [`run`] for an int8 plan: the integer first layer, the integer further layers
/// (each row's activations quantised by [`quantize_activations`]), then the f32 output.
#[inline(always)]
fn run_i8<const FMA: bool>(
    ops: &Operands<'_>,
    req: &Int8Request<'_, PackedI8>,
    rows: Rows<'_>,
    out: &mut [f32],
) {
    let (items, qi, packed) = (req.items, &req.query, &req.packed);
    let h = ops.plan.hidden;
    let stride = ops.max_padded;
    let widest = req
        .layers
        .iter()
        .map(|(_, p)| p.padded)
        .fold(packed.padded, usize::max);
    let p_stride = req.layers.iter().map(|(l, _)| l.stride).max().unwrap_or(0);
    let mut cur = vec![0.0f32; BLOCK * stride];
    let mut next = vec![0.0f32; BLOCK * stride];
    let mut acc = vec![0i32; BLOCK * widest];
    let mut p = vec![0i8; BLOCK * p_stride];
    let mut row_scale = [0.0f32; BLOCK];
    let mut dots = [0.0f32; BLOCK];
    let mut gathered = I8Rows::default();
    for (bi, out_b) in out.chunks_mut(BLOCK).enumerate() {
        let n_rows = out_b.len();
        let (q, scale, _) = rows.int8(items, bi * BLOCK, n_rows, &mut gathered);
        gemm_i8(q, items.stride, n_rows, packed, &mut acc, packed.padded);
        for r in 0..n_rows {
            let s = scale[r];
            let accr = &acc[r * packed.padded..];
            let row = &mut cur[r * stride..r * stride + h];
            for (j, x) in row.iter_mut().enumerate() {
                *x = (dequant(accr[j], s, qi.scale[j]) + ops.a[j]).max(0.0);
            }
            dots[r] = dequant(accr[h], s, qi.scale[h]);
        }
        let mut width = h;
        for ((layer, lp), (_, b)) in req.layers.iter().zip(&ops.layers) {
            let ks = layer.stride;
            for r in 0..n_rows {
                row_scale[r] = quantize_activations(
                    &cur[r * stride..r * stride + width],
                    &mut p[r * ks..(r + 1) * ks],
                );
            }
            gemm_i8(&p, ks, n_rows, lp, &mut acc, lp.padded);
            for r in 0..n_rows {
                let accr = &acc[r * lp.padded..];
                let row = &mut next[r * stride..r * stride + layer.cols];
                for (j, x) in row.iter_mut().enumerate() {
                    *x = (dequant(accr[j], row_scale[r], layer.scale[j]) + b[j]).max(0.0);
                }
            }
            std::mem::swap(&mut cur, &mut next);
            width = layer.cols;
        }
        for (r, o) in out_b.iter_mut().enumerate() {
            let hid = &cur[r * stride..r * stride + width];
            *o = dot::<FMA>(hid, &ops.plan.w_out) + ops.plan.b_out + dots[r];
        }
    }
}

/// The exact i32 products of every row of `items` with `q` (`out[r · cols + j]`), as
/// [`scores`] computes them for an int8 plan.
pub fn products_i8(items: &Int8Items, q: &QueryI8, out: &mut [i32]) {
    let packed = PackedI8::new(q);
    let mut acc = vec![0i32; BLOCK * packed.padded];
    for (bi, chunk) in out.chunks_mut(BLOCK * q.cols.max(1)).enumerate() {
        let n_rows = chunk.len() / q.cols.max(1);
        let start = bi * BLOCK * items.stride;
        let a = &items.q[start..start + n_rows * items.stride];
        gemm_i8(a, items.stride, n_rows, &packed, &mut acc, packed.padded);
        for r in 0..n_rows {
            chunk[r * q.cols..(r + 1) * q.cols]
                .copy_from_slice(&acc[r * packed.padded..r * packed.padded + q.cols]);
        }
    }
}

/// One request's operands, the int8 query packed for [`gemm_i8`].
type Request<'a> = super::pack::Request<'a, PackedI8>;

#[inline(always)]
fn run_any<const FMA: bool>(req: &Request<'_>, rows: Rows<'_>, out: &mut [f32]) {
    match &req.int8 {
        None => run::<FMA>(&req.ops, rows, out),
        Some(int8) => run_i8::<FMA>(&req.ops, int8, rows, out),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2(req: &Request<'_>, rows: Rows<'_>, out: &mut [f32]) {
    run_any::<true>(req, rows, out)
}

fn run_dispatch(req: &Request<'_>, rows: Rows<'_>, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // Safety: `run_avx2` only needs the AVX2 and FMA instructions, which the
        // processor was just checked to support.
        unsafe { run_avx2(req, rows, out) };
        return;
    }
    run_any::<false>(req, rows, out)
}

/// The rows from output row `from` on.
fn skip(rows: Rows<'_>, from: usize) -> Rows<'_> {
    match rows {
        Rows::Range(first) => Rows::Range(first + from),
        Rows::Of(items) => Rows::Of(&items[from..]),
    }
}

/// Scores `rows` into `out`, split over threads from [`PAR_MIN`] rows on.
fn run_all(req: &Request<'_>, rows: Rows<'_>, out: &mut [f32]) {
    if out.len() >= PAR_MIN && rayon::current_num_threads() > 1 {
        use rayon::prelude::*;
        out.par_chunks_mut(PAR_CHUNK)
            .enumerate()
            .for_each(|(ci, chunk)| run_dispatch(req, skip(rows, ci * PAR_CHUNK), chunk));
        return;
    }
    run_dispatch(req, rows, out)
}

/// Scores every item with the blocked GEMM (multi-threaded for large catalogs); an int8
/// plan's first layer is the integer GEMM. Shapes must already be validated.
pub fn scores(plan: &HeadPlan, query: &UserQuery, out: &mut [f32]) {
    let n = plan.n_items.min(out.len());
    if n == 0 {
        return;
    }
    run_all(&Request::new(plan, query), Rows::Range(0), &mut out[..n])
}

/// Scores the listed items: `out[r]` = the score of item `items[r]`, bit for bit what
/// [`scores`] gives that item (each row is computed on its own). Shapes and indices
/// must already be validated.
pub fn scores_of(plan: &HeadPlan, query: &UserQuery, items: &[u32], out: &mut [f32]) {
    let n = items.len().min(out.len());
    if n == 0 {
        return;
    }
    run_all(
        &Request::new(plan, query),
        Rows::Of(&items[..n]),
        &mut out[..n],
    )
}

/// Which instruction set [`scores`] uses on this machine (for benchmark reports).
pub fn variant() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        return "avx2+fma";
    }
    "portable"
}

/// Independent accumulator vectors in [`fma_peak`] (enough to cover FMA latency × ports).
const PEAK_ACC: usize = 12;
/// Lanes per accumulator vector (one AVX register).
const PEAK_LANES: usize = 8;

#[inline(always)]
fn fma_loop<const FMA: bool>(iters: u64, seed: f32) -> f32 {
    let mut acc = [[seed; PEAK_LANES]; PEAK_ACC];
    for (i, a) in acc.iter_mut().enumerate() {
        a[0] += i as f32 * 1e-3;
    }
    let (mul, add) = (
        std::hint::black_box(0.999_9f32),
        std::hint::black_box(1e-4f32),
    );
    for _ in 0..iters {
        for a in acc.iter_mut() {
            for x in a.iter_mut() {
                *x = madd::<FMA>(*x, mul, add);
            }
        }
    }
    acc.iter().flatten().sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma_loop_avx2(iters: u64, seed: f32) -> f32 {
    fma_loop::<true>(iters, seed)
}

/// A machine-peak probe for benchmark reports: `iters` rounds of independent
/// multiply-adds with the same instruction set [`scores`] uses on this machine, on one
/// thread. Returns `(checksum, flops)` where `flops = 2 · iters · 96`.
pub fn fma_peak(iters: u64) -> (f32, u64) {
    let flops = 2 * iters * (PEAK_ACC * PEAK_LANES) as u64;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // Safety: `fma_loop_avx2` only needs AVX2 and FMA, which were just detected.
        return (unsafe { fma_loop_avx2(iters, 1.0) }, flops);
    }
    (fma_loop::<false>(iters, 1.0), flops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::ItemVectors;
    use crate::rng::SplitMix64;

    fn random(rng: &mut SplitMix64, len: usize, scale: f32) -> Vec<f32> {
        (0..len)
            .map(|_| (rng.next_f32() * 2.0 - 1.0) * scale)
            .collect()
    }

    /// The portable instantiation (multiply then add) and the one [`scores`] dispatches
    /// to on this machine (AVX2+FMA where present) both match the scalar reference:
    /// on an AVX2 machine the parity tests would otherwise never run the portable code.
    #[test]
    fn portable_and_dispatched_variants_match_scalar() {
        let mut rng = SplitMix64::new(17);
        for (n, d, h, extra) in [
            (1, 1, 1, vec![]),
            (37, 33, 5, vec![17]),
            (70, 64, 64, vec![32, 5]),
        ] {
            let mut layers = Vec::new();
            let mut width = h;
            for &w in &extra {
                layers.push((random(&mut rng, width * w, 0.3), random(&mut rng, w, 0.1)));
                width = w;
            }
            let plan = HeadPlan {
                n_items: n,
                dim: d,
                hidden: h,
                item_vectors: ItemVectors::F32(random(&mut rng, n * d, 1.0)),
                layers,
                w_out: random(&mut rng, width, 0.3),
                b_out: 0.25,
                gpu_f16: false,
            };
            let query = UserQuery {
                m: random(&mut rng, d * (h + 1), 0.3),
                a: random(&mut rng, h, 0.3),
            };
            let mut want = vec![f32::NAN; n];
            super::super::scalar::scores(&plan, &query, &mut want);
            let req = Request::new(&plan, &query);
            let mut portable = vec![f32::NAN; n];
            run_any::<false>(&req, Rows::Range(0), &mut portable);
            let mut dispatched = vec![f32::NAN; n];
            scores(&plan, &query, &mut dispatched);
            for (what, got) in [("portable", &portable), (variant(), &dispatched)] {
                for (i, (x, y)) in want.iter().zip(got.iter()).enumerate() {
                    assert!(
                        (x - y).abs() <= 1e-4 * (1.0 + x.abs()),
                        "{what} n={n} d={d} h={h}: item {i}: scalar {x}, got {y}"
                    );
                }
            }
        }
    }
}
