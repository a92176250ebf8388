//! A cache-blocked matrix product `C += op(A) · op(B)` in safe, auto-vectorised Rust, for
//! the model's dense layers and the trainer's forward and backward passes.
//!
//! Row-major operands with leading dimensions; each of `A` and `B` may be read
//! transposed ([`Mat::t`]), so `X·W`, `dY·Wᵀ` and `Xᵀ·dY` are all one call. The loops
//! follow the usual blocked scheme: `k` in blocks of [`KC`], `n` in blocks of [`NC`], `B`'s
//! block packed into `kc × NR` panels (one stays in L1), `A` into `MR × kc` strips, and a
//! register-tiled `MR × NR` micro-kernel whose inner loops the compiler vectorises (on
//! x86-64 a second copy is compiled for AVX2 and chosen at run time).
//!
//! Accumulation order: every output element is updated in place, one product at a time,
//! in increasing `k`: `c ← (((c + a₀b₀) + a₁b₁) + …)`. Blocking only stores and reloads
//! `c` between `k` blocks, which is exact, and vector width only changes how many
//! independent outputs are updated at once, so the result is bit-identical to the
//! straightforward loop ([`gemm_reference`]) on every path, and independent of the block
//! sizes and of the thread running it. No fused multiply-add is used (Rust never
//! contracts `a * b + c` on its own), so the AVX2 copy matches the baseline copy bit for
//! bit.
use std::cell::RefCell;

/// Rows of the micro-kernel's register tile.
const MR: usize = 4;
/// Columns of the micro-kernel's register tile (two AVX vectors, four SSE/NEON/SIMD128).
const NR: usize = 16;
/// Depth of one `k` block (a packed `B` panel of `KC × NR` floats is 16 KiB).
const KC: usize = 256;
/// Columns of one packed `B` block.
const NC: usize = 1024;
/// Rows of one packed `A` block.
const MC: usize = 64;

/// A read-only row-major matrix operand: `data[r * ld + c]` is element `(r, c)` of the
/// stored matrix; with `trans` the operand is the stored matrix's transpose.
#[derive(Debug, Clone, Copy)]
pub struct Mat<'a> {
    /// The stored elements.
    pub data: &'a [f32],
    /// Leading dimension (distance between stored rows).
    pub ld: usize,
    /// Read the stored matrix transposed.
    pub trans: bool,
}

impl<'a> Mat<'a> {
    /// The stored matrix as it is (`ld` = its column count).
    pub fn n(data: &'a [f32], ld: usize) -> Mat<'a> {
        Mat {
            data,
            ld,
            trans: false,
        }
    }

    /// The stored matrix's transpose (`ld` = the stored matrix's column count).
    pub fn t(data: &'a [f32], ld: usize) -> Mat<'a> {
        Mat {
            data,
            ld,
            trans: true,
        }
    }

    /// Element `(r, c)` of the operand.
    #[inline(always)]
    fn at(&self, r: usize, c: usize) -> f32 {
        if self.trans {
            self.data[c * self.ld + r]
        } else {
            self.data[r * self.ld + c]
        }
    }

    /// Panics unless the operand has `rows × cols` elements within `data`.
    fn check(&self, rows: usize, cols: usize, what: &str) {
        if rows == 0 || cols == 0 {
            return;
        }
        let (sr, sc) = if self.trans {
            (cols, rows)
        } else {
            (rows, cols)
        };
        assert!(
            self.ld >= sc && (sr - 1) * self.ld + sc <= self.data.len(),
            "gemm: operand {what} ({rows} × {cols}, ld {}, transposed {}) exceeds its {} elements",
            self.ld,
            self.trans,
            self.data.len()
        );
    }
}

/// `C[m × n] += A[m × k] · B[k × n]`, the straightforward loop: the reference the fast
/// path is tested against (bit for bit) and the definition of its accumulation order.
#[allow(clippy::too_many_arguments)] // BLAS-style: shapes and operands
pub fn gemm_reference(
    m: usize,
    n: usize,
    k: usize,
    a: Mat<'_>,
    b: Mat<'_>,
    c: &mut [f32],
    ldc: usize,
) {
    check(m, n, k, &a, &b, c, ldc);
    for i in 0..m {
        for j in 0..n {
            let mut s = c[i * ldc + j];
            for p in 0..k {
                s += a.at(i, p) * b.at(p, j);
            }
            c[i * ldc + j] = s;
        }
    }
}

/// `C[m × n] += A[m × k] · B[k × n]` (see the module documentation): the blocked,
/// vectorised product, bit-identical to [`gemm_reference`].
///
/// # Panics
/// When an operand's slice is too short for its shape and leading dimension (a caller
/// bug, never input-dependent).
#[allow(clippy::too_many_arguments)] // BLAS-style: shapes and operands
pub fn gemm(m: usize, n: usize, k: usize, a: Mat<'_>, b: Mat<'_>, c: &mut [f32], ldc: usize) {
    check(m, n, k, &a, &b, c, ldc);
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    if m < MR && !b.trans {
        // Too few rows to pay for packing: row-times-matrix, the same order.
        return small_m(m, n, k, &a, &b, c, ldc);
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // Safety: `gemm_avx2` only needs the AVX2 instructions, which the processor was
        // just checked to support.
        unsafe { gemm_avx2(m, n, k, a, b, c, ldc) };
        return;
    }
    gemm_blocked(m, n, k, a, b, c, ldc);
}

/// Panics unless every operand holds its shape.
#[allow(clippy::too_many_arguments)]
fn check(m: usize, n: usize, k: usize, a: &Mat<'_>, b: &Mat<'_>, c: &[f32], ldc: usize) {
    a.check(m, k, "A");
    b.check(k, n, "B");
    if m > 0 && n > 0 {
        assert!(
            ldc >= n && (m - 1) * ldc + n <= c.len(),
            "gemm: C ({m} × {n}, ld {ldc}) exceeds its {} elements",
            c.len()
        );
    }
}

/// `C += A·B` for fewer than [`MR`] rows and an untransposed `B`: each row of `C` gets
/// `a_ip · B[p, ..]` for `p` in increasing order (vectorised across the row).
#[allow(clippy::too_many_arguments)]
fn small_m(m: usize, n: usize, k: usize, a: &Mat<'_>, b: &Mat<'_>, c: &mut [f32], ldc: usize) {
    for i in 0..m {
        let crow = &mut c[i * ldc..i * ldc + n];
        for p in 0..k {
            let x = a.at(i, p);
            let brow = &b.data[p * b.ld..p * b.ld + n];
            for (cv, bv) in crow.iter_mut().zip(brow) {
                *cv += x * bv;
            }
        }
    }
}

/// The blocked product compiled for AVX2 (the same code; wider vectors).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
fn gemm_avx2(m: usize, n: usize, k: usize, a: Mat<'_>, b: Mat<'_>, c: &mut [f32], ldc: usize) {
    gemm_blocked(m, n, k, a, b, c, ldc)
}

thread_local! {
    /// Packing buffers (A strips, B panels), reused across calls on a thread.
    static PACK: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// The blocked product: takes the thread's packing buffers, runs the loops, puts them
/// back (so the loops themselves inline into the AVX2 copy).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gemm_blocked(m: usize, n: usize, k: usize, a: Mat<'_>, b: Mat<'_>, c: &mut [f32], ldc: usize) {
    let (mut ap, mut bp) = PACK.with(|bufs| std::mem::take(&mut *bufs.borrow_mut()));
    blocked_loops(m, n, k, &a, &b, c, ldc, &mut ap, &mut bp);
    PACK.with(|bufs| *bufs.borrow_mut() = (ap, bp));
}

/// The loops over `k`, `n` and `m` blocks, then register tiles.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn blocked_loops(
    m: usize,
    n: usize,
    k: usize,
    a: &Mat<'_>,
    b: &Mat<'_>,
    c: &mut [f32],
    ldc: usize,
    ap: &mut Vec<f32>,
    bp: &mut Vec<f32>,
) {
    for pc in (0..k).step_by(KC) {
        let kc = KC.min(k - pc);
        for jc in (0..n).step_by(NC) {
            let nc = NC.min(n - jc);
            pack_b(b, pc, kc, jc, nc, bp);
            for ic in (0..m).step_by(MC) {
                let mc = MC.min(m - ic);
                pack_a(a, ic, mc, pc, kc, ap);
                for (pi, jr) in (0..nc).step_by(NR).enumerate() {
                    let bpanel = &bp[pi * kc * NR..(pi + 1) * kc * NR];
                    let nr = NR.min(nc - jr);
                    for (si, ir) in (0..mc).step_by(MR).enumerate() {
                        let astrip = &ap[si * kc * MR..(si + 1) * kc * MR];
                        let mr = MR.min(mc - ir);
                        let c0 = (ic + ir) * ldc + jc + jr;
                        tile(astrip, bpanel, &mut c[c0..], ldc, mr, nr);
                    }
                }
            }
        }
    }
}

/// Packs `B[pc..pc+kc, jc..jc+nc]` into `kc × NR` panels (row `p` of a panel is `NR`
/// consecutive columns), zero-padding the last panel's columns.
#[inline(always)]
fn pack_b(b: &Mat<'_>, pc: usize, kc: usize, jc: usize, nc: usize, out: &mut Vec<f32>) {
    let panels = nc.div_ceil(NR);
    out.clear();
    out.resize(panels * kc * NR, 0.0);
    for (pi, panel) in out.chunks_exact_mut(kc * NR).enumerate() {
        let j0 = jc + pi * NR;
        let nr = NR.min(jc + nc - j0);
        for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
            if b.trans {
                for (j, x) in row[..nr].iter_mut().enumerate() {
                    *x = b.data[(j0 + j) * b.ld + pc + p];
                }
            } else {
                let s = (pc + p) * b.ld + j0;
                copy_short(&b.data[s..s + nr], &mut row[..nr]);
            }
        }
    }
}

/// Packs `A[ic..ic+mc, pc..pc+kc]` into `MR × kc` strips (column `p` of a strip is `MR`
/// consecutive floats), zero-padding the last strip's rows.
#[inline(always)]
fn pack_a(a: &Mat<'_>, ic: usize, mc: usize, pc: usize, kc: usize, out: &mut Vec<f32>) {
    let strips = mc.div_ceil(MR);
    out.clear();
    out.resize(strips * kc * MR, 0.0);
    for (si, strip) in out.chunks_exact_mut(kc * MR).enumerate() {
        let i0 = ic + si * MR;
        let mr = MR.min(ic + mc - i0);
        for (p, col) in strip.chunks_exact_mut(MR).enumerate() {
            for (i, x) in col[..mr].iter_mut().enumerate() {
                *x = if a.trans {
                    a.data[(pc + p) * a.ld + i0 + i]
                } else {
                    a.data[(i0 + i) * a.ld + pc + p]
                };
            }
        }
    }
}

/// One `MR × NR` register tile: loads the valid `mr × nr` corner of `C` (rows `ldc`
/// apart), adds the strip-panel product one `k` at a time, stores the corner back.
#[inline(always)]
fn tile(astrip: &[f32], bpanel: &[f32], c: &mut [f32], ldc: usize, mr: usize, nr: usize) {
    let mut acc = [[0.0f32; NR]; MR];
    for (i, row) in acc.iter_mut().enumerate().take(mr) {
        copy_short(&c[i * ldc..i * ldc + nr], &mut row[..nr]);
    }
    for (av, bv) in astrip.chunks_exact(MR).zip(bpanel.chunks_exact(NR)) {
        let av: &[f32; MR] = av.try_into().unwrap_or_else(|_| unreachable!());
        let bv: &[f32; NR] = bv.try_into().unwrap_or_else(|_| unreachable!());
        for i in 0..MR {
            let x = av[i];
            for j in 0..NR {
                acc[i][j] += x * bv[j];
            }
        }
    }
    for (i, row) in acc.iter().enumerate().take(mr) {
        copy_short(&row[..nr], &mut c[i * ldc..i * ldc + nr]);
    }
}

/// Copies at most [`NR`] floats; a full row as one fixed-size move (no `memcpy` call).
#[inline(always)]
fn copy_short(src: &[f32], dst: &mut [f32]) {
    if let (Ok(s), Ok(d)) = (
        <&[f32; NR]>::try_from(src),
        <&mut [f32; NR]>::try_from(&mut *dst),
    ) {
        *d = *s;
    } else {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    /// Every transpose combination and ragged sizes across the tile and block edges:
    /// the fast path equals the reference bit for bit.
    #[test]
    fn blocked_product_is_bit_identical_to_the_reference() {
        for &(m, n, k) in &[
            (1, 1, 1),
            (3, 5, 7),
            (4, 16, 8),
            (5, 17, 300),
            (67, 33, 9),
            (9, 1030, 3),
            (2, 3, 600),
        ] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = fill(m * k, 1);
                let b = fill(k * n, 2);
                let (lda, ldb) = (if ta { m } else { k }, if tb { k } else { n });
                let am = Mat {
                    data: &a,
                    ld: lda,
                    trans: ta,
                };
                let bm = Mat {
                    data: &b,
                    ld: ldb,
                    trans: tb,
                };
                let ldc = n + 2;
                let c0 = fill(m * ldc, 3);
                let mut want = c0.clone();
                gemm_reference(m, n, k, am, bm, &mut want, ldc);
                let mut got = c0.clone();
                gemm(m, n, k, am, bm, &mut got, ldc);
                let same = want
                    .iter()
                    .zip(&got)
                    .all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "m {m} n {n} k {k} ta {ta} tb {tb}");
                let mut plain = c0.clone();
                gemm_blocked(m, n, k, am, bm, &mut plain, ldc);
                assert_eq!(
                    plain.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    got.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
                );
                // The padding columns of C are untouched.
                for i in 0..m {
                    assert_eq!(
                        &got[i * ldc + n..i * ldc + ldc],
                        &c0[i * ldc + n..i * ldc + ldc]
                    );
                }
            }
        }
    }

    #[test]
    fn reference_is_a_matrix_product() {
        // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50], added to C = 1.
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [5.0, 6.0, 7.0, 8.0];
        let mut c = [1.0; 4];
        gemm(2, 2, 2, Mat::n(&a, 2), Mat::n(&b, 2), &mut c, 2);
        assert_eq!(c, [20.0, 23.0, 44.0, 51.0]);
        let mut ct = [0.0; 4];
        // Aᵀ·B = [1 3; 2 4]·B = [26 30; 38 44].
        gemm(2, 2, 2, Mat::t(&a, 2), Mat::n(&b, 2), &mut ct, 2);
        assert_eq!(ct, [26.0, 30.0, 38.0, 44.0]);
    }

    #[test]
    #[should_panic(expected = "exceeds")]
    fn a_short_operand_is_refused() {
        let mut c = [0.0; 4];
        gemm(
            2,
            2,
            2,
            Mat::n(&[1.0; 3], 2),
            Mat::n(&[1.0; 4], 2),
            &mut c,
            2,
        );
    }
}
