#![cfg(not(target_arch = "wasm32"))]
//! The fuzz targets' inputs in the normal suite: every committed seed and crash
//! reproducer under `tests/data/fuzz/<target>/` goes through the same entry function the
//! cargo-fuzz target runs (`fuzz/entries.rs`, included here), so an input that once
//! crashed vitrine fails this suite if it ever does again. The fixture model's weight
//! files (every quantization, with and without a search index) are generated here rather
//! than committed. `docs/fuzzing.md` says how to run the fuzzers and add a reproducer.
use std::path::{Path, PathBuf};

use vitrine::format::{FormatError, WeightFile};

#[path = "../fuzz/entries.rs"]
mod entries;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz")
        .join(target)
}

/// The committed inputs of `target` (sorted by name); fails when there are none.
fn committed(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, bytes)
        })
        .collect();
    out.sort();
    assert!(
        !out.is_empty(),
        "{} holds no inputs for the {target} target",
        dir.display()
    );
    out
}

/// Runs `entry` on each input; fails naming every input that panicked.
fn run_all(entry: entries::Entry, inputs: &[(PathBuf, Vec<u8>)]) {
    let failed: Vec<String> = inputs
        .iter()
        .filter(|(_, bytes)| std::panic::catch_unwind(|| entry(bytes)).is_err())
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(failed.is_empty(), "inputs that panic: {failed:#?}");
}

#[test]
fn every_committed_input_runs_without_a_panic() {
    for (target, entry) in entries::TARGETS {
        run_all(entry, &committed(target));
    }
}

#[test]
fn fixture_weight_files_run_without_a_panic() {
    let seeds: Vec<(PathBuf, Vec<u8>)> = entries::fixture_weight_seeds()
        .into_iter()
        .map(|(name, bytes)| (PathBuf::from(name), bytes))
        .collect();
    assert_eq!(seeds.len(), 12, "3 quantizations × index or not × 2 modes");
    run_all(entries::weight_file, &seeds);
}

/// The re-hashing mode works: a file with one tensor byte changed fails its checksum
/// as it is, and loads once re-hashed, so mutated files reach model construction.
#[test]
fn rehash_mode_lets_mutated_tensors_through_the_hash_check() {
    let (_, seed) = entries::fixture_weight_seeds().swap_remove(0);
    let mut bytes = seed[1..].to_vec();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x01;
    assert!(matches!(
        WeightFile::from_bytes(&bytes),
        Err(FormatError::ChecksumMismatch { .. })
    ));
    let fixed = entries::rehash(&bytes).expect("the container parses");
    WeightFile::from_bytes(&fixed).expect("the re-hashed file loads");
}

/// The committed ingest seeds are accepted by their loader (so the fuzzer starts from
/// inputs that reach the whole pipeline, not from early errors).
#[test]
fn committed_ingest_seeds_load() {
    use vitrine::data::{load_events_csv, load_online_retail, load_sequence_file};
    let opts = vitrine::data::LoadOptions::default();
    for (p, _) in committed("online_retail") {
        let (ds, _) = load_online_retail(&p, &opts).expect("the seed loads");
        assert!(ds.n_interactions() > 0, "{}", p.display());
    }
    let seed = |target: &str, name: &str| {
        std::fs::read(corpus_dir(target).join(name)).expect("the seed exists")
    };
    let names = ["events.csv", "items.csv"];
    let events = seed("events_csv", "events-and-items.csv");
    let (ds, report) = entries::with_split_files(&events, names, |e, i| {
        assert!(i.is_some(), "the seed has an items part");
        load_events_csv(e, i, &opts).expect("the seed loads")
    });
    assert!(ds.n_items() >= 3 && report.total_dropped() > 0, "{report}");
    let names = ["sequences.txt", "attrs.json"];
    let sequences = seed("sequence_file", "synthetic-with-attrs.txt");
    let (ds, _) = entries::with_split_files(&sequences, names, |s, a| {
        assert!(a.is_some(), "the seed has an attributes part");
        load_sequence_file(s, a, &opts).expect("the seed loads")
    });
    assert!(ds.n_users() >= 5);
}

/// The committed options seeds that should work do, on both calls.
#[test]
fn valid_options_seeds_work() {
    for name in [
        "empty.json",
        "null.json",
        "recommend-full.json",
        "search-typo.json",
    ] {
        let bytes = std::fs::read(corpus_dir("options").join(name)).expect("the seed exists");
        let (query, json) = match bytes.iter().position(|&b| b == 0) {
            Some(i) => (
                String::from_utf8_lossy(&bytes[..i]).into_owned(),
                &bytes[i + 1..],
            ),
            None => ("red mug".to_string(), &bytes[..]),
        };
        let value: serde_json::Value = serde_json::from_slice(json).expect("JSON");
        let out = entries::run_options(&value, &query);
        let works = |calls: &[Option<String>]| calls.iter().all(Option::is_none);
        if name.starts_with("search") {
            assert!(works(&out.search), "{name}: {out:?}");
        } else if name.starts_with("recommend") {
            assert!(works(&out.recommend), "{name}: {out:?}");
        } else {
            assert!(
                works(&out.search) && works(&out.recommend),
                "{name}: {out:?}"
            );
        }
    }
}
