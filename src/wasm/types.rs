//! The shapes the browser API takes and returns that are not engine types (those are
//! [`crate::recommend::RecommendOptions`], [`crate::recommend::Recommendation`] and
//! [`crate::history::HistoryLimits`]): serde structs whose field names are the JavaScript
//! ones. Compiled natively too, so `tests/js_types.rs` can check `www/vitrine.js`'s JSDoc
//! typedefs against them (a field renamed here without the typedef fails that test).
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::format::{Metadata, OptColumn, Quantization};
use crate::history::{EventKind, HistoryLimits};
use crate::model::kinds::KindMap;
use crate::strs::StrList;

/// Scoring backend requested at load (`options.backend`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendOption {
    /// The fastest of WebGPU and the best CPU kernel (measured at load).
    #[default]
    Auto,
    /// WebGPU whenever it works, else SIMD, else scalar.
    Webgpu,
    /// wasm SIMD128 (scalar when this build has no SIMD).
    Simd,
    /// The scalar reference.
    Scalar,
}

/// Where history is kept (`options.storage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageOption {
    /// `localStorage` (falls back to memory when unavailable).
    #[default]
    Local,
    /// Memory only (Web Workers).
    Memory,
}

/// Options of `Recommender.fromBytes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct LoadOptions {
    /// Scoring backend.
    pub backend: BackendOption,
    /// `sha256-<64 hex digits>` of the file's bytes.
    pub integrity: Option<String>,
    /// History namespace (default: the first 12 hex digits of the model's content hash).
    pub namespace: Option<String>,
    /// Where history is kept.
    pub storage: StorageOption,
    /// History rules (cap, age, decay, dedup).
    pub history_limits: HistoryLimits,
}

/// An event passed to `record()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordEvent {
    /// Store item id.
    pub item: String,
    /// What the shopper did.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// Unix seconds (default: now).
    #[serde(default)]
    pub at: Option<f64>,
}

/// One row of `history()`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryRow<'a> {
    /// Store item id.
    pub item: &'a str,
    /// What the shopper did.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// Unix seconds.
    pub at: f64,
    /// The item's title; `None` for ids this model does not know.
    pub title: Option<&'a str>,
}

/// The catalog for display (`catalog()`), one entry per item in each list.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogView<'a> {
    /// Store item ids.
    pub ids: &'a StrList,
    /// Display titles.
    pub titles: &'a StrList,
    /// Category name per item.
    pub categories: CategoryColumn<'a>,
    /// Price per item, when known.
    pub prices: &'a OptColumn<f32>,
    /// Every category name.
    pub category_names: &'a [String],
}

/// The category name of each item, resolved as it is serialised (a list of names; no
/// per-item vector in wasm memory: 8 MiB at 1,000,000 items). An index without a name
/// reads `"unknown"`.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryColumn<'a> {
    /// Category index per item.
    pub index: &'a [u32],
    /// Names by index.
    pub names: &'a [String],
}

impl CategoryColumn<'_> {
    /// The name of item `i`'s category.
    pub fn name(&self, i: usize) -> &str {
        self.index
            .get(i)
            .and_then(|&k| self.names.get(k as usize))
            .map_or("unknown", String::as_str)
    }
}

impl Serialize for CategoryColumn<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.index.len()))?;
        for i in 0..self.index.len() {
            seq.serialize_element(self.name(i))?;
        }
        seq.end()
    }
}

/// Timings of the last `recommend()` call (`stats()`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Encoding the user (history → query), ms.
    pub encode_ms: f64,
    /// Scoring every item (the head), ms.
    pub score_ms: f64,
    /// Blend, filter, rank, explain, ms.
    pub finish_ms: f64,
    /// The whole call, ms.
    pub total_ms: f64,
    /// The backend that scored.
    pub backend: String,
    /// History events the encoder read.
    pub history_len: usize,
    /// `recommend()` calls so far.
    pub calls: u64,
    /// Bytes the last call read back from the GPU (0 on the CPU): a GPU shortlist's
    /// candidates, or every logit where the request needs them all.
    pub read_back_bytes: u64,
    /// The int8 multiply form the CPU kernel chose (`"fused"` or `"split"`,
    /// `kernels::DotForm`), once its first int8 requests have timed both; `None` (null)
    /// before, and where there is nothing to choose (an f32 file, the GPU, the plain
    /// build).
    pub dot_form: Option<&'static str>,
}

/// What this wasm build contains (`buildInfo()`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildInfo {
    /// `"relaxed-simd"` or `"simd128"`: the CPU kernels' instruction set.
    pub simd: &'static str,
    /// Whether the WebGPU path is compiled in.
    pub gpu: bool,
    /// The crate version.
    pub version: &'static str,
}

/// The model summary (`modelInfo()`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelInfo<'a> {
    /// Catalog items.
    pub items: usize,
    /// Embedding width.
    pub dim: usize,
    /// The scoring MLP's hidden widths.
    pub mlp_hidden: &'a [usize],
    /// How the file stores float tensors.
    pub quantization: Quantization,
    /// SHA-256 of the file's data section.
    pub content_hash: &'a str,
    /// The file's size in bytes.
    pub size_bytes: usize,
    /// The weight-format version.
    pub format_version: u32,
    /// Number of categories.
    pub categories: usize,
    /// Evaluation metrics (free-form JSON from the trainer).
    pub metrics: &'a serde_json::Value,
    /// Training summary (free-form JSON from the trainer).
    pub training: &'a serde_json::Value,
    /// Which event kinds were trained and what the others read.
    pub kinds: ModelKinds,
}

impl<'a> ModelInfo<'a> {
    /// The summary of a loaded file: its metadata, its size and the model's kind map.
    pub fn new(m: &'a Metadata, size_bytes: usize, kinds: &KindMap) -> ModelInfo<'a> {
        ModelInfo {
            items: m.model.n_items,
            dim: m.model.dim,
            mlp_hidden: &m.model.mlp_hidden,
            quantization: m.quantization,
            content_hash: &m.content_hash,
            size_bytes,
            format_version: m.format_version,
            categories: m.categories.len(),
            metrics: &m.metrics,
            training: &m.training,
            kinds: ModelKinds::new(kinds),
        }
    }
}

/// The event kinds the model was trained on (`modelInfo().kinds`; see
/// [`crate::model::kinds`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelKinds {
    /// The trained kinds, in funnel order; `null` when the file does not record them
    /// (every kind then reads its own row, as stored).
    pub trained: Option<Vec<EventKind>>,
    /// Each untrained kind → the trained kind whose row it reads (`{}` when every kind
    /// was trained or the file does not say).
    pub mapped: BTreeMap<EventKind, EventKind>,
}

impl ModelKinds {
    /// The kinds of a model's [`KindMap`].
    pub fn new(map: &KindMap) -> ModelKinds {
        // Inserted one by one: `collect` into a map sorts its input first, one more
        // copy of the standard stable sort in the package (see `crate::sort`).
        let mut mapped = BTreeMap::new();
        for (kind, reads) in map.mapped() {
            mapped.insert(kind, reads);
        }
        ModelKinds {
            trained: map.trained.clone(),
            mapped,
        }
    }
}
