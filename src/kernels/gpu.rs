//! The wgpu compute-shader path for the scoring head (WebGPU in browsers, Vulkan, Metal
//! or DX12 natively). Item-side matrices stay resident on the GPU; a request uploads the
//! user query only.
//!
//! Device setup ([`GpuScorer::new`]) is separate from the kernels
//! ([`GpuScorer::with_device`]). One request is a few compute passes in one submission:
//! `head.wgsl` (tiled GEMM with fused bias + ReLU) for the first layer and each further
//! layer, `output.wgsl` (one thread per item) for the logits, and for [`GpuScorer::top_k`]
//! `topk.wgsl` (per-workgroup selection; the CPU merges the few candidates). Workgroup
//! sizes are the Rust constants below, substituted into the WGSL source.
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use wgpu::util::DeviceExt;

use super::{rank_cmp, HeadPlan, UserQuery};

/// Items per GEMM workgroup tile.
pub const TILE_M: u32 = 64;
/// Output columns per GEMM workgroup tile.
pub const TILE_N: u32 = 64;
/// Depth of the A/B tiles staged in workgroup memory.
pub const TILE_K: u32 = 16;
/// Rows of each thread's register block.
pub const REG_M: u32 = 4;
/// Columns of each thread's register block.
pub const REG_N: u32 = 4;
/// Threads per workgroup of the output pass.
pub const OUT_WG: u32 = 256;
/// Threads per item in the output pass: neighbouring threads read neighbouring floats of
/// one row (32-byte segments), then sum their partial dot products.
pub const OUT_LANES: u32 = 8;
/// Threads per workgroup of the top-k pass.
pub const TOPK_WG: u32 = 256;
/// Logits per top-k workgroup.
pub const TOPK_CHUNK: u32 = 1024;
/// Largest `k` selected on the GPU; larger `k` reads all logits back and ranks on the CPU.
pub const TOPK_MAX: usize = 256;

const HEAD_WGSL: &str = include_str!("head.wgsl");
const OUTPUT_WGSL: &str = include_str!("output.wgsl");
const TOPK_WGSL: &str = include_str!("topk.wgsl");

/// The WGSL sources with every `{{NAME}}` placeholder replaced by its Rust constant.
pub fn shader_source(src: &str) -> String {
    [
        ("{{TILE_M}}", TILE_M),
        ("{{TILE_N}}", TILE_N),
        ("{{TILE_K}}", TILE_K),
        ("{{REG_M}}", REG_M),
        ("{{REG_N}}", REG_N),
        ("{{WG_X}}", TILE_N / REG_N),
        ("{{WG_Y}}", TILE_M / REG_M),
        ("{{OUT_WG}}", OUT_WG),
        ("{{OUT_LANES}}", OUT_LANES),
        ("{{TOPK_WG}}", TOPK_WG),
        ("{{TOPK_CHUNK}}", TOPK_CHUNK),
    ]
    .iter()
    .fold(src.to_string(), |s, (k, v)| s.replace(k, &v.to_string()))
}

/// Errors of the GPU path; callers fall back to a CPU kernel on any of them.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No adapter (no WebGPU in this browser, no Vulkan driver, ...).
    #[error("no GPU adapter available")]
    NoAdapter,
    /// Creating the device failed.
    #[error("GPU device request failed: {0}")]
    Device(String),
    /// The catalog does not fit the device's limits.
    #[error("catalog too large for this GPU: {0}")]
    TooLarge(String),
    /// Reading results back failed or the device was lost.
    #[error("GPU readback failed: {0}")]
    Readback(String),
    /// The plan or query has inconsistent tensor lengths.
    #[error("invalid head input: {0}")]
    Shape(#[from] super::ShapeError),
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct GemmParams {
    rows: u32,
    k: u32,
    ncols: u32,
    lda: u32,
    ldb: u32,
    ldc: u32,
    relu: u32,
    groups_x: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct OutputParams {
    n: u32,
    d: u32,
    width: u32,
    ldh: u32,
    h: u32,
    ldm: u32,
    groups_x: u32,
    b_out: f32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct TopkParams {
    n: u32,
    k: u32,
    groups_x: u32,
    pad: u32,
}

/// One compute dispatch with its bound resources.
struct Pass {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    groups: [u32; 3],
}

/// The compiled pipelines (they depend only on the constants above, not on a plan).
#[derive(Clone)]
struct Pipelines {
    gemm: wgpu::ComputePipeline,
    output: wgpu::ComputePipeline,
    topk: wgpu::ComputePipeline,
}

/// The scoring head on a GPU.
pub struct GpuScorer {
    pipelines: Pipelines,
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: String,
    n: usize,
    dim: usize,
    hidden: usize,
    m_buf: wgpu::Buffer,
    a_buf: wgpu::Buffer,
    logits: wgpu::Buffer,
    passes: Vec<Pass>,
    topk: Pass,
    topk_params: wgpu::Buffer,
    topk_candidates: wgpu::Buffer,
    topk_chunks: usize,
    /// Item-side and parameter buffers, kept for the scorer's lifetime.
    _resident: Vec<wgpu::Buffer>,
}

/// A one-shot channel whose receiver is a future (the map callback is the sender).
struct Shared<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

struct Receiver<T>(Arc<Mutex<Shared<T>>>);

impl<T> Future for Receiver<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match s.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

fn oneshot<T>() -> (impl FnOnce(T), Receiver<T>) {
    let shared = Arc::new(Mutex::new(Shared {
        value: None,
        waker: None,
    }));
    let tx = shared.clone();
    let send = move |v: T| {
        let mut s = tx.lock().unwrap_or_else(|e| e.into_inner());
        s.value = Some(v);
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    };
    (send, Receiver(shared))
}

/// 1-D workgroup count split over x and y when it exceeds the per-dimension limit.
fn split_groups(count: usize, max_dim: u32, what: &str) -> Result<(u32, u32), GpuError> {
    let count = count.max(1);
    let max_dim = max_dim.max(1) as usize;
    let x = count.min(max_dim);
    let y = count.div_ceil(x);
    if y > max_dim {
        return Err(GpuError::TooLarge(format!(
            "{what}: {count} workgroups exceed {max_dim} x {max_dim}"
        )));
    }
    Ok((x as u32, y as u32))
}

/// The kernels' fixed needs against the device's limits (all within WebGPU's defaults).
fn check_kernel_limits(l: &wgpu::Limits) -> Result<(), GpuError> {
    let threads = (TILE_M / REG_M) * (TILE_N / REG_N);
    let invocations = threads.max(OUT_WG).max(TOPK_WG);
    let gemm_bytes = 4 * TILE_K * (TILE_M + 1 + TILE_N);
    let topk_bytes = 4 * (TOPK_CHUNK + 2 * TOPK_WG);
    let output_bytes = 4 * OUT_WG;
    let checks = [
        (
            "max_compute_invocations_per_workgroup",
            l.max_compute_invocations_per_workgroup,
            invocations,
        ),
        (
            "max_compute_workgroup_size_x",
            l.max_compute_workgroup_size_x,
            OUT_WG.max(TOPK_WG).max(TILE_N / REG_N),
        ),
        (
            "max_compute_workgroup_size_y",
            l.max_compute_workgroup_size_y,
            TILE_M / REG_M,
        ),
        (
            "max_compute_workgroup_storage_size",
            l.max_compute_workgroup_storage_size,
            gemm_bytes.max(topk_bytes).max(output_bytes),
        ),
        (
            "max_storage_buffers_per_shader_stage",
            l.max_storage_buffers_per_shader_stage,
            5,
        ),
    ];
    for (name, have, need) in checks {
        if have < need {
            return Err(GpuError::Device(format!(
                "{name} is {have}, the kernels need {need}"
            )));
        }
    }
    Ok(())
}

fn to_u32(x: usize, what: &str) -> Result<u32, GpuError> {
    u32::try_from(x).map_err(|_| GpuError::TooLarge(format!("{what} = {x} exceeds u32")))
}

struct Builder<'a> {
    device: &'a wgpu::Device,
    limits: wgpu::Limits,
}

impl Builder<'_> {
    fn check_size(&self, label: &str, bytes: u64) -> Result<u64, GpuError> {
        let max = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        if bytes > max {
            return Err(GpuError::TooLarge(format!(
                "{label} needs {bytes} bytes, the device binds at most {max}"
            )));
        }
        // Never bind an empty buffer.
        Ok(bytes.max(16))
    }

    fn storage(&self, label: &str, data: &[f32]) -> Result<wgpu::Buffer, GpuError> {
        let bytes = self.check_size(label, (data.len() as u64) * 4)?;
        let mut contents: Vec<u8> = bytemuck::cast_slice(data).to_vec();
        contents.resize(bytes as usize, 0);
        Ok(self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: &contents,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            }))
    }

    fn scratch(
        &self,
        label: &str,
        floats: usize,
        extra: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer, GpuError> {
        let bytes = self.check_size(label, (floats as u64).saturating_mul(4))?;
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE | extra,
            mapped_at_creation: false,
        }))
    }

    fn uniform<T: bytemuck::Pod>(&self, label: &str, value: &T) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::bytes_of(value),
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            })
    }

    fn pipeline(&self, label: &str, src: &str) -> wgpu::ComputePipeline {
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(shader_source(src).into()),
            });
        self.device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            })
    }

    fn pass(
        &self,
        label: &str,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[&wgpu::Buffer],
        groups: [u32; 3],
    ) -> Pass {
        let entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Pass {
            pipeline: pipeline.clone(),
            bind_group,
            groups,
        }
    }
}

impl GpuScorer {
    /// Requests an adapter and device, then uploads the plan.
    pub async fn new(plan: &HeadPlan) -> Result<GpuScorer, GpuError> {
        #[cfg(not(target_arch = "wasm32"))]
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: wgpu::Backends::all(),
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        #[cfg(target_arch = "wasm32")]
        let instance = wgpu::Instance::default();
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions::default())
            .await
            .map_err(|_| GpuError::NoAdapter)?;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("vitrine"),
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::Device(e.to_string()))?;
        Self::with_device(device, queue, plan)
    }

    /// Uses an existing device (tests inject one), then uploads the plan.
    pub fn with_device(
        device: wgpu::Device,
        queue: wgpu::Queue,
        plan: &HeadPlan,
    ) -> Result<GpuScorer, GpuError> {
        let info = device.adapter_info();
        let info = format!("{} ({:?})", info.name, info.backend);
        let b = Builder {
            device: &device,
            limits: device.limits(),
        };
        check_kernel_limits(&b.limits)?;
        let pipelines = Pipelines {
            gemm: b.pipeline("vitrine.head", HEAD_WGSL),
            output: b.pipeline("vitrine.output", OUTPUT_WGSL),
            topk: b.pipeline("vitrine.topk", TOPK_WGSL),
        };
        Self::build(device, queue, info, pipelines, plan)
    }

    /// Another plan on this scorer's device, reusing its compiled pipelines (for a model
    /// reload without recompiling shaders).
    pub fn for_plan(&self, plan: &HeadPlan) -> Result<GpuScorer, GpuError> {
        Self::build(
            self.device.clone(),
            self.queue.clone(),
            self.info.clone(),
            self.pipelines.clone(),
            plan,
        )
    }

    fn build(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: String,
        pipelines: Pipelines,
        plan: &HeadPlan,
    ) -> Result<GpuScorer, GpuError> {
        plan.validate()?;
        let b = Builder {
            device: &device,
            limits: device.limits(),
        };
        let max_dim = b.limits.max_compute_workgroups_per_dimension;
        let (n, d, h) = (plan.n_items, plan.dim, plan.hidden);
        let n32 = to_u32(n, "items")?;
        let widths: Vec<usize> = std::iter::once(h)
            .chain(plan.layers.iter().map(|(_, bias)| bias.len()))
            .collect();
        let max_width = widths.iter().copied().max().unwrap_or(h);

        let v_buf = b.storage("vitrine.V", &plan.item_vectors)?;
        let m_buf = b.storage("vitrine.M", &vec![0.0; d * (h + 1)])?;
        let a_buf = b.storage("vitrine.a", &vec![0.0; h])?;
        let w_out = b.storage("vitrine.w_out", &plan.w_out)?;
        let hidden_floats = n
            .checked_mul(max_width)
            .ok_or_else(|| GpuError::TooLarge("hidden activations overflow".into()))?;
        let h_bufs = [
            b.scratch(
                "vitrine.hidden0",
                hidden_floats,
                wgpu::BufferUsages::empty(),
            )?,
            b.scratch(
                "vitrine.hidden1",
                hidden_floats,
                wgpu::BufferUsages::empty(),
            )?,
        ];
        let logits = b.scratch("vitrine.logits", n, wgpu::BufferUsages::COPY_SRC)?;

        let gemm = &pipelines.gemm;
        let row_tiles = n.div_ceil(TILE_M as usize);
        let (gx, gy) = split_groups(row_tiles, max_dim, "head tiles")?;
        let mut passes = Vec::new();
        let mut keep = Vec::new();
        // First layer: relu(V · M[:, 0..h] + a) into hidden0 (stride h).
        let params = b.uniform(
            "vitrine.head.params0",
            &GemmParams {
                rows: n32,
                k: to_u32(d, "dim")?,
                ncols: to_u32(h, "hidden")?,
                lda: to_u32(d, "dim")?,
                ldb: to_u32(h + 1, "hidden")?,
                ldc: to_u32(h, "hidden")?,
                relu: 1,
                groups_x: gx,
            },
        );
        let col_tiles = to_u32(h.div_ceil(TILE_N as usize).max(1), "column tiles")?;
        passes.push(b.pass(
            "vitrine.head.layer0",
            gemm,
            &[&params, &v_buf, &m_buf, &a_buf, &h_bufs[0]],
            [gx, gy, col_tiles],
        ));
        keep.push(params);
        let mut cur = 0;
        for (l, (w, bias)) in plan.layers.iter().enumerate() {
            let (win, wout) = (widths[l], widths[l + 1]);
            let w_buf = b.storage("vitrine.layer.w", w)?;
            let b_buf = b.storage("vitrine.layer.b", bias)?;
            let params = b.uniform(
                "vitrine.head.params",
                &GemmParams {
                    rows: n32,
                    k: to_u32(win, "width")?,
                    ncols: to_u32(wout, "width")?,
                    lda: to_u32(win, "width")?,
                    ldb: to_u32(wout, "width")?,
                    ldc: to_u32(wout, "width")?,
                    relu: 1,
                    groups_x: gx,
                },
            );
            let col_tiles = to_u32(wout.div_ceil(TILE_N as usize).max(1), "column tiles")?;
            passes.push(b.pass(
                "vitrine.head.layer",
                gemm,
                &[&params, &h_bufs[cur], &w_buf, &b_buf, &h_bufs[1 - cur]],
                [gx, gy, col_tiles],
            ));
            keep.extend([params, w_buf, b_buf]);
            cur = 1 - cur;
        }
        let last = *widths.last().unwrap_or(&h);
        let items_per_group = (OUT_WG / OUT_LANES) as usize;
        let (ox, oy) = split_groups(n.div_ceil(items_per_group), max_dim, "output")?;
        let params = b.uniform(
            "vitrine.output.params",
            &OutputParams {
                n: n32,
                d: to_u32(d, "dim")?,
                width: to_u32(last, "width")?,
                ldh: to_u32(last, "width")?,
                h: to_u32(h, "hidden")?,
                ldm: to_u32(h + 1, "hidden")?,
                groups_x: ox,
                b_out: plan.b_out,
            },
        );
        passes.push(b.pass(
            "vitrine.output",
            &pipelines.output,
            &[&params, &h_bufs[cur], &w_out, &v_buf, &m_buf, &logits],
            [ox, oy, 1],
        ));

        let topk_chunks = n.div_ceil(TOPK_CHUNK as usize).max(1);
        let (tx, ty) = split_groups(topk_chunks, max_dim, "top-k")?;
        let topk_params = b.uniform(
            "vitrine.topk.params",
            &TopkParams {
                n: n32,
                k: 1,
                groups_x: tx,
                pad: 0,
            },
        );
        let cand_words = topk_chunks
            .checked_mul(TOPK_MAX * 2)
            .ok_or_else(|| GpuError::TooLarge("top-k candidates overflow".into()))?;
        let topk_candidates = b.scratch(
            "vitrine.topk.candidates",
            cand_words,
            wgpu::BufferUsages::COPY_SRC,
        )?;
        let topk = b.pass(
            "vitrine.topk",
            &pipelines.topk,
            &[&topk_params, &logits, &topk_candidates],
            [tx, ty, 1],
        );
        let [h0, h1] = h_bufs;
        keep.extend([v_buf, w_out, h0, h1]);
        Ok(GpuScorer {
            pipelines,
            device,
            queue,
            info,
            n,
            dim: d,
            hidden: h,
            m_buf,
            a_buf,
            logits,
            passes,
            topk,
            topk_params,
            topk_candidates,
            topk_chunks,
            _resident: keep,
        })
    }

    /// Adapter description (name and backend), for display.
    pub fn adapter_info(&self) -> String {
        self.info.clone()
    }

    /// The device and queue this scorer runs on (to build further scorers on the same
    /// device with [`GpuScorer::with_device`]).
    pub fn device(&self) -> (wgpu::Device, wgpu::Queue) {
        (self.device.clone(), self.queue.clone())
    }

    fn check_query(&self, query: &UserQuery) -> Result<(), GpuError> {
        let want_m = self.dim * (self.hidden + 1);
        if query.m.len() != want_m || query.a.len() != self.hidden {
            return Err(GpuError::Shape(super::ShapeError::Length {
                name: "query".into(),
                expected: want_m + self.hidden,
                got: query.m.len() + query.a.len(),
            }));
        }
        Ok(())
    }

    /// Uploads the query and records the head's passes.
    fn encode_head(&self, query: &UserQuery) -> wgpu::CommandEncoder {
        if !query.m.is_empty() {
            self.queue
                .write_buffer(&self.m_buf, 0, bytemuck::cast_slice(&query.m));
        }
        if !query.a.is_empty() {
            self.queue
                .write_buffer(&self.a_buf, 0, bytemuck::cast_slice(&query.a));
        }
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("vitrine.head"),
            });
        for pass in &self.passes {
            run_pass(&mut encoder, pass);
        }
        encoder
    }

    /// Copies `bytes` of `src` to a fresh staging buffer, submits, and maps it.
    async fn read_back(
        &self,
        mut encoder: wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        bytes: u64,
    ) -> Result<Vec<u8>, GpuError> {
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("vitrine.staging"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        encoder.copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        self.queue.submit(Some(encoder.finish()));
        let (send, recv) = oneshot();
        staging.slice(..).map_async(wgpu::MapMode::Read, send);
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        let mapped = recv.await;
        if let Some(err) = scope.pop().await {
            return Err(GpuError::Readback(err.to_string()));
        }
        mapped.map_err(|e| GpuError::Readback(e.to_string()))?;
        let bytes = {
            let view = staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| GpuError::Readback(e.to_string()))?;
            view.to_vec()
        };
        staging.unmap();
        Ok(bytes)
    }

    /// The head's logit for every item, as [`super::CpuKernel::scores`].
    pub async fn scores(&self, query: &UserQuery) -> Result<Vec<f32>, GpuError> {
        self.check_query(query)?;
        if self.n == 0 {
            return Ok(Vec::new());
        }
        let encoder = self.encode_head(query);
        let bytes = self
            .read_back(encoder, &self.logits, self.n as u64 * 4)
            .await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// For benchmarks: uploads `query`, runs the head's passes `repeats` times in one
    /// submission and waits for them, reading back a single logit. Separates kernel
    /// throughput from the per-request readback that [`GpuScorer::scores`] includes.
    pub async fn run_repeated(&self, query: &UserQuery, repeats: u32) -> Result<(), GpuError> {
        self.check_query(query)?;
        if self.n == 0 {
            return Ok(());
        }
        let mut encoder = self.encode_head(query);
        for _ in 1..repeats {
            for pass in &self.passes {
                run_pass(&mut encoder, pass);
            }
        }
        self.read_back(encoder, &self.logits, 4).await.map(|_| ())
    }

    /// The `k` best items and their logits, best first, reduced on the GPU.
    ///
    /// Same order as [`super::top_k`] (NaN last, ties to the lower index). For
    /// `k > TOPK_MAX` all logits are read back and ranked on the CPU.
    pub async fn top_k(&self, query: &UserQuery, k: usize) -> Result<Vec<(u32, f32)>, GpuError> {
        self.check_query(query)?;
        let k = k.min(self.n);
        if k == 0 {
            return Ok(Vec::new());
        }
        if k > TOPK_MAX {
            let all = self.scores(query).await?;
            return Ok(super::top_k(&all, k));
        }
        let mut encoder = self.encode_head(query);
        self.queue
            .write_buffer(&self.topk_params, 4, bytemuck::bytes_of(&(k as u32)));
        run_pass(&mut encoder, &self.topk);
        let bytes = self
            .read_back(
                encoder,
                &self.topk_candidates,
                (self.topk_chunks * k * 8) as u64,
            )
            .await?;
        let words: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
        let mut cands: Vec<(u32, f32)> = words
            .chunks_exact(2)
            .filter(|c| c[0] != u32::MAX)
            .map(|c| (c[0], f32::from_bits(c[1])))
            .collect();
        cands.sort_unstable_by(rank_cmp);
        cands.truncate(k);
        Ok(cands)
    }
}

fn run_pass(encoder: &mut wgpu::CommandEncoder, pass: &Pass) {
    let mut cp = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some("vitrine.pass"),
        timestamp_writes: None,
    });
    cp.set_pipeline(&pass.pipeline);
    cp.set_bind_group(0, &pass.bind_group, &[]);
    let [x, y, z] = pass.groups;
    cp.dispatch_workgroups(x, y, z);
}
