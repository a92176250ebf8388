//! Browser bindings: the `Recommender` class a storefront page uses.
//!
//! For storefront developers: `Recommender.fromBytes(bytes, options)` loads a weight file
//! (optionally checking its SHA-256 `integrity`), picks a scoring backend (WebGPU through
//! wgpu or wasm SIMD128, whichever is faster here; scalar as the reference — same
//! ranking), and serves `recommend(options)` from a browsing history kept on the device
//! (`localStorage`, never sent anywhere). `Recommender.fromStream(bytes, arrived,
//! options)` loads the same file while it downloads. `www/vitrine.js` wraps this class
//! with a fetch-with-progress loader that loads as the file arrives and an optional Web
//! Worker; the worker cannot see
//! `localStorage`, so there the class runs with `storage: 'memory'` and the main thread
//! hands the stored history over per call (`setStoredHistory`, `storedHistory`). The
//! methods a page may call are listed once, in `www/api.js`.
//!
//! Every export returns `Result<_, JsError>`: JavaScript sees a thrown `Error` whose
//! message names the problem (for option objects, the offending field's path).
//!
//! Layout (one job each; only `types` and `js_options` are compiled natively):
//! - `bindings`: the thin `#[wasm_bindgen]` layer (convert arguments, call Rust, convert
//!   results and errors).
//! - [`js_options`]: JavaScript values → option structs, with field paths in the errors
//!   (its JSON half natively too: the fuzz targets and property tests use it).
//! - `storage`: the history store in `localStorage` or memory.
//! - `columns`: `catalog()`'s columns as JavaScript arrays, a batch at a time.
//! - `env`: console, clocks, WebGPU detection.
//! - [`types`]: the serde shapes of the API that are not engine types.
//! - Scoring and the GPU fall-back: [`crate::kernels::scorer::Scorer`].

pub mod types;

#[cfg(target_arch = "wasm32")]
mod bindings;
#[cfg(target_arch = "wasm32")]
mod columns;
#[cfg(target_arch = "wasm32")]
mod env;
pub mod js_options;
#[cfg(target_arch = "wasm32")]
mod storage;

#[cfg(target_arch = "wasm32")]
pub use bindings::{build_info, peak_probe, start, WasmRecommender};
