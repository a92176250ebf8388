//! The browser environment the bindings and [`crate::kernels::scorer::Scorer`] need:
//! console, clocks, and whether WebGPU is exposed (window or worker alike).
use wasm_bindgen::{JsCast, JsValue};

use crate::kernels::scorer::Hooks;

/// `console.warn`.
pub fn warn(msg: &str) {
    web_sys::console::warn_1(&JsValue::from_str(msg));
}

/// `console.info`.
pub fn info(msg: &str) {
    web_sys::console::info_1(&JsValue::from_str(msg));
}

/// `performance.now()` in a window or a worker (0 where unavailable).
pub fn now_ms() -> f64 {
    js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("performance"))
        .ok()
        .and_then(|p| p.dyn_into::<web_sys::Performance>().ok())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

/// Wall-clock time in Unix seconds.
pub fn unix_now() -> f64 {
    js_sys::Date::now() / 1000.0
}

/// Whether `navigator.gpu` exists (WebGPU exposed by this browser/context).
pub fn has_webgpu() -> bool {
    js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("navigator"))
        .ok()
        .filter(|n| n.is_object())
        .and_then(|n| js_sys::Reflect::get(&n, &JsValue::from_str("gpu")).ok())
        .is_some_and(|g| !g.is_undefined() && !g.is_null())
}

/// The scorer's hooks in a browser.
pub fn hooks() -> Hooks {
    Hooks {
        now_ms,
        warn,
        info,
        gpu_present: has_webgpu,
    }
}
