//! Hand-written backward passes of every layer of [`crate::model`], for the trainer.
//! Each function takes what the forward pass saved and the gradient of the loss with
//! respect to the layer's output, accumulates parameter gradients (`+=`), and returns or
//! accumulates the gradient with respect to the layer's input. Every one is checked
//! against finite differences in `tests/gradcheck.rs`.
use crate::model::layers::{axpy, dot, LnCache};
use crate::model::{idx, EncoderCache, HeadCache, Model};

/// Gradients of `y = x·w + b` (`x` `[m × k]`, `w` `[k × n]`): `dw += xᵀ·dy`, `db += Σ dy`,
/// and `dx = dy·wᵀ` returned.
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
    for i in 0..m {
        let dyr = &dy[i * n..(i + 1) * n];
        for p in 0..k {
            let xv = x[i * k + p];
            if xv != 0.0 {
                axpy(xv, dyr, &mut dw[p * n..(p + 1) * n]);
            }
        }
    }
    if let Some(db) = db {
        for i in 0..m {
            axpy(1.0, &dy[i * n..(i + 1) * n], db);
        }
    }
    let mut dx = vec![0.0; m * k];
    for i in 0..m {
        let dyr = &dy[i * n..(i + 1) * n];
        for p in 0..k {
            dx[i * k + p] = dot(dyr, &w[p * n..(p + 1) * n]);
        }
    }
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

/// Gradients for every parameter of a model (same order as [`Model::params`]).
#[derive(Debug, Clone)]
pub struct Grads {
    /// One buffer per parameter.
    pub g: Vec<Vec<f32>>,
}

impl Grads {
    /// Zero gradients shaped like `model`'s parameters.
    pub fn zeros(model: &Model) -> Grads {
        Grads {
            g: model
                .params
                .iter()
                .map(|(_, t)| vec![0.0; t.shape.iter().product()])
                .collect(),
        }
    }

    /// `self += other`.
    pub fn add(&mut self, other: &Grads) {
        for (a, b) in self.g.iter_mut().zip(&other.g) {
            axpy(1.0, b, a);
        }
    }

    /// Multiplies every gradient by `s`.
    pub fn scale(&mut self, s: f32) {
        self.g.iter_mut().flatten().for_each(|x| *x *= s);
    }

    /// Global L2 norm.
    pub fn norm(&self) -> f32 {
        self.g.iter().flatten().map(|x| x * x).sum::<f32>().sqrt()
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
    let (d, len, f) = (c.dim, cache.input.len(), c.ffn_dim);
    let li = model.lnf_index();
    let (dg, rest) = grads.g[li..].split_at_mut(1);
    let mut dh = layer_norm_backward(
        &cache.lnf,
        model.w(li),
        dy,
        len,
        d,
        &mut dg[0],
        &mut rest[0],
    );
    for b in (0..c.n_blocks).rev() {
        let bc = &cache.blocks[b];
        let base = idx::BLOCK0 + b * idx::PER_BLOCK;
        let w = |o: usize| model.w(base + o);
        // Feed-forward branch: h_out = mid + drop(relu(ln2(mid)·W1 + b1)·W2 + b2).
        let mut dg_out = dh.clone();
        if !bc.mask_ffn.is_empty() {
            dg_out
                .iter_mut()
                .zip(&bc.mask_ffn)
                .for_each(|(x, m)| *x *= m);
        }
        let (gw2, gb2) = two(&mut grads.g, base + idx::W2, base + idx::B2);
        let mut df = linear_backward(&bc.f, w(idx::W2), &dg_out, len, f, d, gw2, Some(gb2));
        df.iter_mut().zip(&bc.f).for_each(|(x, a)| {
            if *a <= 0.0 {
                *x = 0.0
            }
        });
        let (gw1, gb1) = two(&mut grads.g, base + idx::W1, base + idx::B1);
        let dbn = linear_backward(&bc.b, w(idx::W1), &df, len, d, f, gw1, Some(gb1));
        let (gg, gb) = two(&mut grads.g, base + idx::LN2_G, base + idx::LN2_B);
        let dmid = layer_norm_backward(&bc.ln2, w(idx::LN2_G), &dbn, len, d, gg, gb);
        axpy(1.0, &dmid, &mut dh);
        // Attention branch: mid = x + drop(attn(ln1(x))·Wo + bo).
        let mut do_ = dh.clone();
        if !bc.mask_attn.is_empty() {
            do_.iter_mut().zip(&bc.mask_attn).for_each(|(x, m)| *x *= m);
        }
        let (gwo, gbo) = two(&mut grads.g, base + idx::WQ + 6, base + idx::WQ + 7);
        let datt = linear_backward(&bc.att, w(idx::WQ + 6), &do_, len, d, d, gwo, Some(gbo));
        let (dq, dk, dvv) =
            attention_backward(&bc.q, &bc.k, &bc.v, &bc.probs, &datt, len, d, c.n_heads);
        let mut da = vec![0.0; len * d];
        for (j, dz) in [dq, dk, dvv].iter().enumerate() {
            let (gw, gb) = two(
                &mut grads.g,
                base + idx::WQ + 2 * j,
                base + idx::WQ + 2 * j + 1,
            );
            let dx = linear_backward(&bc.a, w(idx::WQ + 2 * j), dz, len, d, d, gw, Some(gb));
            axpy(1.0, &dx, &mut da);
        }
        let (gg, gb) = two(&mut grads.g, base + idx::LN1_G, base + idx::LN1_B);
        let dx = layer_norm_backward(&bc.ln1, w(idx::LN1_G), &da, len, d, gg, gb);
        axpy(1.0, &dx, &mut dh);
    }
    // Input: x_t = mask ⊙ (v_item + pos + kind + gap).
    if !cache.mask_in.is_empty() {
        dh.iter_mut().zip(&cache.mask_in).for_each(|(x, m)| *x *= m);
    }
    let inp = &cache.input;
    for t in 0..len {
        let row = &dh[t * d..(t + 1) * d];
        let it = inp.items[t] as usize;
        axpy(1.0, row, &mut dv[it * d..(it + 1) * d]);
        let p = len - 1 - t;
        axpy(1.0, row, &mut grads.g[idx::POS][p * d..(p + 1) * d]);
        let k = inp.kinds[t] as usize;
        axpy(1.0, row, &mut grads.g[idx::KIND][k * d..(k + 1) * d]);
        let g = inp.gaps[t] as usize;
        axpy(1.0, row, &mut grads.g[idx::GAP][g * d..(g + 1) * d]);
    }
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
    let hs = &model.config.mlp_hidden;
    let hi = model.head_index();
    let nl = hs.len();
    let out = hi + 2 * nl;
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
    // Output layer.
    let last_w = hs[nl - 1];
    let last = &cache.hidden[nl - 1];
    let w_out = model.w(out);
    let mut dh = vec![0.0; n_cand * last_w];
    for c in 0..n_cand {
        let g = dlogits[c];
        axpy(g, &last[c * last_w..(c + 1) * last_w], &mut grads.g[out]);
        grads.g[out + 1][0] += g;
        axpy(g, w_out, &mut dh[c * last_w..(c + 1) * last_w]);
    }
    // Further layers, last to first.
    for j in (1..nl).rev() {
        relu_mask(&mut dh, &cache.hidden[j]);
        let (gw, gb) = two(&mut grads.g, hi + 2 * j, hi + 2 * j + 1);
        dh = linear_backward(
            &cache.hidden[j - 1],
            model.w(hi + 2 * j),
            &dh,
            n_cand,
            hs[j - 1],
            hs[j],
            gw,
            Some(gb),
        );
    }
    relu_mask(&mut dh, &cache.hidden[0]);
    // First layer: z = part + u·W1u + (u⊙v)·W1p.
    let h = hs[0];
    let w1 = model.w(hi);
    let (w1u, w1p) = (&w1[..d * h], &w1[2 * d * h..3 * d * h]);
    let mut dsum = vec![0.0; h];
    let mut p = vec![0.0; d];
    for c in 0..n_cand {
        let dz = &dh[c * h..(c + 1) * h];
        axpy(1.0, dz, &mut dsum);
        let v = &cand[c * d..(c + 1) * d];
        for k in 0..d {
            p[k] = u[k] * v[k];
        }
        let gw1p = &mut grads.g[hi][2 * d * h..3 * d * h];
        for k in 0..d {
            if p[k] != 0.0 {
                axpy(p[k], dz, &mut gw1p[k * h..(k + 1) * h]);
            }
        }
        for k in 0..d {
            let dp = dot(dz, &w1p[k * h..(k + 1) * h]);
            du[k] += dp * v[k];
            dcand[c * d + k] += dp * u[k];
        }
    }
    let gw1u = &mut grads.g[hi][..d * h];
    for k in 0..d {
        axpy(u[k], &dsum, &mut gw1u[k * h..(k + 1) * h]);
        du[k] += dot(&dsum, &w1u[k * h..(k + 1) * h]);
    }
    (du, dcand, dh)
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
    let hi = model.head_index();
    let w1v = &model.w(hi)[d * h..2 * d * h];
    let (gw1, gb1) = two(&mut grads.g, hi, hi + 1);
    let dx = linear_backward(
        cand,
        w1v,
        dpart,
        n_cand,
        d,
        h,
        &mut gw1[d * h..2 * d * h],
        Some(gb1),
    );
    axpy(1.0, &dx, dcand);
}

/// Backward pass of [`Model::item_vectors`]: `dv` `[n_items × d]` into `item.id`,
/// `item.cat`, `item.tok` and `item.price`.
pub fn item_encoder_backward(model: &Model, dv: &[f32], grads: &mut Grads) {
    let d = model.config.dim;
    let f = &model.features;
    axpy(1.0, dv, &mut grads.g[idx::ITEM_ID]);
    for i in 0..model.config.n_items {
        let row = &dv[i * d..(i + 1) * d];
        if row.iter().all(|&x| x == 0.0) {
            continue;
        }
        let c = f.category[i] as usize;
        axpy(1.0, row, &mut grads.g[idx::ITEM_CAT][c * d..(c + 1) * d]);
        let toks = f.tokens_of(i);
        if !toks.is_empty() {
            let s = 1.0 / toks.len() as f32;
            for &t in toks {
                let t = t as usize;
                axpy(s, row, &mut grads.g[idx::ITEM_TOK][t * d..(t + 1) * d]);
            }
        }
        let gp = &mut grads.g[idx::ITEM_PRICE];
        axpy(f.price[i], row, &mut gp[..d]);
        axpy(f.price_missing[i], row, &mut gp[d..2 * d]);
    }
}

fn relu_mask(dy: &mut [f32], act: &[f32]) {
    dy.iter_mut().zip(act).for_each(|(g, a)| {
        if *a <= 0.0 {
            *g = 0.0
        }
    });
}

/// Two distinct mutable gradient buffers (`i < j`).
fn two(g: &mut [Vec<f32>], i: usize, j: usize) -> (&mut [f32], &mut [f32]) {
    debug_assert!(i < j);
    let (a, b) = g.split_at_mut(j);
    (&mut a[i], &mut b[0])
}
