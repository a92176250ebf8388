//! The scalar reference of the scoring head: plain loops in the order the math is
//! written, no blocking, no SIMD. It is the oracle every fast path is tested against,
//! and the fallback where nothing faster exists.
//!
//! For an int8 plan ([`ItemVectors::Int8`]) the first layer is the integer reference of
//! [`super::quant`]: `acc_ij = Σ_k q_ik · r_kj` in i32 ([`products_i8`]), then
//! `relu(acc as f32 * (s_i * t_j) + a_j)`; each further layer is integer too
//! ([`QueryI8::layer`] weights, [`quantize_activations`] rows, `relu(acc as f32 *
//! (s_row * t_j) + b_j)`), and the output layer is the f32 reference below.
// Index loops on purpose: this file mirrors the math's subscripts one to one.
#![allow(clippy::needless_range_loop)]

use super::quant::{layers_i8, quantize_activations, Int8Items, QueryI8};
use super::{HeadPlan, ItemVectors, UserQuery};

/// Scores every item with plain loops. Shapes must already be validated
/// ([`HeadPlan::validate`], [`HeadPlan::validate_query`], `out.len() == n_items`).
pub fn scores(plan: &HeadPlan, query: &UserQuery, out: &mut [f32]) {
    let n = plan.n_items.min(out.len());
    score_rows(plan, query, 0..n, &mut out[..n]);
}

/// Scores the listed items: `out[r]` = the score of item `items[r]`, exactly what
/// [`scores`] gives it. Shapes must already be validated and every index be below
/// `n_items`.
pub fn scores_of(plan: &HeadPlan, query: &UserQuery, items: &[u32], out: &mut [f32]) {
    score_rows(plan, query, items.iter().map(|&i| i as usize), out);
}

fn score_rows(
    plan: &HeadPlan,
    query: &UserQuery,
    items: impl Iterator<Item = usize>,
    out: &mut [f32],
) {
    let d = plan.dim;
    let mut scratch = Scratch::new(plan);
    match &plan.item_vectors {
        ItemVectors::F32(v) => {
            for (o, i) in out.iter_mut().zip(items) {
                *o = score(plan, query, &v[i * d..(i + 1) * d], &mut scratch);
            }
        }
        ItemVectors::Int8(q) => {
            let qi = QueryI8::new(&query.m, d, plan.hidden + 1, q.stride);
            let layers = layers_i8(plan);
            for (o, i) in out.iter_mut().zip(items) {
                *o = score_i8(plan, query, &qi, &layers, q, i, &mut scratch);
            }
        }
    }
}

/// The integer first layer of rows `first .. first + n` of `items`:
/// `out[r · cols + j] = Σ_k q_(first+r),k · r_kj` (`cols = query.cols`), exact i32.
pub fn products_i8(items: &Int8Items, query: &QueryI8, first: usize, n: usize, out: &mut [i32]) {
    let (st, cols) = (items.stride, query.cols);
    for r in 0..n {
        let row = items.row(first + r);
        for j in 0..cols {
            let mut acc = 0i32;
            for k in 0..st {
                acc += row[k] as i32 * query.q[k * cols + j] as i32;
            }
            out[r * cols + j] = acc;
        }
    }
}

/// One integer further layer for one row: `next_j = relu(Σ_k p_k · r_kj as f32 ·
/// (s · t_j) + b_j)` with `p` the row `cur` quantised ([`quantize_activations`]) and
/// `r`, `t` the layer's quantised weights and column scales.
fn layer_i8(cur: &[f32], layer: &QueryI8, b: &[f32], p: &mut [i8], next: &mut [f32]) {
    let s = quantize_activations(cur, &mut p[..layer.stride]);
    let cols = layer.cols;
    for j in 0..cols {
        let mut acc = 0i32;
        for k in 0..layer.stride {
            acc += p[k] as i32 * layer.q[k * cols + j] as i32;
        }
        next[j] = (dequant(acc, s, layer.scale[j]) + b[j]).max(0.0);
    }
}

/// `acc · (s · t)`: an int8 product back in f32 units (every kernel, this order).
#[inline(always)]
pub(super) fn dequant(acc: i32, s: f32, t: f32) -> f32 {
    acc as f32 * (s * t)
}

/// Two hidden-layer rows, as wide as the widest layer.
struct Scratch {
    cur: Vec<f32>,
    next: Vec<f32>,
    acc: Vec<i32>,
    /// A quantised activation row (int8 further layers).
    p: Vec<i8>,
}

impl Scratch {
    fn new(plan: &HeadPlan) -> Scratch {
        let max_width = plan
            .layers
            .iter()
            .map(|(_, b)| b.len())
            .fold(plan.hidden, usize::max);
        Scratch {
            cur: vec![0.0f32; max_width],
            next: vec![0.0f32; max_width],
            acc: vec![0; plan.hidden + 1],
            p: vec![0; max_width.next_multiple_of(super::quant::K_MULTIPLE)],
        }
    }
}

/// The head's logit for one item vector `v` (`[d]`).
fn score(plan: &HeadPlan, query: &UserQuery, v: &[f32], s: &mut Scratch) -> f32 {
    let (d, h) = (plan.dim, plan.hidden);
    let cols = h + 1;
    for j in 0..h {
        let mut acc = 0.0f32;
        for k in 0..d {
            acc += v[k] * query.m[k * cols + j];
        }
        s.cur[j] = (acc + query.a[j]).max(0.0);
    }
    let mut dot = 0.0f32;
    for k in 0..d {
        dot += v[k] * query.m[k * cols + h];
    }
    tail(plan, s, dot)
}

/// The head's logit for int8 item `i`.
fn score_i8(
    plan: &HeadPlan,
    query: &UserQuery,
    qi: &QueryI8,
    layers: &[QueryI8],
    items: &Int8Items,
    i: usize,
    s: &mut Scratch,
) -> f32 {
    let h = plan.hidden;
    products_i8(items, qi, i, 1, &mut s.acc);
    let scale = items.scale[i];
    for j in 0..h {
        s.cur[j] = (dequant(s.acc[j], scale, qi.scale[j]) + query.a[j]).max(0.0);
    }
    let dot = dequant(s.acc[h], scale, qi.scale[h]);
    let Scratch { cur, next, p, .. } = s;
    let mut width = h;
    for (layer, (_, b)) in layers.iter().zip(&plan.layers) {
        layer_i8(&cur[..width], layer, b, p, next);
        std::mem::swap(cur, next);
        width = b.len();
    }
    output(plan, cur, width, dot)
}

/// The further layers and the output from the first hidden row in `s.cur`.
fn tail(plan: &HeadPlan, s: &mut Scratch, dot: f32) -> f32 {
    let Scratch { cur, next, .. } = s;
    let mut width = plan.hidden;
    for (w, b) in &plan.layers {
        let out_w = b.len();
        for j in 0..out_w {
            let mut acc = b[j];
            for k in 0..width {
                acc += cur[k] * w[k * out_w + j];
            }
            next[j] = acc.max(0.0);
        }
        std::mem::swap(cur, next);
        width = out_w;
    }
    output(plan, cur, width, dot)
}

/// The output layer: `cur[..width] · w_out + b_out + dot`.
fn output(plan: &HeadPlan, cur: &[f32], width: usize, dot: f32) -> f32 {
    let mut score = plan.b_out;
    for j in 0..width {
        score += cur[j] * plan.w_out[j];
    }
    score + dot
}
