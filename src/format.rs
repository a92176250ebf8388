//! The weight file: one file a store publishes beside its static assets, holding the
//! model's tensors and everything the browser needs to serve recommendations (item ids,
//! titles, attributes for filters, popularity, config, metrics, a content hash).
//!
//! Layout: a safetensors file (spec in `docs/weight-format.md`). The reader validates
//! everything against the file length and the declared shapes and returns a typed
//! [`FormatError`] for every defect; it never panics, natively or in wasm.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::ModelConfig;

/// Format version written by this build.
pub const FORMAT_VERSION: u32 = 1;

/// A tensor held in memory (quantised tensors are dequantised to `F32` on load).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Shape, outermost first (row-major data).
    pub shape: Vec<usize>,
    /// Values.
    pub data: TensorData,
}

/// Values of a tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// 32-bit floats.
    F32(Vec<f32>),
    /// 32-bit signed integers (indices, offsets).
    I32(Vec<i32>),
}

/// How float matrices are stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    /// Plain f32.
    #[default]
    F32,
    /// IEEE half precision.
    F16,
    /// int8 with one f32 scale per output channel (row).
    Int8,
}

/// Catalog attributes the browser needs for display and filters, in catalog order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemCatalog {
    /// Store item ids (unique).
    pub ids: Vec<String>,
    /// Display titles.
    pub titles: Vec<String>,
    /// Category name index per item (into [`Metadata::categories`]; 0 is "unknown").
    pub category: Vec<u32>,
    /// Price in store currency, when known.
    pub price: Vec<Option<f32>>,
    /// When the item was first seen/added (Unix seconds), when known.
    pub added: Vec<Option<f64>>,
}

/// The weight file's JSON metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// Format version (see [`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Model shape.
    pub model: ModelConfig,
    /// Category names, index 0 = "unknown".
    pub categories: Vec<String>,
    /// Item ids, titles and attributes.
    pub items: ItemCatalog,
    /// Feature-extraction settings (hashing, price normalisation), free-form JSON.
    pub features: serde_json::Value,
    /// Training-data summary, free-form JSON.
    pub training: serde_json::Value,
    /// Evaluation metrics, free-form JSON.
    pub metrics: serde_json::Value,
    /// How float tensors are stored.
    pub quantization: Quantization,
    /// SHA-256 (hex) of the tensor data section; checked on load.
    pub content_hash: String,
}

/// A parsed weight file.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightFile {
    /// Metadata.
    pub metadata: Metadata,
    /// Tensors by name (dequantised).
    pub tensors: BTreeMap<String, Tensor>,
}

/// Everything that can be wrong with a weight file.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Placeholder until the format helper lands.
    #[error("weight file: {0}")]
    Invalid(String),
}

impl WeightFile {
    /// Serialises the file (tensors stored as `quantization` says; the content hash and
    /// format version in the metadata are filled in by the writer).
    pub fn to_bytes(&self, quantization: Quantization) -> Result<Vec<u8>, FormatError> {
        let _ = quantization;
        todo!("format helper")
    }

    /// Parses and validates a weight file; every defect is a typed [`FormatError`].
    pub fn from_bytes(bytes: &[u8]) -> Result<WeightFile, FormatError> {
        let _ = bytes;
        todo!("format helper")
    }
}
