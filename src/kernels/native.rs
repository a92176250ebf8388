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
use super::pack::{Operands, Padded, Rows, BLOCK, COL_MULTIPLE};
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
        }
        let mut width = h;
        for (w, b) in &ops.layers {
            gemm::<FMA>(
                &cur, stride, n_rows, width, w, &ops.zeros, &mut next, stride,
            );
            for r in 0..n_rows {
                let row = &mut next[r * stride..r * stride + w.cols];
                for (x, bias) in row.iter_mut().zip(*b) {
                    *x = (*x + bias).max(0.0);
                }
            }
            std::mem::swap(&mut cur, &mut next);
            width = w.cols;
        }
        for (r, o) in out_b.iter_mut().enumerate() {
            let hid = &cur[r * stride..r * stride + width];
            let vr = &v[r * d..(r + 1) * d];
            *o = dot::<FMA>(hid, &plan.w_out) + plan.b_out + dot::<FMA>(vr, &ops.u);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2(ops: &Operands<'_>, rows: Rows<'_>, out: &mut [f32]) {
    run::<true>(ops, rows, out)
}

fn run_dispatch(ops: &Operands<'_>, rows: Rows<'_>, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // Safety: `run_avx2` only needs the AVX2 and FMA instructions, which the
        // processor was just checked to support.
        unsafe { run_avx2(ops, rows, out) };
        return;
    }
    run::<false>(ops, rows, out)
}

/// The rows from output row `from` on.
fn skip(rows: Rows<'_>, from: usize) -> Rows<'_> {
    match rows {
        Rows::Range(first) => Rows::Range(first + from),
        Rows::Of(items) => Rows::Of(&items[from..]),
    }
}

/// Scores `rows` into `out`, split over threads from [`PAR_MIN`] rows on.
fn run_all(ops: &Operands<'_>, rows: Rows<'_>, out: &mut [f32]) {
    if out.len() >= PAR_MIN && rayon::current_num_threads() > 1 {
        use rayon::prelude::*;
        out.par_chunks_mut(PAR_CHUNK)
            .enumerate()
            .for_each(|(ci, chunk)| run_dispatch(ops, skip(rows, ci * PAR_CHUNK), chunk));
        return;
    }
    run_dispatch(ops, rows, out)
}

/// Scores every item with the blocked GEMM (multi-threaded for large catalogs). Shapes
/// must already be validated.
pub fn scores(plan: &HeadPlan, query: &UserQuery, out: &mut [f32]) {
    let n = plan.n_items.min(out.len());
    if n == 0 {
        return;
    }
    let ops = Operands::new(plan, query);
    run_all(&ops, Rows::Range(0), &mut out[..n])
}

/// Scores the listed items: `out[r]` = the score of item `items[r]`, bit for bit what
/// [`scores`] gives that item (each row is computed on its own). Shapes and indices
/// must already be validated.
pub fn scores_of(plan: &HeadPlan, query: &UserQuery, items: &[u32], out: &mut [f32]) {
    let n = items.len().min(out.len());
    if n == 0 {
        return;
    }
    let ops = Operands::new(plan, query);
    run_all(&ops, Rows::Of(&items[..n]), &mut out[..n])
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
                item_vectors: random(&mut rng, n * d, 1.0),
                layers,
                w_out: random(&mut rng, width, 0.3),
                b_out: 0.25,
            };
            let query = UserQuery {
                m: random(&mut rng, d * (h + 1), 0.3),
                a: random(&mut rng, h, 0.3),
            };
            let mut want = vec![f32::NAN; n];
            super::super::scalar::scores(&plan, &query, &mut want);
            let ops = Operands::new(&plan, &query);
            let mut portable = vec![f32::NAN; n];
            run::<false>(&ops, Rows::Range(0), &mut portable);
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
