//! The fuzz targets' entry points, one function per target, shared by the cargo-fuzz
//! binaries (`fuzz/fuzz_targets/*.rs`, on libFuzzer's inputs) and the normal test suite
//! (`tests/fuzz_regressions.rs`, on the committed seeds and crash reproducers under
//! `tests/data/fuzz/<target>/`). Both include this file with `#[path]`.
//!
//! Each entry feeds untrusted bytes to vitrine's public API the way production does and
//! accepts every typed error. It panics — a finding — only when vitrine panics, aborts
//! (out of memory, stack overflow), or an input vitrine accepted breaks a stated
//! invariant (checked with `assert!` below, each naming the rule).
//!
//! Input layouts (all targets: any bytes are a valid input):
//! - `weight_file`: one mode byte, then a weight file. Mode bit 0 set: before loading,
//!   the content hash in the metadata and the `search.index` section's SHA-256 are
//!   recomputed for the mutated bytes (when the container still parses), so mutations
//!   reach model construction instead of stopping at the hash check.
//! - `online_retail`: an Online Retail CSV (plain or gzip).
//! - `events_csv`: an events CSV, optionally `\0` and an items CSV.
//! - `sequence_file`: a sequence file, optionally `\0` and an item→attributes JSON.
//! - `options`: optionally a search query and `\0`, then the JSON an options object
//!   becomes in the browser (`JSON.stringify`); it is parsed as both `recommend()`'s and
//!   `search()`'s options and both are run on a tiny model with and without a history.
#![allow(dead_code)] // each fuzz binary uses one entry

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use serde_json::Value;
use sha2::{Digest, Sha256};
use vitrine::data::{
    self, load_events_csv, load_online_retail, load_sequence_file, Dataset, IngestReport,
    LoadOptions,
};
use vitrine::format::{
    data_crc32, validate_metadata, Metadata, Quantization, WeightFile, FORMAT_VERSION,
    SEARCH_INDEX_TENSOR,
};
use vitrine::history::{EventKind, HistoryEvent};
use vitrine::kernels::CpuKernel;
use vitrine::model::ModelConfig;
use vitrine::recommend::search::{attach_index, SearchRequest, SearchResponse};
use vitrine::recommend::{RecommendError, RecommendOptions, Recommendation, Recommender, MAX_K};
use vitrine::wasm::js_options::{options_from_json, OptionsError};

#[path = "../tests/common/fixtures.rs"]
mod fixtures;

/// A fuzz target's entry: any bytes in, a panic only for a finding.
pub type Entry = fn(&[u8]);

/// Every target: its name (the cargo-fuzz binary and the folder of its inputs under
/// `tests/data/fuzz/` and `fuzz/corpus/`) and its entry.
pub const TARGETS: [(&str, Entry); 5] = [
    ("weight_file", weight_file),
    ("online_retail", online_retail),
    ("events_csv", events_csv),
    ("sequence_file", sequence_file),
    ("options", options),
];

// ---------------------------------------------------------------------------------------
// Weight files.

/// Bytes → `WeightFile::from_bytes` → `Recommender` (model construction, catalogue and
/// search-index checks) → one `recommend()` on a short fixed history and, when the file
/// has a search index, one `search()`.
pub fn weight_file(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let fixed = if mode & 1 == 1 { rehash(body) } else { None };
    let bytes = fixed.as_deref().unwrap_or(body);
    let Ok(file) = WeightFile::from_bytes(bytes) else {
        return;
    };
    check_reencodes(&file);
    let Ok(mut rec) = Recommender::from_weight_file(file) else {
        return;
    };
    rec.kernel = CpuKernel::Scalar;
    let n = rec.n_items();
    let history: Vec<HistoryEvent> = (0..n.min(3) as u32)
        .map(|i| HistoryEvent {
            item: i,
            kind: EventKind::View,
            at: 1.7e9 + f64::from(i) * 60.0,
        })
        .collect();
    let options = RecommendOptions::default();
    check_recommendations(&rec, rec.recommend(&history, &options), options.k);
    if rec.search_index().is_some() {
        let title = rec.catalog().titles.first().unwrap_or_default().to_owned();
        let request = SearchRequest::default();
        for query in [title.as_str(), "red mug"] {
            check_search(&rec, rec.search(&history, query, &request), request.k);
        }
    }
}

/// The fixture model as `weight_file` seeds (name, bytes): each quantization, with
/// and without a search index, in the re-hashing mode (`scripts/fuzz.sh` seeds the
/// corpus with them; `tests/fuzz_regressions.rs` runs the same files).
pub fn fixture_weight_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for with_index in [false, true] {
        let mut file = fixtures::tiny_weight_file(10, 3);
        if with_index {
            attach_index(&mut file).expect("the fixture's index builds");
        }
        for q in [Quantization::F32, Quantization::F16, Quantization::Int8] {
            let bytes = file.to_bytes(q).expect("the fixture encodes");
            for mode in [0u8, 1] {
                let name = format!("fixture-{q:?}-index-{with_index}-mode-{mode}");
                let mut input = vec![mode];
                input.extend_from_slice(&bytes);
                out.push((name, input));
            }
        }
    }
    out
}

/// An accepted file is one the writer accepts too, and its f32 re-encoding loads back
/// to the same tensors (the reader and the writer agree on the format).
fn check_reencodes(file: &WeightFile) {
    let bytes = file
        .to_bytes(Quantization::F32)
        .unwrap_or_else(|e| panic!("the reader accepted a file the writer refuses: {e}"));
    let back = WeightFile::from_bytes(&bytes)
        .unwrap_or_else(|e| panic!("an f32 re-encoding of an accepted file fails: {e}"));
    assert!(
        back.tensors == file.tensors,
        "an f32 re-encoding changes the tensors"
    );
}

/// The weight file `body` with its content hash, its checksum (where it has one) and its
/// `search.index` SHA-256 fixed for its current bytes; `None` when the container does not parse far enough.
pub fn rehash(body: &[u8]) -> Option<Vec<u8>> {
    let n = usize::try_from(u64::from_le_bytes(body.get(..8)?.try_into().ok()?)).ok()?;
    let header_end = n.checked_add(8)?;
    let mut header: Value = serde_json::from_slice(body.get(8..header_end)?).ok()?;
    let mut tensors = body[header_end..].to_vec();
    if let Some(range) = header.get(SEARCH_INDEX_TENSOR).and_then(byte_range) {
        if let Some(section) = tensors.get_mut(range).filter(|s| s.len() >= 44) {
            let digest = Sha256::digest(&section[44..]);
            section[12..44].copy_from_slice(&digest);
        }
    }
    let meta = header.get_mut("__metadata__")?.get_mut("vitrine")?;
    let mut metadata: Value = serde_json::from_str(meta.as_str()?).ok()?;
    let hash = hex(&Sha256::digest(&tensors));
    if let Some(crc) = metadata.get_mut("data_crc32") {
        *crc = Value::String(format!("{:08x}", data_crc32(&hash, &tensors)));
    }
    *metadata.get_mut("content_hash")? = Value::String(hash);
    *meta = Value::String(metadata.to_string());
    let header = header.to_string();
    let mut out = Vec::with_capacity(8 + header.len() + tensors.len());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&tensors);
    Some(out)
}

/// A header entry's `data_offsets` as a byte range.
fn byte_range(entry: &Value) -> Option<std::ops::Range<usize>> {
    let offsets = entry.get("data_offsets")?.as_array()?;
    let begin = usize::try_from(offsets.first()?.as_u64()?).ok()?;
    let end = usize::try_from(offsets.get(1)?.as_u64()?).ok()?;
    (begin <= end).then_some(begin..end)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------
// Ingestion.

/// Online Retail CSV bytes → `load_online_retail`, lenient and strict.
pub fn online_retail(data: &[u8]) {
    let file = TempFile::new("retail.csv", data);
    for opts in load_options() {
        check_dataset(load_online_retail(&file.0, &opts));
    }
}

/// Events CSV bytes (then `\0` and an items CSV, optionally) → `load_events_csv`,
/// lenient and strict.
pub fn events_csv(data: &[u8]) {
    with_split_files(data, ["events.csv", "items.csv"], |events, items| {
        for opts in load_options() {
            check_dataset(load_events_csv(events, items, &opts));
        }
    });
}

/// Sequence-file bytes (then `\0` and an attributes JSON, optionally) →
/// `load_sequence_file`, lenient and strict.
pub fn sequence_file(data: &[u8]) {
    with_split_files(data, ["sequences.txt", "attrs.json"], |sequences, attrs| {
        for opts in load_options() {
            check_dataset(load_sequence_file(sequences, attrs, &opts));
        }
    });
}

/// `data` split at its first `\0` into two temporary files (named after `names`; the
/// second only when there is a `\0`), passed to `load` as paths.
pub fn with_split_files<T>(
    data: &[u8],
    names: [&str; 2],
    load: impl FnOnce(&Path, Option<&Path>) -> T,
) -> T {
    let (first, second) = split_nul(data);
    let first = TempFile::new(names[0], first);
    let second = second.map(|b| TempFile::new(names[1], b));
    load(&first.0, second.as_ref().map(|f| f.0.as_path()))
}

fn load_options() -> [LoadOptions; 2] {
    let strict = LoadOptions {
        strict: true,
        ..LoadOptions::default()
    };
    [LoadOptions::default(), strict]
}

/// The ingest module's invariants on a dataset it accepted: every row read is kept or
/// counted under one reason; events point into the catalog and are sorted by time, one
/// sequence per user; the catalog passes the weight format's catalog rules (what the
/// trainer will write).
fn check_dataset(result: Result<(Dataset, IngestReport), data::DataError>) {
    let Ok((ds, report)) = result else {
        return;
    };
    assert_eq!(
        report.rows_read,
        report.rows_kept + report.total_dropped(),
        "every row is kept or counted under one reason: {report}"
    );
    assert_eq!(ds.sequences.len(), ds.users.len(), "one sequence per user");
    let n = ds.items.len();
    for seq in &ds.sequences {
        for pair in seq.windows(2) {
            assert!(pair[0].at <= pair[1].at, "a sequence is sorted by time");
        }
        for e in seq {
            assert!((e.item as usize) < n, "an event's item is in the catalog");
            assert!(e.at.is_finite(), "an event's time is finite");
        }
    }
    let metadata = Metadata {
        format_version: FORMAT_VERSION,
        model: ModelConfig::default_for(n, 1, 64),
        categories: vec!["unknown".into()],
        items: data::catalog(&ds.items, vec![0; n]),
        features: Value::Null,
        training: Value::Null,
        metrics: Value::Null,
        quantization: Quantization::F32,
        content_hash: String::new(),
        data_crc32: None,
        trained_kinds: None,
    };
    if let Err(e) = validate_metadata(&metadata) {
        panic!("ingest returned a catalog the weight format refuses: {e}");
    }
}

/// `data` split at its first `\0`: (before, after), or (data, None).
fn split_nul(data: &[u8]) -> (&[u8], Option<&[u8]>) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    }
}

/// A file holding some bytes, removed on drop (the loaders read paths). Unique per
/// process and call, so tests running in parallel threads do not share one.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> TempFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("vitrine-fuzz-{}-{id}-{name}", std::process::id()));
        std::fs::write(&path, bytes).expect("the temporary directory is writable");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// ---------------------------------------------------------------------------------------
// Options.

/// The tiny model the options target runs on (with a search index).
pub fn tiny_recommender() -> &'static Recommender {
    static REC: OnceLock<Recommender> = OnceLock::new();
    REC.get_or_init(|| {
        let mut file = fixtures::tiny_weight_file(24, 7);
        attach_index(&mut file).expect("the fixture's index builds");
        let mut rec = Recommender::from_weight_file(file).expect("the fixture loads");
        rec.kernel = CpuKernel::Scalar;
        rec
    })
}

/// A short history on the tiny model (views, a cart, a purchase).
pub fn tiny_history() -> Vec<HistoryEvent> {
    fixtures::history(&[3, 5, 8, 13])
}

/// Query and options JSON → the browser's JSON → options path
/// ([`options_from_json`]) → `recommend()` and `search()` on the tiny model, with the
/// fixed history and without.
pub fn options(data: &[u8]) {
    let (query, json) = match split_nul(data) {
        (q, Some(json)) => (String::from_utf8_lossy(q).into_owned(), json),
        (json, None) => ("red mug".to_string(), json),
    };
    let Ok(value) = serde_json::from_slice::<Value>(json) else {
        return;
    };
    let _ = run_options(&value, &query);
}

/// The outcome of one options value: each call's error message (`None`: it worked).
#[derive(Debug, Default)]
pub struct OptionsOutcome {
    /// `recommend()`'s options: the parse error, or each call's error (with and without
    /// history).
    pub recommend: Vec<Option<String>>,
    /// `search()`'s options, likewise.
    pub search: Vec<Option<String>>,
}

/// Runs `value` as `recommend()` and `search()` options (with `query`) on the tiny model,
/// checking every result list; returns what each call said.
pub fn run_options(value: &Value, query: &str) -> OptionsOutcome {
    let rec = tiny_recommender();
    let history = tiny_history();
    let histories: [&[HistoryEvent]; 2] = [&history, &[]];
    let mut out = OptionsOutcome::default();
    let parsed: Result<RecommendOptions, OptionsError> =
        options_from_json(Some(value.clone()), "recommend options");
    match parsed {
        Ok(o) => {
            for h in histories {
                let r = rec.recommend(h, &o);
                out.recommend
                    .push(r.as_ref().err().map(ToString::to_string));
                check_recommendations(rec, r, o.k);
            }
        }
        Err(e) => out.recommend.push(Some(e.to_string())),
    }
    let parsed: Result<SearchRequest, OptionsError> =
        options_from_json(Some(value.clone()), "search options");
    match parsed {
        Ok(r) => {
            for h in histories {
                let s = rec.search(h, query, &r);
                out.search.push(s.as_ref().err().map(ToString::to_string));
                check_search(rec, s, r.k);
            }
        }
        Err(e) => out.search.push(Some(e.to_string())),
    }
    out
}

/// A result list: at most `k` items, each a catalog item once, with a number as score.
fn check_recommendations(
    rec: &Recommender,
    result: Result<Vec<Recommendation>, RecommendError>,
    k: usize,
) {
    let list = match result {
        Ok(list) => list,
        Err(e) => return assert!(!e.to_string().is_empty(), "an error has a message"),
    };
    assert!(list.len() <= k.min(MAX_K), "at most k results");
    let mut seen = vec![false; rec.n_items()];
    for r in &list {
        let i = r.index as usize;
        assert!(
            i < seen.len() && !seen[i],
            "each result a catalog item, once"
        );
        seen[i] = true;
        assert!(!r.score.is_nan(), "score of {} is NaN", r.item);
    }
}

/// A search response: at most `k` results, each a catalog item once, scores numbers.
fn check_search(rec: &Recommender, result: Result<SearchResponse, RecommendError>, k: usize) {
    let response = match result {
        Ok(r) => r,
        Err(e) => return assert!(!e.to_string().is_empty(), "an error has a message"),
    };
    assert!(response.results.len() <= k.min(MAX_K), "at most k results");
    let mut seen = vec![false; rec.n_items()];
    for r in &response.results {
        let i = r.index as usize;
        assert!(
            i < seen.len() && !seen[i],
            "each result a catalog item, once"
        );
        seen[i] = true;
        assert!(
            !r.score.is_nan() && !r.text_score.is_nan(),
            "score of {} is NaN",
            r.item
        );
    }
}
