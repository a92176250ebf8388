//! The shaders' resource interfaces: one named constant per `@group(0) @binding(N)`
//! declaration of each `.wgsl` file, the table that ties each constant to its WGSL
//! variable and access mode, and the explicit bind-group and pipeline layouts built from
//! that table (no automatic layout, no positional entry arrays).
//!
//! `tests/kernels.rs` parses every `src/kernels/*.wgsl` file's `@group/@binding`
//! declarations and checks them against these tables, so the two cannot drift.

/// The bind group every shader uses (`@group(0)`).
pub const GROUP: u32 = 0;

/// `head.wgsl` `@binding(0) var<uniform> p`: shapes and strides (`GemmParams`).
pub const HEAD_PARAMS: u32 = 0;
/// `head.wgsl` `@binding(1) var<storage, read> A`: `[rows × k]` (item vectors, f32 or
/// int8 packed four to a word, or the previous hidden layer).
pub const HEAD_A: u32 = 1;
/// `head.wgsl` `@binding(2) var<storage, read> B`: `[k × ncols]` (`M` or a layer's `W`).
pub const HEAD_B: u32 = 2;
/// `head.wgsl` `@binding(3) var<storage, read> colbias`: `[ncols]` (`a` or a layer's `b`).
pub const HEAD_COLBIAS: u32 = 3;
/// `head.wgsl` `@binding(4) var<storage, read_write> C`: `[rows × ncols]` output.
pub const HEAD_C: u32 = 4;
/// `head.wgsl` `@binding(5) var<storage, read> a_scale`: `[rows]`, the int8 rows'
/// scales (read only when `A` is int8).
pub const HEAD_A_SCALE: u32 = 5;

/// `output.wgsl` `@binding(0) var<uniform> p`: shapes, strides, `b_out`.
pub const OUTPUT_PARAMS: u32 = 0;
/// `output.wgsl` `@binding(1) var<storage, read> H`: the last hidden layer `[n × width]`.
pub const OUTPUT_H: u32 = 1;
/// `output.wgsl` `@binding(2) var<storage, read> w_out`: `[width]`.
pub const OUTPUT_W_OUT: u32 = 2;
/// `output.wgsl` `@binding(3) var<storage, read> V`: item vectors `[n × d]` (f32, or
/// int8 packed four to a word).
pub const OUTPUT_V: u32 = 3;
/// `output.wgsl` `@binding(4) var<storage, read> M`: the query matrix `[d × (h + 1)]`.
pub const OUTPUT_M: u32 = 4;
/// `output.wgsl` `@binding(5) var<storage, read_write> logits`: `[n]`.
pub const OUTPUT_LOGITS: u32 = 5;
/// `output.wgsl` `@binding(6) var<storage, read> v_scale`: `[n]`, the int8 item rows'
/// scales (read only when `V` is int8).
pub const OUTPUT_V_SCALE: u32 = 6;

/// `topk.wgsl` `@binding(0) var<uniform> p`: `n`, `k`, `groups_x`, the mode and the
/// shortlist's scalars (`TopkParams`).
pub const TOPK_PARAMS: u32 = 0;
/// `topk.wgsl` `@binding(1) var<storage, read> logits`: `[n]`.
pub const TOPK_LOGITS: u32 = 1;
/// `topk.wgsl` `@binding(2) var<storage, read_write> candidates`: `[groups × k]`
/// triples of (item index, logit bits, key value bits).
pub const TOPK_CANDIDATES: u32 = 2;
/// `topk.wgsl` `@binding(3) var<storage, read> attrs`: `[n]` of `category | new << 31`.
pub const TOPK_ATTRS: u32 = 3;
/// `topk.wgsl` `@binding(4) var<storage, read> prices`: `[n]` price keys
/// ([`crate::kernels::shortlist::price_key`]).
pub const TOPK_PRICES: u32 = 4;
/// `topk.wgsl` `@binding(5) var<storage, read> rules`: per category (allowed, boost bits).
pub const TOPK_RULES: u32 = 5;
/// `topk.wgsl` `@binding(6) var<storage, read> sparse`: the sorted set `S`.
pub const TOPK_SPARSE: u32 = 6;
/// `topk.wgsl` `@binding(7) var<storage, read_write> gathered`: the logits of `S`.
pub const TOPK_GATHERED: u32 = 7;

/// How a shader accesses a buffer binding (the WGSL address space and access mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    /// `var<uniform>`.
    Uniform,
    /// `var<storage, read>` (or `var<storage>`, whose default access is `read`).
    Read,
    /// `var<storage, read_write>`.
    ReadWrite,
}

impl Access {
    fn buffer_type(self) -> wgpu::BufferBindingType {
        match self {
            Access::Uniform => wgpu::BufferBindingType::Uniform,
            Access::Read => wgpu::BufferBindingType::Storage { read_only: true },
            Access::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
        }
    }
}

/// One `@group(GROUP) @binding(binding) var<access> name` declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The WGSL variable name.
    pub name: &'static str,
    /// The binding index (one of the constants above).
    pub binding: u32,
    /// Address space and access mode.
    pub access: Access,
}

/// A shader file and its resource interface.
#[derive(Debug, Clone, Copy)]
pub struct ShaderInterface {
    /// Debug label of its module, layouts and pipeline.
    pub label: &'static str,
    /// File name under `src/kernels/`.
    pub file: &'static str,
    /// The WGSL source, before placeholder substitution ([`super::shader_source`]).
    pub source: &'static str,
    /// Every binding of group [`GROUP`], in binding order.
    pub bindings: &'static [Binding],
}

const fn bind(name: &'static str, binding: u32, access: Access) -> Binding {
    Binding {
        name,
        binding,
        access,
    }
}

/// `head.wgsl`: tiled GEMM with fused bias + ReLU.
pub const HEAD: ShaderInterface = ShaderInterface {
    label: "vitrine.head",
    file: "head.wgsl",
    source: include_str!("../head.wgsl"),
    bindings: &[
        bind("p", HEAD_PARAMS, Access::Uniform),
        bind("A", HEAD_A, Access::Read),
        bind("B", HEAD_B, Access::Read),
        bind("colbias", HEAD_COLBIAS, Access::Read),
        bind("C", HEAD_C, Access::ReadWrite),
        bind("a_scale", HEAD_A_SCALE, Access::Read),
    ],
};

/// `output.wgsl`: the logits, `OUT_LANES` threads per item.
pub const OUTPUT: ShaderInterface = ShaderInterface {
    label: "vitrine.output",
    file: "output.wgsl",
    source: include_str!("../output.wgsl"),
    bindings: &[
        bind("p", OUTPUT_PARAMS, Access::Uniform),
        bind("H", OUTPUT_H, Access::Read),
        bind("w_out", OUTPUT_W_OUT, Access::Read),
        bind("V", OUTPUT_V, Access::Read),
        bind("M", OUTPUT_M, Access::Read),
        bind("logits", OUTPUT_LOGITS, Access::ReadWrite),
        bind("v_scale", OUTPUT_V_SCALE, Access::Read),
    ],
};

/// `topk.wgsl`: per-workgroup top-k selection, plain or as the shortlist.
pub const TOPK: ShaderInterface = ShaderInterface {
    label: "vitrine.topk",
    file: "topk.wgsl",
    source: include_str!("../topk.wgsl"),
    bindings: &[
        bind("p", TOPK_PARAMS, Access::Uniform),
        bind("logits", TOPK_LOGITS, Access::Read),
        bind("candidates", TOPK_CANDIDATES, Access::ReadWrite),
        bind("attrs", TOPK_ATTRS, Access::Read),
        bind("prices", TOPK_PRICES, Access::Read),
        bind("rules", TOPK_RULES, Access::Read),
        bind("sparse", TOPK_SPARSE, Access::Read),
        bind("gathered", TOPK_GATHERED, Access::ReadWrite),
    ],
};

/// Every shader of the GPU path.
pub const SHADERS: [ShaderInterface; 3] = [HEAD, OUTPUT, TOPK];

/// Storage buffers one shader stage binds at most (a device limit the kernels need).
pub fn max_storage_buffers() -> u32 {
    SHADERS
        .iter()
        .map(|s| {
            let n = s.bindings.iter().filter(|b| b.access != Access::Uniform);
            n.count() as u32
        })
        .max()
        .unwrap_or(0)
}

/// A compiled shader with its explicit bind-group layout.
#[derive(Clone)]
pub(super) struct Kernel {
    pub(super) pipeline: wgpu::ComputePipeline,
    pub(super) layout: wgpu::BindGroupLayout,
    interface: ShaderInterface,
}

impl Kernel {
    /// Compiles `shader` (placeholders substituted) against a layout built from its
    /// binding table.
    pub(super) fn new(device: &wgpu::Device, shader: ShaderInterface) -> Kernel {
        let entries: Vec<wgpu::BindGroupLayoutEntry> = shader
            .bindings
            .iter()
            .map(|b| wgpu::BindGroupLayoutEntry {
                binding: b.binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: b.access.buffer_type(),
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(shader.label),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(shader.label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(shader.label),
            source: wgpu::ShaderSource::Wgsl(super::shader_source(shader.source).into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(shader.label),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        Kernel {
            pipeline,
            layout,
            interface: shader,
        }
    }

    /// A bind group of `buffers`, each given with its named binding constant.
    ///
    /// # Panics
    /// If the bindings are not exactly this shader's (a programming error, caught by the
    /// GPU parity tests).
    pub(super) fn bind_group(
        &self,
        device: &wgpu::Device,
        label: &str,
        buffers: &[(u32, &wgpu::Buffer)],
    ) -> wgpu::BindGroup {
        let mut given: Vec<u32> = buffers.iter().map(|(b, _)| *b).collect();
        given.sort_unstable();
        let want: Vec<u32> = self.interface.bindings.iter().map(|b| b.binding).collect();
        assert_eq!(given, want, "{label}: bindings of {}", self.interface.file);
        let entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
            .iter()
            .map(|(binding, buffer)| wgpu::BindGroupEntry {
                binding: *binding,
                resource: buffer.as_entire_binding(),
            })
            .collect();
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &self.layout,
            entries: &entries,
        })
    }
}

/// The compiled pipelines (they depend only on the constants, not on a plan).
#[derive(Clone)]
pub(super) struct Pipelines {
    pub(super) head: Kernel,
    pub(super) output: Kernel,
    pub(super) topk: Kernel,
}

impl Pipelines {
    pub(super) fn new(device: &wgpu::Device) -> Pipelines {
        Pipelines {
            head: Kernel::new(device, HEAD),
            output: Kernel::new(device, OUTPUT),
            topk: Kernel::new(device, TOPK),
        }
    }
}
