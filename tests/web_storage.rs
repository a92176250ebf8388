//! Browser tests of the history store in `localStorage` (`vitrine::wasm::storage` through
//! the `Recommender` API), run in headless Chromium:
//! `CHROMEDRIVER=/usr/bin/chromedriver wasm-pack test --headless --chrome -- --test web_storage`.
//!
//! Keys per store (namespace, default the origin), migration of the old per-model keys
//! with unknown items counted, `clearHistory` removing every vitrine key, partial
//! `importHistory` with its report, inputs over the size limits refused before they are
//! parsed, corrupt storage reset and reported, the worker-side migration and three-way
//! merge.
#![cfg(target_arch = "wasm32")]

use serde_json::{json, Value};
use vitrine::format::Quantization;
mod common;
use common::fixtures::tiny_weight_file;
use common::js::{js, message, storage};
use vitrine::wasm::WasmRecommender;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Catalogue size of the test model: ids `I0` … `I39`.
const N: usize = 40;

fn model_bytes() -> Vec<u8> {
    tiny_weight_file(N, 11)
        .to_bytes(Quantization::F32)
        .expect("tiny weight file serialises")
}

fn from_js(v: JsValue) -> Value {
    serde_wasm_bindgen::from_value(v).expect("a JSON value")
}

fn now() -> f64 {
    js_sys::Date::now() / 1000.0
}

fn origin() -> String {
    let location = js_sys::Reflect::get(&js_sys::global(), &"location".into()).unwrap();
    let origin = js_sys::Reflect::get(&location, &"origin".into()).unwrap();
    origin.as_string().expect("location.origin")
}

/// The key of a namespace's history (this build's layout).
fn key(ns: &str) -> String {
    format!("vitrine:v2:{ns}:history")
}

/// A stored history value (schema 1) of `ns` with `(item, kind, at)` events.
fn stored(ns: &str, events: &[(&str, &str, f64)]) -> String {
    let events: Vec<Value> = (events.iter())
        .map(|(item, kind, at)| json!({ "item": item, "kind": kind, "at": at }))
        .collect();
    json!({ "schema": 1, "namespace": ns, "events": events }).to_string()
}

/// Every vitrine key in `localStorage`, removed (tests start from none).
fn clear_vitrine_keys() {
    let s = storage();
    let keys: Vec<String> = (0..s.length().unwrap())
        .filter_map(|i| s.key(i).unwrap())
        .filter(|k| k.starts_with("vitrine:"))
        .collect();
    for k in keys {
        s.remove_item(&k).unwrap();
    }
}

async fn load(options: Value) -> WasmRecommender {
    let mut opts = json!({ "backend": "scalar" });
    if let Value::Object(m) = options {
        for (k, v) in m {
            opts[k] = v;
        }
    }
    match WasmRecommender::from_bytes(js_sys::Uint8Array::from(&model_bytes()[..]), js(opts)).await
    {
        Ok(r) => r,
        Err(e) => panic!("load failed: {}", message(e)),
    }
}

async fn load_err(options: Value) -> String {
    match WasmRecommender::from_bytes(js_sys::Uint8Array::from(&model_bytes()[..]), js(options))
        .await
    {
        Ok(_) => panic!("load should fail"),
        Err(e) => message(e),
    }
}

/// The history's item ids, oldest first.
fn items(r: &WasmRecommender) -> Vec<String> {
    let rows = from_js(r.history().expect("history"));
    (rows.as_array().expect("rows").iter())
        .map(|row| row["item"].as_str().unwrap().to_string())
        .collect()
}

fn record(r: &WasmRecommender, item: &str, at: f64) {
    if let Err(e) = r.record(js(json!({ "item": item, "type": "view", "at": at }))) {
        panic!("record failed: {}", message(e));
    }
}

fn info(r: &WasmRecommender) -> Value {
    from_js(r.history_info().expect("historyInfo"))
}

#[wasm_bindgen_test]
async fn history_is_keyed_by_the_store_not_the_model() {
    clear_vitrine_keys();
    let t = now();
    // Default namespace: the origin; a namespace may contain ':' (origins do).
    let r = load(json!({})).await;
    assert_eq!(r.storage_key(), key(&origin()));
    record(&r, "I3", t - 10.0);
    assert!(storage().get_item(&key(&origin())).unwrap().is_some());
    let shop = load(json!({ "namespace": "shop:eu" })).await;
    assert_eq!(shop.storage_key(), key("shop:eu"));
    assert!(items(&shop).is_empty(), "namespaces are separate");
    // Another model of the same store (a retrain) reads the same history.
    let bytes = tiny_weight_file(N, 99).to_bytes(Quantization::F32).unwrap();
    let r2 = WasmRecommender::from_bytes(
        js_sys::Uint8Array::from(&bytes[..]),
        js(json!({ "backend": "scalar" })),
    )
    .await
    .map_err(message)
    .unwrap();
    assert_ne!(
        from_js(r2.model_info().unwrap())["contentHash"],
        from_js(r.model_info().unwrap())["contentHash"],
        "the retrained file is another model"
    );
    assert_eq!(items(&r2), ["I3"]);
    // Namespaces the API refuses, with a clear message.
    for bad in [json!(""), json!("x".repeat(257)), json!("a\nb"), json!(7)] {
        let m = load_err(json!({ "namespace": bad })).await;
        assert!(m.contains("namespace"), "{bad}: {m}");
    }
    clear_vitrine_keys();
}

#[wasm_bindgen_test]
async fn old_per_model_keys_are_migrated_and_unknown_items_counted() {
    clear_vitrine_keys();
    let t = now();
    // Two old default keys (content-hash prefixes of two earlier models), one with an id
    // the current catalogue does not have; an old key of another store's namespace.
    let old_a = "vitrine:0123456789ab:history";
    let old_b = "vitrine:ba9876543210:history";
    let other = "vitrine:other-store:history";
    let s = storage();
    let a = stored(
        "0123456789ab",
        &[("I1", "view", t - 300.0), ("gone", "cart", t - 200.0)],
    );
    s.set_item(old_a, &a).unwrap();
    let b = stored("ba9876543210", &[("I2", "purchase", t - 100.0)]);
    s.set_item(old_b, &b).unwrap();
    s.set_item(other, &stored("other-store", &[("I9", "view", t - 50.0)]))
        .unwrap();
    let r = load(json!({})).await;
    assert_eq!(
        items(&r),
        ["I1", "I2"],
        "known events of both old keys kept"
    );
    let i = info(&r);
    let mut migrated: Vec<&str> = (i["migratedKeys"].as_array().unwrap().iter())
        .map(|k| k.as_str().unwrap())
        .collect();
    migrated.sort();
    assert_eq!(migrated, [old_a, old_b]);
    assert_eq!(i["unknown"], json!({ "events": 1, "ids": ["gone"] }));
    assert_eq!(i["events"], json!(2));
    assert_eq!(s.get_item(old_a).unwrap(), None, "old key removed");
    assert_eq!(s.get_item(old_b).unwrap(), None, "old key removed");
    assert!(
        s.get_item(other).unwrap().is_some(),
        "another store's key kept"
    );

    // A page that names its namespace migrates its own old key.
    let r = load(json!({ "namespace": "other-store" })).await;
    assert_eq!(items(&r), ["I9"]);
    assert_eq!(s.get_item(other).unwrap(), None);

    // A model update: the current key holds an id the new catalogue lacks.
    s.set_item(
        &key("upd"),
        &stored(
            "upd",
            &[("I4", "view", t - 20.0), ("retired", "view", t - 10.0)],
        ),
    )
    .unwrap();
    let r = load(json!({ "namespace": "upd" })).await;
    assert_eq!(items(&r), ["I4"]);
    assert_eq!(
        info(&r)["unknown"],
        json!({ "events": 1, "ids": ["retired"] })
    );
    let raw = s.get_item(&key("upd")).unwrap().unwrap();
    assert!(!raw.contains("retired"), "the migrated value is stored");
    clear_vitrine_keys();
}

#[wasm_bindgen_test]
async fn clear_history_removes_every_vitrine_key() {
    clear_vitrine_keys();
    let s = storage();
    let t = now();
    let r = load(json!({ "namespace": "c1" })).await;
    record(&r, "I1", t);
    let mine = r.storage_key();
    let others = [
        key("c2"),
        "vitrine:0123456789ab:history".to_string(),
        "vitrine:some-old-store:history".to_string(),
    ];
    for k in &others {
        s.set_item(k, "{}").unwrap();
    }
    s.set_item("shop-cart", "[1]").unwrap();
    r.clear_history();
    for k in others.iter().chain([&mine]) {
        assert_eq!(s.get_item(k).unwrap(), None, "{k} removed");
    }
    assert_eq!(s.get_item("shop-cart").unwrap().as_deref(), Some("[1]"));
    assert!(items(&r).is_empty());
    s.remove_item("shop-cart").unwrap();
}

#[wasm_bindgen_test]
async fn import_keeps_what_the_model_knows_and_reports_the_rest() {
    clear_vitrine_keys();
    let t = now();
    let r = load(json!({ "namespace": "imp", "historyLimits": { "maxEvents": 3 } })).await;
    let export = stored(
        "an-older-model",
        &[
            ("I1", "view", t - 60.0),
            ("gone1", "view", t - 50.0),
            ("I2", "cart", t - 40.0),
            ("gone2", "view", t - 30.0),
            ("gone1", "purchase", t - 25.0),
            ("I3", "view", t - 20.0),
            ("I4", "view", t - 10.0),
        ],
    );
    let report = from_js(
        r.import_history(JsValue::from_str(&export))
            .map_err(message)
            .unwrap(),
    );
    assert_eq!(
        report,
        json!({ "kept": 3, "read": 7, "unknown": { "events": 3, "ids": ["gone1", "gone2"] },
                "overLimits": 1 })
    );
    assert_eq!(items(&r), ["I2", "I3", "I4"], "maxEvents keeps the newest");
    // Only unknown ids: nothing kept, reported, not an error.
    let only = stored("x", &[("zzz", "view", t - 5.0)]);
    let report = from_js(r.import_history(JsValue::from_str(&only)).unwrap());
    assert_eq!(report["kept"], json!(0));
    assert_eq!(report["unknown"]["ids"], json!(["zzz"]));
    // Invalid exports are still refused whole, with the reason.
    let m = message(r.import_history(JsValue::from_str("{")).unwrap_err());
    assert!(m.starts_with("importHistory:"), "{m}");
    let bad_time = stored("x", &[("I1", "view", f64::MAX)]);
    let m = message(r.import_history(JsValue::from_str(&bad_time)).unwrap_err());
    assert!(m.contains("events") || m.contains("time"), "{m}");
    let m = message(r.import_history(JsValue::from_f64(3.0)).unwrap_err());
    assert!(m.contains("string"), "{m}");
    clear_vitrine_keys();
}

#[wasm_bindgen_test]
async fn oversize_inputs_are_refused_before_parsing() {
    clear_vitrine_keys();
    let r = load(json!({ "namespace": "big" })).await;
    // Not JSON at all: a parser would say so; the size check must come first.
    let huge = "x".repeat((1 << 20) + 1);
    let m = message(r.import_history(JsValue::from_str(&huge)).unwrap_err());
    assert!(
        m.contains("1048577 characters") && m.contains("limit") && !m.contains("JSON"),
        "{m}"
    );
    // Exactly at the limit it is parsed (and refused as JSON).
    let m = message(r.import_history(JsValue::from_str(&huge[1..])).unwrap_err());
    assert!(m.contains("JSON") || m.contains("corrupt"), "{m}");
    // Page-supplied limits are bounded.
    for (limits, field) in [
        (json!({ "maxEvents": 5001 }), "maxEvents"),
        (json!({ "maxBytes": 2_000_000 }), "maxBytes"),
        (json!({ "maxAgeDays": 1e9 }), "maxAgeDays"),
        (json!({ "dedupWindowSecs": 1e9 }), "dedupWindowSecs"),
        (json!({ "halfLifeDays": 30 }), "halfLifeDays"),
    ] {
        let m = load_err(json!({ "historyLimits": limits })).await;
        assert!(m.contains(field), "{field}: {m}");
    }
    let top = json!({ "maxEvents": 5000, "maxBytes": 1_048_576, "maxAgeDays": 3650,
                      "dedupWindowSecs": 604_800 });
    load(json!({ "namespace": "big", "historyLimits": top })).await;
}

#[wasm_bindgen_test]
async fn corrupt_storage_gives_an_empty_history_and_is_reported() {
    clear_vitrine_keys();
    let s = storage();
    let k = key("bad");
    let t = now();
    let oversize = stored("bad", &vec![("I1", "view", t); 3_000]);
    assert!(oversize.len() > 65_536);
    let cases = [
        "{not json".to_string(),
        "null".to_string(),
        r#"{"schema":99,"namespace":"bad","events":[]}"#.to_string(),
        stored("someone-else", &[("I1", "view", t)]),
        stored("bad", &[("I1", "teleport", t)]),
        stored("bad", &[("I1", "view", -1.0)]),
        oversize,
    ];
    for bad in &cases {
        // Found at load (migration reads it) and found later (another writer).
        s.set_item(&k, bad).unwrap();
        let r = load(json!({ "namespace": "bad" })).await;
        assert!(items(&r).is_empty(), "{bad:.40}");
        assert_eq!(s.get_item(&k).unwrap(), None, "reset: {bad:.40}");
        let discarded = info(&r)["discarded"].as_array().unwrap().len();
        assert_eq!(discarded, 1, "reported at load: {bad:.40}");
        record(&r, "I2", t);
        s.set_item(&k, bad).unwrap();
        assert!(items(&r).is_empty());
        assert_eq!(info(&r)["discarded"].as_array().unwrap().len(), 2);
        record(&r, "I5", t);
        assert_eq!(items(&r), ["I5"], "keeps working after a reset");
    }
    // An old key that is corrupt is removed and reported, not fatal.
    let old = "vitrine:abcdefabcdef:history";
    s.set_item(old, "[[[").unwrap();
    let r = load(json!({})).await;
    assert_eq!(s.get_item(old).unwrap(), None);
    let reasons = info(&r)["discarded"].to_string();
    assert!(reasons.contains(old), "{reasons}");
    clear_vitrine_keys();
}

#[wasm_bindgen_test]
async fn memory_storage_migrates_and_merges_for_the_worker_path() {
    clear_vitrine_keys();
    let t = now();
    let r = load(json!({ "namespace": "w", "storage": "memory" })).await;
    let current = stored(
        "w",
        &[("I1", "view", t - 100.0), ("gone", "view", t - 90.0)],
    );
    r.set_stored_history(JsValue::from_str(&current)).unwrap();
    let legacy = js(json!([
        [
            "vitrine:w:history",
            stored("w", &[("I2", "view", t - 80.0)])
        ],
        [
            "vitrine:0123456789ab:history",
            stored("0123456789ab", &[("I3", "view", t - 70.0)])
        ],
        ["vitrine:w-too-big:history", null],
    ]));
    let removed = r.migrate_stored_history(legacy).map_err(message).unwrap();
    assert_eq!(removed, ["vitrine:w:history"], "only this store's old key");
    assert_eq!(items(&r), ["I1", "I2"]);
    assert_eq!(info(&r)["unknown"]["events"], json!(1));
    assert_eq!(
        storage().get_item(&key("w")).unwrap(),
        None,
        "memory mode never touches localStorage"
    );
    // An oversize value handed over is discarded unread.
    let huge = "x".repeat(70_000);
    r.set_stored_history(JsValue::from_str(&huge)).unwrap();
    assert!(items(&r).is_empty());
    assert!(r.stored_history().is_none(), "so the page removes it");

    // Three-way merge: this tab recorded I5 on `base`, the other tab I6 meanwhile.
    let base = stored("w", &[("I1", "view", t - 100.0)]);
    let mine = stored("w", &[("I1", "view", t - 100.0), ("I5", "view", t - 5.0)]);
    let theirs = stored("w", &[("I1", "view", t - 100.0), ("I6", "view", t - 4.0)]);
    let s = |v: &str| JsValue::from_str(v);
    let merged = r.merge_stored_history(s(&base), s(&mine), s(&theirs));
    r.set_stored_history(JsValue::from_str(&merged.unwrap()))
        .unwrap();
    assert_eq!(items(&r), ["I1", "I5", "I6"]);
    // This tab cleared: the other tab's new event survives, the old one does not return.
    let merged = r.merge_stored_history(s(&base), JsValue::NULL, s(&theirs));
    r.set_stored_history(JsValue::from_str(&merged.unwrap()))
        .unwrap();
    assert_eq!(items(&r), ["I6"]);
    // localStorage instances refuse the memory-only methods.
    let local = load(json!({ "namespace": "w2" })).await;
    assert!(local.migrate_stored_history(js(json!([]))).is_err());
    assert!(local.set_stored_history(JsValue::UNDEFINED).is_err());
    clear_vitrine_keys();
}
