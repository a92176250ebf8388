// vitrine scoring head, last step: one thread per item.
//
//   logits[i] = sum_j H[i, j] * w_out[j] + b_out + sum_k V[i, k] * M[k, h]
//
// (H = last hidden layer, column h of M = the user vector u: the dot-product term.)
// The {{...}} placeholders are replaced by the Rust constants in gpu.rs.
//
// Bindings (group 0):
//   0  uniform             Params  shapes, strides, b_out (see struct)
//   1  storage, read       H       [n x width], row stride ldh
//   2  storage, read       w_out   [width]
//   3  storage, read       V       [n x d] item vectors
//   4  storage, read       M       [d x (h + 1)] user query matrix
//   5  storage, read_write logits  [n]
//
// Dispatch: x * y workgroups of OUT_WG threads; item = (wg.y * groups_x + wg.x) * OUT_WG
// + local index.

struct Params {
    n: u32,
    d: u32,
    width: u32,
    ldh: u32,
    h: u32,
    ldm: u32,
    groups_x: u32,
    b_out: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> H: array<f32>;
@group(0) @binding(2) var<storage, read> w_out: array<f32>;
@group(0) @binding(3) var<storage, read> V: array<f32>;
@group(0) @binding(4) var<storage, read> M: array<f32>;
@group(0) @binding(5) var<storage, read_write> logits: array<f32>;

const OUT_WG: u32 = {{OUT_WG}}u;

@compute @workgroup_size({{OUT_WG}}, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = (wg.y * p.groups_x + wg.x) * OUT_WG + li;
    if (i >= p.n) {
        return;
    }
    var s = 0.0;
    for (var j = 0u; j < p.width; j++) {
        s = fma(H[i * p.ldh + j], w_out[j], s);
    }
    var dot = 0.0;
    for (var k = 0u; k < p.d; k++) {
        dot = fma(V[i * p.d + k], M[k * p.ldm + p.h], dot);
    }
    logits[i] = s + p.b_out + dot;
}
