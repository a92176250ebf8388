// vitrine scoring head: tiled GEMM with a fused bias + ReLU epilogue.
//
//   C[r, c] = act( sum_k A[r, k] * B[k, c] + colbias[c] )
//
// Used for the first layer (A = item vectors V, B = M's first h columns, colbias = the
// user part a) and for each further Dense->ReLU layer (A = previous hidden, B = W,
// colbias = b). The {{...}} placeholders are replaced by the
// Rust constants in gpu/mod.rs at pipeline creation.
//
// Bindings (group 0; the Rust constant of each is in gpu/bindings.rs, and
// tests/kernels.rs checks these declarations against it):
//   0  HEAD_PARAMS     uniform             Params  shapes and strides (see struct)
//   1  HEAD_A          storage, read       A       [rows x k], row stride lda: f32 bits,
//                                                  or int8 bytes packed 4 a word
//                                                  (a_format 1), or f16 halves packed 2
//                                                  a word (a_format 2)
//   2  HEAD_B          storage, read       B       [k x ncols], row stride ldb
//   3  HEAD_COLBIAS    storage, read       colbias [ncols]
//   4  HEAD_C          storage, read_write C       [rows x ncols], row stride ldc
//   5  HEAD_A_SCALE    storage, read       a_scale [rows] (int8: A[r, k] = a_scale[r] * q)
//
// An int8 plan's item vectors stay int8 on the GPU: each A element is dequantised as it
// is staged, a_scale[r] * f32(q), the same product the CPU's dequantisation computes.
// An f16 plan's stay f16: each element is widened to f32 (exactly) as it is staged.
//
// Dispatch: x * y workgroups cover ceil(rows / TILE_M) row tiles (2-D for large
// catalogs: tile = wg.y * groups_x + wg.x); z covers ceil(ncols / TILE_N) column tiles.
// Each of the (TILE_N / REG_N) x (TILE_M / REG_M) threads keeps a REG_M x REG_N block of
// accumulators; A and B tiles of depth TILE_K are staged in workgroup memory.

struct Params {
    rows: u32,
    k: u32,
    ncols: u32,
    lda: u32,
    ldb: u32,
    ldc: u32,
    relu: u32,
    groups_x: u32,
    a_format: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params; // HEAD_PARAMS
@group(0) @binding(1) var<storage, read> A: array<u32>; // HEAD_A
@group(0) @binding(2) var<storage, read> B: array<f32>; // HEAD_B
@group(0) @binding(3) var<storage, read> colbias: array<f32>; // HEAD_COLBIAS
@group(0) @binding(4) var<storage, read_write> C: array<f32>; // HEAD_C
@group(0) @binding(5) var<storage, read> a_scale: array<f32>; // HEAD_A_SCALE

// Element e (= r * lda + k) of A, of row r: f32 bits; or byte e of the packed int8 rows
// (little-endian, sign-extended) times the row's scale; or half e of the packed f16 rows
// (low half first).
fn load_a(r: u32, e: u32) -> f32 {
    if (p.a_format == 1u) {
        let q = extractBits(bitcast<i32>(A[e >> 2u]), (e & 3u) * 8u, 8u);
        return a_scale[r] * f32(q);
    }
    if (p.a_format == 2u) {
        return unpack2x16float(A[e >> 1u])[e & 1u];
    }
    return bitcast<f32>(A[e]);
}

const TILE_M: u32 = {{TILE_M}}u;
const TILE_N: u32 = {{TILE_N}}u;
const TILE_K: u32 = {{TILE_K}}u;
const REG_M: u32 = {{REG_M}}u;
const REG_N: u32 = {{REG_N}}u;
const WG_X: u32 = TILE_N / REG_N;
const WG_Y: u32 = TILE_M / REG_M;
const THREADS: u32 = WG_X * WG_Y;

// Tiles stored k-major: As[kk * AS_STRIDE + r], Bs[kk * TILE_N + c]. The A tile is
// written transposed (consecutive threads: consecutive kk), so its stride is padded by
// one to spread those stores over memory banks.
const AS_STRIDE: u32 = TILE_M + 1u;
var<workgroup> As: array<f32, TILE_K * AS_STRIDE>;
var<workgroup> Bs: array<f32, TILE_K * TILE_N>;

@compute @workgroup_size({{WG_X}}, {{WG_Y}}, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let row0 = (wg.y * p.groups_x + wg.x) * TILE_M;
    let col0 = wg.z * TILE_N;
    let tid = lid.y * WG_X + lid.x;
    var acc: array<f32, REG_M * REG_N>;
    for (var i = 0u; i < REG_M * REG_N; i++) {
        acc[i] = 0.0;
    }
    for (var k0 = 0u; k0 < p.k; k0 += TILE_K) {
        for (var e = tid; e < TILE_M * TILE_K; e += THREADS) {
            let r = e / TILE_K;
            let kk = e % TILE_K;
            let gr = row0 + r;
            let gk = k0 + kk;
            var v = 0.0;
            if (gr < p.rows && gk < p.k) {
                v = load_a(gr, gr * p.lda + gk);
            }
            As[kk * AS_STRIDE + r] = v;
        }
        for (var e = tid; e < TILE_K * TILE_N; e += THREADS) {
            let kk = e / TILE_N;
            let c = e % TILE_N;
            let gk = k0 + kk;
            let gc = col0 + c;
            var v = 0.0;
            if (gk < p.k && gc < p.ncols) {
                v = B[gk * p.ldb + gc];
            }
            Bs[kk * TILE_N + c] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            var a: array<f32, REG_M>;
            var b: array<f32, REG_N>;
            for (var i = 0u; i < REG_M; i++) {
                a[i] = As[kk * AS_STRIDE + lid.y * REG_M + i];
            }
            for (var j = 0u; j < REG_N; j++) {
                b[j] = Bs[kk * TILE_N + lid.x * REG_N + j];
            }
            for (var i = 0u; i < REG_M; i++) {
                for (var j = 0u; j < REG_N; j++) {
                    acc[i * REG_N + j] = fma(a[i], b[j], acc[i * REG_N + j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < REG_M; i++) {
        let gr = row0 + lid.y * REG_M + i;
        if (gr >= p.rows) {
            break;
        }
        for (var j = 0u; j < REG_N; j++) {
            let gc = col0 + lid.x * REG_N + j;
            if (gc < p.ncols) {
                var x = acc[i * REG_N + j] + colbias[gc];
                if (p.relu != 0u) {
                    x = max(x, 0.0);
                }
                C[gr * p.ldc + gc] = x;
            }
        }
    }
}
