//! int8 operands of the scoring head: the catalogue's item vectors kept quantised in
//! memory ([`Int8Items`], one f32 scale per row), the per-request query quantised for
//! the integer first layer ([`QueryI8`], one f32 scale per column), and for each
//! further layer its weights ([`QueryI8::layer`], per column) and its input rows
//! ([`quantize_activations`], per row).
//!
//! # What is integer and what stays f32
//! The first head layer and the dot-product term, `V · M` with `V` `[n × d]` and `M`
//! `[d × (h + 1)]`, are the only catalogue-sized operand's products: they run on int8
//! operands with exact i32 accumulation,
//! `(V · M)[i][j] ≈ s_i · t_j · Σ_k q_ik · r_kj` (`q` the item's int8 row, `s_i` its
//! scale; `r` the query's int8 column, `t_j` its scale), then in f32
//! `x = acc as f32 * (s_i * t_j)`, `relu(x + a_j)` for the hidden columns
//! (`dot_i = x` for column `h`). Each further Dense→ReLU layer is integer too: its
//! input is a catalogue-sized block of activations made per request (`[rows × h]`,
//! per block of 64 items, never stored), quantised per row to `[0, 127]`
//! (`p_k ≈ H_k / s_row`, `s_row = max_k H_k / 127`; ReLU outputs are never negative),
//! its weights `W` per column to `[-127, 127]` once per request (`W_kj ≈ u_j · w_kj`),
//! and `relu(Σ_k p_k · w_kj as f32 * (s_row * u_j) + b_j)`. What stays f32: every
//! rescale, bias and ReLU, the output layer (`H · w_out + b_out + dot_i`, one dot
//! product per item: quantising it would save nothing), the scales, and every per-request
//! operand before it is quantised. Why the further layers too: after the first layer
//! they were half of an int8 request's time at 1,000,000 items (f32 `h × h₂`
//! multiply-adds per item), and 7-bit activations move full-ranking NDCG@10 on the
//! default model by 0.0001 (README, "At run time").
//!
//! # Ranges
//! Item rows use the symmetric range `[-127, 127]` (`s_i = max|v_i| / 127`); query
//! columns use `[-63, 63]` (`t_j = max_k |M_kj| / 63`), because the relaxed-SIMD build's
//! `i32x4.relaxed_dot_i8x16_i7x16_add_s` needs its second operand below 128 once it is
//! shifted to be non-negative (`r + 64 ∈ [1, 127]`, see [`QUERY_OFFSET`]). Every kernel
//! uses this one quantisation, so every kernel's i32 sums are the same integers
//! (tests/kernels.rs checks them bit for bit). Products fit i16 pairs without saturation
//! (`2 · 127 · 127 < 2¹⁵`) and `d ≤ 2¹⁶` rows of them fit i32. In a further layer the
//! activations (`[0, 127]`) are the relaxed instruction's 7-bit operand as they are,
//! and the weights its signed one: no shift, no correction.
use std::borrow::Cow;

use super::{HeadPlan, ShapeError};

/// Largest magnitude of a quantised item value.
pub const ITEM_MAX: f32 = 127.0;
/// Largest magnitude of a quantised query value (7 bits: see the module docs).
pub const QUERY_MAX: f32 = 63.0;
/// The relaxed-SIMD kernel's shift of the query values into `[1, 127]`; its sums are
/// corrected by `QUERY_OFFSET · Σ_k q_ik` ([`Int8Items::row_sum`]).
pub const QUERY_OFFSET: i32 = 64;
/// Item rows are stored with a stride that is a multiple of this (zero padded), so the
/// SIMD kernels read whole groups of 4 bytes.
pub const K_MULTIPLE: usize = 4;

/// `x` rounded up to a multiple of `m`.
pub(super) fn round_up(x: usize, m: usize) -> usize {
    x.div_ceil(m) * m
}

/// `x / scale` rounded to the nearest integer and clamped to `±max` (0 when `scale` is 0;
/// NaN maps to 0).
fn quantize(x: f32, inv_scale: f32, max: f32) -> i8 {
    // Through i32: the clamped value is an integer in [-max, max] or NaN (0 either way),
    // and the compiler vectorises a float-to-i32 conversion, not one to i8.
    round_half_away(x * inv_scale).clamp(-max, max) as i32 as i8
}

/// `y.round()` (halves away from zero) bit for bit, without the C library's `roundf`:
/// wasm has no such instruction, and the calls took about 0.1 s of a 1,000,000-item
/// load. `y - trunc(y)` is exact (a float's fraction is a float), so comparing it with
/// one half decides as `round` does; `-0.0`, NaN and ±inf come out as from `round`.
#[inline(always)]
fn round_half_away(y: f32) -> f32 {
    let t = y.trunc();
    if (y - t).abs() >= 0.5 {
        t + 1.0f32.copysign(y)
    } else {
        t
    }
}

/// Symmetric per-row int8 item vectors (see the module docs).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Int8Items {
    /// Item vector width `d`.
    pub dim: usize,
    /// Row stride: `d` rounded up to a multiple of [`K_MULTIPLE`]; values past `d` are 0.
    pub stride: usize,
    /// Row-major `[n × stride]` int8 values in `[-127, 127]`.
    pub q: Vec<i8>,
    /// One scale per row: `v_ik ≈ scale_i · q_ik`.
    pub scale: Vec<f32>,
    /// `Σ_k q_ik` per row (the relaxed kernel's offset correction).
    pub row_sum: Vec<i32>,
}

/// Quantises `row` into `out` (`out.len() ≥ row.len()`, the rest zeroed): returns the
/// scale (`max|row| / 127`; 0 for a zero row or one with an infinite element, stored as
/// zeros) and the sum of the stored values. A NaN element is stored as 0.
fn quantize_row(row: &[f32], out: &mut [i8]) -> (f32, i32) {
    let max = abs_max(row);
    let (scale, inv) = if max > 0.0 && max.is_finite() {
        (max / ITEM_MAX, ITEM_MAX / max)
    } else {
        (0.0, 0.0)
    };
    let (head, pad) = out.split_at_mut(row.len());
    for (o, &x) in head.iter_mut().zip(row) {
        *o = quantize(x, inv, ITEM_MAX);
    }
    pad.fill(0);
    (scale, head.iter().map(|&x| x as i32).sum())
}

/// `max(0, |x|)` over `row`, NaN skipped (`f32::max` returns the other operand): eight
/// independent maxima (which the compiler keeps in vector lanes), then the tail and the
/// eight. The maximum of numbers does not depend on the order, and no `|x|` is `-0.0`,
/// so this is the plain left-to-right fold's value.
fn abs_max(row: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a = a.max(x.abs());
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(0.0f32, |m, x| m.max(x.abs()));
    acc.iter().fold(tail, |m, &a| m.max(a))
}

/// The table being rebuilt by [`Int8Items::rebuild_in_place`].
struct Rows<'a> {
    q: &'a mut [i8],
    scale: &'a mut [f32],
    row_sum: &'a mut [i32],
    stride: usize,
}

impl Rows<'_> {
    /// Rebuilds rows `range` (last to first; `row.len()` is the dimension): each read
    /// from its int8 values and scale, passed to `edit`, quantised back into its
    /// `stride`-long slot.
    #[inline(never)]
    fn rebuild(
        self,
        range: std::ops::Range<usize>,
        row: &mut [f32],
        edit: &mut impl FnMut(usize, &mut [f32]),
    ) {
        let (dim, stride) = (row.len(), self.stride);
        for i in range.rev() {
            let s = self.scale[i];
            for (r, &x) in row.iter_mut().zip(&self.q[i * dim..(i + 1) * dim]) {
                *r = f32::from(x) * s;
            }
            edit(i, row);
            let (new_scale, sum) = quantize_row(row, &mut self.q[i * stride..(i + 1) * stride]);
            self.scale[i] = new_scale;
            self.row_sum[i] = sum;
        }
    }
}

impl Rows<'_> {
    /// [`Rows::rebuild`] with `edit` doing nothing, bit for bit, without the float round
    /// trip where it cannot change a row: a row whose largest `|q|` is 127 (as
    /// [`quantize_row`] stores every row but a zero one) and whose scale `s` is a
    /// positive normal float with `127 · s` finite comes back with the same values and
    /// the scale `(127 · s) / 127` the rebuild computes. Why the values do not move: the
    /// rebuild's `x_k = q_k · s`, its maximum `127 · s`, its `inv = 127 / max` and
    /// `x_k · inv` each round once (no subnormals on the way), so `x_k · inv` is within
    /// 4 ulps of `q_k` — under 127 · 2⁻²² < ½ away — and rounds back to `q_k`. A row of
    /// zeros comes back as zeros with scale 0. Any other row is rebuilt as
    /// [`Rows::rebuild`] does.
    #[inline(never)]
    fn requantize(self, range: std::ops::Range<usize>, row: &mut [f32]) {
        let (dim, stride) = (row.len(), self.stride);
        for i in range.rev() {
            let s = self.scale[i];
            let src = i * dim..(i + 1) * dim;
            let m = self.q[src.clone()].iter().map(|&x| x.unsigned_abs()).max();
            let max = ITEM_MAX * s;
            let (scale, sum) = match m {
                Some(127) if s > 0.0 && s.is_normal() && max.is_finite() => {
                    self.q.copy_within(src, i * stride);
                    let slot = &mut self.q[i * stride..(i + 1) * stride];
                    slot[dim..].fill(0);
                    (max / ITEM_MAX, slot.iter().map(|&x| x as i32).sum())
                }
                Some(0) | None => {
                    self.q[i * stride..(i + 1) * stride].fill(0);
                    (0.0, 0)
                }
                _ => {
                    for (r, &x) in row.iter_mut().zip(&self.q[src]) {
                        *r = f32::from(x) * s;
                    }
                    quantize_row(row, &mut self.q[i * stride..(i + 1) * stride])
                }
            };
            self.scale[i] = scale;
            self.row_sum[i] = sum;
        }
    }
}

impl Int8Items {
    /// An empty matrix for rows of width `dim`, with room for `n` rows.
    pub fn with_capacity(dim: usize, n: usize) -> Int8Items {
        let stride = round_up(dim.max(1), K_MULTIPLE);
        Int8Items {
            dim,
            stride,
            q: Vec::with_capacity(n.saturating_mul(stride)),
            scale: Vec::with_capacity(n),
            row_sum: Vec::with_capacity(n),
        }
    }

    /// Quantises every `d`-long row of `v` (`v.len()` a multiple of `d`).
    pub fn from_f32(v: &[f32], dim: usize) -> Int8Items {
        let n = v.len().checked_div(dim).unwrap_or(0);
        let mut out = Int8Items::with_capacity(dim, n);
        for row in v.chunks_exact(dim.max(1)).take(n) {
            out.push_row(row);
        }
        out
    }

    /// Appends one row (`row.len() == dim`): `scale = max|row| / 127`; a NaN element is
    /// stored as 0, and a zero row or one with an infinite element as zeros with scale 0.
    pub fn push_row(&mut self, row: &[f32]) {
        let start = self.q.len();
        self.q.resize(start + self.stride, 0);
        let (scale, sum) = quantize_row(row, &mut self.q[start..]);
        self.scale.push(scale);
        self.row_sum.push(sum);
    }

    /// The matrix whose row `i` is `edit(i, r)` applied to `r`, row `i` of the int8
    /// matrix `(q, scale)` (`[n × dim]`, unpadded) dequantised — rebuilt in `q`'s own
    /// allocation (grown to the padded stride), so an `n × dim` table never exists
    /// twice. Rows are visited last to first (a padded row `i` only overwrites input
    /// rows `≥ i`); every row is quantised exactly as [`Int8Items::push_row`] does, so
    /// the result equals pushing the edited rows one by one. `None` when the lengths do
    /// not describe `n = scale.len()` rows of width `dim`.
    pub fn rebuild_in_place(
        q: Vec<i8>,
        scale: Vec<f32>,
        dim: usize,
        mut edit: impl FnMut(usize, &mut [f32]),
    ) -> Option<Int8Items> {
        Self::rebuild_rows(q, scale, dim, |rows, range, row| {
            rows.rebuild(range, row, &mut edit)
        })
    }

    /// The in-place layout of [`Int8Items::rebuild_in_place`]: `q` grown to the padded
    /// stride, and `pass` run over blocks of rows, last block first.
    fn rebuild_rows(
        mut q: Vec<i8>,
        mut scale: Vec<f32>,
        dim: usize,
        mut pass: impl FnMut(Rows<'_>, std::ops::Range<usize>, &mut [f32]),
    ) -> Option<Int8Items> {
        let n = scale.len();
        if dim == 0 || q.len() != n.checked_mul(dim)? {
            return None;
        }
        let stride = round_up(dim, K_MULTIPLE);
        q.resize(n.checked_mul(stride)?, 0);
        let mut row_sum = vec![0i32; n];
        let mut row = vec![0.0f32; dim];
        // Last to first, 4,096 rows per call of a function of its own (not inlined): V8
        // runs a wasm call in baseline code until it returns, so one call over a million
        // rows would rebuild them all in baseline code while loading.
        let mut end = n;
        while end > 0 {
            let start = end.saturating_sub(4096);
            let rows = Rows {
                q: &mut q,
                scale: &mut scale,
                row_sum: &mut row_sum,
                stride,
            };
            pass(rows, start..end, &mut row);
            end = start;
        }
        Some(Int8Items {
            dim,
            stride,
            q,
            scale,
            row_sum,
        })
    }

    /// [`Int8Items::rebuild_in_place`] with an `edit` that changes nothing, bit for bit,
    /// in a fraction of its time: every row that `quantize_row` stored keeps its values
    /// and only its scale is recomputed (`Rows::requantize`; at 1,000,000 items of 64
    /// values the rebuild with the content features took about 0.2 s of the browser's
    /// load). The loader's path for item rows that already hold the whole item vector
    /// (an int8 file whose content tables are zero: `Model::fold_item_content`).
    pub fn requantized(q: Vec<i8>, scale: Vec<f32>, dim: usize) -> Option<Int8Items> {
        Self::rebuild_rows(q, scale, dim, |rows, range, row| {
            rows.requantize(range, row)
        })
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.scale.len()
    }

    /// Row `i`'s int8 values (`stride` long, zero padded).
    pub fn row(&self, i: usize) -> &[i8] {
        &self.q[i * self.stride..(i + 1) * self.stride]
    }

    /// Row `i` dequantised into `out` (`out.len() == dim`): `scale_i · q_ik`.
    pub fn row_into(&self, i: usize, out: &mut [f32]) {
        let s = self.scale[i];
        for (o, &q) in out.iter_mut().zip(&self.q[i * self.stride..]) {
            *o = s * q as f32;
        }
    }

    /// Checks the lengths against `n` rows of width `dim`.
    pub fn validate(&self, n: usize, dim: usize) -> Result<(), ShapeError> {
        let bad = |name: &str, expected: usize, got: usize| {
            Err(ShapeError::Length {
                name: name.to_string(),
                expected,
                got,
            })
        };
        if self.dim != dim {
            return bad("item_vectors.int8.dim", dim, self.dim);
        }
        let stride = round_up(dim.max(1), K_MULTIPLE);
        if self.stride != stride {
            return bad("item_vectors.int8.stride", stride, self.stride);
        }
        let Some(len) = n.checked_mul(stride) else {
            return Err(ShapeError::Overflow("item_vectors.int8".into()));
        };
        if self.q.len() != len {
            return bad("item_vectors.int8.q", len, self.q.len());
        }
        if self.scale.len() != n {
            return bad("item_vectors.int8.scale", n, self.scale.len());
        }
        if self.row_sum.len() != n {
            return bad("item_vectors.int8.row_sum", n, self.row_sum.len());
        }
        Ok(())
    }
}

/// The catalogue's item vectors as the scoring head holds them.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemVectors {
    /// Row-major `[n × d]` f32 (f32 and f16 weight files).
    F32(Vec<f32>),
    /// int8 with a per-row scale (int8 weight files): 4× less memory, integer first
    /// layer.
    Int8(Int8Items),
}

impl Default for ItemVectors {
    fn default() -> Self {
        ItemVectors::F32(Vec::new())
    }
}

impl From<Vec<f32>> for ItemVectors {
    fn from(v: Vec<f32>) -> Self {
        ItemVectors::F32(v)
    }
}

impl From<Int8Items> for ItemVectors {
    fn from(q: Int8Items) -> Self {
        ItemVectors::Int8(q)
    }
}

impl ItemVectors {
    /// The f32 matrix when the vectors are stored as f32.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match self {
            ItemVectors::F32(v) => Some(v),
            ItemVectors::Int8(_) => None,
        }
    }

    /// Whether the vectors are int8.
    pub fn is_int8(&self) -> bool {
        matches!(self, ItemVectors::Int8(_))
    }

    /// Row `i` (`d` values): borrowed for f32, dequantised for int8. `None` when `i` is
    /// out of range.
    pub fn row(&self, i: usize, d: usize) -> Option<Cow<'_, [f32]>> {
        match self {
            ItemVectors::F32(v) => v.get(i * d..(i + 1) * d).map(Cow::Borrowed),
            ItemVectors::Int8(q) => (i < q.n_rows()).then(|| {
                let mut row = vec![0.0; d];
                q.row_into(i, &mut row);
                Cow::Owned(row)
            }),
        }
    }

    /// `Σ_k x_ak · x_bk` over rows `a` and `b` (`d` values each; int8 rows dequantised
    /// value by value as [`ItemVectors::row`] gives them), in increasing `k` from the same
    /// start as `Iterator::sum`: the same bits as the dot of the two rows `row` returns,
    /// without copying them. `None` when either is out of range.
    pub fn dot(&self, a: usize, b: usize, d: usize) -> Option<f32> {
        match self {
            ItemVectors::F32(v) => {
                let (x, y) = (v.get(a * d..(a + 1) * d)?, v.get(b * d..(b + 1) * d)?);
                Some(x.iter().zip(y).map(|(p, q)| p * q).sum())
            }
            ItemVectors::Int8(q) => {
                if a >= q.n_rows() || b >= q.n_rows() {
                    return None;
                }
                let (sa, sb) = (q.scale[a], q.scale[b]);
                let (x, y) = (q.row(a), q.row(b));
                Some(
                    x.iter()
                        .zip(y)
                        .take(d)
                        .map(|(&p, &r)| (sa * p as f32) * (sb * r as f32))
                        .sum(),
                )
            }
        }
    }

    /// Every row dequantised (a catalogue-sized copy for int8: for uploads and tools,
    /// not the request path).
    pub fn to_f32(&self) -> Cow<'_, [f32]> {
        match self {
            ItemVectors::F32(v) => Cow::Borrowed(v),
            ItemVectors::Int8(q) => {
                let mut out = vec![0.0; q.n_rows() * q.dim];
                for (i, row) in out.chunks_exact_mut(q.dim.max(1)).enumerate() {
                    q.row_into(i, row);
                }
                Cow::Owned(out)
            }
        }
    }

    /// Bytes the matrix holds (values, scales, row sums).
    pub fn heap_bytes(&self) -> usize {
        match self {
            ItemVectors::F32(v) => v.len() * 4,
            ItemVectors::Int8(q) => q.q.len() + q.scale.len() * 4 + q.row_sum.len() * 4,
        }
    }
}

/// Anything item rows can be copied out of: an f32 matrix or [`ItemVectors`]. The user
/// encoder reads the rows of a history's items through it.
pub trait ItemRows {
    /// Copies row `i` (`out.len() == d`, the row width) into `out`.
    ///
    /// # Panics
    /// If `i` is not a row (callers index items of the catalogue).
    fn copy_row(&self, i: usize, out: &mut [f32]);
}

impl ItemRows for [f32] {
    fn copy_row(&self, i: usize, out: &mut [f32]) {
        let d = out.len();
        out.copy_from_slice(&self[i * d..(i + 1) * d]);
    }
}

impl ItemRows for Vec<f32> {
    fn copy_row(&self, i: usize, out: &mut [f32]) {
        self.as_slice().copy_row(i, out)
    }
}

impl ItemRows for ItemVectors {
    fn copy_row(&self, i: usize, out: &mut [f32]) {
        match self {
            ItemVectors::F32(v) => v.copy_row(i, out),
            ItemVectors::Int8(q) => {
                assert!(i < q.n_rows(), "item row {i} out of range");
                q.row_into(i, out)
            }
        }
    }
}

/// The per-request query `M` (`[d × cols]`, `cols = h + 1`) quantised per column to
/// `[-63, 63]` (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryI8 {
    /// Rows (`stride`, the items' row stride; rows past `d` are 0).
    pub stride: usize,
    /// Columns (`h + 1`: the hidden units and the dot-product column).
    pub cols: usize,
    /// Row-major `[stride × cols]`.
    pub q: Vec<i8>,
    /// One scale per column: `M_kj ≈ scale_j · q_kj`.
    pub scale: Vec<f32>,
}

impl QueryI8 {
    /// Quantises `m` (row-major `[d × cols]`) for item rows of stride `stride ≥ d`.
    pub fn new(m: &[f32], d: usize, cols: usize, stride: usize) -> QueryI8 {
        QueryI8::per_column(m, d, cols, stride, QUERY_MAX)
    }

    /// A further layer's weights `w` (row-major `[rows × cols]`, `rows` the layer's
    /// input width) quantised per output column to `[-127, 127]`, for the integer
    /// further layers (see the module docs); `stride` is `rows` rounded up to
    /// [`K_MULTIPLE`], the activation rows' stride.
    pub fn layer(w: &[f32], rows: usize, cols: usize) -> QueryI8 {
        QueryI8::per_column(w, rows, cols, round_up(rows.max(1), K_MULTIPLE), ITEM_MAX)
    }

    fn per_column(m: &[f32], d: usize, cols: usize, stride: usize, limit: f32) -> QueryI8 {
        let mut max = vec![0.0f32; cols];
        for row in m.chunks_exact(cols.max(1)).take(d) {
            for (mx, x) in max.iter_mut().zip(row) {
                *mx = mx.max(x.abs());
            }
        }
        let (scale, inv): (Vec<f32>, Vec<f32>) = max
            .iter()
            .map(|&mx| {
                if mx > 0.0 && mx.is_finite() {
                    (mx / limit, limit / mx)
                } else {
                    (0.0, 0.0)
                }
            })
            .unzip();
        let mut q = vec![0i8; stride * cols];
        for (k, row) in m.chunks_exact(cols.max(1)).take(d).enumerate() {
            for (j, &x) in row.iter().enumerate() {
                q[k * cols + j] = quantize(x, inv[j], limit);
            }
        }
        QueryI8 {
            stride,
            cols,
            q,
            scale,
        }
    }
}

/// The further layers of a plan, their weights quantised per column
/// ([`QueryI8::layer`]; one per `plan.layers` entry, in order).
pub fn layers_i8(plan: &HeadPlan) -> Vec<QueryI8> {
    let mut width = plan.hidden;
    plan.layers
        .iter()
        .map(|(w, b)| {
            let l = QueryI8::layer(w, width, b.len());
            width = b.len();
            l
        })
        .collect()
}

/// Largest quantised activation of the integer further layers (7 bits, non-negative:
/// the relaxed-SIMD dot product's second operand).
pub const ACT_MAX: f32 = 127.0;

/// The reference quantisation of one activation row `h` (a ReLU's output, so `≥ 0`)
/// for the integer further layers: `out[k] = round_ties_even(h_k · (127 / max_k h_k))`
/// clamped to `[0, 127]`, the rest of `out` zeroed; returns the row's scale
/// `max / 127` (0, and zeros, for an all-zero row or one with an infinite value; a NaN
/// value counts as 0). Every kernel quantises with these operations, so every kernel's
/// integer sums are the same.
pub fn quantize_activations(h: &[f32], out: &mut [i8]) -> f32 {
    let max = h.iter().fold(0.0f32, |m, &x| activation_max(m, x));
    let (head, pad) = out.split_at_mut(h.len());
    pad.fill(0);
    if !(max > 0.0 && max.is_finite()) {
        head.fill(0);
        return 0.0;
    }
    let inv = ACT_MAX / max;
    for (o, &x) in head.iter_mut().zip(h) {
        *o = quantize_activation(x, inv);
    }
    max / ACT_MAX
}

/// `(Σ_k a_k · b_k, Σ_k b_k²)` over the common length of two int8 rows, exact (`i32`:
/// each term is at most 128², so rows up to 131,072 values long, 32 times the largest
/// `dim`, cannot overflow). A
/// plain loop the compiler vectorises (integer sums do not depend on the order).
pub fn dot_and_square_i8(a: &[i8], b: &[i8]) -> (i32, i32) {
    let (mut dot, mut sq) = (0i32, 0i32);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as i32, y as i32);
        dot += x * y;
        sq += y * y;
    }
    (dot, sq)
}

/// A NaN activation reads as 0, explicitly: with relaxed SIMD enabled the compiler may
/// lower a vectorised max or clamp to `f32x4.relaxed_max`/`_min`, whose NaN result is
/// the engine's choice.
#[inline(always)]
fn activation_value(x: f32) -> f32 {
    if x.is_nan() {
        0.0
    } else {
        x
    }
}

/// One step of [`quantize_activations`]' running maximum (a NaN skipped).
#[inline(always)]
pub(super) fn activation_max(m: f32, x: f32) -> f32 {
    let x = activation_value(x);
    if m < x {
        x
    } else {
        m
    }
}

/// One value of [`quantize_activations`]: `round_ties_even(x · inv)` in `[0, 127]`.
#[inline(always)]
pub(super) fn quantize_activation(x: f32, inv: f32) -> i8 {
    (activation_value(x) * inv)
        .round_ties_even()
        .clamp(0.0, ACT_MAX) as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abs_max_is_the_plain_fold() {
        let mut rng = crate::rng::SplitMix64::new(9);
        for n in 0..40 {
            let row: Vec<f32> = (0..n)
                .map(|_| match rng.below(8) {
                    0 => f32::NAN,
                    1 => -0.0,
                    2 => f32::NEG_INFINITY,
                    _ => (rng.below(2001) as f32 - 1000.0) / 7.0,
                })
                .collect();
            let want = row.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            assert_eq!(abs_max(&row).to_bits(), want.to_bits(), "{row:?}");
        }
    }

    #[test]
    fn round_half_away_is_round_bit_for_bit() {
        let mut rng = crate::rng::SplitMix64::new(7);
        let edges = [
            0.5f32,
            1.5,
            2.5,
            0.499_999_97,
            0.500_000_06,
            8_388_607.5,
            8_388_608.0,
            16_777_215.0,
            1e30,
            f32::MIN_POSITIVE,
            1e-45,
            0.0,
            f32::INFINITY,
            f32::NAN,
        ];
        let randoms = (0..200_000).map(|_| f32::from_bits(rng.next_u64() as u32));
        let scaled = (0..200_000).map(|i| (i as f32 - 100_000.0) / 64.0);
        for y in edges
            .into_iter()
            .flat_map(|e| [e, -e])
            .chain(randoms)
            .chain(scaled)
        {
            let (got, want) = (round_half_away(y), y.round());
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "{y:e}: {got:e} against {want:e}"
            );
        }
    }

    #[test]
    fn int8_dot_and_square_by_hand() {
        // 4 - 10 - 18 = -24; 16 + 25 + 36 = 77; the longer row's tail is not read.
        assert_eq!(dot_and_square_i8(&[1, -2, 3, 9], &[4, 5, -6]), (-24, 77));
        assert_eq!(
            dot_and_square_i8(&[-127; 64], &[-127; 64]),
            (64 * 16129, 64 * 16129)
        );
        assert_eq!(dot_and_square_i8(&[], &[1]), (0, 0));
    }

    #[test]
    fn activation_rows_quantise_by_hand() {
        // max 4: inv = 127 / 4 = 31.75; 1 → 31.75 → 32, 2 → 63.5 → 64 (ties to even),
        // 4 → 127; the padding is zeroed.
        let mut out = [9i8; 6];
        let s = quantize_activations(&[0.0, 1.0, 2.0, 4.0], &mut out);
        assert_eq!(out, [0, 32, 64, 127, 0, 0]);
        assert_eq!(s, 4.0 / 127.0);
        // max 8: inv = 15.875; 4 → 63.5 → 64 (even), 1 → 15.875 → 16, 0.5 → 7.9375 → 8.
        let s = quantize_activations(&[8.0, 4.0, 1.0, 0.5], &mut out[..4]);
        assert_eq!(&out[..4], &[127, 64, 16, 8]);
        assert_eq!(s, 8.0 / 127.0);
        // A NaN counts as 0; an all-zero row and one with an infinity give scale 0.
        let s = quantize_activations(&[f32::NAN, 2.0], &mut out[..2]);
        assert_eq!((&out[..2], s), (&[0i8, 127][..], 2.0 / 127.0));
        assert_eq!(quantize_activations(&[0.0, 0.0], &mut out[..2]), 0.0);
        assert_eq!(&out[..2], &[0, 0]);
        assert_eq!(
            quantize_activations(&[1.0, f32::INFINITY], &mut out[..2]),
            0.0
        );
        assert_eq!(&out[..2], &[0, 0]);
    }

    #[test]
    fn layer_weights_quantise_per_column_to_127() {
        // 2 × 2 weights, rows padded to the stride 4.
        let l = QueryI8::layer(&[1.0, -0.5, -2.0, 0.25], 2, 2);
        assert_eq!((l.stride, l.cols), (4, 2));
        assert_eq!(l.scale, vec![2.0 / 127.0, 0.5 / 127.0]);
        assert_eq!(&l.q[..4], &[64, -127, -127, 64]);
        assert!(l.q[4..].iter().all(|&x| x == 0));
    }

    #[test]
    fn rows_round_trip_within_half_a_step() {
        let v = [
            0.5, -1.0, 0.25, 0.0, 2.0, 0.0, -2.0, 1.0, 0.0, 0.0, 0.0, 0.0,
        ];
        let q = Int8Items::from_f32(&v, 3);
        q.validate(4, 3).unwrap();
        assert_eq!(q.stride, 4);
        assert_eq!(q.row(0), &[64, -127, 32, 0]);
        assert_eq!(q.row_sum[0], 64 - 127 + 32);
        assert_eq!(q.scale[3], 0.0, "a zero row has scale 0");
        let mut back = [0.0; 3];
        for i in 0..4 {
            q.row_into(i, &mut back);
            for (b, x) in back.iter().zip(&v[i * 3..]) {
                assert!(
                    (b - x).abs() <= q.scale[i] / 2.0 + 1e-7,
                    "row {i}: {b} vs {x}"
                );
            }
        }
        // A NaN element is stored as 0; an infinite one zeroes its row.
        let nan = Int8Items::from_f32(&[f32::NAN, 1.0, f32::INFINITY, 1.0], 2);
        assert_eq!(nan.row(0), &[0, 127, 0, 0]);
        assert_eq!(nan.scale[1], 0.0);
        assert_eq!(nan.row(1), &[0, 0, 0, 0]);
    }

    #[test]
    fn row_dot_equals_the_dot_of_the_rows_bit_for_bit() {
        let mut rng = crate::rng::SplitMix64::new(21);
        for d in [1, 3, 8, 13] {
            let n = 6;
            let v: Vec<f32> = (0..n * d)
                .map(|_| (rng.below(2001) as f32 - 1000.0) / 37.0)
                .collect();
            for iv in [
                ItemVectors::F32(v.clone()),
                ItemVectors::Int8(Int8Items::from_f32(&v, d)),
            ] {
                for a in 0..n + 1 {
                    for b in 0..n + 1 {
                        let want = match (iv.row(a, d), iv.row(b, d)) {
                            (Some(x), Some(y)) => {
                                Some(x.iter().zip(y.iter()).map(|(p, q)| p * q).sum::<f32>())
                            }
                            _ => None,
                        };
                        let got = iv.dot(a, b, d);
                        assert_eq!(
                            got.map(f32::to_bits),
                            want.map(f32::to_bits),
                            "d {d}, rows {a}, {b}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn rebuild_in_place_equals_pushing_the_edited_rows() {
        // d = 3 pads to stride 4: later output rows overlap earlier input rows, which
        // the last-to-first order must not clobber before they are read.
        let (n, d) = (7usize, 3usize);
        let src: Vec<f32> = (0..n * d)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 3.0)
            .collect();
        let table = Int8Items::from_f32(&src, d);
        let (mut q, mut scale) = (Vec::new(), table.scale.clone());
        for i in 0..n {
            q.extend_from_slice(&table.row(i)[..d]);
        }
        scale[4] = 0.0; // a zero row stays a valid input
        let edit = |i: usize, row: &mut [f32]| {
            for (k, x) in row.iter_mut().enumerate() {
                *x += (i * d + k) as f32 * 0.01;
            }
            if i == 2 {
                row[1] = f32::INFINITY;
            }
        };
        let mut expected = Int8Items::with_capacity(d, n);
        let mut row = vec![0.0; d];
        for i in 0..n {
            for (r, &x) in row.iter_mut().zip(&q[i * d..(i + 1) * d]) {
                *r = f32::from(x) * scale[i];
            }
            edit(i, &mut row);
            expected.push_row(&row);
        }
        let got = Int8Items::rebuild_in_place(q.clone(), scale.clone(), d, edit).unwrap();
        assert_eq!(got, expected);
        got.validate(n, d).unwrap();
        assert!(Int8Items::rebuild_in_place(q[1..].to_vec(), scale.clone(), d, edit).is_none());
        assert!(Int8Items::rebuild_in_place(q, scale, 0, edit).is_none());
    }

    #[test]
    fn requantized_equals_the_rebuild_that_changes_nothing() {
        // Rows as `quantize_row` stores them (largest |q| 127) with scales from every
        // binade, and rows it never stores: largest |q| below 127, -128, all zeros;
        // scales 0, negative, subnormal, huge (127 · s overflows), NaN, infinite. d = 6
        // pads to stride 8; d = 64 does not pad.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) as u32
        };
        let mut scales: Vec<f32> = (0..254).map(|e| f32::from_bits((e + 1) << 23)).collect();
        for _ in 0..2_000 {
            scales.push(f32::from_bits(next() % 0x7f00_0000 + 0x0080_0000));
        }
        scales.extend([
            0.0,
            -0.0,
            -1.5,
            f32::from_bits(1),
            f32::MIN_POSITIVE,
            f32::MAX,
            f32::MAX / 127.0,
            f32::NAN,
            f32::INFINITY,
        ]);
        for d in [6usize, 64] {
            let mut q = Vec::new();
            let mut scale = Vec::new();
            for (r, &s) in scales.iter().enumerate() {
                let mut row: Vec<i8> = (0..d).map(|_| (next() % 255) as i8).collect();
                let k = next() as usize % d;
                match r % 5 {
                    0 => row.iter_mut().for_each(|x| *x = (*x).clamp(-100, 100)),
                    1 => row.iter_mut().for_each(|x| *x = 0),
                    2 => row[k] = i8::MIN,
                    3 => row[k] = -127,
                    _ => row[k] = 127,
                }
                if r % 5 != 2 {
                    row.iter_mut().for_each(|x| *x = (*x).max(-127));
                }
                q.extend(row);
                scale.push(s);
            }
            let want = Int8Items::rebuild_in_place(q.clone(), scale.clone(), d, |_, _| {});
            let got = Int8Items::requantized(q, scale, d);
            let (want, got) = (want.unwrap(), got.unwrap());
            assert_eq!(got.q, want.q, "d = {d}");
            assert_eq!(got.row_sum, want.row_sum, "d = {d}");
            let bits = |t: &Int8Items| t.scale.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "d = {d}");
            assert_eq!((got.dim, got.stride), (want.dim, want.stride));
        }
        assert!(Int8Items::requantized(vec![0; 5], vec![1.0; 2], 3).is_none());
    }

    #[test]
    fn query_columns_use_seven_bits() {
        // d = 2, cols = 2: column 0 max 2.0, column 1 max 0.5.
        let m = [2.0, -0.5, -1.0, 0.25];
        let q = QueryI8::new(&m, 2, 2, 4);
        assert_eq!(q.q, vec![63, -63, -32, 32, 0, 0, 0, 0]);
        assert_eq!(q.scale, vec![2.0 / 63.0, 0.5 / 63.0]);
    }

    #[test]
    fn validate_rejects_wrong_lengths() {
        let mut q = Int8Items::from_f32(&[1.0; 8], 4);
        assert!(q.validate(2, 4).is_ok());
        assert!(q.validate(3, 4).is_err());
        assert!(q.validate(2, 5).is_err());
        q.row_sum.pop();
        assert!(q.validate(2, 4).is_err());
    }
}
