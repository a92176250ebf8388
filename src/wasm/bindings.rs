//! The `#[wasm_bindgen]` layer: each export converts its arguments ([`super::js_options`]),
//! calls the engine, the [`Scorer`] or the [`HistoryStorage`], and converts the result or
//! error. No logic of its own beyond the timing in [`WasmRecommender::recommend`].
use std::cell::RefCell;
use std::fmt::Display;

use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::env::{finish_sha256, hooks, now_ms, start_sha256, unix_now};
use super::js_options::{self, parse_options, OptionsError};
use super::storage::{bounded_string, HistoryStorage, NotMemoryStorage, MAX_LEGACY_KEYS};
use super::types::{
    BackendOption, BuildInfo, CatalogView, CategoryColumn, HistoryRow, LoadOptions, ModelInfo,
    Stats, StorageOption,
};
use crate::format::{sha256_of_range, to_hex, ByteSource};
use crate::history::{
    HistoryLimits, HistoryStore, ImportReport, StoredEvent, MAX_BYTES_CEILING, MAX_EVENTS_CEILING,
};
use crate::kernels::scorer::{BackendChoice, Scorer};
use crate::kernels::{CpuKernel, DotForm};
use crate::recommend::arriving::{ArrivingLoad, StreamHash, Taken};
use crate::recommend::page::{PageCache, PageRequest};
use crate::recommend::search::SearchRequest;
use crate::recommend::{RecommendError, RecommendOptions, Recommender};

/// Installs the panic hook so a Rust panic shows its message in the browser console.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// A JavaScript `Uint8Array` read in place: each read copies only the bytes asked for.
struct JsBytes(js_sys::Uint8Array);

impl crate::format::ByteSource for JsBytes {
    fn byte_len(&self) -> u64 {
        u64::from(self.0.length())
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) {
        // A Uint8Array is at most 2³² − 1 bytes long and the reader asks for ranges
        // inside it, so both ends fit u32.
        let begin = offset as u32;
        self.0
            .subarray(begin, begin + out.len() as u32)
            .copy_to(out);
    }
}

/// The weight file's `search.index` section, copied out of the page's `Uint8Array` at
/// load (so a page that changes its array afterwards cannot change what the content hash
/// vouched for) and read at the file's offsets: `start` is the section's.
struct JsSection {
    bytes: js_sys::Uint8Array,
    start: u64,
}

impl JsSection {
    /// The section `range` of `file`, copied (the copy's own buffer, in JavaScript).
    fn copy(file: &JsBytes, range: std::ops::Range<u64>) -> JsSection {
        // Inside the file (the reader checked the range), so both ends fit u32.
        let bytes = file.0.slice(range.start as u32, range.end as u32);
        JsSection {
            bytes,
            start: range.start,
        }
    }
}

impl ByteSource for JsSection {
    fn byte_len(&self) -> u64 {
        self.start + u64::from(self.bytes.length())
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) {
        // The reader asks only inside the section: `offset ≥ start`, and the end within
        // the copy.
        let begin = (offset - self.start) as u32;
        self.bytes
            .subarray(begin, begin + out.len() as u32)
            .copy_to(out);
    }
}

/// Why a load from a downloading file stopped: the file's error, or the download's
/// (the `arrived` promise's rejection, passed on as it is).
enum StreamFailure {
    File(RecommendError),
    Download(JsValue),
}

impl From<RecommendError> for StreamFailure {
    fn from(e: RecommendError) -> Self {
        StreamFailure::File(e)
    }
}

/// Waits for `arrived(end)`: the promise the page resolves once the file's first `end`
/// bytes are in the array (see [`WasmRecommender::from_stream`]). Returns how many
/// bytes are in, when the promise says (a number), else `end`.
async fn wait_for(arrived: &js_sys::Function, end: u64) -> Result<u64, StreamFailure> {
    let promise = arrived
        .call1(&JsValue::NULL, &JsValue::from_f64(end as f64))
        .map_err(StreamFailure::Download)?;
    let promise = js_sys::Promise::resolve(&promise);
    let got = wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .map_err(StreamFailure::Download)?;
    // A count past 2⁵³ or negative is not one: `end` stands.
    Ok(got
        .as_f64()
        .filter(|n| n.is_finite() && *n >= 0.0 && *n < 9.0e15)
        .map_or(end, |n| (n as u64).max(end)))
}

/// The bytes known to have arrived, and the content hash taken as they do
/// ([`StreamHash`]).
struct Arrival<'a> {
    arrived: &'a js_sys::Function,
    have: u64,
    hash: StreamHash,
}

impl Arrival<'_> {
    /// Waits until the first `end` bytes are in, hashing the data section's bytes as
    /// they arrive (while [`StreamHash`] keeps to it).
    async fn wait(&mut self, bytes: &JsBytes, end: u64) -> Result<(), StreamFailure> {
        self.hash.arrived(bytes, self.have, now_ms());
        while self.have < end {
            let next = self.hash.next_wait(self.have, end);
            let got = wait_for(self.arrived, next).await?;
            self.have = got.clamp(next, bytes.byte_len());
            self.hash.arrived(bytes, self.have, now_ms());
        }
        Ok(())
    }
}

/// [`Recommender::from_source`] with the search index left in its section
/// ([`Recommender::from_open_leaving_search`]), copied out after the build
/// ([`WasmRecommender::prepare_search`] decodes it); a checksum or hash mismatch is the
/// error whatever the build reports, as natively. The load runs in the steps of
/// [`ArrivingLoad`].
///
/// A file with a `data_crc32` (every file `vitrine` and the PyTorch trainer write since
/// it exists) has that checksum taken here: as the bytes arrive with `arrived` (the file
/// still downloading, [`WasmRecommender::from_stream`]), else once the file is open.
/// An older file's SHA-256 is taken by WebCrypto (started as soon as the file is opened,
/// or, on a streamed load, after the last byte), or here where WebCrypto is missing; on
/// a download slower than [`FAST_DOWNLOAD`](crate::recommend::arriving::FAST_DOWNLOAD)
/// here as the bytes arrive ([`StreamHash`]). Chromium's `crypto.subtle.digest` copies
/// and hashes on the calling thread before it returns (measured: 38–45 ms for 18 MiB,
/// 182 ms for 64 MiB), so the SHA-256 adds to the load wherever it is taken; the CRC-32
/// costs a fraction of it (`docs/benchmarks/engines-log.md`, "A checksum instead of the
/// SHA-256 on load").
async fn load_arriving(
    bytes: &JsBytes,
    arrived: Option<&js_sys::Function>,
) -> Result<(Recommender, Option<JsSection>), StreamFailure> {
    let mut load = ArrivingLoad::new(bytes);
    let mut arrival = arrived.map(|arrived| Arrival {
        arrived,
        have: 0,
        hash: StreamHash::default(),
    });
    let mut job = None;
    // Whether the check has been set going (once the header, or for a whole file's
    // WebCrypto job the opening, says what it covers).
    let mut started = false;
    while let Some(end) = load.needs() {
        if let Some(a) = &mut arrival {
            a.wait(bytes, end).await?;
        }
        load.advance();
        if started {
            continue;
        }
        let (Some(range), Some(check)) = (load.data_section(), load.hash_check()) else {
            continue;
        };
        match &mut arrival {
            Some(a) => {
                a.hash.start(&check, range.start, a.have, now_ms());
                a.hash.arrived(bytes, a.have, now_ms());
                started = true;
            }
            None if load.is_open() => {
                if !check.has_crc() {
                    job = Some(start_sha256(&bytes.0, range.start as u32..range.end as u32));
                }
                started = true;
            }
            None => {}
        }
    }
    let done = load.finish()?;
    let range = done.data_section();
    let check = done.check();
    let taken = match &mut arrival {
        Some(a) => {
            a.wait(bytes, bytes.byte_len()).await?;
            std::mem::take(&mut a.hash).finish()
        }
        None => None,
    };
    let job = match (check.has_crc(), taken, job) {
        (true, _, _) | (false, Some(_), _) => None,
        (false, None, Some(job)) => Some(job),
        (false, None, None) => Some(start_sha256(&bytes.0, range.start as u32..range.end as u32)),
    };
    // The kernel's first calls, short ones, before the first request (`warm_up`).
    let built = done.build().map(|engine| {
        engine.warm_up();
        let section = engine.search_section().map(|r| JsSection::copy(bytes, r));
        (engine, section)
    });
    let checked = if check.has_crc() {
        let found = match taken {
            Some(Taken::Crc32(found)) => found,
            _ => check.crc_of(bytes, range),
        };
        check.compare_crc(found)
    } else {
        let found = match (taken, job) {
            (Some(Taken::Sha256(found)), _) => found,
            (_, job) => finish_digest(job.flatten(), bytes, range).await,
        };
        check.compare(to_hex(&found))
    };
    checked.map_err(RecommendError::from)?;
    Ok(built?)
}

/// The SHA-256 a [`start_sha256`] job resolves to, or (no job, or a rejected one) the
/// one taken here in wasm: the same digest.
async fn finish_digest(
    job: Option<wasm_bindgen_futures::JsFuture>,
    bytes: &JsBytes,
    range: std::ops::Range<u64>,
) -> [u8; 32] {
    if let Some(job) = job {
        if let Some(digest) = finish_sha256(job).await {
            return digest;
        }
    }
    sha256_of_range(bytes, range)
}

/// A load's options, checked, and the digest its `integrity` option names.
fn load_options(options: &JsValue) -> Result<(LoadOptions, Option<String>), JsError> {
    let opts: LoadOptions = parse_options(options, "options").map_err(js_err)?;
    opts.history_limits
        .validate()
        .map_err(|e| js_err(OptionsError::HistoryLimits(e.to_string())))?;
    let integrity = (opts.integrity.as_deref())
        .map(js_options::integrity_digest)
        .transpose()
        .map_err(js_err)?;
    Ok((opts, integrity))
}

/// A weight file's error as the `Error` a load throws.
fn load_error(e: RecommendError) -> JsError {
    JsError::new(&format!("cannot load the weight file: {e}"))
}

/// [`load_error`], or the download's rejection as it is.
fn stream_error(e: StreamFailure) -> JsValue {
    match e {
        StreamFailure::File(e) => load_error(e).into(),
        StreamFailure::Download(e) => e,
    }
}

/// Any error as the `Error` JavaScript sees.
fn js_err(e: impl Display) -> JsError {
    JsError::new(&e.to_string())
}

/// A Rust value as a plain JavaScript value.
fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsError> {
    js_options::to_js(value).map_err(|e| JsError::new(&e))
}

/// [`js_options::to_js_json`] with a thrown `Error` on failure: the per-request results.
fn to_js_json<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsError> {
    js_options::to_js_json(value).map_err(|e| JsError::new(&e))
}

/// A loaded model serving recommendations in the browser (JavaScript name
/// `Recommender`).
#[wasm_bindgen(js_name = Recommender)]
pub struct WasmRecommender {
    engine: Recommender,
    scorer: Scorer,
    storage: HistoryStorage,
    size_bytes: usize,
    stats: RefCell<Stats>,
    /// The search index's section until the first `search()` or `prepareSearch()`
    /// decodes it; after a failed decode, that error's message (the copy dropped). A
    /// cell, so that neither needs `&mut self`: a `recommend()` awaiting the GPU holds
    /// `&self`, and a search meanwhile must not fail on the borrow.
    search_section: RefCell<Option<Result<JsSection, String>>>,
}

#[wasm_bindgen(js_class = Recommender)]
impl WasmRecommender {
    /// Loads a weight file. `options`: `{ backend?: 'auto'|'webgpu'|'simd'|'scalar',
    /// integrity?: 'sha256-<hex>', namespace?: string (the store; default the page's
    /// origin), storage?: 'local'|'memory', historyLimits?: { maxEvents, maxBytes,
    /// maxAgeDays, dedupWindowSecs } }`. With `localStorage`, the stored history is
    /// migrated here (old per-model keys merged in, unknown items dropped; see
    /// `historyInfo()`).
    ///
    /// `bytes` stays in JavaScript: the file is read from it a piece at a time
    /// ([`crate::format::ByteSource`]), never copied whole into wasm memory (which never
    /// shrinks, so a copy would count against the page for as long as it lives).
    #[wasm_bindgen(js_name = fromBytes)]
    pub async fn from_bytes(
        bytes: js_sys::Uint8Array,
        options: JsValue,
    ) -> Result<WasmRecommender, JsError> {
        let (opts, integrity) = load_options(&options)?;
        let bytes = JsBytes(bytes);
        // The integrity digest (the whole file) is WebCrypto's, started before the parse
        // (Chromium's takes it within this call, on this thread); the errors keep their
        // order: the integrity option, then the file.
        let whole = integrity
            .as_ref()
            .map(|_| start_sha256(&bytes.0, 0..bytes.0.length()));
        let loaded = load_arriving(&bytes, None).await;
        if let (Some(expected), Some(job)) = (integrity, whole) {
            let actual = finish_digest(job, &bytes, 0..bytes.byte_len()).await;
            js_options::compare_integrity(to_hex(&actual), expected).map_err(js_err)?;
        }
        // Without `arrived` there is no download to fail: only the file's errors.
        let (engine, search_section) = loaded.map_err(|e| match e {
            StreamFailure::File(e) => load_error(e),
            StreamFailure::Download(_) => JsError::new("the weight file's download failed"),
        })?;
        Self::serve(engine, search_section, bytes, opts).await
    }

    /// [`WasmRecommender::from_bytes`] while the file downloads: the same result, and
    /// the same errors in the same order, with each step of the load run as soon as the
    /// bytes it reads are in (the header, then the catalogue and int8 scales, then one
    /// tensor at a time: [`ArrivingLoad`]); the model is built once the last byte is in.
    ///
    /// `bytes` has the file's final length from the start and is filled in order by the
    /// page; `arrived(end)` returns a promise that resolves once its first `end` bytes
    /// are in (it may resolve later than that, never earlier), optionally to the number
    /// of bytes in by then. The content hash is taken as the bytes arrive while that keeps
    /// up with the download, else by WebCrypto after the last byte. A rejection (the download
    /// failed, or turned out longer or shorter than announced) ends the load with that
    /// rejection's value as it is.
    #[wasm_bindgen(js_name = fromStream)]
    pub async fn from_stream(
        bytes: js_sys::Uint8Array,
        arrived: js_sys::Function,
        options: JsValue,
    ) -> Result<WasmRecommender, JsValue> {
        let (opts, integrity) = load_options(&options)?;
        let bytes = JsBytes(bytes);
        let loaded = load_arriving(&bytes, Some(&arrived)).await;
        if let Some(expected) = integrity {
            // Before the file's own errors, as in `fromBytes`: so the whole file first.
            if let Err(StreamFailure::Download(e)) = &loaded {
                return Err(e.clone());
            }
            wait_for(&arrived, bytes.byte_len())
                .await
                .map_err(stream_error)?;
            let job = start_sha256(&bytes.0, 0..bytes.0.length());
            let actual = finish_digest(job, &bytes, 0..bytes.byte_len()).await;
            js_options::compare_integrity(to_hex(&actual), expected).map_err(js_err)?;
        }
        let (engine, search_section) = loaded.map_err(stream_error)?;
        Ok(Self::serve(engine, search_section, bytes, opts).await?)
    }

    /// The rest of a load, once the engine is built: the scorer (backend probe), the
    /// history storage (migrated), the stats.
    async fn serve(
        engine: Recommender,
        search_section: Option<JsSection>,
        bytes: JsBytes,
        opts: LoadOptions,
    ) -> Result<WasmRecommender, JsError> {
        let size_bytes = bytes.0.length() as usize;
        drop(bytes);
        let namespace = js_options::namespace(opts.namespace.as_deref()).map_err(js_err)?;
        let scorer = Self::scorer(&engine, opts.backend).await;
        if scorer.is_gpu() {
            // For GPU shortlists (a transient 13 bytes per item here, 8 on the GPU).
            scorer.set_items(&engine.item_attributes());
        }
        let storage = HistoryStorage::new(
            namespace,
            opts.namespace.is_some(),
            opts.history_limits,
            opts.storage == StorageOption::Local,
        );
        // After the last await: read, merge and write in one synchronous step.
        let legacy = storage.local_legacy_entries();
        let known = |id: &str| engine.item_index(id).is_some();
        storage.migrate(unix_now(), known, legacy);
        let stats = Stats {
            backend: scorer.name().to_string(),
            ..Stats::default()
        };
        Ok(WasmRecommender {
            engine,
            scorer,
            storage,
            size_bytes,
            stats: RefCell::new(stats),
            search_section: RefCell::new(search_section.map(Ok)),
        })
    }

    /// The active backend: `webgpu`, `simd` or `scalar` (changes if the GPU fails).
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.scorer.name().to_string()
    }

    /// Number of catalog items.
    #[wasm_bindgen(getter, js_name = nItems)]
    pub fn n_items(&self) -> usize {
        self.engine.n_items()
    }

    /// The `localStorage` key holding this store's history
    /// (`vitrine:v2:<namespace>:history`).
    #[wasm_bindgen(getter, js_name = storageKey)]
    pub fn storage_key(&self) -> String {
        self.storage.key().to_string()
    }

    /// The GPU adapter's description, when the backend is `webgpu`.
    #[wasm_bindgen(getter, js_name = adapterInfo)]
    pub fn adapter_info(&self) -> Option<String> {
        self.scorer.adapter_info()
    }

    /// Summary of the model: `{ items, dim, mlpHidden, quantization, contentHash, sizeBytes,
    /// formatVersion, categories, metrics, training, kinds: { trained, mapped } }`
    /// (`ModelInfo`; `kinds.trained` is `null` for a file that does not record them).
    #[wasm_bindgen(js_name = modelInfo)]
    pub fn model_info(&self) -> Result<JsValue, JsError> {
        let kinds = self.engine.model.kind_map();
        let info = ModelInfo::new(&self.engine.metadata, self.size_bytes, &kinds);
        let value = serde_json::to_value(&info)
            .map_err(|e| JsError::new(&format!("internal: cannot convert result: {e}")))?;
        to_js(&value)
    }

    /// The catalog for display: `{ ids, titles, categories (name per item), prices (number
    /// or null per item), categoryNames }`.
    pub fn catalog(&self) -> Result<JsValue, JsError> {
        let view = self.catalog_view();
        // Straight to JS values in batches: no JSON tree of the whole catalogue in wasm
        // memory (it took 105 MiB at 1,000,000 items, kept as the heap's high-water
        // mark), and no UTF-8 decode per string (`super::columns`).
        super::columns::catalog_to_js(&view)
    }

    /// The same catalog as typed arrays, for a Worker to transfer to its page: `{ ids,
    /// titles, categoryIndex, prices, categoryNames }`, each string column `{ text (UTF-8
    /// bytes), lens (UTF-16 length per string), segments (byte length, string count
    /// pairs) }`, prices `NaN` where unknown. `www/catalog.js` `unpackCatalog` turns it
    /// into `catalog()`'s object.
    #[wasm_bindgen(js_name = catalogPacked)]
    pub fn catalog_packed(&self) -> Result<JsValue, JsError> {
        super::columns::catalog_packed_to_js(&self.catalog_view())
    }

    /// Records an event `{ item, type: 'view'|'cart'|'purchase', at? }` (`at` in Unix
    /// seconds, default now). Unknown item ids throw.
    pub fn record(&self, event: JsValue) -> Result<(), JsError> {
        let ev = js_options::parse_event(&event).map_err(js_err)?;
        if self.engine.item_index(&ev.item).is_none() {
            return Err(JsError::new(&format!("unknown item id {:?}", ev.item)));
        }
        let at = js_options::event_time(ev.at, unix_now()).map_err(js_err)?;
        // Re-read, apply on top, write (another tab may have written meanwhile).
        let limits = self.storage.limits();
        let mut store = self.storage.read(unix_now());
        let event = StoredEvent {
            item: ev.item,
            kind: ev.kind,
            at,
        };
        store
            .record(event, limits)
            .map_err(|e| JsError::new(&format!("event: {e}")))?;
        store.prune(unix_now().max(at), limits);
        self.storage.write(&store);
        Ok(())
    }

    /// Recommendations for the stored history and `options` (see `RecommendOptions`):
    /// an array of `{ item, index, title, category, price, score, reasons }`.
    pub async fn recommend(&self, options: JsValue) -> Result<JsValue, JsError> {
        let opts: RecommendOptions =
            parse_options(&options, "recommend options").map_err(js_err)?;
        let t0 = now_ms();
        let stored = self.storage.read(unix_now()).entries();
        let (history, _unknown) = self.engine.resolve_history(&stored);
        let prepared = self.engine.prepare(&history, &opts).map_err(js_err)?;
        let t1 = now_ms();
        let read0 = self.scorer.bytes_read_back();
        // The GPU shortlist where the request allows it (crate::recommend::shortlist),
        // else every logit; `t2`: the scores are in, finishing starts.
        let mut done = None;
        if let (true, Some(q)) = (self.scorer.is_gpu(), &prepared.query) {
            if let Ok(plan) = self.engine.plan_shortlist(&prepared, &[]) {
                if let Some(got) = self.scorer.shortlist(q, &plan.request).await {
                    let t2 = now_ms();
                    let recs = self.engine.finish_shortlist(&prepared, &plan, &got);
                    done = recs.ok().map(|r| (r, t2));
                }
            }
        }
        let (recs, t2) = match done {
            Some(done) => done,
            None => {
                let logits = match &prepared.query {
                    Some(q) => self
                        .scorer
                        .scores(&self.engine.plan, q)
                        .await
                        .map_err(js_err)?,
                    None => vec![0.0; self.engine.n_items()],
                };
                let t2 = now_ms();
                (self.engine.finish_owned(&prepared, logits), t2)
            }
        };
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
            s.read_back_bytes = self.scorer.bytes_read_back().saturating_sub(read0);
            s.dot_form = self.scorer.dot_form().map(DotForm::name);
        }
        to_js_json(&recs)
    }

    /// Fills several shelves of one page in one call: `{ shelves: RecommendOptions[]
    /// (1 to 16, in priority order), dedup?: boolean (default true) }`. With `dedup`, no
    /// item appears on two shelves: each shelf leaves out what the shelves before it
    /// placed. Returns one array of recommendations per shelf. A bad shelf throws before
    /// any is scored, naming it (`shelves[1].context: unknown item id …`).
    pub async fn page(&self, request: JsValue) -> Result<JsValue, JsError> {
        let req: PageRequest = parse_options(&request, "page request").map_err(js_err)?;
        let t0 = now_ms();
        let stored = self.storage.read(unix_now()).entries();
        let (history, _unknown) = self.engine.resolve_history(&stored);
        let (prepared, mut state) = self.engine.prepare_page(&history, &req).map_err(js_err)?;
        let encode_ms = now_ms() - t0;
        let mut cache = PageCache::default();
        let mut shelves = Vec::with_capacity(prepared.len());
        let (mut score_ms, mut finish_ms) = (0.0, 0.0);
        for p in &prepared {
            let t1 = now_ms();
            if let (Some(q), None) = (&p.query, cache.get(p)) {
                let logits = self
                    .scorer
                    .scores(&self.engine.plan, q)
                    .await
                    .map_err(js_err)?;
                cache.put(p, logits);
            }
            let t2 = now_ms();
            let shelf = self
                .engine
                .finish_page(p, cache.get(p).unwrap_or(&[]), state.shown());
            state.add(&shelf);
            shelves.push(shelf);
            score_ms += t2 - t1;
            finish_ms += now_ms() - t2;
        }
        {
            // The page's totals over its shelves.
            let mut s = self.stats.borrow_mut();
            s.encode_ms = encode_ms;
            s.score_ms = score_ms;
            s.finish_ms = finish_ms;
            s.total_ms = now_ms() - t0;
            s.backend = self.backend();
            s.history_len = history.len();
            s.calls += 1;
            s.dot_form = self.scorer.dot_form().map(DotForm::name);
        }
        to_js_json(&shelves)
    }

    /// Searches the catalogue for `query` (a string; any text is safe), filtered by
    /// `options` `{ k?, filter?, exclude?, personalize?, facets? }` (see `SearchRequest`)
    /// and personalised by the stored history (as `recommend()` reads it). Returns
    /// `{ words, results: [{ item, index, title, category, price, score, textScore,
    /// reasons }], total, personalized, facets, suggestions }`. Throws an `Error` naming
    /// search when the weight file has no search index or a corrupt one, or for invalid
    /// options. The first call decodes the index ([`WasmRecommender::prepare_search`]).
    pub fn search(&self, query: JsValue, options: JsValue) -> Result<JsValue, JsError> {
        let query = js_options::parse_query(&query).map_err(js_err)?;
        let req: SearchRequest = parse_options(&options, "search options").map_err(js_err)?;
        self.prepare_search()?;
        let stored = self.storage.read(unix_now()).entries();
        let (history, _unknown) = self.engine.resolve_history(&stored);
        let res = (self.engine.search(&history, &query, &req))
            .map_err(|e| JsError::new(&format!("search: {e}")))?;
        to_js_json(&res)
    }

    /// Decodes the search index now (at 1,000,000 items about 0.25 s and a 26 MiB index
    /// in wasm memory), which the load leaves for the first `search()`: a page calls it
    /// when idle so that its first search answers at once. Does nothing once decoded, or for
    /// a file without an index. Throws an `Error` naming search when the index is
    /// corrupt (then `search()` throws the same; recommendations keep working).
    #[wasm_bindgen(js_name = prepareSearch)]
    pub fn prepare_search(&self) -> Result<(), JsError> {
        let failed = |m: &str| JsError::new(&format!("search: {m}"));
        let mut slot = self.search_section.borrow_mut();
        let outcome = match slot.as_ref() {
            None => return Ok(()),
            Some(Err(message)) => return Err(failed(message)),
            Some(Ok(section)) => self.engine.load_search_index(section),
        };
        match outcome {
            Ok(()) => {
                *slot = None;
                Ok(())
            }
            Err(e) => {
                let message = e.to_string();
                let e = failed(&message);
                *slot = Some(Err(message));
                Err(e)
            }
        }
    }

    /// The stored history, oldest first: `[{ item, type, at, title }]` (`title` is null
    /// for ids this model does not know).
    pub fn history(&self) -> Result<JsValue, JsError> {
        let events = self.storage.read(unix_now()).events;
        let titles = &self.engine.metadata.items.titles;
        let rows: Vec<HistoryRow> = events
            .iter()
            .map(|e| HistoryRow {
                item: &e.item,
                kind: e.kind,
                at: e.at,
                title: self
                    .engine
                    .item_index(&e.item)
                    .and_then(|i| titles.get(i as usize)),
            })
            .collect();
        to_js(&rows)
    }

    /// Deletes the stored history: with `localStorage`, every key starting with
    /// `vitrine:` (every namespace, old per-model keys included).
    #[wasm_bindgen(js_name = clearHistory)]
    pub fn clear_history(&self) {
        self.storage.clear_all();
    }

    /// The stored history as a JSON string `{"schema":1,"namespace":…,"events":[…]}`.
    #[wasm_bindgen(js_name = exportHistory)]
    pub fn export_history(&self) -> Result<String, JsError> {
        Ok(self.storage.read(unix_now()).to_json())
    }

    /// Replaces the stored history with an exported one (`exportHistory()` of any
    /// namespace or model). The export must be a string of at most 1,048,576 characters
    /// (checked before it is copied or parsed) holding a valid history (format, version,
    /// finite times; at most 5,000 events are read, the newest). Events of items this
    /// model does not know are skipped, not refused. Returns `{ kept, read, unknown: {
    /// events, ids }, overLimits }` (`ids`: the first 5 distinct unknown ids).
    #[wasm_bindgen(js_name = importHistory)]
    pub fn import_history(&self, json: JsValue) -> Result<JsValue, JsError> {
        let json = match bounded_string(&json, MAX_BYTES_CEILING) {
            Ok(Some(s)) => s,
            Ok(None) => return Err(JsError::new("importHistory: expected a JSON string")),
            Err(len) => {
                return Err(JsError::new(&format!(
                    "importHistory: the export is {len} characters, the limit is \
                     {MAX_BYTES_CEILING} (checked before parsing)"
                )))
            }
        };
        to_js(&self.import_str(&json).map_err(js_err)?)
    }

    /// Timings of the last `recommend()` or `page()` (a page: summed over its shelves):
    /// `{ encodeMs, scoreMs, finishMs, totalMs,
    /// backend, historyLen, calls, readBackBytes }` (`readBackBytes`: bytes read back
    /// from the GPU, a shortlist's candidates or every logit; 0 on the CPU).
    pub fn stats(&self) -> Result<JsValue, JsError> {
        to_js(&*self.stats.borrow())
    }

    /// The history limits in effect: `{ maxEvents, maxBytes, maxAgeDays, dedupWindowSecs }`.
    #[wasm_bindgen(js_name = historyLimits)]
    pub fn history_limits(&self) -> Result<JsValue, JsError> {
        to_js(self.storage.limits())
    }

    /// What the history store did: `{ namespace, storageKey, events, migratedKeys,
    /// unknown: { events, ids }, discarded }` (old keys merged in and events of unknown
    /// items dropped at load; stored values discarded as unreadable since).
    #[wasm_bindgen(js_name = historyInfo)]
    pub fn history_info(&self) -> Result<JsValue, JsError> {
        to_js(&self.storage.info(unix_now()))
    }

    /// Memory storage (workers): replaces the in-memory stored value with the main
    /// thread's copy of `localStorage` (a string, measured before it is copied; validated
    /// like a stored value when read).
    #[wasm_bindgen(js_name = setStoredHistory)]
    pub fn set_stored_history(&self, raw: JsValue) -> Result<(), JsError> {
        self.storage.set_memory(&raw).map_err(js_err)
    }

    /// Memory storage (workers): the load-time migration of `Recommender.fromBytes` with
    /// `localStorage`, for the page's old-layout keys handed over as `[[key, value],
    /// ...]` (at most 64 read; values over the size limit are discarded unread). Returns
    /// the keys consumed, for the page to remove.
    #[wasm_bindgen(js_name = migrateStoredHistory)]
    pub fn migrate_stored_history(&self, entries: JsValue) -> Result<Vec<String>, JsError> {
        if !self.is_memory() {
            return Err(js_err(NotMemoryStorage("migrateStoredHistory")));
        }
        let max = self.storage.limits().max_bytes;
        let legacy = if js_sys::Array::is_array(&entries) {
            (js_sys::Array::from(&entries).iter().take(MAX_LEGACY_KEYS))
                .filter_map(|pair| {
                    let pair = js_sys::Array::from(&pair);
                    let key = bounded_string(&pair.get(0), 1024).ok().flatten()?;
                    Some((key, bounded_string(&pair.get(1), max).ok().flatten()))
                })
                .collect()
        } else {
            Vec::new()
        };
        let known = |id: &str| self.engine.item_index(id).is_some();
        Ok(self.storage.migrate(unix_now(), known, legacy))
    }

    /// Resolves a concurrent write (another tab stored `theirs` while this call turned
    /// `base` into `mine`): the three-way merge of `HistoryStore::merge` on raw stored
    /// strings, returning the string to store (`undefined`: empty). Pure; the stored
    /// value is not changed.
    #[wasm_bindgen(js_name = mergeStoredHistory)]
    pub fn merge_stored_history(
        &self,
        base: JsValue,
        mine: JsValue,
        theirs: JsValue,
    ) -> Option<String> {
        let max = self.storage.limits().max_bytes;
        let get = |v: &JsValue| bounded_string(v, max).ok().flatten();
        let (base, mine, theirs) = (get(&base), get(&mine), get(&theirs));
        self.storage.merge_raw(
            base.as_deref(),
            mine.as_deref(),
            theirs.as_deref(),
            unix_now(),
        )
    }

    /// The raw stored value (what `localStorage` holds under `storageKey`), or
    /// `undefined` when there is none.
    #[wasm_bindgen(js_name = storedHistory)]
    pub fn stored_history(&self) -> Option<String> {
        self.storage.load_raw()
    }
}

impl WasmRecommender {
    /// The catalogue's columns as `catalog()` and `catalogPacked()` hand them over.
    fn catalog_view(&self) -> CatalogView<'_> {
        let m = &self.engine.metadata;
        let c = &m.items;
        CatalogView {
            ids: &c.ids,
            titles: &c.titles,
            categories: CategoryColumn {
                index: &c.category,
                names: &m.categories,
            },
            prices: &c.price,
            category_names: &m.categories,
        }
    }

    /// Whether the history is kept in memory (workers).
    fn is_memory(&self) -> bool {
        self.storage.is_memory()
    }

    /// `importHistory` on a string already measured: reads the export under the widest
    /// limits, skips unknown items, applies this store's limits, stores the result.
    fn import_str(&self, json: &str) -> Result<ImportReport, String> {
        let now = unix_now();
        let limits = self.storage.limits();
        let widest = HistoryLimits {
            max_events: MAX_EVENTS_CEILING,
            max_bytes: MAX_BYTES_CEILING,
            ..limits.clone()
        };
        let mut store = HistoryStore::adopt_json(json, self.storage.namespace(), &widest, now)
            .map_err(|e| format!("importHistory: {e}"))?;
        let read = store.events.len();
        let unknown = store.retain_known(|id| self.engine.item_index(id).is_some());
        let known = store.events.len();
        store.prune(now, limits);
        self.storage.write(&store);
        Ok(ImportReport {
            kept: store.events.len(),
            read,
            unknown,
            over_limits: known - store.events.len(),
        })
    }

    /// The scorer for the requested backend; `auto` times a probe query (the first
    /// catalog item as the context, no history).
    async fn scorer(engine: &Recommender, backend: BackendOption) -> Scorer {
        let choice = match backend {
            BackendOption::Scalar => BackendChoice::Cpu(CpuKernel::Scalar),
            BackendOption::Simd => BackendChoice::Cpu(CpuKernel::best()),
            BackendOption::Webgpu => BackendChoice::Gpu,
            BackendOption::Auto => BackendChoice::Auto,
        };
        let probe = (choice == BackendChoice::Auto)
            .then(|| {
                let probe = RecommendOptions {
                    context: engine.catalog().ids.first().map(str::to_owned),
                    ..RecommendOptions::default()
                };
                engine.prepare(&[], &probe).ok().and_then(|p| p.query)
            })
            .flatten();
        Scorer::new(&engine.plan, choice, probe.as_ref(), hooks()).await
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
    to_js(&BuildInfo {
        simd: crate::kernels::simd_build(),
        gpu: cfg!(feature = "gpu"),
        version: env!("CARGO_PKG_VERSION"),
    })
}
