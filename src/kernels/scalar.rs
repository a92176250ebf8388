//! The scalar reference of the scoring head: plain loops in the order the math is
//! written, no blocking, no SIMD. It is the oracle every fast path is tested against,
//! and the fallback where nothing faster exists.
// Index loops on purpose: this file mirrors the math's subscripts one to one.
#![allow(clippy::needless_range_loop)]

use super::{HeadPlan, UserQuery};

/// Scores every item with plain loops. Shapes must already be validated
/// ([`HeadPlan::validate`], [`HeadPlan::validate_query`], `out.len() == n_items`).
pub fn scores(plan: &HeadPlan, query: &UserQuery, out: &mut [f32]) {
    let (d, h) = (plan.dim, plan.hidden);
    let cols = h + 1;
    let max_width = plan.layers.iter().map(|(_, b)| b.len()).fold(h, usize::max);
    let mut cur = vec![0.0f32; max_width];
    let mut next = vec![0.0f32; max_width];
    for (i, o) in out.iter_mut().enumerate().take(plan.n_items) {
        let v = &plan.item_vectors[i * d..(i + 1) * d];
        for j in 0..h {
            let mut acc = 0.0f32;
            for k in 0..d {
                acc += v[k] * query.m[k * cols + j];
            }
            cur[j] = (acc + query.a[j]).max(0.0);
        }
        let mut dot = 0.0f32;
        for k in 0..d {
            dot += v[k] * query.m[k * cols + h];
        }
        let mut width = h;
        for (w, b) in &plan.layers {
            let out_w = b.len();
            for j in 0..out_w {
                let mut acc = b[j];
                for k in 0..width {
                    acc += cur[k] * w[k * out_w + j];
                }
                next[j] = acc.max(0.0);
            }
            std::mem::swap(&mut cur, &mut next);
            width = out_w;
        }
        let mut score = plan.b_out;
        for j in 0..width {
            score += cur[j] * plan.w_out[j];
        }
        *o = score + dot;
    }
}
