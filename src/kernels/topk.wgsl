// vitrine top-k, first stage: each workgroup selects the k best of its chunk of logits.
//
// Order (same as kernels::top_k on the CPU): higher score first, NaN below every number,
// ties to the lower index. Scores are mapped to order-preserving u32 keys; in workgroup
// memory key 0 marks "empty or already taken", NaN is key 1. The CPU merges the
// per-workgroup candidates. The {{...}} placeholders are replaced by the Rust constants
// in gpu/mod.rs.
//
// Bindings (group 0; the Rust constant of each is in gpu/bindings.rs, and
// tests/kernels.rs checks these declarations against it):
//   0  TOPK_PARAMS     uniform             Params      n, k (<= TOPK_MAX), groups_x
//   1  TOPK_LOGITS     storage, read       logits      [n]
//   2  TOPK_CANDIDATES storage, read_write candidates  [workgroups * k] of (item index, score bits);
//                                                      index 0xffffffff = no candidate
//
// Dispatch: x * y workgroups cover ceil(n / TOPK_CHUNK) chunks (chunk = wg.y * groups_x +
// wg.x), TOPK_WG threads each.

struct Params {
    n: u32,
    k: u32,
    groups_x: u32,
    pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params; // TOPK_PARAMS
@group(0) @binding(1) var<storage, read> logits: array<f32>; // TOPK_LOGITS
@group(0) @binding(2) var<storage, read_write> candidates: array<vec2<u32>>; // TOPK_CANDIDATES

const TOPK_WG: u32 = {{TOPK_WG}}u;
const TOPK_CHUNK: u32 = {{TOPK_CHUNK}}u;

var<workgroup> keys: array<u32, TOPK_CHUNK>;
var<workgroup> best_key: array<u32, TOPK_WG>;
var<workgroup> best_pos: array<u32, TOPK_WG>;

fn sort_key(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    if ((b & 0x7fffffffu) > 0x7f800000u) {
        return 1u; // NaN: below every number, above "empty"
    }
    if ((b & 0x80000000u) != 0u) {
        return ~b;
    }
    return b | 0x80000000u;
}

fn better(ka: u32, pa: u32, kb: u32, pb: u32) -> bool {
    return ka > kb || (ka == kb && pa < pb);
}

@compute @workgroup_size({{TOPK_WG}}, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let chunk = wg.y * p.groups_x + wg.x;
    let base = chunk * TOPK_CHUNK;
    for (var e = li; e < TOPK_CHUNK; e += TOPK_WG) {
        var key = 0u;
        if (base + e < p.n) {
            key = sort_key(logits[base + e]);
        }
        keys[e] = key;
    }
    workgroupBarrier();
    for (var r = 0u; r < p.k; r++) {
        var bk = 0u;
        var bp = 0xffffffffu;
        for (var e = li; e < TOPK_CHUNK; e += TOPK_WG) {
            let key = keys[e];
            if (key > bk) {
                bk = key;
                bp = e;
            }
        }
        best_key[li] = bk;
        best_pos[li] = bp;
        workgroupBarrier();
        for (var s = TOPK_WG / 2u; s > 0u; s = s / 2u) {
            if (li < s && better(best_key[li + s], best_pos[li + s], best_key[li], best_pos[li])) {
                best_key[li] = best_key[li + s];
                best_pos[li] = best_pos[li + s];
            }
            workgroupBarrier();
        }
        if (li == 0u) {
            var out = vec2<u32>(0xffffffffu, 0u);
            if (best_key[0] != 0u) {
                let pos = best_pos[0];
                keys[pos] = 0u;
                out = vec2<u32>(base + pos, bitcast<u32>(logits[base + pos]));
            }
            candidates[chunk * p.k + r] = out;
        }
        workgroupBarrier();
    }
}
