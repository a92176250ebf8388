//! Item content features: category, normalised price and hashed title tokens.
//!
//! Built natively from a catalog at training time and stored in the weight file, so the
//! browser reads them back without re-deriving anything. Content features give items that
//! have no interactions (new items) a usable vector: the cold-start path.
use serde::{Deserialize, Serialize};

/// Per-item content features for the whole catalog, in catalog order, in the compact form
/// the weight file stores and the item encoder reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemFeatureTable {
    /// Category index per item; 0 is "unknown category".
    pub category: Vec<u32>,
    /// Normalised price per item in [0, 1] (log, then min-max); 0 where unknown.
    pub price: Vec<f32>,
    /// 1.0 where the price is unknown, else 0.0 (missing values are explicit).
    pub price_missing: Vec<f32>,
    /// CSR offsets into `tokens` (length `n_items + 1`).
    pub token_offsets: Vec<u32>,
    /// Hashed title-token bucket ids, item by item.
    pub tokens: Vec<u32>,
}

impl ItemFeatureTable {
    /// Number of items.
    pub fn len(&self) -> usize {
        self.category.len()
    }

    /// True when the table holds no items.
    pub fn is_empty(&self) -> bool {
        self.category.is_empty()
    }

    /// The hashed title tokens of item `i`.
    pub fn tokens_of(&self, i: usize) -> &[u32] {
        &self.tokens[self.token_offsets[i] as usize..self.token_offsets[i + 1] as usize]
    }
}
