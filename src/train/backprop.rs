//! Hand-written backward passes of every layer of [`crate::model`], for the trainer.
//! Each function takes what the forward pass saved and the gradient of the loss with
//! respect to the layer's output, accumulates parameter gradients (`+=`), and returns or
//! accumulates the gradient with respect to the layer's input. Every one is checked
//! against finite differences in `tests/gradcheck.rs`.
use ndarray::{ArrayView2, ArrayViewMut2};

use crate::kernels::gemm::{gemm, Mat};
use crate::model::layers::{axpy, dot, LnCache};
use crate::model::params::{flat, flat_mut, row_mut, Block, Head, ParamsMut};
use crate::model::{BlockCache, EncoderCache, HeadCache, Model, ModelConfig};

/// Gradients of `y = x·w + b` (`x` `[m × k]`, `w` `[k × n]`): `dw += xᵀ·dy`, `db += Σ dy`,
/// and `dx = dy·wᵀ` returned (both products by [`gemm`]).
#[allow(clippy::too_many_arguments)] // BLAS-style: operands and their shapes
pub fn linear_backward(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    m: usize,
    k: usize,
    n: usize,
    dw: &mut [f32],
    db: Option<&mut [f32]>,
) -> Vec<f32> {
    gemm(k, n, m, Mat::t(x, k), Mat::n(dy, n), dw, n);
    if let Some(db) = db {
        for i in 0..m {
            axpy(1.0, &dy[i * n..(i + 1) * n], db);
        }
    }
    let mut dx = vec![0.0; m * k];
    gemm(m, k, n, Mat::n(dy, n), Mat::t(w, n), &mut dx, k);
    dx
}

/// Gradients of a row-wise layer norm: `dg += Σ dy ⊙ x̂`, `db += Σ dy`, `dx` returned.
pub fn layer_norm_backward(
    cache: &LnCache,
    g: &[f32],
    dy: &[f32],
    m: usize,
    d: usize,
    dg: &mut [f32],
    db: &mut [f32],
) -> Vec<f32> {
    let mut dx = vec![0.0; m * d];
    let mut dxhat = vec![0.0; d];
    for i in 0..m {
        let xh = &cache.xhat[i * d..(i + 1) * d];
        let dyr = &dy[i * d..(i + 1) * d];
        for j in 0..d {
            dg[j] += dyr[j] * xh[j];
            db[j] += dyr[j];
            dxhat[j] = dyr[j] * g[j];
        }
        let mean = dxhat.iter().sum::<f32>() / d as f32;
        let mean_x = dxhat.iter().zip(xh).map(|(a, b)| a * b).sum::<f32>() / d as f32;
        let r = cache.rstd[i];
        for j in 0..d {
            dx[i * d + j] = r * (dxhat[j] - mean - xh[j] * mean_x);
        }
    }
    dx
}

/// Gradients of [`crate::model::layers::causal_attention`]: returns `(dq, dk, dv)`.
#[allow(clippy::too_many_arguments)] // the forward's saved tensors and shapes
pub fn attention_backward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    probs: &[f32],
    dout: &[f32],
    len: usize,
    dim: usize,
    heads: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let dh = dim / heads;
    let scale = 1.0 / (dh as f32).sqrt();
    let mut dq = vec![0.0; len * dim];
    let mut dk = vec![0.0; len * dim];
    let mut dv = vec![0.0; len * dim];
    let mut dp = vec![0.0; len];
    for h in 0..heads {
        let off = h * dh;
        for t in 0..len {
            let prow = &probs[(h * len + t) * len..(h * len + t + 1) * len];
            let dot_t = &dout[t * dim + off..t * dim + off + dh];
            let mut s = 0.0;
            for u in 0..=t {
                dp[u] = dot(dot_t, &v[u * dim + off..u * dim + off + dh]);
                s += prow[u] * dp[u];
                axpy(prow[u], dot_t, &mut dv[u * dim + off..u * dim + off + dh]);
            }
            for u in 0..=t {
                let ds = prow[u] * (dp[u] - s) * scale;
                if ds != 0.0 {
                    let (qt, ku) = (
                        &q[t * dim + off..t * dim + off + dh],
                        &k[u * dim + off..u * dim + off + dh],
                    );
                    axpy(ds, ku, &mut dq[t * dim + off..t * dim + off + dh]);
                    axpy(ds, qt, &mut dk[u * dim + off..u * dim + off + dh]);
                }
            }
        }
    }
    (dq, dk, dv)
}

/// Gradients for every parameter of a model: one flat vector laid out like
/// [`Model::params`] (so [`Grads::view_mut`] gives the same typed views).
#[derive(Debug, Clone)]
pub struct Grads {
    /// All gradients, in the order of [`crate::model::params::param_table`].
    pub g: Vec<f32>,
}

impl Grads {
    /// Zero gradients shaped like `model`'s parameters.
    pub fn zeros(model: &Model) -> Grads {
        Grads {
            g: vec![0.0; model.params.len()],
        }
    }

    /// Typed mutable views of the gradients (the parameters' layout under `config`).
    pub fn view_mut(&mut self, config: &ModelConfig) -> ParamsMut<'_> {
        ParamsMut::view_mut(config, &mut self.g)
    }

    /// `self += other`.
    pub fn add(&mut self, other: &Grads) {
        axpy(1.0, &other.g, &mut self.g);
    }

    /// Multiplies every gradient by `s`.
    pub fn scale(&mut self, s: f32) {
        self.g.iter_mut().for_each(|x| *x *= s);
    }

    /// Global L2 norm.
    pub fn norm(&self) -> f32 {
        self.g.iter().map(|x| x * x).sum::<f32>().sqrt()
    }
}

/// Backward pass of [`Model::encode_sequence`]: `dy` is the gradient w.r.t. the final
/// hidden states `[L × d]`. Accumulates encoder parameter gradients into `grads` and the
/// gradient w.r.t. the input items' vectors into `dv` (`[n_items × d]`).
pub fn encoder_backward(
    model: &Model,
    cache: &EncoderCache,
    dy: &[f32],
    grads: &mut Grads,
    dv: &mut [f32],
) {
    let c = &model.config;
    let (d, len) = (c.dim, cache.input.len());
    let p = model.view();
    let mut g = grads.view_mut(c);
    let gu = &mut g.user;
    let lnf = &p.user.lnf;
    let mut dh = layer_norm_backward(&cache.lnf, lnf.g, dy, len, d, gu.lnf.g, gu.lnf.b);
    for b in (0..c.n_blocks).rev() {
        let (blk, gb, bc) = (&p.user.blocks[b], &mut gu.blocks[b], &cache.blocks[b]);
        block_backward(c, blk, bc, gb, &mut dh);
    }
    // Input: x_t = mask ⊙ (v_item + pos + kind + gap).
    if !cache.mask_in.is_empty() {
        dh.iter_mut().zip(&cache.mask_in).for_each(|(x, m)| *x *= m);
    }
    let inp = &cache.input;
    for t in 0..len {
        let r = &dh[t * d..(t + 1) * d];
        let it = inp.items[t] as usize;
        axpy(1.0, r, &mut dv[it * d..(it + 1) * d]);
        axpy(1.0, r, row_mut(&mut gu.pos, len - 1 - t));
        axpy(1.0, r, row_mut(&mut gu.kind, inp.kinds[t] as usize));
        axpy(1.0, r, row_mut(&mut gu.gap, inp.gaps[t] as usize));
    }
}

/// Backward pass of one encoder block: `dh` holds the gradient w.r.t. the block's output
/// and becomes the gradient w.r.t. its input.
fn block_backward(
    c: &ModelConfig,
    blk: &Block<&[f32], ArrayView2<'_, f32>>,
    bc: &BlockCache,
    gb: &mut Block<&mut [f32], ArrayViewMut2<'_, f32>>,
    dh: &mut [f32],
) {
    let (d, len, f) = (c.dim, bc.x.len() / c.dim, c.ffn_dim);
    // Feed-forward branch: h_out = mid + drop(relu(ln2(mid)·W1 + b1)·W2 + b2), times the
    // gate s = σ(mid·G + g) in a gated block.
    let gates = blk.gates.as_ref().zip(gb.gates.as_mut());
    let (dg_out, dgate_in) = branch_backward(
        dh,
        gates.map(|(g, gg)| (&g[1], &mut gg[1])),
        [&bc.mid, &bc.g, &bc.gate_ffn],
        &bc.mask_ffn,
        d,
    );
    let (ff, gff) = (&blk.ffn, &mut gb.ffn);
    let gw2 = flat_mut(&mut gff.w2);
    let mut df = linear_backward(&bc.f, flat(&ff.w2), &dg_out, len, f, d, gw2, Some(gff.b2));
    // SwiGLU, f = silu(f1) ⊙ f3: d f3 = df ⊙ silu(f1), d f1 = df ⊙ f3 ⊙ silu'(f1);
    // else f = relu(f1).
    let df3 = ff.up.as_ref().map(|_| {
        let mut df3 = df.clone();
        for (((g1, g3), a), b) in df.iter_mut().zip(df3.iter_mut()).zip(&bc.f1).zip(&bc.f3) {
            let s = crate::model::layers::sigmoid(*a);
            *g3 *= a * s;
            *g1 *= b * s * (1.0 + a * (1.0 - s));
        }
        df3
    });
    if df3.is_none() {
        relu_mask(&mut df, &bc.f);
    }
    let gw1 = flat_mut(&mut gff.w1);
    let mut dbn = linear_backward(&bc.b, flat(&ff.w1), &df, len, d, f, gw1, Some(gff.b1));
    if let (Some(df3), Some(up), Some(gup)) = (df3, &ff.up, gff.up.as_mut()) {
        let gw3 = flat_mut(&mut gup.w);
        let dbn3 = linear_backward(&bc.b, flat(&up.w), &df3, len, d, f, gw3, Some(gup.b));
        axpy(1.0, &dbn3, &mut dbn);
    }
    let dmid = layer_norm_backward(&bc.ln2, blk.ln2.g, &dbn, len, d, gb.ln2.g, gb.ln2.b);
    axpy(1.0, &dmid, dh);
    if let Some(dx) = dgate_in {
        axpy(1.0, &dx, dh);
    }
    // Attention branch: mid = x + drop(attn(ln1(x))·Wo + bo) (times its gate).
    let gates = blk.gates.as_ref().zip(gb.gates.as_mut());
    let (do_, dgate_in) = branch_backward(
        dh,
        gates.map(|(g, gg)| (&g[0], &mut gg[0])),
        [&bc.x, &bc.o, &bc.gate_attn],
        &bc.mask_attn,
        d,
    );
    let (at, ga) = (&blk.attn, &mut gb.attn);
    let gwo = flat_mut(&mut ga.wo);
    let datt = linear_backward(&bc.att, flat(&at.wo), &do_, len, d, d, gwo, Some(ga.bo));
    let (dq, dk, dvv) =
        attention_backward(&bc.q, &bc.k, &bc.v, &bc.probs, &datt, len, d, c.n_heads);
    let mut da = vec![0.0; len * d];
    for (dz, w, gw, gbias) in [
        (dq, &at.wq, &mut ga.wq, &mut *ga.bq),
        (dk, &at.wk, &mut ga.wk, &mut *ga.bk),
        (dvv, &at.wv, &mut ga.wv, &mut *ga.bv),
    ] {
        let dx = linear_backward(&bc.a, flat(w), &dz, len, d, d, flat_mut(gw), Some(gbias));
        axpy(1.0, &dx, &mut da);
    }
    let dx = layer_norm_backward(&bc.ln1, blk.ln1.g, &da, len, d, gb.ln1.g, gb.ln1.b);
    axpy(1.0, &dx, dh);
    if let Some(dx) = dgate_in {
        axpy(1.0, &dx, dh);
    }
}

/// A gated residual `out = x + s ⊙ y`, `s = σ(x·G + g)`, `[m × d]`: `dy` holds
/// `∂L/∂out` and becomes `∂L/∂y = dout ⊙ s`; the gate's parameter gradients are
/// accumulated and its share of `∂L/∂x` (besides the identity path) returned.
#[allow(clippy::too_many_arguments)]
fn gate_backward(
    x: &[f32],
    y: &[f32],
    s: &[f32],
    gate: &crate::model::params::Dense<&[f32], ArrayView2<'_, f32>>,
    ggate: &mut crate::model::params::Dense<&mut [f32], ArrayViewMut2<'_, f32>>,
    dy: &mut [f32],
    m: usize,
    d: usize,
) -> Vec<f32> {
    let dz: Vec<f32> = dy
        .iter()
        .zip(y)
        .zip(s)
        .map(|((g, y), s)| g * y * s * (1.0 - s))
        .collect();
    dy.iter_mut().zip(s).for_each(|(g, s)| *g *= s);
    linear_backward(
        x,
        flat(&gate.w),
        &dz,
        m,
        d,
        d,
        flat_mut(&mut ggate.w),
        Some(ggate.b),
    )
}

/// The gradient reaching a residual branch's output from `dh` (the stream's): through
/// its gate where the block has one (`gate`: the gate's parameters and their gradients;
/// `[x, y, s]` the branch's input, its output before gating and the gate's values, as
/// [`gate_backward`] takes them), then its dropout mask (`mask`, empty for none). Returns
/// it, and the gate's share of `∂L/∂x` in a gated block.
#[allow(clippy::type_complexity)]
fn branch_backward(
    dh: &[f32],
    gate: Option<(
        &crate::model::params::Dense<&[f32], ArrayView2<'_, f32>>,
        &mut crate::model::params::Dense<&mut [f32], ArrayViewMut2<'_, f32>>,
    )>,
    [x, y, s]: [&[f32]; 3],
    mask: &[f32],
    d: usize,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let mut dout = dh.to_vec();
    let dgate_in = gate.map(|(g, gg)| gate_backward(x, y, s, g, gg, &mut dout, dh.len() / d, d));
    if !mask.is_empty() {
        dout.iter_mut().zip(mask).for_each(|(x, m)| *x *= m);
    }
    (dout, dgate_in)
}

/// Backward pass of [`Model::head_forward`] for one user vector `u` and `C` candidates.
/// `dlogits` `[C]`. Accumulates the head's parameter gradients (`head.w1`'s user and
/// product blocks, further layers, output) into `grads`, and returns
/// `(du, dcand [C × d], dpart [C × h])`; the caller routes `dpart` (the gradient of the
/// item part `V_c·W₁ᵥ + b₁`) with [`item_part_backward`].
pub fn head_backward(
    model: &Model,
    u: &[f32],
    cand: &[f32],
    n_cand: usize,
    cache: &HeadCache,
    dlogits: &[f32],
    grads: &mut Grads,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let d = model.config.dim;
    let p = model.view();
    let mut g = grads.view_mut(&model.config);
    let mut du = vec![0.0; d];
    let mut dcand = vec![0.0; n_cand * d];
    // Dot-product term.
    for c in 0..n_cand {
        let g = dlogits[c];
        if g != 0.0 {
            axpy(g, &cand[c * d..(c + 1) * d], &mut du);
            axpy(g, u, &mut dcand[c * d..(c + 1) * d]);
        }
    }
    let hs = &model.config.mlp_hidden;
    let dh = mlp_backward(hs, &p.head, &mut g.head, cache, dlogits, n_cand);
    let first = FirstLayerGrads {
        du: &mut du,
        dcand: &mut dcand,
    };
    first_layer_backward(&p.head, &mut g.head, u, cand, n_cand, &dh, first);
    (du, dcand, dh)
}

/// Backward pass of the head's output layer and its further layers, last to first:
/// returns the gradient w.r.t. the first layer's pre-activation `z` `[C × h]`
/// (through its ReLU), accumulating the layers' parameter gradients into `gh`.
fn mlp_backward(
    hs: &[usize],
    head: &Head<&[f32], ArrayView2<'_, f32>>,
    gh: &mut Head<&mut [f32], ArrayViewMut2<'_, f32>>,
    cache: &HeadCache,
    dlogits: &[f32],
    n_cand: usize,
) -> Vec<f32> {
    let nl = hs.len();
    // Output layer.
    let last_w = hs[nl - 1];
    let last = &cache.hidden[nl - 1];
    let mut dh = vec![0.0; n_cand * last_w];
    for c in 0..n_cand {
        let g = dlogits[c];
        axpy(g, &last[c * last_w..(c + 1) * last_w], gh.out.w);
        gh.out.b[0] += g;
        axpy(g, head.out.w, &mut dh[c * last_w..(c + 1) * last_w]);
    }
    // Further layers, last to first.
    for j in (1..nl).rev() {
        relu_mask(&mut dh, &cache.hidden[j]);
        let gl = &mut gh.layers[j - 1];
        dh = linear_backward(
            &cache.hidden[j - 1],
            flat(&head.layers[j - 1].w),
            &dh,
            n_cand,
            hs[j - 1],
            hs[j],
            flat_mut(&mut gl.w),
            Some(&mut *gl.b),
        );
    }
    relu_mask(&mut dh, &cache.hidden[0]);
    dh
}

/// Where [`first_layer_backward`] accumulates the input gradients.
struct FirstLayerGrads<'a> {
    /// Gradient w.r.t. the user vector `[d]`.
    du: &'a mut [f32],
    /// Gradient w.r.t. the candidate vectors `[C × d]`.
    dcand: &'a mut [f32],
}

/// Backward pass of the head's first layer `z = part + u·W₁ᵤ + (u ⊙ v)·W₁ₚ` for the
/// gradient `dz` `[C × h]`: accumulates `W₁ᵤ`'s and `W₁ₚ`'s gradients into `gh` and the
/// gradients w.r.t. `u` and the candidates into `out` (`part`'s is `dz` itself).
fn first_layer_backward(
    head: &Head<&[f32], ArrayView2<'_, f32>>,
    gh: &mut Head<&mut [f32], ArrayViewMut2<'_, f32>>,
    u: &[f32],
    cand: &[f32],
    n_cand: usize,
    dz_all: &[f32],
    out: FirstLayerGrads<'_>,
) {
    let FirstLayerGrads { du, dcand } = out;
    let (d, h) = head.w1u.dim();
    let (w1u, w1p) = (flat(&head.w1u), flat(&head.w1p));
    let mut dsum = vec![0.0; h];
    let mut pr = vec![0.0; d];
    for c in 0..n_cand {
        let dz = &dz_all[c * h..(c + 1) * h];
        axpy(1.0, dz, &mut dsum);
        let v = &cand[c * d..(c + 1) * d];
        for k in 0..d {
            pr[k] = u[k] * v[k];
        }
        let gw1p = flat_mut(&mut gh.w1p);
        for k in 0..d {
            if pr[k] != 0.0 {
                axpy(pr[k], dz, &mut gw1p[k * h..(k + 1) * h]);
            }
        }
        for k in 0..d {
            let dp = dot(dz, &w1p[k * h..(k + 1) * h]);
            du[k] += dp * v[k];
            dcand[c * d + k] += dp * u[k];
        }
    }
    let gw1u = flat_mut(&mut gh.w1u);
    for k in 0..d {
        axpy(u[k], &dsum, &mut gw1u[k * h..(k + 1) * h]);
        du[k] += dot(&dsum, &w1u[k * h..(k + 1) * h]);
    }
}

/// Routes the gradient of the head's item part `V_c·W₁ᵥ + b₁` (`dpart` `[C × h]`) into
/// `head.w1` (item block) and `head.b1`, adding the gradient w.r.t. the candidate vectors
/// to `dcand` `[C × d]`.
pub fn item_part_backward(
    model: &Model,
    cand: &[f32],
    n_cand: usize,
    dpart: &[f32],
    grads: &mut Grads,
    dcand: &mut [f32],
) {
    let d = model.config.dim;
    let h = model.config.mlp_hidden[0];
    let p = model.view();
    let mut g = grads.view_mut(&model.config);
    let gh = &mut g.head;
    let gw1v = flat_mut(&mut gh.w1v);
    let dx = linear_backward(
        cand,
        flat(&p.head.w1v),
        dpart,
        n_cand,
        d,
        h,
        gw1v,
        Some(&mut *gh.b1),
    );
    axpy(1.0, &dx, dcand);
}

/// Backward pass of [`Model::item_vectors`]: `dv` `[n_items × d]` into `item.id`,
/// `item.cat`, `item.tok` and `item.price`. With `rows` (sorted, distinct), only those
/// rows of `dv` are read (the others must be zero); the result is the same.
pub fn item_encoder_backward(
    model: &Model,
    dv: &[f32],
    rows: Option<&[u32]>,
    dropped: Option<&[bool]>,
    grads: &mut Grads,
) {
    let d = model.config.dim;
    let f = &model.features;
    let mut g = grads.view_mut(&model.config);
    let gi = &mut g.item;
    let all: Vec<u32>;
    let rows = match rows {
        Some(r) => r,
        None => {
            all = (0..model.config.n_items as u32).collect();
            &all
        }
    };
    let gid = flat_mut(&mut gi.id);
    for &i in rows {
        let i = i as usize;
        if dropped.is_some_and(|m| m.get(i).copied().unwrap_or(false)) {
            continue;
        }
        let r = &dv[i * d..(i + 1) * d];
        axpy(1.0, r, &mut gid[i * d..(i + 1) * d]);
        if let Some(mix) = &model.id_mix {
            for (j, w) in mix.neighbours(i) {
                let j = j as usize;
                axpy(w, r, &mut gid[j * d..(j + 1) * d]);
            }
        }
    }
    for &i in rows {
        let i = i as usize;
        let r = &dv[i * d..(i + 1) * d];
        if r.iter().all(|&x| x == 0.0) {
            continue;
        }
        axpy(1.0, r, row_mut(&mut gi.cat, f.category[i] as usize));
        let toks = f.tokens_of(i);
        if !toks.is_empty() {
            let s = 1.0 / toks.len() as f32;
            for &t in toks {
                axpy(s, r, row_mut(&mut gi.tok, t as usize));
            }
        }
        axpy(f.price[i], r, row_mut(&mut gi.price, 0));
        axpy(f.price_missing[i], r, row_mut(&mut gi.price, 1));
    }
}

fn relu_mask(dy: &mut [f32], act: &[f32]) {
    dy.iter_mut().zip(act).for_each(|(g, a)| {
        if *a <= 0.0 {
            *g = 0.0
        }
    });
}
