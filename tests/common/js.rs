//! Browser-test helpers (wasm32 only): JSON to a JavaScript value, a thrown error's
//! message, the page's `localStorage`.
use wasm_bindgen::prelude::*;

/// `v` as a plain JavaScript value (through `JSON.parse`, as a page would build it).
pub fn js(v: serde_json::Value) -> JsValue {
    js_sys::JSON::parse(&v.to_string()).expect("valid JSON")
}

/// The `message` of a thrown `Error` (its debug form when it has none).
pub fn message(e: JsError) -> String {
    let v: JsValue = e.into();
    js_sys::Reflect::get(&v, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| format!("{v:?}"))
}

/// The page's `localStorage`.
pub fn storage() -> web_sys::Storage {
    web_sys::window()
        .expect("window")
        .local_storage()
        .expect("localStorage access")
        .expect("localStorage")
}
