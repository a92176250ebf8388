//! ONNX export of a loaded model, for running the *same* model with the *same* weights in
//! other inference engines (ONNX Runtime Web, and TensorFlow.js from [`Export::tensors`]);
//! used by `vitrine export-onnx` and the engine benchmark (`bench/engines/`). Native only.
//!
//! The protobuf is written by hand (no `onnx`/`prost` dependency): [`Pb`] encodes the few
//! messages an inference graph needs — `ModelProto` (ir_version 8, opset 17),
//! `GraphProto`, `NodeProto`, `AttributeProto`, `TensorProto` (little-endian `raw_data`),
//! `ValueInfoProto` — with the field numbers of `onnx/onnx.proto`.
//!
//! # The two graphs
//! **Head** ([`head_graph`]): input `u` (`[d]`, the user vector), output `logits` (`[N]`),
//! the model's scoring head over every item vector `V` (`[N × d]`, an initializer):
//! `logit_i = u·v_i + MLP([u, v_i, u⊙v_i])` (see [`crate::model`]). As in vitrine's own
//! kernels the user side is folded into the first layer's matrix,
//! `M = diag(u)·W₁ₚ + W₁ᵥ`, `a = u·W₁ᵤ + b₁`, so the catalogue-sized work is one
//! `[N × d]·[d × (h+2)]` product and the small layers after it; and the dot-product
//! term rides through the MLP instead of costing a second pass over `V`: columns `u` and
//! `-u` are appended to `M` (bias 0), ReLU keeps `relu(x)` and `relu(-x)`, every further
//! layer carries both through unchanged (an identity block, bias 0: both are already
//! non-negative, so its ReLU is the identity), and the output weights `+1, -1` on them
//! add `relu(x) - relu(-x) = x = u·v_i`. Exact in real arithmetic; in `f32` only the
//! summation order differs from vitrine's kernels. Nodes: `Reshape`, `Mul`, `Add`,
//! `MatMul`, `Concat`, `Relu` (ONNX Runtime fuses `MatMul`+`Add`(+`Relu`) into `Gemm`).
//!
//! **Whole model** ([`full_graph`]): inputs `items`, `kinds`, `gaps`, `pos` (`int64 [L]`,
//! oldest event first: catalogue index, event-kind index, recency bucket, and `L-1-t`),
//! the user encoder of [`crate::model::Model::encode_sequence`] in inference mode —
//! `x_t = V[item_t] + pos[L-1-t] + kind[k_t] + gap[g_t]` (`Gather`), `n_blocks`
//! pre-layer-norm blocks (`LayerNormalization`, ε = 1e-5; multi-head causal attention
//! as `MatMul` over `[heads × L × dh]` with scale `1/√dh` and an additive mask
//! `-1e9·(1 - tril(1))` from `Trilu`; a ReLU feed-forward layer; residuals), the final
//! layer norm, `u = y[L-1]` — then the head above and a `TopK` node: outputs `scores`
//! and `indices` (`[k]`, best first). Not exported: the transition memory (`memory.*`)
//! and everything after the head in `recommend()` (filters, boosts, exclusions,
//! explanations); [`Export::has_memory`] says when the model has a memory term the
//! graph leaves out.
//!
//! **Over the int8 item table** ([`Catalogue::Int8`]): both graphs again, with the
//! catalogue as vitrine's int8 files keep it at run time ([`Int8Items`]: int8 values, one
//! scale per item), for ONNX Runtime's quantised path. The head runs transposed, as ONNX
//! Runtime's dynamic quantisation lays out a quantised `MatMul`: `Mᵀ` is quantised per
//! request (`DynamicQuantizeLinear`: uint8, one scale and zero point), `MatMulInteger`
//! multiplies it by the int8 items (`[d × N]`) into int32, `Cast` and `Mul` by
//! `scale_M · scale_i` dequantise — the pattern its optimizer fuses into one quantised
//! GEMM — and every further layer is `Wᵀ·X`. The encoder gathers its history's item
//! vectors from the same int8 table (`Gather` on axis 1, `Cast`, `Mul` by the scales).
//! Only the catalogue-sized product is integer.
use crate::history::{EventKind, HistoryEvent};
use crate::kernels::{CpuKernel, Int8Items};
use crate::model::params::flat;
use crate::model::Model;

/// ONNX IR version written (ONNX 1.10+, read by every current runtime).
pub const IR_VERSION: u64 = 8;
/// The default-domain opset the graphs use (`LayerNormalization` needs 17).
pub const OPSET: u64 = 17;

/// Errors of the export.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// `k` is zero or larger than the catalogue.
    #[error("k = {k} must be in 1..={n_items} (the catalogue size)")]
    BadK {
        /// Requested `k`.
        k: usize,
        /// Catalogue size.
        n_items: usize,
    },
    /// A tensor would not fit a protobuf message (2 GiB); the model is too large to
    /// export inline.
    #[error("tensor {name:?} is {bytes} bytes: an inline ONNX tensor must stay under 2 GiB")]
    TooLarge {
        /// Tensor name.
        name: String,
        /// Its size.
        bytes: usize,
    },
    /// vitrine's own scoring of the reference failed (the model's shapes are
    /// inconsistent).
    #[error("scoring the reference: {0}")]
    Shape(#[from] crate::kernels::ShapeError),
}

// ---------------------------------------------------------------------------------------
// Protobuf writer.

/// A protobuf message being written: `key = field << 3 | wire type` as a varint, then the
/// value (varint for wire type 0, length-prefixed bytes for 2).
#[derive(Default)]
struct Pb(Vec<u8>);

impl Pb {
    fn raw_varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn key(&mut self, field: u32, wire: u8) {
        self.raw_varint(((field as u64) << 3) | wire as u64);
    }
    /// An `int64`/`int32`/enum field (negative values as 10-byte two's complement).
    fn int(&mut self, field: u32, v: i64) {
        self.key(field, 0);
        self.raw_varint(v as u64);
    }
    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.raw_varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn string(&mut self, field: u32, s: &str) {
        self.bytes(field, s.as_bytes());
    }
    fn message(&mut self, field: u32, m: Pb) {
        self.bytes(field, &m.0);
    }
    /// A 32-bit float field (wire type 5, little-endian).
    fn float(&mut self, field: u32, v: f32) {
        self.key(field, 5);
        self.0.extend_from_slice(&v.to_le_bytes());
    }
}

// ---------------------------------------------------------------------------------------
// Graph model.

/// `TensorProto.DataType` values used here.
const FLOAT: i64 = 1;
const INT8: i64 = 3;
const INT64: i64 = 7;

/// Data of a constant tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// `float32` values.
    F32(Vec<f32>),
    /// `int64` values.
    I64(Vec<i64>),
    /// `int8` values.
    I8(Vec<i8>),
}

/// A named constant tensor (an initializer, or an attribute's value).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Name in the graph.
    pub name: String,
    /// Shape (empty: a scalar).
    pub dims: Vec<usize>,
    /// Values, row-major.
    pub data: Data,
}

impl Tensor {
    fn encode(&self) -> Result<Pb, OnnxError> {
        let mut t = Pb::default();
        for &d in &self.dims {
            t.int(1, d as i64);
        }
        let raw: Vec<u8> = match &self.data {
            Data::F32(v) => {
                t.int(2, FLOAT);
                v.iter().flat_map(|x| x.to_le_bytes()).collect()
            }
            Data::I64(v) => {
                t.int(2, INT64);
                v.iter().flat_map(|x| x.to_le_bytes()).collect()
            }
            Data::I8(v) => {
                t.int(2, INT8);
                v.iter().map(|&x| x as u8).collect()
            }
        };
        if raw.len() >= (1 << 31) {
            return Err(OnnxError::TooLarge {
                name: self.name.clone(),
                bytes: raw.len(),
            });
        }
        t.string(8, &self.name);
        t.bytes(9, &raw);
        Ok(t)
    }
}

/// A node attribute.
#[derive(Debug, Clone, PartialEq)]
enum Attr {
    Int(&'static str, i64),
    Float(&'static str, f32),
    Ints(&'static str, Vec<i64>),
    Tensor(&'static str, Tensor),
}

impl Attr {
    /// `AttributeProto`: name 1, f 2, i 3, t 5, ints 8, type 20 (FLOAT 1, INT 2,
    /// TENSOR 4, INTS 7).
    fn encode(&self) -> Result<Pb, OnnxError> {
        let mut a = Pb::default();
        match self {
            Attr::Int(n, v) => {
                a.string(1, n);
                a.int(3, *v);
                a.int(20, 2);
            }
            Attr::Float(n, v) => {
                a.string(1, n);
                a.float(2, *v);
                a.int(20, 1);
            }
            Attr::Ints(n, vs) => {
                a.string(1, n);
                for v in vs {
                    a.int(8, *v);
                }
                a.int(20, 7);
            }
            Attr::Tensor(n, t) => {
                a.string(1, n);
                a.message(5, t.encode()?);
                a.int(20, 4);
            }
        }
        Ok(a)
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Node {
    op: &'static str,
    inputs: Vec<String>,
    outputs: Vec<String>,
    attrs: Vec<Attr>,
}

/// A graph input or output: name, element type and shape (`None`: a symbolic dimension
/// named after the input).
#[derive(Debug, Clone, PartialEq)]
struct ValueInfo {
    name: String,
    elem: i64,
    dims: Vec<Option<usize>>,
}

impl ValueInfo {
    /// `ValueInfoProto { name 1, type 2: TypeProto { tensor_type 1: { elem_type 1,
    /// shape 2: { dim 1: { dim_value 1 | dim_param 2 } } } } }`.
    fn encode(&self) -> Pb {
        let mut shape = Pb::default();
        for d in &self.dims {
            let mut dim = Pb::default();
            match d {
                Some(v) => dim.int(1, *v as i64),
                None => dim.string(2, "L"),
            }
            shape.message(1, dim);
        }
        let mut tt = Pb::default();
        tt.int(1, self.elem);
        tt.message(2, shape);
        let mut ty = Pb::default();
        ty.message(1, tt);
        let mut v = Pb::default();
        v.string(1, &self.name);
        v.message(2, ty);
        v
    }
}

/// An inference graph under construction: nodes in topological order, initializers,
/// inputs and outputs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    name: String,
    nodes: Vec<Node>,
    inits: Vec<Tensor>,
    inputs: Vec<ValueInfo>,
    outputs: Vec<ValueInfo>,
    next: usize,
}

impl Graph {
    fn new(name: &str) -> Graph {
        Graph {
            name: name.to_string(),
            ..Default::default()
        }
    }

    /// Adds an initializer and returns its name.
    fn init(&mut self, name: &str, dims: &[usize], data: Data) -> String {
        self.inits.push(Tensor {
            name: name.to_string(),
            dims: dims.to_vec(),
            data,
        });
        name.to_string()
    }

    /// Adds an `f32` initializer and returns its name.
    fn f32(&mut self, name: &str, dims: &[usize], data: Vec<f32>) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len(), "{name}");
        self.init(name, dims, Data::F32(data))
    }

    /// Adds an `int64` initializer (once: a second call with the same name and data
    /// reuses it) and returns its name.
    fn i64(&mut self, name: &str, dims: &[usize], data: Vec<i64>) -> String {
        if let Some(t) = self.inits.iter().find(|t| t.name == name) {
            assert_eq!(
                t.data,
                Data::I64(data),
                "initializer {name} added twice, unequal"
            );
            return name.to_string();
        }
        self.init(name, dims, Data::I64(data))
    }

    /// Adds an `int8` initializer and returns its name.
    fn i8(&mut self, name: &str, dims: &[usize], data: Vec<i8>) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len(), "{name}");
        self.init(name, dims, Data::I8(data))
    }

    /// Adds a node with one output and returns the output's (generated) name.
    fn op(&mut self, op: &'static str, inputs: &[&str], attrs: Vec<Attr>) -> String {
        self.ops(op, inputs, attrs, 1).remove(0)
    }

    /// Adds a node with `n` outputs and returns their (generated) names.
    fn ops(
        &mut self,
        op: &'static str,
        inputs: &[&str],
        attrs: Vec<Attr>,
        n: usize,
    ) -> Vec<String> {
        self.next += 1;
        let outs: Vec<String> = (0..n)
            .map(|j| match j {
                0 => format!("{}_{}", op.to_lowercase(), self.next),
                _ => format!("{}_{}_{j}", op.to_lowercase(), self.next),
            })
            .collect();
        self.nodes.push(Node {
            op,
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: outs.clone(),
            attrs,
        });
        outs
    }

    /// The initializers (the weights every engine gets), in the order added.
    pub fn initializers(&self) -> &[Tensor] {
        &self.inits
    }

    /// Node op types in order (for tests and reports).
    pub fn op_types(&self) -> Vec<&'static str> {
        self.nodes.iter().map(|n| n.op).collect()
    }

    /// The serialised `ModelProto`.
    pub fn to_bytes(&self) -> Result<Vec<u8>, OnnxError> {
        let mut g = Pb::default();
        for n in &self.nodes {
            // NodeProto: input 1, output 2, name 3, op_type 4, attribute 5.
            let mut p = Pb::default();
            for i in &n.inputs {
                p.string(1, i);
            }
            for o in &n.outputs {
                p.string(2, o);
            }
            p.string(3, &n.outputs[0]);
            p.string(4, n.op);
            for a in &n.attrs {
                p.message(5, a.encode()?);
            }
            g.message(1, p);
        }
        g.string(2, &self.name);
        for t in &self.inits {
            g.message(5, t.encode()?);
        }
        for v in &self.inputs {
            g.message(11, v.encode());
        }
        for v in &self.outputs {
            g.message(12, v.encode());
        }
        // ModelProto: ir_version 1, producer_name 2, producer_version 3, graph 7,
        // opset_import 8 (OperatorSetIdProto: domain 1, version 2).
        let mut m = Pb::default();
        m.int(1, IR_VERSION as i64);
        m.string(2, "vitrine");
        m.string(3, env!("CARGO_PKG_VERSION"));
        m.message(7, g);
        let mut opset = Pb::default();
        opset.string(1, "");
        opset.int(2, OPSET as i64);
        m.message(8, opset);
        Ok(m.0)
    }
}

// ---------------------------------------------------------------------------------------
// The model's graphs.

/// The catalogue operand of a graph: the item vectors in `f32` (`items`, `[N × d]`), or
/// quantised as vitrine's int8 files keep them at run time ([`Int8Items`]: `items.qt`,
/// the int8 values transposed to `[d × N]`, and `items.scale`, `[N]`).
#[derive(Clone, Copy)]
pub enum Catalogue<'a> {
    /// Row-major `[N × d]` item vectors.
    F32(&'a [f32]),
    /// The int8 item vectors with their per-row scales.
    Int8(&'a Int8Items),
}

impl Catalogue<'_> {
    /// Adds the catalogue's initializers (see [`Catalogue`]).
    fn add_to(&self, g: &mut Graph, n: usize, d: usize) {
        match self {
            Catalogue::F32(v) => {
                g.f32("items", &[n, d], v.to_vec());
            }
            Catalogue::Int8(q) => {
                let mut qt = vec![0i8; d * n];
                for i in 0..n {
                    for (k, &x) in q.row(i)[..d].iter().enumerate() {
                        qt[k * n + i] = x;
                    }
                }
                g.i8("items.qt", &[d, n], qt);
                g.f32("items.scale", &[n], q.scale.clone());
            }
        }
    }

    fn is_int8(&self) -> bool {
        matches!(self, Catalogue::Int8(_))
    }
}

/// Adds the head's initializers and nodes reading the user vector `u` (`[d]`) and
/// returns the name of the logits (`[N]`). See the module docs for the math. The
/// catalogue's initializers ([`Catalogue::add_to`]) are added by the caller.
///
/// With an int8 catalogue the head runs transposed, as ONNX Runtime's dynamic
/// quantisation lays out a quantised `MatMul` (the constant int8 operand on the right,
/// one scale per output column): `Mᵀ` (`[(h+2) × d]`) is quantised per request by
/// `DynamicQuantizeLinear` (uint8, one scale and zero point), `MatMulInteger` with
/// `items.qt` gives `[(h+2) × N]` in int32, `Cast` and `Mul` by `scale_M · items.scale`
/// dequantise it, and every further layer is `Wᵀ·X` (`[out × N]`). Only the
/// catalogue-sized product is integer; the small per-request matrices stay `f32`, as
/// in vitrine's int8 kernels.
fn add_head(g: &mut Graph, model: &Model, int8: bool, u: &str) -> String {
    let c = &model.config;
    let d = c.dim;
    let p = model.view();
    let head = &p.head;
    let h = c.mlp_hidden[0];
    let w1u = g.f32("head.w1u", &[d, h], flat(&head.w1u).to_vec());
    let w1v = g.f32("head.w1v", &[d, h], flat(&head.w1v).to_vec());
    let w1p = g.f32("head.w1p", &[d, h], flat(&head.w1p).to_vec());
    let b1 = g.f32("head.b1", &[h], head.b1.to_vec());
    let col_shape = g.i64("shape.col", &[2], vec![-1, 1]);
    let zeros2 = g.f32("zeros2", &[2], vec![0.0, 0.0]);
    // M = [diag(u)·W1p + W1v | u | -u], a = [u·W1u + b1 | 0 0].
    let uc = g.op("Reshape", &[u, &col_shape], vec![]);
    let up = g.op("Mul", &[&uc, &w1p], vec![]);
    let m0 = g.op("Add", &[&up, &w1v], vec![]);
    let neg = g.op("Neg", &[&uc], vec![]);
    let m = g.op("Concat", &[&m0, &uc, &neg], vec![Attr::Int("axis", 1)]);
    let ua = g.op("MatMul", &[u, &w1u], vec![]);
    let a0 = g.op("Add", &[&ua, &b1], vec![]);
    let a = g.op("Concat", &[&a0, &zeros2], vec![Attr::Int("axis", 0)]);
    let z = if int8 {
        let mt = g.op("Transpose", &[&m], vec![Attr::Ints("perm", vec![1, 0])]);
        let q = g.ops("DynamicQuantizeLinear", &[&mt], vec![], 3);
        let zi = g.op("MatMulInteger", &[&q[0], "items.qt", &q[2]], vec![]);
        let zf = g.op("Cast", &[&zi], vec![Attr::Int("to", FLOAT)]);
        let sc = g.op("Mul", &[&q[1], "items.scale"], vec![]);
        let z = g.op("Mul", &[&zf, &sc], vec![]);
        let ac = g.op("Reshape", &[&a, &col_shape], vec![]);
        g.op("Add", &[&z, &ac], vec![])
    } else {
        let z = g.op("MatMul", &["items", &m], vec![]);
        g.op("Add", &[&z, &a], vec![])
    };
    let mut x = g.op("Relu", &[&z], vec![]);
    // Further layers carry the two extra columns with an identity block.
    let mut width = h;
    for (j, l) in head.layers.iter().enumerate() {
        let out_w = l.b.len();
        let w = flat(&l.w);
        let (rows, cols) = (width + 2, out_w + 2);
        let mut we = vec![0.0f32; rows * cols];
        for r in 0..width {
            we[r * cols..r * cols + out_w].copy_from_slice(&w[r * out_w..(r + 1) * out_w]);
        }
        we[width * cols + out_w] = 1.0;
        we[(width + 1) * cols + out_w + 1] = 1.0;
        let mut be = l.b.to_vec();
        be.extend([0.0, 0.0]);
        let (wname, bname) = (format!("head.l{}.w", j + 2), format!("head.l{}.b", j + 2));
        let z = if int8 {
            let wt = transpose(&we, rows, cols);
            let wn = g.f32(&wname, &[cols, rows], wt);
            let bn = g.f32(&bname, &[cols, 1], be);
            let z = g.op("MatMul", &[&wn, &x], vec![]);
            g.op("Add", &[&z, &bn], vec![])
        } else {
            let wn = g.f32(&wname, &[rows, cols], we);
            let bn = g.f32(&bname, &[cols], be);
            let z = g.op("MatMul", &[&x, &wn], vec![]);
            g.op("Add", &[&z, &bn], vec![])
        };
        x = g.op("Relu", &[&z], vec![]);
        width = out_w;
    }
    let mut wo = head.out.w[..width].to_vec();
    wo.extend([1.0, -1.0]);
    let wo = match int8 {
        true => g.f32("head.out.w", &[1, width + 2], wo),
        false => g.f32("head.out.w", &[width + 2], wo),
    };
    let bo = g.f32("head.out.b", &[], vec![head.out.b[0]]);
    if int8 {
        let o = g.op("MatMul", &[&wo, &x], vec![]);
        let o = g.op("Add", &[&o, &bo], vec![]);
        let flat_shape = g.i64("shape.flat", &[1], vec![-1]);
        g.op("Reshape", &[&o, &flat_shape], vec![])
    } else {
        let o = g.op("MatMul", &[&x, &wo], vec![]);
        g.op("Add", &[&o, &bo], vec![])
    }
}

/// `[rows × cols]` row-major → `[cols × rows]`.
fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..cols * rows)
        .map(|f| w[(f % rows) * cols + f / rows])
        .collect()
}

/// Renames a node output (the last node's) to a graph output name.
fn rename_last(g: &mut Graph, to: &str) {
    if let Some(n) = g.nodes.last_mut() {
        n.outputs[0] = to.to_string();
    }
}

/// The scoring head over the whole catalogue as a graph: input `u` `[d]`, output
/// `logits` `[N]`.
pub fn head_graph(model: &Model, items: Catalogue<'_>) -> Graph {
    let mut g = Graph::new("vitrine_head");
    let d = model.config.dim;
    g.inputs.push(ValueInfo {
        name: "u".into(),
        elem: FLOAT,
        dims: vec![Some(d)],
    });
    items.add_to(&mut g, model.config.n_items, d);
    add_head(&mut g, model, items.is_int8(), "u");
    rename_last(&mut g, "logits");
    g.outputs.push(ValueInfo {
        name: "logits".into(),
        elem: FLOAT,
        dims: vec![Some(model.config.n_items)],
    });
    g
}

/// The whole model (user encoder, head, top-`k`) as a graph; see the module docs.
pub fn full_graph(model: &Model, items: Catalogue<'_>, k: usize) -> Result<Graph, OnnxError> {
    let c = &model.config;
    if k == 0 || k > c.n_items {
        return Err(OnnxError::BadK {
            k,
            n_items: c.n_items,
        });
    }
    let (d, heads) = (c.dim, c.n_heads);
    let dh = d / heads;
    let mut g = Graph::new("vitrine_recommend");
    for name in ["items", "kinds", "gaps", "pos"] {
        g.inputs.push(ValueInfo {
            name: format!("in.{name}"),
            elem: INT64,
            dims: vec![None],
        });
    }
    let p = model.view();
    let user = &p.user;
    let pos = g.f32("user.pos", &[c.max_len, d], flat(&user.pos).to_vec());
    let kind = g.f32(
        "user.kind",
        &[flat(&user.kind).len() / d, d],
        flat(&user.kind).to_vec(),
    );
    let gap = g.f32(
        "user.gap",
        &[c.n_recency_buckets, d],
        flat(&user.gap).to_vec(),
    );
    items.add_to(&mut g, c.n_items, d);
    let x0 = if items.is_int8() {
        // The history's item vectors dequantised: columns of `items.qt` times their scales.
        let col_shape = g.i64("shape.col", &[2], vec![-1, 1]);
        let qc = g.op(
            "Gather",
            &["items.qt", "in.items"],
            vec![Attr::Int("axis", 1)],
        );
        let qr = g.op("Transpose", &[&qc], vec![Attr::Ints("perm", vec![1, 0])]);
        let qf = g.op("Cast", &[&qr], vec![Attr::Int("to", FLOAT)]);
        let sc = g.op(
            "Gather",
            &["items.scale", "in.items"],
            vec![Attr::Int("axis", 0)],
        );
        let sc = g.op("Reshape", &[&sc, &col_shape], vec![]);
        g.op("Mul", &[&qf, &sc], vec![])
    } else {
        g.op("Gather", &["items", "in.items"], vec![Attr::Int("axis", 0)])
    };
    let x1 = g.op("Gather", &[&pos, "in.pos"], vec![Attr::Int("axis", 0)]);
    let x2 = g.op("Gather", &[&kind, "in.kinds"], vec![Attr::Int("axis", 0)]);
    let x3 = g.op("Gather", &[&gap, "in.gaps"], vec![Attr::Int("axis", 0)]);
    let s = g.op("Add", &[&x0, &x1], vec![]);
    let s = g.op("Add", &[&s, &x2], vec![]);
    let mut hcur = g.op("Add", &[&s, &x3], vec![]);
    // Causal mask [L × L]: 0 on and below the diagonal, -1e9 above.
    let shp = g.op("Shape", &["in.items"], vec![]);
    let shp2 = g.op("Concat", &[&shp, &shp], vec![Attr::Int("axis", 0)]);
    let one = Tensor {
        name: "one".into(),
        dims: vec![1],
        data: Data::F32(vec![1.0]),
    };
    let ones = g.op(
        "ConstantOfShape",
        &[&shp2],
        vec![Attr::Tensor("value", one)],
    );
    let tril = g.op("Trilu", &[&ones], vec![Attr::Int("upper", 0)]);
    let one_s = g.f32("mask.one", &[], vec![1.0]);
    let big = g.f32("mask.big", &[], vec![-1e9]);
    let above = g.op("Sub", &[&one_s, &tril], vec![]);
    let mask = g.op("Mul", &[&above, &big], vec![]);
    let split = g.i64("shape.heads", &[3], vec![0, heads as i64, dh as i64]);
    let merge = g.i64("shape.merge", &[2], vec![0, d as i64]);
    let scale = g.f32("attn.scale", &[], vec![1.0 / (dh as f32).sqrt()]);
    let eps = crate::model::layers::LN_EPS;
    let ln = |g: &mut Graph, x: &str, gn: &str, bn: &str| {
        g.op(
            "LayerNormalization",
            &[x, gn, bn],
            vec![Attr::Int("axis", -1), Attr::Float("epsilon", eps)],
        )
    };
    for (bi, blk) in user.blocks.iter().enumerate() {
        let pre = format!("user.b{bi}");
        let t = |g: &mut Graph, n: &str, dims: &[usize], data: &[f32]| {
            g.f32(&format!("{pre}.{n}"), dims, data.to_vec())
        };
        let at = &blk.attn;
        let ln1g = t(&mut g, "ln1.g", &[d], blk.ln1.g);
        let ln1b = t(&mut g, "ln1.b", &[d], blk.ln1.b);
        let a = ln(&mut g, &hcur, &ln1g, &ln1b);
        let mut qkv = Vec::new();
        for (n, w, b) in [
            ("wq", &at.wq, at.bq),
            ("wk", &at.wk, at.bk),
            ("wv", &at.wv, at.bv),
        ] {
            let wn = t(&mut g, n, &[d, d], flat(w));
            let bn = t(&mut g, &format!("b{}", &n[1..]), &[d], b);
            let z = g.op("MatMul", &[&a, &wn], vec![]);
            let z = g.op("Add", &[&z, &bn], vec![]);
            let z = g.op("Reshape", &[&z, &split], vec![]);
            qkv.push(z);
        }
        // [L, H, dh] → q, v: [H, L, dh]; k: [H, dh, L].
        let q = g.op(
            "Transpose",
            &[&qkv[0]],
            vec![Attr::Ints("perm", vec![1, 0, 2])],
        );
        let k = g.op(
            "Transpose",
            &[&qkv[1]],
            vec![Attr::Ints("perm", vec![1, 2, 0])],
        );
        let vv = g.op(
            "Transpose",
            &[&qkv[2]],
            vec![Attr::Ints("perm", vec![1, 0, 2])],
        );
        let sc = g.op("MatMul", &[&q, &k], vec![]);
        let sc = g.op("Mul", &[&sc, &scale], vec![]);
        let sc = g.op("Add", &[&sc, &mask], vec![]);
        let pr = g.op("Softmax", &[&sc], vec![Attr::Int("axis", -1)]);
        let o = g.op("MatMul", &[&pr, &vv], vec![]);
        let o = g.op("Transpose", &[&o], vec![Attr::Ints("perm", vec![1, 0, 2])]);
        let o = g.op("Reshape", &[&o, &merge], vec![]);
        let wo = t(&mut g, "wo", &[d, d], flat(&at.wo));
        let bo = t(&mut g, "bo", &[d], at.bo);
        let o = g.op("MatMul", &[&o, &wo], vec![]);
        let o = g.op("Add", &[&o, &bo], vec![]);
        // A gated block's branch is added times `σ(x·G + g)` of the stream entering it.
        let gate = |g: &mut Graph,
                    x: &str,
                    n: &str,
                    dense: &crate::model::params::Dense<&[f32], ndarray::ArrayView2<'_, f32>>,
                    y: &str| {
            let w = t(g, &format!("{n}.w"), &[d, d], flat(&dense.w));
            let b = t(g, &format!("{n}.b"), &[d], dense.b);
            let z = g.op("MatMul", &[x, &w], vec![]);
            let z = g.op("Add", &[&z, &b], vec![]);
            let s = g.op("Sigmoid", &[&z], vec![]);
            g.op("Mul", &[&s, y], vec![])
        };
        let o = match &blk.gates {
            Some(gates) => gate(&mut g, &hcur, "gate_attn", &gates[0], &o),
            None => o,
        };
        let mid = g.op("Add", &[&hcur, &o], vec![]);
        let ff = &blk.ffn;
        let ln2g = t(&mut g, "ln2.g", &[d], blk.ln2.g);
        let ln2b = t(&mut g, "ln2.b", &[d], blk.ln2.b);
        let b = ln(&mut g, &mid, &ln2g, &ln2b);
        let w1 = t(&mut g, "ffn.w1", &[d, c.ffn_dim], flat(&ff.w1));
        let b1 = t(&mut g, "ffn.b1", &[c.ffn_dim], ff.b1);
        let w2 = t(&mut g, "ffn.w2", &[c.ffn_dim, d], flat(&ff.w2));
        let b2 = t(&mut g, "ffn.b2", &[d], ff.b2);
        let f = g.op("MatMul", &[&b, &w1], vec![]);
        let f = g.op("Add", &[&f, &b1], vec![]);
        let f = match &ff.up {
            // SwiGLU: silu(b·W₁ + b₁) ⊙ (b·W₃ + b₃).
            Some(up) => {
                let w3 = t(&mut g, "ffn.w3", &[d, c.ffn_dim], flat(&up.w));
                let b3 = t(&mut g, "ffn.b3", &[c.ffn_dim], up.b);
                let f3 = g.op("MatMul", &[&b, &w3], vec![]);
                let f3 = g.op("Add", &[&f3, &b3], vec![]);
                let s = g.op("Sigmoid", &[&f], vec![]);
                let f = g.op("Mul", &[&f, &s], vec![]);
                g.op("Mul", &[&f, &f3], vec![])
            }
            None => g.op("Relu", &[&f], vec![]),
        };
        let f = g.op("MatMul", &[&f, &w2], vec![]);
        let f = g.op("Add", &[&f, &b2], vec![]);
        let f = match &blk.gates {
            Some(gates) => gate(&mut g, &mid, "gate_ffn", &gates[1], &f),
            None => f,
        };
        hcur = g.op("Add", &[&mid, &f], vec![]);
    }
    let lnfg = g.f32("user.lnf.g", &[d], user.lnf.g.to_vec());
    let lnfb = g.f32("user.lnf.b", &[d], user.lnf.b.to_vec());
    let y = ln(&mut g, &hcur, &lnfg, &lnfb);
    let last = g.i64("last", &[], vec![-1]);
    let u = g.op("Gather", &[&y, &last], vec![Attr::Int("axis", 0)]);
    let logits = add_head(&mut g, model, items.is_int8(), &u);
    let kk = g.i64("k", &[1], vec![k as i64]);
    g.nodes.push(Node {
        op: "TopK",
        inputs: vec![logits, kk],
        outputs: vec!["scores".into(), "indices".into()],
        attrs: vec![
            Attr::Int("axis", -1),
            Attr::Int("largest", 1),
            Attr::Int("sorted", 1),
        ],
    });
    g.outputs.push(ValueInfo {
        name: "scores".into(),
        elem: FLOAT,
        dims: vec![Some(k)],
    });
    g.outputs.push(ValueInfo {
        name: "indices".into(),
        elem: INT64,
        dims: vec![Some(k)],
    });
    Ok(g)
}

// ---------------------------------------------------------------------------------------
// The export: graphs, the tensors for other engines, and a reference to check them by.

/// The fixed benchmark history: `len` views of items `(i·7919) mod N`, one hour apart,
/// oldest first, the last at `now`.
pub fn bench_history(n_items: usize, len: usize, now: f64) -> Vec<HistoryEvent> {
    (0..len)
        .map(|i| HistoryEvent {
            item: ((i * 7919) % n_items) as u32,
            kind: EventKind::View,
            at: now - 3600.0 * (len - 1 - i) as f64,
        })
        .collect()
}

/// Everything `vitrine export-onnx` writes.
#[derive(Debug, Clone)]
pub struct Export {
    /// The head graph ([`head_graph`]).
    pub head: Graph,
    /// The whole model ([`full_graph`]).
    pub full: Graph,
    /// The head over the int8 item vectors ([`Catalogue::Int8`]).
    pub head_int8: Graph,
    /// The whole model over the int8 item vectors.
    pub full_int8: Graph,
    /// Whether the model has a transition memory, which the graphs leave out (then
    /// vitrine's `recommend()` ranks by more than the graphs compute).
    pub has_memory: bool,
    /// The reference the other engines are checked against (JSON).
    pub reference: serde_json::Value,
}

impl Export {
    /// Every `f32` tensor of the whole-model graph (a superset of the head's), for
    /// engines built by hand from the same weights (TF.js): a JSON manifest (`name`,
    /// `shape`, byte `offset` into the blob) and the little-endian `f32` blob.
    pub fn tensors(&self) -> (serde_json::Value, Vec<u8>) {
        let mut blob = Vec::new();
        let mut list = Vec::new();
        for t in self.full.initializers() {
            if let Data::F32(v) = &t.data {
                list.push(
                    serde_json::json!({ "name": t.name, "shape": t.dims, "offset": blob.len() }),
                );
                blob.extend(v.iter().flat_map(|x| x.to_le_bytes()));
            }
        }
        (serde_json::json!({ "tensors": list }), blob)
    }
}

/// Builds both graphs and the reference for `model`: for [`bench_history`] (20 events,
/// `now` = 1.7e9) the encoder input (`items`, `kinds`, `gaps`, `pos`), the user vector,
/// the head's logits for the first `min(N, 2048)` items and the top-`k` (indices and
/// logits, head only, no memory term) over the whole catalogue, computed by vitrine's
/// own CPU path (the model's encoder, the best CPU kernel).
pub fn export(model: &Model, k: usize) -> Result<Export, OnnxError> {
    let c = &model.config;
    let item_vectors = model.item_vectors();
    let head = head_graph(model, Catalogue::F32(&item_vectors));
    let full = full_graph(model, Catalogue::F32(&item_vectors), k)?;
    let int8 = model.item_vectors_int8();
    let head_int8 = head_graph(model, Catalogue::Int8(&int8));
    let full_int8 = full_graph(model, Catalogue::Int8(&int8), k)?;
    let now = 1.7e9;
    let history = bench_history(c.n_items, 20, now);
    let (input, _) = model.seq_input(&history);
    let len = input.len();
    let enc = model.encode_user(&item_vectors, &history);
    let query = model.user_query(&enc.u);
    let plan = model.head_plan(item_vectors);
    let mut logits = vec![0.0f32; c.n_items];
    // The best CPU kernel (each is tested against the scalar reference).
    CpuKernel::best().try_scores(&plan, &query, &mut logits)?;
    let top = crate::kernels::topk::top_k(&logits, k);
    let kinds: std::collections::BTreeMap<&str, usize> = EventKind::ALL
        .iter()
        .map(|&k| (kind_name(k), k.index()))
        .collect();
    let reference = serde_json::json!({
        "nItems": c.n_items,
        "dim": c.dim,
        "k": k,
        "config": c,
        "kinds": kinds,
        "history": history.iter().map(|e| serde_json::json!({
            "index": e.item, "kind": kind_name(e.kind), "atOffset": e.at - now })).collect::<Vec<_>>(),
        "seq": {
            "items": input.items,
            "kinds": input.kinds,
            "gaps": input.gaps,
            "pos": (0..len).map(|t| len - 1 - t).collect::<Vec<_>>(),
        },
        "u": enc.u,
        "logits": logits[..c.n_items.min(2048)],
        "top": top.iter().map(|&(i, s)| serde_json::json!({ "index": i, "logit": s })).collect::<Vec<_>>(),
    });
    Ok(Export {
        head,
        full,
        head_int8,
        full_int8,
        has_memory: model.memory.is_some(),
        reference,
    })
}

/// The event kind's name in the browser API (`view`, `cart`, `purchase`).
fn kind_name(k: EventKind) -> &'static str {
    match k {
        EventKind::View => "view",
        EventKind::Cart => "cart",
        EventKind::Purchase => "purchase",
    }
}
