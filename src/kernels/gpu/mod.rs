//! The wgpu compute-shader path for the scoring head (WebGPU in browsers, Vulkan, Metal
//! or DX12 natively). Item-side matrices stay resident on the GPU; a request uploads the
//! user query only.
//!
//! Layout, `hello_compute` style: device and adapter setup live in [`device`]
//! ([`GpuScorer::new`] uses [`request_device`]; tests and benchmarks inject their own
//! device through [`GpuScorer::with_device`]); each shader's bindings are named
//! constants with an explicit bind-group and pipeline layout in [`bindings`]; one plan's
//! buffers and recorded passes are in `resident`.
//!
//! One request is a few compute passes in one submission: `head.wgsl` (tiled GEMM with
//! fused bias + ReLU: a `TILE_M × TILE_N` tile per workgroup, a `REG_M × REG_N`
//! register block per thread) for the first layer and each further layer, `output.wgsl`
//! for the logits ([`OUT_LANES`] threads per item, reading neighbouring floats of its
//! row and summing their partial dot products in workgroup memory), and for
//! [`GpuScorer::top_k`] `topk.wgsl` (per-workgroup selection; the CPU merges the few
//! candidates). [`GpuScorer::shortlist`] runs `topk.wgsl` in its shortlist mode: the
//! recommendation filters and the dense part of the blend on the GPU, per-workgroup
//! top-`m` of the blended logits, and the logits of a small sparse set gathered in the
//! same pass ([`super::shortlist`] states the math and is its scalar reference), so a
//! recommendation reads back `12 · m · chunks + 4 · |S|` bytes instead of `4 · n`.
//! [`GpuScorer::bytes_read_back`] counts every byte read back. Workgroup sizes are the
//! Rust constants below, substituted into the WGSL source.
pub mod bindings;
pub mod device;
mod resident;

pub use device::request_device;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::shortlist::{self, Candidate, ItemAttributes, Shortlist, ShortlistRequest};
use super::{rank_cmp, HeadPlan, UserQuery};
use bindings::Pipelines;
use resident::{ItemBuffers, Resident};

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
pub const TOPK_MAX: usize = shortlist::MAX_PER_CHUNK;

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
    /// Reading results back failed.
    #[error("GPU readback failed: {0}")]
    Readback(String),
    /// The device was lost (destroyed, driver reset, tab in the background too long) or
    /// reported an error outside any call: this scorer cannot be used again.
    #[error("GPU device lost: {0}")]
    Lost(String),
    /// The plan or query has inconsistent tensor lengths.
    #[error("invalid head input: {0}")]
    Shape(#[from] super::ShapeError),
    /// A shortlist request or item attributes that do not fit this scorer (attributes
    /// not set or of the wrong length, `S` unsorted or out of range, `m` too large).
    #[error("invalid shortlist: {0}")]
    Shortlist(String),
}

/// The shaders' `a_format` / `v_format`: f32 bits.
const FORMAT_F32: u32 = 0;
/// int8 bytes packed four to a word, each row scaled.
const FORMAT_INT8: u32 = 1;
/// f16 halves packed two to a word (low half first).
const FORMAT_F16: u32 = 2;

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
    /// How `A` is stored: [`FORMAT_F32`], [`FORMAT_INT8`] (packed, row stride `lda`
    /// bytes, scaled by `a_scale`) or [`FORMAT_F16`] (packed two to a word).
    a_format: u32,
    pad: [u32; 3],
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
    /// Row stride of `V` (elements: floats, int8 bytes or halves).
    ldv: u32,
    /// How `V` is stored ([`GemmParams::a_format`]'s values; int8 rows scaled by
    /// `v_scale`).
    v_format: u32,
    pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct TopkParams {
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
    pad: u32,
}

/// `TopkParams::mode` of the shortlist.
const MODE_SHORTLIST: u32 = 1;
/// `TopkParams::flags` bits.
const FLAG_NEW_ONLY: u32 = 1;
const FLAG_PRICE_LO: u32 = 2;
const FLAG_PRICE_HI: u32 = 4;

/// The item attributes uploaded by [`GpuScorer::set_items`] and the top-k pass bound to
/// them.
struct Items {
    buffers: ItemBuffers,
    pass: Pass,
}

/// One compute dispatch with its bound resources.
struct Pass {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    groups: [u32; 3],
}

/// The scoring head on a GPU.
pub struct GpuScorer {
    pipelines: Pipelines,
    device: wgpu::Device,
    queue: wgpu::Queue,
    fault: Fault,
    info: String,
    n: usize,
    dim: usize,
    hidden: usize,
    resident: Resident,
    items: Mutex<Option<Items>>,
    read_back: AtomicU64,
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

impl GpuScorer {
    /// Requests an adapter and device ([`request_device`]), then uploads the plan.
    pub async fn new(plan: &HeadPlan) -> Result<GpuScorer, GpuError> {
        let (device, queue) = request_device().await?;
        Self::with_device(device, queue, plan)
    }

    /// Uses an existing device (tests inject one): checks its limits, compiles the
    /// pipelines, then uploads the plan.
    pub fn with_device(
        device: wgpu::Device,
        queue: wgpu::Queue,
        plan: &HeadPlan,
    ) -> Result<GpuScorer, GpuError> {
        let info = device::describe(&device);
        device::check_kernel_limits(&device.limits())?;
        let fault = Fault::watch(&device);
        let pipelines = Pipelines::new(&device);
        Self::build(device, queue, fault, info, pipelines, plan)
    }

    /// Another plan on this scorer's device, reusing its compiled pipelines (for a model
    /// reload without recompiling shaders).
    pub fn for_plan(&self, plan: &HeadPlan) -> Result<GpuScorer, GpuError> {
        Self::build(
            self.device.clone(),
            self.queue.clone(),
            self.fault.clone(),
            self.info.clone(),
            self.pipelines.clone(),
            plan,
        )
    }

    fn build(
        device: wgpu::Device,
        queue: wgpu::Queue,
        fault: Fault,
        info: String,
        pipelines: Pipelines,
        plan: &HeadPlan,
    ) -> Result<GpuScorer, GpuError> {
        plan.validate()?;
        let resident = resident::upload(&device, &pipelines, plan)?;
        Ok(GpuScorer {
            pipelines,
            device,
            queue,
            fault,
            info,
            n: plan.n_items,
            dim: plan.dim,
            hidden: plan.hidden,
            resident,
            items: Mutex::new(None),
            read_back: AtomicU64::new(0),
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

    /// Releases the device now (as a driver reset or `GPUDevice.destroy()` would): every
    /// later call on this scorer, and on the others sharing its device, fails with
    /// [`GpuError::Lost`]. For tests of the CPU fall-back and for pages that unload.
    pub fn destroy_device(&self) {
        self.fault.set("destroyed by the caller".into());
        self.device.destroy();
    }

    fn check_query(&self, query: &UserQuery) -> Result<(), GpuError> {
        self.fault.check()?;
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
                .write_buffer(&self.resident.m_buf, 0, bytemuck::cast_slice(&query.m));
        }
        if !query.a.is_empty() {
            self.queue
                .write_buffer(&self.resident.a_buf, 0, bytemuck::cast_slice(&query.a));
        }
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("vitrine.head"),
            });
        for pass in &self.resident.passes {
            run_pass(&mut encoder, pass);
        }
        encoder
    }

    /// Copies `bytes` of `src` to a fresh staging buffer, submits, and maps it.
    async fn read_back(
        &self,
        encoder: wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        bytes: u64,
    ) -> Result<Vec<u8>, GpuError> {
        self.read_back_parts(encoder, &[(src, bytes)]).await
    }

    /// Copies the first `bytes` of each buffer, one after the other, to a fresh staging
    /// buffer, submits, and maps it; adds the bytes to [`GpuScorer::bytes_read_back`].
    async fn read_back_parts(
        &self,
        mut encoder: wgpu::CommandEncoder,
        parts: &[(&wgpu::Buffer, u64)],
    ) -> Result<Vec<u8>, GpuError> {
        let total: u64 = parts.iter().map(|(_, b)| b).sum();
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("vitrine.staging"),
            size: total.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut at = 0;
        for &(src, bytes) in parts {
            if bytes > 0 {
                encoder.copy_buffer_to_buffer(src, 0, &staging, at, bytes);
            }
            at += bytes;
        }
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
        self.fault.check()?;
        mapped.map_err(|e| GpuError::Readback(e.to_string()))?;
        let mut bytes = {
            let view = staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| GpuError::Readback(e.to_string()))?;
            view.to_vec()
        };
        staging.unmap();
        bytes.truncate(total as usize);
        self.read_back.fetch_add(total, Ordering::Relaxed);
        Ok(bytes)
    }

    /// Bytes the item vectors take on the GPU (rows and, for an int8 plan, their
    /// scales): an int8 plan's stay int8 (about a quarter of the f32 size), an f16
    /// plan's ([`HeadPlan::gpu_f16`]) are halves (half of it).
    pub fn item_vector_bytes(&self) -> u64 {
        self.resident.item_vector_bytes
    }

    /// Bytes this scorer has read back from the GPU so far (every call; for tests and
    /// benchmarks of the read-back volume).
    pub fn bytes_read_back(&self) -> u64 {
        self.read_back.load(Ordering::Relaxed)
    }

    /// The head's logit for every item, as [`super::CpuKernel::scores`].
    pub async fn scores(&self, query: &UserQuery) -> Result<Vec<f32>, GpuError> {
        self.check_query(query)?;
        if self.n == 0 {
            return Ok(Vec::new());
        }
        let encoder = self.encode_head(query);
        let bytes = self
            .read_back(encoder, &self.resident.logits, self.n as u64 * 4)
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
            for pass in &self.resident.passes {
                run_pass(&mut encoder, pass);
            }
        }
        self.read_back(encoder, &self.resident.logits, 4)
            .await
            .map(|_| ())
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
        let Some(topk) = &self.resident.topk else {
            return Err(GpuError::Shortlist("top-k pass missing".into()));
        };
        let mut encoder = self.encode_head(query);
        let params = self.topk_params(k, 0);
        self.queue
            .write_buffer(&self.resident.topk_params, 0, bytemuck::bytes_of(&params));
        run_pass(&mut encoder, topk);
        let bytes = self
            .read_back(
                encoder,
                &self.resident.topk_candidates,
                (self.resident.topk_chunks * k * 12) as u64,
            )
            .await?;
        let mut cands: Vec<(u32, f32)> = candidates(&bytes).map(|c| (c.index, c.base)).collect();
        cands.sort_unstable_by(rank_cmp);
        cands.truncate(k);
        Ok(cands)
    }

    /// The top-k pass's parameters for `k` per chunk in `mode` (shortlist fields zero).
    fn topk_params(&self, k: usize, mode: u32) -> TopkParams {
        let (tx, _) = (self.resident.topk_groups[0], self.resident.topk_groups[1]);
        TopkParams {
            n: self.n as u32,
            k: k as u32,
            groups_x: tx,
            mode,
            n_chunks: self.resident.topk_chunks as u32,
            ..TopkParams::default()
        }
    }

    /// Uploads the catalogue's item attributes for [`GpuScorer::shortlist`] (once per
    /// catalogue; a second call replaces them).
    ///
    /// # Errors
    /// [`GpuError::Shortlist`] when `attrs` does not have one entry per item or a
    /// category index needs more than 31 bits; [`GpuError::TooLarge`] when the buffers
    /// do not fit the device.
    pub fn set_items(&self, attrs: &ItemAttributes) -> Result<(), GpuError> {
        self.fault.check()?;
        if !attrs.is_consistent() || attrs.len() != self.n {
            return Err(GpuError::Shortlist(format!(
                "item attributes for {} items, the plan has {}",
                attrs.len(),
                self.n
            )));
        }
        let max_cat = attrs.category.iter().copied().max().unwrap_or(0);
        if max_cat >= 1 << 31 {
            return Err(GpuError::Shortlist(format!(
                "category index {max_cat} needs more than 31 bits"
            )));
        }
        let words: Vec<u32> = (attrs.category.iter().zip(&attrs.is_new))
            .map(|(&c, &new)| c | (u32::from(new) << 31))
            .collect();
        let prices: Vec<u32> = attrs
            .price
            .iter()
            .map(|&p| shortlist::price_key(p))
            .collect();
        let sparse_cap = self.n.clamp(1, shortlist::MAX_SPARSE);
        let buffers = resident::item_buffers(
            &self.device,
            &words,
            &prices,
            max_cat as usize + 1,
            sparse_cap,
        )?;
        let pass =
            resident::topk_pass(&self.device, &self.pipelines.topk, &self.resident, &buffers);
        *self.items.lock().unwrap_or_else(|e| e.into_inner()) = Some(Items { buffers, pass });
        Ok(())
    }

    /// The shortlist of `req` over this query's logits, computed on the GPU
    /// ([`super::shortlist`]; its scalar reference is
    /// [`super::shortlist::shortlist_reference`] with `TOPK_CHUNK`). Reads back
    /// `12 · m · chunks + 4 · |S|` bytes.
    ///
    /// # Errors
    /// [`GpuError::Shortlist`] without [`GpuScorer::set_items`], for `m` over
    /// [`TOPK_MAX`] or an `S` that is not sorted, distinct and inside the catalogue; any
    /// device error as [`GpuScorer::scores`].
    pub async fn shortlist(
        &self,
        query: &UserQuery,
        req: &ShortlistRequest,
    ) -> Result<Shortlist, GpuError> {
        self.check_query(query)?;
        let bad = |m: String| Err(GpuError::Shortlist(m));
        if req.per_chunk > TOPK_MAX {
            return bad(format!("m = {} exceeds {TOPK_MAX}", req.per_chunk));
        }
        if req.sparse.windows(2).any(|w| w[0] >= w[1])
            || req.sparse.last().is_some_and(|&i| i as usize >= self.n)
        {
            return bad("S must be sorted, distinct and inside the catalogue".into());
        }
        if self.n == 0 {
            return Ok(Shortlist::default());
        }
        // The encoding under the lock, the read-back (an await) after it.
        let (encoder, gathered, cand_bytes, sparse_bytes) = {
            let guard = self.items.lock().unwrap_or_else(|e| e.into_inner());
            let Some(items) = guard.as_ref() else {
                return bad("no item attributes (call set_items first)".into());
            };
            let b = &items.buffers;
            if req.sparse.len() > b.sparse_cap {
                return bad(format!(
                    "|S| = {} exceeds {}",
                    req.sparse.len(),
                    b.sparse_cap
                ));
            }
            let n_rules = req.categories.len().min(b.rules_cap);
            let rules: Vec<u32> = (req.categories[..n_rules].iter())
                .flat_map(|r| [u32::from(r.allowed), r.boost.to_bits()])
                .collect();
            let mut flags = 0;
            if req.new_only {
                flags |= FLAG_NEW_ONLY;
            }
            if req.price_min.is_some() {
                flags |= FLAG_PRICE_LO;
            }
            if req.price_max.is_some() {
                flags |= FLAG_PRICE_HI;
            }
            let params = TopkParams {
                n_sparse: req.sparse.len() as u32,
                n_rules: n_rules as u32,
                flags,
                price_lo: shortlist::price_key(req.price_min),
                price_hi: shortlist::price_key(req.price_max),
                new_boost: req.new_boost.to_bits(),
                ..self.topk_params(req.per_chunk, MODE_SHORTLIST)
            };
            let mut encoder = self.encode_head(query);
            self.queue
                .write_buffer(&self.resident.topk_params, 0, bytemuck::bytes_of(&params));
            if !rules.is_empty() {
                self.queue
                    .write_buffer(&b.rules, 0, bytemuck::cast_slice(&rules));
            }
            if !req.sparse.is_empty() {
                self.queue
                    .write_buffer(&b.sparse, 0, bytemuck::cast_slice(&req.sparse));
            }
            run_pass(&mut encoder, &items.pass);
            let cand_bytes = (self.resident.topk_chunks * req.per_chunk * 12) as u64;
            let sparse_bytes = (req.sparse.len() * 4) as u64;
            (encoder, b.gathered.clone(), cand_bytes, sparse_bytes)
        };
        let bytes = self
            .read_back_parts(
                encoder,
                &[
                    (&self.resident.topk_candidates, cand_bytes),
                    (&gathered, sparse_bytes),
                ],
            )
            .await?;
        let (cands, sparse) = bytes.split_at(cand_bytes as usize);
        Ok(Shortlist {
            candidates: candidates(cands).collect(),
            sparse_logits: bytemuck::pod_collect_to_vec(sparse),
        })
    }
}

/// The first device loss or uncaptured error of a device, shared by every scorer on it.
/// Installed as the device's lost callback and uncaptured-error handler, so an error
/// outside an error scope is recorded (and fails the next call) instead of reaching
/// wgpu's default handler, which panics natively.
#[derive(Clone, Default)]
struct Fault(Arc<Mutex<Option<String>>>);

impl Fault {
    fn watch(device: &wgpu::Device) -> Fault {
        let fault = Fault::default();
        let lost = fault.clone();
        device.set_device_lost_callback(move |reason, msg| lost.set(format!("{reason:?}: {msg}")));
        let errors = fault.clone();
        device.on_uncaptured_error(Arc::new(move |e| errors.set(e.to_string())));
        fault
    }

    /// Records `why` unless a fault is already recorded (the first one explains best).
    fn set(&self, why: String) {
        let mut f = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f.get_or_insert(why);
    }

    fn check(&self) -> Result<(), GpuError> {
        match &*self.0.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(why) => Err(GpuError::Lost(why.clone())),
            None => Ok(()),
        }
    }
}

/// The filled slots of the top-k pass's output: (item index, logit bits, key value
/// bits) triples; index `u32::MAX` marks an empty slot.
fn candidates(bytes: &[u8]) -> impl Iterator<Item = Candidate> + '_ {
    bytes
        .chunks_exact(12)
        .map(|c| {
            let w =
                |j: usize| u32::from_le_bytes([c[4 * j], c[4 * j + 1], c[4 * j + 2], c[4 * j + 3]]);
            (w(0), w(1), w(2))
        })
        .filter(|&(i, _, _)| i != u32::MAX)
        .map(|(index, base, blended)| Candidate {
            index,
            base: f32::from_bits(base),
            blended: f32::from_bits(blended),
        })
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
