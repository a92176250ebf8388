//! The browser environment the bindings and [`crate::kernels::scorer::Scorer`] need:
//! console, clocks, whether WebGPU is exposed (window or worker alike), and WebCrypto's
//! SHA-256.
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::kernels::scorer::Hooks;

/// `console.warn`.
pub fn warn(msg: &str) {
    web_sys::console::warn_1(&JsValue::from_str(msg));
}

/// `console.info`.
pub fn info(msg: &str) {
    web_sys::console::info_1(&JsValue::from_str(msg));
}

thread_local! {
    /// The global's `performance` object, looked up once (a request reads the clock four
    /// times; each lookup was a property read, a string and a type check).
    static PERFORMANCE: Option<web_sys::Performance> =
        js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("performance"))
            .ok()
            .and_then(|p| p.dyn_into::<web_sys::Performance>().ok());
}

/// `performance.now()` in a window or a worker (0 where unavailable).
pub fn now_ms() -> f64 {
    PERFORMANCE.with(|p| p.as_ref().map_or(0.0, |p| p.now()))
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

/// Starts `crypto.subtle.digest('SHA-256', bytes[range])`, faster than wasm's SHA-256
/// (about 0.6 s of a 1,000,000-item load in wasm). It does not overlap with the parse
/// as its promise suggests: Chromium 156 copies and hashes the bytes within this call,
/// on the calling thread (18 MiB: 38–45 ms; 64 MiB: 182 ms, its promise resolved 0.1 ms
/// later; `docs/benchmarks/engines-log.md`, "A checksum instead of the SHA-256 on
/// load"), which is why a file's own `data_crc32` is checked instead where it has one.
/// `None` where WebCrypto is missing (an insecure context) or refuses the bytes (a
/// shared buffer): the caller hashes in wasm instead.
pub fn start_sha256(bytes: &js_sys::Uint8Array, range: std::ops::Range<u32>) -> Option<JsFuture> {
    let get = |v: &JsValue, key: &str| {
        js_sys::Reflect::get(v, &JsValue::from_str(key))
            .ok()
            .filter(|x| x.is_object() || x.is_function())
    };
    let subtle = get(&js_sys::global(), "crypto").and_then(|c| get(&c, "subtle"))?;
    let digest = get(&subtle, "digest")?
        .dyn_into::<js_sys::Function>()
        .ok()?;
    let view = bytes.subarray(range.start, range.end);
    let promise = digest
        .call2(&subtle, &JsValue::from_str("SHA-256"), &view)
        .ok()?
        .dyn_into::<js_sys::Promise>()
        .ok()?;
    Some(JsFuture::from(promise))
}

/// The digest a [`start_sha256`] job resolves to; `None` if it was rejected or is not
/// 32 bytes (the caller hashes in wasm instead).
pub async fn finish_sha256(job: JsFuture) -> Option<[u8; 32]> {
    let buffer = job.await.ok()?.dyn_into::<js_sys::ArrayBuffer>().ok()?;
    let bytes = js_sys::Uint8Array::new(&buffer);
    let mut out = [0u8; 32];
    if bytes.length() != 32 {
        return None;
    }
    bytes.copy_to(&mut out);
    Some(out)
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
