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
//!
//! **Only some items** (a search's candidate pool `C`): [`head_logits_for`] and
//! [`add_memory_for`] compute `z_c` for `c ∈ C` alone, with the same arithmetic per item
//! (the kernel computes each item's row on its own; the memory terms of an item are added
//! in the same order), so each equals the full path's `z_c` bit for bit. Cost: the
//! head for `|C|` items instead of `n`, the memory's `last_l · K` terms each looked up
//! in `C` (`O(log |C|)`); memory `O(|C|)`, nothing catalogue-sized.
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

/// Step 2 for the listed items only: `out[r]` = the head's logit for item `items[r]`,
/// equal to [`head_logits`]'s (`out.len() == items.len()`; an index outside the
/// catalogue is a [`ShapeError`]).
pub fn head_logits_for(
    kernel: CpuKernel,
    plan: &HeadPlan,
    query: &UserQuery,
    items: &[u32],
    out: &mut [f32],
) -> Result<(), ShapeError> {
    kernel.try_scores_of(plan, query, items, out)
}

/// Step 3 for the listed items only: adds item `items[r]`'s transition-memory term to
/// `out[r]`, the same value [`add_memory`] adds to it (no-op without memory; repeated
/// items each get it).
pub fn add_memory_for(model: &Model, history: &[HistoryEvent], items: &[u32], out: &mut [f32]) {
    let Some(memory) = &model.memory else {
        return;
    };
    // (item, position in `items`), sorted: the positions of a memory term's item.
    let mut at: Vec<(u32, usize)> = items.iter().enumerate().map(|(p, &i)| (i, p)).collect();
    at.sort_unstable();
    memory.for_each_term(history, |j, t| {
        let from = at.partition_point(|&(i, _)| i < j);
        for &(_, p) in at[from..].iter().take_while(|&&(i, _)| i == j) {
            if let Some(l) = out.get_mut(p) {
                *l += t;
            }
        }
    });
}

/// The items whose logit [`add_memory`] changes for `history` (sorted, without
/// repeats; none without memory).
pub fn memory_items(model: &Model, history: &[HistoryEvent]) -> Vec<u32> {
    let Some(memory) = &model.memory else {
        return Vec::new();
    };
    let mut out = Vec::new();
    memory.for_each_term(history, |j, _| out.push(j));
    out.sort_unstable();
    out.dedup();
    out
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
