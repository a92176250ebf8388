//! Browser parity tests of the scoring-head kernels (headless Chromium via
//! `wasm-pack test --headless --chrome -- --test web_kernels`): wasm SIMD128 against the
//! scalar reference on odd shapes, and the WebGPU path (`GpuScorer::new`) against scalar.
//! The GPU test skips only when `navigator.gpu` is absent, and says so.
//!
//! Tolerance: `|y - x| <= 1e-4 · (1 + |x|)` against the scalar score `x`.
#![cfg(target_arch = "wasm32")]

use vitrine::kernels::{self, CpuKernel, HeadPlan, UserQuery};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const TOL: f32 = 1e-4;

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, len: usize, scale: f32) -> Vec<f32> {
        (0..len).map(|_| self.unit() * scale).collect()
    }
}

fn random_plan(rng: &mut Rng, n: usize, d: usize, h: usize, extra: &[usize]) -> HeadPlan {
    let mut layers = Vec::new();
    let mut width = h;
    for &w in extra {
        let scale = 1.0 / (width as f32).sqrt();
        layers.push((rng.vec(width * w, scale), rng.vec(w, 0.1)));
        width = w;
    }
    HeadPlan {
        n_items: n,
        dim: d,
        hidden: h,
        item_vectors: rng.vec(n * d, 1.0),
        item_bias: rng.vec(n * h, 0.5),
        layers,
        w_out: rng.vec(width, 1.0 / (width as f32).sqrt()),
        b_out: rng.unit(),
    }
}

fn random_query(rng: &mut Rng, plan: &HeadPlan) -> UserQuery {
    let scale = 1.0 / (plan.dim as f32).sqrt();
    UserQuery {
        m: rng.vec(plan.dim * (plan.hidden + 1), scale),
        a: rng.vec(plan.hidden, 0.3),
    }
}

fn scores(kernel: CpuKernel, plan: &HeadPlan, query: &UserQuery) -> Vec<f32> {
    let mut out = vec![f32::NAN; plan.n_items];
    kernel.scores(plan, query, &mut out);
    out
}

fn assert_close(what: &str, expected: &[f32], got: &[f32]) {
    assert_eq!(expected.len(), got.len(), "{what}: length");
    for (i, (x, y)) in expected.iter().zip(got).enumerate() {
        assert!(
            (x - y).abs() <= TOL * (1.0 + x.abs()),
            "{what}: item {i}: scalar {x}, got {y}"
        );
    }
}

fn shapes() -> Vec<(usize, usize, usize, Vec<usize>)> {
    let ns = [0usize, 1, 7, 33, 1000, 4099];
    let ds = [1usize, 3, 16, 33, 64];
    let hs = [1usize, 5, 32, 64];
    let extras: [&[usize]; 3] = [&[], &[17], &[32, 5]];
    let mut out = Vec::new();
    for (i, &n) in ns.iter().enumerate() {
        for (e, extra) in extras.iter().enumerate() {
            out.push((
                n,
                ds[(i + e) % ds.len()],
                hs[(i + 2 * e) % hs.len()],
                extra.to_vec(),
            ));
        }
    }
    for &d in &ds {
        for &h in &hs {
            out.push((37, d, h, vec![]));
        }
    }
    out
}

#[wasm_bindgen_test]
fn simd128_is_the_best_kernel_and_matches_scalar() {
    assert_eq!(CpuKernel::best(), CpuKernel::Simd128);
    assert!(CpuKernel::Simd128.available());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (n, d, h, extra) in shapes() {
        let plan = random_plan(&mut rng, n, d, h, &extra);
        let query = random_query(&mut rng, &plan);
        let want = scores(CpuKernel::Scalar, &plan, &query);
        for kernel in [CpuKernel::Simd128, CpuKernel::Native] {
            let got = scores(kernel, &plan, &query);
            assert_close(
                &format!("{} n={n} d={d} h={h} extra={extra:?}", kernel.name()),
                &want,
                &got,
            );
        }
    }
}

fn navigator_has_gpu() -> bool {
    let global = js_sys::global();
    let Ok(nav) = js_sys::Reflect::get(&global, &"navigator".into()) else {
        return false;
    };
    if nav.is_undefined() {
        return false;
    }
    js_sys::Reflect::get(&nav, &"gpu".into()).is_ok_and(|g| !g.is_undefined() && !g.is_null())
}

#[cfg(feature = "gpu")]
#[wasm_bindgen_test]
async fn webgpu_matches_scalar() {
    use vitrine::kernels::gpu::GpuScorer;
    if !navigator_has_gpu() {
        console_log!("skipped: navigator.gpu is absent (no WebGPU in this browser)");
        return;
    }
    let mut rng = Rng(0x5eed);
    // Every n, every extra-layer variant, a few (d, h): each case compiles three
    // pipelines on SwiftShader, so the list is kept short.
    let cases: Vec<_> = shapes().into_iter().step_by(2).collect();
    let mut first: Option<GpuScorer> = None;
    for (n, d, h, extra) in cases {
        let plan = random_plan(&mut rng, n, d, h, &extra);
        let query = random_query(&mut rng, &plan);
        let fresh;
        let gpu = match &first {
            None => {
                let gpu = GpuScorer::new(&plan)
                    .await
                    .expect("navigator.gpu exists, so an adapter and device must be available");
                console_log!("WebGPU adapter: {}", gpu.adapter_info());
                first.insert(gpu)
            }
            Some(f) => {
                fresh = f.for_plan(&plan).expect("plan fits the device");
                &fresh
            }
        };
        let what = format!("webgpu n={n} d={d} h={h} extra={extra:?}");
        console_log!("{what}");
        let want = scores(CpuKernel::Scalar, &plan, &query);
        let got = gpu.scores(&query).await.expect("gpu scores");
        assert_close(&what, &want, &got);
        for k in [1usize, 10] {
            let top = gpu.top_k(&query, k).await.expect("gpu top_k");
            let cpu = kernels::top_k(&got, k);
            let a: Vec<u32> = top.iter().map(|e| e.0).collect();
            let b: Vec<u32> = cpu.iter().map(|e| e.0).collect();
            assert_eq!(a, b, "{what} k={k}");
        }
    }
}
