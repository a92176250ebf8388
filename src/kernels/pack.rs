//! Operand packing shared by the blocked CPU kernels ([`super::native`] and, on wasm32,
//! [`super::simd128`]).
//!
//! Once per request, the user-side operands are copied into the layout the GEMM
//! micro-kernels want, so that their inner loops never handle a column remainder:
//!
//! - `M[:, 0..h]` (row-major `[d × (h + 1)]` in the query) becomes `[d × h']` with
//!   `h' = ⌈h / COL_MULTIPLE⌉ · COL_MULTIPLE` and zero columns `h..h'`;
//! - column `h` of `M` (the user vector `u`, the dot-product term) becomes its own
//!   vector of length `d`;
//! - each further layer's `W` (`[in × out]`) becomes `[in × out']`, zero-padded the
//!   same way;
//! - a run of `max(d, h', out'…)` zeros stands in for the missing rows of a register
//!   block past the last item.
//!
//! Zero columns add `0 · x = 0` terms to columns nobody reads back, so padding changes
//! no score. Items are processed in cache blocks of [`BLOCK`] rows.
//!
//! The rows of a block are the next [`BLOCK`] items of a range of the catalogue or of a
//! list of items ([`Rows`]); a list's vectors are copied into a `BLOCK × d` scratch
//! first. Every row of a block is computed on its own (a row's arithmetic never depends
//! on the other rows, which may be padding), so an item gets bit for bit the same score
//! whichever rows it is scored among.
use super::quant::{layers_i8, round_up as round_up_to, Int8Items, QueryI8};
use super::{HeadPlan, ItemVectors, UserQuery};

/// Padded widths are multiples of this (the native register block's width; the SIMD128
/// block of 8 columns divides it).
pub(super) const COL_MULTIPLE: usize = 16;
/// Items per cache block: their vectors and hidden rows stay in L1/L2 together.
pub(super) const BLOCK: usize = 64;

fn round_up(x: usize, m: usize) -> usize {
    x.div_ceil(m) * m
}

/// A `[k × cols]` matrix copied into `[k × padded]` with zero columns on the right, so
/// the micro-kernel never needs a column remainder.
pub(super) struct Padded {
    /// Row-major `[k × padded]`.
    pub(super) data: Vec<f32>,
    /// Columns with data (`cols ≤ padded`).
    pub(super) cols: usize,
    /// Row stride: `cols` rounded up to a multiple of [`COL_MULTIPLE`] (at least one).
    pub(super) padded: usize,
}

impl Padded {
    /// Copies the first `cols` columns of the `k` rows of `src` (row stride
    /// `src_stride`).
    fn new(src: &[f32], k: usize, src_stride: usize, cols: usize) -> Padded {
        let padded = round_up(cols.max(1), COL_MULTIPLE);
        let mut data = vec![0.0f32; k * padded];
        for kk in 0..k {
            data[kk * padded..kk * padded + cols]
                .copy_from_slice(&src[kk * src_stride..kk * src_stride + cols]);
        }
        Padded { data, cols, padded }
    }
}

/// The items a blocked kernel scores: `out[r]` is the score of item `first + r`
/// ([`Rows::Range`]) or of item `items[r]` ([`Rows::Of`]).
#[derive(Debug, Clone, Copy)]
pub(super) enum Rows<'a> {
    /// A contiguous range of the catalogue starting at this item.
    Range(usize),
    /// A list of items (indices already checked against `n_items`; any order,
    /// repeats allowed).
    Of(&'a [u32]),
}

impl Rows<'_> {
    /// The `[len × d]` item vectors of output rows `start .. start + len`: a slice of
    /// the plan for a range, else copied into `scratch` (at most `len × d` floats).
    pub(super) fn vectors<'s>(
        self,
        plan: &'s HeadPlan,
        start: usize,
        len: usize,
        scratch: &'s mut Vec<f32>,
    ) -> &'s [f32] {
        let d = plan.dim;
        let ItemVectors::F32(vectors) = &plan.item_vectors else {
            panic!("Rows::vectors on an int8 plan");
        };
        match self {
            Rows::Range(first) => &vectors[(first + start) * d..(first + start + len) * d],
            Rows::Of(items) => {
                scratch.clear();
                for &i in &items[start..start + len] {
                    let i = i as usize;
                    scratch.extend_from_slice(&vectors[i * d..(i + 1) * d]);
                }
                scratch
            }
        }
    }

    /// The int8 rows (`[len × stride]`), scales and row sums of output rows
    /// `start .. start + len`: slices of `items` for a range, else gathered into
    /// `scratch`.
    pub(super) fn int8<'s>(
        self,
        items: &'s Int8Items,
        start: usize,
        len: usize,
        scratch: &'s mut I8Rows,
    ) -> (&'s [i8], &'s [f32], &'s [i32]) {
        let st = items.stride;
        match self {
            Rows::Range(first) => {
                let (a, b) = (first + start, first + start + len);
                (
                    &items.q[a * st..b * st],
                    &items.scale[a..b],
                    &items.row_sum[a..b],
                )
            }
            Rows::Of(list) => {
                scratch.q.clear();
                scratch.scale.clear();
                scratch.sum.clear();
                for &i in &list[start..start + len] {
                    let i = i as usize;
                    scratch.q.extend_from_slice(items.row(i));
                    scratch.scale.push(items.scale[i]);
                    scratch.sum.push(items.row_sum[i]);
                }
                (&scratch.q, &scratch.scale, &scratch.sum)
            }
        }
    }
}

/// Gather space for [`Rows::int8`] (one block of a list of items).
#[derive(Default)]
pub(super) struct I8Rows {
    q: Vec<i8>,
    scale: Vec<f32>,
    sum: Vec<i32>,
}

/// The int8 query's columns padded to a multiple of `multiple` (`cols ≤ padded`).
pub(super) fn padded_cols(cols: usize, multiple: usize) -> usize {
    round_up_to(cols.max(1), multiple)
}

/// Per-request operands, packed once and shared by all blocks.
pub(super) struct Operands<'a> {
    /// The item side.
    pub(super) plan: &'a HeadPlan,
    /// The first layer's user part plus bias, `[h]`.
    pub(super) a: &'a [f32],
    /// `M[:, 0..h]`, padded.
    pub(super) m: Padded,
    /// Column `h` of `M` (`u`).
    pub(super) u: Vec<f32>,
    /// Further layers, padded, with their biases.
    pub(super) layers: Vec<(Padded, &'a [f32])>,
    /// Widest padded width (scratch row stride).
    pub(super) max_padded: usize,
    /// `max(d, widths)` zeros, standing in for missing rows of a register block.
    pub(super) zeros: Vec<f32>,
}

impl<'a> Operands<'a> {
    /// Packs a validated plan and query ([`HeadPlan::validate`],
    /// [`HeadPlan::validate_query`]).
    pub(super) fn new(plan: &'a HeadPlan, query: &'a UserQuery) -> Operands<'a> {
        let (d, h) = (plan.dim, plan.hidden);
        let m = Padded::new(&query.m, d, h + 1, h);
        let u = (0..d).map(|k| query.m[k * (h + 1) + h]).collect();
        let mut width = h;
        let mut max_padded = m.padded;
        let mut max_k = d.max(m.padded);
        let layers = plan
            .layers
            .iter()
            .map(|(w, b)| {
                let p = Padded::new(w, width, b.len(), b.len());
                max_padded = max_padded.max(p.padded);
                max_k = max_k.max(p.padded);
                width = b.len();
                (p, b.as_slice())
            })
            .collect();
        Operands {
            plan,
            a: &query.a,
            m,
            u,
            layers,
            max_padded,
            zeros: vec![0.0; max_k],
        }
    }
}

/// One int8 operand packed by a kernel file for its integer GEMM: the quantised query of
/// the first layer, and each further layer's quantised weights.
pub(super) trait PackI8: Sized {
    /// Packs the first layer's query (`h` hidden columns and the dot-product column).
    fn query(q: &QueryI8) -> Self;
    /// Packs a further layer's weights ([`QueryI8::layer`]).
    fn layer(w: &QueryI8) -> Self;
}

/// An int8 plan's request: the items, the quantised query with the kernel's packing of
/// it, and each further layer's quantised weights with theirs (one per `plan.layers`
/// entry, in order).
pub(super) struct Int8Request<'a, P> {
    pub(super) items: &'a Int8Items,
    pub(super) query: QueryI8,
    pub(super) packed: P,
    pub(super) layers: Vec<(QueryI8, P)>,
}

/// One request's packed operands: the f32 ones, and for an int8 plan its
/// [`Int8Request`] (`P`: each kernel file packs for its integer GEMM).
pub(super) struct Request<'a, P> {
    pub(super) ops: Operands<'a>,
    pub(super) int8: Option<Int8Request<'a, P>>,
}

impl<'a, P: PackI8> Request<'a, P> {
    /// Packs a validated plan and query.
    pub(super) fn new(plan: &'a HeadPlan, query: &'a UserQuery) -> Request<'a, P> {
        let int8 = match &plan.item_vectors {
            ItemVectors::F32(_) => None,
            ItemVectors::Int8(items) => {
                let qi = QueryI8::new(&query.m, plan.dim, plan.hidden + 1, items.stride);
                let layers = layers_i8(plan)
                    .into_iter()
                    .map(|l| {
                        let packed = P::layer(&l);
                        (l, packed)
                    })
                    .collect();
                Some(Int8Request {
                    items,
                    packed: P::query(&qi),
                    query: qi,
                    layers,
                })
            }
        };
        Request {
            ops: Operands::new(plan, query),
            int8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_keeps_the_values_and_zero_fills_the_rest() {
        // 2 × 3 matrix with row stride 4 (a fourth column to skip).
        let src = [1.0, 2.0, 3.0, 9.0, 4.0, 5.0, 6.0, 9.0];
        let p = Padded::new(&src, 2, 4, 3);
        assert_eq!((p.cols, p.padded), (3, COL_MULTIPLE));
        assert_eq!(&p.data[..3], &[1.0, 2.0, 3.0]);
        assert_eq!(&p.data[COL_MULTIPLE..COL_MULTIPLE + 3], &[4.0, 5.0, 6.0]);
        let zeros = p.data.iter().filter(|&&x| x == 0.0).count();
        assert_eq!(zeros, 2 * COL_MULTIPLE - 6);
        assert_eq!(Padded::new(&[], 0, 0, 0).padded, COL_MULTIPLE);
    }

    #[test]
    fn operands_split_m_into_the_padded_block_and_u() {
        // d = 2, h = 2: M = [[1, 2, 7], [3, 4, 8]], one further layer 2 → 17.
        let plan = HeadPlan {
            n_items: 0,
            dim: 2,
            hidden: 2,
            item_vectors: ItemVectors::F32(vec![]),
            layers: vec![(vec![0.5; 34], vec![0.0; 17])],
            w_out: vec![0.0; 17],
            b_out: 0.0,
            gpu_f16: false,
        };
        let query = UserQuery {
            m: vec![1.0, 2.0, 7.0, 3.0, 4.0, 8.0],
            a: vec![0.0; 2],
        };
        let ops = Operands::new(&plan, &query);
        assert_eq!(ops.u, vec![7.0, 8.0]);
        assert_eq!(&ops.m.data[..2], &[1.0, 2.0]);
        assert_eq!(&ops.m.data[COL_MULTIPLE..COL_MULTIPLE + 2], &[3.0, 4.0]);
        assert_eq!(ops.layers[0].0.padded, 2 * COL_MULTIPLE);
        assert_eq!(ops.max_padded, 2 * COL_MULTIPLE);
        assert_eq!(ops.zeros.len(), 2 * COL_MULTIPLE);
    }
}
