//! Browser parity tests of the scoring-head kernels (headless Chromium via
//! `wasm-pack test --headless --chrome -- --test web_kernels`): every fast path this
//! target lists in `CpuKernel::ALL` (it must hold SIMD128) against the scalar reference
//! on odd shapes, and the WebGPU path (`GpuScorer::new`) against scalar.
//! The GPU test never skips: the test configuration (`webdriver.json`: Chromium with
//! WebGPU on SwiftShader) has an adapter, so a missing `navigator.gpu` or adapter fails it
//! with the reason (a test that passed without testing would hide a broken GPU path).
//!
//! `scripts/test.sh` runs this file twice: for the plain SIMD128 build and for the
//! relaxed-SIMD build (`-C target-feature=+simd128,+relaxed-simd`, compiled with
//! `VITRINE_EXPECT_SIMD=relaxed-simd` so that the run fails if the flag did not apply).
//!
//! Tolerance: `|y - x| <= 1e-4 · (1 + |x|)` against the scalar score `x`.
#![cfg(target_arch = "wasm32")]

use vitrine::kernels::scorer::{Hooks, Scorer};
use vitrine::kernels::{self, CpuKernel, DotForm};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[path = "common/kernel_cases.rs"]
mod kernel_cases;
use kernel_cases::*;
mod common;

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

/// Runs `f` in each int8 multiply form this build has: the relaxed build's two
/// (`DotForm::choices()`, each selected in turn, then the default again), or the plain
/// build's one (`None`). Fails if the build does not have the forms it should.
fn each_dot_form(mut f: impl FnMut(Option<DotForm>)) {
    let expected = option_env!("VITRINE_EXPECT_SIMD").unwrap_or("simd128");
    let forms = DotForm::choices();
    assert_eq!(forms.len(), if expected == "relaxed-simd" { 2 } else { 0 });
    if forms.is_empty() {
        assert_eq!(DotForm::current(), None);
        return f(None);
    }
    for &form in forms {
        assert!(form.select());
        assert_eq!(DotForm::current(), Some(form));
        f(Some(form));
    }
    assert!(DotForm::Fused.select());
}

/// The SIMD128 int8 first layer (`i32x4.dot_i16x8_s` in the plain build; in the
/// relaxed one `i32x4.relaxed_dot_i8x16_i7x16_add_s`, or the i16 relaxed dot widened by
/// a dot with ones: both `DotForm`s) gives the scalar reference's integers bit for bit,
/// extremes included.
#[wasm_bindgen_test]
fn int8_products_are_the_scalar_integers_bit_for_bit() {
    each_dot_form(|_| {
        let mut rng = SplitMix64::new(0x1_2345);
        check_int8_products_exact(&mut rng, &fast_kernels(CpuKernel::Simd128));
    });
}

#[wasm_bindgen_test]
fn int8_plans_score_like_the_scalar_int8_reference() {
    each_dot_form(|_| {
        let mut rng = SplitMix64::new(0x1_2346);
        check_int8_parity(&mut rng, &fast_kernels(CpuKernel::Simd128));
    });
}

/// The two forms give the same scores bit for bit (the same integers, then the same f32
/// tail), on a plan with further layers (their activations take the second form too).
#[wasm_bindgen_test]
fn int8_scores_are_the_same_bits_in_either_form() {
    let mut rng = SplitMix64::new(0x1_2347);
    let plan = int8_plan(&random_plan(&mut rng, 301, 24, 20, &[12, 8]));
    let query = random_query(&mut rng, &plan);
    let mut seen: Vec<Vec<u32>> = Vec::new();
    each_dot_form(|_| {
        let got = scores(CpuKernel::Simd128, &plan, &query);
        seen.push(got.iter().map(|x| x.to_bits()).collect());
    });
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "the forms' scores differ"
    );
}

// A clock for `the_scorer_keeps_the_form_its_clock_says_is_faster`: each reading is 10
// ms after the last in the fused form and 5 in the split one, so each request "takes"
// its form's step.
static TICKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
fn form_clock() -> f64 {
    let step = if DotForm::current() == Some(DotForm::Split) {
        5
    } else {
        10
    };
    TICKS.fetch_add(step, std::sync::atomic::Ordering::Relaxed) as f64
}

/// `Scorer` times its first int8 requests in each form and keeps the faster (the split
/// form, by this clock); every request's scores are the same bits. In the plain build
/// there is nothing to choose: it stays undecided.
#[wasm_bindgen_test]
async fn the_scorer_keeps_the_form_its_clock_says_is_faster() {
    let mut rng = SplitMix64::new(0x1_2348);
    let plan = int8_plan(&random_plan(&mut rng, 200, 16, 12, &[8]));
    let query = random_query(&mut rng, &plan);
    let want: Vec<u32> = scores(CpuKernel::Simd128, &plan, &query)
        .iter()
        .map(|x| x.to_bits())
        .collect();
    let hooks = Hooks {
        now_ms: form_clock,
        warn: |_| {},
        info: |_| {},
        gpu_present: || false,
    };
    let s = Scorer::cpu(CpuKernel::Simd128, hooks);
    let relaxed = !DotForm::choices().is_empty();
    for call in 1..=20 {
        let got = s.scores(&plan, &query).await.unwrap();
        assert_eq!(
            got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            want,
            "call {call}"
        );
        if relaxed && call >= 14 {
            assert_eq!(s.dot_form(), Some(DotForm::Split), "call {call}");
            assert_eq!(DotForm::current(), Some(DotForm::Split));
        } else {
            assert_eq!(s.dot_form(), None, "call {call}");
        }
    }
    assert!(!relaxed || DotForm::Fused.select());
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
    assert!(
        navigator_has_gpu(),
        "navigator.gpu is absent: this test needs WebGPU (run through scripts/test.sh, whose \
         webdriver.json starts Chromium with WebGPU on SwiftShader)"
    );
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
                    .expect("navigator.gpu exists, so an adapter and device must be available (SwiftShader in the test configuration)");
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

/// Three of the odd shapes, none empty, for the WebGPU storage tests.
#[cfg(feature = "gpu")]
fn webgpu_cases() -> Vec<(usize, usize, usize, Vec<usize>)> {
    (shapes(1).into_iter())
        .filter(|c| c.0 > 0)
        .step_by(3)
        .take(3)
        .collect()
}

/// Scores `held` (item vectors stored int8 or f16 on the GPU) and `reference` (the f32
/// plan of the values the shaders widen them to) on one WebGPU device (`first`, made the
/// first time): bit for bit the same, close to the scalar scores of `reference`, and
/// `reference` held as f32 rows. Returns the bytes `held`'s item vectors take.
#[cfg(feature = "gpu")]
async fn webgpu_held_as_reference(
    first: &mut Option<vitrine::kernels::gpu::GpuScorer>,
    held: &kernels::HeadPlan,
    reference: &kernels::HeadPlan,
    query: &kernels::UserQuery,
    what: &str,
) -> u64 {
    use vitrine::kernels::gpu::GpuScorer;
    assert!(
        navigator_has_gpu(),
        "navigator.gpu is absent: this test needs WebGPU"
    );
    console_log!("{what}");
    if first.is_none() {
        *first = Some(GpuScorer::new(held).await.expect("a WebGPU device"));
    }
    let device = first.as_ref().expect("set above");
    let g = device.for_plan(held).expect("plan fits the device");
    let got = g.scores(query).await.expect("gpu scores");
    let gf = device.for_plan(reference).expect("plan fits the device");
    let want = gf.scores(query).await.expect("gpu scores");
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&got), bits(&want), "{what}");
    assert_close(what, &scores(CpuKernel::Scalar, reference, query), &got);
    let (n, d) = (reference.n_items, reference.dim);
    let f32_bytes = (4 * (n * d) as u64).max(16) + 16;
    assert_eq!(gf.item_vector_bytes(), f32_bytes, "{what}: f32 rows");
    g.item_vector_bytes()
}

/// An f16 plan is held as f16 on WebGPU and scores bit for bit as its vectors rounded
/// to f16, in f32, on the same device (`tests/kernels.rs` runs more shapes on lavapipe).
#[cfg(feature = "gpu")]
#[wasm_bindgen_test]
async fn webgpu_f16_plans_score_as_their_rounded_f32() {
    let mut rng = SplitMix64::new(0xf16b);
    let mut first = None;
    for (n, d, h, extra) in webgpu_cases() {
        let (f16, rounded) = f16_plans(&random_plan(&mut rng, n, d, h, &extra));
        let query = random_query(&mut rng, &f16);
        let what = format!("webgpu f16 n={n} d={d} h={h} extra={extra:?}");
        let bytes = webgpu_held_as_reference(&mut first, &f16, &rounded, &query, &what).await;
        let held = (2 * (n * d) as u64).next_multiple_of(4).max(16) + 16;
        assert_eq!(bytes, held, "{what}: f16 rows");
    }
}

/// An int8 plan stays int8 on WebGPU and scores bit for bit as its dequantised f32
/// plan on the same device (`tests/kernels.rs` runs more shapes on lavapipe).
#[cfg(feature = "gpu")]
#[wasm_bindgen_test]
async fn webgpu_int8_plans_score_as_their_dequantised_f32() {
    let mut rng = SplitMix64::new(0x1_8b);
    let mut first = None;
    for (n, d, h, extra) in webgpu_cases() {
        let q8 = int8_plan(&random_plan(&mut rng, n, d, h, &extra));
        let deq = kernels::HeadPlan {
            item_vectors: kernels::ItemVectors::F32(q8.item_vectors.to_f32().into_owned()),
            ..q8.clone()
        };
        let query = random_query(&mut rng, &q8);
        let what = format!("webgpu int8 n={n} d={d} h={h} extra={extra:?}");
        let bytes = webgpu_held_as_reference(&mut first, &q8, &deq, &query, &what).await;
        // Held as int8: the padded rows and the scales (f32: 4 bytes a value).
        let kernels::ItemVectors::Int8(q) = &q8.item_vectors else {
            panic!("int8_plan gave an f32 plan");
        };
        let held = (q.q.len() as u64).next_multiple_of(4).max(16) + (4 * n as u64).max(16);
        assert_eq!(bytes, held, "{what}: int8 rows and scales");
    }
}

/// `recommend()` from a WebGPU shortlist (what the browser binding serves) equals the
/// full read-back over the same GPU's logits bit for bit, the shortlist equals the scalar
/// reference, and each request reads back `12 · m · chunks + 4 · |S|` bytes
/// (`common::shortlist_cases::check_gpu_shortlist`; `tests/gpu_recommend.rs` runs 120
/// requests on lavapipe; SwiftShader is slow, so a few here).
#[cfg(feature = "gpu")]
#[wasm_bindgen_test]
async fn webgpu_shortlist_recommendations_equal_the_full_read_back() {
    use common::shortlist_cases::{check_gpu_shortlist, recommender};
    use vitrine::kernels::gpu::GpuScorer;
    assert!(
        navigator_has_gpu(),
        "navigator.gpu is absent: this test needs WebGPU (SwiftShader in webdriver.json)"
    );
    let rec = recommender(2600, 21);
    let gpu = GpuScorer::new(&rec.plan)
        .await
        .expect("navigator.gpu exists, so an adapter and device must be available");
    check_gpu_shortlist(&gpu, &rec, 0xb10, 10).await;
}

/// WebGPU device loss mid-session (`GPUDevice.destroy()`): the `Scorer` switches to the
/// SIMD kernel for good, reports it once, and answers with the same ranking (scores within
/// the kernels' tolerance); the lost `GpuScorer` returns `GpuError::Lost`.
#[cfg(feature = "gpu")]
#[wasm_bindgen_test]
async fn webgpu_device_loss_falls_back_to_simd() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use vitrine::kernels::gpu::GpuError;
    use vitrine::kernels::scorer::{BackendChoice, Hooks, Scorer};
    static WARNINGS: AtomicUsize = AtomicUsize::new(0);
    assert!(
        navigator_has_gpu(),
        "navigator.gpu is absent: this test needs WebGPU"
    );
    let mut rng = SplitMix64::new(0x1057);
    let plan = random_plan(&mut rng, 300, 16, 24, &[8]);
    let query = random_query(&mut rng, &plan);
    let hooks = Hooks {
        now_ms: js_sys::Date::now,
        warn: |_| {
            WARNINGS.fetch_add(1, Ordering::SeqCst);
        },
        info: |_| {},
        gpu_present: || true,
    };
    let scorer = Scorer::new(&plan, BackendChoice::Gpu, None, hooks).await;
    assert_eq!(
        scorer.name(),
        "webgpu",
        "SwiftShader gives an adapter in the test setup"
    );
    let before = scorer.scores(&plan, &query).await.expect("webgpu scores");
    let gpu = scorer.gpu().expect("on the GPU");
    gpu.destroy_device();
    let after = scorer.scores(&plan, &query).await.expect("SIMD fall-back");
    assert_eq!(scorer.name(), "simd");
    assert_eq!(
        WARNINGS.load(Ordering::SeqCst),
        1,
        "the loss is reported once"
    );
    assert_close("after device loss", &before, &after);
    assert_eq!(after, scores(CpuKernel::Simd128, &plan, &query));
    let top_before: Vec<u32> = kernels::top_k(&before, 10).iter().map(|e| e.0).collect();
    let top_after: Vec<u32> = kernels::top_k(&after, 10).iter().map(|e| e.0).collect();
    assert_eq!(top_before, top_after, "same top 10");
    match gpu.scores(&query).await {
        Err(GpuError::Lost(why)) => assert!(why.contains("destroyed"), "{why}"),
        other => panic!("a lost device must give GpuError::Lost, got {other:?}"),
    }
}

/// The SIMD128 quantisation of activation rows (the int8 further layers' input) gives
/// the reference's bytes and scale bit for bit: every length from 0 to 40 (whole and
/// partial vectors), rounding ties, zeros, a NaN, an infinity.
#[wasm_bindgen_test]
fn activation_rows_quantise_like_the_reference() {
    let mut rng = SplitMix64::new(0xac7_1a7e);
    for n in 0..=40usize {
        for case in 0..6 {
            let mut h: Vec<f32> = (0..n)
                .map(|_| (rng.next_f32() * 4.0 - 1.0).max(0.0))
                .collect();
            match case {
                // max 8: inv 15.875, so 4.0 lands on 63.5 (ties to even).
                1 if n > 2 => {
                    h[0] = 8.0;
                    h[1] = 4.0;
                    h[2] = 1.0;
                }
                2 => h.iter_mut().for_each(|x| *x = 0.0),
                3 if n > 1 => h[n / 2] = f32::NAN,
                4 if n > 0 => h[n - 1] = f32::INFINITY,
                5 => h.iter_mut().for_each(|x| *x *= 1e-30),
                _ => {}
            }
            let mut want = vec![7i8; n + 5];
            let mut got = vec![-7i8; n + 5];
            let sw = vitrine::kernels::quant::quantize_activations(&h, &mut want);
            let sg = kernels::simd128::quantize_activations(&h, &mut got);
            assert_eq!(got, want, "n={n} case {case}");
            assert_eq!(sg.to_bits(), sw.to_bits(), "n={n} case {case}: scale");
        }
    }
}
