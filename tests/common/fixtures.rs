//! Shared test fixtures: a small, randomly initialised model as a complete weight file.
//! Integration tests include it with `mod common;` (see `tests/common/mod.rs`).
#![allow(dead_code)] // each test binary uses a part

use vitrine::features::{build_features_from, FeatureConfig, ItemAttrs};
use vitrine::format::{ItemCatalog, WeightFile};
use vitrine::history::{EventKind, HistoryEvent};
use vitrine::model::{Model, ModelConfig};

/// A small, randomly initialised model over a synthetic catalog (ids `I0`, `I1`, ...,
/// a few categories, prices, titles), as a complete weight file. For tests, examples and
/// benchmarks, natively and in wasm.
pub fn tiny_weight_file(n_items: usize, seed: u64) -> WeightFile {
    const ADJ: [&str; 8] = [
        "RED",
        "BLUE",
        "VINTAGE",
        "CHRISTMAS",
        "PINK",
        "WHITE",
        "GLASS",
        "PAPER",
    ];
    const NOUN: [&str; 6] = ["CANDLE", "MUG", "BAG", "HEART", "STAR", "BOX"];
    let n = n_items.max(1);
    let titles: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "{} {} {}",
                ADJ[i % ADJ.len()],
                ADJ[(i / 8 + 3) % ADJ.len()],
                NOUN[(i / 3) % NOUN.len()]
            )
        })
        .collect();
    let prices: Vec<Option<f32>> = (0..n)
        .map(|i| {
            if i % 11 == 5 {
                None
            } else {
                Some(0.5 + (i % 37) as f32 * 0.75)
            }
        })
        .collect();
    let attrs: Vec<ItemAttrs<'_>> = titles
        .iter()
        .zip(&prices)
        .map(|(t, &p)| ItemAttrs {
            title: t,
            category: None,
            price: p,
        })
        .collect();
    let feats = build_features_from(
        &attrs,
        &FeatureConfig {
            token_buckets: 64,
            min_category_items: 1,
            ..FeatureConfig::default()
        },
    );
    let config = ModelConfig {
        n_items: n,
        n_categories: feats.categories.len(),
        n_token_buckets: 64,
        dim: 16,
        n_blocks: 2,
        n_heads: 2,
        max_len: 20,
        ffn_dim: 32,
        mlp_hidden: vec![16, 8],
        n_recency_buckets: 8,
        gated: false,
        swiglu: false,
    };
    let model = Model::new(config, feats.table.clone(), seed).expect("tiny config is valid");
    let items = ItemCatalog {
        ids: (0..n).map(|i| format!("I{i}")).collect(),
        titles: titles.into(),
        category: feats.table.category.clone(),
        price: prices.into(),
        added: (0..n).map(|i| Some(1.29e9 + i as f64 * 86_400.0)).collect(),
    };
    let popularity = (0..n).map(|i| 1.0 / (1.0 + i as f32)).collect();
    model.to_weight_file(
        items,
        feats.categories,
        popularity,
        feats.settings,
        serde_json::json!({ "synthetic": true, "seed": seed }),
        serde_json::json!({}),
    )
}

/// A history over `items` (oldest first) cycling through view, cart and purchase, with
/// growing gaps (`1e9 + i²·5000` seconds): every event kind and several recency buckets.
pub fn history(items: &[u32]) -> Vec<HistoryEvent> {
    let kinds = [EventKind::View, EventKind::Cart, EventKind::Purchase];
    items
        .iter()
        .enumerate()
        .map(|(i, &it)| HistoryEvent {
            item: it,
            kind: kinds[i % 3],
            at: 1e9 + (i * i) as f64 * 5000.0,
        })
        .collect()
}

/// Adds a popularity prior to `file` (`stats.popularity`: item `i` gets
/// `(53·i mod n) + 0.5`, so popularity order is not catalog order).
pub fn with_popularity(file: &mut WeightFile) {
    use vitrine::format::{Tensor, TensorData};
    let n = file.metadata.items.ids.len();
    let popularity: Vec<f32> = (0..n).map(|i| ((i * 53) % n) as f32 + 0.5).collect();
    file.tensors.insert(
        "stats.popularity".into(),
        Tensor {
            shape: vec![n],
            data: TensorData::F32(popularity),
        },
    );
}

/// `base`'s shape and item features with LiGR blocks (gated residuals, SwiGLU), freshly
/// initialised under `seed`, each gate tensor moved by uniform noise in
/// `[-spread/2, spread/2)` so the gates differ from their initial σ(≈0) = 0.5.
pub fn ligr_model(base: &Model, seed: u64, spread: f32) -> Model {
    let config = ModelConfig {
        gated: true,
        swiglu: true,
        ..base.config.clone()
    };
    let mut m = Model::new(config, base.features.clone(), seed).expect("valid config");
    let mut g = vitrine::rng::SplitMix64::new(seed ^ 0x5eed);
    for p in vitrine::model::params::param_table(&m.config) {
        if p.name.contains("gate_") {
            for x in &mut m.params[p.range()] {
                *x += spread * (g.next_f32() - 0.5);
            }
        }
    }
    m
}

/// Where the data section of a weight file's `bytes` starts (`8 + header length`).
pub fn data_start(bytes: &[u8]) -> usize {
    8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

/// `bytes` with the metadata's `content_hash` and `data_crc32` (where it has one)
/// recomputed for its data section, each replaced in place (the same length, so the
/// header's length and every offset stay): a change made to the data section is then
/// seen by the decoder, not by the load's check.
pub fn resealed(bytes: &[u8]) -> Vec<u8> {
    let start = data_start(bytes);
    let meta = vitrine::format::peek_metadata(bytes).expect("a readable header");
    let new_hash = vitrine::format::content_hash(&bytes[start..]);
    let mut out = bytes.to_vec();
    let at = (out[..start].windows(64))
        .position(|w| w == meta.content_hash.as_bytes())
        .expect("the header holds the content hash");
    out[at..at + 64].copy_from_slice(new_hash.as_bytes());
    if let Some(old) = meta.data_crc32 {
        let crc = vitrine::format::data_crc32(&new_hash, &bytes[start..]);
        let key = format!("data_crc32\\\":\\\"{old}");
        let at = (out[..start].windows(key.len()))
            .position(|w| w == key.as_bytes())
            .expect("the header holds data_crc32")
            + key.len()
            - 8;
        out[at..at + 8].copy_from_slice(format!("{crc:08x}").as_bytes());
    }
    out
}

/// `bytes` as a file written before `data_crc32` existed: the field removed from its
/// metadata (the header re-serialised, the data section as it was), so that a load
/// checks its SHA-256 (`content_hash`) instead.
pub fn without_crc(bytes: &[u8]) -> Vec<u8> {
    let start = data_start(bytes);
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..start]).unwrap();
    let text = header["__metadata__"]["vitrine"].as_str().unwrap();
    let mut meta: serde_json::Value = serde_json::from_str(text).unwrap();
    assert!(
        meta.as_object_mut().unwrap().remove("data_crc32").is_some(),
        "the file has no data_crc32 to remove"
    );
    header["__metadata__"]["vitrine"] = serde_json::Value::String(meta.to_string());
    let header = serde_json::to_vec(&header).unwrap();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    out.extend_from_slice(&bytes[start..]);
    out
}
