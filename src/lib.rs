//! vitrine: an on-device recommender for web storefronts.
//!
//! A store trains a deep sequential recommender offline with the native trainer
//! ([`train`], native only), publishes one weight file ([`format`]), and its storefront
//! page scores the whole catalog in the shopper's browser ([`wasm`]) from a
//! browsing history that never leaves the device ([`history`]).
//!
//! Module map (one job each):
//! - [`config`]: the model's shape (`ModelConfig`), stored in the weight file.
//! - [`format`]: the weight file (spec in `docs/weight-format.md`), reader and writer.
//! - [`data`]: ingest of Online Retail, generic events/items CSV, Parquet event logs, and sequence files (native).
//! - [`features`]: item content features (category, price, hashed title tokens).
//! - [`history`]: the shopper's local history events and its limits.
//! - [`model`]: the model definition and forward pass, shared by trainer and browser.
//! - [`basket`]: "frequently bought together" from real orders (the weight file's
//!   `basket.*` section), shared by trainer and browser.
//! - [`kernels`]: the scoring head's compute paths (scalar reference, SIMD, native, GPU).
//! - [`recommend`]: the recommendation engine behind `recommend()` (CLI and browser).
//! - [`rng`]: the one deterministic generator (SplitMix64).
//! - [`search`]: on-device product search (BM25, typo tolerance, facets).
//! - [`select`]: order statistics (the `k`-th largest) without a copy of the values.
//! - [`train`]: backward passes, Adam and the training loop (native).
//! - [`eval`] and [`baselines`]: metrics, protocols, splits and the baselines (native).
//! - [`scenarios`]: the storefront scenarios — cold-start items, cross-category,
//!   diversity — evaluated through the real pipeline (native).
//! - [`onnx`]: ONNX export of a model (head, and encoder + head + top-k) and its
//!   tensors, for the benchmark against other inference engines (native).
#![warn(missing_docs)]

pub mod basket;
pub mod config;
pub mod features;
pub mod format;
pub mod history;
pub mod kernels;
pub mod model;
pub mod recommend;
pub mod rng;
pub mod search;
pub mod select;
pub mod sort;
pub mod strs;

#[cfg(not(target_arch = "wasm32"))]
pub mod baselines;
#[cfg(not(target_arch = "wasm32"))]
pub mod data;
#[cfg(not(target_arch = "wasm32"))]
pub mod eval;
#[cfg(not(target_arch = "wasm32"))]
pub mod onnx;
#[cfg(not(target_arch = "wasm32"))]
pub mod scenarios;
#[cfg(not(target_arch = "wasm32"))]
pub mod train;

/// Browser bindings (the bindings themselves on wasm32 only; the API's types everywhere).
pub mod wasm;
