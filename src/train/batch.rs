//! One batch's losses and gradients, with the matrix products batched into [`gemm`]
//! calls: the dot-product loss of a window is `[L × d]·[d × C]` logits and two products
//! back; the head loss of one position runs its `C` candidates as matrices (the first
//! layer's `(u ⊙ v)·W₁ₚ` as `V·(diag(u)·W₁ₚ)`, as the scoring kernels do), and the
//! gradients of the batch's shared candidates are summed per chunk and routed once per
//! batch. Buffers live in a per-chunk [`Work`] that the trainer keeps across batches.
//!
//! The same mathematics as the per-position reference (`tests::reference`, the former
//! trainer, which calls [`Model::head_forward`] and [`super::backprop::head_backward`]);
//! only the floating-point summation order differs, which the tests bound.
use crate::history::{EventKind, HistoryEvent};
use crate::kernels::gemm::{gemm, Mat};
use crate::model::layers::{axpy, dot, linear, relu, softmax_xent};
use crate::model::params::{flat, flat_mut};
use crate::model::{Dropout, Model};

use super::backprop::{encoder_backward, Grads};
use super::TrainConfig;

/// Shared, read-only inputs of one batch.
pub(super) struct BatchCtx<'a> {
    pub model: &'a Model,
    pub sequences: &'a [Vec<HistoryEvent>],
    /// Item vectors `[n × d]`.
    pub v: &'a [f32],
    /// Sampled candidates of the dot-product loss (empty: the whole catalogue).
    pub cands: &'a [u32],
    /// Their vectors `[K × d]`.
    pub cands_v: &'a [f32],
    /// `(item, slot)` of every candidate, sorted by item (to mask a target).
    pub cand_slots: &'a [(u32, u32)],
    /// Head negatives.
    pub head_negs: &'a [u32],
    /// Their vectors `[k × d]`.
    pub head_negs_v: &'a [f32],
    /// Their item parts `V·W₁ᵥ + b₁` `[k × h]`.
    pub head_negs_part: &'a [f32],
    /// `1 / Σ w_t` over the batch's positions (dot-product term).
    pub scale_dot: f32,
    /// `1 / Σ w_t` over the batch's head positions.
    pub scale_head: f32,
    pub cfg: &'a TrainConfig,
}

impl BatchCtx<'_> {
    /// The loss weight of a target of this kind.
    fn weight(&self, kind: EventKind) -> f32 {
        self.cfg.kind_weights[kind.index()]
    }

    /// The positions of a window that train the head (its last `head_positions`, skipping
    /// targets whose kind weighs 0), each with its loss scale `scale_head · w` and target.
    fn head_targets<'a>(
        &'a self,
        targets: &'a [HistoryEvent],
    ) -> impl Iterator<Item = (usize, f32, usize)> + 'a {
        let len = targets.len();
        (len.saturating_sub(self.cfg.head_positions)..len).filter_map(move |t| {
            let w = self.weight(targets[t].kind);
            (w != 0.0).then(|| (t, self.scale_head * w, targets[t].item as usize))
        })
    }
}

/// One training window: the sequence index and the end (exclusive) of the window.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    pub seq: usize,
    pub end: usize,
}

/// A chunk's accumulators and scratch, kept across batches (zeroed after each).
pub(super) struct Work {
    /// Parameter gradients; only the range after the item encoder is ever written.
    pub grads: Grads,
    /// Item-vector gradients `[n × d]`, written in the rows of `rows` only.
    pub dv: Vec<f32>,
    /// Rows of `dv` written, and a flag per item.
    pub rows: Vec<u32>,
    touched: Vec<bool>,
    /// Every row of `dv` may be written (full softmax).
    pub all_rows: bool,
    /// Gradient of the sampled candidates' vectors `[K × d]`.
    pub dcand: Vec<f32>,
    /// Gradient of the head negatives' vectors `[k × d]`, the item part's excepted.
    pub dneg: Vec<f32>,
    /// Gradient of the head negatives' item parts `[k × h]`.
    pub dneg_part: Vec<f32>,
    /// Summed loss.
    pub loss: f64,
    logits: Vec<f32>,
    grad: Vec<f32>,
}

impl Work {
    /// Empty accumulators for `model`.
    pub fn new(model: &Model) -> Work {
        let c = &model.config;
        Work {
            grads: Grads::zeros(model),
            dv: vec![0.0; c.n_items * c.dim],
            rows: Vec::new(),
            touched: vec![false; c.n_items],
            all_rows: false,
            dcand: Vec::new(),
            dneg: Vec::new(),
            dneg_part: Vec::new(),
            loss: 0.0,
            logits: Vec::new(),
            grad: Vec::new(),
        }
    }

    /// Sizes the candidate accumulators for this batch (zeroed).
    pub fn begin(&mut self, ctx: &BatchCtx<'_>) {
        let (d, h) = (ctx.model.config.dim, ctx.model.config.mlp_hidden[0]);
        reset(&mut self.dcand, ctx.cands.len() * d);
        reset(&mut self.dneg, ctx.head_negs.len() * d);
        reset(&mut self.dneg_part, ctx.head_negs.len() * h);
        self.all_rows = ctx.cands.is_empty();
        self.loss = 0.0;
    }

    /// Marks row `i` of `dv` as written.
    fn touch(&mut self, i: usize) {
        if !self.touched[i] {
            self.touched[i] = true;
            self.rows.push(i as u32);
        }
    }

    /// Adds row `j` of `rows` (`d` wide) to row `items[j]` of `dv`, marking it written.
    fn scatter(&mut self, rows: &[f32], items: &[u32], d: usize) {
        for (j, &item) in items.iter().enumerate() {
            let i = item as usize;
            axpy(
                1.0,
                &rows[j * d..(j + 1) * d],
                &mut self.dv[i * d..(i + 1) * d],
            );
            self.touch(i);
        }
    }

    /// Zeroes the rows of `dv` written and forgets them.
    pub fn clear_rows(&mut self) {
        if self.all_rows {
            self.dv.fill(0.0);
            self.touched.fill(false);
            self.rows.clear();
            return;
        }
        let d = self.dv.len() / self.touched.len().max(1);
        for &r in &self.rows {
            let r = r as usize;
            self.dv[r * d..(r + 1) * d].fill(0.0);
            self.touched[r] = false;
        }
        self.rows.clear();
    }
}

/// `v` as `len` zeros.
fn reset(v: &mut Vec<f32>, len: usize) {
    v.clear();
    v.resize(len, 0.0);
}

/// Forward and backward pass of one training window: the dot-product loss at every
/// position and the head loss at the last `head_positions`; accumulates into `work`.
pub(super) fn run_window(ctx: &BatchCtx<'_>, w: Window, drop: &mut Dropout, work: &mut Work) {
    let model = ctx.model;
    let seq = &ctx.sequences[w.seq];
    let (input, _) = model.seq_input(&seq[..w.end - 1]);
    let len = input.len();
    let targets = &seq[w.end - len..w.end];
    let (y, cache) = model.encode_sequence(ctx.v, &input, Some(drop));
    let mut dy = vec![0.0; len * model.config.dim];
    dot_loss(ctx, &y, targets, &mut dy, work);
    head_loss(ctx, &y, targets, &mut dy, work);
    encoder_backward(model, &cache, &dy, &mut work.grads, &mut work.dv);
    for &it in &input.items {
        work.touch(it as usize);
    }
}

/// The dot-product loss of a window's hidden states `y` `[L × d]`: softmax cross-entropy
/// of `y_t · v_j` over the catalogue (or the target and the sampled candidates) at every
/// position, weighted by the target's kind. Gradients go to `dy`, to `work.dv` (targets;
/// the whole catalogue under full softmax) and to `work.dcand` (sampled candidates).
fn dot_loss(
    ctx: &BatchCtx<'_>,
    y: &[f32],
    targets: &[HistoryEvent],
    dy: &mut [f32],
    work: &mut Work,
) {
    let d = ctx.model.config.dim;
    let len = targets.len();
    let full = ctx.cands.is_empty();
    let n = ctx.model.config.n_items;
    // Columns: the catalogue, or the target (column 0) and the candidates.
    let nc = if full { n } else { ctx.cands.len() + 1 };
    let mut logits = std::mem::take(&mut work.logits);
    let mut grad = std::mem::take(&mut work.grad);
    reset(&mut logits, len * nc);
    reset(&mut grad, len * nc);
    if full {
        gemm(len, n, d, Mat::n(y, d), Mat::t(ctx.v, d), &mut logits, nc);
    } else {
        let k = ctx.cands.len();
        gemm(
            len,
            k,
            d,
            Mat::n(y, d),
            Mat::t(ctx.cands_v, d),
            &mut logits[1..],
            nc,
        );
    }
    let mut loss = 0.0f64;
    for (t, ev) in targets.iter().enumerate() {
        let w = ctx.weight(ev.kind);
        let row = &mut logits[t * nc..(t + 1) * nc];
        let g = &mut grad[t * nc..(t + 1) * nc];
        if w == 0.0 {
            continue;
        }
        let scale = ctx.scale_dot * w;
        let target = ev.item as usize;
        let yt = &y[t * d..(t + 1) * d];
        let tgt_col = if full {
            target
        } else {
            row[0] = dot(yt, &ctx.v[target * d..(target + 1) * d]);
            if let Ok(i) = ctx.cand_slots.binary_search_by_key(&ev.item, |s| s.0) {
                row[1 + ctx.cand_slots[i].1 as usize] = f32::NEG_INFINITY;
            }
            0
        };
        loss += (softmax_xent(row, tgt_col, g) * scale) as f64;
        g.iter_mut().for_each(|x| *x *= scale);
    }
    work.loss += loss;
    if full {
        gemm(len, d, n, Mat::n(&grad, nc), Mat::n(ctx.v, d), dy, d);
        gemm(n, d, len, Mat::t(&grad, nc), Mat::n(y, d), &mut work.dv, d);
    } else {
        let k = ctx.cands.len();
        for (t, ev) in targets.iter().enumerate() {
            let (g0, target) = (grad[t * nc], ev.item as usize);
            if g0 != 0.0 {
                axpy(
                    g0,
                    &ctx.v[target * d..(target + 1) * d],
                    &mut dy[t * d..(t + 1) * d],
                );
                axpy(
                    g0,
                    &y[t * d..(t + 1) * d],
                    &mut work.dv[target * d..(target + 1) * d],
                );
                work.touch(target);
            }
        }
        gemm(
            len,
            d,
            k,
            Mat::n(&grad[1..], nc),
            Mat::n(ctx.cands_v, d),
            dy,
            d,
        );
        gemm(
            k,
            d,
            len,
            Mat::t(&grad[1..], nc),
            Mat::n(y, d),
            &mut work.dcand,
            d,
        );
    }
    work.logits = logits;
    work.grad = grad;
}

/// The head loss at a window's last `head_positions` positions: softmax cross-entropy of
/// the full head's logits over the target (slot 0) and the batch's head negatives,
/// weighted by the target's kind. Head gradients go to `work.grads`, the target's
/// vector gradient to `work.dv`, the negatives' to `work.dneg` and `work.dneg_part`, the
/// user vector's to `dy`.
fn head_loss(
    ctx: &BatchCtx<'_>,
    y: &[f32],
    targets: &[HistoryEvent],
    dy: &mut [f32],
    work: &mut Work,
) {
    let model = ctx.model;
    let (d, hs) = (model.config.dim, &model.config.mlp_hidden);
    let h = hs[0];
    let k = ctx.head_negs.len();
    let c = k + 1;
    let p = model.view();
    let head = &p.head;
    let (w1u, w1v, w1p) = (flat(&head.w1u), flat(&head.w1v), flat(&head.w1p));
    let mut cand = vec![0.0; c * d];
    cand[d..].copy_from_slice(ctx.head_negs_v);
    let mut mu = vec![0.0; d * h];
    let mut dl = vec![0.0; c];
    for (t, scale, target) in ctx.head_targets(targets) {
        let u = &y[t * d..(t + 1) * d];
        let vt = &ctx.v[target * d..(target + 1) * d];
        cand[..d].copy_from_slice(vt);
        // Forward: z = part + u·W₁ᵤ + V·(diag(u)·W₁ₚ).
        let ua = linear(u, w1u, &vec![0.0; h], 1, d, h);
        let part_t = linear(vt, w1v, head.b1, 1, d, h);
        let mut z = Vec::with_capacity(c * h);
        z.extend_from_slice(&part_t);
        z.extend_from_slice(ctx.head_negs_part);
        for row in z.chunks_exact_mut(h) {
            axpy(1.0, &ua, row);
        }
        for kk in 0..d {
            for j in 0..h {
                mu[kk * h + j] = u[kk] * w1p[kk * h + j];
            }
        }
        gemm(c, h, d, Mat::n(&cand, d), Mat::n(&mu, h), &mut z, h);
        relu(&mut z);
        let mut hidden = vec![z];
        let mut width = h;
        for l in &head.layers {
            let out_w = l.b.len();
            let prev = hidden.last().map(Vec::as_slice).unwrap_or(&[]);
            let mut zz = linear(prev, flat(&l.w), l.b, c, width, out_w);
            relu(&mut zz);
            hidden.push(zz);
            width = out_w;
        }
        let last = hidden.last().map(Vec::as_slice).unwrap_or(&[]);
        let mut lg: Vec<f32> = (0..c)
            .map(|ci| {
                dot(&last[ci * width..(ci + 1) * width], head.out.w)
                    + head.out.b[0]
                    + dot(u, &cand[ci * d..(ci + 1) * d])
            })
            .collect();
        for (j, &neg) in ctx.head_negs.iter().enumerate() {
            if neg as usize == target {
                lg[j + 1] = f32::NEG_INFINITY;
            }
        }
        work.loss += (softmax_xent(&lg, 0, &mut dl) * scale) as f64;
        dl.iter_mut().for_each(|g| *g *= scale);
        // Backward.
        let mut g = work.grads.view_mut(&model.config);
        let gh = &mut g.head;
        let mut du = vec![0.0; d];
        let mut dcand = vec![0.0; c * d];
        for ci in 0..c {
            let gl = dl[ci];
            if gl != 0.0 {
                axpy(gl, &cand[ci * d..(ci + 1) * d], &mut du);
                axpy(gl, u, &mut dcand[ci * d..(ci + 1) * d]);
            }
        }
        let nl = hs.len();
        let lw = hs[nl - 1];
        let mut dh = vec![0.0; c * lw];
        for ci in 0..c {
            let gl = dl[ci];
            axpy(gl, &last[ci * lw..(ci + 1) * lw], gh.out.w);
            gh.out.b[0] += gl;
            axpy(gl, head.out.w, &mut dh[ci * lw..(ci + 1) * lw]);
        }
        for j in (1..nl).rev() {
            relu_mask(&mut dh, &hidden[j]);
            let (l, gl) = (&head.layers[j - 1], &mut gh.layers[j - 1]);
            let (fin, fout) = (hs[j - 1], hs[j]);
            gemm(
                fin,
                fout,
                c,
                Mat::t(&hidden[j - 1], fin),
                Mat::n(&dh, fout),
                flat_mut(&mut gl.w),
                fout,
            );
            for r in dh.chunks_exact(fout) {
                axpy(1.0, r, gl.b);
            }
            let mut dprev = vec![0.0; c * fin];
            gemm(
                c,
                fin,
                fout,
                Mat::n(&dh, fout),
                Mat::t(flat(&l.w), fout),
                &mut dprev,
                fin,
            );
            dh = dprev;
        }
        relu_mask(&mut dh, &hidden[0]);
        let dz = dh;
        // u·W₁ᵤ: the column sums of dz.
        let mut dsum = vec![0.0; h];
        for r in dz.chunks_exact(h) {
            axpy(1.0, r, &mut dsum);
        }
        let gw1u = flat_mut(&mut gh.w1u);
        for kk in 0..d {
            axpy(u[kk], &dsum, &mut gw1u[kk * h..(kk + 1) * h]);
            du[kk] += dot(&dsum, &w1u[kk * h..(kk + 1) * h]);
        }
        // V·(diag(u)·W₁ₚ): dM = Vᵀ·dz, then W₁ₚ and u; dV += dz·Mᵀ.
        let mut dm = vec![0.0; d * h];
        gemm(d, h, c, Mat::t(&cand, d), Mat::n(&dz, h), &mut dm, h);
        let gw1p = flat_mut(&mut gh.w1p);
        for kk in 0..d {
            let r = &dm[kk * h..(kk + 1) * h];
            axpy(u[kk], r, &mut gw1p[kk * h..(kk + 1) * h]);
            du[kk] += dot(r, &w1p[kk * h..(kk + 1) * h]);
        }
        gemm(c, d, h, Mat::n(&dz, h), Mat::t(&mu, h), &mut dcand, d);
        // The target's item part v_t·W₁ᵥ + b₁ (the negatives' are routed per batch).
        let dz0 = &dz[..h];
        let gw1v = flat_mut(&mut gh.w1v);
        for kk in 0..d {
            axpy(vt[kk], dz0, &mut gw1v[kk * h..(kk + 1) * h]);
            dcand[kk] += dot(dz0, &w1v[kk * h..(kk + 1) * h]);
        }
        axpy(1.0, dz0, gh.b1);
        axpy(1.0, &dz[h..], &mut work.dneg_part);
        axpy(1.0, &dcand[d..], &mut work.dneg);
        axpy(1.0, &dcand[..d], &mut work.dv[target * d..(target + 1) * d]);
        work.touch(target);
        axpy(1.0, &du, &mut dy[t * d..(t + 1) * d]);
    }
}

/// Routes the summed gradients of the batch's shared candidates into `grads` and `dv`:
/// the sampled candidates' `dcand` into their rows of `dv`, the head negatives' item
/// parts through `head.w1`'s item block and `head.b1`, and their vectors' `dneg`.
pub(super) fn route_shared(ctx: &BatchCtx<'_>, total: &mut Work) {
    let model = ctx.model;
    let (d, h) = (model.config.dim, model.config.mlp_hidden[0]);
    let k = ctx.head_negs.len();
    let p = model.view();
    let w1v = flat(&p.head.w1v);
    {
        let mut g = total.grads.view_mut(&model.config);
        let gh = &mut g.head;
        gemm(
            d,
            h,
            k,
            Mat::t(ctx.head_negs_v, d),
            Mat::n(&total.dneg_part, h),
            flat_mut(&mut gh.w1v),
            h,
        );
        for r in total.dneg_part.chunks_exact(h) {
            axpy(1.0, r, gh.b1);
        }
    }
    let mut dneg = std::mem::take(&mut total.dneg);
    gemm(
        k,
        d,
        h,
        Mat::n(&total.dneg_part, h),
        Mat::t(w1v, h),
        &mut dneg,
        d,
    );
    total.scatter(&dneg, ctx.head_negs, d);
    total.dneg = dneg;
    let dcand = std::mem::take(&mut total.dcand);
    total.scatter(&dcand, ctx.cands, d);
    total.dcand = dcand;
}

/// Adds chunk `w`'s accumulators to `total` (the gradients from `from` on; the rows
/// of `dv` it wrote) and clears `w` for the next batch.
pub(super) fn merge_into(total: &mut Work, w: &mut Work, from: usize) {
    axpy(1.0, &w.grads.g[from..], &mut total.grads.g[from..]);
    w.grads.g[from..].fill(0.0);
    let d = w.dv.len() / w.touched.len().max(1);
    if w.all_rows {
        axpy(1.0, &w.dv, &mut total.dv);
        total.all_rows = true;
    } else {
        for &r in &w.rows {
            let r = r as usize;
            axpy(
                1.0,
                &w.dv[r * d..(r + 1) * d],
                &mut total.dv[r * d..(r + 1) * d],
            );
            total.touch(r);
        }
    }
    w.clear_rows();
    axpy(1.0, &w.dcand, &mut total.dcand);
    axpy(1.0, &w.dneg, &mut total.dneg);
    axpy(1.0, &w.dneg_part, &mut total.dneg_part);
    total.loss += w.loss;
}

fn relu_mask(dy: &mut [f32], act: &[f32]) {
    dy.iter_mut().zip(act).for_each(|(g, a)| {
        if *a <= 0.0 {
            *g = 0.0
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelConfig;
    use crate::features::ItemFeatureTable;
    use crate::rng::SplitMix64;

    /// The former trainer's per-position passes (one dot product, one candidate at a
    /// time, through [`Model::head_forward`] and the layer backward passes): the reference
    /// the batched passes are tested against.
    mod reference {
        use crate::history::HistoryEvent;
        use crate::model::layers::{axpy, dot, linear, softmax_xent};
        use crate::model::params::flat;
        use crate::model::Dropout;
        use crate::train::backprop::{encoder_backward, head_backward, item_part_backward, Grads};

        use super::super::{BatchCtx, Window};

        /// Forward and backward pass of one training window: the dot-product loss at every
        /// position and the head loss at the last `head_positions`; accumulates parameter
        /// gradients into `grads` and item-vector gradients into `dv`, and returns the loss.
        pub fn run_window(
            ctx: &BatchCtx<'_>,
            w: Window,
            drop: &mut Dropout,
            grads: &mut Grads,
            dv: &mut [f32],
        ) -> f64 {
            let model = ctx.model;
            let seq = &ctx.sequences[w.seq];
            let (input, _) = model.seq_input(&seq[..w.end - 1]);
            let len = input.len();
            let targets = &seq[w.end - len..w.end];
            let (y, cache) = model.encode_sequence(ctx.v, &input, Some(drop));
            let mut dy = vec![0.0; len * model.config.dim];
            let mut loss = 0.0f64;
            dot_loss(ctx, &y, targets, &mut dy, dv, &mut loss);
            head_loss(ctx, &y, targets, grads, &mut dy, dv, &mut loss);
            encoder_backward(model, &cache, &dy, grads, dv);
            loss
        }

        /// The dot-product loss of a window's hidden states `y` `[L × d]`: softmax cross-entropy
        /// of `y_t · v_j` over the catalog (or the target and the sampled candidates) at every
        /// position, weighted by the target's kind, added to `loss`; its gradients go to `dy`
        /// and `dv`.
        fn dot_loss(
            ctx: &BatchCtx<'_>,
            y: &[f32],
            targets: &[HistoryEvent],
            dy: &mut [f32],
            dv: &mut [f32],
            loss: &mut f64,
        ) {
            let d = ctx.model.config.dim;
            let full = ctx.cands.is_empty();
            let nc = if full {
                ctx.model.config.n_items
            } else {
                ctx.cands.len() + 1
            };
            let mut logits = vec![0.0; nc];
            let mut grad = vec![0.0; nc];
            for (t, ev) in targets.iter().enumerate() {
                let w = ctx.weight(ev.kind);
                if w == 0.0 {
                    continue;
                }
                let scale = ctx.scale_dot * w;
                let yt = &y[t * d..(t + 1) * d];
                let target = ev.item as usize;
                let tgt_idx = dot_logits(ctx, yt, target, &mut logits);
                *loss += (softmax_xent(&logits, tgt_idx, &mut grad) * scale) as f64;
                let dyt = &mut dy[t * d..(t + 1) * d];
                for (j, &g) in grad.iter().enumerate() {
                    if g == 0.0 {
                        continue;
                    }
                    let g = g * scale;
                    let item = if full {
                        j
                    } else if j == 0 {
                        target
                    } else {
                        ctx.cands[j - 1] as usize
                    };
                    axpy(g, &ctx.v[item * d..(item + 1) * d], dyt);
                    axpy(g, yt, &mut dv[item * d..(item + 1) * d]);
                }
            }
        }

        /// Fills `logits` with `y_t · v_j` over the whole catalog (no candidates) or over the
        /// target (slot 0) and the candidates (a candidate equal to the target masked to −∞);
        /// returns the target's slot.
        fn dot_logits(ctx: &BatchCtx<'_>, yt: &[f32], target: usize, logits: &mut [f32]) -> usize {
            let d = ctx.model.config.dim;
            if ctx.cands.is_empty() {
                for (j, z) in logits.iter_mut().enumerate() {
                    *z = dot(yt, &ctx.v[j * d..(j + 1) * d]);
                }
                return target;
            }
            logits[0] = dot(yt, &ctx.v[target * d..(target + 1) * d]);
            for (j, &c) in ctx.cands.iter().enumerate() {
                logits[j + 1] = if c as usize == target {
                    f32::NEG_INFINITY
                } else {
                    dot(yt, &ctx.v[c as usize * d..(c as usize + 1) * d])
                };
            }
            0
        }

        /// The head loss at a window's last `head_positions` positions: softmax cross-entropy of
        /// the full head's logits over the target (slot 0) and the batch's head negatives,
        /// weighted by the target's kind, added to `loss`; head gradients go to `grads`, the rest
        /// to `dy` and `dv`.
        fn head_loss(
            ctx: &BatchCtx<'_>,
            y: &[f32],
            targets: &[HistoryEvent],
            grads: &mut Grads,
            dy: &mut [f32],
            dv: &mut [f32],
            loss: &mut f64,
        ) {
            let model = ctx.model;
            let (d, h) = (model.config.dim, model.config.mlp_hidden[0]);
            let c = ctx.head_negs.len() + 1;
            let p = model.view();
            let (w1v, b1) = (flat(&p.head.w1v), p.head.b1);
            let mut cand = vec![0.0; c * d];
            cand[d..].copy_from_slice(ctx.head_negs_v);
            let mut part = vec![0.0; c * h];
            part[h..].copy_from_slice(ctx.head_negs_part);
            let mut hgrad = vec![0.0; c];
            for (t, scale, target) in ctx.head_targets(targets) {
                let yt = y[t * d..(t + 1) * d].to_vec();
                cand[..d].copy_from_slice(&ctx.v[target * d..(target + 1) * d]);
                let tp = linear(&cand[..d], w1v, b1, 1, d, h);
                part[..h].copy_from_slice(&tp);
                let (mut lg, hc) = model.head_forward(&yt, &cand, &part, c);
                for (j, &neg) in ctx.head_negs.iter().enumerate() {
                    if neg as usize == target {
                        lg[j + 1] = f32::NEG_INFINITY;
                    }
                }
                *loss += (softmax_xent(&lg, 0, &mut hgrad) * scale) as f64;
                hgrad.iter_mut().for_each(|g| *g *= scale);
                let (du, mut dcand, dpart) =
                    head_backward(model, &yt, &cand, c, &hc, &hgrad, grads);
                item_part_backward(model, &cand, c, &dpart, grads, &mut dcand);
                axpy(1.0, &du, &mut dy[t * d..(t + 1) * d]);
                axpy(1.0, &dcand[..d], &mut dv[target * d..(target + 1) * d]);
                for (j, &neg) in ctx.head_negs.iter().enumerate() {
                    let neg = neg as usize;
                    axpy(
                        1.0,
                        &dcand[(j + 1) * d..(j + 2) * d],
                        &mut dv[neg * d..(neg + 1) * d],
                    );
                }
            }
        }
    }

    /// A small model over `n` items: two blocks, a two-layer head.
    fn toy_model(n: usize) -> Model {
        let mut config = ModelConfig::default_for(n, 3, 16);
        config.dim = 8;
        config.ffn_dim = 16;
        config.n_heads = 2;
        config.max_len = 6;
        config.mlp_hidden = vec![8, 4];
        let table = ItemFeatureTable {
            category: (0..n).map(|i| (i % 3) as u32).collect(),
            price: (0..n).map(|i| (i % 5) as f32 / 5.0).collect(),
            price_missing: vec![0.0; n],
            token_offsets: (0..=n as u32).collect(),
            tokens: (0..n).map(|i| (i % 16) as u32).collect(),
        };
        Model::new(config, table, 3).expect("toy model")
    }

    fn sequences(n: u32) -> Vec<Vec<HistoryEvent>> {
        let kinds = [EventKind::View, EventKind::Cart, EventKind::Purchase];
        (0..6u32)
            .map(|u| {
                (0..5 + u as usize)
                    .map(|t| HistoryEvent {
                        item: (u * 5 + t as u32 * 3) % n,
                        kind: kinds[(u as usize + t) % 3],
                        at: 1e9 + (t * t) as f64 * 4000.0,
                    })
                    .collect()
            })
            .collect()
    }

    /// The batched passes give the reference's loss and gradients (every parameter and
    /// item vector), under sampled and full softmax, with kind weights that drop a kind.
    #[test]
    fn batched_passes_match_the_per_position_reference() {
        let n = 23;
        let model = toy_model(n);
        let seqs = sequences(n as u32);
        let windows: Vec<Window> = (0..seqs.len())
            .map(|s| Window {
                seq: s,
                end: seqs[s].len() - (s % 2),
            })
            .collect();
        let v = model.item_vectors();
        let (d, h) = (model.config.dim, model.config.mlp_hidden[0]);
        for (negatives, kind_weights) in [(0usize, [1.0f32; 3]), (9, [0.5, 0.0, 1.0])] {
            let cfg = TrainConfig {
                negatives,
                head_negatives: 5,
                head_positions: 3,
                kind_weights,
                ..TrainConfig::default()
            };
            let mut rng = SplitMix64::new(4);
            let cands = if negatives == 0 {
                Vec::new()
            } else {
                // Includes targets, so masking is exercised.
                super::super::sample_items(&mut rng, n, negatives)
            };
            let head_negs = super::super::sample_items(&mut rng, n, 5);
            let gather = |items: &[u32]| -> Vec<f32> {
                items
                    .iter()
                    .flat_map(|&i| v[i as usize * d..(i as usize + 1) * d].iter().copied())
                    .collect()
            };
            let (cands_v, head_negs_v) = (gather(&cands), gather(&head_negs));
            let mut cand_slots: Vec<(u32, u32)> = cands
                .iter()
                .enumerate()
                .map(|(j, &i)| (i, j as u32))
                .collect();
            cand_slots.sort_unstable();
            let p = model.view();
            let head_negs_part = linear(
                &head_negs_v,
                flat(&p.head.w1v),
                p.head.b1,
                head_negs.len(),
                d,
                h,
            );
            let ctx = BatchCtx {
                model: &model,
                sequences: &seqs,
                v: &v,
                cands: &cands,
                cands_v: &cands_v,
                cand_slots: &cand_slots,
                head_negs: &head_negs,
                head_negs_v: &head_negs_v,
                head_negs_part: &head_negs_part,
                scale_dot: 0.05,
                scale_head: 0.1,
                cfg: &cfg,
            };
            // Reference.
            let mut rg = Grads::zeros(&model);
            let mut rdv = vec![0.0; n * d];
            let mut rloss = 0.0;
            let mut drop = Dropout::new(0.2, 7);
            for &w in &windows {
                rloss += reference::run_window(&ctx, w, &mut drop, &mut rg, &mut rdv);
            }
            // Batched: two chunks merged.
            let mut works = [Work::new(&model), Work::new(&model)];
            let mut total = Work::new(&model);
            let mut drop = Dropout::new(0.2, 7);
            for (ci, chunk) in windows.chunks(3).enumerate() {
                works[ci].begin(&ctx);
                for &w in chunk {
                    run_window(&ctx, w, &mut drop, &mut works[ci]);
                }
            }
            total.begin(&ctx);
            for w in &mut works {
                merge_into(&mut total, w, 0);
            }
            route_shared(&ctx, &mut total);
            assert!(rloss > 0.0);
            assert!(
                (total.loss - rloss).abs() < 1e-5 * rloss,
                "loss {} vs {rloss}",
                total.loss
            );
            let close = |a: &[f32], b: &[f32], what: &str| {
                let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    assert!((x - y).abs() <= 2e-4 * scale, "{what}[{i}]: {x} vs {y}");
                }
                assert!(b.iter().any(|&x| x != 0.0), "{what}: no gradient");
            };
            close(&total.grads.g, &rg.g, "params");
            close(&total.dv, &rdv, "dv");
        }
    }
}
