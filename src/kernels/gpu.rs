//! The wgpu compute-shader path for the scoring head (WebGPU in browsers, Vulkan, Metal
//! or DX12 natively). Item-side matrices stay resident on the GPU; a request uploads the
//! user query only.
use super::{HeadPlan, UserQuery};

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
}

/// The scoring head on a GPU.
pub struct GpuScorer {
    _private: (),
}

impl GpuScorer {
    /// Requests an adapter and device, then uploads the plan.
    pub async fn new(plan: &HeadPlan) -> Result<GpuScorer, GpuError> {
        let _ = plan;
        todo!("kernels helper")
    }

    /// Uses an existing device (tests inject one), then uploads the plan.
    pub fn with_device(
        device: wgpu::Device,
        queue: wgpu::Queue,
        plan: &HeadPlan,
    ) -> Result<GpuScorer, GpuError> {
        let _ = (device, queue, plan);
        todo!("kernels helper")
    }

    /// Adapter description (name and backend), for display.
    pub fn adapter_info(&self) -> String {
        todo!("kernels helper")
    }

    /// The head's logit for every item, as [`super::CpuKernel::scores`].
    pub async fn scores(&self, query: &UserQuery) -> Result<Vec<f32>, GpuError> {
        let _ = query;
        todo!("kernels helper")
    }

    /// The `k` best items and their logits, best first, reduced on the GPU.
    pub async fn top_k(&self, query: &UserQuery, k: usize) -> Result<Vec<(u32, f32)>, GpuError> {
        let _ = (query, k);
        todo!("kernels helper")
    }
}
