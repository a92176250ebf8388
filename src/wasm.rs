//! wasm bindings (placeholder).
