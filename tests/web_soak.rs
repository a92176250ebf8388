//! Soak test of the browser binding in headless Chromium:
//! `CHROMEDRIVER=/usr/bin/chromedriver wasm-pack test --headless --chrome -- --test web_soak`.
//!
//! 10,000 consecutive `recommend()` calls on one loaded model while the stored history
//! grows to its cap (one event recorded per call, `maxEvents` = 200) and shrinks again
//! (`clearHistory()` every 2,500 calls), with varied options. A leak of even ~100 bytes
//! per call would show here as ~1 MB. Bounds, with slack for the allocator and the
//! garbage collector (never a time):
//! - wasm linear memory after the run ≤ after the first 1,000 calls + 2 MiB (it never
//!   shrinks, so growth after warm-up is what a leak looks like), and ≤ 64 MiB in all;
//! - JS heap (`performance.memory.usedJSHeapSize`, Chromium) after the run ≤ after
//!   warm-up + 16 MiB.
#![cfg(target_arch = "wasm32")]

use serde_json::json;
use vitrine::format::Quantization;
mod common;
use common::fixtures::tiny_weight_file;
use common::js::{js, message};
use vitrine::wasm::WasmRecommender;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const N: usize = 60;
const CALLS: usize = 10_000;
const WARM: usize = 1_000;
const MIB: f64 = 1024.0 * 1024.0;

/// Bytes of this module's linear memory.
fn wasm_memory() -> f64 {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    memory
        .buffer()
        .unchecked_into::<js_sys::ArrayBuffer>()
        .byte_length() as f64
}

/// `performance.memory.usedJSHeapSize` (Chromium); the test configuration is Chromium, so
/// its absence fails the test.
fn js_heap() -> f64 {
    let perf = js_sys::Reflect::get(&js_sys::global(), &"performance".into()).expect("performance");
    let mem = js_sys::Reflect::get(&perf, &"memory".into()).expect("performance.memory");
    js_sys::Reflect::get(&mem, &"usedJSHeapSize".into())
        .ok()
        .and_then(|v| v.as_f64())
        .expect("performance.memory.usedJSHeapSize (Chromium) is needed for the JS heap bound")
}

#[wasm_bindgen_test]
async fn ten_thousand_calls_stay_within_memory_bounds() {
    let bytes = tiny_weight_file(N, 5)
        .to_bytes(Quantization::F32)
        .expect("tiny weight file serialises");
    let opts =
        json!({ "namespace": "t-soak", "backend": "simd", "historyLimits": { "maxEvents": 200 } });
    let r = match WasmRecommender::from_bytes(js_sys::Uint8Array::from(&bytes[..]), js(opts)).await
    {
        Ok(r) => r,
        Err(e) => panic!("load failed: {}", message(e)),
    };
    r.clear_history();
    let kinds = ["view", "cart", "purchase"];
    let t0 = js_sys::Date::now() / 1000.0 - 86_400.0;
    let (mut warm_wasm, mut warm_heap) = (0.0, 0.0);
    let mut returned = 0usize;
    for call in 0..CALLS {
        if call % 2_500 == 2_499 {
            r.clear_history();
        }
        let item = format!("I{}", (call * 7) % N);
        let event = json!({ "item": item, "type": kinds[call % 3], "at": t0 + call as f64 });
        if let Err(e) = r.record(js(event)) {
            panic!("record {call} failed: {}", message(e));
        }
        let options = match call % 4 {
            0 => json!({ "k": 10, "excludeSeen": false }),
            1 => json!({ "k": 1 + call % 50, "diversity": 0.3, "excludeSeen": false }),
            2 => json!({ "k": 20, "context": format!("I{}", call % N), "excludeSeen": false }),
            _ => {
                json!({ "k": 5, "exclude": [format!("I{}", (call + 1) % N)], "excludeSeen": false })
            }
        };
        match r.recommend(js(options)).await {
            Ok(v) => returned += js_sys::Array::from(&v).length() as usize,
            Err(e) => panic!("recommend {call} failed: {}", message(e)),
        }
        if call + 1 == WARM {
            (warm_wasm, warm_heap) = (wasm_memory(), js_heap());
        }
    }
    let (wasm, heap) = (wasm_memory(), js_heap());
    console_log!(
        "{CALLS} calls, {returned} results: wasm memory {:.1} MiB (after {WARM}: {:.1}), JS heap {:.1} MiB (after {WARM}: {:.1})",
        wasm / MIB,
        warm_wasm / MIB,
        heap / MIB,
        warm_heap / MIB
    );
    assert!(returned >= CALLS, "every call returned results");
    assert!(
        wasm <= warm_wasm + 2.0 * MIB,
        "wasm memory grew: {warm_wasm} → {wasm} bytes"
    );
    assert!(wasm <= 64.0 * MIB, "wasm memory {wasm} bytes over 64 MiB");
    assert!(
        heap <= warm_heap + 16.0 * MIB,
        "JS heap grew: {warm_heap} → {heap} bytes"
    );
}
