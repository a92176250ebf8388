//! The model's parameters: one flat `Vec<f32>` and typed views into it.
//!
//! Every parameter tensor lives at a fixed offset of one flat vector, in one fixed order.
//! That order, each tensor's weight-file name and its shape come from one function,
//! [`walk`], which visits the model's structure (item encoder, user encoder blocks, final
//! layer norm, scoring head). Everything else is derived from it:
//! - [`param_table`]: `(name, shape, offset)` of each tensor, in order (the weight file's
//!   parameter tensors; `docs/weight-format.md` lists the same names, checked by a test),
//!   the one place names are formatted: [`walk`] passes a [`TensorName`] (`Copy`, no
//!   allocation), which the views ignore;
//! - [`Params::view`] / [`Params::view_mut`]: the typed structs ([`ItemEncoder`],
//!   [`UserEncoder`] with its [`Block`]s, [`Head`]) over a flat vector, 1-D tensors as
//!   slices and 2-D tensors as `ndarray` views of shape `[rows × cols]` (row-major);
//!   built on every `recommend()` call, so they allocate only the `blocks` and `layers`
//!   vectors, no names;
//! - the trainer's gradient buffer and Adam moments: flat vectors of the same length,
//!   viewed through the same structs.
//!
//! `head.w1` is one `[3d × h]` tensor (stacked `W₁ᵤ; W₁ᵥ; W₁ₚ`, see [`crate::model`]);
//! its views are the three `[d × h]` row blocks `w1u`, `w1v`, `w1p`.
use std::ops::Range;

use ndarray::{ArrayView2, ArrayViewMut2, Axis};

use crate::config::ModelConfig;
use crate::history::EventKind;

/// One parameter tensor of the flat vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    /// Name in the weight file (`block0.attn.wq`, ...).
    pub name: String,
    /// Shape (`[len]` or `[rows, cols]`, row-major).
    pub shape: Vec<usize>,
    /// First element in the flat vector.
    pub offset: usize,
}

impl ParamSpec {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True for a tensor without elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its elements' range in the flat vector.
    pub fn range(&self) -> Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// A layer norm's gain and bias (`[d]` each).
#[derive(Debug, Clone)]
pub struct LayerNorm<V> {
    /// Gain `g`.
    pub g: V,
    /// Bias `b`.
    pub b: V,
}

/// A dense layer `y = x·w + b`.
#[derive(Debug, Clone)]
pub struct Dense<V, M> {
    /// Weight `[in × out]`.
    pub w: M,
    /// Bias `[out]`.
    pub b: V,
}

/// Multi-head self-attention: projections `[d × d]` and biases `[d]`.
#[derive(Debug, Clone)]
pub struct Attention<V, M> {
    /// Query projection.
    pub wq: M,
    /// Query bias.
    pub bq: V,
    /// Key projection.
    pub wk: M,
    /// Key bias.
    pub bk: V,
    /// Value projection.
    pub wv: M,
    /// Value bias.
    pub bv: V,
    /// Output projection.
    pub wo: M,
    /// Output bias.
    pub bo: V,
}

/// The block's feed-forward layer `relu(x·w1 + b1)·w2 + b2`.
#[derive(Debug, Clone)]
pub struct FeedForward<V, M> {
    /// `[d × ffn]`.
    pub w1: M,
    /// `[ffn]`.
    pub b1: V,
    /// `[ffn × d]`.
    pub w2: M,
    /// `[d]`.
    pub b2: V,
    /// SwiGLU's second input projection `x·W₃ + b₃` (`[d × ffn]`, `[ffn]`; `swiglu`
    /// configs only).
    pub up: Option<Dense<V, M>>,
}

/// One pre-layer-norm encoder block.
#[derive(Debug, Clone)]
pub struct Block<V, M> {
    /// Layer norm before attention.
    pub ln1: LayerNorm<V>,
    /// Causal self-attention.
    pub attn: Attention<V, M>,
    /// Layer norm before the feed-forward layer.
    pub ln2: LayerNorm<V>,
    /// Feed-forward layer.
    pub ffn: FeedForward<V, M>,
    /// Residual gates of the attention and feed-forward branches (`gated` configs).
    pub gates: Option<[Dense<V, M>; 2]>,
}

/// The item encoder's tables.
#[derive(Debug, Clone)]
pub struct ItemEncoder<M> {
    /// ID embedding `[n_items × d]`.
    pub id: M,
    /// Category embedding `[n_categories × d]`.
    pub cat: M,
    /// Title-token embedding `[n_token_buckets × d]`.
    pub tok: M,
    /// Price rows `[2 × d]`: `P₀` (scaled by the price), `P₁` (price missing).
    pub price: M,
}

/// The user (sequence) encoder.
#[derive(Debug, Clone)]
pub struct UserEncoder<V, M> {
    /// Position embedding `[max_len × d]`, row 0 = most recent event.
    pub pos: M,
    /// Event-kind embedding `[kinds × d]`.
    pub kind: M,
    /// Recency-bucket embedding `[n_recency_buckets × d]`.
    pub gap: M,
    /// The encoder blocks.
    pub blocks: Vec<Block<V, M>>,
    /// Final layer norm.
    pub lnf: LayerNorm<V>,
}

/// The scoring MLP over `[u, v, u ⊙ v]`.
#[derive(Debug, Clone)]
pub struct Head<V, M> {
    /// User block of `head.w1` `[d × h]`.
    pub w1u: M,
    /// Item block of `head.w1` `[d × h]`.
    pub w1v: M,
    /// Product block of `head.w1` `[d × h]`.
    pub w1p: M,
    /// First layer's bias `[h]`.
    pub b1: V,
    /// Further Dense→ReLU layers (`head.l{j}`).
    pub layers: Vec<Dense<V, M>>,
    /// Output layer `[last × 1]` (stored as a `[last]` vector, so `w` is a 1-row view)
    /// and its `[1]` bias.
    pub out: Dense<V, V>,
}

/// All parameters, by structure.
#[derive(Debug, Clone)]
pub struct Params<V, M> {
    /// Item encoder.
    pub item: ItemEncoder<M>,
    /// User encoder.
    pub user: UserEncoder<V, M>,
    /// Scoring head.
    pub head: Head<V, M>,
}

/// Read-only views into a flat parameter (or gradient) vector.
pub type ParamsRef<'a> = Params<&'a [f32], ArrayView2<'a, f32>>;
/// Mutable views into a flat parameter (or gradient) vector.
pub type ParamsMut<'a> = Params<&'a mut [f32], ArrayViewMut2<'a, f32>>;

/// A tensor's weight-file name, without allocating: [`walk`] hands one to the visitor
/// at every tensor, and only [`param_table`] formats it (views ignore it, so
/// [`Params::view`] allocates no strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorName {
    /// A top-level tensor (`item.id`, `user.lnf.g`, `head.w1`, ...).
    Top(&'static str),
    /// Field `.1` of encoder block `.0`: `block{b}.{field}`.
    Block(usize, &'static str),
    /// Field `.1` of further head layer `.0`: `head.l{j}.{field}`.
    HeadLayer(usize, &'static str),
}

impl std::fmt::Display for TensorName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TensorName::Top(n) => f.write_str(n),
            TensorName::Block(b, n) => write!(f, "block{b}.{n}"),
            TensorName::HeadLayer(j, n) => write!(f, "head.l{j}.{n}"),
        }
    }
}

/// What [`walk`] asks for at each tensor, in order.
pub trait Visitor {
    /// A 1-D tensor's handle.
    type V;
    /// A 2-D tensor's handle.
    type M;
    /// The next tensor, 1-D `[len]`.
    fn vec(&mut self, name: TensorName, len: usize) -> Self::V;
    /// The next tensor, 2-D `[rows × cols]`.
    fn mat(&mut self, name: TensorName, rows: usize, cols: usize) -> Self::M;
    /// Splits a 2-D handle into its first `rows` rows and the rest.
    fn split_rows(m: Self::M, rows: usize) -> (Self::M, Self::M);
}

/// The model's structure, in the fixed parameter order: the one place that names the
/// tensors and gives their shapes.
pub fn walk<T: Visitor>(c: &ModelConfig, v: &mut T) -> Params<T::V, T::M> {
    use TensorName::Top;
    let d = c.dim;
    let item = ItemEncoder {
        id: v.mat(ID_TENSOR, c.n_items, d),
        cat: v.mat(CONTENT_TENSORS[0], c.n_categories, d),
        tok: v.mat(CONTENT_TENSORS[1], c.n_token_buckets, d),
        price: v.mat(CONTENT_TENSORS[2], 2, d),
    };
    let pos = v.mat(Top("user.pos"), c.max_len, d);
    let kind = v.mat(Top("user.kind"), EventKind::ALL.len(), d);
    let gap = v.mat(Top("user.gap"), c.n_recency_buckets, d);
    let blocks = (0..c.n_blocks).map(|b| walk_block(c, b, v)).collect();
    let lnf = LayerNorm {
        g: v.vec(Top("user.lnf.g"), d),
        b: v.vec(Top("user.lnf.b"), d),
    };
    let h = c.mlp_hidden.first().copied().unwrap_or(1);
    let w1 = v.mat(Top("head.w1"), 3 * d, h);
    let (w1u, rest) = T::split_rows(w1, d);
    let (w1v, w1p) = T::split_rows(rest, d);
    let b1 = v.vec(Top("head.b1"), h);
    let layers = (1..c.mlp_hidden.len())
        .map(|j| Dense {
            w: v.mat(
                TensorName::HeadLayer(j, "w"),
                c.mlp_hidden[j - 1],
                c.mlp_hidden[j],
            ),
            b: v.vec(TensorName::HeadLayer(j, "b"), c.mlp_hidden[j]),
        })
        .collect();
    let out = Dense {
        w: v.vec(Top("head.out.w"), c.mlp_hidden.last().copied().unwrap_or(1)),
        b: v.vec(Top("head.out.b"), 1),
    };
    Params {
        item,
        user: UserEncoder {
            pos,
            kind,
            gap,
            blocks,
            lnf,
        },
        head: Head {
            w1u,
            w1v,
            w1p,
            b1,
            layers,
            out,
        },
    }
}

fn walk_block<T: Visitor>(c: &ModelConfig, b: usize, v: &mut T) -> Block<T::V, T::M> {
    let (d, f) = (c.dim, c.ffn_dim);
    let p = |n: &'static str| TensorName::Block(b, n);
    let ln1 = LayerNorm {
        g: v.vec(p("ln1.g"), d),
        b: v.vec(p("ln1.b"), d),
    };
    let attn = Attention {
        wq: v.mat(p("attn.wq"), d, d),
        bq: v.vec(p("attn.bq"), d),
        wk: v.mat(p("attn.wk"), d, d),
        bk: v.vec(p("attn.bk"), d),
        wv: v.mat(p("attn.wv"), d, d),
        bv: v.vec(p("attn.bv"), d),
        wo: v.mat(p("attn.wo"), d, d),
        bo: v.vec(p("attn.bo"), d),
    };
    let ln2 = LayerNorm {
        g: v.vec(p("ln2.g"), d),
        b: v.vec(p("ln2.b"), d),
    };
    let ffn = FeedForward {
        w1: v.mat(p("ffn.w1"), d, f),
        b1: v.vec(p("ffn.b1"), f),
        w2: v.mat(p("ffn.w2"), f, d),
        b2: v.vec(p("ffn.b2"), d),
        up: c.swiglu.then(|| Dense {
            w: v.mat(p("ffn.w3"), d, f),
            b: v.vec(p("ffn.b3"), f),
        }),
    };
    let gates = c.gated.then(|| {
        [("gate_attn.w", "gate_attn.b"), ("gate_ffn.w", "gate_ffn.b")].map(|(w, bn)| Dense {
            w: v.mat(p(w), d, d),
            b: v.vec(p(bn), d),
        })
    });
    Block {
        ln1,
        attn,
        ln2,
        ffn,
        gates,
    }
}

/// Records the table.
struct Table(Vec<ParamSpec>, usize);

impl Visitor for Table {
    type V = ();
    type M = ();
    fn vec(&mut self, name: TensorName, len: usize) {
        self.0.push(ParamSpec {
            name: name.to_string(),
            shape: vec![len],
            offset: self.1,
        });
        self.1 += len;
    }
    fn mat(&mut self, name: TensorName, rows: usize, cols: usize) {
        self.0.push(ParamSpec {
            name: name.to_string(),
            shape: vec![rows, cols],
            offset: self.1,
        });
        self.1 += rows * cols;
    }
    fn split_rows(_: (), _: usize) -> ((), ()) {
        ((), ())
    }
}

/// `(name, shape, offset)` of every parameter tensor, in the fixed order.
pub fn param_table(c: &ModelConfig) -> Vec<ParamSpec> {
    let mut t = Table(Vec::new(), 0);
    walk(c, &mut t);
    t.0
}

/// Counts elements (no names, no table).
struct Count(usize);

impl Visitor for Count {
    type V = ();
    type M = ();
    fn vec(&mut self, _: TensorName, len: usize) {
        self.0 += len;
    }
    fn mat(&mut self, _: TensorName, rows: usize, cols: usize) {
        self.0 += rows * cols;
    }
    fn split_rows(_: (), _: usize) -> ((), ()) {
        ((), ())
    }
}

/// Total number of parameters (the flat vector's length).
pub fn param_count(c: &ModelConfig) -> usize {
    let mut n = Count(0);
    walk(c, &mut n);
    n.0
}

/// The one tensor a serving model may hold outside its flat vector: the catalogue-sized
/// ID table, first in the table (offset 0), kept only inside the item vectors once they
/// are built (see [`ParamsRef::view_without_ids`]).
pub const ID_TENSOR: TensorName = TensorName::Top("item.id");

/// The item content tables an item vector adds to its ID row, in that order: category,
/// title tokens, price (`[missing, value]` rows).
pub const CONTENT_TENSORS: [TensorName; 3] = [
    TensorName::Top("item.cat"),
    TensorName::Top("item.tok"),
    TensorName::Top("item.price"),
];

/// Splits a shared slice in table order; with `.1` set, [`ID_TENSOR`] is not in the
/// slice and gets a view with no rows.
struct Split<'a>(&'a [f32], bool);

impl<'a> Visitor for Split<'a> {
    type V = &'a [f32];
    type M = ArrayView2<'a, f32>;
    fn vec(&mut self, _: TensorName, len: usize) -> &'a [f32] {
        let (a, b) = self.0.split_at(len);
        self.0 = b;
        a
    }
    fn mat(&mut self, name: TensorName, rows: usize, cols: usize) -> ArrayView2<'a, f32> {
        let rows = if self.1 && name == ID_TENSOR { 0 } else { rows };
        let (a, b) = self.0.split_at(rows * cols);
        self.0 = b;
        // Cannot fail: `a` has exactly rows·cols elements.
        ArrayView2::from_shape((rows, cols), a).unwrap_or_else(|_| unreachable!())
    }
    fn split_rows(m: Self::M, rows: usize) -> (Self::M, Self::M) {
        m.split_at(Axis(0), rows)
    }
}

/// Splits a mutable slice in table order (disjoint views); `.1` as in [`Split`].
struct SplitMut<'a>(&'a mut [f32], bool);

impl<'a> Visitor for SplitMut<'a> {
    type V = &'a mut [f32];
    type M = ArrayViewMut2<'a, f32>;
    fn vec(&mut self, _: TensorName, len: usize) -> &'a mut [f32] {
        let (a, b) = std::mem::take(&mut self.0).split_at_mut(len);
        self.0 = b;
        a
    }
    fn mat(&mut self, name: TensorName, rows: usize, cols: usize) -> ArrayViewMut2<'a, f32> {
        let rows = if self.1 && name == ID_TENSOR { 0 } else { rows };
        let (a, b) = std::mem::take(&mut self.0).split_at_mut(rows * cols);
        self.0 = b;
        // Cannot fail: `a` has exactly rows·cols elements.
        ArrayViewMut2::from_shape((rows, cols), a).unwrap_or_else(|_| unreachable!())
    }
    fn split_rows(m: Self::M, rows: usize) -> (Self::M, Self::M) {
        m.split_at(Axis(0), rows)
    }
}

impl<'a> ParamsRef<'a> {
    /// Typed views into `flat` (of length [`param_count`]`(c)`; shorter panics).
    pub fn view(c: &ModelConfig, flat: &'a [f32]) -> ParamsRef<'a> {
        walk(c, &mut Split(flat, false))
    }

    /// Typed views into `flat` holding every tensor but [`ID_TENSOR`] (of length
    /// [`param_count`]`(c) − n_items·dim`; shorter panics): `item.id` is a view with no
    /// rows, every other tensor the same values as [`ParamsRef::view`] of the full vector.
    pub fn view_without_ids(c: &ModelConfig, flat: &'a [f32]) -> ParamsRef<'a> {
        walk(c, &mut Split(flat, true))
    }
}

impl<'a> ParamsMut<'a> {
    /// Mutable typed views into `flat` (of length [`param_count`]`(c)`; shorter panics).
    pub fn view_mut(c: &ModelConfig, flat: &'a mut [f32]) -> ParamsMut<'a> {
        walk(c, &mut SplitMut(flat, false))
    }

    /// Mutable views into `flat` without [`ID_TENSOR`] (see
    /// [`ParamsRef::view_without_ids`]).
    pub fn view_mut_without_ids(c: &ModelConfig, flat: &'a mut [f32]) -> ParamsMut<'a> {
        walk(c, &mut SplitMut(flat, true))
    }
}

/// The row-major elements of a view (views from [`walk`] are always contiguous).
pub fn flat<'a>(m: &'a ArrayView2<'_, f32>) -> &'a [f32] {
    m.as_slice()
        .unwrap_or_else(|| unreachable!("parameter views are row-major"))
}

/// The row-major elements of a mutable view (views from [`walk`] are always contiguous).
pub fn flat_mut<'a>(m: &'a mut ArrayViewMut2<'_, f32>) -> &'a mut [f32] {
    m.as_slice_mut()
        .unwrap_or_else(|| unreachable!("parameter views are row-major"))
}

/// Row `i` of a view.
pub fn row<'a>(m: &'a ArrayView2<'_, f32>, i: usize) -> &'a [f32] {
    let c = m.ncols();
    &flat(m)[i * c..(i + 1) * c]
}

/// Row `i` of a mutable view.
pub fn row_mut<'a>(m: &'a mut ArrayViewMut2<'_, f32>, i: usize) -> &'a mut [f32] {
    let c = m.ncols();
    &mut flat_mut(m)[i * c..(i + 1) * c]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_names_format_as_in_the_weight_file() {
        assert_eq!(TensorName::Top("item.id").to_string(), "item.id");
        assert_eq!(
            TensorName::Block(3, "attn.wq").to_string(),
            "block3.attn.wq"
        );
        assert_eq!(TensorName::HeadLayer(2, "b").to_string(), "head.l2.b");
    }

    /// The name-free count and the views agree with the named table.
    #[test]
    fn count_and_views_follow_the_table() {
        let c = ModelConfig {
            dim: 4,
            n_blocks: 2,
            ffn_dim: 6,
            mlp_hidden: vec![3, 2],
            ..ModelConfig::default_for(5, 3, 4)
        };
        let table = param_table(&c);
        let last = table.last().expect("tensors");
        assert_eq!(param_count(&c), last.offset + last.len());
        let flat_params: Vec<f32> = (0..param_count(&c)).map(|i| i as f32).collect();
        let p = ParamsRef::view(&c, &flat_params);
        let at = |name: &str| table.iter().find(|s| s.name == name).expect(name).offset as f32;
        assert_eq!(flat(&p.item.tok)[0], at("item.tok"));
        assert_eq!(p.user.blocks[1].ffn.b2[0], at("block1.ffn.b2"));
        assert_eq!(flat(&p.head.layers[0].w)[0], at("head.l1.w"));
        assert_eq!(p.head.out.b[0], at("head.out.b"));
    }
}
