//! The one "history → logits" path, shared by the recommendation engine, evaluation, the
//! CLI and the browser binding.
//!
//! # Math
//! For a history `h` (oldest first; recency comes from the gaps between its events):
//! 1. [`encode`]: the user encoder gives `u = enc(h)` and its attention over `h`;
//!    the head's user side folds `u` into the query `M = [diag(u)·W₁ₚ + W₁ᵥ | u]`,
//!    `a = W₁ᵤ·u + b₁` ([`crate::model::Model::user_query`]).
//! 2. [`head_logits`]: `z_i = head(v_i; M, a)` for every item `i`, by any CPU kernel (the
//!    browser may run this step on the GPU instead, see [`super::Recommender::prepare`]).
//! 3. [`add_memory`]: `z_i += memory_i(h)`, the model's transition-memory ("wide") term.
//!
//! [`logits`] runs the three steps; that is the ranking evaluation measures. The
//! recommendation engine runs the same steps, with boosts blended in before the memory
//! term (see [`super::blend`]).
use crate::history::HistoryEvent;
use crate::kernels::{CpuKernel, HeadPlan, ShapeError, UserQuery};
use crate::model::Model;

/// The user side of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// The scoring head's query.
    pub query: UserQuery,
    /// Attention of the user vector over the history's events (the encoder may read
    /// only the last `max_len`; the rest get no entry).
    pub attention: Vec<f32>,
}

/// Step 1: encodes `history` (oldest first) and builds the head's query.
pub fn encode(model: &Model, plan: &HeadPlan, history: &[HistoryEvent]) -> Encoded {
    let enc = model.encode_user(&plan.item_vectors, history);
    Encoded {
        query: model.user_query(&enc.u),
        attention: enc.attention,
    }
}

/// Step 2: the head's logit for every item into `out` (`out.len() == plan.n_items`).
pub fn head_logits(
    kernel: CpuKernel,
    plan: &HeadPlan,
    query: &UserQuery,
    out: &mut [f32],
) -> Result<(), ShapeError> {
    kernel.try_scores(plan, query, out)
}

/// Step 3: adds the model's transition-memory term for `history` (no-op without memory).
pub fn add_memory(model: &Model, history: &[HistoryEvent], logits: &mut [f32]) {
    model.add_memory(history, logits);
}

/// All three steps: the model's logits for every item given `history`, with the
/// memory term when `memory` is true (`out.len() == plan.n_items`).
pub fn logits(
    model: &Model,
    plan: &HeadPlan,
    kernel: CpuKernel,
    history: &[HistoryEvent],
    memory: bool,
    out: &mut [f32],
) -> Result<(), ShapeError> {
    let enc = encode(model, plan, history);
    head_logits(kernel, plan, &enc.query, out)?;
    if memory {
        add_memory(model, history, out);
    }
    Ok(())
}
