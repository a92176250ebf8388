//! Adapter and device setup, apart from the kernels: request an adapter and a device
//! with the adapter's limits, and check those limits against what the kernels need
//! (workgroup sizes, workgroup memory, storage buffers per stage).
use super::bindings::max_storage_buffers;
use super::{GpuError, OUT_WG, REG_M, REG_N, TILE_K, TILE_M, TILE_N, TOPK_CHUNK, TOPK_WG};

/// Requests the default adapter and a device with the adapter's own limits (WebGPU in
/// browsers; Vulkan, Metal or DX12 natively).
pub async fn request_device() -> Result<(wgpu::Device, wgpu::Queue), GpuError> {
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
    adapter
        .request_device(&wgpu::DeviceDescriptor {
            label: Some("vitrine"),
            required_limits: adapter.limits(),
            ..Default::default()
        })
        .await
        .map_err(|e| GpuError::Device(e.to_string()))
}

/// Adapter name and backend, for display.
pub(super) fn describe(device: &wgpu::Device) -> String {
    let info = device.adapter_info();
    format!("{} ({:?})", info.name, info.backend)
}

/// The kernels' fixed needs against the device's limits (all within WebGPU's defaults).
pub(super) fn check_kernel_limits(l: &wgpu::Limits) -> Result<(), GpuError> {
    let threads = (TILE_M / REG_M) * (TILE_N / REG_N);
    let invocations = threads.max(OUT_WG).max(TOPK_WG);
    let gemm_bytes = 4 * TILE_K * (TILE_M + 1 + TILE_N);
    let topk_bytes = 4 * (2 * TOPK_CHUNK + 2 * TOPK_WG);
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
            max_storage_buffers(),
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
