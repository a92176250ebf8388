// vitrine top-k, first stage: each workgroup selects the k best of its chunk of logits.
//
// Two modes (p.mode):
//   0  plain top-k of the raw logits (GpuScorer::top_k);
//   1  the shortlist (GpuScorer::shortlist, scalar reference kernels::shortlist): an item
//      is a candidate only if its category's rule allows it, it passes newOnly and the
//      price bounds and it is not in the sorted set `sparse`; its key is the blended
//      logit clean(clean(base) + boost[category] + new_boost * new) with -0.0 made +0.0.
//      The float additions run only for a non-zero offset; everything else is integer
//      work on the bits (see kernels/shortlist.rs, "Exactness on the GPU"). The same
//      dispatch gathers logits[sparse[s]] into `gathered` for every s < n_sparse.
//
// Order (same as kernels::top_k on the CPU): higher score first, NaN below every number,
// ties to the lower index. Scores are mapped to order-preserving u32 keys; in workgroup
// memory key 0 marks "empty, not a candidate or already taken", NaN is key 1. The CPU
// merges the per-workgroup candidates. The {{...}} placeholders are replaced by the Rust
// constants in gpu/mod.rs.
//
// Bindings (group 0; the Rust constant of each is in gpu/bindings.rs, and
// tests/kernels.rs checks these declarations against it):
//   0  TOPK_PARAMS     uniform             Params      n, k (<= TOPK_MAX), groups_x, mode, ...
//   1  TOPK_LOGITS     storage, read       logits      [n]
//   2  TOPK_CANDIDATES storage, read_write candidates  [chunks * k * 3] of (item index, logit
//                                                      bits, key value bits); index 0xffffffff
//                                                      = no candidate
//   3  TOPK_ATTRS      storage, read       attrs       [n] category | new << 31
//   4  TOPK_PRICES     storage, read       prices      [n] price keys (0 = no finite price)
//   5  TOPK_RULES      storage, read       rules       [n_rules] (allowed, boost bits)
//   6  TOPK_SPARSE     storage, read       sparse      [n_sparse] sorted item indices
//   7  TOPK_GATHERED   storage, read_write gathered    [n_sparse] logits of `sparse`
//
// Dispatch: x * y workgroups cover the chunks of TOPK_CHUNK logits (chunk = wg.y *
// groups_x + wg.x; workgroups past n_chunks do nothing), TOPK_WG threads each.

struct Params {
    n: u32,
    k: u32,
    groups_x: u32,
    mode: u32,
    n_chunks: u32,
    n_sparse: u32,
    n_rules: u32,
    flags: u32,
    price_lo: u32,
    price_hi: u32,
    new_boost: u32,
    pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params; // TOPK_PARAMS
@group(0) @binding(1) var<storage, read> logits: array<f32>; // TOPK_LOGITS
@group(0) @binding(2) var<storage, read_write> candidates: array<u32>; // TOPK_CANDIDATES
@group(0) @binding(3) var<storage, read> attrs: array<u32>; // TOPK_ATTRS
@group(0) @binding(4) var<storage, read> prices: array<u32>; // TOPK_PRICES
@group(0) @binding(5) var<storage, read> rules: array<vec2<u32>>; // TOPK_RULES
@group(0) @binding(6) var<storage, read> sparse: array<u32>; // TOPK_SPARSE
@group(0) @binding(7) var<storage, read_write> gathered: array<f32>; // TOPK_GATHERED

const TOPK_WG: u32 = {{TOPK_WG}}u;
const TOPK_CHUNK: u32 = {{TOPK_CHUNK}}u;
const NEG_INF: u32 = 0xff800000u;
const FLAG_NEW_ONLY: u32 = 1u;
const FLAG_PRICE_LO: u32 = 2u;
const FLAG_PRICE_HI: u32 = 4u;

var<workgroup> keys: array<u32, TOPK_CHUNK>;
var<workgroup> vals: array<u32, TOPK_CHUNK>;
var<workgroup> best_key: array<u32, TOPK_WG>;
var<workgroup> best_pos: array<u32, TOPK_WG>;

fn is_nan_bits(b: u32) -> bool {
    return (b & 0x7fffffffu) > 0x7f800000u;
}

fn sort_key(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    if (is_nan_bits(b)) {
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

fn in_sparse(i: u32) -> bool {
    var lo = 0u;
    var hi = p.n_sparse;
    while (lo < hi) {
        let mid = (lo + hi) / 2u;
        let s = sparse[mid];
        if (s == i) {
            return true;
        }
        if (s < i) {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    return false;
}

// Shortlist mode: the blended logit's bits of item i, or 0xffffffff (a NaN pattern the
// blend never produces) when i is not a candidate.
fn blended_bits(i: u32) -> u32 {
    let none = 0xffffffffu;
    let a = attrs[i];
    let cat = a & 0x7fffffffu;
    let is_new = (a >> 31u) != 0u;
    if (cat >= p.n_rules) {
        return none;
    }
    let rule = rules[cat];
    if (rule.x == 0u || ((p.flags & FLAG_NEW_ONLY) != 0u && !is_new)) {
        return none;
    }
    if ((p.flags & (FLAG_PRICE_LO | FLAG_PRICE_HI)) != 0u) {
        let pk = prices[i];
        if (pk == 0u || ((p.flags & FLAG_PRICE_LO) != 0u && pk < p.price_lo)
            || ((p.flags & FLAG_PRICE_HI) != 0u && pk > p.price_hi)) {
            return none;
        }
    }
    if (in_sparse(i)) {
        return none;
    }
    var b = bitcast<u32>(logits[i]);
    if (is_nan_bits(b)) {
        b = NEG_INF;
    }
    var nb = 0u;
    if (is_new) {
        nb = p.new_boost;
    }
    if ((rule.y & 0x7fffffffu) != 0u || (nb & 0x7fffffffu) != 0u) {
        b = bitcast<u32>((bitcast<f32>(b) + bitcast<f32>(rule.y)) + bitcast<f32>(nb));
    }
    if (is_nan_bits(b)) {
        b = NEG_INF;
    }
    if (b == 0x80000000u) {
        b = 0u;
    }
    return b;
}

@compute @workgroup_size({{TOPK_WG}}, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let chunk = wg.y * p.groups_x + wg.x;
    // Uniform per workgroup: a 2-D dispatch may have a few workgroups past the end.
    if (chunk >= p.n_chunks) {
        return;
    }
    let base = chunk * TOPK_CHUNK;
    if (p.mode == 1u) {
        for (var s = chunk * TOPK_WG + li; s < p.n_sparse; s += p.n_chunks * TOPK_WG) {
            gathered[s] = logits[sparse[s]];
        }
    }
    for (var e = li; e < TOPK_CHUNK; e += TOPK_WG) {
        var key = 0u;
        var val = 0u;
        if (base + e < p.n) {
            if (p.mode == 1u) {
                val = blended_bits(base + e);
                if (val != 0xffffffffu) {
                    key = sort_key(bitcast<f32>(val));
                }
            } else {
                val = bitcast<u32>(logits[base + e]);
                key = sort_key(bitcast<f32>(val));
            }
        }
        keys[e] = key;
        vals[e] = val;
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
            let slot = (chunk * p.k + r) * 3u;
            var out = vec3<u32>(0xffffffffu, 0u, 0u);
            if (best_key[0] != 0u) {
                let pos = best_pos[0];
                keys[pos] = 0u;
                out = vec3<u32>(base + pos, bitcast<u32>(logits[base + pos]), vals[pos]);
            }
            candidates[slot] = out.x;
            candidates[slot + 1u] = out.y;
            candidates[slot + 2u] = out.z;
        }
        workgroupBarrier();
    }
}
