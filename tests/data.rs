#![cfg(not(target_arch = "wasm32"))]
//! Ingestion tests: CSV parsing and errors (file/line/column), strict vs lenient counting,
//! Online Retail cleaning, sequence files, and the shipped Online Retail file.
use std::io::Write;
use std::path::{Path, PathBuf};

use vitrine::data::{
    load_events_csv, load_online_retail, load_sequence_file, parse_timestamp, DataError,
    Dataset, IngestReport, LoadOptions, ParseKind,
};
use vitrine::history::EventKind;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn strict() -> LoadOptions {
    LoadOptions {
        strict: true,
        ..LoadOptions::default()
    }
}

fn seq_ids(ds: &Dataset, u: usize) -> Vec<&str> {
    ds.sequences[u]
        .iter()
        .map(|e| ds.items[e.item as usize].id.as_str())
        .collect()
}

fn check_invariant(rep: &IngestReport) {
    assert_eq!(
        rep.rows_read,
        rep.rows_kept + rep.total_dropped(),
        "every row is kept or counted: {rep}"
    );
}

#[test]
fn real_online_retail_numbers_are_plausible() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/online-retail/online_retail.csv.gz");
    let (ds, rep) = load_online_retail(&path, &LoadOptions::default()).unwrap();
    println!("{rep}");
    check_invariant(&rep);
    assert_eq!(rep.rows_read, 541_909);
    assert!((4_300..=4_372).contains(&ds.n_users()), "users {}", ds.n_users());
    assert!((3_600..=3_950).contains(&ds.n_items()), "items {}", ds.n_items());
    assert!(
        (350_000..=400_000).contains(&ds.n_interactions()),
        "events {}",
        ds.n_interactions()
    );
    for reason in [
        "cancellation",
        "missing_customer",
        "non_product_code",
        "non_positive_price",
        "duplicate_in_invoice",
    ] {
        assert!(rep.dropped.get(reason).copied().unwrap_or(0) > 0, "{reason}");
    }
    assert_eq!(rep.interactions, ds.n_interactions());
    assert_eq!(rep.rows_kept, ds.n_interactions());
    assert_eq!(ds.cold_items().len(), 0);
    let idx = ds.item_index();
    let heart = &ds.items[idx["85123A"] as usize];
    assert_eq!(heart.title, "WHITE HANGING HEART T-LIGHT HOLDER");
    let p = heart.price.unwrap();
    assert!((2.0..3.5).contains(&p), "price {p}");
    // 2010-12-01T08:26:00 is the first invoice in the file.
    assert_eq!(heart.added, Some(1_291_191_960.0));
    for s in &ds.sequences {
        assert!(!s.is_empty());
        assert!(s.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(s.iter().all(|e| e.kind == EventKind::Purchase));
    }
}
