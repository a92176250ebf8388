//! Helpers shared by the integration tests (`mod common;`).
#![allow(dead_code)]
pub mod fixtures;
#[cfg(target_arch = "wasm32")]
pub mod js;
pub mod shortlist_cases;
