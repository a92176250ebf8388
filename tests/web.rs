//! Browser tests of the wasm bindings (`vitrine::wasm`), run in headless Chromium:
//! `CHROMEDRIVER=/usr/bin/chromedriver wasm-pack test --headless --chrome -- --test web`
//! (`webdriver.json` in the crate root enables WebGPU on SwiftShader).
//!
//! They load a tiny synthetic weight file, drive the JavaScript-facing API the way a page
//! does, and compare its results with the plain Rust engine compiled into the same wasm.
#![cfg(target_arch = "wasm32")]

use serde_json::json;
use sha2::{Digest, Sha256};
use vitrine::format::{Quantization, WeightFile};
use vitrine::history::{EventKind, HistoryEvent};
mod common;
use common::fixtures::{data_start, resealed, tiny_weight_file, without_crc};
use common::js::{js, message, storage};
use vitrine::recommend::{RecommendOptions, Recommendation, Recommender};
use vitrine::wasm::WasmRecommender;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const N: usize = 60;

fn model_bytes(seed: u64) -> Vec<u8> {
    tiny_weight_file(N, seed)
        .to_bytes(Quantization::F32)
        .expect("tiny weight file serialises")
}

fn key(ns: &str) -> String {
    format!("vitrine:v2:{ns}:history")
}

/// Loads with a fresh history in namespace `ns`.
async fn load(bytes: &[u8], ns: &str, extra: serde_json::Value) -> WasmRecommender {
    storage().remove_item(&key(ns)).unwrap();
    load_keep(bytes, ns, extra).await
}

/// Loads without touching the stored history.
async fn load_keep(bytes: &[u8], ns: &str, extra: serde_json::Value) -> WasmRecommender {
    let mut opts = json!({ "namespace": ns, "backend": "scalar" });
    if let serde_json::Value::Object(m) = extra {
        for (k, v) in m {
            opts[k] = v;
        }
    }
    match WasmRecommender::from_bytes(js_sys::Uint8Array::from(bytes), js(opts)).await {
        Ok(r) => r,
        Err(e) => panic!("load failed: {}", message(e)),
    }
}

async fn load_err(bytes: &[u8], opts: serde_json::Value) -> String {
    match WasmRecommender::from_bytes(js_sys::Uint8Array::from(bytes), js(opts)).await {
        Ok(_) => panic!("load should fail"),
        Err(e) => message(e),
    }
}

async fn recs(r: &WasmRecommender, opts: serde_json::Value) -> Vec<Recommendation> {
    match r.recommend(js(opts)).await {
        Ok(v) => serde_wasm_bindgen::from_value(v).expect("recommendations deserialise"),
        Err(e) => panic!("recommend failed: {}", message(e)),
    }
}

async fn recommend_err(r: &WasmRecommender, opts: serde_json::Value) -> String {
    match r.recommend(js(opts)).await {
        Ok(_) => panic!("recommend should fail"),
        Err(e) => message(e),
    }
}

fn record(r: &WasmRecommender, item: &str, kind: &str, at: f64) {
    if let Err(e) = r.record(js(json!({ "item": item, "type": kind, "at": at }))) {
        panic!("record failed: {}", message(e));
    }
}

#[derive(serde::Deserialize, Debug)]
struct Row {
    item: String,
    #[serde(rename = "type")]
    kind: String,
    at: f64,
}

fn history(r: &WasmRecommender) -> Vec<Row> {
    serde_wasm_bindgen::from_value(r.history().expect("history")).expect("rows")
}

/// A tiny f32 weight file with a search index (fixture seed `seed`), and the native
/// engine loaded from it.
fn indexed_file(seed: u64) -> (Vec<u8>, Recommender) {
    let mut file = tiny_weight_file(N, seed);
    vitrine::recommend::search::attach_index(&mut file).expect("index builds");
    let bytes = file.to_bytes(Quantization::F32).unwrap();
    let engine = Recommender::from_bytes(&bytes).expect("engine loads");
    (bytes, engine)
}

fn now() -> f64 {
    js_sys::Date::now() / 1000.0
}

fn ids(rs: &[Recommendation]) -> Vec<String> {
    rs.iter().map(|r| r.item.clone()).collect()
}

#[wasm_bindgen_test]
async fn loads_and_describes_the_model() {
    let bytes = model_bytes(1);
    let r = load(&bytes, "t-info", json!({})).await;
    assert_eq!(r.n_items(), N);
    assert_eq!(r.backend(), "scalar");
    let file = WeightFile::from_bytes(&bytes).unwrap();
    let info: serde_json::Value = serde_wasm_bindgen::from_value(r.model_info().unwrap()).unwrap();
    assert_eq!(info["items"], json!(N));
    assert_eq!(info["sizeBytes"], json!(bytes.len()));
    assert_eq!(info["contentHash"], json!(file.metadata.content_hash));
    assert_eq!(info["dim"], json!(file.metadata.model.dim));
    // The fixture records no trained kinds: every kind reads its own row.
    assert_eq!(info["kinds"], json!({ "trained": null, "mapped": {} }));
    let cat: serde_json::Value = serde_wasm_bindgen::from_value(r.catalog().unwrap()).unwrap();
    assert_eq!(cat["ids"], json!(file.metadata.items.ids));
    assert_eq!(cat["titles"].as_array().unwrap().len(), N);
    assert_eq!(cat["categories"].as_array().unwrap().len(), N);
    assert_eq!(cat["prices"].as_array().unwrap().len(), N);
    // Default namespace: the page's origin (the store, not the model).
    let d = WasmRecommender::from_bytes(js_sys::Uint8Array::from(&bytes[..]), JsValue::UNDEFINED)
        .await
        .map_err(message)
        .unwrap();
    let location = js_sys::Reflect::get(&js_sys::global(), &"location".into()).unwrap();
    let origin = js_sys::Reflect::get(&location, &"origin".into()).unwrap();
    let origin = origin.as_string().expect("location.origin");
    assert_eq!(d.storage_key(), key(&origin));
}

#[wasm_bindgen_test]
async fn records_and_recommends_with_every_option() {
    let bytes = model_bytes(2);
    let r = load(&bytes, "t-options", json!({})).await;
    let t = now();
    for (i, id) in ["I1", "I2", "I3"].iter().enumerate() {
        record(&r, id, "view", t - 100.0 + i as f64 * 10.0);
    }
    record(&r, "I4", "cart", t - 5.0);

    let base = recs(&r, json!({ "k": 7 })).await;
    assert_eq!(base.len(), 7);
    for rec in &base {
        assert!(
            !["I1", "I2", "I3", "I4"].contains(&rec.item.as_str()),
            "seen item returned"
        );
        assert!(!rec.reasons.is_empty(), "every result has reasons");
        assert!(rec.score > 0.0 && rec.score < 1.0);
    }

    let seen_ok = recs(&r, json!({ "k": N, "excludeSeen": false })).await;
    assert!(
        seen_ok.iter().any(|x| x.item == "I1"),
        "excludeSeen: false keeps seen items"
    );

    let excluded = recs(&r, json!({ "k": 7, "exclude": [base[0].item] })).await;
    assert!(!ids(&excluded).contains(&base[0].item));

    let ctx = recs(&r, json!({ "k": 5, "context": "I10" })).await;
    assert_eq!(ctx.len(), 5);
    let basket = recs(&r, json!({ "k": 5, "basket": ["I11", "I12"] })).await;
    assert_eq!(basket.len(), 5);
    assert!(!ids(&basket).contains(&"I11".to_string()));

    let category = base[0].category.clone();
    let filtered = recs(
        &r,
        json!({ "k": 5, "filter": { "categories": [category] } }),
    )
    .await;
    assert!(!filtered.is_empty());
    assert!(filtered.iter().all(|x| x.category == category));

    let cheap = recs(&r, json!({ "k": 5, "filter": { "priceMax": 5.0 } })).await;
    assert!(cheap.iter().all(|x| x.price.is_some_and(|p| p <= 5.0)));

    let last = base.last().unwrap().item.clone();
    let promoted = recs(
        &r,
        json!({ "k": 7, "promote": { "ids": [last], "slots": 1 } }),
    )
    .await;
    assert!(ids(&promoted).contains(&last));

    let far = recs(&r, json!({ "k": N, "excludeSeen": false })).await;
    let bottom = far.last().unwrap().item.clone();
    let boosted = recs(
        &r,
        json!({ "k": 3, "boost": [{ "ids": [bottom], "weight": 50.0 }] }),
    )
    .await;
    assert_eq!(
        boosted[0].item, bottom,
        "a large boost brings the item to the top"
    );

    let diverse = recs(&r, json!({ "k": 7, "diversity": 1.0 })).await;
    assert_eq!(diverse.len(), 7);
    let fresh = recs(&r, json!({ "k": 7, "newItemsBoost": 0.5, "now": t })).await;
    assert_eq!(fresh.len(), 7);

    let stats: serde_json::Value = serde_wasm_bindgen::from_value(r.stats().unwrap()).unwrap();
    assert_eq!(stats["backend"], json!("scalar"));
    assert!(stats["totalMs"].as_f64().unwrap() >= 0.0);
    assert!(stats["calls"].as_u64().unwrap() >= 10);
    // The scalar kernel of an f32 file has no int8 multiply form to choose.
    assert_eq!(stats["dotForm"], json!(null));
}

#[wasm_bindgen_test]
async fn empty_history_falls_back_to_popular() {
    let r = load(&model_bytes(3), "t-empty", json!({})).await;
    let out = recs(&r, json!({ "k": 4 })).await;
    assert_eq!(out.len(), 4);
    assert!(out.iter().all(|x| !x.reasons.is_empty()));
}

/// `bytes` with the 4 bytes at `at` in the data section set to `value` and, when
/// `reseal`, the metadata's `content_hash` and `data_crc32` updated to match (same
/// length, so the header's does not change).
fn with_data_word(bytes: &[u8], at: u64, value: [u8; 4], reseal: bool) -> Vec<u8> {
    let header = data_start(bytes);
    let mut out = bytes.to_vec();
    out[header + at as usize..][..4].copy_from_slice(&value);
    if reseal {
        resealed(&out)
    } else {
        out
    }
}

/// Replaces `SubtleCrypto.prototype.digest` with `with` (`None`: removes it) and returns
/// the original, for [`restore_digest`].
fn replace_digest(with: Option<js_sys::Function>) -> JsValue {
    let proto = js_sys::Reflect::get(&js_sys::global(), &"SubtleCrypto".into())
        .and_then(|c| js_sys::Reflect::get(&c, &"prototype".into()))
        .expect("SubtleCrypto.prototype");
    let original = js_sys::Reflect::get(&proto, &"digest".into()).unwrap();
    let value = with.map_or(JsValue::UNDEFINED, JsValue::from);
    assert!(js_sys::Reflect::set(&proto, &"digest".into(), &value).unwrap());
    original
}

fn restore_digest(original: JsValue) {
    let proto = js_sys::Reflect::get(&js_sys::global(), &"SubtleCrypto".into())
        .and_then(|c| js_sys::Reflect::get(&c, &"prototype".into()))
        .expect("SubtleCrypto.prototype");
    assert!(js_sys::Reflect::set(&proto, &"digest".into(), &original).unwrap());
}

/// The load checks a file's `data_crc32` in wasm, and a file without one (written before
/// it) by its SHA-256, with WebCrypto or, where that is missing or fails, in wasm: the
/// same errors as the native reader in the same order (integrity option, then the
/// checksum or content hash, then a bad value), and the same model; WebCrypto is called
/// for the integrity option only, and for the content hash only in a file without
/// `data_crc32`.
#[wasm_bindgen_test]
async fn load_hashes_alike_with_and_without_webcrypto() {
    load_hashes_alike(false).await;
    load_hashes_alike(true).await;
}

/// [`load_hashes_alike_with_and_without_webcrypto`] on a file with `data_crc32`, or
/// (`legacy`) without.
async fn load_hashes_alike(legacy: bool) {
    let subtle = js_sys::Reflect::get(&js_sys::global(), &"crypto".into())
        .and_then(|c| js_sys::Reflect::get(&c, &"subtle".into()))
        .expect("crypto.subtle");
    assert!(
        subtle.is_object(),
        "the test page must be a secure context with WebCrypto (crypto.subtle), so the \
         WebCrypto path is tested"
    );
    let bytes = model_bytes(11);
    let bytes = if legacy { without_crc(&bytes) } else { bytes };
    let f32_at = (vitrine::format::peek_tensors(&bytes).unwrap().into_iter())
        .find(|t| t.dtype == vitrine::format::Dtype::F32 && t.data_offsets[1] > t.data_offsets[0])
        .expect("an F32 tensor")
        .data_offsets[0];
    let nan = f32::NAN.to_le_bytes();
    let flipped = with_data_word(&bytes, f32_at, [1, 2, 3, 4], false);
    let nan_rehashed = with_data_word(&bytes, f32_at, nan, true);
    let nan_stale = with_data_word(&bytes, f32_at, nan, false);
    // The catalogue section (format version 2): the first id's bytes made invalid UTF-8.
    let catalog_at = (vitrine::format::peek_tensors(&bytes).unwrap().into_iter())
        .find(|t| t.name == vitrine::format::CATALOG_TENSOR)
        .expect("a version 2 file's catalog section")
        .data_offsets[0];
    let bad_id = with_data_word(&bytes, catalog_at + 1, [0xff; 4], true);
    let bad_id_stale = with_data_word(&bytes, catalog_at + 1, [0xff; 4], false);
    let native = |b: &[u8]| match Recommender::from_bytes(b) {
        Ok(_) => panic!("the native load should fail"),
        Err(e) => format!("cannot load the weight file: {e}"),
    };
    let mismatch = if legacy {
        "content hash mismatch"
    } else {
        "checksum mismatch"
    };
    assert!(native(&flipped).contains(mismatch));
    assert!(native(&nan_rehashed).contains("non-finite value at element 0"));
    assert!(native(&nan_stale).contains(mismatch));
    assert!(native(&bad_id).contains("catalog section is invalid: item 0's id"));
    assert!(native(&bad_id_stale).contains(mismatch));
    let hex: String = (Sha256::digest(&bytes).iter())
        .map(|b| format!("{b:02x}"))
        .collect();
    let engine = Recommender::from_bytes(&bytes).expect("engine loads");
    let at = now() - 3600.0;
    let history = [HistoryEvent {
        item: engine.item_index("I7").unwrap(),
        kind: EventKind::View,
        at,
    }];
    let case = json!({ "k": 10, "now": at + 60.0 });
    let opts: RecommendOptions = serde_json::from_value(case.clone()).unwrap();
    let want = engine.recommend(&history, &opts).expect("native recommend");

    let rejecting = js_sys::Function::new_no_args("return Promise.reject(new Error('no digest'))");
    // WebCrypto's own digest, counting its calls (so the test knows that path ran).
    let counting = |original: &JsValue| -> js_sys::Function {
        js_sys::Function::new_with_args(
            "digest",
            "globalThis.vitrineDigests = 0; \
             return function (...a) { globalThis.vitrineDigests += 1; return digest.apply(this, a); };",
        )
        .call1(&JsValue::NULL, original)
        .unwrap()
        .into()
    };
    for mode in ["webcrypto", "missing", "rejecting"] {
        let original = match mode {
            "webcrypto" => {
                let original = replace_digest(None);
                replace_digest(Some(counting(&original)));
                original
            }
            "missing" => replace_digest(None),
            _ => replace_digest(Some(rejecting.clone())),
        };
        for (name, b) in [
            ("flipped", &flipped),
            ("nan", &nan_rehashed),
            ("nan, stale hash", &nan_stale),
            ("catalog", &bad_id),
            ("catalog, stale hash", &bad_id_stale),
        ] {
            assert_eq!(
                load_err(b, json!({})).await,
                native(b),
                "{mode}, legacy {legacy}: {name}"
            );
        }
        let wrong = format!("sha256-{}", "0".repeat(64));
        let m = load_err(&flipped, json!({ "integrity": wrong })).await;
        assert!(m.contains("integrity check failed"), "{mode}: {m}");
        let m = load_err(&flipped, json!({ "integrity": format!("sha256-{hex}") })).await;
        assert!(
            m.contains("integrity check failed"),
            "{mode}: the flipped file is not the one named: {m}"
        );
        let r = WasmRecommender::from_bytes(
            js_sys::Uint8Array::from(&bytes[..]),
            js(json!({ "integrity": format!("sha256-{hex}"), "backend": "scalar", "storage": "memory" })),
        )
        .await
        .map_err(message);
        restore_digest(original);
        let r = r.unwrap_or_else(|m| panic!("{mode}: the right file loads: {m}"));
        if mode == "webcrypto" {
            let calls = js_sys::Reflect::get(&js_sys::global(), &"vitrineDigests".into())
                .unwrap()
                .as_f64();
            // A file without `data_crc32`: one per load that reaches the hash, and one per
            // integrity option (5 + 2 · 2 + 2); with it, the integrity options' only.
            let want = if legacy { 11.0 } else { 3.0 };
            assert_eq!(
                calls,
                Some(want),
                "legacy {legacy}: every SHA-256 by WebCrypto"
            );
        }
        r.record(js(json!({ "item": "I7", "type": "view", "at": at })))
            .map_err(message)
            .unwrap();
        let got = recs(&r, case.clone()).await;
        assert_eq!(ids(&got), ids(&want), "{mode}");
    }
}

#[wasm_bindgen_test]
async fn clear_errors_for_bad_input() {
    let bytes = model_bytes(4);
    // Corrupt files.
    let m = load_err(&bytes[..bytes.len() / 2], json!({})).await;
    assert!(m.contains("weight file"), "{m}");
    let m = load_err(b"not a weight file at all", json!({})).await;
    assert!(m.contains("weight file"), "{m}");
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0xff;
    let m = load_err(&flipped, json!({})).await;
    assert!(m.contains("weight file"), "{m}");
    // Integrity.
    let wrong = format!("sha256-{}", "0".repeat(64));
    let m = load_err(&bytes, json!({ "integrity": wrong })).await;
    assert!(m.contains("integrity check failed"), "{m}");
    let m = load_err(&bytes, json!({ "integrity": "md5-abc" })).await;
    assert!(m.contains("integrity"), "{m}");
    let hex: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let ok = WasmRecommender::from_bytes(
        js_sys::Uint8Array::from(&bytes[..]),
        js(json!({ "integrity": format!("sha256-{hex}"), "backend": "scalar" })),
    )
    .await
    .map_err(message);
    assert!(ok.is_ok(), "the right digest loads: {:?}", ok.err());
    // Load options.
    let m = load_err(&bytes, json!({ "backnd": "scalar" })).await;
    assert!(m.contains("backnd"), "{m}");
    let m = load_err(&bytes, json!({ "backend": "cuda" })).await;
    assert!(m.contains("backend") && m.contains("cuda"), "{m}");
    let m = load_err(&bytes, json!({ "backend": 3 })).await;
    assert!(m.contains("backend"), "{m}");
    let m = load_err(&bytes, json!({ "historyLimits": { "maxEvents": "many" } })).await;
    assert!(m.contains("historyLimits.maxEvents"), "{m}");

    let r = load(&bytes, "t-errors", json!({})).await;
    // Recommend options: unknown field, wrong type, nested wrong type, out of range.
    let m = recommend_err(&r, json!({ "kk": 3 })).await;
    assert!(m.contains("kk"), "{m}");
    let m = recommend_err(&r, json!({ "k": "three" })).await;
    assert!(m.contains("`k`"), "{m}");
    let m = recommend_err(&r, json!({ "filter": { "priceMin": "cheap" } })).await;
    assert!(m.contains("filter.priceMin"), "{m}");
    let m = recommend_err(
        &r,
        json!({ "boost": [{ "ids": ["I1"], "weight": 1 }, { "wieght": 2 }] }),
    )
    .await;
    assert!(m.contains("boost[1]") && m.contains("wieght"), "{m}");
    let m = recommend_err(&r, json!({ "k": 0 })).await;
    assert!(m.contains('k'), "{m}");
    let m = recommend_err(&r, json!({ "context": "no-such-item" })).await;
    assert!(m.contains("no-such-item"), "{m}");
    match r.recommend(JsValue::from_str("k=3")).await {
        Ok(_) => panic!("a string is not an options object"),
        Err(e) => assert!(message(e).contains("expected an object")),
    }
    // Events.
    let bad = |v: serde_json::Value| match r.record(js(v)) {
        Ok(()) => panic!("record should fail"),
        Err(e) => message(e),
    };
    let m = bad(json!({ "item": "nope", "type": "view" }));
    assert!(m.contains("unknown item id") && m.contains("nope"), "{m}");
    let m = bad(json!({ "item": "I1", "type": "like" }));
    assert!(m.contains("type") || m.contains("like"), "{m}");
    let m = bad(json!({ "item": "I1", "type": "view", "when": 3 }));
    assert!(m.contains("when"), "{m}");
    let m = bad(json!({ "item": 1, "type": "view" }));
    assert!(m.contains("item"), "{m}");
    let m = bad(json!({ "item": "I1", "type": "view", "at": now() + 10.0 * 86_400.0 }));
    assert!(m.contains("future"), "{m}");
    assert!(history(&r).is_empty(), "failed records store nothing");
    // Import.
    let import = |s: &str| r.import_history(JsValue::from_str(s));
    assert!(import("{").is_err());
    let m = message(import(r#"{"schema":7,"namespace":"x","events":[]}"#).unwrap_err());
    assert!(m.contains("schema"), "{m}");
    let m = message(import(r#"{"events":[]}"#).unwrap_err());
    assert!(m.contains("missing field"), "{m}");
}

#[wasm_bindgen_test]
async fn history_persists_across_instances_and_tabs() {
    let bytes = model_bytes(5);
    let t = now();
    let a = load(&bytes, "t-persist", json!({})).await;
    record(&a, "I5", "view", t - 30.0);
    record(&a, "I6", "purchase", t - 20.0);
    drop(a);
    let b = load_keep(&bytes, "t-persist", json!({})).await;
    let h = history(&b);
    assert_eq!(h.len(), 2);
    assert_eq!((h[0].item.as_str(), h[0].kind.as_str()), ("I5", "view"));
    assert_eq!((h[1].item.as_str(), h[1].kind.as_str()), ("I6", "purchase"));
    assert!((h[1].at - (t - 20.0)).abs() < 1e-6);

    // A second "tab" (instance) writing in between: neither write is lost.
    let c = load_keep(&bytes, "t-persist", json!({})).await;
    record(&b, "I7", "view", t - 10.0);
    record(&c, "I8", "view", t - 5.0);
    let items: Vec<String> = history(&b).into_iter().map(|r| r.item).collect();
    assert_eq!(items, ["I5", "I6", "I7", "I8"]);

    // Export, clear, import round trip.
    let exported = b.export_history().unwrap();
    b.clear_history();
    assert!(history(&b).is_empty());
    assert_eq!(storage().get_item(&key("t-persist")).unwrap(), None);
    let report = c.import_history(JsValue::from_str(&exported));
    let report: serde_json::Value =
        serde_wasm_bindgen::from_value(report.map_err(message).unwrap()).unwrap();
    assert_eq!(report["kept"], json!(4));
    assert_eq!(history(&b).len(), 4);

    // Other namespaces are untouched.
    let other = load(&bytes, "t-persist-other", json!({})).await;
    assert!(history(&other).is_empty());
}

#[wasm_bindgen_test]
async fn history_limits_cap_decay_and_dedup() {
    let bytes = model_bytes(6);
    let r = load(
        &bytes,
        "t-limits",
        json!({ "historyLimits": { "maxEvents": 5, "maxAgeDays": 30 } }),
    )
    .await;
    let limits: serde_json::Value =
        serde_wasm_bindgen::from_value(r.history_limits().unwrap()).unwrap();
    assert_eq!(limits["maxEvents"], json!(5));
    let t = now();
    for i in 0..8 {
        record(
            &r,
            &format!("I{}", 20 + i),
            "view",
            t - 1000.0 + i as f64 * 100.0,
        );
    }
    let items: Vec<String> = history(&r).into_iter().map(|r| r.item).collect();
    assert_eq!(
        items,
        ["I23", "I24", "I25", "I26", "I27"],
        "cap keeps the newest"
    );

    let r2 = load(
        &bytes,
        "t-decay",
        json!({ "historyLimits": { "maxAgeDays": 30 } }),
    )
    .await;
    record(&r2, "I1", "view", t - 40.0 * 86_400.0);
    record(&r2, "I2", "view", t - 10.0 * 86_400.0);
    let items: Vec<String> = history(&r2).into_iter().map(|r| r.item).collect();
    assert_eq!(items, ["I2"], "events older than maxAgeDays are dropped");

    record(&r2, "I3", "view", t - 30.0);
    record(&r2, "I3", "view", t - 20.0);
    record(&r2, "I3", "cart", t - 10.0);
    let h = history(&r2);
    assert_eq!(
        h.len(),
        3,
        "a quick repeat of the same view is one event: {h:?}"
    );
}

#[wasm_bindgen_test]
async fn corrupt_foreign_or_oversized_storage_is_reset() {
    let bytes = model_bytes(7);
    let k = key("t-corrupt");
    let big = format!(
        r#"{{"schema":1,"namespace":"t-corrupt","events":[{}]}}"#,
        vec![r#"{"item":"I1","kind":"view","at":1}"#; 4000].join(",")
    );
    for bad in [
        "{not json",
        r#"{"v":1,"events":[]}"#,
        r#"{"schema":99,"namespace":"t-corrupt","events":[]}"#,
        r#"{"schema":1,"namespace":"another-store","events":[]}"#,
        r#"{"schema":1,"namespace":"t-corrupt","events":[{"item":"I1","kind":"teleport","at":1}]}"#,
        r#"["I1","I2"]"#,
        big.as_str(),
    ] {
        let r = load(&bytes, "t-corrupt", json!({})).await;
        storage().set_item(&k, bad).unwrap();
        assert!(history(&r).is_empty());
        assert_eq!(storage().get_item(&k).unwrap(), None, "reset: {bad:.40}");
        storage().set_item(&k, bad).unwrap();
        assert_eq!(recs(&r, json!({ "k": 3 })).await.len(), 3, "still serves");
        record(&r, "I2", "view", now());
        assert_eq!(history(&r).len(), 1, "keeps working after a reset");
    }
    // Stored ids unknown to this model (older catalog) are skipped, not fatal.
    let r = load(&bytes, "t-corrupt", json!({})).await;
    storage()
        .set_item(
            &k,
            &format!(
                r#"{{"schema":1,"namespace":"t-corrupt","events":[{{"item":"gone","kind":"view","at":{}}}]}}"#,
                now()
            ),
        )
        .unwrap();
    assert_eq!(recs(&r, json!({ "k": 3 })).await.len(), 3);
}

#[wasm_bindgen_test]
async fn memory_storage_for_workers() {
    let bytes = model_bytes(8);
    let r = load(&bytes, "t-memory", json!({ "storage": "memory" })).await;
    assert!(r.stored_history().is_none());
    record(&r, "I3", "view", now());
    let raw = r.stored_history().expect("stored after a record");
    assert_eq!(
        storage().get_item(&key("t-memory")).unwrap(),
        None,
        "memory mode never touches localStorage"
    );
    r.clear_history();
    assert!(history(&r).is_empty());
    (r.set_stored_history(JsValue::from_str(&raw)))
        .map_err(message)
        .unwrap();
    assert_eq!(history(&r).len(), 1);
    r.set_stored_history(JsValue::from_str("garbage")).unwrap();
    assert!(history(&r).is_empty());
    let local = load(&bytes, "t-memory2", json!({})).await;
    assert!(local.set_stored_history(JsValue::UNDEFINED).is_err());
}

/// Recommendations from the JavaScript-facing API equal the plain Rust engine's.
#[wasm_bindgen_test]
async fn matches_the_native_engine() {
    let bytes = model_bytes(9);
    let engine = Recommender::from_bytes(&bytes).expect("engine loads");
    let t = now() - 86_400.0;
    let events = [
        ("I2", EventKind::View),
        ("I9", EventKind::View),
        ("I9", EventKind::Cart),
        ("I17", EventKind::View),
    ];
    let r = load(&bytes, "t-native", json!({})).await;
    let mut hist = Vec::new();
    for (i, (id, kind)) in events.iter().enumerate() {
        let at = t + i as f64 * 3600.0;
        let kind_s = serde_json::to_value(kind).unwrap();
        r.record(js(json!({ "item": id, "type": kind_s, "at": at })))
            .map_err(message)
            .unwrap();
        hist.push(HistoryEvent {
            item: engine.item_index(id).unwrap(),
            kind: *kind,
            at,
        });
    }
    let now_opt = t + 5.0 * 3600.0;
    let cases = [
        json!({ "k": 10, "now": now_opt }),
        json!({ "k": 6, "context": "I30", "now": now_opt }),
        json!({ "k": 6, "basket": ["I9", "I40"], "now": now_opt }),
        json!({ "k": 8, "diversity": 0.5, "excludeSeen": false, "now": now_opt }),
        json!({ "k": 8, "filter": { "priceMax": 20.0 }, "now": now_opt }),
    ];
    for case in cases {
        let opts: RecommendOptions = serde_json::from_value(case.clone()).unwrap();
        let expected = engine.recommend(&hist, &opts).expect("native recommend");
        let got = recs(&r, case.clone()).await;
        assert_eq!(ids(&got), ids(&expected), "case {case}");
        for (g, e) in got.iter().zip(&expected) {
            assert!(
                (g.score - e.score).abs() < 1e-6,
                "case {case}: {} vs {}",
                g.score,
                e.score
            );
            assert_eq!(g.reasons, e.reasons, "case {case}");
        }
    }
}

/// SIMD and WebGPU rank like the scalar reference, up to ties. Asking for `webgpu` must
/// give WebGPU: the test configuration (`webdriver.json`: WebGPU on SwiftShader) has an
/// adapter, so a silent fall-back to SIMD fails here (with the `gpu` feature; without it,
/// `webgpu` must fall back to `simd`).
#[wasm_bindgen_test]
async fn backends_agree_with_scalar() {
    let bytes = model_bytes(10);
    let scalar = load(&bytes, "t-backends", json!({ "backend": "scalar" })).await;
    assert_eq!(scalar.backend(), "scalar");
    let t = now();
    for (i, id) in ["I3", "I8", "I13", "I21"].iter().enumerate() {
        record(&scalar, id, "view", t - 60.0 + i as f64 * 5.0);
    }
    let opts = json!({ "k": 15, "now": t });
    let want = recs(&scalar, opts.clone()).await;
    let gpu_expected = if cfg!(feature = "gpu") {
        "webgpu"
    } else {
        "simd"
    };
    for (backend, expected) in [("simd", "simd"), ("webgpu", gpu_expected), ("auto", "")] {
        let r = load_keep(&bytes, "t-backends", json!({ "backend": backend })).await;
        let b = r.backend();
        console_log!("backend {backend:?} -> {b} ({:?})", r.adapter_info());
        if expected.is_empty() {
            assert!(["webgpu", "simd"].contains(&b.as_str()), "auto chose {b}");
        } else {
            assert_eq!(
                b,
                expected,
                "backend {backend:?} fell back (adapter: {:?})",
                r.adapter_info()
            );
        }
        let got = recs(&r, opts.clone()).await;
        assert_same_ranking_up_to_ties(&format!("{backend}/{b}"), &got, &want);
        let read = |r: &WasmRecommender| -> u64 {
            let stats: serde_json::Value =
                serde_wasm_bindgen::from_value(r.stats().unwrap()).unwrap();
            stats["readBackBytes"].as_u64().expect("readBackBytes")
        };
        if b == "webgpu" {
            // The shortlist: 15 places of the one chunk, 12 bytes each, and the logits of
            // the 4 seen items (the sparse set); a context item needs every logit.
            assert_eq!(read(&r), 12 * 15 + 4 * 4, "{backend}: shortlist read-back");
            let ctx = json!({ "k": 15, "now": t, "context": "I5" });
            recs(&r, ctx).await;
            assert_eq!(read(&r), 4 * N as u64, "{backend}: full read-back");
        } else {
            assert_eq!(read(&r), 0, "{backend}: nothing read back on the CPU");
        }
    }
}

/// `got` ranks like `want`: scores equal within 1e-4 rank by rank, and each group of
/// tied scores in `want` (consecutive scores within 1e-4) holds the same ids in `got`
/// at the same ranks, in any order. The group touching the end of the list is checked by
/// scores only (its ties may continue past `k`).
fn assert_same_ranking_up_to_ties(what: &str, got: &[Recommendation], want: &[Recommendation]) {
    const TIE: f32 = 1e-4;
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g.score - w.score).abs() < TIE,
            "{what} rank {i}: {} vs {}",
            g.score,
            w.score
        );
    }
    let mut start = 0;
    while start < want.len() {
        let mut end = start + 1;
        while end < want.len() && (want[end - 1].score - want[end].score).abs() < TIE {
            end += 1;
        }
        if end < want.len() {
            let mut a = ids(&got[start..end]);
            let mut b = ids(&want[start..end]);
            a.sort();
            b.sort();
            assert_eq!(a, b, "{what}: ranks {start}..{end} (tied within {TIE})");
        }
        start = end;
    }
}

/// `search()` from the JavaScript-facing API equals the plain Rust engine's for a fixed
/// stored history and query; a file without a search index throws an `Error` naming
/// search, and a non-string query a clear `Error`.
#[wasm_bindgen_test]
async fn search_matches_the_native_engine() {
    use vitrine::recommend::search::{SearchRequest, SearchResponse};
    let (bytes, engine) = indexed_file(12);
    let r = load(&bytes, "t-search", json!({ "backend": "scalar" })).await;
    let t = now() - 86_400.0;
    let mut hist = Vec::new();
    for (i, id) in ["I3", "I8", "I21"].iter().enumerate() {
        let at = t + i as f64 * 60.0;
        r.record(js(json!({ "item": id, "type": "view", "at": at })))
            .map_err(message)
            .unwrap();
        hist.push(HistoryEvent {
            item: engine.item_index(id).unwrap(),
            kind: EventKind::View,
            at,
        });
    }
    let cases = [
        ("red candle", json!({ "k": 8 })),
        (
            "vintag",
            json!({ "k": 5, "personalize": 0.8, "filter": { "priceMax": 20.0 } }),
        ),
        ("zzzzqqq", json!({ "k": 3 })),
    ];
    for (query, opts) in cases {
        let req: SearchRequest = serde_json::from_value(opts.clone()).unwrap();
        let expected = engine.search(&hist, query, &req).expect("native search");
        let got = r.search(JsValue::from_str(query), js(opts.clone()));
        let got: SearchResponse =
            serde_wasm_bindgen::from_value(got.map_err(message).unwrap()).unwrap();
        let idx = |x: &SearchResponse| x.results.iter().map(|h| h.index).collect::<Vec<_>>();
        assert_eq!(idx(&got), idx(&expected), "{query} {opts}");
        assert_eq!(got.total, expected.total);
        assert_eq!(got.personalized, expected.personalized);
    }
    let e = r
        .search(JsValue::from_f64(3.0), JsValue::UNDEFINED)
        .unwrap_err();
    assert!(message(e).contains("query"));
    let plain = load(&model_bytes(12), "t-search-none", json!({})).await;
    plain.prepare_search().expect("nothing to decode");
    let e = plain
        .search(JsValue::from_str("red"), JsValue::UNDEFINED)
        .unwrap_err();
    let m = message(e);
    assert!(m.contains("search") && m.contains("no search index"), "{m}");
}

/// The load leaves the search index in its section, copied out of the page's array: a
/// page that zeroes its array after the load still searches the file it loaded, the
/// first `search()` or `prepareSearch()` decodes the index, and a corrupt index (sealed
/// into the file by its writer, so the content hash vouches for it) loads, recommends,
/// and fails every search and `prepareSearch()` with the decoder's error.
#[wasm_bindgen_test]
async fn search_index_is_decoded_on_first_use_from_the_loads_copy() {
    use vitrine::format::TensorData;
    use vitrine::recommend::search::{attach_index, SearchRequest, SearchResponse};
    let (bytes, engine) = indexed_file(13);
    storage().remove_item(&key("t-lazy")).unwrap();
    let array = js_sys::Uint8Array::from(&bytes[..]);
    let opts = json!({ "namespace": "t-lazy", "backend": "scalar" });
    let r = WasmRecommender::from_bytes(array.clone(), js(opts))
        .await
        .map_err(message)
        .expect("loads");
    array.fill(0, 0, array.length());
    let req = json!({ "k": 6 });
    let want = engine
        .search(
            &[],
            "candle",
            &serde_json::from_value::<SearchRequest>(req.clone()).unwrap(),
        )
        .expect("native search");
    assert!(!want.results.is_empty(), "the query matches some titles");
    let idx = |x: &SearchResponse| x.results.iter().map(|h| h.index).collect::<Vec<_>>();
    for round in 0..2 {
        let got = r.search(JsValue::from_str("candle"), js(req.clone()));
        let got: SearchResponse =
            serde_wasm_bindgen::from_value(got.map_err(message).unwrap()).unwrap();
        assert_eq!(idx(&got), idx(&want), "round {round}");
        r.prepare_search().expect("decoded already");
    }

    let mut file = tiny_weight_file(N, 13);
    attach_index(&mut file).expect("index builds");
    let section = file.tensors.get_mut("search.index").unwrap();
    let TensorData::U8(index_bytes) = &mut section.data else {
        panic!("the index is a U8 section");
    };
    index_bytes.pop();
    section.shape = vec![index_bytes.len()];
    let sealed = file.to_bytes(Quantization::F32).unwrap();
    let native = Recommender::from_bytes(&sealed)
        .err()
        .expect("rejected natively");
    let r = load(&sealed, "t-lazy-bad", json!({})).await;
    assert_eq!(recs(&r, json!({ "k": 5 })).await.len(), 5, "recommends");
    let e = message(r.prepare_search().unwrap_err());
    assert!(e.starts_with("search: "), "{e}");
    assert!(e.contains(&native.to_string()), "{e} / {native}");
    for _ in 0..2 {
        let again = r.search(JsValue::from_str("candle"), JsValue::UNDEFINED);
        assert_eq!(message(again.unwrap_err()), e);
    }
    assert_eq!(message(r.prepare_search().unwrap_err()), e);
    assert_eq!(
        recs(&r, json!({ "k": 5 })).await.len(),
        5,
        "still recommends"
    );
}

/// `page()` through the binding: the native engine's shelves (no product twice), and a
/// bad shelf throws an `Error` naming it before any shelf is scored.
#[wasm_bindgen_test]
async fn page_fills_distinct_shelves_like_the_native_engine() {
    let bytes = model_bytes(11);
    let engine = Recommender::from_bytes(&bytes).expect("engine loads");
    let r = load(&bytes, "t-page", json!({})).await;
    let t = now() - 3600.0;
    record(&r, "I4", "view", t);
    record(&r, "I12", "cart", t + 60.0);
    let hist: Vec<HistoryEvent> = [
        ("I4", EventKind::View, t),
        ("I12", EventKind::Cart, t + 60.0),
    ]
    .iter()
    .map(|&(id, kind, at)| HistoryEvent {
        item: engine.item_index(id).unwrap(),
        kind,
        at,
    })
    .collect();
    let request = json!({ "shelves": [
        { "k": 6, "context": "I30", "now": t + 120.0 },
        { "k": 6, "basket": ["I30"], "now": t + 120.0 },
        { "k": 6, "now": t + 120.0 },
        { "k": 4, "now": t + 120.0 },
    ] });
    let got: Vec<Vec<Recommendation>> = match r.page(js(request.clone())).await {
        Ok(v) => serde_wasm_bindgen::from_value(v).expect("shelves deserialise"),
        Err(e) => panic!("page failed: {}", message(e)),
    };
    let req: vitrine::recommend::page::PageRequest = serde_json::from_value(request).unwrap();
    let want = engine.page(&hist, &req).expect("native page");
    assert_eq!(got.len(), 4);
    let mut seen = std::collections::HashSet::new();
    for (j, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(ids(g), ids(w), "shelf {j}");
        assert_eq!(g.len(), req.shelves[j].k, "shelf {j} is full");
        assert!(
            g.iter().all(|x| seen.insert(x.item.clone())),
            "shelf {j} repeats"
        );
    }
    let bad = json!({ "shelves": [{ "k": 3 }, { "k": 3, "context": "nope" }] });
    match r.page(js(bad)).await {
        Ok(_) => panic!("a bad shelf must throw"),
        Err(e) => assert_eq!(message(e), "shelves[1].context: unknown item id \"nope\""),
    }
    match r.page(js(json!({ "shelves": [] }))).await {
        Ok(_) => panic!("an empty page must throw"),
        Err(e) => assert!(message(e).contains("1 to 16 shelves"), "empty page"),
    }
    match r.page(JsValue::from_str("shelves")).await {
        Ok(_) => panic!("a string must throw"),
        Err(e) => assert!(message(e).contains("page request"), "string request"),
    }
}

#[wasm_bindgen(module = "/www/catalog.js")]
extern "C" {
    #[wasm_bindgen(js_name = unpackCatalog, catch)]
    fn unpack_catalog(packed: JsValue) -> Result<JsValue, JsValue>;
}

/// `catalog()` hands its columns over a batch at a time (strings joined with NUL and
/// split in JavaScript, prices as JSON): the values are the file's, for strings a split
/// could get wrong too (empty, non-ASCII, a NUL inside a title: that batch goes string by
/// string; a leading U+FEFF, which a UTF-8 decoder may take for a byte order mark) and
/// across batches (about 1.2 MB of titles, so more than one), with unknown prices as
/// `null`. `catalogPacked()`, unpacked by `www/catalog.js` (the Worker's route), gives
/// the same object, over more than one segment too.
#[wasm_bindgen_test]
async fn catalog_columns_are_the_files() {
    let mut file = tiny_weight_file(N, 5);
    let items = &mut file.metadata.items;
    let mut titles: Vec<String> = items.titles.iter().map(str::to_string).collect();
    titles[0] = String::new();
    titles[1] = "a\0b".into();
    titles[2] = "héllo wörld".into();
    titles[3] = "🛒 cart".into();
    for (i, t) in titles.iter_mut().enumerate().skip(20).take(20) {
        *t = format!("{i} {}", "ab ".repeat(20_000));
    }
    items.titles = titles.into();
    let mut ids: Vec<String> = items.ids.iter().map(str::to_string).collect();
    ids[0] = "\u{feff}0".into();
    ids[4] = "ü-4".into();
    ids[5] = "🎁5".into();
    items.ids = ids.into();
    items.price.set(6, None);
    items.price.set(7, Some(-0.0));
    items.price.set(8, Some(0.1));
    let bytes = file.to_bytes(Quantization::F32).unwrap();
    let r = load(&bytes, "t-catalog", json!({})).await;
    let cat: serde_json::Value = serde_wasm_bindgen::from_value(r.catalog().unwrap()).unwrap();
    let m = WeightFile::from_bytes(&bytes).unwrap().metadata;
    let names = &m.categories;
    assert_eq!(cat["ids"], json!(m.items.ids.iter().collect::<Vec<_>>()));
    assert_eq!(
        cat["titles"],
        json!(m.items.titles.iter().collect::<Vec<_>>())
    );
    assert_eq!(cat["titles"][1], json!("a\0b"));
    let categories: Vec<&str> = m
        .items
        .category
        .iter()
        .map(|&c| names[c as usize].as_str())
        .collect();
    assert_eq!(cat["categories"], json!(categories));
    let prices: Vec<Option<f64>> = (0..N)
        .map(|i| m.items.price.get(i).map(f64::from))
        .collect();
    // Compared as numbers (an integral price comes back as a JSON integer).
    let got: Vec<Option<f64>> = cat["prices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64())
        .collect();
    assert_eq!(got, prices);
    assert_eq!(cat["prices"][6], serde_json::Value::Null);
    assert_eq!(got[8], Some(0.1f32 as f64));
    assert_eq!(cat["categoryNames"], json!(names));
    assert_eq!(cat["ids"][0], json!("\u{feff}0"));
    // The packed route: the same object.
    let packed = r.catalog_packed().unwrap();
    let segments = |col: &str| {
        let seg = js_sys::Reflect::get(
            &js_sys::Reflect::get(&packed, &col.into()).unwrap(),
            &"segments".into(),
        )
        .unwrap();
        js_sys::Uint32Array::from(seg).length() / 2
    };
    assert!(segments("titles") >= 2, "titles over more than one segment");
    let unpacked = unpack_catalog(packed).unwrap();
    let unpacked: serde_json::Value = serde_wasm_bindgen::from_value(unpacked).unwrap();
    assert_eq!(unpacked, cat);
}
