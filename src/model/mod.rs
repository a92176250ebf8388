//! The model: one definition, one forward pass, used by the native trainer and by the
//! browser runtime alike.
//!
//! - Item encoder: ID embedding + content features (category, price, hashed title
//!   tokens) → `d`-dimensional item vector. Items without interactions get a content-only
//!   vector (cold start).
//! - User encoder: a causal self-attention sequence encoder in the style of SASRec over
//!   the shopper's recent history (item + position + event-type + recency embeddings,
//!   `n_blocks` blocks of multi-head self-attention and feed-forward, pre-layer-norm,
//!   residuals; dropout only at training time).
//! - Scoring head: `u · v_i` plus an MLP over `[u, v_i, u ⊙ v_i]`, sigmoid on the sum.
//!   The MLP's first layer is split so the item-only part is precomputed once per model
//!   load (see [`Model::head_plan`]), leaving one `[items × d] · [d × hidden]` product per
//!   request, which [`crate::kernels`] runs.
use serde::{Deserialize, Serialize};

use crate::features::ItemFeatureTable;
use std::collections::BTreeMap;

use crate::format::{ItemCatalog, Tensor, WeightFile};
use crate::history::HistoryEvent;
use crate::kernels::{HeadPlan, UserQuery};

/// Shape of the model; stored in the weight file's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Catalog size (rows of the ID embedding).
    pub n_items: usize,
    /// Number of categories, index 0 being "unknown".
    pub n_categories: usize,
    /// Number of hash buckets for title tokens.
    pub n_token_buckets: usize,
    /// Embedding width `d`.
    pub dim: usize,
    /// Self-attention blocks in the user encoder.
    pub n_blocks: usize,
    /// Attention heads per block (`dim` must be a multiple).
    pub n_heads: usize,
    /// Longest history the encoder reads (most recent events are kept).
    pub max_len: usize,
    /// Width of the feed-forward layer inside each block.
    pub ffn_dim: usize,
    /// Hidden widths of the scoring MLP (Dense→ReLU per entry, then Dense→1).
    pub mlp_hidden: Vec<usize>,
    /// Number of recency buckets (log2 of hours since the event).
    pub n_recency_buckets: usize,
}

/// Errors building a model from a weight file.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A tensor the model needs is not in the file.
    #[error("weight file has no tensor named {0:?}")]
    MissingTensor(String),
    /// A tensor's shape differs from what the model config implies.
    #[error("tensor {name:?} has shape {found:?}, the model config implies {expected:?}")]
    ShapeMismatch {
        /// Tensor name.
        name: String,
        /// Shape implied by the config.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// The model config is unusable (zero sizes, `dim` not divisible by `n_heads`, ...).
    #[error("invalid model config: {0}")]
    InvalidConfig(String),
    /// An item feature refers to a category or token bucket outside the config's range.
    #[error("item features out of range: {0}")]
    FeatureOutOfRange(String),
}

/// The user encoder's output for one history.
#[derive(Debug, Clone, PartialEq)]
pub struct UserEncoding {
    /// The user vector `u` (length `dim`).
    pub u: Vec<f32>,
    /// For each history event the encoder read (aligned with the *input* history slice;
    /// events beyond `max_len` get 0), how much the last position attended to it in the
    /// last block, averaged over heads. Sums to 1 over the events read. Explanations use it.
    pub attention: Vec<f32>,
}

/// A model with its parameters and the item features it encodes.
#[derive(Debug, Clone)]
pub struct Model {
    /// Shape of the model.
    pub config: ModelConfig,
    /// Content features of every catalog item.
    pub features: ItemFeatureTable,
    /// Named parameters, in a fixed order (see `param_names`). Public so the trainer can
    /// update them in place.
    pub params: Vec<(String, Tensor)>,
}

impl Model {
    /// A freshly initialised model (deterministic given `seed`).
    pub fn new(
        config: ModelConfig,
        features: ItemFeatureTable,
        seed: u64,
    ) -> Result<Model, ModelError> {
        let _ = (config, features, seed);
        todo!("model helper")
    }

    /// Builds the model from a validated weight file.
    pub fn from_weights(file: &WeightFile) -> Result<Model, ModelError> {
        let _ = file;
        todo!("model helper")
    }

    /// Item vectors for the whole catalog, row-major `[n_items × dim]`.
    pub fn item_vectors(&self) -> Vec<f32> {
        todo!("model helper")
    }

    /// Encodes a history (oldest first; only the last `max_len` events are read) as the
    /// user vector. `now` (Unix seconds) sets the recency buckets. Inference mode.
    pub fn encode_user(
        &self,
        item_vectors: &[f32],
        history: &[HistoryEvent],
        now: f64,
    ) -> UserEncoding {
        let _ = (item_vectors, history, now);
        todo!("model helper")
    }

    /// Precomputes the item-side part of the scoring head for the whole catalog.
    pub fn head_plan(&self, item_vectors: &[f32]) -> HeadPlan {
        let _ = item_vectors;
        todo!("model helper")
    }

    /// The per-request, user-side inputs of the scoring head.
    pub fn user_query(&self, u: &[f32]) -> UserQuery {
        let _ = u;
        todo!("model helper")
    }

    /// Straightforward reference: the score logit of one item, computed directly from
    /// `[u, v_i, u ⊙ v_i]` without any precomputation. Tests compare fast paths to it.
    pub fn score_reference(&self, item_vectors: &[f32], u: &[f32], item: usize) -> f32 {
        let _ = (item_vectors, u, item);
        todo!("model helper")
    }

    /// The parameters and item-feature tensors, named as in the weight file.
    pub fn tensors(&self) -> BTreeMap<String, Tensor> {
        todo!("model helper")
    }

    /// A complete weight file for this model: its tensors, the catalog, category names,
    /// a popularity prior (`stats.popularity`, one value per item) and free-form
    /// feature/training/metrics JSON.
    pub fn to_weight_file(
        &self,
        items: ItemCatalog,
        categories: Vec<String>,
        popularity: Vec<f32>,
        features: serde_json::Value,
        training: serde_json::Value,
        metrics: serde_json::Value,
    ) -> WeightFile {
        let _ = (items, categories, popularity, features, training, metrics);
        todo!("model helper")
    }
}

/// A small, randomly initialised model over a synthetic catalog (ids `I0`, `I1`, ...,
/// a few categories, prices, titles), as a complete weight file. For tests, examples and
/// benchmarks, natively and in wasm.
pub fn tiny_weight_file(n_items: usize, seed: u64) -> WeightFile {
    let _ = (n_items, seed);
    todo!("model helper")
}
