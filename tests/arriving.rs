//! Loading a weight file while it downloads (`recommend::arriving`): no step reads a
//! byte before it has arrived, the engine is the one a load of the whole file builds,
//! and every defect gives the error a whole-file load gives, in the same order.
use std::cell::Cell;

use vitrine::format::{
    content_hash, peek_tensors, ByteSource, HashCheck, OpenFile, Quantization, WeightFile,
    CATALOG_TENSOR, SCALE_SUFFIX,
};
use vitrine::kernels::CpuKernel;
use vitrine::recommend::arriving::{
    ArrivingLoad, StreamHash, Taken, FAST_DOWNLOAD, HASH_LAG, HASH_STEP, RATE_WINDOW,
};
use vitrine::recommend::search::{attach_index, SearchRequest};
use vitrine::recommend::{RecommendOptions, Recommender};
mod common;
use common::fixtures::{history, resealed, tiny_weight_file, with_popularity, without_crc};

const N: usize = 96;

/// A file with every kind of section: int8 (or f32) tensors, the catalogue, the search
/// index and a popularity prior.
fn file() -> WeightFile {
    let mut file = tiny_weight_file(N, 11);
    with_popularity(&mut file);
    attach_index(&mut file).expect("index builds");
    file
}

/// The bytes of a download in progress: reading past what has arrived is a test failure.
struct Arriving<'a> {
    bytes: &'a [u8],
    arrived: Cell<u64>,
}

impl ByteSource for Arriving<'_> {
    fn byte_len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) {
        let end = offset + out.len() as u64;
        assert!(
            end <= self.arrived.get(),
            "read of {offset}..{end} with {} bytes arrived",
            self.arrived.get()
        );
        self.bytes.read_at(offset, out);
    }
}

/// A load as the browser runs it: each step once the bytes it reads are in, the hash
/// once all are, then the build. Returns the engine (its search index decoded, as a
/// whole-file load leaves it) or the error's text, and the `needs` of every step.
fn load_arriving(bytes: &[u8]) -> (Result<Recommender, String>, Vec<u64>) {
    let src = Arriving {
        bytes,
        arrived: Cell::new(0),
    };
    let mut load = ArrivingLoad::new(&src);
    let mut steps = Vec::new();
    while let Some(end) = load.needs() {
        assert!(end <= bytes.len() as u64, "needs {end} of {}", bytes.len());
        assert!(
            end >= src.arrived.get(),
            "needs went back: {steps:?}, then {end}"
        );
        src.arrived.set(end);
        steps.push(end);
        load.advance();
    }
    let done = match load.finish() {
        Ok(done) => done,
        Err(e) => return (Err(e.to_string()), steps),
    };
    src.arrived.set(bytes.len() as u64);
    let range = done.data_section();
    let check = done.check();
    let checked = if check.has_crc() {
        let found = check.crc_of(bytes, range);
        check.compare_crc(found)
    } else {
        check.compare(content_hash(
            &bytes[range.start as usize..range.end as usize],
        ))
    };
    if let Err(e) = checked {
        return (Err(e.to_string()), steps);
    }
    let built = done.build().and_then(|rec| {
        rec.load_search_index(bytes)?;
        Ok(rec)
    });
    (built.map_err(|e| e.to_string()), steps)
}

/// The whole-file load the browser made before (`from_open_leaving_search` after the
/// hash), with its search index decoded after it, as `load_arriving` does.
fn load_whole(bytes: &[u8]) -> Result<Recommender, String> {
    let load = || -> Result<Recommender, vitrine::recommend::RecommendError> {
        let open = OpenFile::open(bytes)?;
        open.check_hash()?;
        let rec = Recommender::from_open_leaving_search(open)?;
        rec.load_search_index(bytes)?;
        Ok(rec)
    };
    load().map_err(|e| e.to_string())
}

/// Recommendations and search results of `rec` on a few fixed histories.
fn answers(mut rec: Recommender) -> Vec<String> {
    rec.kernel = CpuKernel::Scalar;
    let mut out = Vec::new();
    for items in [&[][..], &[3][..], &[5, 17, 40, 2][..]] {
        let h = history(items);
        let recs = rec.recommend(&h, &RecommendOptions::default()).unwrap();
        out.push(format!("{recs:?}"));
        let found = rec.search(&h, "red candle", &SearchRequest::default());
        out.push(format!("{:?}", found.map(|r| r.results)));
    }
    out
}

#[test]
fn vitrine_writes_the_scales_and_the_catalogue_first() {
    for q in [Quantization::F32, Quantization::Int8] {
        let bytes = file().to_bytes(q).unwrap();
        let mut stored = peek_tensors(&bytes).unwrap();
        stored.sort_by_key(|t| t.data_offsets[0]);
        let names: Vec<&str> = stored.iter().map(|t| t.name.as_str()).collect();
        let scales = names.iter().filter(|n| n.ends_with(SCALE_SUFFIX)).count();
        assert_eq!(q == Quantization::Int8, scales > 0, "{names:?}");
        assert!(
            names[..scales].iter().all(|n| n.ends_with(SCALE_SUFFIX)),
            "{names:?}"
        );
        assert_eq!(names[scales], CATALOG_TENSOR, "{names:?}");
        let mut rest = names[scales + 1..].to_vec();
        rest.sort_unstable();
        assert_eq!(rest, names[scales + 1..], "the rest by name");
        // The same file as the one in name order, whatever the layout: every tensor
        // decodes to the same values.
        let again = WeightFile::from_bytes(&bytes).unwrap().to_bytes(q).unwrap();
        assert_eq!(again, bytes, "deterministic");
    }
}

#[test]
fn a_load_reads_each_byte_after_it_arrives_and_builds_the_same_engine() {
    for q in [Quantization::F32, Quantization::Int8] {
        let bytes = file().to_bytes(q).unwrap();
        let (got, steps) = load_arriving(&bytes);
        let got = got.expect("loads");
        let want = load_whole(&bytes).expect("loads");
        assert_eq!(answers(got), answers(want), "{q:?}");

        // Opened once the scales and the catalogue are in, well before the end; then
        // a tensor at a time.
        let data = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap());
        let catalog = (peek_tensors(&bytes).unwrap().into_iter())
            .find(|t| t.name == CATALOG_TENSOR)
            .unwrap();
        assert_eq!(steps[..2], [8, data], "{q:?}: {steps:?}");
        assert_eq!(steps[2], data + catalog.data_offsets[1], "{q:?}: {steps:?}");
        assert!(steps[2] < bytes.len() as u64 / 2, "{q:?}: {steps:?}");
        let tensors = peek_tensors(&bytes).unwrap().len();
        assert!(steps.len() > tensors / 2, "{q:?}: {steps:?}");
        assert_eq!(steps.last(), Some(&(bytes.len() as u64)), "{q:?}");
    }
}

/// A file written in name order (as `vitrine` wrote before the scales moved first)
/// loads the same, opened later (its scales sit after their tensors).
#[test]
fn a_file_in_name_order_loads_alike() {
    let bytes = file().to_bytes(Quantization::Int8).unwrap();
    let reordered = resealed(&in_name_order(&bytes));
    assert_ne!(reordered, bytes);
    let (got, steps) = load_arriving(&reordered);
    let want = load_whole(&bytes).expect("loads");
    assert_eq!(answers(got.expect("loads")), answers(want));
    let (_, new_steps) = load_arriving(&bytes);
    assert!(steps[2] > new_steps[2], "{steps:?} against {new_steps:?}");
}

/// `bytes` rewritten with the data section in name order (the header rebuilt with the
/// new offsets; the content hash and checksum are the old ones until [`resealed`]).
fn in_name_order(bytes: &[u8]) -> Vec<u8> {
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let data_start = 8 + header_len;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..data_start]).unwrap();
    let mut data = Vec::new();
    let mut out_header = serde_json::Map::new();
    for (name, entry) in &header {
        let mut entry = entry.clone();
        if let Some(offsets) = entry.get_mut("data_offsets") {
            let [b, e] = [0, 1].map(|i| offsets[i].as_u64().unwrap() as usize);
            let begin = data.len();
            data.extend_from_slice(&bytes[data_start + b..data_start + e]);
            *offsets = serde_json::json!([begin, data.len()]);
        }
        out_header.insert(name.clone(), entry);
    }
    let mut text = serde_json::to_string(&out_header).unwrap();
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&data);
    out
}

/// Every defect, in the header or in the data, sealed by the checksum and hash or not:
/// the same error as the whole-file load, or both load; in files with a `data_crc32` and
/// in files without one (their SHA-256 checked).
#[test]
fn every_defect_gives_the_whole_file_loads_error() {
    for (q, legacy) in [Quantization::F32, Quantization::Int8]
        .into_iter()
        .flat_map(|q| [(q, false), (q, true)])
    {
        let bytes = file().to_bytes(q).unwrap();
        let bytes = if legacy { without_crc(&bytes) } else { bytes };
        let data_start = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let mut errors = std::collections::BTreeSet::new();
        let step = (bytes.len() / 300).max(1);
        for at in (0..bytes.len())
            .step_by(step)
            .chain([0, 3, 7, 8, data_start])
        {
            for flip in [0x01u8, 0x80] {
                let mut bad = bytes.clone();
                bad[at] ^= flip;
                let cases = if at >= data_start {
                    vec![resealed(&bad), bad]
                } else {
                    vec![bad]
                };
                for bad in cases {
                    let want = load_whole(&bad).map(answers);
                    let got = load_arriving(&bad).0.map(answers);
                    assert_eq!(got, want, "{q:?}, legacy {legacy}: byte {at} ^ {flip:#x}");
                    if let Err(e) = want {
                        errors.insert(e.split(':').next().unwrap_or("").to_string());
                    }
                }
            }
        }
        // Header, checksum (or hash) and decoding errors were all among them.
        assert!(errors.len() >= 4, "{q:?}: {errors:?}");
        let mismatch = if legacy {
            "weight file content hash mismatch"
        } else {
            "weight file checksum mismatch"
        };
        assert!(errors.contains(mismatch), "{q:?}: {errors:?}");
    }
}

/// Shorter and longer sources than the header announces: the same errors.
#[test]
fn truncated_and_padded_files_give_the_same_errors() {
    let bytes = file().to_bytes(Quantization::Int8).unwrap();
    for len in [0, 5, 8, 9, 100, bytes.len() / 2, bytes.len() - 1] {
        let cut = &bytes[..len];
        let want = load_whole(cut).map(answers);
        assert!(want.is_err(), "{len}");
        assert_eq!(load_arriving(cut).0.map(answers), want, "{len} bytes");
    }
    let mut padded = bytes.clone();
    padded.extend_from_slice(&[0; 9]);
    let want = load_whole(&padded).map(answers);
    assert!(want.is_err());
    assert_eq!(load_arriving(&padded).0.map(answers), want);
}

/// A [`vitrine::format::ByteSource`] over bytes that counts the bytes read.
struct Counting<'a> {
    bytes: &'a [u8],
    read: std::cell::Cell<u64>,
}

impl vitrine::format::ByteSource for Counting<'_> {
    fn byte_len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) {
        self.read.set(self.read.get() + out.len() as u64);
        self.bytes.read_at(offset, out);
    }
}

/// The content hash of a streamed load: nothing is read while the download rate is
/// measured over the first window; then taken as the bytes arrive (the window's bytes
/// first) when the download is slow, left to the caller (WebCrypto) when it is fast,
/// when the hash falls behind, or when the file ends within the window.
#[test]
fn a_stream_hash_follows_slow_downloads_and_leaves_fast_ones() {
    let mut rng = vitrine::rng::SplitMix64::new(9);
    let len = RATE_WINDOW as usize * 3 + 12_345;
    let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
    let data_start = 4_096u64;
    let digest = vitrine::format::sha256_of_range(&bytes[..], data_start..len as u64);
    let digest = Some(Taken::Sha256(digest));
    let sha = sha_check();
    // Arrival at `rate` bytes per ms, waiting as the hash asks; the digest, if taken,
    // the waits, and the bytes read when the window's end arrived.
    let stream = |rate: f64, first: u64| {
        let src = Counting {
            bytes: &bytes,
            read: std::cell::Cell::new(0),
        };
        let mut h = StreamHash::default();
        assert!(!h.is_started());
        h.start(&sha, data_start, first, 0.0);
        assert!(h.is_started());
        let mut have = first;
        h.arrived(&src, have, 0.0);
        let (mut waits, mut read_in_window) = (0, None);
        while have < len as u64 {
            let next = h.next_wait(have, len as u64);
            assert!(next > have && next <= len as u64);
            waits += 1;
            if have < first + RATE_WINDOW && next >= first + RATE_WINDOW {
                read_in_window = Some(src.read.get());
            }
            have = next;
            h.arrived(&src, have, (have - first) as f64 / rate);
        }
        (h.finish(), waits, read_in_window)
    };
    // 10 MB/s: one wait for the window (nothing read meanwhile), then hashed as it
    // arrives, a step at a time.
    let (got, waits, read) = stream(FAST_DOWNLOAD / 10.0, data_start);
    assert_eq!(got, digest);
    assert_eq!(read, Some(0));
    let after_window = len as u64 - data_start - RATE_WINDOW;
    assert_eq!(waits, 1 + after_window.div_ceil(HASH_STEP) as usize);
    // Just under the threshold: still here; and from bytes already past the header.
    assert_eq!(stream(FAST_DOWNLOAD * 0.9, data_start).0, digest);
    assert_eq!(stream(FAST_DOWNLOAD * 0.9, data_start + 5_000).0, digest);
    // 10× the threshold: left to the caller, who then waits for the end in one go;
    // nothing was read.
    let (got, waits, read) = stream(FAST_DOWNLOAD * 10.0, data_start);
    assert_eq!((got, waits, read), (None, 2, Some(0)));
    // Bytes already in, far ahead of the hash (more than HASH_LAG): left to the caller.
    let mut h = StreamHash::default();
    h.start(&sha, data_start, data_start, 0.0);
    h.arrived(&bytes[..], data_start + HASH_LAG + 1, 1e9);
    assert_eq!(h.next_wait(data_start, len as u64), len as u64);
    assert_eq!(h.finish(), None);
    // A file that ends within the rate's window: left to the caller, whatever the speed.
    let mut h = StreamHash::default();
    h.start(&sha, data_start, data_start, 0.0);
    h.arrived(&bytes[..], RATE_WINDOW, 1e-9);
    assert_eq!(h.next_wait(RATE_WINDOW, RATE_WINDOW + 10), RATE_WINDOW + 10);
    assert_eq!(h.finish(), None);
    // Never started: nothing taken.
    assert_eq!(StreamHash::default().finish(), None);
}

/// What a file without `data_crc32` declares: its SHA-256 only.
fn sha_check() -> HashCheck {
    let mut m =
        vitrine::format::peek_metadata(&file().to_bytes(Quantization::F32).unwrap()).unwrap();
    assert!(m.data_crc32.is_some(), "vitrine writes data_crc32");
    m.data_crc32 = None;
    HashCheck::of(&m)
}

/// A file with a `data_crc32` has it taken as the bytes arrive at any rate (no window,
/// no lag limit: a step at a time from the data section's start), over the
/// `content_hash` digits and the data section: [`vitrine::format::data_crc32`].
#[test]
fn a_stream_takes_the_checksum_as_the_bytes_arrive_at_any_rate() {
    let mut rng = vitrine::rng::SplitMix64::new(11);
    let len = RATE_WINDOW as usize * 3 + 777;
    let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
    let data_start = 4_096u64;
    let mut m =
        vitrine::format::peek_metadata(&file().to_bytes(Quantization::F32).unwrap()).unwrap();
    let hash = m.content_hash.clone();
    m.data_crc32 = Some("00000000".into());
    let check = HashCheck::of(&m);
    assert!(check.has_crc() && !sha_check().has_crc());
    let want = vitrine::format::data_crc32(&hash, &bytes[data_start as usize..]);
    assert_eq!(check.crc_of(&bytes[..], data_start..len as u64), want);
    for rate in [FAST_DOWNLOAD * 100.0, FAST_DOWNLOAD / 10.0] {
        let src = Counting {
            bytes: &bytes,
            read: std::cell::Cell::new(0),
        };
        let mut h = StreamHash::default();
        h.start(&check, data_start, data_start, 0.0);
        let mut have = data_start;
        h.arrived(&src, have, 0.0);
        let mut waits = 0;
        while have < len as u64 {
            let next = h.next_wait(have, len as u64);
            assert!(next > have && next <= len as u64);
            waits += 1;
            have = next;
            h.arrived(&src, have, (have - data_start) as f64 / rate);
            // Nothing is left behind: every byte in is taken.
            assert_eq!(src.read.get(), have - data_start, "rate {rate}");
        }
        assert_eq!(h.finish(), Some(Taken::Crc32(want)), "rate {rate}");
        assert_eq!(
            waits,
            (len as u64 - data_start).div_ceil(HASH_STEP) as usize
        );
    }
    // Bytes far ahead (past HASH_LAG, which stops a SHA-256 here): still taken here.
    let mut h = StreamHash::default();
    h.start(&check, data_start, data_start, 0.0);
    h.arrived(&bytes[..], len as u64, 1e-9);
    assert_eq!(h.finish(), Some(Taken::Crc32(want)));
}
