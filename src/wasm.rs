//! Browser bindings (wasm32 only): the `Recommender` class a storefront page uses.
//!
//! For storefront developers: `Recommender.fromBytes(bytes, options)` loads a weight file
//! (optionally checking its SHA-256 `integrity`), picks a scoring backend (WebGPU through
//! wgpu or wasm SIMD128, whichever is faster here; scalar as the reference — same
//! ranking), and serves `recommend(options)`
//! from a browsing history kept on the device (`localStorage`, never sent anywhere).
//! `www/vitrine.js` wraps this class with a fetch-with-progress loader and an optional Web
//! Worker; the worker cannot see `localStorage`, so there the class runs with
//! `storage: 'memory'` and the main thread hands the stored history over per call
//! ([`WasmRecommender::set_stored_history`], [`WasmRecommender::stored_history`]).
//!
//! History rules ([`crate::history::HistoryStore`]: cap, age limit, dedup, validation)
//! are applied on every write; before every write the stored value is re-read and the
//! change applied on top of it, so two tabs of the same store do not overwrite each other. A corrupt, foreign or oversized stored
//! value is reported once with `console.warn`, reset, and the page keeps working.
//!
//! Every export returns `Result<_, JsError>`: JavaScript sees a thrown `Error` whose
//! message names the problem (for option objects, the offending field's path).
use std::cell::{Cell, RefCell};
#[cfg(feature = "gpu")]
use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::history::{EventKind, HistoryLimits, HistoryStore, StoredEvent};
use crate::kernels::{CpuKernel, UserQuery};
use crate::recommend::{RecommendOptions, Recommender};

/// Installs the panic hook so a Rust panic shows its message in the browser console.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

// ---------------------------------------------------------------------------------------
// Option parsing with field paths in the error messages.

/// Converts a JavaScript value to JSON (`undefined`/`null` → `None`).
fn js_to_json(value: &JsValue, what: &str) -> Result<Option<Value>, JsError> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    let text = js_sys::JSON::stringify(value)
        .map_err(|_| JsError::new(&format!("{what}: not serialisable as JSON")))?;
    let text: String = text.into();
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| JsError::new(&format!("{what}: {e}")))
}

/// Deserialises `value` as `T`; on failure, finds the smallest part of the input that
/// still fails (so the message names the field, e.g. `filter.priceMin`).
fn from_json<T: DeserializeOwned>(value: Value, what: &str) -> Result<T, JsError> {
    match serde_json::from_value::<T>(value.clone()) {
        Ok(v) => Ok(v),
        Err(e) => {
            let fails = |v: Value| serde_json::from_value::<T>(v).is_err();
            let path = narrow(&fails, &|v| v, &value, String::new());
            // serde names unknown fields itself; the path adds where a wrong type sits.
            let detail = if path.is_empty() {
                e.to_string()
            } else {
                format!("`{path}`: {e}")
            };
            Err(JsError::new(&format!("{what}: {detail}")))
        }
    }
}

/// Recursively locates the failing field; `wrap` rebuilds a one-field input around a
/// sub-value at the current path.
fn narrow(
    fails: &dyn Fn(Value) -> bool,
    wrap: &dyn Fn(Value) -> Value,
    value: &Value,
    path: String,
) -> String {
    match value {
        Value::Object(map) => {
            for (k, sub) in map {
                let single = |x: Value| {
                    let mut m = serde_json::Map::new();
                    m.insert(k.clone(), x);
                    wrap(Value::Object(m))
                };
                if fails(single(sub.clone())) {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    return narrow(fails, &single, sub, p);
                }
            }
            path
        }
        Value::Array(items) => {
            for (i, sub) in items.iter().enumerate() {
                let single = |x: Value| wrap(Value::Array(vec![x]));
                if fails(single(sub.clone())) {
                    return narrow(fails, &single, sub, format!("{path}[{i}]"));
                }
            }
            path
        }
        _ => path,
    }
}

/// Parses an optional JavaScript options object into `T` (absent → `T::default()`).
fn parse_options<T: DeserializeOwned + Default>(value: &JsValue, what: &str) -> Result<T, JsError> {
    match js_to_json(value, what)? {
        None => Ok(T::default()),
        Some(v @ Value::Object(_)) => from_json(v, what),
        Some(_) => Err(JsError::new(&format!("{what}: expected an object"))),
    }
}

/// Converts a Rust value to a plain JavaScript value (objects, not `Map`s).
fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&format!("internal: cannot convert result: {e}")))
}

// ---------------------------------------------------------------------------------------
// Environment helpers.

fn warn(msg: &str) {
    web_sys::console::warn_1(&JsValue::from_str(msg));
}

/// `performance.now()` in a window or a worker (0 where unavailable).
fn now_ms() -> f64 {
    js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("performance"))
        .ok()
        .and_then(|p| p.dyn_into::<web_sys::Performance>().ok())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

/// Wall-clock time in Unix seconds.
fn unix_now() -> f64 {
    js_sys::Date::now() / 1000.0
}

/// Whether `navigator.gpu` exists (WebGPU exposed by this browser/context).
#[cfg(feature = "gpu")]
fn has_webgpu() -> bool {
    js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("navigator"))
        .ok()
        .filter(|n| n.is_object())
        .and_then(|n| js_sys::Reflect::get(&n, &JsValue::from_str("gpu")).ok())
        .is_some_and(|g| !g.is_undefined() && !g.is_null())
}

// ---------------------------------------------------------------------------------------
// History storage.

/// Where the raw stored history lives.
enum Store {
    /// `localStorage` under a namespaced key (main thread).
    Local(web_sys::Storage),
    /// In memory (workers, or where `localStorage` is unavailable); the main thread may
    /// mirror it with `setStoredHistory`/`storedHistory`.
    Memory(RefCell<Option<String>>),
}

// ---------------------------------------------------------------------------------------
// Load options and backends.

/// Scoring backend requested at load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum BackendChoice {
    /// The fastest of WebGPU and the best CPU kernel (measured at load).
    #[default]
    Auto,
    /// WebGPU whenever it works, else SIMD, else scalar.
    Webgpu,
    /// wasm SIMD128 (scalar when this build has no SIMD).
    Simd,
    /// The scalar reference.
    Scalar,
}

/// Where history is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StorageChoice {
    /// `localStorage` (falls back to memory when unavailable).
    #[default]
    Local,
    /// Memory only (Web Workers).
    Memory,
}

/// Options of `Recommender.fromBytes`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
struct LoadOptions {
    backend: BackendChoice,
    /// `sha256-<64 hex digits>` of the file's bytes.
    integrity: Option<String>,
    /// History namespace (default: the first 12 hex digits of the model's content hash).
    namespace: Option<String>,
    storage: StorageChoice,
    history_limits: HistoryLimits,
}

/// The scoring path in use.
#[derive(Clone)]
enum Backend {
    #[cfg(feature = "gpu")]
    Gpu(Rc<crate::kernels::gpu::GpuScorer>),
    Cpu(CpuKernel),
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            #[cfg(feature = "gpu")]
            Backend::Gpu(_) => "webgpu",
            Backend::Cpu(k) => k.name(),
        }
    }
}

/// The best CPU kernel this wasm build has.
fn best_cpu(prefer_simd: bool) -> CpuKernel {
    if prefer_simd && cfg!(target_feature = "simd128") {
        CpuKernel::Simd128
    } else {
        CpuKernel::Scalar
    }
}

/// Checks `sha256-<hex>` against the bytes.
fn check_integrity(bytes: &[u8], integrity: &str) -> Result<(), JsError> {
    let hex = integrity.strip_prefix("sha256-").ok_or_else(|| {
        JsError::new("options: `integrity` must look like 'sha256-<64 hex digits>'")
    })?;
    let hex = hex.to_ascii_lowercase();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(JsError::new(
            "options: `integrity` must look like 'sha256-<64 hex digits>'",
        ));
    }
    let actual = hex_string(&Sha256::digest(bytes));
    if actual != hex {
        return Err(JsError::new(&format!(
            "integrity check failed: the weight file's SHA-256 is {actual}, expected {hex}"
        )));
    }
    Ok(())
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------
// The exported class.

/// Timings of the last `recommend()` call.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Stats {
    encode_ms: f64,
    score_ms: f64,
    finish_ms: f64,
    total_ms: f64,
    backend: String,
    history_len: usize,
    calls: u64,
}

/// An event passed to `record()`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordEvent {
    item: String,
    #[serde(rename = "type")]
    kind: EventKind,
    #[serde(default)]
    at: Option<f64>,
}

/// A loaded model serving recommendations in the browser (JavaScript name
/// `Recommender`).
#[wasm_bindgen(js_name = Recommender)]
pub struct WasmRecommender {
    engine: Recommender,
    backend: RefCell<Backend>,
    store: Store,
    key: String,
    namespace: String,
    limits: HistoryLimits,
    warned: Cell<bool>,
    size_bytes: usize,
    stats: RefCell<Stats>,
}

#[wasm_bindgen(js_class = Recommender)]
impl WasmRecommender {
    /// Loads a weight file. `options`: `{ backend?: 'auto'|'webgpu'|'simd'|'scalar',
    /// integrity?: 'sha256-<hex>', namespace?: string, storage?: 'local'|'memory',
    /// historyLimits?: { maxEvents, maxBytes, halfLifeDays, maxAgeDays, dedupWindowSecs } }`.
    #[wasm_bindgen(js_name = fromBytes)]
    pub async fn from_bytes(bytes: Vec<u8>, options: JsValue) -> Result<WasmRecommender, JsError> {
        let opts: LoadOptions = parse_options(&options, "options")?;
        opts.history_limits
            .validate()
            .map_err(|e| JsError::new(&format!("options: `historyLimits`: {e}")))?;
        if let Some(integrity) = &opts.integrity {
            check_integrity(&bytes, integrity)?;
        }
        let load_error = |e: crate::recommend::RecommendError| {
            JsError::new(&format!("cannot load the weight file: {e}"))
        };
        // Parse, then free the raw bytes before the model's catalog-sized buffers are
        // built (wasm memory never shrinks, so this lowers its high-water mark).
        let file =
            crate::format::WeightFile::from_bytes(&bytes).map_err(|e| load_error(e.into()))?;
        let size_bytes = bytes.len();
        drop(bytes);
        let engine = Recommender::from_weight_file(file).map_err(load_error)?;
        let namespace = match &opts.namespace {
            Some(ns) if ns.is_empty() || ns.len() > 64 || ns.contains(':') => {
                return Err(JsError::new(
                    "options: `namespace` must be 1 to 64 characters without ':'",
                ))
            }
            Some(ns) => ns.clone(),
            None => engine.metadata.content_hash.chars().take(12).collect(),
        };
        let key = format!("vitrine:{namespace}:history");

        let backend = match opts.backend {
            BackendChoice::Scalar => Backend::Cpu(CpuKernel::Scalar),
            BackendChoice::Simd => Backend::Cpu(best_cpu(true)),
            BackendChoice::Auto => Self::fastest(&engine).await,
            BackendChoice::Webgpu => Self::try_gpu(&engine).await,
        };

        let store = match opts.storage {
            StorageChoice::Memory => Store::Memory(RefCell::new(None)),
            StorageChoice::Local => match web_sys::window().map(|w| w.local_storage()) {
                Some(Ok(Some(s))) => Store::Local(s),
                _ => {
                    warn("vitrine: localStorage is unavailable; history is kept in memory only");
                    Store::Memory(RefCell::new(None))
                }
            },
        };

        let stats = Stats {
            backend: backend.name().to_string(),
            ..Stats::default()
        };
        Ok(WasmRecommender {
            engine,
            backend: RefCell::new(backend),
            store,
            key,
            namespace,
            limits: opts.history_limits,
            warned: Cell::new(false),
            size_bytes,
            stats: RefCell::new(stats),
        })
    }

    /// The active backend: `webgpu`, `simd` or `scalar` (changes if the GPU fails).
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.borrow().name().to_string()
    }

    /// Number of catalog items.
    #[wasm_bindgen(getter, js_name = nItems)]
    pub fn n_items(&self) -> usize {
        self.engine.n_items()
    }

    /// The `localStorage` key holding this model's history.
    #[wasm_bindgen(getter, js_name = storageKey)]
    pub fn storage_key(&self) -> String {
        self.key.clone()
    }

    /// The GPU adapter's description, when the backend is `webgpu`.
    #[wasm_bindgen(getter, js_name = adapterInfo)]
    pub fn adapter_info(&self) -> Option<String> {
        match &*self.backend.borrow() {
            #[cfg(feature = "gpu")]
            Backend::Gpu(g) => Some(g.adapter_info()),
            Backend::Cpu(_) => None,
        }
    }

    /// Summary of the model: `{ items, dim, mlpHidden, quantization, contentHash, sizeBytes,
    /// formatVersion, categories, metrics, training }`.
    #[wasm_bindgen(js_name = modelInfo)]
    pub fn model_info(&self) -> Result<JsValue, JsError> {
        let m = &self.engine.metadata;
        let info = serde_json::json!({
            "items": self.engine.n_items(),
            "dim": m.model.dim,
            "mlpHidden": m.model.mlp_hidden,
            "quantization": m.quantization,
            "contentHash": m.content_hash,
            "sizeBytes": self.size_bytes,
            "formatVersion": m.format_version,
            "categories": m.categories.len(),
            "metrics": m.metrics,
            "training": m.training,
        });
        to_js(&info)
    }

    /// The catalog for display: `{ ids, titles, categories (name per item), prices (number
    /// or null per item), categoryNames }`.
    pub fn catalog(&self) -> Result<JsValue, JsError> {
        let m = &self.engine.metadata;
        let c = &m.items;
        let cat_name = |i: usize| -> &str {
            c.category
                .get(i)
                .and_then(|&k| m.categories.get(k as usize))
                .map(String::as_str)
                .unwrap_or("unknown")
        };
        let categories: Vec<&str> = (0..c.ids.len()).map(cat_name).collect();
        let value = serde_json::json!({
            "ids": c.ids,
            "titles": c.titles,
            "categories": categories,
            "prices": c.price,
            "categoryNames": m.categories,
        });
        to_js(&value)
    }

    /// Records an event `{ item, type: 'view'|'cart'|'purchase', at? }` (`at` in Unix
    /// seconds, default now). Unknown item ids throw.
    pub fn record(&self, event: JsValue) -> Result<(), JsError> {
        let ev: RecordEvent = match js_to_json(&event, "event")? {
            Some(v @ Value::Object(_)) => from_json(v, "event")?,
            _ => {
                return Err(JsError::new(
                    "event: expected an object { item, type, at? }",
                ))
            }
        };
        if self.engine.item_index(&ev.item).is_none() {
            return Err(JsError::new(&format!("unknown item id {:?}", ev.item)));
        }
        let at = match ev.at {
            Some(t) if !t.is_finite() => {
                return Err(JsError::new(
                    "event: `at` must be a finite number (Unix seconds)",
                ))
            }
            Some(t) => t,
            None => unix_now(),
        };
        if at > unix_now() + 86_400.0 {
            return Err(JsError::new(
                "event: `at` is more than a day in the future (Unix seconds expected)",
            ));
        }
        // Re-read, apply on top, write (another tab may have written meanwhile).
        let mut store = self.read_store();
        store
            .record(
                StoredEvent {
                    item: ev.item,
                    kind: ev.kind,
                    at,
                },
                &self.limits,
            )
            .map_err(|e| JsError::new(&format!("event: {e}")))?;
        store.prune(unix_now().max(at), &self.limits);
        self.write_store(&store);
        Ok(())
    }

    /// Recommendations for the stored history and `options` (see `RecommendOptions`):
    /// an array of `{ item, index, title, category, price, score, reasons }`.
    pub async fn recommend(&self, options: JsValue) -> Result<JsValue, JsError> {
        let opts: RecommendOptions = parse_options(&options, "recommend options")?;
        let t0 = now_ms();
        let (history, _unknown) = self.engine.resolve_history(&self.read_store().entries());
        let prepared = self
            .engine
            .prepare(&history, &opts)
            .map_err(|e| JsError::new(&e.to_string()))?;
        let t1 = now_ms();
        let logits = match &prepared.query {
            Some(q) => self.scores(q).await,
            None => vec![0.0; self.engine.n_items()],
        };
        let t2 = now_ms();
        let recs = self.engine.finish(&prepared, &logits);
        let t3 = now_ms();
        {
            let mut s = self.stats.borrow_mut();
            s.encode_ms = t1 - t0;
            s.score_ms = t2 - t1;
            s.finish_ms = t3 - t2;
            s.total_ms = t3 - t0;
            s.backend = self.backend();
            s.history_len = history.len();
            s.calls += 1;
        }
        to_js(&recs)
    }

    /// The stored history, oldest first: `[{ item, type, at, title }]` (`title` is null
    /// for ids this model does not know).
    pub fn history(&self) -> Result<JsValue, JsError> {
        #[derive(Serialize)]
        struct Row<'a> {
            item: &'a str,
            #[serde(rename = "type")]
            kind: EventKind,
            at: f64,
            title: Option<&'a str>,
        }
        let events = self.read_store().events;
        let titles = &self.engine.metadata.items.titles;
        let rows: Vec<Row> = events
            .iter()
            .map(|e| Row {
                item: &e.item,
                kind: e.kind,
                at: e.at,
                title: self
                    .engine
                    .item_index(&e.item)
                    .and_then(|i| titles.get(i as usize))
                    .map(String::as_str),
            })
            .collect();
        to_js(&rows)
    }

    /// Deletes the stored history.
    #[wasm_bindgen(js_name = clearHistory)]
    pub fn clear_history(&self) {
        self.save_raw(None);
    }

    /// The stored history as a JSON string `{"schema":1,"namespace":…,"events":[…]}`.
    #[wasm_bindgen(js_name = exportHistory)]
    pub fn export_history(&self) -> Result<String, JsError> {
        Ok(self.read_store().to_json())
    }

    /// Replaces the stored history with an exported one (validated: format, version,
    /// known item ids, finite times); returns the number of events kept after the limits.
    #[wasm_bindgen(js_name = importHistory)]
    pub fn import_history(&self, json: &str) -> Result<usize, JsError> {
        // An export from this store under another namespace (an older model) is welcome:
        // read it under its own namespace, then adopt it.
        let header: Value = serde_json::from_str(json)
            .map_err(|e| JsError::new(&format!("importHistory: invalid history JSON: {e}")))?;
        let ns = header
            .get("namespace")
            .and_then(Value::as_str)
            .ok_or_else(|| JsError::new("importHistory: not a vitrine history (no `namespace`)"))?
            .to_string();
        let now = unix_now();
        let mut store = HistoryStore::from_json_at(json, &ns, &self.limits, now)
            .map_err(|e| JsError::new(&format!("importHistory: {e}")))?;
        if let Some((i, e)) = store
            .events
            .iter()
            .enumerate()
            .find(|(_, e)| self.engine.item_index(&e.item).is_none())
        {
            return Err(JsError::new(&format!(
                "importHistory: events[{i}]: unknown item id {:?}",
                e.item
            )));
        }
        store.namespace = self.namespace.clone();
        store.prune(now, &self.limits);
        let n = store.events.len();
        self.write_store(&store);
        Ok(n)
    }

    /// Timings of the last `recommend()`: `{ encodeMs, scoreMs, finishMs, totalMs,
    /// backend, historyLen, calls }`.
    pub fn stats(&self) -> Result<JsValue, JsError> {
        to_js(&*self.stats.borrow())
    }

    /// The history limits in effect: `{ maxEvents, maxBytes, halfLifeDays, maxAgeDays,
    /// dedupWindowSecs }`.
    #[wasm_bindgen(js_name = historyLimits)]
    pub fn history_limits(&self) -> Result<JsValue, JsError> {
        to_js(&self.limits)
    }

    /// Memory storage (workers): replaces the in-memory stored value with the main
    /// thread's copy of `localStorage` (validated like a stored value when read).
    #[wasm_bindgen(js_name = setStoredHistory)]
    pub fn set_stored_history(&self, raw: Option<String>) -> Result<(), JsError> {
        match &self.store {
            Store::Memory(cell) => {
                *cell.borrow_mut() = raw;
                Ok(())
            }
            Store::Local(_) => Err(JsError::new(
                "setStoredHistory: only for storage: 'memory' (this instance uses localStorage)",
            )),
        }
    }

    /// The raw stored value (what `localStorage` holds under `storageKey`), or
    /// `undefined` when there is none.
    #[wasm_bindgen(js_name = storedHistory)]
    pub fn stored_history(&self) -> Option<String> {
        self.load_raw()
    }
}

impl WasmRecommender {
    /// Tries the GPU; on any failure falls back to the best CPU kernel.
    async fn try_gpu(engine: &Recommender) -> Backend {
        #[cfg(feature = "gpu")]
        {
            if has_webgpu() {
                match crate::kernels::gpu::GpuScorer::new(&engine.plan).await {
                    Ok(g) => return Backend::Gpu(Rc::new(g)),
                    Err(e) => warn(&format!("vitrine: WebGPU unavailable ({e}); using the CPU")),
                }
            }
        }
        let _ = engine;
        Backend::Cpu(best_cpu(true))
    }

    /// `auto`: the GPU when it is faster than the best CPU kernel on this catalog (a
    /// software WebGPU adapter such as SwiftShader is much slower than SIMD), measured on
    /// one warm scoring pass of each.
    async fn fastest(engine: &Recommender) -> Backend {
        let gpu = Self::try_gpu(engine).await;
        #[cfg(feature = "gpu")]
        if let Backend::Gpu(g) = &gpu {
            let cpu = best_cpu(true);
            let probe = RecommendOptions {
                context: engine.catalog().ids.first().cloned(),
                ..RecommendOptions::default()
            };
            let Some(q) = engine.prepare(&[], &probe).ok().and_then(|p| p.query) else {
                return gpu;
            };
            if g.scores(&q).await.is_err() {
                warn("vitrine: WebGPU scoring failed at load; using the CPU");
                return Backend::Cpu(cpu);
            }
            let t0 = now_ms();
            let ok = g.scores(&q).await.is_ok();
            let gpu_ms = now_ms() - t0;
            let mut out = vec![0.0; engine.n_items()];
            let t1 = now_ms();
            cpu.scores(&engine.plan, &q, &mut out);
            let cpu_ms = now_ms() - t1;
            if !ok || gpu_ms > cpu_ms {
                web_sys::console::info_1(&JsValue::from_str(&format!(
                    "vitrine: backend auto: {} ({cpu_ms:.1} ms) is faster than WebGPU ({gpu_ms:.1} ms) here",
                    cpu.name()
                )));
                return Backend::Cpu(cpu);
            }
        }
        gpu
    }

    /// The head's logits; falls back to the CPU for good if the GPU fails.
    #[allow(clippy::infallible_destructuring_match)] // one arm without the `gpu` feature
    async fn scores(&self, q: &UserQuery) -> Vec<f32> {
        let backend = self.backend.borrow().clone();
        let kernel = match backend {
            #[cfg(feature = "gpu")]
            Backend::Gpu(g) => match g.scores(q).await {
                Ok(v) if v.len() == self.engine.n_items() => return v,
                Ok(v) => {
                    warn(&format!(
                        "vitrine: GPU returned {} scores for {} items; switching to the CPU",
                        v.len(),
                        self.engine.n_items()
                    ));
                    self.fall_back()
                }
                Err(e) => {
                    warn(&format!(
                        "vitrine: GPU scoring failed ({e}); switching to the CPU"
                    ));
                    self.fall_back()
                }
            },
            Backend::Cpu(k) => k,
        };
        let mut out = vec![0.0; self.engine.n_items()];
        kernel.scores(&self.engine.plan, q, &mut out);
        out
    }

    #[cfg(feature = "gpu")]
    fn fall_back(&self) -> CpuKernel {
        let k = best_cpu(true);
        *self.backend.borrow_mut() = Backend::Cpu(k);
        k
    }

    fn load_raw(&self) -> Option<String> {
        match &self.store {
            Store::Local(s) => s.get_item(&self.key).ok().flatten(),
            Store::Memory(cell) => cell.borrow().clone(),
        }
    }

    fn save_raw(&self, raw: Option<String>) {
        match &self.store {
            Store::Local(s) => {
                let r = match &raw {
                    Some(v) => s.set_item(&self.key, v),
                    None => s.remove_item(&self.key),
                };
                if r.is_err() {
                    self.warn_once("vitrine: could not write the history to localStorage");
                }
            }
            Store::Memory(cell) => *cell.borrow_mut() = raw,
        }
    }

    fn warn_once(&self, msg: &str) {
        if !self.warned.replace(true) {
            warn(msg);
        }
    }

    /// The stored history, pruned to the limits at the current time (a corrupt, foreign
    /// or oversized stored value is reset, with one console warning).
    fn read_store(&self) -> HistoryStore {
        let now = unix_now();
        let Some(raw) = self.load_raw() else {
            return HistoryStore::new(self.namespace.clone());
        };
        match HistoryStore::from_json_at(&raw, &self.namespace, &self.limits, now) {
            Ok(mut store) => {
                store.prune(now, &self.limits);
                store
            }
            Err(why) => {
                self.warn_once(&format!("vitrine: {why}; the history was reset"));
                self.save_raw(None);
                HistoryStore::new(self.namespace.clone())
            }
        }
    }

    fn write_store(&self, store: &HistoryStore) {
        self.save_raw(Some(store.to_json()));
    }
}

/// An arithmetic-ceiling probe for benchmark pages, on this thread: `iters` rounds of
/// independent `f32x4` multiplies and adds, or with `fused` of relaxed-SIMD fused
/// multiply-adds (relaxed build only). Returns `[checksum, flops]`; the page times the
/// call and reports the GEMM's GFLOP/s against it. Throws when this build has no fused
/// multiply-add (see `buildInfo().simd`).
#[wasm_bindgen(js_name = peakProbe)]
pub fn peak_probe(iters: u32, fused: Option<bool>) -> Result<Vec<f64>, JsError> {
    match crate::kernels::peak_probe(u64::from(iters), fused.unwrap_or(false)) {
        Some((checksum, flops)) => Ok(vec![f64::from(checksum), flops as f64]),
        None => Err(JsError::new(
            "peakProbe(iters, true): this build has no fused multiply-add (load the relaxed-SIMD build)",
        )),
    }
}

/// What this wasm build contains: `{ simd, gpu, version }` where `simd` is
/// `"relaxed-simd"` or `"simd128"` (the CPU kernels' instruction set) and `gpu` whether
/// the WebGPU path is compiled in.
#[wasm_bindgen(js_name = buildInfo)]
pub fn build_info() -> Result<JsValue, JsError> {
    #[derive(Serialize)]
    struct Info {
        simd: &'static str,
        gpu: bool,
        version: &'static str,
    }
    to_js(&Info {
        simd: crate::kernels::simd_build(),
        gpu: cfg!(feature = "gpu"),
        version: env!("CARGO_PKG_VERSION"),
    })
}
