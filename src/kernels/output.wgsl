// vitrine scoring head, last step: OUT_LANES threads per item.
//
//   logits[i] = sum_j H[i, j] * w_out[j] + b_out + sum_k V[i, k] * M[k, h]
//
// (H = last hidden layer, column h of M = the user vector u: the dot-product term.)
// The OUT_LANES threads of an item read its row in steps of OUT_LANES consecutive floats,
// so neighbouring threads touch neighbouring addresses (coalesced 32-byte segments rather
// than one row per thread), then add their partial sums through workgroup memory.
// The {{...}} placeholders are replaced by the Rust constants in gpu/mod.rs.
//
// Bindings (group 0; the Rust constant of each is in gpu/bindings.rs, and
// tests/kernels.rs checks these declarations against it):
//   0  OUTPUT_PARAMS   uniform             Params  shapes, strides, b_out (see struct)
//   1  OUTPUT_H        storage, read       H       [n x width], row stride ldh
//   2  OUTPUT_W_OUT    storage, read       w_out   [width]
//   3  OUTPUT_V        storage, read       V       [n x d] item vectors, row stride ldv:
//                                                  f32 bits, or int8 bytes packed 4 a
//                                                  word (v_format 1), or f16 halves
//                                                  packed 2 a word (v_format 2)
//   4  OUTPUT_M        storage, read       M       [d x (h + 1)] user query matrix
//   5  OUTPUT_LOGITS   storage, read_write logits  [n]
//   6  OUTPUT_V_SCALE  storage, read       v_scale [n] (int8: V[i, k] = v_scale[i] * q)
//
// Dispatch: x * y workgroups of OUT_WG threads, OUT_WG / OUT_LANES items each;
// item = (wg.y * groups_x + wg.x) * (OUT_WG / OUT_LANES) + local index / OUT_LANES.

struct Params {
    n: u32,
    d: u32,
    width: u32,
    ldh: u32,
    h: u32,
    ldm: u32,
    groups_x: u32,
    b_out: f32,
    ldv: u32,
    v_format: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params; // OUTPUT_PARAMS
@group(0) @binding(1) var<storage, read> H: array<f32>; // OUTPUT_H
@group(0) @binding(2) var<storage, read> w_out: array<f32>; // OUTPUT_W_OUT
@group(0) @binding(3) var<storage, read> V: array<u32>; // OUTPUT_V
@group(0) @binding(4) var<storage, read> M: array<f32>; // OUTPUT_M
@group(0) @binding(5) var<storage, read_write> logits: array<f32>; // OUTPUT_LOGITS
@group(0) @binding(6) var<storage, read> v_scale: array<f32>; // OUTPUT_V_SCALE

// Element e (= i * ldv + k) of V, of item i: f32 bits; or byte e of the packed int8
// rows (little-endian, sign-extended) times the item's scale; or half e of the packed
// f16 rows (low half first), widened exactly (as head.wgsl's load_a).
fn load_v(i: u32, e: u32) -> f32 {
    if (p.v_format == 1u) {
        let q = extractBits(bitcast<i32>(V[e >> 2u]), (e & 3u) * 8u, 8u);
        return v_scale[i] * f32(q);
    }
    if (p.v_format == 2u) {
        return unpack2x16float(V[e >> 1u])[e & 1u];
    }
    return bitcast<f32>(V[e]);
}

const OUT_WG: u32 = {{OUT_WG}}u;
const OUT_LANES: u32 = {{OUT_LANES}}u;
const ITEMS: u32 = OUT_WG / OUT_LANES;

var<workgroup> partial: array<f32, OUT_WG>;

@compute @workgroup_size({{OUT_WG}}, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let slot = li / OUT_LANES;
    let lane = li % OUT_LANES;
    let i = (wg.y * p.groups_x + wg.x) * ITEMS + slot;
    var s = 0.0;
    // No early return: every thread must reach the barriers.
    if (i < p.n) {
        for (var j = lane; j < p.width; j += OUT_LANES) {
            s = fma(H[i * p.ldh + j], w_out[j], s);
        }
        for (var k = lane; k < p.d; k += OUT_LANES) {
            s = fma(load_v(i, i * p.ldv + k), M[k * p.ldm + p.h], s);
        }
    }
    partial[li] = s;
    workgroupBarrier();
    // Tree sum over the item's OUT_LANES slots (a power of two).
    for (var off = OUT_LANES / 2u; off > 0u; off /= 2u) {
        if (lane < off) {
            partial[li] += partial[li + off];
        }
        workgroupBarrier();
    }
    if (lane == 0u && i < p.n) {
        logits[i] = partial[li] + p.b_out;
    }
}
