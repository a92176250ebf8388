//! The scalar reference of the scoring head: plain loops in the order the math is
//! written, no blocking, no SIMD. It is the oracle every fast path is tested against,
//! and the fallback where nothing faster exists.
// Index loops on purpose: this file mirrors the math's subscripts one to one.
#![allow(clippy::needless_range_loop)]

use super::{HeadPlan, UserQuery};

/// Scores every item with plain loops. Shapes must already be validated
/// ([`HeadPlan::validate`], [`HeadPlan::validate_query`], `out.len() == n_items`).
pub fn scores(plan: &HeadPlan, query: &UserQuery, out: &mut [f32]) {
    let d = plan.dim;
    let mut scratch = Scratch::new(plan);
    for (i, o) in out.iter_mut().enumerate().take(plan.n_items) {
        *o = score(
            plan,
            query,
            &plan.item_vectors[i * d..(i + 1) * d],
            &mut scratch,
        );
    }
}

/// Scores the listed items: `out[r]` = the score of item `items[r]`, exactly what
/// [`scores`] gives it. Shapes must already be validated and every index be below
/// `n_items`.
pub fn scores_of(plan: &HeadPlan, query: &UserQuery, items: &[u32], out: &mut [f32]) {
    let d = plan.dim;
    let mut scratch = Scratch::new(plan);
    for (o, &i) in out.iter_mut().zip(items) {
        let i = i as usize;
        *o = score(
            plan,
            query,
            &plan.item_vectors[i * d..(i + 1) * d],
            &mut scratch,
        );
    }
}

/// Two hidden-layer rows, as wide as the widest layer.
struct Scratch {
    cur: Vec<f32>,
    next: Vec<f32>,
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
        }
    }
}

/// The head's logit for one item vector `v` (`[d]`).
fn score(plan: &HeadPlan, query: &UserQuery, v: &[f32], s: &mut Scratch) -> f32 {
    let (d, h) = (plan.dim, plan.hidden);
    let cols = h + 1;
    let Scratch { cur, next } = s;
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
        std::mem::swap(cur, next);
        width = out_w;
    }
    let mut score = plan.b_out;
    for j in 0..width {
        score += cur[j] * plan.w_out[j];
    }
    score + dot
}
