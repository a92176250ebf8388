//! `recommend()` from a GPU shortlist against the full read-back, natively on whatever
//! adapter wgpu finds (lavapipe on CI-like machines; `VITRINE_REQUIRE_GPU=1` makes a
//! missing adapter a failure): the same items, order, score bits and reasons over many
//! random requests, `O(k · chunks + |S|)` bytes read back instead of `4n`, the requests
//! and the CPU fall-back when the device is lost.
#![cfg(all(feature = "gpu", not(target_arch = "wasm32")))]

mod common;
use common::shortlist_cases::{assert_same, check_gpu_shortlist, recommender, request};
use vitrine::kernels::gpu::GpuScorer;
use vitrine::kernels::scorer::{BackendChoice, Hooks, Scorer};
use vitrine::rng::SplitMix64;

/// Items: three top-k chunks, the last one partial.
const N: usize = 2600;

fn device() -> Option<(wgpu::Device, wgpu::Queue)> {
    let instance = wgpu::Instance::default();
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())).ok();
    let Some(adapter) = adapter else {
        if std::env::var("VITRINE_REQUIRE_GPU").as_deref() == Ok("1") {
            panic!("VITRINE_REQUIRE_GPU=1 but no GPU adapter was found");
        }
        println!("skipped: no GPU adapter");
        return None;
    };
    println!("adapter: {:?}", adapter.get_info().name);
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("vitrine-test"),
        required_limits: adapter.limits(),
        ..Default::default()
    }))
    .expect("device from an existing adapter");
    Some((device, queue))
}

/// 120 random requests (`common::shortlist_cases::check_gpu_shortlist`): the shortlist's
/// list equals `finish_page` over every GPU logit bit for bit, the GPU's shortlist equals
/// the scalar reference over those logits, and each request reads back
/// `12 · m · chunks + 4 · |S|` bytes (`m` = places after the promoted items, ≤ 120), under
/// the `4n` of the full read-back.
#[test]
fn shortlist_recommendations_equal_the_full_read_back() {
    let Some((device, queue)) = device() else {
        return;
    };
    let rec = recommender(N, 3);
    let gpu = GpuScorer::with_device(device, queue, &rec.plan).expect("plan fits");
    let t = pollster::block_on(check_gpu_shortlist(&gpu, &rec, 0xfa57, 120));
    // The random requests exercised the sparse terms.
    assert!(t.promoted > 3 && t.boosted > 20 && t.basket > 10, "{t:?}");
}

/// Through `Scorer` (what the browser binding calls): the shortlist serves while the GPU
/// works; after the device is lost it answers `None` once, the scorer is on the CPU for
/// good, and the full path there gives the CPU's list.
#[test]
fn scorer_shortlist_falls_back_to_the_cpu_on_device_loss() {
    if device().is_none() {
        return;
    }
    let rec = recommender(N, 5);
    let hooks = Hooks {
        warn: |_| {},
        info: |_| {},
        ..Hooks::native()
    };
    let scorer = pollster::block_on(Scorer::new(&rec.plan, BackendChoice::Gpu, None, hooks));
    assert!(scorer.is_gpu(), "the adapter above gives a device");
    scorer.set_items(&rec.item_attributes());
    let mut rng = SplitMix64::new(77);
    let (history, o, _) = request(&mut rng, &rec);
    let p = rec.prepare(&history, &o).expect("valid");
    let plan = rec.plan_shortlist(&p, &[]).expect("served by a shortlist");
    let q = p.query.as_ref().expect("query");
    let got = pollster::block_on(scorer.shortlist(q, &plan.request)).expect("on the GPU");
    let fast = rec.finish_shortlist(&p, &plan, &got).expect("fits");
    let logits = pollster::block_on(scorer.scores(&rec.plan, q)).expect("scores");
    assert_same("before the loss", &fast, &rec.finish(&p, &logits));
    assert!(scorer.bytes_read_back() > 0);
    scorer.gpu().expect("on the GPU").destroy_device();
    assert!(pollster::block_on(scorer.shortlist(q, &plan.request)).is_none());
    assert!(!scorer.is_gpu(), "switched to the CPU");
    let cpu = pollster::block_on(scorer.scores(&rec.plan, q)).expect("CPU scores");
    let want = rec.recommend(&history, &o).expect("CPU path");
    assert_same("after the loss", &rec.finish(&p, &cpu), &want);
}
