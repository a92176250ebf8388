//! Browser parity tests of the scoring-head kernels (headless Chromium via
//! `wasm-pack test --headless --chrome -- --test web_kernels`): every fast path this
//! target lists in `CpuKernel::ALL` (it must hold SIMD128) against the scalar reference
//! on odd shapes, and the WebGPU path (`GpuScorer::new`) against scalar.
//! The GPU test skips only when `navigator.gpu` is absent, and says so.
//!
//! `scripts/test.sh` runs this file twice: for the plain SIMD128 build and for the
//! relaxed-SIMD build (`-C target-feature=+simd128,+relaxed-simd`, compiled with
//! `VITRINE_EXPECT_SIMD=relaxed-simd` so that the run fails if the flag did not apply).
//!
//! Tolerance: `|y - x| <= 1e-4 · (1 + |x|)` against the scalar score `x`.
#![cfg(target_arch = "wasm32")]

use vitrine::kernels::{self, CpuKernel};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[path = "common/kernel_cases.rs"]
mod kernel_cases;
use kernel_cases::*;

#[wasm_bindgen_test]
fn the_build_has_the_expected_instruction_set() {
    let expected = option_env!("VITRINE_EXPECT_SIMD").unwrap_or("simd128");
    assert_eq!(kernels::simd_build(), expected);
    let (_, flops) = kernels::peak_probe(10, false).expect("mul+add probe");
    assert!(flops > 0);
    assert_eq!(
        kernels::peak_probe(10, true).is_some(),
        expected == "relaxed-simd",
        "a fused probe exactly in the relaxed build"
    );
}

#[wasm_bindgen_test]
fn simd128_is_the_best_kernel_and_matches_scalar() {
    assert_eq!(CpuKernel::ALL, &[CpuKernel::Scalar, CpuKernel::Simd128]);
    let fast = fast_kernels(CpuKernel::Simd128);
    let mut rng = SplitMix64::new(0x9e37_79b9_7f4a_7c15);
    check_parity_on_odd_shapes(&mut rng, &fast, 1);
}

#[wasm_bindgen_test]
fn subset_scores_equal_the_full_catalogue_scores() {
    let mut rng = SplitMix64::new(0x51_b5e7);
    check_subset_parity(&mut rng, CpuKernel::ALL);
}

#[cfg(feature = "gpu")]
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
    let mut rng = SplitMix64::new(0x5eed);
    // Every n, every extra-layer variant, a few (d, h): each case compiles three
    // pipelines on SwiftShader, so the list is kept short.
    let cases: Vec<_> = shapes(1).into_iter().step_by(2).collect();
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
