//! Scoring-head benchmarks: `scores()` for n = 4,000 and 100,000 items (1,000,000 with
//! `VITRINE_BENCH_LARGE=1`), d = 64, h = 64, no extra layer: every CPU kernel of
//! `CpuKernel::ALL` (Scalar and Native), each also on the same plan with int8 item
//! vectors (`native_int8`, `scalar_int8`: the integer first layer), and the GPU path when wgpu finds an adapter
//! (`gpu_scores`: one request with readback; `gpu_kernels_only`: 20 head evaluations per
//! submission, no readback of logits; `gpu_top10`; `gpu_shortlist10`: the
//! recommendation's shortlist for 10 places over 8 categories, one boosted, 20 sparse
//! items). Throughput is reported as
//! elements = FLOPs, so criterion's `Gelem/s` reads as GFLOP/s. The `peak` group
//! measures this machine's multiply-add peak in the same run (one thread, and all rayon
//! threads), so GEMM throughput can be quoted as a fraction of it.
//!
//! `cargo bench --bench kernels` (all), `cargo bench --bench kernels -- gpu` (GPU only).
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;
use vitrine::kernels::{native, CpuKernel, HeadPlan, Int8Items, ItemVectors, UserQuery};
use vitrine::rng::SplitMix64;

const D: usize = 64;
const H: usize = 64;
/// Head evaluations per submission in the GPU kernels-only benchmark.
#[cfg(feature = "gpu")]
const GPU_REPEATS: u32 = 20;

fn plan_and_query(n: usize) -> (HeadPlan, UserQuery) {
    let mut rng = SplitMix64::new(0x2545_f491_4f6c_dd1d);
    let mut rnd = move || rng.next_f32() - 0.5;
    let plan = HeadPlan {
        n_items: n,
        dim: D,
        hidden: H,
        item_vectors: (0..n * D).map(|_| rnd()).collect::<Vec<f32>>().into(),
        layers: vec![],
        w_out: (0..H).map(|_| rnd()).collect(),
        b_out: 0.1,
        gpu_f16: false,
    };
    let query = UserQuery {
        m: (0..D * (H + 1)).map(|_| rnd()).collect(),
        a: (0..H).map(|_| rnd()).collect(),
    };
    (plan, query)
}

fn sizes() -> Vec<usize> {
    let mut v = vec![4_000, 100_000];
    if std::env::var("VITRINE_BENCH_LARGE").as_deref() == Ok("1") {
        v.push(1_000_000);
    }
    v
}

fn peak(c: &mut Criterion) {
    let mut g = c.benchmark_group("peak");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let iters = 1_000_000u64;
    let (_, flops) = native::fma_peak(iters);
    g.throughput(Throughput::Elements(flops));
    g.bench_function(format!("fma_1thread_{}", native::variant()), |b| {
        b.iter(|| black_box(native::fma_peak(black_box(iters))))
    });
    let threads = rayon::current_num_threads();
    g.throughput(Throughput::Elements(flops * threads as u64));
    g.bench_function(format!("fma_{threads}threads_{}", native::variant()), |b| {
        b.iter(|| {
            rayon::broadcast(|_| black_box(native::fma_peak(black_box(iters))));
        })
    });
    g.finish();
}

fn cpu(c: &mut Criterion) {
    for n in sizes() {
        let (plan, query) = plan_and_query(n);
        let flops = 2 * (plan.macs_per_item() * n) as u64;
        let mut out = vec![0.0f32; n];
        let mut g = c.benchmark_group(format!("scores_n{n}"));
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3))
            .throughput(Throughput::Elements(flops));
        for &kernel in CpuKernel::ALL {
            if kernel == CpuKernel::Scalar && n > 100_000 {
                continue;
            }
            g.bench_with_input(BenchmarkId::new(kernel.name(), n), &n, |b, _| {
                b.iter(|| kernel.scores(&plan, &query, black_box(&mut out)))
            });
        }
        // The same plan with int8 item vectors (the integer first layer), in the same
        // group: read its time as a ratio to the f32 row beside it.
        let v = plan.item_vectors.to_f32().into_owned();
        let plan8 = HeadPlan {
            item_vectors: ItemVectors::Int8(Int8Items::from_f32(&v, D)),
            ..plan.clone()
        };
        drop(v);
        for &kernel in CpuKernel::ALL {
            if kernel == CpuKernel::Scalar && n > 100_000 {
                continue;
            }
            let name = format!("{}_int8", kernel.name());
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| kernel.scores(&plan8, &query, black_box(&mut out)))
            });
        }
        g.finish();
    }
}

#[cfg(feature = "gpu")]
fn gpu(c: &mut Criterion) {
    use vitrine::kernels::gpu::GpuScorer;
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::all(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        ..Default::default()
    }));
    let Ok(adapter) = adapter else {
        eprintln!("gpu benchmarks skipped: no GPU adapter");
        return;
    };
    let (device, queue) =
        match pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("vitrine-bench"),
            required_limits: adapter.limits(),
            ..Default::default()
        })) {
            Ok(dq) => dq,
            Err(e) => {
                eprintln!("gpu benchmarks skipped: {e}");
                return;
            }
        };
    for n in sizes() {
        let (plan, query) = plan_and_query(n);
        let flops = 2 * (plan.macs_per_item() * n) as u64;
        let gpu = match GpuScorer::with_device(device.clone(), queue.clone(), &plan) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("gpu n={n} skipped: {e}");
                continue;
            }
        };
        eprintln!("gpu adapter: {}", gpu.adapter_info());
        let mut g = c.benchmark_group(format!("gpu_n{n}"));
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3))
            .throughput(Throughput::Elements(flops));
        g.bench_function(BenchmarkId::new("gpu_scores", n), |b| {
            b.iter(|| pollster::block_on(gpu.scores(&query)).expect("gpu scores"))
        });
        g.throughput(Throughput::Elements(flops * GPU_REPEATS as u64));
        g.bench_function(BenchmarkId::new("gpu_kernels_only", n), |b| {
            b.iter(|| pollster::block_on(gpu.run_repeated(&query, GPU_REPEATS)).expect("gpu run"))
        });
        // The same head with the item vectors held as f16 and as int8 on the GPU (what
        // f16 and int8 weight files upload): half and a quarter of the f32 reads.
        let v = plan.item_vectors.to_f32().into_owned();
        let held = [
            (
                "gpu_kernels_only_f16",
                HeadPlan {
                    gpu_f16: true,
                    ..plan.clone()
                },
            ),
            (
                "gpu_kernels_only_int8",
                HeadPlan {
                    item_vectors: ItemVectors::Int8(Int8Items::from_f32(&v, D)),
                    ..plan.clone()
                },
            ),
        ];
        for (name, held_plan) in held {
            match gpu.for_plan(&held_plan) {
                Ok(other) => g.bench_function(BenchmarkId::new(name, n), |b| {
                    b.iter(|| {
                        pollster::block_on(other.run_repeated(&query, GPU_REPEATS))
                            .expect("gpu run")
                    })
                }),
                Err(e) => {
                    eprintln!("{name} n={n} skipped: {e}");
                    continue;
                }
            };
        }
        g.throughput(Throughput::Elements(flops));
        g.bench_function(BenchmarkId::new("gpu_top10", n), |b| {
            b.iter(|| pollster::block_on(gpu.top_k(&query, 10)).expect("gpu top_k"))
        });
        let (attrs, req) = shortlist_request(n);
        gpu.set_items(&attrs).expect("attributes fit");
        g.bench_function(BenchmarkId::new("gpu_shortlist10", n), |b| {
            b.iter(|| pollster::block_on(gpu.shortlist(&query, &req)).expect("gpu shortlist"))
        });
        g.finish();
    }
}

/// Items over 8 categories (every 10th new, priced), a request for 10 places with one
/// category boosted, a new-item boost and 20 sparse items.
#[cfg(feature = "gpu")]
fn shortlist_request(
    n: usize,
) -> (
    vitrine::kernels::shortlist::ItemAttributes,
    vitrine::kernels::shortlist::ShortlistRequest,
) {
    use vitrine::kernels::shortlist::{CategoryRule, ItemAttributes, ShortlistRequest};
    let attrs = ItemAttributes {
        category: (0..n).map(|i| (i % 8) as u32).collect(),
        is_new: (0..n).map(|i| i % 10 == 0).collect(),
        price: (0..n).map(|i| Some((i % 100) as f32)).collect(),
    };
    let req = ShortlistRequest {
        per_chunk: 10,
        categories: (0..8)
            .map(|c| CategoryRule {
                allowed: true,
                boost: if c == 3 { 0.5 } else { 0.0 },
            })
            .collect(),
        new_boost: 0.25,
        sparse: (0..20).map(|j| (j * (n / 20)) as u32).collect(),
        ..ShortlistRequest::default()
    };
    (attrs, req)
}

#[cfg(not(feature = "gpu"))]
fn gpu(_: &mut Criterion) {}

criterion_group!(benches, peak, cpu, gpu);
criterion_main!(benches);
