//! Weight-file reader/writer: round trips per quantization, content hash, every
//! corruption case and its error variant, hand-written safetensors files, and a byte-flip
//! fuzz loop. The test files are built by hand (no `Model` methods).
use std::collections::BTreeMap;

use serde_json::{json, Value};
use vitrine::format::crc32::{crc32, crc32_bitwise, Crc32};
use vitrine::format::{
    content_hash, data_crc32, peek_metadata, peek_tensors, Dtype, FormatError, ItemCatalog,
    Metadata, OptColumn, Quantization, Tensor, TensorData, WeightFile, FORMAT_VERSION,
    MAX_HEADER_LEN,
};
use vitrine::model::ModelConfig;
use vitrine::rng::SplitMix64;

mod common;
use common::fixtures::without_crc;

/// Deterministic pseudo-random numbers for test data and fuzzing (the crate's SplitMix64).
struct Rng(SplitMix64);

impl Rng {
    /// Uniform in [-1, 1).
    fn f32(&mut self) -> f32 {
        self.0.next_f32() * 2.0 - 1.0
    }
    fn below(&mut self, n: usize) -> usize {
        self.0.below(n as u64) as usize
    }
}

fn config(n_items: usize) -> ModelConfig {
    ModelConfig {
        n_items,
        n_categories: 3,
        n_token_buckets: 16,
        dim: 8,
        n_blocks: 1,
        n_heads: 2,
        max_len: 10,
        ffn_dim: 16,
        mlp_hidden: vec![8],
        n_recency_buckets: 4,
        gated: false,
        swiglu: false,
    }
}

fn metadata(n_items: usize) -> Metadata {
    Metadata {
        format_version: 0,
        model: config(n_items),
        categories: vec!["unknown".into(), "mug".into(), "lamp".into()],
        items: ItemCatalog {
            ids: (0..n_items).map(|i| format!("SKU-{i}")).collect(),
            titles: (0..n_items).map(|i| format!("Item number {i}")).collect(),
            category: (0..n_items).map(|i| (i % 3) as u32).collect(),
            price: (0..n_items)
                .map(|i| (i % 2 == 0).then_some(2.5 + i as f32))
                .collect(),
            added: (0..n_items)
                .map(|i| (i % 3 != 0).then_some(1.29e9 + i as f64))
                .collect(),
        },
        features: json!({"token_buckets": 16, "price": {"min": 0.1, "max": 50.0}}),
        training: json!({"events": 1234}),
        metrics: json!({"hr@10": 0.25}),
        quantization: Quantization::F32,
        content_hash: String::new(),
        data_crc32: None,
        trained_kinds: None,
    }
}

fn f32_tensor(rng: &mut Rng, shape: &[usize], scale: f32) -> Tensor {
    let n = shape.iter().product();
    Tensor {
        shape: shape.to_vec(),
        data: TensorData::F32((0..n).map(|_| rng.f32() * scale).collect()),
    }
}

/// A small weight file with matrices (one with an all-zero row), a 3-D tensor, vectors,
/// a scalar, an empty matrix and an integer tensor.
fn sample(n_items: usize, dim: usize) -> WeightFile {
    let mut rng = Rng(SplitMix64::new(0x9e37_79b9_7f4a_7c15));
    let mut tensors = BTreeMap::new();
    tensors.insert(
        "item.id_embedding".into(),
        f32_tensor(&mut rng, &[n_items, dim], 0.5),
    );
    let mut w = f32_tensor(&mut rng, &[dim, 2 * dim], 3.0);
    if let TensorData::F32(v) = &mut w.data {
        v[2 * dim..4 * dim].iter_mut().for_each(|x| *x = 0.0);
    }
    tensors.insert("block0.ffn.w1".into(), w);
    tensors.insert(
        "block0.attn.qkv".into(),
        f32_tensor(&mut rng, &[3, dim, 4], 1.0),
    );
    tensors.insert("block0.ln.gain".into(), f32_tensor(&mut rng, &[dim], 1.0));
    tensors.insert("head.bias".into(), f32_tensor(&mut rng, &[], 1.0));
    tensors.insert("unused.empty".into(), f32_tensor(&mut rng, &[0, 4], 1.0));
    tensors.insert(
        "stats.popularity".into(),
        f32_tensor(&mut rng, &[n_items], 1.0),
    );
    tensors.insert(
        "feat.category".into(),
        Tensor {
            shape: vec![n_items],
            data: TensorData::I32((0..n_items as i32).map(|i| i % 3 - 1).collect()),
        },
    );
    WeightFile {
        metadata: metadata(n_items),
        tensors,
    }
}

fn f32s(t: &Tensor) -> &[f32] {
    match &t.data {
        TensorData::F32(v) => v,
        _ => panic!("expected F32"),
    }
}

/// Splits a file into (header JSON, data section).
fn split(bytes: &[u8]) -> (Value, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header, bytes[8 + n..].to_vec())
}

/// Joins a header and a data section (no padding, like a minimal safetensors writer).
fn assemble(header: &Value, data: &[u8]) -> Vec<u8> {
    let h = serde_json::to_vec(header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out
}

fn meta_of(header: &Value) -> Value {
    serde_json::from_str(header["__metadata__"]["vitrine"].as_str().unwrap()).unwrap()
}

fn set_meta(header: &mut Value, meta: &Value) {
    header["__metadata__"]["vitrine"] = Value::String(meta.to_string());
}

/// Rewrites a valid file: `f` may change the header, the vitrine metadata and the data;
/// the content hash and the checksum (where the metadata has one) are then recomputed so
/// that only the intended defect remains.
fn mutate(bytes: &[u8], f: impl FnOnce(&mut Value, &mut Value, &mut Vec<u8>)) -> Vec<u8> {
    let (mut header, mut data) = split(bytes);
    let mut meta = meta_of(&header);
    f(&mut header, &mut meta, &mut data);
    let hash = content_hash(&data);
    if meta.get("data_crc32").is_some() {
        meta["data_crc32"] = json!(format!("{:08x}", data_crc32(&hash, &data)));
    }
    meta["content_hash"] = Value::String(hash);
    set_meta(&mut header, &meta);
    assemble(&header, &data)
}

fn offsets(header: &Value, name: &str) -> (usize, usize) {
    let o = &header[name]["data_offsets"];
    (
        o[0].as_u64().unwrap() as usize,
        o[1].as_u64().unwrap() as usize,
    )
}

fn err(bytes: &[u8]) -> FormatError {
    match WeightFile::from_bytes(bytes) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn f32_round_trip_is_exact_and_fills_in_metadata() {
    let wf = sample(5, 8);
    let bytes = wf.to_bytes(Quantization::F32).unwrap();
    let back = WeightFile::from_bytes(&bytes).unwrap();
    assert_eq!(back.tensors, wf.tensors);

    let (_, data) = split(&bytes);
    let mut expected = wf.metadata.clone();
    expected.format_version = FORMAT_VERSION;
    expected.quantization = Quantization::F32;
    expected.content_hash = content_hash(&data);
    // The checksum: CRC-32 of the hash's digits, then of the data section, here by the
    // one-bit-at-a-time definition.
    let mut sealed = expected.content_hash.as_bytes().to_vec();
    sealed.extend_from_slice(&data);
    expected.data_crc32 = Some(format!("{:08x}", crc32_bitwise(&sealed)));
    assert_eq!(back.metadata, expected);
    assert_eq!(back.metadata.content_hash.len(), 64);
    assert!(back
        .metadata
        .content_hash
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
}

#[test]
fn writer_is_deterministic_and_rewrites_identically() {
    let wf = sample(5, 8);
    for q in [Quantization::F32, Quantization::F16, Quantization::Int8] {
        assert_eq!(wf.to_bytes(q).unwrap(), wf.to_bytes(q).unwrap());
    }
    // Dequantised f16 values are exactly representable in f16: re-writing is a fixpoint.
    for q in [Quantization::F32, Quantization::F16] {
        let bytes = wf.to_bytes(q).unwrap();
        let again = WeightFile::from_bytes(&bytes).unwrap().to_bytes(q).unwrap();
        assert_eq!(bytes, again, "{q:?}");
    }
}

#[test]
fn f16_round_trip_within_1e_3_relative() {
    let wf = sample(5, 8);
    let bytes = wf.to_bytes(Quantization::F16).unwrap();
    let back = WeightFile::from_bytes(&bytes).unwrap();
    assert_eq!(back.metadata.quantization, Quantization::F16);
    assert_eq!(
        back.tensors.keys().collect::<Vec<_>>(),
        wf.tensors.keys().collect::<Vec<_>>()
    );
    let stored: BTreeMap<String, Dtype> = peek_tensors(&bytes)
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.dtype))
        .collect();
    for (name, t) in &wf.tensors {
        let b = &back.tensors[name];
        assert_eq!(b.shape, t.shape);
        match &t.data {
            TensorData::I32(_) => {
                assert_eq!(stored[name], Dtype::I32);
                assert_eq!(b, t);
            }
            TensorData::U8(_) => {
                assert_eq!(stored[name], Dtype::U8);
                assert_eq!(b, t);
            }
            TensorData::F32(v) if t.shape.len() >= 2 && !v.is_empty() => {
                assert_eq!(stored[name], Dtype::F16, "{name}");
                for (x, y) in v.iter().zip(f32s(b)) {
                    assert!(
                        (x - y).abs() <= 1e-3 * x.abs().max(1e-3),
                        "{name}: {x} vs {y}"
                    );
                }
            }
            TensorData::F32(_) => {
                assert_eq!(stored[name], Dtype::F32, "{name}");
                assert_eq!(b, t, "{name} must stay exact");
            }
        }
    }
}

#[test]
fn int8_round_trip_within_one_step_per_row() {
    let wf = sample(5, 8);
    let bytes = wf.to_bytes(Quantization::Int8).unwrap();
    let back = WeightFile::from_bytes(&bytes).unwrap();
    assert_eq!(back.metadata.quantization, Quantization::Int8);
    // The scale companions are consumed.
    assert_eq!(
        back.tensors.keys().collect::<Vec<_>>(),
        wf.tensors.keys().collect::<Vec<_>>()
    );
    let stored: BTreeMap<String, (Dtype, Vec<usize>)> = peek_tensors(&bytes)
        .unwrap()
        .into_iter()
        .map(|t| (t.name, (t.dtype, t.shape)))
        .collect();
    for (name, t) in &wf.tensors {
        let b = &back.tensors[name];
        assert_eq!(b.shape, t.shape);
        match &t.data {
            TensorData::F32(v) if t.shape.len() >= 2 && !v.is_empty() => {
                assert_eq!(stored[name].0, Dtype::I8, "{name}");
                let scale = &stored[&format!("{name}.scale")];
                assert_eq!(scale.0, Dtype::F32);
                assert_eq!(scale.1, t.shape[..t.shape.len() - 1].to_vec());
                let cols = *t.shape.last().unwrap();
                for (row, (xs, ys)) in v.chunks(cols).zip(f32s(b).chunks(cols)).enumerate() {
                    let max = xs.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                    for (x, y) in xs.iter().zip(ys) {
                        assert!((x - y).abs() <= max / 127.0, "{name} row {row}: {x} vs {y}");
                    }
                    if max == 0.0 {
                        assert!(ys.iter().all(|&y| y == 0.0));
                    }
                }
            }
            _ => assert_eq!(b, t, "{name} must stay exact"),
        }
    }
}

#[test]
fn int8_smaller_than_f16_smaller_than_f32() {
    let wf = sample(200, 32);
    let f32_len = wf.to_bytes(Quantization::F32).unwrap().len();
    let f16_len = wf.to_bytes(Quantization::F16).unwrap().len();
    let i8_len = wf.to_bytes(Quantization::Int8).unwrap().len();
    assert!(
        i8_len < f16_len && f16_len < f32_len,
        "{i8_len} {f16_len} {f32_len}"
    );
}

#[test]
fn content_hash_changes_with_any_byte_and_loader_reports_mismatch() {
    // A file written before `data_crc32`: its SHA-256 is what the loader checks.
    let wf = sample(5, 8);
    let bytes = without_crc(&wf.to_bytes(Quantization::F32).unwrap());
    assert_eq!(peek_metadata(&bytes).unwrap().data_crc32, None);
    assert!(WeightFile::from_bytes(&bytes).is_ok());
    let (_, data) = split(&bytes);
    let original = content_hash(&data);
    let data_start = bytes.len() - data.len();
    for pos in [0, data.len() / 2, data.len() - 1] {
        let mut d = data.clone();
        d[pos] ^= 1;
        assert_ne!(content_hash(&d), original);
        let mut b = bytes.clone();
        b[data_start + pos] ^= 1;
        match err(&b) {
            FormatError::HashMismatch { expected, found } => {
                assert_eq!(expected, original);
                assert_eq!(found, content_hash(&d));
            }
            e => panic!("expected HashMismatch, got {e:?}"),
        }
    }
}

/// A file with `data_crc32` (every file the writer makes): any changed byte of the data
/// section, or of the `content_hash` digits it covers, is a `ChecksumMismatch` naming
/// both checksums; a malformed `data_crc32`, or one beside a `content_hash` that is not
/// 64 hex digits, is `BadMetadata`.
#[test]
fn the_checksum_covers_the_data_and_the_content_hash() {
    let wf = sample(5, 8);
    let bytes = wf.to_bytes(Quantization::F32).unwrap();
    let meta = peek_metadata(&bytes).unwrap();
    let declared = meta.data_crc32.clone().expect("the writer sets data_crc32");
    let (_, data) = split(&bytes);
    let data_start = bytes.len() - data.len();
    let sealed = |hash: &str, data: &[u8]| {
        let mut all = hash.as_bytes().to_vec();
        all.extend_from_slice(data);
        format!("{:08x}", crc32_bitwise(&all))
    };
    assert_eq!(declared, sealed(&meta.content_hash, &data));
    for pos in [0, 1, data.len() / 2, data.len() - 1] {
        for flip in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[data_start + pos] ^= flip;
            let mut d = data.clone();
            d[pos] ^= flip;
            match err(&b) {
                FormatError::ChecksumMismatch { expected, found } => {
                    assert_eq!(expected, declared);
                    assert_eq!(found, sealed(&meta.content_hash, &d));
                }
                e => panic!("byte {pos} ^ {flip:#x}: expected ChecksumMismatch, got {e:?}"),
            }
        }
    }
    // One digit of the content hash (the model's identity) changed in the header.
    let at = (bytes.windows(64))
        .position(|w| w == meta.content_hash.as_bytes())
        .unwrap();
    let mut b = bytes.clone();
    b[at + 10] = if b[at + 10] == b'0' { b'1' } else { b'0' };
    assert!(
        matches!(err(&b), FormatError::ChecksumMismatch { ref expected, .. } if *expected == declared)
    );
    // Malformed fields.
    for (crc, hash) in [
        (json!("ABCDEF12"), None),
        (json!("abcdef1"), None),
        (json!("abcdef123"), None),
        (json!(12345678), None),
        (json!("abcdef12"), Some(json!("abc"))),
        (
            json!("abcdef12"),
            Some(json!(meta.content_hash.to_uppercase())),
        ),
    ] {
        let (mut header, data) = split(&bytes);
        let mut m = meta_of(&header);
        m["data_crc32"] = crc.clone();
        if let Some(h) = hash.clone() {
            m["content_hash"] = h;
        }
        set_meta(&mut header, &m);
        let e = err(&assemble(&header, &data));
        assert!(
            matches!(&e, FormatError::BadMetadata(_)),
            "{crc} / {hash:?}: {e:?}"
        );
    }
}

#[test]
fn truncation_at_every_length_is_reported_as_truncated() {
    let bytes = sample(5, 8).to_bytes(Quantization::Int8).unwrap();
    for len in 0..bytes.len() {
        match err(&bytes[..len]) {
            FormatError::Truncated { needed, found } => {
                assert_eq!(found, len as u64);
                assert!(needed > found && needed <= bytes.len() as u64, "{len}");
            }
            e => panic!("length {len}: expected Truncated, got {e:?}"),
        }
    }
}

#[test]
fn header_length_errors() {
    let bytes = sample(5, 8).to_bytes(Quantization::F32).unwrap();
    for n in [MAX_HEADER_LEN + 1, u64::MAX] {
        let mut b = bytes.clone();
        b[..8].copy_from_slice(&n.to_le_bytes());
        assert!(matches!(err(&b), FormatError::HeaderTooLarge { len, .. } if len == n));
        assert!(matches!(
            peek_metadata(&b),
            Err(FormatError::HeaderTooLarge { .. })
        ));
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    let json_len = std::str::from_utf8(&bytes[8..8 + n as usize])
        .unwrap()
        .trim_end()
        .len() as u64;
    // Shorter than the JSON (cuts it), longer (swallows data bytes), tiny.
    for wrong in [json_len - 1, json_len - 9, n + 8, 2] {
        let mut b = bytes.clone();
        b[..8].copy_from_slice(&wrong.to_le_bytes());
        assert!(
            matches!(err(&b), FormatError::BadHeader(_)),
            "header length {wrong} instead of {n}"
        );
    }
    // Within the padding: the JSON still parses, but the data section no longer matches.
    if n > json_len {
        let mut b = bytes.clone();
        b[..8].copy_from_slice(&(n - 1).to_le_bytes());
        assert!(WeightFile::from_bytes(&b).is_err());
    }
    // Longer than the file: truncated.
    let mut b = bytes.clone();
    b[..8].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
    assert!(matches!(err(&b), FormatError::Truncated { .. }));
}

#[test]
fn garbage_headers_are_bad_header() {
    for header in [
        &b"{not json"[..],
        b"[1, 2, 3]",
        b"\"a string\"",
        b"{\"x\": {\"dtype\": \"F32\", \"shape\": [1]}}",
        b"{\"x\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}",
        b"{\"__metadata__\": {\"vitrine\": 5}}",
        b"{\xff\xfe}",
        b"",
    ] {
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(header);
        assert!(
            matches!(err(&b), FormatError::BadHeader(_)),
            "{:?}",
            String::from_utf8_lossy(header)
        );
    }
}

#[test]
fn bad_header_messages_name_the_tensor_and_field() {
    let header = br#"{"w": {"dtype": "F32", "shape": [1]}}"#;
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header);
    let message = err(&b).to_string();
    assert!(
        message.contains("\"w\"") && message.contains("data_offsets"),
        "{message}"
    );
    assert_eq!(message.matches(" at line ").count(), 1, "{message}");
}

#[test]
fn duplicate_tensor_key_is_reported() {
    let bytes = sample(3, 4).to_bytes(Quantization::F32).unwrap();
    let (header, data) = split(&bytes);
    let text = header.to_string();
    // Repeat the scalar entry under the same key (the last entry would silently win in a
    // plain JSON map).
    let dup = format!("{{\"head.bias\":{},{}", header["head.bias"], &text[1..]);
    let mut b = (dup.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(dup.as_bytes());
    b.extend_from_slice(&data);
    assert_eq!(err(&b), FormatError::DuplicateTensor("head.bias".into()));
}

#[test]
fn metadata_errors() {
    // Version 1: the catalogue in the metadata.
    let bytes = sample(5, 8).to_bytes_as(Quantization::F32, 1).unwrap();

    let (mut h, data) = split(&bytes);
    h.as_object_mut().unwrap().remove("__metadata__");
    assert_eq!(err(&assemble(&h, &data)), FormatError::MissingMetadata);
    let (mut h, data) = split(&bytes);
    h["__metadata__"] = json!({"format": "pt"});
    assert_eq!(err(&assemble(&h, &data)), FormatError::MissingMetadata);

    let (mut h, data) = split(&bytes);
    h["__metadata__"]["vitrine"] = json!("{not json");
    assert!(matches!(
        err(&assemble(&h, &data)),
        FormatError::BadMetadata(_)
    ));

    let b = mutate(&bytes, |_, m, _| {
        m.as_object_mut().unwrap().remove("items");
    });
    assert_eq!(
        err(&b),
        FormatError::CatalogLength {
            field: "ids",
            len: 0,
            expected: 5
        }
    );
    // Version 2 keeps it in its section only.
    let v2 = sample(5, 8).to_bytes(Quantization::F32).unwrap();
    let b = mutate(&v2, |_, m, _| {
        m["items"] = json!({"ids": ["a"], "titles": [], "category": [], "price": [], "added": []});
    });
    assert!(matches!(err(&b), FormatError::BadCatalog(m) if m.contains("has `items`")));
    let b = mutate(&v2, |h, _, _| {
        let entry = h.as_object_mut().unwrap().remove("catalog").unwrap();
        h["catalogue"] = entry;
    });
    assert!(
        matches!(err(&b), FormatError::BadCatalog(m) if m.contains("needs the `catalog` tensor"))
    );
    // A version 1 file's tensor named `catalog` is one like any other.
    let b = mutate(&bytes, |h, _, _| {
        let entry = h.as_object_mut().unwrap().remove("head.bias").unwrap();
        h["catalog"] = entry;
    });
    assert!(WeightFile::from_bytes(&b)
        .unwrap()
        .tensors
        .contains_key("catalog"));
    let b = mutate(&bytes, |_, m, _| {
        m.as_object_mut().unwrap().remove("format_version");
    });
    assert!(matches!(err(&b), FormatError::BadMetadata(_)));

    // A future version is reported as such even when its structure differs.
    let b = mutate(&bytes, |_, m, _| {
        m["format_version"] = json!(99);
        m.as_object_mut().unwrap().remove("model");
    });
    let expected = FormatError::UnsupportedVersion {
        found: 99,
        supported: FORMAT_VERSION,
    };
    assert_eq!(err(&b), expected);
    assert_eq!(peek_metadata(&b).unwrap_err(), expected);
}

/// The error of a file whose catalogue has item 3's id equal to item 1's (`SKU-1`).
fn assert_sku_1_repeated_at_3(bytes: &[u8]) {
    assert_eq!(
        err(bytes),
        FormatError::DuplicateItemId {
            id: "SKU-1".into(),
            first: 1,
            second: 3
        }
    );
}

/// The error of a file whose item 2 has category index 3 (of 3 categories).
fn assert_category_3_at_item_2(bytes: &[u8]) {
    assert_eq!(
        err(bytes),
        FormatError::CategoryOutOfRange {
            item: 2,
            category: 3,
            categories: 3
        }
    );
}

#[test]
fn catalog_errors() {
    // Version 1: the catalogue in the metadata.
    let bytes = sample(5, 8).to_bytes_as(Quantization::F32, 1).unwrap();
    let b = mutate(&bytes, |_, m, _| {
        m["items"]["ids"][3] = m["items"]["ids"][1].clone()
    });
    assert_sku_1_repeated_at_3(&b);
    let b = mutate(&bytes, |_, m, _| {
        m["items"]["titles"].as_array_mut().unwrap().pop();
    });
    assert_eq!(
        err(&b),
        FormatError::CatalogLength {
            field: "titles",
            len: 4,
            expected: 5
        }
    );
    let b = mutate(&bytes, |_, m, _| m["model"]["n_items"] = json!(6));
    assert!(matches!(
        err(&b),
        FormatError::CatalogLength { field: "ids", .. }
    ));
    let b = mutate(&bytes, |_, m, _| m["items"]["category"][2] = json!(3));
    assert_category_3_at_item_2(&b);
    let b = mutate(&bytes, |_, m, _| m["items"]["price"][4] = json!(-1.0));
    assert!(matches!(
        err(&b),
        FormatError::BadItemAttribute {
            item: 4,
            field: "price",
            ..
        }
    ));

    // The writer applies the same rules.
    let mut wf = sample(5, 8);
    let mut ids = wf.metadata.items.ids.to_vec();
    ids[4] = "SKU-0".into();
    wf.metadata.items.ids = ids.into();
    assert!(matches!(
        wf.to_bytes(Quantization::F32),
        Err(FormatError::DuplicateItemId {
            first: 0,
            second: 4,
            ..
        })
    ));
    let mut wf = sample(5, 8);
    wf.metadata.items.price.set(0, Some(f32::INFINITY));
    assert!(matches!(
        wf.to_bytes(Quantization::F32),
        Err(FormatError::BadItemAttribute { item: 0, .. })
    ));
}

#[test]
fn tensor_entry_errors() {
    let bytes = sample(5, 8).to_bytes(Quantization::F32).unwrap();

    let b = mutate(&bytes, |h, _, _| {
        h["block0.ln.gain"]["dtype"] = json!("BF16")
    });
    assert_eq!(
        err(&b),
        FormatError::UnknownDtype {
            tensor: "block0.ln.gain".into(),
            dtype: "BF16".into()
        }
    );

    let b = mutate(&bytes, |h, _, _| h["block0.ln.gain"]["shape"] = json!([9]));
    assert!(matches!(
        err(&b),
        FormatError::ShapeMismatch { tensor, shape, bytes: 32, .. }
            if tensor == "block0.ln.gain" && shape == vec![9]
    ));
    // A shape whose product overflows.
    let b = mutate(&bytes, |h, _, _| {
        h["block0.ln.gain"]["shape"] = json!([u64::MAX / 2, 4, 2])
    });
    assert!(matches!(err(&b), FormatError::ShapeMismatch { .. }));

    // Offsets past the end of the data section.
    let b = mutate(&bytes, |h, _, d| {
        let (s, e) = offsets(h, "block0.ln.gain");
        let past = d.len() + 100;
        h["block0.ln.gain"]["data_offsets"] = json!([past, past + (e - s)]);
    });
    assert!(matches!(
        err(&b),
        FormatError::OffsetsOutOfBounds { tensor, .. } if tensor == "block0.ln.gain"
    ));
    let b = mutate(&bytes, |h, _, _| {
        h["block0.ln.gain"]["data_offsets"] = json!([u64::MAX - 3, u64::MAX])
    });
    assert!(WeightFile::from_bytes(&b).is_err());
    // Inverted offsets.
    let b = mutate(&bytes, |h, _, _| {
        let (s, e) = offsets(h, "block0.ln.gain");
        h["block0.ln.gain"]["data_offsets"] = json!([e, s]);
    });
    assert!(matches!(err(&b), FormatError::OffsetsOutOfBounds { .. }));

    // Two tensors of the same size sharing bytes.
    let b = mutate(&bytes, |h, _, _| {
        h["stats.popularity"]["data_offsets"] = h["feat.category"]["data_offsets"].clone();
    });
    assert!(matches!(err(&b), FormatError::OverlappingTensors { .. }));

    // Trailing bytes nobody indexes.
    let b = mutate(&bytes, |_, _, d| d.extend_from_slice(&[0; 8]));
    let data_len = split(&bytes).1.len() as u64;
    assert_eq!(
        err(&b),
        FormatError::UnindexedBytes {
            start: data_len,
            end: data_len + 8
        }
    );
}

#[test]
fn non_finite_values_are_rejected_by_reader_and_writer() {
    let bytes = sample(5, 8).to_bytes(Quantization::F32).unwrap();
    let b = mutate(&bytes, |h, _, d| {
        let (s, _) = offsets(h, "block0.ln.gain");
        d[s + 12..s + 16].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    assert_eq!(
        err(&b),
        FormatError::NonFinite {
            tensor: "block0.ln.gain".into(),
            index: 3
        }
    );
    // An f16 infinity.
    let f16 = sample(5, 8).to_bytes(Quantization::F16).unwrap();
    let b = mutate(&f16, |h, _, d| {
        let (s, _) = offsets(h, "item.id_embedding");
        d[s + 2..s + 4].copy_from_slice(&0x7c00u16.to_le_bytes());
    });
    assert_eq!(
        err(&b),
        FormatError::NonFinite {
            tensor: "item.id_embedding".into(),
            index: 1
        }
    );

    let mut wf = sample(5, 8);
    if let TensorData::F32(v) = &mut wf.tensors.get_mut("head.bias").unwrap().data {
        v[0] = f32::INFINITY;
    }
    assert_eq!(
        wf.to_bytes(Quantization::F32).unwrap_err(),
        FormatError::NonFinite {
            tensor: "head.bias".into(),
            index: 0
        }
    );
    let mut wf = sample(5, 8);
    if let TensorData::F32(v) = &mut wf.tensors.get_mut("block0.ffn.w1").unwrap().data {
        v[5] = 1e6;
    }
    assert!(wf.to_bytes(Quantization::F32).is_ok());
    assert!(wf.to_bytes(Quantization::Int8).is_ok());
    assert!(matches!(
        wf.to_bytes(Quantization::F16),
        Err(FormatError::F16Overflow { index: 5, .. })
    ));
}

#[test]
fn quantization_errors() {
    let f16 = sample(5, 8).to_bytes(Quantization::F16).unwrap();
    let b = mutate(&f16, |_, m, _| m["quantization"] = json!("f32"));
    assert!(matches!(
        err(&b),
        FormatError::QuantizationMismatch {
            dtype: "F16",
            quantization: Quantization::F32,
            ..
        }
    ));

    let i8 = sample(5, 8).to_bytes(Quantization::Int8).unwrap();
    let b = mutate(&i8, |_, m, _| m["quantization"] = json!("f16"));
    assert!(matches!(
        err(&b),
        FormatError::QuantizationMismatch { dtype: "I8", .. }
    ));

    let name = "block0.ffn.w1";
    let scale = format!("{name}.scale");
    let b = mutate(&i8, |h, _, _| {
        let entry = h.as_object_mut().unwrap().remove(&scale).unwrap();
        h[format!("{name}.scales")] = entry;
    });
    assert_eq!(
        err(&b),
        FormatError::MissingScale {
            tensor: name.into()
        }
    );

    let b = mutate(&i8, |h, _, _| h[&scale]["dtype"] = json!("I32"));
    assert!(matches!(err(&b), FormatError::BadScale { tensor, .. } if tensor == name));
    let b = mutate(&i8, |h, _, _| h[&scale]["shape"] = json!([1, 8]));
    assert!(matches!(err(&b), FormatError::BadScale { reason, .. } if reason.contains("shape")));
    for bad in [-1.0f32, f32::NAN, f32::INFINITY] {
        let b = mutate(&i8, |h, _, d| {
            let (s, _) = offsets(h, &scale);
            d[s..s + 4].copy_from_slice(&bad.to_le_bytes());
        });
        assert!(matches!(err(&b), FormatError::BadScale { .. }), "{bad}");
    }

    // The writer refuses to shadow a model tensor with a scale companion.
    let mut wf = sample(5, 8);
    wf.tensors.insert(
        scale.clone(),
        Tensor {
            shape: vec![8],
            data: TensorData::F32(vec![1.0; 8]),
        },
    );
    assert_eq!(
        wf.to_bytes(Quantization::Int8).unwrap_err(),
        FormatError::ReservedName {
            tensor: name.into(),
            reserved: scale.clone()
        }
    );
    assert!(wf.to_bytes(Quantization::F16).is_ok());

    // `__metadata__` is never a tensor name.
    let mut wf = sample(5, 8);
    wf.tensors.insert(
        "__metadata__".into(),
        Tensor {
            shape: vec![],
            data: TensorData::F32(vec![1.0]),
        },
    );
    assert!(matches!(
        wf.to_bytes(Quantization::F32),
        Err(FormatError::ReservedName { .. })
    ));
}

#[test]
fn writer_rejects_data_not_matching_shape() {
    let mut wf = sample(5, 8);
    wf.tensors.get_mut("block0.ln.gain").unwrap().shape = vec![3, 3];
    assert!(matches!(
        wf.to_bytes(Quantization::F32),
        Err(FormatError::ShapeMismatch { bytes: 32, .. })
    ));
    wf.tensors.get_mut("block0.ln.gain").unwrap().shape = vec![usize::MAX, 2];
    assert!(matches!(
        wf.to_bytes(Quantization::F32),
        Err(FormatError::ShapeMismatch { .. })
    ));
}

/// The `catalog` section's bytes of a version 2 file, for `f` to edit (content hash
/// recomputed).
fn edit_catalog(bytes: &[u8], f: impl FnOnce(&mut [u8])) -> Vec<u8> {
    mutate(bytes, |h, _, data| {
        let (b, e) = offsets(h, "catalog");
        f(&mut data[b..e]);
    })
}

#[test]
fn catalog_section_is_checked_by_the_catalog_rules() {
    // Version 2: the same rules as the metadata's catalogue, on the decoded section
    // (ids, titles: length-prefixed UTF-8; then category u32, price f32, added f64).
    let n = 5;
    let bytes = sample(n, 8).to_bytes(Quantization::F32).unwrap();
    let (h, _) = split(&bytes);
    assert_eq!(h["catalog"]["dtype"], "U8");
    assert!(meta_of(&h).get("items").is_none());
    assert_eq!(meta_of(&h)["format_version"], 2);
    let back = WeightFile::from_bytes(&bytes).unwrap();
    assert_eq!(back.metadata.items, sample(n, 8).metadata.items);
    assert!(!back.tensors.contains_key("catalog"));
    let find = |s: &[u8], what: &[u8]| s.windows(what.len()).position(|w| w == what).unwrap();
    let b = edit_catalog(&bytes, |c| {
        let at = find(c, b"SKU-3");
        c[at..at + 5].copy_from_slice(b"SKU-1");
    });
    assert_sku_1_repeated_at_3(&b);
    let b = edit_catalog(&bytes, |c| {
        let at = c.len() - 16 * n + 4 * 2;
        c[at..at + 4].copy_from_slice(&3u32.to_le_bytes());
    });
    assert_category_3_at_item_2(&b);
    let b = edit_catalog(&bytes, |c| {
        let at = c.len() - 12 * n + 4 * 4;
        c[at..at + 4].copy_from_slice(&(-1.0f32).to_le_bytes());
    });
    assert!(matches!(
        err(&b),
        FormatError::BadItemAttribute {
            item: 4,
            field: "price",
            ..
        }
    ));
    let b = edit_catalog(&bytes, |c| {
        let at = find(c, b"Item number 2");
        c[at] = 0xff;
    });
    assert!(
        matches!(err(&b), FormatError::BadCatalog(m) if m.contains("item 2's title") && m.contains("not UTF-8"))
    );
    // A file edited without its checksum: the checksum (in a file written before it,
    // the hash) is reported first (step 7 before the decode), whatever the catalogue
    // holds.
    let (hb, db) = split(&bytes);
    let mut data = db.clone();
    let (b0, _) = offsets(&hb, "catalog");
    data[b0] = 0xff;
    assert!(matches!(
        err(&assemble(&hb, &data)),
        FormatError::ChecksumMismatch { .. }
    ));
    let legacy = without_crc(&bytes);
    let (hb, db) = split(&legacy);
    let mut data = db.clone();
    data[b0] = 0xff;
    assert!(matches!(
        err(&assemble(&hb, &data)),
        FormatError::HashMismatch { .. }
    ));
    // The section must be a 1-D U8 tensor.
    let b = mutate(&bytes, |h, _, _| h["catalog"]["dtype"] = json!("I8"));
    assert!(matches!(
        err(&b),
        FormatError::QuantizationMismatch { .. } | FormatError::BadCatalog(_)
    ));
    let b = mutate(&bytes, |h, _, _| {
        let len = h["catalog"]["shape"][0].as_u64().unwrap();
        h["catalog"]["shape"] = json!([1, len]);
    });
    assert!(matches!(err(&b), FormatError::BadCatalog(m) if m.contains("1-D U8")));
    // The writer reserves the name in version 2 only.
    let mut wf = sample(n, 8);
    wf.tensors
        .insert("catalog".into(), wf.tensors["head.bias"].clone());
    assert!(matches!(
        wf.to_bytes(Quantization::F32),
        Err(FormatError::ReservedName { .. })
    ));
    assert!(wf.to_bytes_as(Quantization::F32, 1).is_ok());
    assert!(matches!(
        wf.to_bytes_as(Quantization::F32, 3),
        Err(FormatError::UnsupportedVersion { found: 3, .. })
    ));
}

#[test]
fn both_versions_read_the_same_file() {
    for q in [Quantization::F32, Quantization::F16, Quantization::Int8] {
        let wf = sample(7, 8);
        let v1 = WeightFile::from_bytes(&wf.to_bytes_as(q, 1).unwrap()).unwrap();
        let v2 = WeightFile::from_bytes(&wf.to_bytes(q).unwrap()).unwrap();
        assert_eq!(
            (v1.metadata.format_version, v2.metadata.format_version),
            (1, 2)
        );
        assert_eq!(v1.tensors, v2.tensors);
        assert_eq!(v1.metadata.items, v2.metadata.items);
        assert_eq!(
            Metadata {
                format_version: 2,
                content_hash: String::new(),
                data_crc32: None,
                ..v1.metadata
            },
            Metadata {
                content_hash: String::new(),
                data_crc32: None,
                ..v2.metadata
            }
        );
    }
}

#[test]
fn hand_written_safetensors_file_is_read() {
    // Written with the plain safetensors rules and nothing from vitrine's writer: keys in
    // arbitrary order, data not in name order, no header padding, an extra metadata key.
    let a: Vec<f32> = vec![1.0, -2.5, 3.25, 0.0, 1e-3, -7.0];
    let b: Vec<i32> = vec![7, -9];
    let mut data = Vec::new();
    data.extend(b.iter().flat_map(|x| x.to_le_bytes()));
    data.extend(a.iter().flat_map(|x| x.to_le_bytes()));
    let mut meta = serde_json::to_value(metadata(2)).unwrap();
    meta["format_version"] = json!(1);
    meta["quantization"] = json!("f32");
    meta["content_hash"] = json!(content_hash(&data));
    let header = json!({
        "__metadata__": {"format": "pt", "vitrine": meta.to_string()},
        "z.b": {"dtype": "I32", "shape": [2], "data_offsets": [0, 8]},
        "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [8, 32]},
    });
    let mut bytes = assemble(&header, &data);
    let wf = WeightFile::from_bytes(&bytes).unwrap();
    assert_eq!(wf.tensors["a"].shape, vec![2, 3]);
    assert_eq!(wf.tensors["a"].data, TensorData::F32(a));
    assert_eq!(wf.tensors["z.b"].data, TensorData::I32(b));
    assert_eq!(wf.metadata.items, metadata(2).items);

    // Trailing-space padding of the header (as safetensors writers do) is accepted.
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    bytes.splice(8 + n..8 + n, *b"     ");
    bytes[..8].copy_from_slice(&((n + 5) as u64).to_le_bytes());
    assert_eq!(WeightFile::from_bytes(&bytes).unwrap(), wf);
}

#[test]
fn written_file_follows_safetensors_layout_rules() {
    let bytes = sample(5, 8).to_bytes(Quantization::Int8).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!((8 + n) % 8, 0);
    assert_eq!(bytes[8], b'{');
    let (header, data) = split(&bytes);
    let mut ranges = Vec::new();
    for (name, entry) in header.as_object().unwrap() {
        if name == "__metadata__" {
            assert!(entry.as_object().unwrap().values().all(Value::is_string));
            continue;
        }
        assert!(["F32", "I32", "F16", "I8", "U8"].contains(&entry["dtype"].as_str().unwrap()));
        ranges.push((offsets(&header, name), name.clone()));
    }
    ranges.sort();
    let mut cursor = 0;
    for ((s, e), _) in &ranges {
        assert_eq!(*s, cursor);
        cursor = *e;
    }
    assert_eq!(cursor, data.len());
    // Laid out as the format doc says: the int8 scales, the catalogue, the rest, each
    // group in name order.
    let names: Vec<_> = ranges.iter().map(|(_, n)| n.clone()).collect();
    let group = |n: &String| match n.as_str() {
        _ if n.ends_with(".scale") => 0,
        "catalog" => 1,
        _ => 2,
    };
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| (group(n), n.clone()));
    assert_eq!(names, sorted);
    assert!(names[0].ends_with(".scale"), "{names:?}");
    assert!(names.iter().any(|n| group(n) == 2), "{names:?}");
}

#[test]
fn peek_metadata_reads_only_the_header() {
    // Version 2: everything but the catalogue, which lies in the data section.
    let bytes = sample(5, 8).to_bytes(Quantization::F16).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let full = WeightFile::from_bytes(&bytes).unwrap();
    let peeked = peek_metadata(&bytes[..8 + n]).unwrap();
    assert!(peeked.items.is_empty());
    assert_eq!(
        peeked,
        Metadata {
            items: ItemCatalog::default(),
            ..full.metadata.clone()
        }
    );
    assert_eq!(peek_tensors(&bytes[..8 + n]).unwrap().len(), 9);
    assert!(matches!(
        peek_metadata(&bytes[..8 + n - 1]),
        Err(FormatError::Truncated { .. })
    ));
    // Version 1: the whole metadata, catalogue included.
    let v1 = sample(5, 8).to_bytes_as(Quantization::F16, 1).unwrap();
    let n = u64::from_le_bytes(v1[..8].try_into().unwrap()) as usize;
    let full = WeightFile::from_bytes(&v1).unwrap();
    assert_eq!(full.metadata.format_version, 1);
    assert_eq!(peek_metadata(&v1[..8 + n]).unwrap(), full.metadata);
    assert_eq!(peek_tensors(&v1[..8 + n]).unwrap().len(), 8);
}

#[test]
fn random_byte_flips_never_panic() {
    let files: Vec<Vec<u8>> = [Quantization::F32, Quantization::F16, Quantization::Int8]
        .iter()
        .map(|&q| sample(5, 8).to_bytes(q).unwrap())
        .collect();
    let mut rng = Rng(SplitMix64::new(0x1234_5678_9abc_def1));
    let mut errors = 0;
    for i in 0..2000 {
        let mut b = files[i % 3].clone();
        let header_end = 8 + u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
        for _ in 0..1 + rng.below(4) {
            // Half of the flips hit the length prefix and header, where parsing happens.
            let pos = if rng.below(2) == 0 {
                rng.below(header_end)
            } else {
                rng.below(b.len())
            };
            b[pos] ^= 1 << rng.below(8);
        }
        if rng.below(10) == 0 {
            let cut = rng.below(b.len());
            b.truncate(cut);
        }
        let _ = peek_metadata(&b);
        let _ = peek_tensors(&b);
        if let Err(e) = WeightFile::from_bytes(&b) {
            errors += 1;
            assert!(!e.to_string().is_empty());
        }
    }
    // Nearly every flip must be caught (the hash covers the data, the header is strict).
    assert!(errors > 1900, "{errors}");
}

#[test]
fn model_weight_file_round_trips_and_loads() {
    let wf = common::fixtures::tiny_weight_file(50, 7);
    for q in [Quantization::F32, Quantization::F16, Quantization::Int8] {
        let bytes = wf.to_bytes(q).unwrap();
        let back = WeightFile::from_bytes(&bytes).unwrap();
        assert_eq!(back.metadata.items, wf.metadata.items);
        assert_eq!(
            back.tensors.keys().collect::<Vec<_>>(),
            wf.tensors.keys().collect::<Vec<_>>()
        );
        if q == Quantization::F32 {
            assert_eq!(back.tensors, wf.tensors);
        }
        vitrine::model::Model::from_weights(&back).unwrap();
    }
}

#[test]
fn content_hash_over_many_chunks_is_plain_sha256() {
    // FIPS 180-2's long message: one million 'a' bytes (16 of content_hash's 64 KiB
    // chunks, the last one partial).
    let data = vec![b'a'; 1_000_000];
    assert_eq!(
        content_hash(&data),
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
    );
    // Chunk boundaries: lengths around one chunk hash like the one-shot digest.
    for n in [0usize, 1, 65_535, 65_536, 65_537, 131_072] {
        let d: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
        let one_shot = {
            use sha2::Digest;
            vitrine::format::to_hex(&sha2::Sha256::digest(&d))
        };
        assert_eq!(content_hash(&d), one_shot, "length {n}");
    }
}

/// `from_source` keeping an `I8` tensor int8 accepts and rejects what `from_bytes`
/// does: the same dequantised values, and a row scale that makes a value overflow is
/// the same `NonFinite` error at the same element.
#[test]
fn int8_tensors_kept_quantised_match_the_dequantised_reader() {
    let name = "item.id_embedding";
    let bytes = sample(5, 8).to_bytes(Quantization::Int8).unwrap();
    let full = WeightFile::from_bytes(&bytes).unwrap();
    let (file, kept) = WeightFile::from_source(&bytes[..], &[name]).unwrap();
    assert!(!file.tensors.contains_key(name));
    assert_eq!(file.tensors.len() + 1, full.tensors.len());
    let t = &kept[name];
    let TensorData::F32(want) = &full.tensors[name].data else {
        panic!("{name} dequantises to F32");
    };
    let cols = t.cols();
    let got: Vec<f32> = (t.q.iter().enumerate())
        .map(|(i, &q)| f32::from(q) * t.scale[i / cols])
        .collect();
    assert_eq!(&got, want);
    assert_eq!(t.shape, full.tensors[name].shape);

    // Row 1's scale at f32::MAX: any |q| ≥ 2 in that row overflows to infinity.
    let b = mutate(&bytes, |h, _, d| {
        let (s, _) = offsets(h, &format!("{name}.scale"));
        d[s + 4..s + 8].copy_from_slice(&f32::MAX.to_le_bytes());
    });
    let e = err(&b);
    assert!(
        matches!(&e, FormatError::NonFinite { tensor, index } if tensor == name && *index >= cols),
        "{e:?}"
    );
    assert_eq!(WeightFile::from_source(&b[..], &[name]).unwrap_err(), e);
}

/// The catalogue's optional price and date columns store NaN for "none" but read and
/// write the JSON of a `Vec<Option<_>>`, so files are byte-for-byte what they were.
#[test]
fn optional_columns_have_the_json_of_a_vec_of_options() {
    let prices: Vec<Option<f32>> = vec![Some(12.5), None, Some(0.0), Some(-0.0), Some(3.1e38)];
    let col: OptColumn<f32> = prices.clone().into();
    let text = serde_json::to_string(&prices).unwrap();
    assert_eq!(serde_json::to_string(&col).unwrap(), text);
    let back: OptColumn<f32> = serde_json::from_str(&text).unwrap();
    assert_eq!(back.iter().collect::<Vec<_>>(), prices);
    assert_eq!(back, col);
    let dates: Vec<Option<f64>> = vec![None, Some(1.29e9), Some(1.7e9 + 0.25)];
    let text = serde_json::to_string(&dates).unwrap();
    let back: OptColumn<f64> = serde_json::from_str(&text).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), text);
    assert_eq!(back.get(2), Some(1.7e9 + 0.25));
    assert_eq!(
        (back.get(0), back.get(3)),
        (None, None),
        "none and out of range"
    );
    // NaN is "none"; setting a value and reading it back.
    let mut c = OptColumn::<f32>::none(2);
    c.set(1, Some(f32::NAN));
    c.set(0, Some(2.0));
    assert_eq!(c.iter().collect::<Vec<_>>(), [Some(2.0), None]);
    assert_eq!(c.as_nan_slice()[0], 2.0);
    assert!(c.as_nan_slice()[1].is_nan());
    // Not an array of numbers and nulls: an error, not a panic.
    for bad in ["{}", "[1, \"x\"]", "[[1]]", "3"] {
        assert!(
            serde_json::from_str::<OptColumn<f32>>(bad).is_err(),
            "{bad}"
        );
    }
}

/// The content hash taken as the bytes arrive (the browser's streamed load): fed up to
/// any sequence of offsets, the digest of the whole range.
#[test]
fn a_hash_fed_in_pieces_is_the_ranges_digest() {
    let mut rng = SplitMix64::new(5);
    let bytes: Vec<u8> = (0..300_000).map(|_| rng.next_u64() as u8).collect();
    for start in [0u64, 1, 8, 4_099] {
        let whole = vitrine::format::sha256_of_range(&bytes[..], start..bytes.len() as u64);
        for step in [1usize, 7, 65_536, 65_537, 300_000] {
            let mut h = vitrine::format::RangeHasher::new(start);
            // Offsets before the start and repeats hash nothing; past the end, up to it.
            h.feed_to(&bytes[..], 0);
            let mut at = 0;
            while at < bytes.len() + step {
                at += step.min(20_000);
                h.feed_to(&bytes[..], at as u64);
                h.feed_to(&bytes[..], at as u64 / 2);
            }
            assert_eq!(h.position(), bytes.len() as u64);
            assert_eq!(h.finish(), whole, "start {start}, step {step}");
        }
        assert_eq!(
            vitrine::format::to_hex(&whole),
            content_hash(&bytes[start as usize..])
        );
    }
}

/// CRC-32: the published check values (zlib's `crc32`), the sliced method against the
/// one-bit-at-a-time definition on every length up to 100 and every alignment, and
/// pieces of any size giving the one-shot value.
#[test]
fn crc32_is_zlibs_by_any_method_and_any_pieces() {
    assert_eq!(crc32(b""), 0);
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(
        crc32(b"The quick brown fox jumps over the lazy dog"),
        0x414F_A339
    );
    assert_eq!(crc32(&[0u8; 32]), 0x190A_55AD);
    assert_eq!(crc32(&[0xFFu8; 32]), 0xFF6C_AB0B);
    let mut rng = SplitMix64::new(77);
    let bytes: Vec<u8> = (0..4_000).map(|_| rng.next_u64() as u8).collect();
    for start in 0..16 {
        for len in 0..100 {
            let s = &bytes[start..start + len];
            assert_eq!(crc32(s), crc32_bitwise(s), "start {start}, len {len}");
        }
    }
    let whole = crc32_bitwise(&bytes);
    for piece in [1usize, 3, 15, 16, 17, 64, 1_000, 4_000] {
        let mut c = Crc32::new();
        for chunk in bytes.chunks(piece) {
            c.update(chunk);
        }
        assert_eq!(c.finish(), whole, "pieces of {piece}");
    }
    // `data_crc32` is the CRC of the digits, then the data.
    let hash = content_hash(&bytes);
    let mut sealed = hash.as_bytes().to_vec();
    sealed.extend_from_slice(&bytes);
    assert_eq!(data_crc32(&hash, &bytes), crc32_bitwise(&sealed));
}

/// `RangeCrc` fed in steps of any size, with repeats and offsets before its start, gives
/// `data_crc32` of the whole range.
#[test]
fn range_crc_fed_in_any_steps_is_the_whole_ranges() {
    let mut rng = SplitMix64::new(5);
    let bytes: Vec<u8> = (0..150_000).map(|_| rng.next_u64() as u8).collect();
    let hash = "ab".repeat(32);
    for start in [0u64, 1, 4_099] {
        let whole = data_crc32(&hash, &bytes[start as usize..]);
        for step in [1usize, 7, 65_536, 65_537, 300_000] {
            let mut c = vitrine::format::RangeCrc::new(&hash, start);
            c.feed_to(&bytes[..], 0);
            let mut at = 0;
            while at < bytes.len() + step {
                at += step.min(20_000);
                c.feed_to(&bytes[..], at as u64);
                c.feed_to(&bytes[..], at as u64 / 2);
            }
            assert_eq!(c.position(), bytes.len() as u64);
            assert_eq!(c.finish(), whole, "start {start}, step {step}");
        }
    }
}
