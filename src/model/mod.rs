//! The model: one definition, one forward pass, used by the native trainer and by the
//! browser runtime alike.
//!
//! - Item encoder: ID embedding + content features → `d`-dimensional item vector
//!   `v_i = id_i + cat[c_i] + mean(tok[t] for t in title_i) + price_i·P₀ + missing_i·P₁`.
//!   Items without interactions get a zero ID row (the trainer zeroes them), so their
//!   vector is content-only (cold start).
//! - User encoder: a causal self-attention sequence encoder in the style of SASRec over
//!   the shopper's recent history: input `x_t = v_{item_t} + pos[L-1-t] + kind[k_t] +
//!   gap[g_t]` (position counted back from the most recent event; `g_t` a log2 bucket of
//!   the hours since the previous event — the recency signal), `n_blocks` pre-layer-norm
//!   blocks of multi-head causal self-attention and a ReLU feed-forward layer, with
//!   residuals (dropout at training time only), then a final layer norm. The user vector
//!   `u` is the output at the last position.
//! - Scoring head: `logit_i = u · v_i + MLP([u, v_i, u ⊙ v_i])` (Dense→ReLU per entry of
//!   `mlp_hidden`, then Dense→1), `score = sigmoid(logit)`. The first Dense layer's
//!   weight `W₁` is `[3d × h]`, stacked as `W₁ᵤ; W₁ᵥ; W₁ₚ`, so
//!   `[u, v, u⊙v]·W₁ = u·W₁ᵤ + v·W₁ᵥ + v·(diag(u)·W₁ₚ)`: the item-only part `V·W₁ᵥ + b₁` is
//!   precomputed once per model load ([`Model::head_plan`]) and a request is one
//!   `[items × d] · [d × (h+1)]` product ([`Model::user_query`], run by
//!   [`crate::kernels`]; the extra column carries the dot-product term).
//!
//! Tensor names in the weight file: `item.id`, `item.cat`, `item.tok`, `item.price`,
//! `user.pos`, `user.kind`, `user.gap`, `block{b}.{ln1.g, ln1.b, attn.wq, attn.bq, attn.wk,
//! attn.bk, attn.wv, attn.bv, attn.wo, attn.bo, ln2.g, ln2.b, ffn.w1, ffn.b1, ffn.w2,
//! ffn.b2}`, `user.lnf.g`, `user.lnf.b`, `head.w1`, `head.b1`, `head.l{j}.w`, `head.l{j}.b`,
//! `head.out.w`, `head.out.b`; item features `features.category`, `features.price`,
//! `features.price_missing`, `features.token_offsets`, `features.tokens`; and
//! `stats.popularity` (written by [`Model::to_weight_file`]).
pub mod layers;
pub mod memory;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::features::{build_features_from, FeatureConfig, ItemAttrs, ItemFeatureTable};
use crate::format::{
    ItemCatalog, Metadata, Quantization, Tensor, TensorData, WeightFile, FORMAT_VERSION,
};
use crate::history::{EventKind, HistoryEvent};
use crate::kernels::{HeadPlan, UserQuery};
use layers::{causal_attention, dot, layer_norm, linear, relu, LnCache};
use memory::Memory;

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
}

/// The scoring MLP's parameters: `(w1, b1, [(w, b)] of further layers, w_out, b_out)`.
type HeadParams<'a> = (
    &'a [f32],
    &'a [f32],
    Vec<(&'a [f32], &'a [f32])>,
    &'a [f32],
    f32,
);

/// Largest sizes a weight file may declare (guards allocations on untrusted input).
const MAX_ITEMS: usize = 20_000_000;
const MAX_DIM: usize = 4096;

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
        }
    }

    /// Checks the sizes are usable.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |m: &str| Err(ModelError::InvalidConfig(m.to_string()));
        if self.n_items == 0 || self.n_items > MAX_ITEMS {
            return bad("n_items must be in 1..=20,000,000");
        }
        if self.dim == 0 || self.dim > MAX_DIM {
            return bad("dim must be in 1..=4096");
        }
        if self.n_heads == 0 || !self.dim.is_multiple_of(self.n_heads) {
            return bad("dim must be a positive multiple of n_heads");
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
        Ok(())
    }

    /// Names and shapes of all parameters, in their fixed order.
    pub fn param_specs(&self) -> Vec<(String, Vec<usize>)> {
        let d = self.dim;
        let mut s: Vec<(String, Vec<usize>)> = vec![
            ("item.id".into(), vec![self.n_items, d]),
            ("item.cat".into(), vec![self.n_categories, d]),
            ("item.tok".into(), vec![self.n_token_buckets, d]),
            ("item.price".into(), vec![2, d]),
            ("user.pos".into(), vec![self.max_len, d]),
            ("user.kind".into(), vec![EventKind::ALL.len(), d]),
            ("user.gap".into(), vec![self.n_recency_buckets, d]),
        ];
        for b in 0..self.n_blocks {
            let p = |n: &str| format!("block{b}.{n}");
            s.push((p("ln1.g"), vec![d]));
            s.push((p("ln1.b"), vec![d]));
            for w in ["q", "k", "v", "o"] {
                s.push((p(&format!("attn.w{w}")), vec![d, d]));
                s.push((p(&format!("attn.b{w}")), vec![d]));
            }
            s.push((p("ln2.g"), vec![d]));
            s.push((p("ln2.b"), vec![d]));
            s.push((p("ffn.w1"), vec![d, self.ffn_dim]));
            s.push((p("ffn.b1"), vec![self.ffn_dim]));
            s.push((p("ffn.w2"), vec![self.ffn_dim, d]));
            s.push((p("ffn.b2"), vec![d]));
        }
        s.push(("user.lnf.g".into(), vec![d]));
        s.push(("user.lnf.b".into(), vec![d]));
        s.push(("head.w1".into(), vec![3 * d, self.mlp_hidden[0]]));
        s.push(("head.b1".into(), vec![self.mlp_hidden[0]]));
        for j in 1..self.mlp_hidden.len() {
            s.push((
                format!("head.l{j}.w"),
                vec![self.mlp_hidden[j - 1], self.mlp_hidden[j]],
            ));
            s.push((format!("head.l{j}.b"), vec![self.mlp_hidden[j]]));
        }
        s.push((
            "head.out.w".into(),
            vec![*self.mlp_hidden.last().unwrap_or(&1)],
        ));
        s.push(("head.out.b".into(), vec![1]));
        s
    }
}

/// Index of each parameter group in [`Model::params`].
pub mod idx {
    /// `item.id`.
    pub const ITEM_ID: usize = 0;
    /// `item.cat`.
    pub const ITEM_CAT: usize = 1;
    /// `item.tok`.
    pub const ITEM_TOK: usize = 2;
    /// `item.price`.
    pub const ITEM_PRICE: usize = 3;
    /// `user.pos`.
    pub const POS: usize = 4;
    /// `user.kind`.
    pub const KIND: usize = 5;
    /// `user.gap`.
    pub const GAP: usize = 6;
    /// First parameter of block 0.
    pub const BLOCK0: usize = 7;
    /// Parameters per block.
    pub const PER_BLOCK: usize = 16;
    /// Offsets inside a block.
    pub const LN1_G: usize = 0;
    /// Offset of `ln1.b`.
    pub const LN1_B: usize = 1;
    /// Offset of `attn.wq` (then bq, wk, bk, wv, bv, wo, bo).
    pub const WQ: usize = 2;
    /// Offset of `ln2.g`.
    pub const LN2_G: usize = 10;
    /// Offset of `ln2.b`.
    pub const LN2_B: usize = 11;
    /// Offset of `ffn.w1`.
    pub const W1: usize = 12;
    /// Offset of `ffn.b1`.
    pub const B1: usize = 13;
    /// Offset of `ffn.w2`.
    pub const W2: usize = 14;
    /// Offset of `ffn.b2`.
    pub const B2: usize = 15;
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
    /// A tensor has integer data where floats are expected, or the reverse.
    #[error("tensor {0:?} has the wrong element type")]
    WrongDtype(String),
    /// The model config is unusable (zero sizes, `dim` not divisible by `n_heads`, ...).
    #[error("invalid model config: {0}")]
    InvalidConfig(String),
    /// An item feature refers to a category or token bucket outside the config's range.
    #[error("item features out of range: {0}")]
    FeatureOutOfRange(String),
    /// The transition memory's tensors are inconsistent.
    #[error("invalid transition memory: {0}")]
    BadMemory(String),
}

/// The user encoder's output for one history.
#[derive(Debug, Clone, PartialEq)]
pub struct UserEncoding {
    /// The user vector `u` (length `dim`).
    pub u: Vec<f32>,
    /// For each history event (aligned with the *input* history slice; events beyond
    /// `max_len` get 0), how much the last position attended to it in the last block,
    /// averaged over heads. Sums to 1 over the events read. Explanations use it.
    pub attention: Vec<f32>,
}

/// One encoder input: the last `max_len` events as item indices, kinds and gap buckets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeqInput {
    /// Catalog index per position (oldest first).
    pub items: Vec<u32>,
    /// Event kind index per position.
    pub kinds: Vec<u8>,
    /// Recency bucket per position.
    pub gaps: Vec<u8>,
}

impl SeqInput {
    /// Number of positions.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there are no positions.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Recency bucket of an event given the previous event's time: 0 for the first event,
/// else `1 + floor(log2(1 + hours))`, capped at `n_buckets - 1`.
pub fn gap_bucket(prev: Option<f64>, at: f64, n_buckets: usize) -> u8 {
    let Some(p) = prev else { return 0 };
    let hours = (at - p) / 3600.0;
    if !hours.is_finite() || hours < 0.0 {
        return 1;
    }
    let b = 1 + (1.0 + hours).log2().floor() as usize;
    b.min(n_buckets - 1) as u8
}

/// Saved values of one encoder block for its backward pass.
#[derive(Debug, Clone, Default)]
pub struct BlockCache {
    /// Block input `[L × d]`.
    pub x: Vec<f32>,
    /// First layer norm.
    pub ln1: LnCache,
    /// Its output.
    pub a: Vec<f32>,
    /// Queries, keys, values `[L × d]`.
    pub q: Vec<f32>,
    /// Keys.
    pub k: Vec<f32>,
    /// Values.
    pub v: Vec<f32>,
    /// Attention probabilities `[heads × L × L]`.
    pub probs: Vec<f32>,
    /// Concatenated head outputs before `wo`.
    pub att: Vec<f32>,
    /// Dropout mask on the attention branch (empty = none).
    pub mask_attn: Vec<f32>,
    /// Residual stream after the attention branch.
    pub mid: Vec<f32>,
    /// Second layer norm.
    pub ln2: LnCache,
    /// Its output.
    pub b: Vec<f32>,
    /// Feed-forward hidden activations after ReLU `[L × ffn]`.
    pub f: Vec<f32>,
    /// Dropout mask on the feed-forward branch (empty = none).
    pub mask_ffn: Vec<f32>,
}

/// Saved values of the encoder for its backward pass.
#[derive(Debug, Clone, Default)]
pub struct EncoderCache {
    /// The input.
    pub input: SeqInput,
    /// Dropout mask on the input embeddings (empty = none).
    pub mask_in: Vec<f32>,
    /// Per-block caches.
    pub blocks: Vec<BlockCache>,
    /// Residual stream before the final layer norm.
    pub pre_final: Vec<f32>,
    /// Final layer norm.
    pub lnf: LnCache,
}

/// Saved values of the scoring head for its backward pass.
#[derive(Debug, Clone, Default)]
pub struct HeadCache {
    /// Activations after each hidden layer's ReLU, `[C × h_j]` each.
    pub hidden: Vec<Vec<f32>>,
}

/// Dropout source for training-mode forward passes (a small deterministic generator).
#[derive(Debug, Clone)]
pub struct Dropout {
    /// Drop probability.
    pub p: f32,
    state: u64,
}

impl Dropout {
    /// A dropout source with probability `p`, seeded.
    pub fn new(p: f32, seed: u64) -> Dropout {
        Dropout {
            p,
            state: seed ^ 0x9E37_79B9_7F4A_7C15,
        }
    }

    fn next_f32(&mut self) -> f32 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32
    }

    /// An inverted-dropout mask of `n` entries (0 or `1/(1-p)`).
    pub fn mask(&mut self, n: usize) -> Vec<f32> {
        let keep = 1.0 / (1.0 - self.p);
        (0..n)
            .map(|_| if self.next_f32() < self.p { 0.0 } else { keep })
            .collect()
    }
}

/// A model with its parameters and the item features it encodes.
#[derive(Debug, Clone)]
pub struct Model {
    /// Shape of the model.
    pub config: ModelConfig,
    /// Content features of every catalog item.
    pub features: ItemFeatureTable,
    /// Named parameters, in the fixed order of [`ModelConfig::param_specs`] (indices in
    /// [`idx`]). Public so the trainer can update them in place.
    pub params: Vec<(String, Tensor)>,
    /// The "wide" part: item-to-item transition memory (see [`memory`]), if trained.
    pub memory: Option<Memory>,
}

fn f32_data(t: &Tensor) -> &[f32] {
    match &t.data {
        TensorData::F32(v) => v,
        TensorData::I32(_) => &[],
    }
}

impl Model {
    /// A freshly initialised model (deterministic given `seed`).
    pub fn new(
        config: ModelConfig,
        features: ItemFeatureTable,
        seed: u64,
    ) -> Result<Model, ModelError> {
        config.validate()?;
        check_features(&config, &features)?;
        let mut rng = Dropout::new(0.0, seed);
        let mut normal = move || {
            // Box–Muller from two uniforms.
            let u1 = rng.next_f32().max(1e-7);
            let u2 = rng.next_f32();
            (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
        };
        let mut params = Vec::new();
        for (name, shape) in config.param_specs() {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = if name.ends_with(".g") {
                vec![1.0; n]
            } else if shape.len() == 1 {
                vec![0.0; n]
            } else if name.starts_with("item.") || name.starts_with("user.") {
                let std = if name == "item.id" || name == "item.tok" {
                    0.05
                } else {
                    0.02
                };
                (0..n).map(|_| normal() * std).collect()
            } else {
                let (fan_in, fan_out) = (shape[0] as f32, shape[1] as f32);
                let std = (2.0 / (fan_in + fan_out)).sqrt();
                (0..n).map(|_| normal() * std).collect()
            };
            params.push((
                name,
                Tensor {
                    shape,
                    data: TensorData::F32(data),
                },
            ));
        }
        Ok(Model {
            config,
            features,
            params,
            memory: None,
        })
    }

    /// Builds the model from a validated weight file.
    pub fn from_weights(file: &WeightFile) -> Result<Model, ModelError> {
        let config = file.metadata.model.clone();
        config.validate()?;
        let n = config.n_items;
        let get = |name: &str| {
            file.tensors
                .get(name)
                .ok_or_else(|| ModelError::MissingTensor(name.to_string()))
        };
        let ints = |name: &str, len: Option<usize>| -> Result<Vec<u32>, ModelError> {
            let t = get(name)?;
            let TensorData::I32(v) = &t.data else {
                return Err(ModelError::WrongDtype(name.to_string()));
            };
            if let Some(len) = len {
                if t.shape != [len] {
                    return Err(ModelError::ShapeMismatch {
                        name: name.into(),
                        expected: vec![len],
                        found: t.shape.clone(),
                    });
                }
            }
            v.iter()
                .map(|&x| {
                    u32::try_from(x).map_err(|_| {
                        ModelError::FeatureOutOfRange(format!("{name} holds negative value {x}"))
                    })
                })
                .collect()
        };
        let floats = |name: &str, len: usize| -> Result<Vec<f32>, ModelError> {
            let t = get(name)?;
            let TensorData::F32(v) = &t.data else {
                return Err(ModelError::WrongDtype(name.to_string()));
            };
            if t.shape != [len] {
                return Err(ModelError::ShapeMismatch {
                    name: name.into(),
                    expected: vec![len],
                    found: t.shape.clone(),
                });
            }
            Ok(v.clone())
        };
        let features = ItemFeatureTable {
            category: ints("features.category", Some(n))?,
            price: floats("features.price", n)?,
            price_missing: floats("features.price_missing", n)?,
            token_offsets: ints("features.token_offsets", Some(n + 1))?,
            tokens: ints("features.tokens", None)?,
        };
        check_features(&config, &features)?;
        let mut params = Vec::new();
        for (name, shape) in config.param_specs() {
            let t = get(&name)?;
            if t.shape != shape {
                return Err(ModelError::ShapeMismatch {
                    name,
                    expected: shape,
                    found: t.shape.clone(),
                });
            }
            let TensorData::F32(v) = &t.data else {
                return Err(ModelError::WrongDtype(name));
            };
            if v.len() != shape.iter().product::<usize>() {
                return Err(ModelError::ShapeMismatch {
                    name,
                    expected: shape,
                    found: vec![v.len()],
                });
            }
            params.push((name, t.clone()));
        }
        let memory = if file.tensors.contains_key("memory.offsets") {
            let blend = floats("memory.blend", 3)?;
            let nnz = get("memory.items")?.shape.first().copied().unwrap_or(0);
            let m = Memory {
                offsets: ints("memory.offsets", Some(n + 1))?,
                items: ints("memory.items", Some(nnz))?,
                weights: floats("memory.weights", nnz)?,
                alpha: blend[0],
                last_l: if blend[1].is_finite() && blend[1] >= 0.0 {
                    blend[1].min(1000.0) as usize
                } else {
                    0
                },
                decay: blend[2],
            };
            m.validate(n).map_err(ModelError::BadMemory)?;
            Some(m)
        } else {
            None
        };
        Ok(Model {
            config,
            features,
            params,
            memory,
        })
    }

    /// Parameter `i`'s values (see [`idx`]).
    pub fn w(&self, i: usize) -> &[f32] {
        f32_data(&self.params[i].1)
    }

    fn block_w(&self, b: usize, off: usize) -> &[f32] {
        self.w(idx::BLOCK0 + b * idx::PER_BLOCK + off)
    }

    /// Index of the final layer norm's gain.
    pub fn lnf_index(&self) -> usize {
        idx::BLOCK0 + self.config.n_blocks * idx::PER_BLOCK
    }

    /// Index of `head.w1`; then `head.b1`, the further layers' `(w, b)`, `head.out.w`,
    /// `head.out.b`.
    pub fn head_index(&self) -> usize {
        self.lnf_index() + 2
    }

    /// Item vectors for the whole catalog, row-major `[n_items × dim]`.
    pub fn item_vectors(&self) -> Vec<f32> {
        let d = self.config.dim;
        let (id, cat, tok, price) = (
            self.w(idx::ITEM_ID),
            self.w(idx::ITEM_CAT),
            self.w(idx::ITEM_TOK),
            self.w(idx::ITEM_PRICE),
        );
        let f = &self.features;
        let mut out = id.to_vec();
        for i in 0..self.config.n_items {
            let row = &mut out[i * d..(i + 1) * d];
            let c = f.category[i] as usize;
            layers::axpy(1.0, &cat[c * d..(c + 1) * d], row);
            let toks = f.tokens_of(i);
            if !toks.is_empty() {
                let s = 1.0 / toks.len() as f32;
                for &t in toks {
                    layers::axpy(s, &tok[t as usize * d..(t as usize + 1) * d], row);
                }
            }
            layers::axpy(f.price[i], &price[..d], row);
            layers::axpy(f.price_missing[i], &price[d..2 * d], row);
        }
        out
    }

    /// Turns a history (oldest first) into the encoder input: its last `max_len` events
    /// (events with an item outside the catalog are skipped).
    pub fn seq_input(&self, history: &[HistoryEvent]) -> (SeqInput, usize) {
        let valid: Vec<&HistoryEvent> = history
            .iter()
            .filter(|e| (e.item as usize) < self.config.n_items)
            .collect();
        let start = valid.len().saturating_sub(self.config.max_len);
        let mut s = SeqInput::default();
        let mut prev = if start > 0 {
            Some(valid[start - 1].at)
        } else {
            None
        };
        for e in &valid[start..] {
            s.items.push(e.item);
            s.kinds.push(e.kind.index() as u8);
            s.gaps
                .push(gap_bucket(prev, e.at, self.config.n_recency_buckets));
            prev = Some(e.at);
        }
        (s, start)
    }

    /// The encoder over one input: the final hidden states `[L × d]` and the cache the
    /// backward pass needs. `dropout` is `Some` at training time only.
    pub fn encode_sequence(
        &self,
        item_vectors: &[f32],
        input: &SeqInput,
        mut dropout: Option<&mut Dropout>,
    ) -> (Vec<f32>, EncoderCache) {
        let c = &self.config;
        let (d, len) = (c.dim, input.len());
        let mut x = vec![0.0; len * d];
        let (pos, kind, gap) = (self.w(idx::POS), self.w(idx::KIND), self.w(idx::GAP));
        for t in 0..len {
            let row = &mut x[t * d..(t + 1) * d];
            let it = input.items[t] as usize;
            row.copy_from_slice(&item_vectors[it * d..(it + 1) * d]);
            let p = len - 1 - t;
            layers::axpy(1.0, &pos[p * d..(p + 1) * d], row);
            let k = input.kinds[t] as usize;
            layers::axpy(1.0, &kind[k * d..(k + 1) * d], row);
            let g = input.gaps[t] as usize;
            layers::axpy(1.0, &gap[g * d..(g + 1) * d], row);
        }
        let mut cache = EncoderCache {
            input: input.clone(),
            ..Default::default()
        };
        if let Some(dr) = dropout.as_deref_mut() {
            cache.mask_in = dr.mask(len * d);
            x.iter_mut().zip(&cache.mask_in).for_each(|(v, m)| *v *= m);
        }
        let mut h = x;
        for b in 0..c.n_blocks {
            let mut bc = BlockCache {
                x: h.clone(),
                ..Default::default()
            };
            let (a, ln1) = layer_norm(
                &h,
                self.block_w(b, idx::LN1_G),
                self.block_w(b, idx::LN1_B),
                len,
                d,
            );
            let q = linear(
                &a,
                self.block_w(b, idx::WQ),
                self.block_w(b, idx::WQ + 1),
                len,
                d,
                d,
            );
            let k = linear(
                &a,
                self.block_w(b, idx::WQ + 2),
                self.block_w(b, idx::WQ + 3),
                len,
                d,
                d,
            );
            let v = linear(
                &a,
                self.block_w(b, idx::WQ + 4),
                self.block_w(b, idx::WQ + 5),
                len,
                d,
                d,
            );
            let (att, probs) = causal_attention(&q, &k, &v, len, d, c.n_heads);
            let mut o = linear(
                &att,
                self.block_w(b, idx::WQ + 6),
                self.block_w(b, idx::WQ + 7),
                len,
                d,
                d,
            );
            if let Some(dr) = dropout.as_deref_mut() {
                bc.mask_attn = dr.mask(len * d);
                o.iter_mut().zip(&bc.mask_attn).for_each(|(v, m)| *v *= m);
            }
            for (hv, ov) in h.iter_mut().zip(&o) {
                *hv += ov;
            }
            bc.mid = h.clone();
            let (bn, ln2) = layer_norm(
                &h,
                self.block_w(b, idx::LN2_G),
                self.block_w(b, idx::LN2_B),
                len,
                d,
            );
            let mut f = linear(
                &bn,
                self.block_w(b, idx::W1),
                self.block_w(b, idx::B1),
                len,
                d,
                c.ffn_dim,
            );
            relu(&mut f);
            let mut g = linear(
                &f,
                self.block_w(b, idx::W2),
                self.block_w(b, idx::B2),
                len,
                c.ffn_dim,
                d,
            );
            if let Some(dr) = dropout.as_deref_mut() {
                bc.mask_ffn = dr.mask(len * d);
                g.iter_mut().zip(&bc.mask_ffn).for_each(|(v, m)| *v *= m);
            }
            for (hv, gv) in h.iter_mut().zip(&g) {
                *hv += gv;
            }
            bc.ln1 = ln1;
            bc.a = a;
            bc.q = q;
            bc.k = k;
            bc.v = v;
            bc.probs = probs;
            bc.att = att;
            bc.ln2 = ln2;
            bc.b = bn;
            bc.f = f;
            cache.blocks.push(bc);
        }
        let li = self.lnf_index();
        let (y, lnf) = layer_norm(&h, self.w(li), self.w(li + 1), len, d);
        cache.pre_final = h;
        cache.lnf = lnf;
        (y, cache)
    }

    /// Encodes a history (oldest first; only the last `max_len` events are read) as the
    /// user vector, in inference mode. Recency is read from the gaps between events;
    /// `now` is accepted for API stability and currently unused. An empty history gives
    /// a zero vector.
    pub fn encode_user(
        &self,
        item_vectors: &[f32],
        history: &[HistoryEvent],
        now: f64,
    ) -> UserEncoding {
        let _ = now;
        let d = self.config.dim;
        let (input, _) = self.seq_input(history);
        let mut attention = vec![0.0; history.len()];
        if input.is_empty() {
            return UserEncoding {
                u: vec![0.0; d],
                attention,
            };
        }
        let (y, cache) = self.encode_sequence(item_vectors, &input, None);
        let len = input.len();
        let u = y[(len - 1) * d..].to_vec();
        // Map the last block's attention (last row, mean over heads) back onto the
        // input history (skipping events outside the catalog, as seq_input does).
        let heads = self.config.n_heads;
        let probs = &cache.blocks[self.config.n_blocks - 1].probs;
        let mut per_pos = vec![0.0; len];
        for h in 0..heads {
            let row = &probs[(h * len + len - 1) * len..(h * len + len) * len];
            for (p, r) in per_pos.iter_mut().zip(row) {
                *p += r / heads as f32;
            }
        }
        let valid: Vec<usize> = history
            .iter()
            .enumerate()
            .filter(|(_, e)| (e.item as usize) < self.config.n_items)
            .map(|(i, _)| i)
            .collect();
        let start = valid.len() - len;
        for (p, &hi) in valid[start..].iter().enumerate() {
            attention[hi] = per_pos[p];
        }
        UserEncoding { u, attention }
    }

    /// The scoring MLP's hidden widths and parameter slices: `(w1, b1, [(w, b)], w_out, b_out)`.
    fn head_params(&self) -> HeadParams<'_> {
        let hi = self.head_index();
        let nl = self.config.mlp_hidden.len();
        let layers = (1..nl)
            .map(|j| (self.w(hi + 2 * j), self.w(hi + 2 * j + 1)))
            .collect();
        let out = hi + 2 * nl;
        (
            self.w(hi),
            self.w(hi + 1),
            layers,
            self.w(out),
            self.w(out + 1)[0],
        )
    }

    /// The item-side tensors of the scoring head for the whole catalog: the item
    /// vectors and the head's further layers. The first layer's item part `V·W₁ᵥ` is not
    /// stored per item: [`Model::user_query`] folds `W₁ᵥ` into `M`, so one GEMM per
    /// request computes it with the user-dependent part (half the memory and traffic of a
    /// precomputed `[n × h]` table).
    /// Takes the item vectors (from [`Model::item_vectors`]) by value: a catalog-sized
    /// buffer is moved, not copied.
    pub fn head_plan(&self, item_vectors: Vec<f32>) -> HeadPlan {
        let d = self.config.dim;
        let n = self.config.n_items;
        let h = self.config.mlp_hidden[0];
        let (_, _, layers, w_out, b_out) = self.head_params();
        HeadPlan {
            n_items: n,
            dim: d,
            hidden: h,
            item_vectors,
            layers: layers
                .into_iter()
                .map(|(w, b)| (w.to_vec(), b.to_vec()))
                .collect(),
            w_out: w_out.to_vec(),
            b_out,
        }
    }

    /// The per-request inputs of the scoring head: `M = diag(u)·W₁ₚ + W₁ᵥ` (the
    /// `u ⊙ v` and `v` parts of the first layer, both linear in `v`) with `u` as column
    /// `h`, and `a = u·W₁ᵤ + b₁`; then `relu(v·M[:, 0..h] + a)` is the first layer.
    pub fn user_query(&self, u: &[f32]) -> UserQuery {
        let d = self.config.dim;
        let h = self.config.mlp_hidden[0];
        let (w1, b1, _, _, _) = self.head_params();
        let w1u = &w1[..d * h];
        let w1v = &w1[d * h..2 * d * h];
        let w1p = &w1[2 * d * h..3 * d * h];
        let mut m = vec![0.0; d * (h + 1)];
        for k in 0..d {
            for j in 0..h {
                m[k * (h + 1) + j] = u[k] * w1p[k * h + j] + w1v[k * h + j];
            }
            m[k * (h + 1) + h] = u[k];
        }
        let a = linear(u, w1u, b1, 1, d, h);
        UserQuery { m, a }
    }

    /// The head over `C` candidates for one user vector: `item_part` is `V_c·W₁ᵥ + b₁`
    /// (`[C × h]`), `cand` the candidate vectors `[C × d]`. Returns the logits
    /// (dot-product term included) and the cache for the backward pass.
    pub fn head_forward(
        &self,
        u: &[f32],
        cand: &[f32],
        item_part: &[f32],
        n_cand: usize,
    ) -> (Vec<f32>, HeadCache) {
        let d = self.config.dim;
        let h = self.config.mlp_hidden[0];
        let (w1, _, layers, w_out, b_out) = self.head_params();
        let w1u = &w1[..d * h];
        let w1p = &w1[2 * d * h..3 * d * h];
        let zero = vec![0.0; h];
        let ua = linear(u, w1u, &zero, 1, d, h);
        let mut h1 = item_part[..n_cand * h].to_vec();
        let mut p = vec![0.0; d];
        for c in 0..n_cand {
            let v = &cand[c * d..(c + 1) * d];
            for k in 0..d {
                p[k] = u[k] * v[k];
            }
            let row = &mut h1[c * h..(c + 1) * h];
            layers::axpy(1.0, &ua, row);
            layers::matmul_acc(&p, w1p, 1, d, h, row);
        }
        relu(&mut h1);
        let mut cache = HeadCache { hidden: vec![h1] };
        let mut width = h;
        for (w, b) in layers {
            let out_w = b.len();
            let mut z = linear(
                cache.hidden.last().map(Vec::as_slice).unwrap_or(&[]),
                w,
                b,
                n_cand,
                width,
                out_w,
            );
            relu(&mut z);
            cache.hidden.push(z);
            width = out_w;
        }
        let last = cache.hidden.last().map(Vec::as_slice).unwrap_or(&[]);
        let logits = (0..n_cand)
            .map(|c| {
                dot(&last[c * width..(c + 1) * width], w_out)
                    + b_out
                    + dot(u, &cand[c * d..(c + 1) * d])
            })
            .collect();
        (logits, cache)
    }

    /// Straightforward reference: the score logit of one item, computed directly from
    /// `[u, v_i, u ⊙ v_i]` without any precomputation. Tests compare fast paths to it.
    pub fn score_reference(&self, item_vectors: &[f32], u: &[f32], item: usize) -> f32 {
        let d = self.config.dim;
        let v = &item_vectors[item * d..(item + 1) * d];
        let mut x = Vec::with_capacity(3 * d);
        x.extend_from_slice(u);
        x.extend_from_slice(v);
        x.extend(u.iter().zip(v).map(|(a, b)| a * b));
        let (w1, b1, layers, w_out, b_out) = self.head_params();
        let mut hcur = linear(&x, w1, b1, 1, 3 * d, b1.len());
        relu(&mut hcur);
        for (w, b) in layers {
            hcur = linear(&hcur, w, b, 1, hcur.len(), b.len());
            relu(&mut hcur);
        }
        dot(&hcur, w_out) + b_out + dot(u, v)
    }

    /// The parameters and item-feature tensors, named as in the weight file.
    pub fn tensors(&self) -> BTreeMap<String, Tensor> {
        let mut m: BTreeMap<String, Tensor> = self.params.iter().cloned().collect();
        let f = &self.features;
        let n = f.len();
        let ints = |v: &[u32]| TensorData::I32(v.iter().map(|&x| x as i32).collect());
        m.insert(
            "features.category".into(),
            Tensor {
                shape: vec![n],
                data: ints(&f.category),
            },
        );
        m.insert(
            "features.price".into(),
            Tensor {
                shape: vec![n],
                data: TensorData::F32(f.price.clone()),
            },
        );
        m.insert(
            "features.price_missing".into(),
            Tensor {
                shape: vec![n],
                data: TensorData::F32(f.price_missing.clone()),
            },
        );
        m.insert(
            "features.token_offsets".into(),
            Tensor {
                shape: vec![n + 1],
                data: ints(&f.token_offsets),
            },
        );
        m.insert(
            "features.tokens".into(),
            Tensor {
                shape: vec![f.tokens.len()],
                data: ints(&f.tokens),
            },
        );
        if let Some(mem) = &self.memory {
            m.insert(
                "memory.offsets".into(),
                Tensor {
                    shape: vec![mem.offsets.len()],
                    data: ints(&mem.offsets),
                },
            );
            m.insert(
                "memory.items".into(),
                Tensor {
                    shape: vec![mem.items.len()],
                    data: ints(&mem.items),
                },
            );
            m.insert(
                "memory.weights".into(),
                Tensor {
                    shape: vec![mem.weights.len()],
                    data: TensorData::F32(mem.weights.clone()),
                },
            );
            m.insert(
                "memory.blend".into(),
                Tensor {
                    shape: vec![3],
                    data: TensorData::F32(vec![mem.alpha, mem.last_l as f32, mem.decay]),
                },
            );
        }
        m
    }

    /// Adds the transition memory's term to the head's logits (no-op without memory).
    /// Every scoring path calls this after the dense head, so rankings agree.
    pub fn add_memory(&self, history: &[HistoryEvent], logits: &mut [f32]) {
        if let Some(m) = &self.memory {
            m.add_to(history, logits);
        }
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
        let mut tensors = self.tensors();
        tensors.insert(
            "stats.popularity".into(),
            Tensor {
                shape: vec![popularity.len()],
                data: TensorData::F32(popularity),
            },
        );
        WeightFile {
            metadata: Metadata {
                format_version: FORMAT_VERSION,
                model: self.config.clone(),
                categories,
                items,
                features,
                training,
                metrics,
                quantization: Quantization::F32,
                content_hash: String::new(),
            },
            tensors,
        }
    }
}

fn check_features(config: &ModelConfig, f: &ItemFeatureTable) -> Result<(), ModelError> {
    let n = config.n_items;
    let bad = |m: String| Err(ModelError::FeatureOutOfRange(m));
    if f.category.len() != n
        || f.price.len() != n
        || f.price_missing.len() != n
        || f.token_offsets.len() != n + 1
    {
        return bad(format!(
            "feature table covers {} items, the config has {n}",
            f.category.len()
        ));
    }
    if let Some((i, c)) = f
        .category
        .iter()
        .enumerate()
        .find(|(_, &c)| c as usize >= config.n_categories)
    {
        return bad(format!(
            "item {i} has category {c}, only {} categories",
            config.n_categories
        ));
    }
    if f.token_offsets[0] != 0
        || f.token_offsets.windows(2).any(|w| w[0] > w[1])
        || f.token_offsets[n] as usize != f.tokens.len()
    {
        return bad("token offsets are not a valid CSR index".into());
    }
    if let Some(t) = f
        .tokens
        .iter()
        .find(|&&t| t as usize >= config.n_token_buckets)
    {
        return bad(format!(
            "token bucket {t} outside {} buckets",
            config.n_token_buckets
        ));
    }
    if f.price
        .iter()
        .chain(&f.price_missing)
        .any(|p| !p.is_finite())
    {
        return bad("non-finite price feature".into());
    }
    Ok(())
}

/// A small, randomly initialised model over a synthetic catalog (ids `I0`, `I1`, ...,
/// a few categories, prices, titles), as a complete weight file. For tests, examples and
/// benchmarks, natively and in wasm.
pub fn tiny_weight_file(n_items: usize, seed: u64) -> WeightFile {
    const ADJ: [&str; 8] = [
        "RED",
        "BLUE",
        "VINTAGE",
        "CHRISTMAS",
        "PINK",
        "WHITE",
        "GLASS",
        "PAPER",
    ];
    const NOUN: [&str; 6] = ["CANDLE", "MUG", "BAG", "HEART", "STAR", "BOX"];
    let n = n_items.max(1);
    let titles: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "{} {} {}",
                ADJ[i % ADJ.len()],
                ADJ[(i / 8 + 3) % ADJ.len()],
                NOUN[(i / 3) % NOUN.len()]
            )
        })
        .collect();
    let prices: Vec<Option<f32>> = (0..n)
        .map(|i| {
            if i % 11 == 5 {
                None
            } else {
                Some(0.5 + (i % 37) as f32 * 0.75)
            }
        })
        .collect();
    let attrs: Vec<ItemAttrs<'_>> = titles
        .iter()
        .zip(&prices)
        .map(|(t, &p)| ItemAttrs {
            title: t,
            category: None,
            price: p,
        })
        .collect();
    let feats = build_features_from(
        &attrs,
        &FeatureConfig {
            token_buckets: 64,
            min_category_items: 1,
            ..FeatureConfig::default()
        },
    );
    let config = ModelConfig {
        n_items: n,
        n_categories: feats.categories.len(),
        n_token_buckets: 64,
        dim: 16,
        n_blocks: 2,
        n_heads: 2,
        max_len: 20,
        ffn_dim: 32,
        mlp_hidden: vec![16, 8],
        n_recency_buckets: 8,
    };
    let model = Model::new(config, feats.table.clone(), seed).expect("tiny config is valid");
    let items = ItemCatalog {
        ids: (0..n).map(|i| format!("I{i}")).collect(),
        titles,
        category: feats.table.category.clone(),
        price: prices,
        added: (0..n).map(|i| Some(1.29e9 + i as f64 * 86_400.0)).collect(),
    };
    let popularity = (0..n).map(|i| 1.0 / (1.0 + i as f32)).collect();
    model.to_weight_file(
        items,
        feats.categories,
        popularity,
        feats.settings,
        serde_json::json!({ "synthetic": true, "seed": seed }),
        serde_json::json!({}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_model(n: usize) -> Model {
        let f = tiny_weight_file(n, 7);
        Model::from_weights(&f).expect("tiny model loads")
    }

    #[test]
    fn head_forward_matches_reference() {
        let m = tiny_model(30);
        let v = m.item_vectors();
        let hist: Vec<HistoryEvent> = (0..5)
            .map(|i| HistoryEvent {
                item: i * 3,
                kind: EventKind::View,
                at: 1e9 + i as f64 * 60.0,
            })
            .collect();
        let u = m.encode_user(&v, &hist, 0.0).u;
        let (d, h) = (m.config.dim, m.config.mlp_hidden[0]);
        let (w1, b1, ..) = m.head_params();
        let part = linear(&v, &w1[d * h..2 * d * h], b1, 30, d, h);
        let (logits, _) = m.head_forward(&u, &v, &part, 30);
        // The inference path (W₁ᵥ folded into M, no per-item table) agrees too.
        let plan = m.head_plan(v.clone());
        let mut folded = vec![0.0; 30];
        crate::kernels::CpuKernel::Scalar.scores(&plan, &m.user_query(&u), &mut folded);
        for (i, l) in logits.iter().enumerate() {
            let r = m.score_reference(&v, &u, i);
            assert!(
                (l - r).abs() < 1e-4 * (1.0 + r.abs()),
                "item {i}: {l} vs {r}"
            );
            assert!(
                (folded[i] - r).abs() < 1e-4 * (1.0 + r.abs()),
                "item {i}: plan {} vs {r}",
                folded[i]
            );
        }
    }

    #[test]
    fn attention_covers_the_events_read() {
        let m = tiny_model(30);
        let v = m.item_vectors();
        let mut hist: Vec<HistoryEvent> = (0..25)
            .map(|i| HistoryEvent {
                item: i,
                kind: EventKind::Cart,
                at: 1e9 + i as f64,
            })
            .collect();
        hist.push(HistoryEvent {
            item: 999,
            kind: EventKind::View,
            at: 2e9,
        });
        let enc = m.encode_user(&v, &hist, 0.0);
        assert_eq!(enc.attention.len(), hist.len());
        assert!(
            enc.attention[..5].iter().all(|&a| a == 0.0),
            "events beyond max_len read"
        );
        assert_eq!(enc.attention[25], 0.0, "out-of-catalog event read");
        assert!((enc.attention.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }

    #[test]
    fn corrupt_feature_tables_are_errors() {
        let mut f = tiny_weight_file(10, 1);
        f.tensors.insert(
            "features.category".into(),
            Tensor {
                shape: vec![10],
                data: TensorData::I32(vec![9999; 10]),
            },
        );
        assert!(matches!(
            Model::from_weights(&f),
            Err(ModelError::FeatureOutOfRange(_))
        ));
        let mut f = tiny_weight_file(10, 1);
        f.tensors.insert(
            "head.w1".into(),
            Tensor {
                shape: vec![3, 3],
                data: TensorData::F32(vec![0.0; 9]),
            },
        );
        assert!(matches!(
            Model::from_weights(&f),
            Err(ModelError::ShapeMismatch { .. })
        ));
        let mut f = tiny_weight_file(10, 1);
        f.tensors.remove("user.pos");
        assert!(matches!(
            Model::from_weights(&f),
            Err(ModelError::MissingTensor(_))
        ));
        let mut f = tiny_weight_file(10, 1);
        f.metadata.model.n_heads = 5;
        assert!(matches!(
            Model::from_weights(&f),
            Err(ModelError::InvalidConfig(_))
        ));
    }

    #[test]
    fn gap_buckets_grow_with_the_gap() {
        assert_eq!(gap_bucket(None, 5.0, 16), 0);
        assert_eq!(gap_bucket(Some(0.0), 60.0, 16), 1);
        assert!(gap_bucket(Some(0.0), 3600.0 * 24.0, 16) > gap_bucket(Some(0.0), 3600.0, 16));
        assert_eq!(gap_bucket(Some(0.0), 1e12, 16), 15);
        assert_eq!(gap_bucket(Some(10.0), 0.0, 16), 1);
    }
}
