//! The ONNX export (`vitrine::onnx`): the protobuf it writes is decoded here by a small
//! independent reader and the graphs are *run* by a small independent interpreter (f64,
//! numpy broadcasting), so the graphs' math is checked against vitrine's own scoring —
//! the head's logits for every item, the whole model's user vector and top-k. That ONNX
//! Runtime Web reads the same files and agrees is the browser smoke test
//! (`tests/e2e/engines.mjs`).
#![cfg(not(target_arch = "wasm32"))]
// Index loops on purpose: the interpreter mirrors ONNX's shape and stride arithmetic.
#![allow(clippy::needless_range_loop)]
mod common;

use std::collections::HashMap;

use common::fixtures::tiny_weight_file;
use vitrine::model::Model;
use vitrine::onnx::{export, full_graph, head_graph, Catalogue, OnnxError, OPSET};

// ------------------------------------------------------------------ protobuf reader

/// One decoded field: varint, fixed32 or length-delimited bytes.
#[derive(Debug, Clone)]
enum Val {
    Int(u64),
    F32(f32),
    Bytes(Vec<u8>),
}

fn varint(b: &[u8], i: &mut usize) -> u64 {
    let (mut v, mut s) = (0u64, 0);
    loop {
        let x = b[*i];
        *i += 1;
        v |= ((x & 0x7f) as u64) << s;
        if x < 0x80 {
            return v;
        }
        s += 7;
    }
}

/// All fields of a message, in order.
fn fields(b: &[u8]) -> Vec<(u32, Val)> {
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let key = varint(b, &mut i);
        let (f, w) = ((key >> 3) as u32, key & 7);
        let v = match w {
            0 => Val::Int(varint(b, &mut i)),
            5 => {
                let x = f32::from_le_bytes(b[i..i + 4].try_into().unwrap());
                i += 4;
                Val::F32(x)
            }
            2 => {
                let n = varint(b, &mut i) as usize;
                i += n;
                Val::Bytes(b[i - n..i].to_vec())
            }
            _ => panic!("unexpected wire type {w}"),
        };
        out.push((f, v));
    }
    out
}

fn get(fs: &[(u32, Val)], f: u32) -> impl Iterator<Item = &Val> {
    fs.iter().filter(move |(k, _)| *k == f).map(|(_, v)| v)
}
fn bytes(v: &Val) -> &[u8] {
    match v {
        Val::Bytes(b) => b,
        _ => panic!("expected bytes"),
    }
}
fn string(v: &Val) -> String {
    String::from_utf8(bytes(v).to_vec()).unwrap()
}
fn int(v: &Val) -> i64 {
    match v {
        Val::Int(x) => *x as i64,
        _ => panic!("expected varint"),
    }
}

/// A tensor value: shape and data (every element type as f64).
#[derive(Debug, Clone, PartialEq)]
struct T {
    shape: Vec<usize>,
    data: Vec<f64>,
}

fn tensor(b: &[u8]) -> (String, T) {
    let fs = fields(b);
    let shape: Vec<usize> = get(&fs, 1).map(|v| int(v) as usize).collect();
    let dtype = int(get(&fs, 2).next().unwrap());
    let name = get(&fs, 8).next().map(string).unwrap_or_default();
    let raw = bytes(get(&fs, 9).next().expect("raw_data"));
    let data: Vec<f64> = match dtype {
        1 => raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        7 => raw
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        3 => raw.iter().map(|&b| b as i8 as f64).collect(),
        t => panic!("unexpected data type {t}"),
    };
    assert_eq!(data.len(), shape.iter().product::<usize>(), "{name}");
    (name, T { shape, data })
}

#[derive(Debug)]
struct Node {
    op: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    ints: HashMap<String, Vec<i64>>,
    floats: HashMap<String, f32>,
    tensors: HashMap<String, T>,
}

#[derive(Debug)]
struct Decoded {
    ir_version: i64,
    opset: Vec<(String, i64)>,
    nodes: Vec<Node>,
    inits: Vec<(String, T)>,
    inputs: Vec<String>,
    outputs: Vec<String>,
}

fn decode(model: &[u8]) -> Decoded {
    let m = fields(model);
    let ir_version = int(get(&m, 1).next().unwrap());
    let opset = get(&m, 8)
        .map(|v| {
            let o = fields(bytes(v));
            let domain = get(&o, 1).next().map(string).unwrap_or_default();
            let version = int(get(&o, 2).next().unwrap());
            (domain, version)
        })
        .collect();
    let g = fields(bytes(get(&m, 7).next().expect("graph")));
    let nodes = get(&g, 1)
        .map(|v| {
            let n = fields(bytes(v));
            let mut node = Node {
                op: string(get(&n, 4).next().unwrap()),
                inputs: get(&n, 1).map(string).collect(),
                outputs: get(&n, 2).map(string).collect(),
                ints: HashMap::new(),
                floats: HashMap::new(),
                tensors: HashMap::new(),
            };
            for a in get(&n, 5) {
                let a = fields(bytes(a));
                let name = string(get(&a, 1).next().unwrap());
                let ty = int(get(&a, 20).next().unwrap());
                match ty {
                    1 => match get(&a, 2).next().unwrap() {
                        Val::F32(x) => {
                            node.floats.insert(name, *x);
                        }
                        _ => panic!("float attribute"),
                    },
                    2 => {
                        node.ints
                            .insert(name, vec![int(get(&a, 3).next().unwrap())]);
                    }
                    7 => {
                        node.ints.insert(name, get(&a, 8).map(int).collect());
                    }
                    4 => {
                        node.tensors
                            .insert(name, tensor(bytes(get(&a, 5).next().unwrap())).1);
                    }
                    t => panic!("attribute type {t}"),
                }
            }
            node
        })
        .collect();
    let name_of = |v: &Val| string(get(&fields(bytes(v)), 1).next().unwrap());
    Decoded {
        ir_version,
        opset,
        nodes,
        inits: get(&g, 5).map(|v| tensor(bytes(v))).collect(),
        inputs: get(&g, 11).map(name_of).collect(),
        outputs: get(&g, 12).map(name_of).collect(),
    }
}

// ------------------------------------------------------------------ interpreter

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Elementwise binary op with numpy broadcasting.
fn broadcast(a: &T, b: &T, f: impl Fn(f64, f64) -> f64) -> T {
    let r = a.shape.len().max(b.shape.len());
    let pad = |s: &[usize]| {
        let mut p = vec![1; r - s.len()];
        p.extend_from_slice(s);
        p
    };
    let (sa, sb) = (pad(&a.shape), pad(&b.shape));
    let shape: Vec<usize> = (0..r)
        .map(|i| {
            assert!(
                sa[i] == sb[i] || sa[i] == 1 || sb[i] == 1,
                "broadcast {sa:?} {sb:?}"
            );
            sa[i].max(sb[i])
        })
        .collect();
    let (ta, tb, to) = (strides(&sa), strides(&sb), strides(&shape));
    let n = shape.iter().product();
    let data = (0..n)
        .map(|flat| {
            let (mut ia, mut ib) = (0, 0);
            for d in 0..r {
                let c = flat / to[d] % shape[d];
                ia += if sa[d] == 1 { 0 } else { c * ta[d] };
                ib += if sb[d] == 1 { 0 } else { c * tb[d] };
            }
            f(a.data[ia], b.data[ib])
        })
        .collect();
    T { shape, data }
}

/// numpy matmul for the ranks the graphs use (1-D and 2-D operands; batched 3-D).
fn matmul(a: &T, b: &T) -> T {
    let (a2, squeeze_a) = if a.shape.len() == 1 {
        (vec![1, a.shape[0]], true)
    } else {
        (a.shape.clone(), false)
    };
    let (b2, squeeze_b) = if b.shape.len() == 1 {
        (vec![b.shape[0], 1], true)
    } else {
        (b.shape.clone(), false)
    };
    let batch = if a2.len() == 3 { a2[0] } else { 1 };
    let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let n = b2[b2.len() - 1];
    assert_eq!(k, b2[b2.len() - 2], "matmul {:?} {:?}", a.shape, b.shape);
    let mut data = vec![0.0; batch * m * n];
    for bt in 0..batch {
        let (ao, bo) = (
            if a2.len() == 3 { bt * m * k } else { 0 },
            if b2.len() == 3 { bt * k * n } else { 0 },
        );
        for i in 0..m {
            for j in 0..n {
                data[bt * m * n + i * n + j] = (0..k)
                    .map(|p| a.data[ao + i * k + p] * b.data[bo + p * n + j])
                    .sum();
            }
        }
    }
    let mut shape = if a2.len() == 3 {
        vec![batch, m, n]
    } else {
        vec![m, n]
    };
    if squeeze_b {
        shape.pop();
    }
    if squeeze_a {
        let l = shape.len();
        shape.remove(l - if squeeze_b { 1 } else { 2 });
    }
    T { shape, data }
}

fn run(g: &Decoded, feeds: Vec<(&str, T)>) -> HashMap<String, T> {
    let mut env: HashMap<String, T> = g.inits.iter().cloned().collect();
    for (n, t) in feeds {
        env.insert(n.to_string(), t);
    }
    for node in &g.nodes {
        let x = |i: usize| -> &T {
            env.get(&node.inputs[i]).unwrap_or_else(|| {
                panic!(
                    "{} reads {:?} before it is defined",
                    node.op, node.inputs[i]
                )
            })
        };
        let iattr = |n: &str| node.ints.get(n).map(|v| v[0]);
        let outs: Vec<T> = match node.op.as_str() {
            "Add" => vec![broadcast(x(0), x(1), |a, b| a + b)],
            "Sub" => vec![broadcast(x(0), x(1), |a, b| a - b)],
            "Mul" => vec![broadcast(x(0), x(1), |a, b| a * b)],
            "Neg" => vec![T {
                shape: x(0).shape.clone(),
                data: x(0).data.iter().map(|v| -v).collect(),
            }],
            "Relu" => vec![T {
                shape: x(0).shape.clone(),
                data: x(0).data.iter().map(|v| v.max(0.0)).collect(),
            }],
            "Sigmoid" => vec![T {
                shape: x(0).shape.clone(),
                data: x(0).data.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect(),
            }],
            "MatMul" => vec![matmul(x(0), x(1))],
            // ONNX's definition: uint8 with the range widened to hold 0, round half to even.
            "DynamicQuantizeLinear" => {
                let t = x(0);
                let lo = t.data.iter().cloned().fold(0.0, f64::min) as f32;
                let hi = t.data.iter().cloned().fold(0.0, f64::max) as f32;
                let scale = (hi - lo) / 255.0;
                let zp = (-lo / scale).round_ties_even().clamp(0.0, 255.0);
                let data = t
                    .data
                    .iter()
                    .map(|&v| ((v as f32 / scale).round_ties_even() + zp).clamp(0.0, 255.0) as f64)
                    .collect();
                let scalar = |v: f64| T {
                    shape: vec![],
                    data: vec![v],
                };
                vec![
                    T {
                        shape: t.shape.clone(),
                        data,
                    },
                    scalar(scale as f64),
                    scalar(zp as f64),
                ]
            }
            "MatMulInteger" => {
                assert_eq!(node.inputs.len(), 3, "a zero point, none for the int8 side");
                let (a, zp) = (x(0), x(2).data[0]);
                assert!(a
                    .data
                    .iter()
                    .all(|&v| (0.0..=255.0).contains(&v) && v.fract() == 0.0));
                assert!(x(1).data.iter().all(|&v| (-128.0..=127.0).contains(&v)));
                let shifted = T {
                    shape: a.shape.clone(),
                    data: a.data.iter().map(|&v| v - zp).collect(),
                };
                vec![matmul(&shifted, x(1))]
            }
            "Cast" => {
                assert_eq!(iattr("to"), Some(1), "to float");
                vec![x(0).clone()]
            }
            "Reshape" => {
                let (src, spec) = (x(0), x(1));
                let total: usize = src.shape.iter().product();
                let mut shape: Vec<i64> = spec
                    .data
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        if v == 0.0 {
                            src.shape[i] as i64
                        } else {
                            v as i64
                        }
                    })
                    .collect();
                let known: i64 = shape.iter().filter(|&&v| v > 0).product();
                for v in shape.iter_mut() {
                    if *v == -1 {
                        *v = total as i64 / known;
                    }
                }
                vec![T {
                    shape: shape.iter().map(|&v| v as usize).collect(),
                    data: src.data.clone(),
                }]
            }
            "Concat" => {
                let parts: Vec<&T> = (0..node.inputs.len()).map(x).collect();
                let r = parts[0].shape.len();
                let axis = iattr("axis").unwrap().rem_euclid(r as i64) as usize;
                let outer: usize = parts[0].shape[..axis].iter().product();
                let mut shape = parts[0].shape.clone();
                shape[axis] = parts.iter().map(|p| p.shape[axis]).sum();
                let mut data = Vec::new();
                for o in 0..outer {
                    for p in &parts {
                        let chunk: usize = p.shape[axis..].iter().product();
                        data.extend_from_slice(&p.data[o * chunk..(o + 1) * chunk]);
                    }
                }
                vec![T { shape, data }]
            }
            "Gather" if iattr("axis") == Some(1) => {
                let (src, idx) = (x(0), x(1));
                assert_eq!((src.shape.len(), idx.shape.len()), (2, 1));
                let (rows, cols) = (src.shape[0], src.shape[1]);
                let mut data = Vec::new();
                for r in 0..rows {
                    for &i in &idx.data {
                        data.push(src.data[r * cols + i as usize]);
                    }
                }
                vec![T {
                    shape: vec![rows, idx.data.len()],
                    data,
                }]
            }
            "Gather" => {
                assert_eq!(iattr("axis"), Some(0));
                let (src, idx) = (x(0), x(1));
                let row: usize = src.shape[1..].iter().product();
                let mut data = Vec::new();
                for &i in &idx.data {
                    let i = if i < 0.0 {
                        src.shape[0] as i64 + i as i64
                    } else {
                        i as i64
                    } as usize;
                    data.extend_from_slice(&src.data[i * row..(i + 1) * row]);
                }
                let mut shape = idx.shape.clone();
                shape.extend_from_slice(&src.shape[1..]);
                vec![T { shape, data }]
            }
            "Shape" => vec![T {
                shape: vec![x(0).shape.len()],
                data: x(0).shape.iter().map(|&v| v as f64).collect(),
            }],
            "ConstantOfShape" => {
                let shape: Vec<usize> = x(0).data.iter().map(|&v| v as usize).collect();
                let v = node.tensors["value"].data[0];
                vec![T {
                    data: vec![v; shape.iter().product()],
                    shape,
                }]
            }
            "Trilu" => {
                assert_eq!(iattr("upper"), Some(0));
                let t = x(0);
                let (r, c) = (t.shape[0], t.shape[1]);
                let data = (0..r * c)
                    .map(|f| if f % c <= f / c { t.data[f] } else { 0.0 })
                    .collect();
                vec![T {
                    shape: t.shape.clone(),
                    data,
                }]
            }
            "Transpose" => {
                let t = x(0);
                let perm: Vec<usize> = node.ints["perm"].iter().map(|&p| p as usize).collect();
                let shape: Vec<usize> = perm.iter().map(|&p| t.shape[p]).collect();
                let (si, so) = (strides(&t.shape), strides(&shape));
                let data = (0..t.data.len())
                    .map(|f| {
                        let mut src = 0;
                        for d in 0..shape.len() {
                            src += (f / so[d] % shape[d]) * si[perm[d]];
                        }
                        t.data[src]
                    })
                    .collect();
                vec![T { shape, data }]
            }
            "Softmax" => {
                assert_eq!(iattr("axis"), Some(-1));
                let t = x(0);
                let w = *t.shape.last().unwrap();
                let mut data = t.data.clone();
                for row in data.chunks_mut(w) {
                    let mx = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    row.iter_mut().for_each(|v| *v = (*v - mx).exp());
                    let s: f64 = row.iter().sum();
                    row.iter_mut().for_each(|v| *v /= s);
                }
                vec![T {
                    shape: t.shape.clone(),
                    data,
                }]
            }
            "LayerNormalization" => {
                assert_eq!(iattr("axis"), Some(-1));
                let eps = node.floats["epsilon"] as f64;
                let (t, g, b) = (x(0), x(1), x(2));
                let w = *t.shape.last().unwrap();
                let mut data = t.data.clone();
                for row in data.chunks_mut(w) {
                    let mean = row.iter().sum::<f64>() / w as f64;
                    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / w as f64;
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = (*v - mean) / (var + eps).sqrt() * g.data[j] + b.data[j];
                    }
                }
                vec![T {
                    shape: t.shape.clone(),
                    data,
                }]
            }
            "TopK" => {
                assert_eq!(
                    (iattr("axis"), iattr("largest"), iattr("sorted")),
                    (Some(-1), Some(1), Some(1))
                );
                let (t, k) = (x(0), x(1).data[0] as usize);
                let mut idx: Vec<usize> = (0..t.data.len()).collect();
                idx.sort_by(|&a, &b| t.data[b].total_cmp(&t.data[a]).then(a.cmp(&b)));
                idx.truncate(k);
                vec![
                    T {
                        shape: vec![k],
                        data: idx.iter().map(|&i| t.data[i]).collect(),
                    },
                    T {
                        shape: vec![k],
                        data: idx.iter().map(|&i| i as f64).collect(),
                    },
                ]
            }
            op => panic!("the interpreter has no {op}"),
        };
        assert_eq!(outs.len(), node.outputs.len(), "{}", node.op);
        for (name, t) in node.outputs.iter().zip(outs) {
            env.insert(name.clone(), t);
        }
    }
    env
}

fn close(what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-4 * want.abs().max(1.0),
        "{what}: graph {got}, vitrine {want}"
    );
}

fn tiny_model(n: usize) -> Model {
    Model::from_weights(&tiny_weight_file(n, 3)).unwrap()
}

/// Two user vectors, one with negative components (the u·v term goes through
/// relu(x) - relu(-x)).
fn test_users(d: usize) -> [Vec<f32>; 2] {
    [
        (0..d).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.2).collect(),
        (0..d).map(|i| (i as f32 * 0.37).sin()).collect(),
    ]
}

/// A head graph's logits for user vector `u`.
fn run_head(g: &Decoded, u: &[f32]) -> T {
    let feed = T {
        shape: vec![u.len()],
        data: u.iter().map(|&x| x as f64).collect(),
    };
    run(g, vec![("u", feed)]).remove("logits").unwrap()
}

/// Encoder input `k` (`items`, `kinds`, `gaps`, `pos`) of the export's reference.
fn reference_seq(r: &serde_json::Value, k: &str) -> T {
    let xs: Vec<f64> = r["seq"][k]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    T {
        shape: vec![xs.len()],
        data: xs,
    }
}

/// A whole-model graph run on the reference's encoder input, and the reference's top-k
/// as `(index, logit)`.
fn run_reference(g: &Decoded, r: &serde_json::Value) -> (HashMap<String, T>, Vec<(f64, f64)>) {
    let feeds = [
        ("in.items", "items"),
        ("in.kinds", "kinds"),
        ("in.gaps", "gaps"),
        ("in.pos", "pos"),
    ]
    .map(|(name, k)| (name, reference_seq(r, k)))
    .into();
    let top = r["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["index"].as_f64().unwrap(), t["logit"].as_f64().unwrap()))
        .collect();
    (run(g, feeds), top)
}

// ------------------------------------------------------------------ tests

#[test]
fn the_head_graph_computes_vitrines_logits_for_every_item() {
    let model = tiny_model(37);
    let v = model.item_vectors();
    let bytes = head_graph(&model, Catalogue::F32(&v)).to_bytes().unwrap();
    let g = decode(&bytes);
    assert_eq!(g.ir_version, 8);
    assert_eq!(g.opset, vec![(String::new(), OPSET as i64)]);
    assert_eq!(
        (g.inputs.as_slice(), g.outputs.as_slice()),
        (&["u".to_string()][..], &["logits".to_string()][..])
    );
    let items = &g.inits.iter().find(|(n, _)| n == "items").unwrap().1;
    assert_eq!(items.shape, vec![37, model.config.dim]);
    assert!(
        items.data.iter().zip(&v).all(|(a, &b)| *a == b as f64),
        "item vectors copied exactly"
    );
    let d = model.config.dim;
    for u in test_users(d) {
        let logits = &run_head(&g, &u);
        assert_eq!(logits.shape, vec![37]);
        for i in 0..37 {
            close(
                &format!("item {i}"),
                logits.data[i],
                model.score_reference(&v, &u, i) as f64,
            );
        }
    }
}

/// A whole-model graph, decoded, with its inputs and outputs checked.
fn whole_model_graph(graph: &vitrine::onnx::Graph) -> Decoded {
    let g = decode(&graph.to_bytes().unwrap());
    assert_eq!(g.inputs, ["in.items", "in.kinds", "in.gaps", "in.pos"]);
    assert_eq!(g.outputs, ["scores", "indices"]);
    g
}

#[test]
fn the_whole_model_graph_matches_vitrines_encoder_and_top_k() {
    check_whole_model_graph(tiny_model(50));
}

/// The same with gated residuals and SwiGLU feed-forward layers (LiGR blocks), their
/// gates moved off their initial values.
#[test]
fn the_whole_model_graph_of_gated_swiglu_blocks_matches_vitrines() {
    let model = common::fixtures::ligr_model(&tiny_model(50), 5, 1.0);
    let g = whole_model_graph(&export(&model, 7).unwrap().full);
    assert_eq!(
        g.nodes.iter().filter(|n| n.op == "Sigmoid").count(),
        3 * model.config.n_blocks,
        "two gates and one SwiGLU per block"
    );
    check_whole_model_graph(model);
}

fn check_whole_model_graph(model: Model) {
    let ex = export(&model, 7).unwrap();
    let g = whole_model_graph(&ex.full);
    assert_eq!(
        g.inits.iter().filter(|(n, _)| n == "items").count(),
        1,
        "one copy of the item vectors"
    );
    let r = &ex.reference;
    let seq = |k: &str| reference_seq(r, k);
    assert_eq!(seq("items").data.len(), 20);
    assert!(
        seq("gaps").data[1..]
            .iter()
            .all(|&gp| gp == seq("gaps").data[1]),
        "one-hour gaps"
    );
    let (env, top) = run_reference(&g, r);
    assert_eq!(top.len(), 7);
    assert_eq!(
        env["indices"].data,
        top.iter().map(|t| t.0).collect::<Vec<_>>(),
        "top-k items"
    );
    for (j, (&got, want)) in env["scores"].data.iter().zip(&top).enumerate() {
        close(&format!("top {j}"), got, want.1);
    }
    // The reference itself is vitrine's scalar reference at the encoded user.
    let u: Vec<f32> = r["u"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let v = model.item_vectors();
    close(
        "reference logit",
        top[0].1,
        model.score_reference(&v, &u, top[0].0 as usize) as f64,
    );
}

#[test]
fn tensors_for_other_engines_are_the_graphs_initializers() {
    let model = tiny_model(20);
    let ex = export(&model, 5).unwrap();
    let (manifest, blob) = ex.tensors();
    let g = decode(&ex.full.to_bytes().unwrap());
    let list = manifest["tensors"].as_array().unwrap();
    let floats: Vec<&(String, T)> = g
        .inits
        .iter()
        .filter(|(n, _)| {
            !["shape.col", "shape.heads", "shape.merge", "last", "k"].contains(&n.as_str())
        })
        .collect();
    assert_eq!(list.len(), floats.len());
    for (entry, (name, t)) in list.iter().zip(floats) {
        assert_eq!(entry["name"], name.as_str());
        let off = entry["offset"].as_u64().unwrap() as usize;
        let got: Vec<f64> = blob[off..off + 4 * t.data.len()]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect();
        assert_eq!(&got, &t.data, "{name}");
    }
}

#[test]
fn a_k_outside_the_catalogue_is_an_error() {
    let model = tiny_model(10);
    let v = model.item_vectors();
    assert!(matches!(
        full_graph(&model, Catalogue::F32(&v), 0),
        Err(OnnxError::BadK { k: 0, n_items: 10 })
    ));
    assert!(matches!(
        full_graph(&model, Catalogue::F32(&v), 11),
        Err(OnnxError::BadK { k: 11, .. })
    ));
    assert!(full_graph(&model, Catalogue::F32(&v), 10).is_ok());
}

/// The int8 graphs' catalogue is vitrine's own int8 item table, transposed.
fn assert_int8_catalogue(g: &Decoded, model: &Model) {
    let (n, d) = (model.config.n_items, model.config.dim);
    let q = model.item_vectors_int8();
    let init = |name: &str| &g.inits.iter().find(|(n, _)| n == name).unwrap().1;
    let (qt, scale) = (init("items.qt"), init("items.scale"));
    assert_eq!(
        (qt.shape.as_slice(), scale.shape.as_slice()),
        (&[d, n][..], &[n][..])
    );
    for i in 0..n {
        for k in 0..d {
            assert_eq!(
                qt.data[k * n + i],
                q.row(i)[k] as f64,
                "item {i} column {k}"
            );
        }
        assert_eq!(scale.data[i], q.scale[i] as f64, "scale {i}");
    }
    assert!(
        !g.inits.iter().any(|(n, _)| n == "items"),
        "no f32 copy of the catalogue"
    );
}

/// How far an int8 logit may be from the f32 one: the item vectors and the per-request
/// matrix are each rounded to 8 bits (relative steps of 1/127 and 1/255 of their
/// largest value), through a small MLP.
const INT8_LOGIT_TOL: f64 = 0.01;

#[test]
fn the_int8_head_graph_scores_vitrines_int8_catalogue_close_to_f32() {
    let model = tiny_model(41);
    let v = model.item_vectors();
    let q = model.item_vectors_int8();
    let g = decode(&head_graph(&model, Catalogue::Int8(&q)).to_bytes().unwrap());
    assert_eq!(
        (g.inputs.as_slice(), g.outputs.as_slice()),
        (&["u".to_string()][..], &["logits".to_string()][..])
    );
    assert_int8_catalogue(&g, &model);
    let ops: Vec<&str> = g.nodes.iter().map(|n| n.op.as_str()).collect();
    for op in ["DynamicQuantizeLinear", "MatMulInteger", "Cast"] {
        assert_eq!(
            ops.iter().filter(|&&o| o == op).count(),
            1,
            "one {op}: {ops:?}"
        );
    }
    let d = model.config.dim;
    let mut worst = 0.0f64;
    for u in test_users(d) {
        let logits = &run_head(&g, &u);
        assert_eq!(logits.shape, vec![41]);
        let want: Vec<f64> = (0..41)
            .map(|i| model.score_reference(&v, &u, i) as f64)
            .collect();
        let spread = want
            .iter()
            .cloned()
            .fold(0.0, |m: f64, x| m.max(x.abs()))
            .max(1.0);
        for i in 0..41 {
            let err = (logits.data[i] - want[i]).abs() / spread;
            worst = worst.max(err);
            assert!(
                err <= INT8_LOGIT_TOL,
                "item {i}: graph {}, vitrine f32 {}",
                logits.data[i],
                want[i]
            );
        }
        // Not the f32 graph by accident: quantisation moves every logit a little.
        assert!(logits.data.iter().zip(&want).any(|(a, b)| a != b));
    }
    eprintln!("int8 head: worst logit error {worst:.4} of the largest |logit|");
}

#[test]
fn the_int8_whole_model_graph_gathers_the_history_from_the_int8_catalogue() {
    let model = tiny_model(50);
    let ex = export(&model, 7).unwrap();
    let g = whole_model_graph(&ex.full_int8);
    assert_int8_catalogue(&g, &model);
    let names: Vec<&str> = g.inits.iter().map(|(n, _)| n.as_str()).collect();
    for (i, n) in names.iter().enumerate() {
        assert!(!names[..i].contains(n), "initializer {n} twice");
    }
    let r = &ex.reference;
    let (env, top) = run_reference(&g, r);
    let spread = top.iter().fold(1.0f64, |m, t| m.max(t.1.abs()));
    let got = &env["indices"].data;
    assert_eq!(got.len(), 7);
    let shared = got
        .iter()
        .filter(|i| top.iter().any(|t| t.0 == **i))
        .count();
    assert!(
        shared >= 5,
        "int8 top-7 {got:?} shares {shared} with f32's {top:?}"
    );
    for (j, &s) in env["scores"].data.iter().enumerate() {
        let i = got[j];
        if let Some(t) = top.iter().find(|t| t.0 == i) {
            assert!(
                (s - t.1).abs() / spread <= INT8_LOGIT_TOL,
                "item {i}: int8 {s}, f32 {}",
                t.1
            );
        }
    }
}
