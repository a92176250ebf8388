//! The model's shape ([`ModelConfig`]): a leaf module, read by the weight-file format
//! (it is stored in the file's metadata) and by the model. `validate` bounds every size
//! before anything is allocated from it, since a weight file is untrusted input.
use serde::{Deserialize, Serialize};

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
    /// Number of recency buckets (log2 of hours since the previous event).
    pub n_recency_buckets: usize,
    /// Gated residuals (LiGR, as in eSASRec): each block branch is added to the residual
    /// stream times `σ(x·G + g)` of the stream entering it. Missing: false (and not
    /// written when false, so a plain model's metadata is what it was before).
    #[serde(default, skip_serializing_if = "is_false")]
    pub gated: bool,
    /// SwiGLU feed-forward layers: `(silu(x·W₁ + b₁) ⊙ (x·W₃ + b₃))·W₂ + b₂` instead of
    /// `relu(x·W₁ + b₁)·W₂ + b₂`. Missing: false (not written when false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub swiglu: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The user encoder's block variant ([`ModelConfig::gated`], [`ModelConfig::swiglu`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// SASRec's pre-layer-norm blocks: plain residuals, a ReLU feed-forward layer.
    Plain,
    /// Residual gates, a ReLU feed-forward layer.
    Gated,
    /// LiGR layers as in eSASRec: residual gates and a SwiGLU feed-forward layer.
    Ligr,
}

impl BlockKind {
    /// Whether the blocks' residuals are gated.
    pub fn gated(self) -> bool {
        matches!(self, BlockKind::Gated | BlockKind::Ligr)
    }

    /// Whether the feed-forward layers are SwiGLU.
    pub fn swiglu(self) -> bool {
        self == BlockKind::Ligr
    }
}

/// The block variant of [`ModelConfig::default_for`]: SASRec's, which LiGR's did not
/// beat on validation on all three datasets (README "Public benchmarks", "LiGR blocks").
pub const DEFAULT_BLOCKS: BlockKind = BlockKind::Plain;

/// Largest sizes a weight file may declare (guards allocations on untrusted input).
const MAX_ITEMS: usize = 20_000_000;
/// Largest width (`dim`, each of `mlp_hidden`) a weight file may declare.
pub const MAX_DIM: usize = 4096;
/// Most attention heads per block.
pub const MAX_HEADS: usize = 64;
/// Most floats one inference call's user encoder may hold (128 MiB): per block the
/// activations `8·L·d` (input, layer norms, q, k, v, attention output, residual), the
/// feed-forward layer `L·f` and the attention table `heads·L²`, with `L = max_len`.
pub const MAX_ENCODER_SCRATCH: usize = 1 << 25;

#[cfg(test)]
impl ModelConfig {
    /// A tiny valid configuration for unit tests: `n_items` items, `n_categories`
    /// categories, `dim` wide, one block of one head, one hidden head layer of 4.
    pub(crate) fn tiny(n_items: usize, n_categories: usize, dim: usize) -> ModelConfig {
        ModelConfig {
            n_items,
            n_categories,
            n_token_buckets: 8,
            dim,
            n_blocks: 1,
            n_heads: 1,
            max_len: 8,
            ffn_dim: 8,
            mlp_hidden: vec![4],
            n_recency_buckets: 4,
            gated: false,
            swiglu: false,
        }
    }
}

impl ModelConfig {
    /// The default shape for a catalog: `d = 64`, two blocks of two heads, histories of
    /// up to 50 events, a `[64, 32]` scoring MLP.
    pub fn default_for(n_items: usize, n_categories: usize, n_token_buckets: usize) -> ModelConfig {
        ModelConfig {
            n_items,
            n_categories,
            n_token_buckets,
            dim: 64,
            n_blocks: 2,
            n_heads: 2,
            max_len: 50,
            ffn_dim: 128,
            mlp_hidden: vec![64, 32],
            n_recency_buckets: 16,
            gated: DEFAULT_BLOCKS.gated(),
            swiglu: DEFAULT_BLOCKS.swiglu(),
        }
    }

    /// Sets the encoder blocks' variant.
    pub fn set_blocks(&mut self, blocks: BlockKind) {
        self.gated = blocks.gated();
        self.swiglu = blocks.swiglu();
    }

    /// Checks the sizes are usable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &'static str| Err(ConfigError::Invalid(m));
        if self.n_items == 0 || self.n_items > MAX_ITEMS {
            return bad("n_items must be in 1..=20,000,000");
        }
        if self.dim == 0 || self.dim > MAX_DIM {
            return bad("dim must be in 1..=4096");
        }
        if self.n_heads == 0 || !self.dim.is_multiple_of(self.n_heads) {
            return bad("dim must be a positive multiple of n_heads");
        }
        if self.n_heads > MAX_HEADS {
            return bad("n_heads must be in 1..=64");
        }
        if self.n_blocks == 0 || self.n_blocks > 64 {
            return bad("n_blocks must be in 1..=64");
        }
        if self.max_len == 0 || self.max_len > 4096 {
            return bad("max_len must be in 1..=4096");
        }
        if self.ffn_dim == 0 || self.ffn_dim > 4 * MAX_DIM {
            return bad("ffn_dim must be in 1..=16384");
        }
        if self.mlp_hidden.is_empty() || self.mlp_hidden.iter().any(|&h| h == 0 || h > MAX_DIM) {
            return bad("mlp_hidden needs at least one layer, widths in 1..=4096");
        }
        if self.n_categories == 0 || self.n_categories > 1_000_000 {
            return bad("n_categories must be in 1..=1,000,000");
        }
        if self.n_token_buckets == 0 || self.n_token_buckets > 10_000_000 {
            return bad("n_token_buckets must be in 1..=10,000,000");
        }
        if self.n_recency_buckets < 2 || self.n_recency_buckets > 64 {
            return bad("n_recency_buckets must be in 2..=64");
        }
        if self.encoder_scratch() > MAX_ENCODER_SCRATCH {
            return bad(
                "the user encoder would need more than 2^25 floats (128 MiB) per call: \
                 n_blocks·((8 + 2·gated)·max_len·dim + (1 + swiglu)·max_len·ffn_dim + \
                 n_heads·max_len²) is too large",
            );
        }
        Ok(())
    }
}

impl ModelConfig {
    /// Floats one inference call's user encoder holds at most (see
    /// [`MAX_ENCODER_SCRATCH`]); computed without overflow for any sizes `validate` let
    /// through before it (each factor is already bounded).
    pub fn encoder_scratch(&self) -> usize {
        let (l, d) = (self.max_len, self.dim);
        // Gates: two `[L × d]` gate values; SwiGLU: its second projection `[L × ffn]`.
        let gates = if self.gated { 2 * l * d } else { 0 };
        let ffn = if self.swiglu { 2 } else { 1 } * l * self.ffn_dim;
        let per_block = 8 * l * d + gates + ffn + self.n_heads * l * l;
        self.n_blocks.saturating_mul(per_block)
    }
}

/// Errors of [`ModelConfig::validate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A size is zero, too large, or inconsistent (`dim` not a multiple of `n_heads`).
    #[error("{0}")]
    Invalid(&'static str),
}
