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
//!   `u` is the output at the last position. The block variant of eSASRec (LiGR layers)
//!   is two switches of [`ModelConfig`]: `gated` adds each branch `y` to the stream `x`
//!   entering it as `x + σ(x·G + g) ⊙ y`, and `swiglu` makes the feed-forward layer
//!   `(silu(a·W₁ + b₁) ⊙ (a·W₃ + b₃))·W₂ + b₂`, `silu(z) = z·σ(z)`.
//! - Scoring head: `logit_i = u · v_i + MLP([u, v_i, u ⊙ v_i])` (Dense→ReLU per entry of
//!   `mlp_hidden`, then Dense→1), `score = sigmoid(logit)`. The first Dense layer's
//!   weight `W₁` is `[3d × h]`, stacked as `W₁ᵤ; W₁ᵥ; W₁ₚ`, so
//!   `[u, v, u⊙v]·W₁ = u·W₁ᵤ + v·W₁ᵥ + v·(diag(u)·W₁ₚ)`: the item-only part `V·W₁ᵥ + b₁` is
//!   precomputed once per model load ([`Model::head_plan`]) and a request is one
//!   `[items × d] · [d × (h+1)]` product ([`Model::user_query`], run by
//!   [`crate::kernels`]; the extra column carries the dot-product term).
//!
//! Parameters live in one flat vector with typed views ([`params`]); their names in the
//! weight file, shapes and order come from one table ([`params::param_table`], listed in
//! `docs/weight-format.md`). Besides them the file holds the item features
//! `features.category`, `features.price`, `features.price_missing`,
//! `features.token_offsets`, `features.tokens`, the optional transition memory
//! (`memory.*`) and `stats.popularity`; the conversion is in `weights.rs`
//! ([`Model::from_weights`], [`Model::to_weight_file`]). Event kinds absent from
//! training read the row of the closest trained kind ([`kinds`]).
pub mod kinds;
pub mod layers;
pub mod memory;
pub mod params;
mod weights;

use crate::features::ItemFeatureTable;
use crate::format::{Int8Tensor, Quantization};
use crate::history::{EventKind, HistoryEvent};
use crate::kernels::{HeadPlan, Int8Items, ItemRows, ItemVectors, UserQuery};
use crate::rng::SplitMix64;
use kinds::KindMap;
use layers::{causal_attention, dot, layer_norm, linear, relu, LnCache};
use memory::Memory;
use params::{flat, flat_mut, param_table, row, Block, ParamsMut, ParamsRef};

pub use crate::config::{ConfigError, ModelConfig};

/// Adds item `i`'s neighbour mix `Σ_j w_ij · id_j` ([`Model::id_mix`]) to `row`, the
/// rows read from `id` (`[n_items × d]`, `d = row.len()`), in list order.
fn add_id_mix(mix: &Memory, id: &[f32], i: usize, row: &mut [f32]) {
    let d = row.len();
    for (j, w) in mix.neighbours(i) {
        let j = j as usize;
        layers::axpy(w, &id[j * d..(j + 1) * d], row);
    }
}
pub use params::CONTENT_TENSORS;

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

impl From<ConfigError> for ModelError {
    fn from(e: ConfigError) -> ModelError {
        ModelError::InvalidConfig(e.to_string())
    }
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
    /// Gated blocks: the gates `σ(x·G + g)` of the attention and feed-forward branches
    /// `[L × d]` each, and the branches' outputs before gating (after dropout).
    pub gate_attn: Vec<f32>,
    /// The feed-forward branch's gate.
    pub gate_ffn: Vec<f32>,
    /// The attention branch's output `[L × d]` (gated blocks only).
    pub o: Vec<f32>,
    /// The feed-forward branch's output `[L × d]` (gated blocks only).
    pub g: Vec<f32>,
    /// SwiGLU: the two projections before the product, `x·W₁ + b₁` and `x·W₃ + b₃`.
    pub f1: Vec<f32>,
    /// The second projection.
    pub f3: Vec<f32>,
}

/// SwiGLU's product `silu(a) ⊙ b`, into `a`.
fn swiglu(a: &mut [f32], b: &[f32]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x = *x * layers::sigmoid(*x) * y;
    }
}

/// A block's residual add: `h += y`, or `h += s ⊙ y` with the gate `s` of a gated block.
fn add_branch(h: &mut [f32], y: &[f32], s: Option<&[f32]>) {
    match s {
        Some(s) => {
            for ((hv, yv), sv) in h.iter_mut().zip(y).zip(s) {
                *hv += sv * yv;
            }
        }
        None => {
            for (hv, yv) in h.iter_mut().zip(y) {
                *hv += yv;
            }
        }
    }
}

/// `σ(x·w + b)` over `m` rows of `d`: a residual gate.
fn gate(
    x: &[f32],
    gate: &params::Dense<&[f32], ndarray::ArrayView2<'_, f32>>,
    m: usize,
    d: usize,
) -> Vec<f32> {
    let mut z = linear(x, flat(&gate.w), gate.b, m, d, d);
    z.iter_mut().for_each(|v| *v = layers::sigmoid(*v));
    z
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
    rng: SplitMix64,
}

impl Dropout {
    /// A dropout source with probability `p`, seeded.
    pub fn new(p: f32, seed: u64) -> Dropout {
        Dropout {
            p,
            rng: SplitMix64::new(seed ^ 0x9E37_79B9_7F4A_7C15),
        }
    }

    fn next_f32(&mut self) -> f32 {
        self.rng.next_f32()
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
    /// All parameters in one flat vector, laid out by [`params::param_table`]; read them
    /// through [`Model::view`]. Public so the trainer can update them in place. Without
    /// [`Model::id_rows`], the `item.id` table (first in the table) is not in it.
    pub params: Vec<f32>,
    /// Whether `params` holds the `item.id` rows (`n_items × dim`, the one
    /// catalogue-sized parameter). A serving model drops them once its item vectors are
    /// built ([`Model::drop_id_rows`], [`Model::from_weights_int8`]): they live on only
    /// inside those vectors, so [`Model::item_vectors`] and the weight-file conversion
    /// need them and the user encoder, the head and the memory do not. The content
    /// features (`features`) go with them, for the same reason.
    pub id_rows: bool,
    /// The "wide" part: item-to-item transition memory (see [`memory`]), if trained.
    pub memory: Option<Memory>,
    /// The event kinds whose `user.kind` row was trained, in funnel order; `None` when not
    /// recorded (a fresh model, or a file without the field). Set it with
    /// [`Model::set_trained_kinds`], which also maps the untrained rows ([`kinds`]).
    pub trained_kinds: Option<Vec<EventKind>>,
    /// How the weight file stored its floats (set by [`Model::from_weights`]; `F32` for a
    /// trained model), which decides how the scoring plan holds the item vectors
    /// ([`Model::runtime_plan`]): `Int8` keeps them int8 in memory, `F16` keeps them f32
    /// on the CPU and f16 on the GPU ([`HeadPlan::gpu_f16`]), `F32` keeps them f32.
    pub storage: Quantization,
    /// While training with neighbour mixing ([`crate::train::TrainConfig::neighbour_mix`]):
    /// per item, its neighbours `j` and weights `w_ij` (already scaled by the mix), so
    /// that the item's ID part is `id_i + Σ_j w_ij · id_j`. `None` otherwise: at the end
    /// of training the trainer folds the mix into the ID rows ([`Model::fold_id_mix`]),
    /// so a weight file holds plain rows and no reader knows of it.
    pub id_mix: Option<Memory>,
}

impl Model {
    /// A freshly initialised model (deterministic given `seed`).
    pub fn new(
        config: ModelConfig,
        features: ItemFeatureTable,
        seed: u64,
    ) -> Result<Model, ModelError> {
        config.validate()?;
        weights::check_features(&config, &features)?;
        let mut rng = Dropout::new(0.0, seed);
        let mut normal = move || {
            // Box–Muller from two uniforms.
            let u1 = rng.next_f32().max(1e-7);
            let u2 = rng.next_f32();
            (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
        };
        let mut params = Vec::new();
        for spec in param_table(&config) {
            let (name, shape, n) = (&spec.name, &spec.shape, spec.len());
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
            params.extend_from_slice(&data);
        }
        Ok(Model {
            config,
            features,
            params,
            memory: None,
            trained_kinds: None,
            storage: Quantization::F32,
            id_rows: true,
            id_mix: None,
        })
    }

    /// Records the kinds whose `user.kind` row was trained and copies, into the row of
    /// every other kind, the row of the closest trained kind (see [`kinds`]). Rows of
    /// trained kinds are left as they are, so histories of trained kinds score exactly as
    /// before. An empty `trained` records nothing and changes nothing.
    pub fn set_trained_kinds(&mut self, trained: &[EventKind]) {
        if trained.is_empty() {
            return;
        }
        let map = KindMap::new(Some(trained));
        let d = self.config.dim;
        let mut p = if self.id_rows {
            ParamsMut::view_mut(&self.config, &mut self.params)
        } else {
            ParamsMut::view_mut_without_ids(&self.config, &mut self.params)
        };
        let rows = flat_mut(&mut p.user.kind);
        for (kind, reads) in map.mapped() {
            let (src, dst) = (reads.index() * d, kind.index() * d);
            rows.copy_within(src..src + d, dst);
        }
        self.trained_kinds = map.trained;
    }

    /// The trained kinds and the row each kind reads.
    pub fn kind_map(&self) -> KindMap {
        KindMap::new(self.trained_kinds.as_deref())
    }

    /// Typed views of the parameters (see [`params`]).
    pub fn view(&self) -> ParamsRef<'_> {
        if self.id_rows {
            ParamsRef::view(&self.config, &self.params)
        } else {
            ParamsRef::view_without_ids(&self.config, &self.params)
        }
    }

    /// Frees the `item.id` rows (see [`Model::id_rows`]) and the item content features,
    /// the item vectors' other input (`features` is left empty: 24 MiB at 1,000,000
    /// items); every other parameter keeps its value. Call it once the item vectors are
    /// built.
    pub fn drop_id_rows(&mut self) {
        if self.id_rows {
            let len = self.config.n_items * self.config.dim;
            self.params.drain(..len.min(self.params.len()));
            self.params.shrink_to_fit();
            self.id_rows = false;
        }
        self.features = ItemFeatureTable::default();
    }

    /// Item vectors for the whole catalog, row-major `[n_items × dim]`.
    ///
    /// # Panics
    /// If the ID rows were dropped ([`Model::id_rows`]).
    pub fn item_vectors(&self) -> Vec<f32> {
        self.item_vectors_without_ids(None)
    }

    /// [`Model::item_vectors`], with the rows of the items marked in `dropped` made of
    /// their content parts alone (no ID row): the trainer's ID dropout. `None` is
    /// [`Model::item_vectors`].
    pub fn item_vectors_without_ids(&self, dropped: Option<&[bool]>) -> Vec<f32> {
        let d = self.config.dim;
        let mut out = vec![0.0; self.config.n_items * d];
        let p = self.view();
        for (i, row) in out.chunks_exact_mut(d.max(1)).enumerate() {
            if dropped.is_some_and(|m| m.get(i).copied().unwrap_or(false)) {
                self.add_content(&p, i, row);
            } else {
                self.item_vector_into(&p, i, row);
            }
        }
        out
    }

    /// The item vectors quantised to int8 with a per-row scale, computed row by row:
    /// no catalogue-sized f32 buffer (the int8 weight file's run-time form, see
    /// [`crate::kernels::quant`]).
    ///
    /// # Panics
    /// If the ID rows were dropped ([`Model::id_rows`]).
    pub fn item_vectors_int8(&self) -> Int8Items {
        let (n, d) = (self.config.n_items, self.config.dim);
        let mut out = Int8Items::with_capacity(d, n);
        let mut row = vec![0.0; d];
        let p = self.view();
        for i in 0..n {
            self.item_vector_into(&p, i, &mut row);
            out.push_row(&row);
        }
        out
    }

    /// [`Model::item_vectors_int8`] of a model without ID rows, reading them from the
    /// weight file's int8 `item.id` table (`ids`, `[n_items × dim]`): row `i`'s ID part
    /// is `f32::from(q) · scale_i`, the value [`crate::format::WeightFile::from_bytes`]
    /// dequantises to, so the result is the same, without the f32 table.
    ///
    /// The vectors are rebuilt in the table's own allocation
    /// ([`Int8Items::rebuild_in_place`]), so the int8 table never exists twice while an
    /// int8 file loads (64 MiB at 1,000,000 items, d = 64). `None` when `ids` is not
    /// `[n_items × dim]` (callers check the shape first).
    ///
    /// When the content tables are zero (a file whose `item.id` rows already hold the
    /// whole item vectors: [`Model::fold_item_content`]), adding the content changes
    /// no value (every price feature is finite, so each term is a zero), and the rows
    /// take [`Int8Items::requantized`], which equals that rebuild bit for bit.
    pub(crate) fn item_vectors_int8_from(&self, ids: Int8Tensor) -> Option<Int8Items> {
        let d = self.config.dim;
        if ids.scale.len() != self.config.n_items {
            return None;
        }
        if self.content_is_zero() {
            return Int8Items::requantized(ids.q, ids.scale, d);
        }
        let p = self.view();
        Int8Items::rebuild_in_place(ids.q, ids.scale, d, |i, row| self.add_content(&p, i, row))
    }

    /// Whether the category, title-token and price tables are all zero, so that an item
    /// vector is its ID row (`Model::add_content` adds only zeros).
    pub fn content_is_zero(&self) -> bool {
        let p = self.view();
        let it = &p.item;
        [flat(&it.cat), flat(&it.tok), flat(&it.price)]
            .iter()
            .all(|t| t.iter().all(|&x| x == 0.0))
    }

    /// Item `i`'s vector into `row` (`d` long): its ID row, then the category, title
    /// token and price parts added in that order ([`Model::add_content`]).
    fn item_vector_into(&self, p: &ParamsRef<'_>, i: usize, row: &mut [f32]) {
        assert!(self.id_rows, "the model's item.id rows were dropped");
        let d = self.config.dim;
        let id = flat(&p.item.id);
        row.copy_from_slice(&id[i * d..(i + 1) * d]);
        if let Some(mix) = &self.id_mix {
            add_id_mix(mix, id, i, row);
        }
        self.add_content(p, i, row);
    }

    /// Folds the neighbour mixing into the ID rows (`id_i ← id_i + Σ_j w_ij · id_j`, all
    /// from the rows before the fold) and drops it: every item vector stays what it was
    /// (the same sums in the same order, so bit for bit).
    pub fn fold_id_mix(&mut self) {
        let Some(mix) = self.id_mix.take() else {
            return;
        };
        let d = self.config.dim;
        let old = flat(&self.view().item.id).to_vec();
        let mut p = ParamsMut::view_mut(&self.config, &mut self.params);
        let id = flat_mut(&mut p.item.id);
        for (i, row) in id.chunks_exact_mut(d.max(1)).enumerate() {
            add_id_mix(&mix, &old, i, row);
        }
    }

    /// Adds item `i`'s content parts to `row` (its ID row): the category, title token
    /// and price parts, in that order.
    fn add_content(&self, p: &ParamsRef<'_>, i: usize, row: &mut [f32]) {
        let d = self.config.dim;
        let it = &p.item;
        let (cat, tok, price) = (flat(&it.cat), flat(&it.tok), flat(&it.price));
        let f = &self.features;
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

    /// The encoder's input rows `[L × d]`: `x_t = v_{item_t} + pos[L-1-t] + kind[k_t] +
    /// gap[g_t]` (module docs).
    fn embed_input<V: ItemRows + ?Sized>(&self, item_vectors: &V, input: &SeqInput) -> Vec<f32> {
        let (d, len) = (self.config.dim, input.len());
        let p = self.view();
        let user = &p.user;
        let mut x = vec![0.0; len * d];
        for t in 0..len {
            let r = &mut x[t * d..(t + 1) * d];
            item_vectors.copy_row(input.items[t] as usize, r);
            layers::axpy(1.0, row(&user.pos, len - 1 - t), r);
            layers::axpy(1.0, row(&user.kind, input.kinds[t] as usize), r);
            layers::axpy(1.0, row(&user.gap, input.gaps[t] as usize), r);
        }
        x
    }

    /// The encoder over one input: the final hidden states `[L × d]` and the cache the
    /// backward pass needs. `dropout` is `Some` at training time only.
    pub fn encode_sequence<V: ItemRows + ?Sized>(
        &self,
        item_vectors: &V,
        input: &SeqInput,
        mut dropout: Option<&mut Dropout>,
    ) -> (Vec<f32>, EncoderCache) {
        let c = &self.config;
        let (d, len) = (c.dim, input.len());
        let p = self.view();
        let user = &p.user;
        let mut x = self.embed_input(item_vectors, input);
        let mut cache = EncoderCache {
            input: input.clone(),
            ..Default::default()
        };
        if let Some(dr) = dropout.as_deref_mut() {
            cache.mask_in = dr.mask(len * d);
            x.iter_mut().zip(&cache.mask_in).for_each(|(v, m)| *v *= m);
        }
        let mut h = x;
        for blk in &user.blocks {
            let bc = self.block_forward(blk, &mut h, len, dropout.as_deref_mut());
            cache.blocks.push(bc);
        }
        let (y, lnf) = layer_norm(&h, user.lnf.g, user.lnf.b, len, d);
        cache.pre_final = h;
        cache.lnf = lnf;
        (y, cache)
    }

    /// One pre-layer-norm block over the residual stream `h` `[L × d]` (updated in
    /// place): `mid = h + drop(attn(ln1(h))·Wo + bo)`, `h' = mid + drop(ffn(ln2(mid)))`.
    fn block_forward(
        &self,
        blk: &Block<&[f32], ndarray::ArrayView2<'_, f32>>,
        h: &mut [f32],
        len: usize,
        mut dropout: Option<&mut Dropout>,
    ) -> BlockCache {
        let c = &self.config;
        let d = c.dim;
        let mut bc = BlockCache {
            x: h.to_vec(),
            ..Default::default()
        };
        let at = &blk.attn;
        let (a, ln1) = layer_norm(h, blk.ln1.g, blk.ln1.b, len, d);
        let q = linear(&a, flat(&at.wq), at.bq, len, d, d);
        let k = linear(&a, flat(&at.wk), at.bk, len, d, d);
        let v = linear(&a, flat(&at.wv), at.bv, len, d, d);
        let (att, probs) = causal_attention(&q, &k, &v, len, d, c.n_heads);
        let mut o = linear(&att, flat(&at.wo), at.bo, len, d, d);
        if let Some(dr) = dropout.as_deref_mut() {
            bc.mask_attn = dr.mask(len * d);
            o.iter_mut().zip(&bc.mask_attn).for_each(|(v, m)| *v *= m);
        }
        let s = blk.gates.as_ref().map(|g| gate(h, &g[0], len, d));
        add_branch(h, &o, s.as_deref());
        if let Some(s) = s {
            bc.gate_attn = s;
            bc.o = o;
        }
        bc.mid = h.to_vec();
        let ff = &blk.ffn;
        let (bn, ln2) = layer_norm(h, blk.ln2.g, blk.ln2.b, len, d);
        let mut f = linear(&bn, flat(&ff.w1), ff.b1, len, d, c.ffn_dim);
        if let Some(up) = &ff.up {
            let f3 = linear(&bn, flat(&up.w), up.b, len, d, c.ffn_dim);
            bc.f1 = f.clone();
            swiglu(&mut f, &f3);
            bc.f3 = f3;
        } else {
            relu(&mut f);
        }
        let mut g = linear(&f, flat(&ff.w2), ff.b2, len, c.ffn_dim, d);
        if let Some(dr) = dropout {
            bc.mask_ffn = dr.mask(len * d);
            g.iter_mut().zip(&bc.mask_ffn).for_each(|(v, m)| *v *= m);
        }
        let s = blk.gates.as_ref().map(|gt| gate(h, &gt[1], len, d));
        add_branch(h, &g, s.as_deref());
        if let Some(s) = s {
            bc.gate_ffn = s;
            bc.g = g;
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
        bc
    }

    /// The encoder in inference mode, for the last position only: its final hidden
    /// state `u` `[d]` and the last block's attention probabilities of that position
    /// `[n_heads × L]` — bit for bit the last row of [`Model::encode_sequence`] (no
    /// dropout) and of its last block's `probs`. Blocks before the last run over every
    /// position (the last block's keys and values need them); the last block computes
    /// keys and values for every position but the query, the attention, the output
    /// projection, the feed-forward layer and the final layer norm for the last position
    /// alone, and nothing is kept for a backward pass. `input` must not be empty.
    fn encode_last<V: ItemRows + ?Sized>(
        &self,
        item_vectors: &V,
        input: &SeqInput,
    ) -> (Vec<f32>, Vec<f32>) {
        let c = &self.config;
        let (d, len) = (c.dim, input.len());
        let p = self.view();
        let user = &p.user;
        let mut h = self.embed_input(item_vectors, input);
        let Some((last, before)) = user.blocks.split_last() else {
            let (y, _) = layer_norm(&h[(len - 1) * d..], user.lnf.g, user.lnf.b, 1, d);
            return (y, vec![0.0; c.n_heads * len]);
        };
        for blk in before {
            self.block_forward(blk, &mut h, len, None);
        }
        let at = &last.attn;
        let (a, _) = layer_norm(&h, last.ln1.g, last.ln1.b, len, d);
        let q = linear(&a[(len - 1) * d..], flat(&at.wq), at.bq, 1, d, d);
        let k = linear(&a, flat(&at.wk), at.bk, len, d, d);
        let v = linear(&a, flat(&at.wv), at.bv, len, d, d);
        let (att, probs) = layers::causal_attention_last(&q, &k, &v, len, d, c.n_heads);
        let o = linear(&att, flat(&at.wo), at.bo, 1, d, d);
        let mut m = h[(len - 1) * d..].to_vec();
        let s = last.gates.as_ref().map(|g| gate(&m, &g[0], 1, d));
        add_branch(&mut m, &o, s.as_deref());
        let ff = &last.ffn;
        let (bn, _) = layer_norm(&m, last.ln2.g, last.ln2.b, 1, d);
        let mut f = linear(&bn, flat(&ff.w1), ff.b1, 1, d, c.ffn_dim);
        if let Some(up) = &ff.up {
            let f3 = linear(&bn, flat(&up.w), up.b, 1, d, c.ffn_dim);
            swiglu(&mut f, &f3);
        } else {
            relu(&mut f);
        }
        let g = linear(&f, flat(&ff.w2), ff.b2, 1, c.ffn_dim, d);
        let s = last.gates.as_ref().map(|gt| gate(&m, &gt[1], 1, d));
        add_branch(&mut m, &g, s.as_deref());
        let (y, _) = layer_norm(&m, user.lnf.g, user.lnf.b, 1, d);
        (y, probs)
    }

    /// Encodes a history (oldest first; only the last `max_len` events are read) as the
    /// user vector, in inference mode. Recency is read from the gaps between events. An
    /// empty history gives a zero vector.
    pub fn encode_user<V: ItemRows + ?Sized>(
        &self,
        item_vectors: &V,
        history: &[HistoryEvent],
    ) -> UserEncoding {
        let d = self.config.dim;
        let (input, _) = self.seq_input(history);
        let mut attention = vec![0.0; history.len()];
        if input.is_empty() {
            return UserEncoding {
                u: vec![0.0; d],
                attention,
            };
        }
        let (u, probs) = self.encode_last(item_vectors, &input);
        let len = input.len();
        // Map the last block's attention (last row, mean over heads) back onto the
        // input history (skipping events outside the catalog, as seq_input does).
        let heads = self.config.n_heads;
        let mut per_pos = vec![0.0; len];
        for row in probs.chunks_exact(len) {
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

    /// The item-side tensors of the scoring head for the whole catalog: the item
    /// vectors and the head's further layers. The first layer's item part `V·W₁ᵥ` is not
    /// stored per item: [`Model::user_query`] folds `W₁ᵥ` into `M`, so one GEMM per
    /// request computes it with the user-dependent part (half the memory and traffic of a
    /// precomputed `[n × h]` table).
    /// Takes the item vectors (f32 from [`Model::item_vectors`], or int8 from
    /// [`Model::item_vectors_int8`]) by value: a catalog-sized buffer is moved, not
    /// copied.
    pub fn head_plan(&self, item_vectors: impl Into<ItemVectors>) -> HeadPlan {
        let d = self.config.dim;
        let n = self.config.n_items;
        let h = self.config.mlp_hidden[0];
        let p = self.view();
        let head = &p.head;
        HeadPlan {
            n_items: n,
            dim: d,
            hidden: h,
            item_vectors: item_vectors.into(),
            layers: head
                .layers
                .iter()
                .map(|l| (flat(&l.w).to_vec(), l.b.to_vec()))
                .collect(),
            w_out: head.out.w.to_vec(),
            b_out: head.out.b[0],
            gpu_f16: self.storage == Quantization::F16,
        }
    }

    /// The scoring plan the model runs with: int8 item vectors when
    /// [`Model::storage`] is `Int8` (an int8 weight file), else f32.
    pub fn runtime_plan(&self) -> HeadPlan {
        if self.storage == Quantization::Int8 {
            self.head_plan(self.item_vectors_int8())
        } else {
            self.head_plan(self.item_vectors())
        }
    }

    /// The per-request inputs of the scoring head: `M = diag(u)·W₁ₚ + W₁ᵥ` (the
    /// `u ⊙ v` and `v` parts of the first layer, both linear in `v`) with `u` as column
    /// `h`, and `a = u·W₁ᵤ + b₁`; then `relu(v·M[:, 0..h] + a)` is the first layer.
    pub fn user_query(&self, u: &[f32]) -> UserQuery {
        let d = self.config.dim;
        let h = self.config.mlp_hidden[0];
        let p = self.view();
        let head = &p.head;
        let (w1u, w1v, w1p) = (flat(&head.w1u), flat(&head.w1v), flat(&head.w1p));
        let mut m = vec![0.0; d * (h + 1)];
        for k in 0..d {
            for j in 0..h {
                m[k * (h + 1) + j] = u[k] * w1p[k * h + j] + w1v[k * h + j];
            }
            m[k * (h + 1) + h] = u[k];
        }
        let a = linear(u, w1u, head.b1, 1, d, h);
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
        let p = self.view();
        let head = &p.head;
        let (w1u, w1p) = (flat(&head.w1u), flat(&head.w1p));
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
        for l in &head.layers {
            let out_w = l.b.len();
            let mut z = linear(
                cache.hidden.last().map(Vec::as_slice).unwrap_or(&[]),
                flat(&l.w),
                l.b,
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
                dot(&last[c * width..(c + 1) * width], head.out.w)
                    + head.out.b[0]
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
        let uv: Vec<f32> = u.iter().zip(v).map(|(a, b)| a * b).collect();
        let p = self.view();
        let head = &p.head;
        let h = head.b1.len();
        // [u, v, u⊙v]·W₁ + b₁, one row block of W₁ after the other (the same
        // accumulation order as one [1 × 3d]·[3d × h] product).
        let mut hcur = head.b1.to_vec();
        layers::matmul_acc(u, flat(&head.w1u), 1, d, h, &mut hcur);
        layers::matmul_acc(v, flat(&head.w1v), 1, d, h, &mut hcur);
        layers::matmul_acc(&uv, flat(&head.w1p), 1, d, h, &mut hcur);
        relu(&mut hcur);
        for l in &head.layers {
            hcur = linear(&hcur, flat(&l.w), l.b, 1, hcur.len(), l.b.len());
            relu(&mut hcur);
        }
        dot(&hcur, head.out.w) + head.out.b[0] + dot(u, v)
    }

    /// Adds the transition memory's term to the head's logits (no-op without memory).
    /// Every scoring path calls this after the dense head, so rankings agree.
    pub fn add_memory(&self, history: &[HistoryEvent], logits: &mut [f32]) {
        if let Some(m) = &self.memory {
            m.add_to(history, logits);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_buckets_grow_with_the_gap() {
        assert_eq!(gap_bucket(None, 5.0, 16), 0);
        assert_eq!(gap_bucket(Some(0.0), 60.0, 16), 1);
        assert!(gap_bucket(Some(0.0), 3600.0 * 24.0, 16) > gap_bucket(Some(0.0), 3600.0, 16));
        assert_eq!(gap_bucket(Some(0.0), 1e12, 16), 15);
        assert_eq!(gap_bucket(Some(10.0), 0.0, 16), 1);
    }
}
