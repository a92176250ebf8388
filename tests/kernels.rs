//! Native parity tests of the scoring-head kernels: every fast path this target lists in
//! `CpuKernel::ALL` against the scalar reference on random plans of odd shapes (the list
//! must hold the native kernel), top-k against a full sort, the GPU path (on whatever
//! adapter wgpu finds; lavapipe on CI-like machines; `VITRINE_REQUIRE_GPU=1` makes a
//! missing adapter a failure), and the WGSL `@group/@binding` declarations against the
//! Rust binding constants.
//!
//! Tolerance: a fast path's score `y` must satisfy `|y - x| <= TOL · (1 + |x|)` against
//! the scalar score `x`, `TOL = 1e-4` (sums are reordered and may use FMA).
#![cfg(not(target_arch = "wasm32"))]

use vitrine::kernels::{self, CpuKernel, HeadPlan, UserQuery};

#[path = "common/kernel_cases.rs"]
mod kernel_cases;
use kernel_cases::*;

#[test]
fn native_builds_list_exactly_scalar_and_native() {
    assert_eq!(CpuKernel::ALL, &[CpuKernel::Scalar, CpuKernel::Native]);
    assert_eq!(fast_kernels(CpuKernel::Native), vec![CpuKernel::Native]);
    let names: Vec<&str> = CpuKernel::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(names, ["scalar", "native"]);
}

#[test]
fn native_matches_scalar_on_odd_shapes() {
    let mut rng = SplitMix64::new(0x9e37_79b9_7f4a_7c15);
    let fast = fast_kernels(CpuKernel::Native);
    check_parity_on_odd_shapes(&mut rng, &fast, 2);
}

#[test]
fn subset_scores_equal_the_full_catalogue_scores() {
    let mut rng = SplitMix64::new(0x51_b5e7);
    check_subset_parity(&mut rng, CpuKernel::ALL);
    // The native path's multi-threaded split, for a list past its threshold.
    let plan = random_plan(&mut rng, 9000, 64, 64, &[32]);
    let query = random_query(&mut rng, &plan);
    let items: Vec<u32> = (0..20_000).map(|_| rng.below(9000) as u32).collect();
    let full = scores(CpuKernel::Native, &plan, &query);
    let mut got = vec![f32::NAN; items.len()];
    CpuKernel::Native
        .try_scores_of(&plan, &query, &items, &mut got)
        .unwrap();
    assert!(items
        .iter()
        .zip(&got)
        .all(|(&i, y)| full[i as usize].to_bits() == y.to_bits()));
}

#[test]
fn int8_products_are_the_scalar_integers_bit_for_bit() {
    let mut rng = SplitMix64::new(0x1_2345);
    check_int8_products_exact(&mut rng, &fast_kernels(CpuKernel::Native));
}

#[test]
fn int8_plans_score_like_the_scalar_int8_reference() {
    let mut rng = SplitMix64::new(0x1_2346);
    check_int8_parity(&mut rng, &fast_kernels(CpuKernel::Native));
    // The multi-threaded split on an int8 plan.
    let plan = int8_plan(&random_plan(&mut rng, 20_011, 64, 64, &[32]));
    let query = random_query(&mut rng, &plan);
    assert_close(
        "native int8 n=20011",
        &scores(CpuKernel::Scalar, &plan, &query),
        &scores(CpuKernel::Native, &plan, &query),
    );
}

/// int8 scoring ranks like f32 scoring: on random plans of the model's shape
/// (d = h = 64, one layer of 32), the top 20 of 4,000 items share at least 95% of their
/// items on average over 20 queries, and no query shares fewer than 17 of 20
/// (measured: mean 0.985, min 0.95).
#[test]
fn int8_ranking_agrees_with_f32() {
    let mut rng = SplitMix64::new(0x1_2347);
    let plan = random_plan(&mut rng, 4000, 64, 64, &[32]);
    let q8 = int8_plan(&plan);
    let mut overlaps = Vec::new();
    for _ in 0..20 {
        let query = random_query(&mut rng, &plan);
        let f = scores(CpuKernel::Native, &plan, &query);
        let i = scores(CpuKernel::Native, &q8, &query);
        overlaps.push(top_k_overlap(&f, &i, 20));
    }
    let mean = overlaps.iter().sum::<f64>() / overlaps.len() as f64;
    let min = overlaps.iter().cloned().fold(1.0, f64::min);
    eprintln!("int8 vs f32 top-20 overlap: mean {mean:.3}, min {min:.3}");
    assert!(mean >= 0.95 && min >= 0.85, "mean {mean}, min {min}");
}

/// An int8 plan with inconsistent lengths is a shape error, not a panic.
#[test]
fn int8_shape_errors_are_reported() {
    let mut rng = SplitMix64::new(5);
    let plan = int8_plan(&random_plan(&mut rng, 5, 4, 3, &[2]));
    let query = random_query(&mut rng, &plan);
    let mut out = vec![0.0; 5];
    for k in CpuKernel::ALL {
        let mut bad = plan.clone();
        let kernels::ItemVectors::Int8(q) = &mut bad.item_vectors else {
            panic!("int8_plan gave an f32 plan");
        };
        q.scale.pop();
        assert!(k.try_scores(&bad, &query, &mut out).is_err());
        let mut bad = plan.clone();
        let kernels::ItemVectors::Int8(q) = &mut bad.item_vectors else {
            panic!("int8_plan gave an f32 plan");
        };
        q.q.pop();
        assert!(k.try_scores(&bad, &query, &mut out).is_err());
    }
}

#[test]
fn native_parallel_path_matches_scalar() {
    // Large enough for the multi-threaded split, with a ragged last chunk.
    let mut rng = SplitMix64::new(7);
    let plan = random_plan(&mut rng, 20_011, 64, 64, &[32]);
    let query = random_query(&mut rng, &plan);
    let want = scores(CpuKernel::Scalar, &plan, &query);
    assert_close(
        "native n=20011",
        &want,
        &scores(CpuKernel::Native, &plan, &query),
    );
}

#[test]
fn scalar_follows_the_documented_math() {
    // One item, hand-checkable: d = 2, h = 2, one extra layer of width 1.
    let plan = HeadPlan {
        n_items: 1,
        dim: 2,
        hidden: 2,
        item_vectors: vec![1.0, 2.0].into(),
        layers: vec![(vec![2.0, 3.0], vec![0.25])],
        w_out: vec![4.0],
        b_out: 1.0,
        gpu_f16: false,
    };
    // M = [[1, 0, 1], [0, 1, 1]]: h1 = relu([1, 2] + a).
    let query = UserQuery {
        m: vec![1.0, 0.0, 1.0, 0.0, 1.0, 1.0],
        a: vec![1.0, -10.0],
    };
    // h1 = [2, 0]; h2 = relu(2*2 + 0*3 + 0.25) = 4.25; score = 4*4.25 + 1 + (1 + 2).
    let expected = 4.0 * 4.25 + 1.0 + 3.0;
    fast_kernels(CpuKernel::Native);
    for &kernel in CpuKernel::ALL {
        let got = scores(kernel, &plan, &query);
        assert!(
            (got[0] - expected).abs() < 1e-5,
            "{}: {}",
            kernel.name(),
            got[0]
        );
    }
}

#[test]
fn shape_errors_are_reported_not_panicked() {
    let mut rng = SplitMix64::new(3);
    let plan = random_plan(&mut rng, 5, 4, 3, &[2]);
    let query = random_query(&mut rng, &plan);
    let mut out = vec![0.0; 5];
    let mut bad = plan.clone();
    bad.item_vectors = vec![0.0; 5 * 4 - 1].into();
    assert!(CpuKernel::Native
        .try_scores(&bad, &query, &mut out)
        .is_err());
    let mut bad = plan.clone();
    bad.layers[0].0.push(1.0);
    assert!(bad.validate().is_err());
    let mut badq = query.clone();
    badq.m.pop();
    assert!(CpuKernel::Scalar
        .try_scores(&plan, &badq, &mut out)
        .is_err());
    assert!(CpuKernel::Scalar
        .try_scores(&plan, &query, &mut [0.0; 4])
        .is_err());
    assert!(CpuKernel::Scalar
        .try_scores(&plan, &query, &mut out)
        .is_ok());
}

fn sorted_reference(scores: &[f32]) -> Vec<(u32, f32)> {
    let mut all: Vec<(u32, f32)> = scores
        .iter()
        .enumerate()
        .map(|(i, &s)| (i as u32, s))
        .collect();
    // Full stable sort: by score descending with NaN last; stable keeps index order.
    all.sort_by(|a, b| match (a.1.is_nan(), b.1.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => b.1.partial_cmp(&a.1).unwrap(),
    });
    all
}

fn same_ranking(a: &[(u32, f32)], b: &[(u32, f32)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.0 == y.0 && x.1.to_bits() == y.1.to_bits())
}

#[test]
fn top_k_equals_full_sort() {
    let mut rng = SplitMix64::new(11);
    for n in [0usize, 1, 2, 7, 100, 1000, 4099] {
        // Few distinct values, so ties are common; some NaN and infinities.
        let scores: Vec<f32> = (0..n)
            .map(|_| match rng.below(20) {
                0 => f32::NAN,
                1 => f32::INFINITY,
                2 => f32::NEG_INFINITY,
                r => (r % 7) as f32 - 3.0,
            })
            .collect();
        let full = sorted_reference(&scores);
        for k in [0usize, 1, 3, 10, 64, n, n + 5] {
            let got = kernels::top_k(&scores, k);
            let want = &full[..k.min(n)];
            assert!(same_ranking(&got, want), "n={n} k={k}");
        }
    }
}

#[test]
fn top_k_orders_signed_zero_and_extremes() {
    let scores = [0.0, -0.0, f32::NAN, -1.0, f32::MAX, f32::MIN, 0.0];
    let got: Vec<u32> = kernels::top_k(&scores, 7).iter().map(|e| e.0).collect();
    assert_eq!(got, vec![4, 0, 6, 1, 3, 5, 2]);
}

#[cfg(feature = "gpu")]
mod gpu {
    use super::*;
    use vitrine::kernels::gpu::{GpuError, GpuScorer, TOPK_CHUNK, TOPK_MAX};
    use vitrine::kernels::shortlist::{
        shortlist_reference, CategoryRule, ItemAttributes, Shortlist, ShortlistRequest,
    };

    fn device() -> Option<(wgpu::Device, wgpu::Queue, String)> {
        let instance = wgpu::Instance::default();
        let adapter =
            pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
                .ok();
        let Some(adapter) = adapter else {
            if std::env::var("VITRINE_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("VITRINE_REQUIRE_GPU=1 but no GPU adapter was found");
            }
            println!("skipped: no GPU adapter");
            return None;
        };
        let info = adapter.get_info();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("vitrine-test"),
            required_limits: adapter.limits(),
            ..Default::default()
        }))
        .expect("device from an existing adapter");
        Some((device, queue, format!("{} ({:?})", info.name, info.backend)))
    }

    /// A device lost mid-session (`destroy()`, as a driver reset or the browser would):
    /// the `Scorer` reports it once, switches to the CPU for good and answers with the
    /// same scores; the lost `GpuScorer` itself returns `GpuError::Lost`, never panics.
    #[test]
    fn device_loss_falls_back_to_the_cpu_with_the_same_scores() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use vitrine::kernels::scorer::{BackendChoice, Hooks, Scorer};
        static WARNINGS: AtomicUsize = AtomicUsize::new(0);
        if device().is_none() {
            return; // no adapter here (fails above when VITRINE_REQUIRE_GPU=1)
        }
        let mut rng = SplitMix64::new(0x1057);
        let plan = random_plan(&mut rng, 300, 16, 24, &[8]);
        let query = random_query(&mut rng, &plan);
        let hooks = Hooks {
            warn: |_| {
                WARNINGS.fetch_add(1, Ordering::SeqCst);
            },
            ..Hooks::native()
        };
        let scorer = pollster::block_on(Scorer::new(&plan, BackendChoice::Gpu, None, hooks));
        assert!(scorer.is_gpu(), "the adapter above gives a device");
        let before = pollster::block_on(scorer.scores(&plan, &query)).expect("gpu scores");
        let gpu = scorer.gpu().expect("on the GPU");
        gpu.destroy_device();
        let after = pollster::block_on(scorer.scores(&plan, &query)).expect("CPU fall-back");
        assert!(!scorer.is_gpu(), "switched to the CPU");
        assert_eq!(scorer.name(), CpuKernel::best().name());
        assert_eq!(
            WARNINGS.load(Ordering::SeqCst),
            1,
            "the loss is reported once"
        );
        assert_close("after device loss", &before, &after);
        assert_eq!(
            after,
            scores(CpuKernel::best(), &plan, &query),
            "exactly the CPU kernel"
        );
        let again = pollster::block_on(scorer.scores(&plan, &query)).expect("CPU");
        assert_eq!(again, after);
        match pollster::block_on(gpu.scores(&query)) {
            Err(GpuError::Lost(why)) => assert!(why.contains("destroyed"), "{why}"),
            other => panic!("a lost device must give GpuError::Lost, got {other:?}"),
        }
    }

    #[test]
    fn gpu_matches_scalar_and_top_k_matches_cpu() {
        let Some((device, queue, name)) = device() else {
            return;
        };
        println!("adapter: {name}");
        let mut rng = SplitMix64::new(0x5eed);
        let mut cases = shapes(2);
        cases.retain(|c| c.0 != 37 || (c.1 + c.2) % 3 == 0);
        for (n, d, h, extra) in cases {
            let plan = random_plan(&mut rng, n, d, h, &extra);
            let query = random_query(&mut rng, &plan);
            let gpu =
                GpuScorer::with_device(device.clone(), queue.clone(), &plan).expect("plan fits");
            let what = format!("gpu n={n} d={d} h={h} extra={extra:?}");
            let want = scores(CpuKernel::Scalar, &plan, &query);
            let got = pollster::block_on(gpu.scores(&query)).expect("gpu scores");
            assert_close(&what, &want, &got);
            for k in [1usize, 10, 100] {
                let top = pollster::block_on(gpu.top_k(&query, k)).expect("gpu top_k");
                // Exactly the CPU ranking of the GPU's own scores.
                let cpu_of_gpu = kernels::top_k(&got, k);
                assert!(same_ranking(&top, &cpu_of_gpu), "{what} k={k}");
                // Same set as the scalar top-k when the boundary is clear of rounding.
                let cpu = kernels::top_k(&want, k + 1);
                let clear = cpu.len() <= k
                    || (cpu[k - 1].1 - cpu[k].1).abs() > 4.0 * TOL * (1.0 + cpu[k].1.abs());
                if clear {
                    let mut a: Vec<u32> = top.iter().map(|e| e.0).collect();
                    let mut b: Vec<u32> = cpu[..k.min(n)].iter().map(|e| e.0).collect();
                    a.sort_unstable();
                    b.sort_unstable();
                    assert_eq!(a, b, "{what} k={k}: top-k set");
                }
            }
        }
    }

    /// An int8 plan stays int8 on the GPU (rows and scales, a quarter of the f32
    /// bytes), and its scores are bit for bit those of its dequantised f32 plan on the
    /// GPU: the shaders dequantise each element as the CPU does (`scale · q`).
    #[test]
    fn gpu_int8_plans_stay_int8_and_score_as_their_dequantised_f32() {
        let Some((device, queue, _)) = device() else {
            return;
        };
        let mut rng = SplitMix64::new(0x1_8a);
        for (n, d, h, extra) in shapes(2).into_iter().take(8) {
            let q8 = int8_plan(&random_plan(&mut rng, n, d, h, &extra));
            let deq = HeadPlan {
                item_vectors: kernels::ItemVectors::F32(q8.item_vectors.to_f32().into_owned()),
                ..q8.clone()
            };
            let query = random_query(&mut rng, &q8);
            let what = format!("gpu int8 n={n} d={d} h={h} extra={extra:?}");
            let int8_bytes = held_scores_as_reference(&device, &queue, &q8, &deq, &query, &what);
            let kernels::ItemVectors::Int8(q) = &q8.item_vectors else {
                panic!("int8_plan gave an f32 plan");
            };
            let held = (q.q.len() as u64).next_multiple_of(4).max(16) + (4 * n as u64).max(16);
            assert_eq!(int8_bytes, held, "{what}: int8 rows and scales");
        }
    }

    /// Scores `held` (item vectors stored int8 or f16 on the GPU) and `reference` (the
    /// f32 plan of the values the shaders widen them to) on the GPU: bit for bit the
    /// same, close to the scalar scores of `reference`, and `reference` held as f32
    /// rows. Returns the bytes `held`'s item vectors take on the GPU.
    fn held_scores_as_reference(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        held: &HeadPlan,
        reference: &HeadPlan,
        query: &UserQuery,
        what: &str,
    ) -> u64 {
        let on_gpu = |plan: &HeadPlan| {
            let gpu =
                GpuScorer::with_device(device.clone(), queue.clone(), plan).expect("plan fits");
            let got = pollster::block_on(gpu.scores(query)).expect("gpu scores");
            (got, gpu.item_vector_bytes())
        };
        let (got, held_bytes) = on_gpu(held);
        let (want, f32_bytes) = on_gpu(reference);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want), "{what}");
        assert_close(what, &scores(CpuKernel::Scalar, reference, query), &got);
        let (n, d) = (reference.n_items, reference.dim);
        assert_eq!(
            f32_bytes,
            (4 * (n * d) as u64).max(16) + 16,
            "{what}: f32 rows"
        );
        held_bytes
    }

    /// An f16 plan's vectors are held as f16 on the GPU (half the f32 bytes), and its
    /// scores are bit for bit those of the f32 plan with the vectors rounded to f16 (the
    /// shaders widen each half exactly; values past f16's range saturate). The CPU
    /// kernels ignore the flag.
    #[test]
    fn gpu_f16_plans_hold_halves_and_score_as_their_rounded_f32() {
        let Some((device, queue, _)) = device() else {
            return;
        };
        let mut rng = SplitMix64::new(0xf16);
        // Every size, odd n·d among them (halves that share a word across rows), and
        // one past the upload's 2^18-value range (two ranges, the second odd).
        let mut cases: Vec<_> = shapes(2).into_iter().filter(|c| c.0 != 37).collect();
        cases.push((4099, 65, 8, vec![]));
        for (n, d, h, extra) in cases {
            let (f16, rounded) = f16_plans(&random_plan(&mut rng, n, d, h, &extra));
            let query = random_query(&mut rng, &f16);
            let what = format!("gpu f16 n={n} d={d} h={h} extra={extra:?}");
            let f16_bytes =
                held_scores_as_reference(&device, &queue, &f16, &rounded, &query, &what);
            let halves_held = (2 * (n * d) as u64).next_multiple_of(4).max(16) + 16;
            assert_eq!(f16_bytes, halves_held, "{what}: f16 rows");
            assert_eq!(
                scores(CpuKernel::best(), &f16, &query),
                scores(
                    CpuKernel::best(),
                    &HeadPlan {
                        gpu_f16: false,
                        ..f16.clone()
                    },
                    &query
                ),
                "{what}: the CPU ignores gpu_f16"
            );
        }
    }

    #[test]
    fn gpu_top_k_handles_ties_nan_and_large_k() {
        let Some((device, queue, _)) = device() else {
            return;
        };
        // The item vectors are the scores: d = 1, h = 1, M = [1, 0], w_out = 1, and
        // every value is a small non-negative integer (many ties).
        let n = 5000;
        let mut rng = SplitMix64::new(99);
        let values: Vec<f32> = (0..n).map(|_| rng.below(50) as f32).collect();
        let plan = HeadPlan {
            n_items: n,
            dim: 1,
            hidden: 1,
            item_vectors: values.into(),
            layers: vec![],
            w_out: vec![1.0],
            b_out: 0.0,
            gpu_f16: false,
        };
        let query = UserQuery {
            m: vec![1.0, 0.0],
            a: vec![0.0],
        };
        let gpu = GpuScorer::with_device(device, queue, &plan).expect("plan fits");
        let got = pollster::block_on(gpu.scores(&query)).expect("scores");
        for k in [1usize, 50, 300, 2000, n, n + 1] {
            let top = pollster::block_on(gpu.top_k(&query, k)).expect("top_k");
            assert!(same_ranking(&top, &kernels::top_k(&got, k)), "k={k}");
        }
    }

    /// A device with the adapter's limits lowered by `lower`.
    fn limited_device(
        lower: impl FnOnce(&mut wgpu::Limits),
    ) -> Option<(wgpu::Device, wgpu::Queue)> {
        let instance = wgpu::Instance::default();
        let adapter =
            pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
                .ok()?;
        let mut limits = adapter.limits();
        lower(&mut limits);
        pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("vitrine-test-limited"),
            required_limits: limits,
            ..Default::default()
        }))
        .ok()
    }

    #[test]
    fn gpu_two_dimensional_dispatch_matches_scalar() {
        if device().is_none() {
            return;
        }
        // 16 workgroups per dimension: 4099 items need 65 GEMM tiles (16 x 5 grid),
        // 17 output groups (16 x 2) and 5 top-k chunks.
        let (device, queue) = limited_device(|l| l.max_compute_workgroups_per_dimension = 16)
            .expect("a device with lower limits");
        let mut rng = SplitMix64::new(42);
        let plan = random_plan(&mut rng, 4099, 33, 70, &[9]);
        let query = random_query(&mut rng, &plan);
        let gpu = GpuScorer::with_device(device, queue, &plan).expect("fits in 2-D");
        let got = pollster::block_on(gpu.scores(&query)).expect("scores");
        assert_close("gpu 2-D", &scores(CpuKernel::Scalar, &plan, &query), &got);
        let top = pollster::block_on(gpu.top_k(&query, 25)).expect("top_k");
        assert!(same_ranking(&top, &kernels::top_k(&got, 25)));
    }

    /// Random attributes for `n` items over `cats` categories (some new, some unpriced,
    /// one `-0.0` price) and a random shortlist request.
    fn shortlist_case(
        rng: &mut SplitMix64,
        n: usize,
        cats: usize,
    ) -> (ItemAttributes, ShortlistRequest) {
        let attrs = ItemAttributes {
            category: (0..n).map(|_| rng.below(cats as u64) as u32).collect(),
            is_new: (0..n).map(|_| rng.next_f32() < 0.2).collect(),
            price: (0..n)
                .map(|i| match i % 9 {
                    4 => None,
                    7 => Some(-0.0),
                    _ => Some(rng.next_f32() * 50.0 - 5.0),
                })
                .collect(),
        };
        let mut sparse: Vec<u32> = (0..rng.below(40))
            .map(|_| rng.below(n as u64) as u32)
            .collect();
        sparse.sort_unstable();
        sparse.dedup();
        let coin = |rng: &mut SplitMix64| rng.next_f32() < 0.4;
        let req = ShortlistRequest {
            per_chunk: [0, 1, 7, 30, TOPK_MAX][rng.below(5) as usize],
            // One rule short of the categories now and then: the last one is then out.
            categories: (0..cats - usize::from(coin(rng)))
                .map(|_| CategoryRule {
                    allowed: rng.next_f32() < 0.8,
                    boost: if coin(rng) { unit(rng) * 3.0 } else { 0.0 },
                })
                .collect(),
            new_boost: if coin(rng) { unit(rng) * 2.0 } else { 0.0 },
            new_only: rng.next_f32() < 0.15,
            price_min: coin(rng).then(|| {
                if coin(rng) {
                    0.0
                } else {
                    rng.next_f32() * 20.0
                }
            }),
            price_max: coin(rng).then(|| 20.0 + rng.next_f32() * 30.0),
            sparse,
        };
        (attrs, req)
    }

    /// Candidates and gathered logits by their bits.
    fn bits(s: &Shortlist) -> (Vec<(u32, u32, u32)>, Vec<u32>) {
        (
            (s.candidates.iter())
                .map(|c| (c.index, c.base.to_bits(), c.blended.to_bits()))
                .collect(),
            s.sparse_logits.iter().map(|x| x.to_bits()).collect(),
        )
    }

    /// Checks `requests` random shortlists on `gpu` against the scalar reference over
    /// the GPU's own logits, bit for bit, and the bytes each reads back.
    fn check_shortlists(gpu: &GpuScorer, rng: &mut SplitMix64, plan: &HeadPlan, requests: usize) {
        let n = plan.n_items;
        let chunks = n.div_ceil(TOPK_CHUNK as usize);
        for case in 0..requests {
            let (attrs, req) = shortlist_case(rng, n, 6);
            gpu.set_items(&attrs).expect("attributes fit");
            let query = random_query(rng, plan);
            let logits = pollster::block_on(gpu.scores(&query)).expect("scores");
            let before = gpu.bytes_read_back();
            let got = pollster::block_on(gpu.shortlist(&query, &req)).expect("shortlist");
            let read = gpu.bytes_read_back() - before;
            let want = shortlist_reference(&logits, &attrs, &req, TOPK_CHUNK as usize);
            assert_eq!(bits(&got), bits(&want), "n={n} case {case}: {req:?}");
            assert_eq!(
                read,
                (12 * req.per_chunk * chunks + 4 * req.sparse.len()) as u64,
                "case {case}: bytes read back"
            );
        }
    }

    /// The shortlist pass (filters, blend, per-chunk top-m, gather) against its scalar
    /// reference over the GPU's own logits, bit for bit, with ties and NaN logits.
    #[test]
    fn gpu_shortlist_matches_the_reference() {
        let Some((device, queue, info)) = device() else {
            return;
        };
        println!("adapter: {info}");
        let mut rng = SplitMix64::new(0x5407);
        for (n, d, h) in [(2600, 12, 16), (700, 5, 9)] {
            let plan = random_plan(&mut rng, n, d, h, &[8]);
            let gpu = GpuScorer::with_device(device.clone(), queue.clone(), &plan).expect("fits");
            check_shortlists(&gpu, &mut rng, &plan, 25);
        }
        // Ties and NaN: a head whose logits are all equal, or NaN (w_out = NaN).
        let mut plan = random_plan(&mut rng, 2100, 4, 4, &[]);
        plan.w_out = vec![0.0; 4];
        plan.item_vectors = vec![0.0; 2100 * 4].into();
        let gpu = GpuScorer::with_device(device.clone(), queue.clone(), &plan).expect("fits");
        check_shortlists(&gpu, &mut rng, &plan, 6);
        plan.w_out = vec![f32::NAN; 4];
        let gpu = GpuScorer::with_device(device, queue, &plan).expect("fits");
        check_shortlists(&gpu, &mut rng, &plan, 6);
    }

    /// A 2-D top-k dispatch with workgroups past the last chunk (34 chunks on a 33 x 2
    /// grid): those do nothing, and the shortlist still matches the reference.
    #[test]
    fn gpu_shortlist_in_two_dimensions_matches_the_reference() {
        if device().is_none() {
            return;
        }
        let (device, queue) = limited_device(|l| l.max_compute_workgroups_per_dimension = 33)
            .expect("a device with lower limits");
        let mut rng = SplitMix64::new(0x2d);
        let plan = random_plan(&mut rng, 34 * 1024, 6, 8, &[]);
        let gpu = GpuScorer::with_device(device, queue, &plan).expect("fits in 2-D");
        check_shortlists(&gpu, &mut rng, &plan, 4);
    }

    /// Requests the pass cannot serve are refused with `GpuError::Shortlist`.
    #[test]
    fn gpu_shortlist_refuses_bad_requests() {
        let Some((device, queue, _)) = device() else {
            return;
        };
        let mut rng = SplitMix64::new(9);
        let plan = random_plan(&mut rng, 300, 4, 4, &[]);
        let query = random_query(&mut rng, &plan);
        let gpu = GpuScorer::with_device(device, queue, &plan).expect("fits");
        let (attrs, req) = shortlist_case(&mut rng, 300, 3);
        let refused = |r: Result<Shortlist, GpuError>| matches!(r, Err(GpuError::Shortlist(_)));
        assert!(
            refused(pollster::block_on(gpu.shortlist(&query, &req))),
            "before set_items"
        );
        let short = ItemAttributes {
            category: vec![0; 299],
            ..attrs.clone()
        };
        assert!(matches!(gpu.set_items(&short), Err(GpuError::Shortlist(_))));
        gpu.set_items(&attrs).expect("attributes fit");
        let bad = [
            ShortlistRequest {
                per_chunk: TOPK_MAX + 1,
                ..req.clone()
            },
            ShortlistRequest {
                sparse: vec![5, 3],
                ..req.clone()
            },
            ShortlistRequest {
                sparse: vec![300],
                ..req.clone()
            },
        ];
        for b in &bad {
            assert!(
                refused(pollster::block_on(gpu.shortlist(&query, b))),
                "{b:?}"
            );
        }
        assert!(pollster::block_on(gpu.shortlist(&query, &req)).is_ok());
    }

    #[test]
    fn gpu_reports_too_large_instead_of_failing() {
        if device().is_none() {
            return;
        }
        let (device, queue) = limited_device(|l| {
            l.max_storage_buffer_binding_size = 64 * 1024;
            l.max_compute_workgroups_per_dimension = 4;
        })
        .expect("a device with lower limits");
        let mut rng = SplitMix64::new(5);
        // V is 1000 x 64 floats = 256 KiB > 64 KiB.
        let big = random_plan(&mut rng, 1000, 64, 8, &[]);
        let err = GpuScorer::with_device(device.clone(), queue.clone(), &big)
            .err()
            .expect("too large");
        assert!(matches!(err, GpuError::TooLarge(_)), "{err}");
        // 1100 items need 18 GEMM tiles of 64, more than a 4 x 4 grid of workgroups.
        let many = random_plan(&mut rng, 1100, 1, 1, &[]);
        let err = GpuScorer::with_device(device, queue, &many)
            .err()
            .expect("too many workgroups");
        assert!(matches!(err, GpuError::TooLarge(_)), "{err}");
    }
}

/// The WGSL `@group/@binding` declarations of every `src/kernels/*.wgsl` file against
/// the Rust binding constants and layouts (`kernels::gpu::bindings`).
#[cfg(feature = "gpu")]
mod wgsl_bindings {
    use vitrine::kernels::gpu::bindings::{Access, Binding, ShaderInterface, GROUP, SHADERS};

    /// `(group, binding, name, access)` of every `var` with a `@binding` attribute, in
    /// source order. Comments are stripped and declarations may span lines.
    fn declarations(src: &str) -> Vec<(u32, u32, String, Access)> {
        let code: String = src
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(" ");
        let attr = |decl: &str, name: &str| -> u32 {
            let rest = decl
                .split(name)
                .nth(1)
                .unwrap_or_else(|| panic!("{name} missing in `{decl}`"));
            let end = rest.find(')').expect("closing parenthesis");
            rest[..end].trim().parse().expect("a number")
        };
        let mut out = Vec::new();
        for piece in code.split(';') {
            if !piece.contains("@binding(") {
                continue;
            }
            let decl = piece.trim();
            let var = decl.split("var<").nth(1).expect("a var<...> declaration");
            let (space, rest) = var.split_once('>').expect("closing >");
            let name = rest.split(':').next().expect("a name").trim().to_string();
            let access = match space.replace(' ', "").as_str() {
                "uniform" => Access::Uniform,
                "storage" | "storage,read" => Access::Read,
                "storage,read_write" => Access::ReadWrite,
                other => panic!("unknown address space `{other}` in `{decl}`"),
            };
            out.push((attr(decl, "@group("), attr(decl, "@binding("), name, access));
        }
        out
    }

    /// Differences between a shader source's declarations and its Rust table.
    fn check(shader: &ShaderInterface, src: &str) -> Result<(), String> {
        let mut found = declarations(src);
        found.sort_by_key(|d| d.1);
        let want: Vec<(u32, u32, String, Access)> = shader
            .bindings
            .iter()
            .map(|b: &Binding| (GROUP, b.binding, b.name.to_string(), b.access))
            .collect();
        if found == want {
            Ok(())
        } else {
            Err(format!(
                "{}: WGSL declares {found:?}, Rust has {want:?}",
                shader.file
            ))
        }
    }

    fn wgsl_files() -> Vec<(String, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/kernels");
        let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
            .expect("src/kernels")
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "wgsl"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).expect("readable WGSL"))
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn every_wgsl_binding_matches_its_rust_constant() {
        let files = wgsl_files();
        assert_eq!(files.len(), SHADERS.len(), "one table per .wgsl file");
        for (file, src) in &files {
            let shader = SHADERS
                .iter()
                .find(|s| s.file == file.as_str())
                .unwrap_or_else(|| panic!("{file} has no binding table"));
            assert_eq!(shader.source, src, "{file}: the compiled-in source");
            assert!(!shader.bindings.is_empty(), "{file}: no bindings");
            check(shader, src).unwrap();
        }
    }

    #[test]
    fn the_check_catches_drift() {
        let head = &SHADERS[0];
        assert_eq!(head.file, "head.wgsl");
        let cases = [
            ("@binding(1)", "@binding(7)"),
            ("var<storage, read> A", "var<storage, read_write> A"),
            ("var<storage, read> colbias", "var<storage, read> bias"),
        ];
        for (from, to) in cases {
            assert!(head.source.contains(from), "{from}");
            let drifted = head.source.replace(from, to);
            assert!(
                check(head, &drifted).is_err(),
                "{from} -> {to} went unnoticed"
            );
        }
        // A declaration spread over two lines is still seen.
        let split = head.source.replace(
            "@group(0) @binding(0) var<uniform> p",
            "@group(0) @binding(0)\nvar<uniform> p",
        );
        check(head, &split).unwrap();
    }
}
