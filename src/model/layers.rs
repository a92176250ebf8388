//! Forward primitives of the model (dense algebra on row-major `f32` slices), written once
//! and used by the browser runtime, the CLI and the trainer. Each primitive that the
//! trainer differentiates returns what its backward pass needs; the backward passes live
//! in `crate::train::backprop` (native only).
use crate::kernels::gemm::{gemm, Mat};

/// Dot product with eight independent accumulators (so it vectorises without
/// reassociation by the compiler).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]) + s
}

/// `y += alpha * x`.
#[inline]
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yv, xv) in y.iter_mut().zip(x) {
        *yv += alpha * xv;
    }
}

/// `out[m × n] += a[m × k] · b[k × n]` (row-major): the blocked product of
/// [`crate::kernels::gemm`], which adds each output's products one at a time in increasing
/// `k` (the order of a plain row-by-row loop).
pub fn matmul_acc(a: &[f32], b: &[f32], m: usize, k: usize, n: usize, out: &mut [f32]) {
    gemm(m, n, k, Mat::n(a, k), Mat::n(b, n), out, n);
}

/// `x[m × k] · w[k × n] + bias[n]`, a new `[m × n]` matrix.
pub fn linear(x: &[f32], w: &[f32], bias: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(m * n);
    for _ in 0..m {
        out.extend_from_slice(&bias[..n]);
    }
    matmul_acc(x, w, m, k, n, &mut out);
    out
}

/// ReLU in place.
pub fn relu(x: &mut [f32]) {
    for v in x {
        *v = v.max(0.0);
    }
}

/// Layer-norm epsilon.
pub const LN_EPS: f32 = 1e-5;

/// Saved values of a layer norm for its backward pass.
#[derive(Debug, Clone, Default)]
pub struct LnCache {
    /// Normalised input `(x - mean) / std`, `[m × d]`.
    pub xhat: Vec<f32>,
    /// `1 / std` per row.
    pub rstd: Vec<f32>,
}

/// Row-wise layer norm `y = g ⊙ (x - mean)/sqrt(var + eps) + b` over `[m × d]`.
pub fn layer_norm(x: &[f32], g: &[f32], b: &[f32], m: usize, d: usize) -> (Vec<f32>, LnCache) {
    let mut y = vec![0.0; m * d];
    let mut xhat = vec![0.0; m * d];
    let mut rstd = vec![0.0; m];
    for i in 0..m {
        let row = &x[i * d..(i + 1) * d];
        let mean = row.iter().sum::<f32>() / d as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
        let r = 1.0 / (var + LN_EPS).sqrt();
        rstd[i] = r;
        for j in 0..d {
            let h = (row[j] - mean) * r;
            xhat[i * d + j] = h;
            y[i * d + j] = g[j] * h + b[j];
        }
    }
    (y, LnCache { xhat, rstd })
}

/// Causal multi-head attention core: `q`, `k`, `v` are `[len × dim]` (heads side by
/// side, `dim / heads` wide each). Returns the concatenated head outputs `[len × dim]`
/// and the attention probabilities `[heads × len × len]` (row `t` attends to `0..=t`).
pub fn causal_attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    len: usize,
    dim: usize,
    heads: usize,
) -> (Vec<f32>, Vec<f32>) {
    attention_rows(q, k, v, len, dim, heads, 0)
}

/// [`causal_attention`]'s row `len - 1` alone (the inference encoder's last block needs
/// only the last position): `q_last` is that position's query `[dim]`; returns its head
/// outputs `[dim]` and its probabilities `[heads × len]`, bit for bit the same numbers.
pub fn causal_attention_last(
    q_last: &[f32],
    k: &[f32],
    v: &[f32],
    len: usize,
    dim: usize,
    heads: usize,
) -> (Vec<f32>, Vec<f32>) {
    attention_rows(q_last, k, v, len, dim, heads, len.saturating_sub(1))
}

/// Rows `first..len` of [`causal_attention`], `q` holding those rows' queries: head
/// outputs `[(len - first) × dim]` and probabilities `[heads × (len - first) × len]`.
fn attention_rows(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    len: usize,
    dim: usize,
    heads: usize,
    first: usize,
) -> (Vec<f32>, Vec<f32>) {
    let (dh, rows) = (dim / heads, len - first.min(len));
    let mut out = vec![0.0; rows * dim];
    let mut probs = vec![0.0; heads * rows * len];
    for h in 0..heads {
        let off = h * dh;
        for r in 0..rows {
            let prow = &mut probs[(h * rows + r) * len..(h * rows + r + 1) * len];
            let orow = &mut out[r * dim + off..r * dim + off + dh];
            let qt = &q[r * dim + off..r * dim + off + dh];
            attend(qt, k, v, first + r, dim, off, prow, orow);
        }
    }
    (out, probs)
}

/// One query row of one head: `prow[s] = softmax_s(q·k_s / √dh)` over `s ∈ 0..=t` and
/// `orow = Σ_s prow[s] · v_s` (`orow` starts at zero; `k`, `v` rows `dim` apart, the head
/// at column `off`).
#[allow(clippy::too_many_arguments)]
#[inline]
fn attend(
    qt: &[f32],
    k: &[f32],
    v: &[f32],
    t: usize,
    dim: usize,
    off: usize,
    prow: &mut [f32],
    orow: &mut [f32],
) {
    let dh = qt.len();
    let scale = 1.0 / (dh as f32).sqrt();
    let mut mx = f32::NEG_INFINITY;
    for s in 0..=t {
        let z = dot(qt, &k[s * dim + off..s * dim + off + dh]) * scale;
        prow[s] = z;
        mx = mx.max(z);
    }
    let mut sum = 0.0;
    for p in prow[..=t].iter_mut() {
        *p = (*p - mx).exp();
        sum += *p;
    }
    let inv = 1.0 / sum;
    for s in 0..=t {
        prow[s] *= inv;
        axpy(prow[s], &v[s * dim + off..s * dim + off + dh], orow);
    }
}

/// Numerically stable log-softmax cross-entropy of one row of logits against `target`;
/// returns the loss and writes `softmax - onehot` (the gradient) into `grad`.
/// Entries equal to `-inf` are masked out.
pub fn softmax_xent(logits: &[f32], target: usize, grad: &mut [f32]) -> f32 {
    let mx = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for (g, &z) in grad.iter_mut().zip(logits) {
        let e = if z == f32::NEG_INFINITY {
            0.0
        } else {
            (z - mx).exp()
        };
        *g = e;
        sum += e;
    }
    let inv = 1.0 / sum;
    for g in grad.iter_mut() {
        *g *= inv;
    }
    let loss = -(logits[target] - mx) + sum.ln();
    grad[target] -= 1.0;
    loss
}

/// Logistic sigmoid.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive_on_odd_lengths() {
        for n in [0usize, 1, 7, 8, 9, 33] {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 0.25).collect();
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - naive).abs() < 1e-3, "n={n}");
        }
    }

    #[test]
    fn attention_rows_are_causal_distributions() {
        let (len, dim, heads) = (5, 4, 2);
        let q: Vec<f32> = (0..len * dim).map(|i| (i as f32 * 0.37).sin()).collect();
        let k: Vec<f32> = (0..len * dim).map(|i| (i as f32 * 0.11).cos()).collect();
        let v: Vec<f32> = (0..len * dim).map(|i| i as f32).collect();
        let (_, p) = causal_attention(&q, &k, &v, len, dim, heads);
        for h in 0..heads {
            for t in 0..len {
                let row = &p[(h * len + t) * len..(h * len + t + 1) * len];
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
                assert!(row[t + 1..].iter().all(|&x| x == 0.0), "future attended");
            }
        }
    }

    #[test]
    fn softmax_xent_gradient_sums_to_zero() {
        let z = [1.0, 2.0, f32::NEG_INFINITY, 0.5];
        let mut g = [0.0; 4];
        let l = softmax_xent(&z, 1, &mut g);
        assert!(l > 0.0);
        assert!(g.iter().sum::<f32>().abs() < 1e-6);
        assert_eq!(g[2], 0.0);
    }
}
