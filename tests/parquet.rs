#![cfg(not(target_arch = "wasm32"))]
//! Parquet event logs: files written here (several row groups, nulls, typed and text
//! timestamps), the same dataset and report as the CSV path for the same events, clear
//! errors for wrong types, missing columns and corrupt files, and the synthetic log.
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::column::writer::ColumnWriter;
use parquet::data_type::ByteArray;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use vitrine::data::{
    load_events_csv, load_events_parquet, write_synthetic_log, DataError, IngestReport,
    LoadOptions, ParquetColumns, ParseKind, SynthLogSpec,
};
use vitrine::history::EventKind;

/// One column's values (`None` = null); every column is written `optional`.
enum Col {
    I32(Vec<Option<i32>>),
    I64(Vec<Option<i64>>),
    F64(Vec<Option<f64>>),
    Str(Vec<Option<&'static str>>),
}

fn split<T: Clone>(v: &[Option<T>]) -> (Vec<T>, Vec<i16>) {
    let vals = v.iter().flatten().cloned().collect();
    let defs = v.iter().map(|x| i16::from(x.is_some())).collect();
    (vals, defs)
}

/// Writes `cols` (same length) under `schema` in row groups of `group` rows.
fn write_parquet(path: &Path, schema: &str, cols: &[Col], group: usize) {
    let schema = Arc::new(parse_message_type(schema).unwrap());
    let props = Arc::new(WriterProperties::builder().build());
    let mut w = SerializedFileWriter::new(File::create(path).unwrap(), schema, props).unwrap();
    let n = match &cols[0] {
        Col::I32(v) => v.len(),
        Col::I64(v) => v.len(),
        Col::F64(v) => v.len(),
        Col::Str(v) => v.len(),
    };
    let mut start = 0;
    while start < n {
        let end = (start + group).min(n);
        let mut rg = w.next_row_group().unwrap();
        let mut i = 0;
        while let Some(mut cw) = rg.next_column().unwrap() {
            match (&cols[i], cw.untyped()) {
                (Col::I32(v), ColumnWriter::Int32ColumnWriter(c)) => {
                    let (vals, defs) = split(&v[start..end]);
                    c.write_batch(&vals, Some(&defs), None).unwrap();
                }
                (Col::I64(v), ColumnWriter::Int64ColumnWriter(c)) => {
                    let (vals, defs) = split(&v[start..end]);
                    c.write_batch(&vals, Some(&defs), None).unwrap();
                }
                (Col::F64(v), ColumnWriter::DoubleColumnWriter(c)) => {
                    let (vals, defs) = split(&v[start..end]);
                    c.write_batch(&vals, Some(&defs), None).unwrap();
                }
                (Col::Str(v), ColumnWriter::ByteArrayColumnWriter(c)) => {
                    let (vals, defs) = split(&v[start..end]);
                    let vals: Vec<ByteArray> = vals.into_iter().map(ByteArray::from).collect();
                    c.write_batch(&vals, Some(&defs), None).unwrap();
                }
                _ => panic!("column {i}: test data does not match the schema"),
            }
            cw.close().unwrap();
            i += 1;
        }
        rg.close().unwrap();
        start = end;
    }
    w.close().unwrap();
}

fn strict() -> LoadOptions {
    LoadOptions {
        strict: true,
        ..LoadOptions::default()
    }
}

/// The events of the equality test: good rows, and one of each bad kind.
/// (user, item, timestamp text, event type, quantity)
#[allow(clippy::type_complexity)]
fn events() -> Vec<(
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Option<i32>,
)> {
    vec![
        (
            Some("u1"),
            Some("A"),
            Some("1600000000"),
            Some("view"),
            Some(1),
        ),
        (
            Some("u1"),
            Some("B"),
            Some("1600000100"),
            Some("cart"),
            Some(2),
        ),
        (
            Some("u2"),
            Some("A"),
            Some("2020-09-13T12:30:00Z"),
            None,
            None,
        ),
        (None, Some("C"), Some("1600000200"), Some("view"), Some(1)), // missing user
        (
            Some("u2"),
            Some("C"),
            Some("yesterday"),
            Some("view"),
            Some(1),
        ), // bad timestamp
        (
            Some("u3"),
            Some("B"),
            Some("1600000300"),
            Some("wishlist"),
            Some(1),
        ), // unknown kind
        (
            Some("u3"),
            Some("C"),
            Some("1600000400"),
            Some("purchase"),
            Some(0),
        ), // qty 0
        (
            Some("u1"),
            Some("C"),
            Some("1599999999"),
            Some("purchase"),
            Some(3),
        ), // earlier
        (Some("u3"), None, Some("1600000500"), Some("view"), Some(1)), // missing item
        (Some("u2"), Some("B"), None, Some("view"), Some(1)),         // null timestamp
        (
            Some(" u2 "),
            Some("D"),
            Some("1600000600"),
            Some("Purchase"),
            Some(1),
        ),
    ]
}

fn csv_of_events() -> String {
    let mut s = String::from("user_id,item_id,timestamp,event_type,quantity\n");
    for (u, i, t, k, q) in events() {
        let q = q.map(|q| q.to_string()).unwrap_or_default();
        s.push_str(&format!(
            "{},{},{},{},{}\n",
            u.unwrap_or(""),
            i.unwrap_or(""),
            t.unwrap_or(""),
            k.unwrap_or(""),
            q
        ));
    }
    s
}

const TEXT_SCHEMA: &str = "message e {
  optional binary user_id (STRING);
  optional binary item_id (STRING);
  optional binary timestamp (STRING);
  optional binary event_type (STRING);
  optional int32 quantity;
}";

fn text_cols() -> Vec<Col> {
    let ev = events();
    vec![
        Col::Str(ev.iter().map(|e| e.0).collect()),
        Col::Str(ev.iter().map(|e| e.1).collect()),
        Col::Str(ev.iter().map(|e| e.2).collect()),
        Col::Str(ev.iter().map(|e| e.3).collect()),
        Col::I32(ev.iter().map(|e| e.4).collect()),
    ]
}

fn same_counts(a: &IngestReport, b: &IngestReport) {
    assert_eq!(a.rows_read, b.rows_read, "{a}\n{b}");
    assert_eq!(a.rows_kept, b.rows_kept, "{a}\n{b}");
    assert_eq!(a.dropped, b.dropped, "{a}\n{b}");
    assert_eq!(
        (a.users, a.items, a.cold_items, a.interactions),
        (b.users, b.items, b.cold_items, b.interactions)
    );
}

#[test]
fn parquet_and_csv_ingest_of_the_same_events_are_equal() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("e.csv");
    std::fs::write(&csv, csv_of_events()).unwrap();
    let pq = dir.path().join("e.parquet");
    write_parquet(&pq, TEXT_SCHEMA, &text_cols(), 3); // 4 row groups
    let opts = LoadOptions::default();
    let (ds_c, rep_c) = load_events_csv(&csv, None, &opts).unwrap();
    let (ds_p, rep_p) = load_events_parquet(&pq, &ParquetColumns::default(), None, &opts).unwrap();
    assert_eq!(ds_c, ds_p);
    same_counts(&rep_c, &rep_p);
    assert_eq!(rep_p.rows_read, 11);
    assert_eq!(rep_p.rows_kept, 5);
    for reason in [
        "missing_value",
        "bad_timestamp",
        "unknown_event_type",
        "non_positive_quantity",
    ] {
        assert!(rep_p.dropped.contains_key(reason), "{reason}: {rep_p}");
    }
    // Examples name the row group and the row (row 4 = the missing user, in group 1).
    let ex = &rep_p.examples["missing_value"][0];
    assert!(
        ex.contains("row group 1, row 3") && ex.contains("user_id"),
        "{ex}"
    );
    // With an items CSV too.
    let items = dir.path().join("items.csv");
    std::fs::write(&items, "item_id,title,price\nA,Apple,1.5\nZ,Zebra,\n").unwrap();
    let (ds_c, rep_c) = load_events_csv(&csv, Some(&items), &opts).unwrap();
    let (ds_p, rep_p) =
        load_events_parquet(&pq, &ParquetColumns::default(), Some(&items), &opts).unwrap();
    assert_eq!(ds_c, ds_p);
    same_counts(&rep_c, &rep_p);
    assert_eq!(rep_p.cold_items, 1);
}

#[test]
fn typed_parquet_matches_csv_and_a_directory_reads_in_name_order() {
    // Integer ids, millisecond timestamps, float quantities; split over two files.
    let schema = "message e {
      optional int64 user (INTEGER(64,true));
      optional int32 item;
      optional int64 time (TIMESTAMP(MILLIS,true));
      optional double qty;
    }";
    let users = [7i64, 7, 8, 9, 8, 7];
    let items = [100i32, 101, 100, 102, 103, 101];
    let secs = [
        1_600_000_000i64,
        1_600_000_050,
        1_600_000_010,
        1_600_000_020,
        1_600_000_005,
        1_600_000_001,
    ];
    let qty = [Some(1.0), None, Some(2.5), Some(-1.0), Some(1.0), Some(1.0)];
    let dir = tempfile::tempdir().unwrap();
    let pdir = dir.path().join("events");
    std::fs::create_dir(&pdir).unwrap();
    for (name, r) in [("part-1.parquet", 3..6), ("part-0.parquet", 0..3)] {
        let cols = vec![
            Col::I64(users[r.clone()].iter().map(|&u| Some(u)).collect()),
            Col::I32(items[r.clone()].iter().map(|&i| Some(i)).collect()),
            Col::I64(secs[r.clone()].iter().map(|&s| Some(s * 1000)).collect()),
            Col::F64(qty[r.clone()].to_vec()),
        ];
        write_parquet(&pdir.join(name), schema, &cols, 2);
    }
    std::fs::write(pdir.join("_SUCCESS"), "").unwrap();
    std::fs::write(pdir.join(".part-0.parquet.crc"), "junk").unwrap();
    let mut csv = String::from("user,item,time,qty\n");
    for i in 0..6 {
        let q = qty[i].map(|q| q.to_string()).unwrap_or_default();
        csv.push_str(&format!("{},{},{},{}\n", users[i], items[i], secs[i], q));
    }
    let cpath = dir.path().join("e.csv");
    std::fs::write(&cpath, csv).unwrap();
    let opts = LoadOptions::default();
    let (ds_c, rep_c) = load_events_csv(&cpath, None, &opts).unwrap();
    let (ds_p, rep_p) =
        load_events_parquet(&pdir, &ParquetColumns::default(), None, &opts).unwrap();
    assert_eq!(ds_c, ds_p);
    same_counts(&rep_c, &rep_p);
    assert_eq!(rep_p.dropped["non_positive_quantity"], 1);
    assert_eq!(ds_p.users, ["7", "8"]);
}

#[test]
fn timestamp_units_and_custom_column_names() {
    let schema = "message e {
      optional binary shopper (STRING);
      optional binary sku (STRING);
      optional int64 at_us (TIMESTAMP(MICROS,false));
      optional int64 at_ns (TIMESTAMP(NANOS,true));
      optional int32 day (DATE);
      optional binary action (STRING);
    }";
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.parquet");
    let cols = vec![
        Col::Str(vec![Some("a"), Some("a")]),
        Col::Str(vec![Some("x"), Some("y")]),
        Col::I64(vec![
            Some(1_600_000_000_500_000),
            Some(1_600_000_001_000_000),
        ]),
        Col::I64(vec![
            Some(1_600_000_000_250_000_000),
            Some(1_600_000_002_000_000_000),
        ]),
        Col::I32(vec![Some(18_518), Some(18_519)]),
        Col::Str(vec![Some("cart"), None]),
    ];
    write_parquet(&p, schema, &cols, 10);
    let opts = strict();
    for (col, want) in [
        ("at_us", [1_600_000_000.5, 1_600_000_001.0]),
        ("at_ns", [1_600_000_000.25, 1_600_000_002.0]),
        ("day", [18_518.0 * 86_400.0, 18_519.0 * 86_400.0]),
    ] {
        let names = ParquetColumns {
            user: Some("Shopper".into()),
            item: Some("sku".into()),
            timestamp: Some(col.into()),
            event_type: Some("action".into()),
            quantity: None,
        };
        let (ds, _) = load_events_parquet(&p, &names, None, &opts).unwrap();
        let got: Vec<f64> = ds.sequences[0].iter().map(|e| e.at).collect();
        assert_eq!(got, want, "{col}");
        let kinds: Vec<EventKind> = ds.sequences[0].iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::Cart, opts.default_kind], "{col}");
    }
}

#[test]
fn wrong_types_missing_columns_and_corrupt_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LoadOptions::default();
    let names = ParquetColumns::default();
    // item_id as a double.
    let p = dir.path().join("wrong.parquet");
    let schema = "message e { optional binary user_id (STRING); optional double item_id; optional int64 timestamp; }";
    write_parquet(
        &p,
        schema,
        &[
            Col::Str(vec![Some("u")]),
            Col::F64(vec![Some(1.0)]),
            Col::I64(vec![Some(1)]),
        ],
        10,
    );
    let e = load_events_parquet(&p, &names, None, &opts).unwrap_err();
    assert!(
        matches!(e, DataError::ParquetColumnType { ref column, .. } if column == "item_id"),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("wrong.parquet") && msg.contains("DOUBLE"),
        "{msg}"
    );
    // Event type as an integer.
    let p2 = dir.path().join("kind.parquet");
    let schema = "message e { optional binary user_id (STRING); optional binary item_id (STRING); optional int64 timestamp; optional int32 event_type; }";
    write_parquet(
        &p2,
        schema,
        &[
            Col::Str(vec![Some("u")]),
            Col::Str(vec![Some("i")]),
            Col::I64(vec![Some(1)]),
            Col::I32(vec![Some(3)]),
        ],
        10,
    );
    let e = load_events_parquet(&p2, &names, None, &opts).unwrap_err();
    assert!(
        e.to_string().contains("\"event_type\" has type INT32"),
        "{e}"
    );
    // Missing timestamp column; and an explicitly named optional column that is absent.
    let p3 = dir.path().join("missing.parquet");
    let schema =
        "message e { optional binary user_id (STRING); optional binary item_id (STRING); }";
    write_parquet(
        &p3,
        schema,
        &[Col::Str(vec![Some("u")]), Col::Str(vec![Some("i")])],
        10,
    );
    let e = load_events_parquet(&p3, &names, None, &opts).unwrap_err();
    assert!(
        matches!(e, DataError::MissingParquetColumn { ref column, .. } if column == "timestamp"),
        "{e}"
    );
    assert!(e.to_string().contains("user_id,item_id"), "{e}");
    let named = ParquetColumns {
        quantity: Some("units".into()),
        ..ParquetColumns::default()
    };
    let e = load_events_parquet(&p, &named, None, &opts).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::ParquetColumnType { .. } | DataError::MissingParquetColumn { .. }
        ),
        "{e}"
    );
    // Truncated at every length, and garbage: errors, never panics.
    let good = dir.path().join("good.parquet");
    write_parquet(&good, TEXT_SCHEMA, &text_cols(), 4);
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("cut.parquet");
    for len in (0..bytes.len()).step_by(7) {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let r = load_events_parquet(&cut, &names, None, &opts);
        assert!(r.is_err(), "truncated to {len} bytes loaded");
    }
    // Flipped bytes inside the data pages: an error or a load, never a panic.
    for i in (4..bytes.len().saturating_sub(8)).step_by(5) {
        let mut b = bytes.clone();
        b[i] ^= 0x5a;
        std::fs::write(&cut, &b).unwrap();
        let _ = load_events_parquet(&cut, &names, None, &opts);
    }
    std::fs::write(&cut, b"user_id,item_id,timestamp\nu,i,1\n").unwrap();
    let e = load_events_parquet(&cut, &names, None, &opts).unwrap_err();
    assert!(matches!(e, DataError::Parquet { .. }), "{e}");
    // An empty directory.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(matches!(
        load_events_parquet(&empty, &names, None, &opts).unwrap_err(),
        DataError::Empty { .. }
    ));
}

#[test]
fn strict_mode_stops_at_the_first_bad_row_with_its_row_group_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("e.parquet");
    write_parquet(&p, TEXT_SCHEMA, &text_cols(), 3);
    let e = load_events_parquet(&p, &ParquetColumns::default(), None, &strict()).unwrap_err();
    match e {
        DataError::ParquetRow {
            row_group,
            row,
            ref column,
            kind,
            ..
        } => {
            assert_eq!(
                (row_group, row, column.as_str(), kind),
                (1, 3, "user_id", ParseKind::MissingValue)
            );
        }
        other => panic!("expected a ParquetRow error, got {other}"),
    }
}

#[test]
fn synthetic_log_is_deterministic_and_loads() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SynthLogSpec {
        row_group_rows: 4_000,
        file_rows: 10_000,
        ..SynthLogSpec::new(25_000, 7)
    };
    let a: PathBuf = dir.path().join("a");
    let files = write_synthetic_log(&a, &spec).unwrap();
    assert_eq!(files.len(), 3);
    let opts = strict();
    let (ds, rep) = load_events_parquet(&a, &ParquetColumns::default(), None, &opts).unwrap();
    assert_eq!((rep.rows_read, rep.rows_kept), (25_000, 25_000));
    assert!(ds.n_users() <= spec.users as usize && ds.n_items() <= spec.items as usize);
    // Popularity is skewed: the top 1% of items hold well over 1% of the events.
    let mut counts = ds.interaction_counts();
    counts.sort_unstable_by(|x, y| y.cmp(x));
    let top: u32 = counts[..counts.len() / 100 + 1].iter().sum();
    assert!(top as f64 > 0.1 * 25_000.0, "top 1% of items: {top} events");
    // Same seed, same log.
    let b = dir.path().join("b");
    write_synthetic_log(&b, &spec).unwrap();
    let (ds_b, _) = load_events_parquet(&b, &ParquetColumns::default(), None, &opts).unwrap();
    assert_eq!(ds, ds_b);
}

#[test]
fn items_from_parquet_match_items_from_csv() {
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("e.parquet");
    write_parquet(&pq, TEXT_SCHEMA, &text_cols(), 5);
    let icsv = dir.path().join("items.csv");
    std::fs::write(
        &icsv,
        "item_id,title,category,price\nA,Apple,fruit,1.5\nZ,Zebra,,\n,Nameless,x,1\nA,Again,fruit,2\nB,Bad,x,-3\nC,,veg,2\n",
    )
    .unwrap();
    let ipq = dir.path().join("items.parquet");
    let schema = "message i {
      optional binary item_id (STRING);
      optional binary title (STRING);
      optional binary category (STRING);
      optional double price;
    }";
    let cols = vec![
        Col::Str(vec![
            Some("A"),
            Some("Z"),
            None,
            Some("A"),
            Some("B"),
            Some("C"),
        ]),
        Col::Str(vec![
            Some("Apple"),
            Some("Zebra"),
            Some("Nameless"),
            Some("Again"),
            Some("Bad"),
            None,
        ]),
        Col::Str(vec![
            Some("fruit"),
            None,
            Some("x"),
            Some("fruit"),
            Some("x"),
            Some("veg"),
        ]),
        Col::F64(vec![
            Some(1.5),
            None,
            Some(1.0),
            Some(2.0),
            Some(-3.0),
            Some(2.0),
        ]),
    ];
    write_parquet(&ipq, schema, &cols, 4);
    let opts = LoadOptions::default();
    let names = ParquetColumns::default();
    let (ds_c, rep_c) = load_events_parquet(&pq, &names, Some(&icsv), &opts).unwrap();
    let (ds_p, rep_p) = load_events_parquet(&pq, &names, Some(&ipq), &opts).unwrap();
    assert_eq!(ds_c, ds_p);
    same_counts(&rep_c, &rep_p);
    for reason in ["duplicate_item", "bad_price", "missing_value"] {
        assert!(rep_p.dropped.contains_key(reason), "{reason}: {rep_p}");
    }
    assert_eq!(ds_p.items[0].title, "Apple");
    assert_eq!(ds_p.items[0].category.as_deref(), Some("fruit"));
    let dup = &rep_p.examples["duplicate_item"][0];
    assert!(dup.contains("first on row group 0, row 0"), "{dup}");
}
