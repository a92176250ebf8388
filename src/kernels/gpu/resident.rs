//! What one plan keeps on the GPU: the item-side buffers (item vectors, layer weights,
//! output weights), the per-request buffers (`M`, `a`), the scratch activations and
//! logits, and the passes recorded over them with their bind groups (each buffer bound
//! by its named constant from [`super::bindings`]).
use wgpu::util::DeviceExt;

use super::bindings::{self as bind, Kernel, Pipelines};
use super::{GemmParams, GpuError, OutputParams, Pass, TopkParams};
use super::{FORMAT_F16, FORMAT_F32, FORMAT_INT8};
use super::{OUT_LANES, OUT_WG, TILE_M, TILE_N, TOPK_CHUNK, TOPK_MAX};
use crate::kernels::{HeadPlan, ItemVectors};

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

fn to_u32(x: usize, what: &str) -> Result<u32, GpuError> {
    u32::try_from(x).map_err(|_| GpuError::TooLarge(format!("{what} = {x} exceeds u32")))
}

/// Buffer and bind-group creation on one device, within its limits.
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
        self.storage_bytes(label, bytemuck::cast_slice(data))
    }

    /// A storage buffer holding `data` (zero-padded to a whole number of words and to
    /// at least 16 bytes; copied only then).
    fn storage_bytes(&self, label: &str, data: &[u8]) -> Result<wgpu::Buffer, GpuError> {
        let bytes = self.check_size(label, (data.len() as u64).next_multiple_of(4))?;
        let padded;
        let contents = if data.len() as u64 == bytes {
            data
        } else {
            let mut v = data.to_vec();
            v.resize(bytes as usize, 0);
            padded = v;
            &padded
        };
        Ok(self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            }))
    }

    /// A storage buffer holding `v` as f16 halves, little-endian, two to a word: each
    /// value rounded to the nearest f16 (ties to even) and saturated to ±65504 (f16's
    /// largest finite value) rather than overflowing to infinity; NaN stays NaN. Written
    /// into the buffer mapped at creation a range at a time through one 512 KiB staging
    /// vector, so no catalogue-sized copy is made.
    fn storage_f16(&self, label: &str, v: &[f32]) -> Result<wgpu::Buffer, GpuError> {
        const MAX: f32 = 65504.0;
        // Values per mapped range: 512 KiB of halves, a multiple of wgpu's MAP_ALIGNMENT.
        const CHUNK: usize = 1 << 18;
        let halves = (v.len() as u64).saturating_mul(2);
        let bytes = self.check_size(label, halves.next_multiple_of(4))?;
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: true,
        });
        let mut staged: Vec<u8> = Vec::with_capacity(2 * CHUNK.min(v.len()) + 2);
        for (c, part) in v.chunks(CHUNK).enumerate() {
            let start = (c * CHUNK * 2) as u64;
            let end = (start + 2 * part.len() as u64).next_multiple_of(4);
            staged.clear();
            staged.extend(part.iter().flat_map(|&x| {
                let h = half::f16::from_f32(x.clamp(-MAX, MAX));
                h.to_bits().to_le_bytes()
            }));
            staged.resize((end - start) as usize, 0);
            let mut range = (buffer.slice(start..end).get_mapped_range_mut())
                .map_err(|e| GpuError::Device(format!("{label}: mapping at creation: {e}")))?;
            range.copy_from_slice(&staged);
        }
        buffer.unmap();
        Ok(buffer)
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

    fn pass(
        &self,
        kernel: &Kernel,
        label: &str,
        buffers: &[(u32, &wgpu::Buffer)],
        groups: [u32; 3],
    ) -> Pass {
        Pass {
            pipeline: kernel.pipeline.clone(),
            bind_group: kernel.bind_group(self.device, label, buffers),
            groups,
        }
    }
}

/// One plan's buffers and recorded passes.
pub(super) struct Resident {
    /// `M`, written per request.
    pub(super) m_buf: wgpu::Buffer,
    /// `a`, written per request.
    pub(super) a_buf: wgpu::Buffer,
    /// The head's output, `[n]`.
    pub(super) logits: wgpu::Buffer,
    /// The head: one GEMM pass per layer, then the output pass.
    pub(super) passes: Vec<Pass>,
    /// Per-workgroup top-k selection over `logits` (plain mode: no item attributes
    /// bound; always `Some` after [`upload`]).
    pub(super) topk: Option<Pass>,
    /// The top-k pass's parameters (`k` is written per request).
    pub(super) topk_params: wgpu::Buffer,
    /// The top-k pass's output.
    pub(super) topk_candidates: wgpu::Buffer,
    /// Top-k workgroups (chunks of `TOPK_CHUNK` logits).
    pub(super) topk_chunks: usize,
    /// The top-k dispatch (chunks split over x and y).
    pub(super) topk_groups: [u32; 3],
    /// Item-side and parameter buffers, kept for the plan's lifetime.
    pub(super) _keep: Vec<wgpu::Buffer>,
    /// Bytes of the item vectors' buffers (rows and scales).
    pub(super) item_vector_bytes: u64,
}

/// How the item vectors lie in their buffer: row stride (elements: floats, bytes or
/// halves) and their format (the shaders' `a_format` / `v_format`).
#[derive(Clone, Copy)]
struct VectorLayout {
    stride: u32,
    format: u32,
}

/// The buffers every pass of the head shares.
struct HeadBuffers {
    v: wgpu::Buffer,
    /// The item vectors' layout in `v`.
    v_layout: VectorLayout,
    /// The int8 rows' scales (a placeholder for f32 vectors; bound, never read).
    v_scale: wgpu::Buffer,
    m: wgpu::Buffer,
    a: wgpu::Buffer,
    w_out: wgpu::Buffer,
    hidden: [wgpu::Buffer; 2],
    logits: wgpu::Buffer,
}

/// Uploads a validated plan and records its passes.
pub(super) fn upload(
    device: &wgpu::Device,
    pipelines: &Pipelines,
    plan: &HeadPlan,
) -> Result<Resident, GpuError> {
    let b = Builder {
        device,
        limits: device.limits(),
    };
    let (n, d, h) = (plan.n_items, plan.dim, plan.hidden);
    let widths: Vec<usize> = std::iter::once(h)
        .chain(plan.layers.iter().map(|(_, bias)| bias.len()))
        .collect();
    let max_width = widths.iter().copied().max().unwrap_or(h);
    let hidden_floats = n
        .checked_mul(max_width)
        .ok_or_else(|| GpuError::TooLarge("hidden activations overflow".into()))?;
    let none = wgpu::BufferUsages::empty();
    // An int8 plan's vectors go up as they are held: int8 rows (padded stride) and
    // their scales, dequantised by the shaders as they read them. An f16 plan's f32
    // vectors go up as f16 (`gpu_f16`), widened by the shaders as they read them.
    let (v, v_scale, v_layout) = match &plan.item_vectors {
        ItemVectors::F32(v) if plan.gpu_f16 => (
            b.storage_f16("vitrine.V", v)?,
            b.scratch("vitrine.V.scale", 0, none)?,
            VectorLayout {
                stride: to_u32(d, "dim")?,
                format: FORMAT_F16,
            },
        ),
        ItemVectors::F32(v) => (
            b.storage("vitrine.V", v)?,
            b.scratch("vitrine.V.scale", 0, none)?,
            VectorLayout {
                stride: to_u32(d, "dim")?,
                format: FORMAT_F32,
            },
        ),
        ItemVectors::Int8(q) => (
            b.storage_bytes("vitrine.V", bytemuck::cast_slice(&q.q))?,
            b.storage("vitrine.V.scale", &q.scale)?,
            VectorLayout {
                stride: to_u32(q.stride, "stride")?,
                format: FORMAT_INT8,
            },
        ),
    };
    let bufs = HeadBuffers {
        v,
        v_layout,
        v_scale,
        m: b.storage("vitrine.M", &vec![0.0; d * (h + 1)])?,
        a: b.storage("vitrine.a", &vec![0.0; h])?,
        w_out: b.storage("vitrine.w_out", &plan.w_out)?,
        hidden: [
            b.scratch("vitrine.hidden0", hidden_floats, none)?,
            b.scratch("vitrine.hidden1", hidden_floats, none)?,
        ],
        logits: b.scratch("vitrine.logits", n, wgpu::BufferUsages::COPY_SRC)?,
    };
    let mut keep = Vec::new();
    let (mut passes, cur) = head_passes(&b, &pipelines.head, plan, &widths, &bufs, &mut keep)?;
    let last = *widths.last().unwrap_or(&h);
    passes.push(output_pass(
        &b,
        &pipelines.output,
        plan,
        last,
        cur,
        &bufs,
        &mut keep,
    )?);
    let (topk_params, topk_candidates, topk_chunks, topk_groups) = topk_buffers(&b, n)?;
    let empty = ItemBuffers::empty(&b)?;
    let HeadBuffers {
        v,
        v_scale,
        m,
        a,
        w_out,
        hidden: [h0, h1],
        logits,
        ..
    } = bufs;
    let item_vector_bytes = v.size() + v_scale.size();
    keep.extend([v, v_scale, w_out, h0, h1]);
    let mut resident = Resident {
        m_buf: m,
        a_buf: a,
        logits,
        passes,
        topk: None,
        topk_params,
        topk_candidates,
        topk_chunks,
        topk_groups,
        _keep: keep,
        item_vector_bytes,
    };
    resident.topk = Some(topk_pass(device, &pipelines.topk, &resident, &empty));
    let ItemBuffers {
        attrs,
        prices,
        rules,
        sparse,
        gathered,
        ..
    } = empty;
    resident
        ._keep
        .extend([attrs, prices, rules, sparse, gathered]);
    Ok(resident)
}

/// The GEMM passes: `relu(V · M[:, 0..h] + a)` into `hidden[0]` (stride `h`), then one
/// pass per further layer, ping-ponging between the two hidden buffers. Returns the
/// passes and the index of the hidden buffer that holds the last layer.
fn head_passes(
    b: &Builder<'_>,
    kernel: &Kernel,
    plan: &HeadPlan,
    widths: &[usize],
    bufs: &HeadBuffers,
    keep: &mut Vec<wgpu::Buffer>,
) -> Result<(Vec<Pass>, usize), GpuError> {
    let (n, d, h) = (plan.n_items, plan.dim, plan.hidden);
    let n32 = to_u32(n, "items")?;
    let row_tiles = n.div_ceil(TILE_M as usize);
    let max_dim = b.limits.max_compute_workgroups_per_dimension;
    let (gx, gy) = split_groups(row_tiles, max_dim, "head tiles")?;
    let col_tiles = |w: usize| to_u32(w.div_ceil(TILE_N as usize).max(1), "column tiles");
    let params = b.uniform(
        "vitrine.head.params0",
        &GemmParams {
            rows: n32,
            k: to_u32(d, "dim")?,
            ncols: to_u32(h, "hidden")?,
            lda: bufs.v_layout.stride,
            ldb: to_u32(h + 1, "hidden")?,
            ldc: to_u32(h, "hidden")?,
            relu: 1,
            groups_x: gx,
            a_format: bufs.v_layout.format,
            pad: [0; 3],
        },
    );
    let mut passes = vec![b.pass(
        kernel,
        "vitrine.head.layer0",
        &[
            (bind::HEAD_PARAMS, &params),
            (bind::HEAD_A, &bufs.v),
            (bind::HEAD_B, &bufs.m),
            (bind::HEAD_COLBIAS, &bufs.a),
            (bind::HEAD_C, &bufs.hidden[0]),
            (bind::HEAD_A_SCALE, &bufs.v_scale),
        ],
        [gx, gy, col_tiles(h)?],
    )];
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
                a_format: FORMAT_F32,
                pad: [0; 3],
            },
        );
        passes.push(b.pass(
            kernel,
            "vitrine.head.layer",
            &[
                (bind::HEAD_PARAMS, &params),
                (bind::HEAD_A, &bufs.hidden[cur]),
                (bind::HEAD_B, &w_buf),
                (bind::HEAD_COLBIAS, &b_buf),
                (bind::HEAD_C, &bufs.hidden[1 - cur]),
                // Not read (f32 activations), but every binding is bound.
                (bind::HEAD_A_SCALE, &bufs.v_scale),
            ],
            [gx, gy, col_tiles(wout)?],
        ));
        keep.extend([params, w_buf, b_buf]);
        cur = 1 - cur;
    }
    Ok((passes, cur))
}

/// The output pass: `OUT_LANES` threads per item, `OUT_WG / OUT_LANES` items per
/// workgroup, reading the last hidden layer from `hidden[cur]` (width `last`).
fn output_pass(
    b: &Builder<'_>,
    kernel: &Kernel,
    plan: &HeadPlan,
    last: usize,
    cur: usize,
    bufs: &HeadBuffers,
    keep: &mut Vec<wgpu::Buffer>,
) -> Result<Pass, GpuError> {
    let (n, d, h) = (plan.n_items, plan.dim, plan.hidden);
    let items_per_group = (OUT_WG / OUT_LANES) as usize;
    let max_dim = b.limits.max_compute_workgroups_per_dimension;
    let (ox, oy) = split_groups(n.div_ceil(items_per_group), max_dim, "output")?;
    let params = b.uniform(
        "vitrine.output.params",
        &OutputParams {
            n: to_u32(n, "items")?,
            d: to_u32(d, "dim")?,
            width: to_u32(last, "width")?,
            ldh: to_u32(last, "width")?,
            h: to_u32(h, "hidden")?,
            ldm: to_u32(h + 1, "hidden")?,
            groups_x: ox,
            b_out: plan.b_out,
            ldv: bufs.v_layout.stride,
            v_format: bufs.v_layout.format,
            pad: [0; 2],
        },
    );
    let pass = b.pass(
        kernel,
        "vitrine.output",
        &[
            (bind::OUTPUT_PARAMS, &params),
            (bind::OUTPUT_H, &bufs.hidden[cur]),
            (bind::OUTPUT_W_OUT, &bufs.w_out),
            (bind::OUTPUT_V, &bufs.v),
            (bind::OUTPUT_M, &bufs.m),
            (bind::OUTPUT_LOGITS, &bufs.logits),
            (bind::OUTPUT_V_SCALE, &bufs.v_scale),
        ],
        [ox, oy, 1],
    );
    keep.push(params);
    Ok(pass)
}

/// The per-item and per-request buffers the shortlist mode of the top-k pass reads.
pub(super) struct ItemBuffers {
    /// `[n]` of `category | new << 31`.
    pub(super) attrs: wgpu::Buffer,
    /// `[n]` price keys.
    pub(super) prices: wgpu::Buffer,
    /// Per category (allowed, boost bits), written per request.
    pub(super) rules: wgpu::Buffer,
    /// How many rules `rules` holds.
    pub(super) rules_cap: usize,
    /// The sorted set `S`, written per request.
    pub(super) sparse: wgpu::Buffer,
    /// The logits of `S`.
    pub(super) gathered: wgpu::Buffer,
    /// How many items `sparse` and `gathered` hold.
    pub(super) sparse_cap: usize,
}

impl ItemBuffers {
    /// Placeholders for a plan without item attributes (the plain top-k reads none).
    fn empty(b: &Builder<'_>) -> Result<ItemBuffers, GpuError> {
        let none = wgpu::BufferUsages::empty();
        Ok(ItemBuffers {
            attrs: b.scratch("vitrine.topk.attrs", 0, none)?,
            prices: b.scratch("vitrine.topk.prices", 0, none)?,
            rules: b.scratch("vitrine.topk.rules", 0, none)?,
            rules_cap: 0,
            sparse: b.scratch("vitrine.topk.sparse", 0, none)?,
            gathered: b.scratch("vitrine.topk.gathered", 0, none)?,
            sparse_cap: 0,
        })
    }
}

/// Uploads the items' attributes (`attrs` and `prices`, one word each per item) and
/// creates the per-request buffers: room for `rules_cap` category rules and
/// `sparse_cap` items of `S`.
pub(super) fn item_buffers(
    device: &wgpu::Device,
    attrs: &[u32],
    prices: &[u32],
    rules_cap: usize,
    sparse_cap: usize,
) -> Result<ItemBuffers, GpuError> {
    let b = Builder {
        device,
        limits: device.limits(),
    };
    let words = |label: &str, data: &[u32]| -> Result<wgpu::Buffer, GpuError> {
        // Bit patterns, not numbers: the upload copies them unchanged.
        b.storage(label, bytemuck::cast_slice(data))
    };
    Ok(ItemBuffers {
        attrs: words("vitrine.topk.attrs", attrs)?,
        prices: words("vitrine.topk.prices", prices)?,
        rules: b.scratch(
            "vitrine.topk.rules",
            rules_cap.saturating_mul(2),
            wgpu::BufferUsages::COPY_DST,
        )?,
        rules_cap,
        sparse: b.scratch(
            "vitrine.topk.sparse",
            sparse_cap,
            wgpu::BufferUsages::COPY_DST,
        )?,
        gathered: b.scratch(
            "vitrine.topk.gathered",
            sparse_cap,
            wgpu::BufferUsages::COPY_SRC,
        )?,
        sparse_cap,
    })
}

/// The top-k pass over the resident `logits` with `items` bound for the shortlist mode.
pub(super) fn topk_pass(
    device: &wgpu::Device,
    kernel: &Kernel,
    resident: &Resident,
    items: &ItemBuffers,
) -> Pass {
    let b = Builder {
        device,
        limits: device.limits(),
    };
    b.pass(
        kernel,
        "vitrine.topk",
        &[
            (bind::TOPK_PARAMS, &resident.topk_params),
            (bind::TOPK_LOGITS, &resident.logits),
            (bind::TOPK_CANDIDATES, &resident.topk_candidates),
            (bind::TOPK_ATTRS, &items.attrs),
            (bind::TOPK_PRICES, &items.prices),
            (bind::TOPK_RULES, &items.rules),
            (bind::TOPK_SPARSE, &items.sparse),
            (bind::TOPK_GATHERED, &items.gathered),
        ],
        resident.topk_groups,
    )
}

/// The top-k pass's parameter buffer, its candidate buffer (`TOPK_MAX` triples per
/// chunk), the number of chunks and the dispatch size.
fn topk_buffers(
    b: &Builder<'_>,
    n: usize,
) -> Result<(wgpu::Buffer, wgpu::Buffer, usize, [u32; 3]), GpuError> {
    let topk_chunks = n.div_ceil(TOPK_CHUNK as usize).max(1);
    let max_dim = b.limits.max_compute_workgroups_per_dimension;
    let (tx, ty) = split_groups(topk_chunks, max_dim, "top-k")?;
    let params = b.uniform(
        "vitrine.topk.params",
        &TopkParams {
            n: to_u32(n, "items")?,
            k: 1,
            groups_x: tx,
            n_chunks: to_u32(topk_chunks, "top-k chunks")?,
            ..TopkParams::default()
        },
    );
    let cand_words = topk_chunks
        .checked_mul(TOPK_MAX * 3)
        .ok_or_else(|| GpuError::TooLarge("top-k candidates overflow".into()))?;
    let candidates = b.scratch(
        "vitrine.topk.candidates",
        cand_words,
        wgpu::BufferUsages::COPY_SRC,
    )?;
    Ok((params, candidates, topk_chunks, [tx, ty, 1]))
}
