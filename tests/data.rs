#![cfg(not(target_arch = "wasm32"))]
//! Ingestion tests: CSV parsing and errors (file/line/column), strict vs lenient counting,
//! Online Retail cleaning, sequence files, and the shipped Online Retail file.
use std::io::Write;
use std::path::{Path, PathBuf};

use vitrine::data::{
    load_events_csv, load_online_retail, load_sequence_file, parse_timestamp, DataError, Dataset,
    IngestReport, LoadOptions, ParseKind,
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
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/online-retail/online_retail.csv.gz");
    let (ds, rep) = load_online_retail(&path, &LoadOptions::default()).unwrap();
    println!("{rep}");
    check_invariant(&rep);
    assert_eq!(rep.rows_read, 541_909);
    assert!(
        (4_300..=4_372).contains(&ds.n_users()),
        "users {}",
        ds.n_users()
    );
    assert!(
        (3_600..=3_950).contains(&ds.n_items()),
        "items {}",
        ds.n_items()
    );
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
        assert!(
            rep.dropped.get(reason).copied().unwrap_or(0) > 0,
            "{reason}"
        );
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

const RETAIL_HEADER: &str =
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n";

#[test]
fn online_retail_cleaning_counts_every_reason() {
    let dir = tempfile::tempdir().unwrap();
    let body = "\
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01T08:26:00,2.55,17850,United Kingdom
536365,71053,WHITE METAL LANTERN,6,2010-12-01T08:26:00,3.39,17850,United Kingdom
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,2,2010-12-01T08:26:00,2.55,17850,United Kingdom
C536379,22423,REGENCY CAKESTAND 3 TIER,-1,2010-12-01T09:41:00,12.75,14527,United Kingdom
536380,22423,damaged,-5,2010-12-01T09:45:00,0,14527,United Kingdom
536381,82567,\"AIRLINE LOUNGE,METAL SIGN\",2,2010-12-01T09:41:00,2.1,,United Kingdom
536382,POST,POSTAGE,3,2010-12-01T09:50:00,18,12583,France
536382,gift_0001_20,Dotcomgiftshop Gift Voucher £20.00,1,2010-12-01T09:50:00,17.02,12583,France
536382,BANK CHARGES,Bank Charges,1,2010-12-01T09:50:00,15,12583,France
536383,22139,,1,2010-12-01T10:00:00,0.0,12583,France
536384,22423,REGENCY CAKESTAND 3 TIER,two,2010-12-01T10:00:00,12.75,12583,France
536385,22423,REGENCY CAKESTAND 3 TIER,1,yesterday,12.75,12583,France
536386,22423,\"REGENCY CAKESTAND, 3 TIER\",1,2010-12-02T10:00:00,10.95,12583,France
536387,85123a,CREAM HANGING HEART T-LIGHT HOLDER,1,2010-12-03T10:00:00,2.95,12583,France
536388,22423,REGENCY CAKESTAND 3 TIER,2,2010-12-02T09:00:00,12.75,17850,United Kingdom
536389,22423,REGENCY CAKESTAND 3 TIER,2,2010-12-04T09:00:00,14.00,17850,United Kingdom
";
    let path = write(dir.path(), "retail.csv", &format!("{RETAIL_HEADER}{body}"));
    let (ds, rep) = load_online_retail(&path, &LoadOptions::default()).unwrap();
    check_invariant(&rep);
    assert_eq!(rep.rows_read, 16);
    let d = |r: &str| rep.dropped.get(r).copied().unwrap_or(0);
    assert_eq!(d("duplicate_in_invoice"), 1);
    assert_eq!(d("cancellation"), 1);
    assert_eq!(d("non_positive_quantity"), 1);
    assert_eq!(d("missing_customer"), 1);
    assert_eq!(d("non_product_code"), 3);
    assert_eq!(d("non_positive_price"), 1);
    assert_eq!(d("bad_quantity"), 1);
    assert_eq!(d("bad_timestamp"), 1);
    assert_eq!(rep.rows_kept, 6);
    assert_eq!(ds.users, vec!["17850", "12583"]);
    // Lower-case suffix is the same product as 85123A.
    assert_eq!(ds.n_items(), 3);
    assert_eq!(seq_ids(&ds, 0), vec!["85123A", "71053", "22423", "22423"]);
    assert_eq!(seq_ids(&ds, 1), vec!["22423", "85123A"]);
    let idx = ds.item_index();
    let cake = &ds.items[idx["22423"] as usize];
    // Most frequent description wins over the quoted variant with a comma.
    assert_eq!(cake.title, "REGENCY CAKESTAND 3 TIER");
    // Median of 10.95, 12.75, 14.00.
    assert_eq!(cake.price, Some(12.75));
    assert_eq!(cake.added, parse_timestamp("2010-12-02T09:00:00"));
    let heart = &ds.items[idx["85123A"] as usize];
    assert_eq!(heart.price, Some((2.55 + 2.95) / 2.0));
    // Examples name the file and line.
    let ex = &rep.examples["bad_timestamp"][0];
    assert!(ex.contains("retail.csv:13:5"), "{ex}");
    assert!(ex.contains("\"yesterday\""), "{ex}");
    let shown = rep.to_string();
    assert!(shown.contains("non_product_code"), "{shown}");
    assert!(shown.contains("2 users, 3 items"), "{shown}");
    // Strict mode stops at the first bad field, but cleaning drops are not errors.
    let err = load_online_retail(&path, &strict()).unwrap_err();
    assert_eq!(err.parse_kind(), Some(ParseKind::BadQuantity));
    assert!(err.to_string().contains("retail.csv:12:4:"), "{err}");
}

#[test]
fn timestamps_unix_and_iso() {
    assert_eq!(parse_timestamp("0"), Some(0.0));
    assert_eq!(parse_timestamp("1291191960"), Some(1_291_191_960.0));
    assert_eq!(parse_timestamp("1291191960.5"), Some(1_291_191_960.5));
    assert_eq!(
        parse_timestamp("2010-12-01T08:26:00"),
        Some(1_291_191_960.0)
    );
    assert_eq!(
        parse_timestamp("2010-12-01 08:26:00"),
        Some(1_291_191_960.0)
    );
    assert_eq!(parse_timestamp("2010-12-01T08:26"), Some(1_291_191_960.0));
    assert_eq!(
        parse_timestamp("2010-12-01T08:26:00Z"),
        Some(1_291_191_960.0)
    );
    assert_eq!(
        parse_timestamp("2010-12-01T09:26:00+01:00"),
        Some(1_291_191_960.0)
    );
    assert_eq!(
        parse_timestamp("2010-12-01T03:26:00-0500"),
        Some(1_291_191_960.0)
    );
    assert_eq!(parse_timestamp("2010-12-01"), Some(1_291_161_600.0));
    assert_eq!(parse_timestamp("1970-01-01"), Some(0.0));
    assert_eq!(parse_timestamp("2000-03-01"), Some(951_868_800.0));
    assert_eq!(parse_timestamp("2024-02-29"), Some(1_709_164_800.0));
    assert_eq!(parse_timestamp("2023-02-29"), None);
    assert_eq!(parse_timestamp("2010-13-01"), None);
    assert_eq!(parse_timestamp("2010-12-01T25:00"), None);
    assert_eq!(parse_timestamp("yesterday"), None);
    assert_eq!(parse_timestamp(""), None);
    assert_eq!(parse_timestamp("1e9"), None);
    assert_eq!(parse_timestamp("NaN"), None);
    assert_eq!(parse_timestamp("12/1/2010"), None);
}

const EVENTS: &str = "\
user_id,item_id,timestamp,event_type,quantity
u1,A,1000,view,
u1,B,2010-12-01T08:26:00,purchase,2
u2,\"C, with comma\",500,cart,1
u1,A,900,view,1
u2,B,500,purchase,1
u2,C2,yesterday,view,1
u3,A,100,click,1
u3,B,100,view,many
u3,B,100,view,0
u3,,100,view,1
u3,A,100,view,1,extra
u4,A,100
";

#[test]
fn events_csv_lenient_counts_and_orders() {
    let dir = tempfile::tempdir().unwrap();
    let ev = write(dir.path(), "events.csv", EVENTS);
    let items = write(
        dir.path(),
        "items.csv",
        "item_id,title,category,price\nZ,Cold new item,Toys,9.99\nA,Item A,,1.50\nB,\"Item B, large\",Home,\n",
    );
    let opts = LoadOptions {
        event_weights: [0.5, 1.0, 3.0],
        ..LoadOptions::default()
    };
    let (ds, rep) = load_events_csv(&ev, Some(&items), &opts).unwrap();
    check_invariant(&rep);
    assert_eq!(rep.rows_read, 12 + 3);
    assert_eq!(rep.rows_kept, 6 + 3);
    let d = |r: &str| rep.dropped.get(r).copied().unwrap_or(0);
    assert_eq!(d("bad_timestamp"), 1);
    assert_eq!(d("unknown_event_type"), 1);
    assert_eq!(d("bad_quantity"), 1);
    assert_eq!(d("non_positive_quantity"), 1);
    assert_eq!(d("missing_value"), 1);
    assert_eq!(d("wrong_field_count"), 1);
    assert_eq!(ds.event_weights, [0.5, 1.0, 3.0]);
    assert_eq!(ds.weight(EventKind::Purchase), 3.0);
    // Items file order first, then items only seen in events (title = id).
    let ids: Vec<&str> = ds.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, vec!["Z", "A", "B", "C, with comma"]);
    assert_eq!(ds.items[2].title, "Item B, large");
    assert_eq!(ds.items[2].category.as_deref(), Some("Home"));
    assert_eq!(ds.items[2].price, None);
    assert_eq!(ds.items[1].price, Some(1.5));
    assert_eq!(ds.items[1].category, None);
    assert_eq!(ds.items[3].title, "C, with comma");
    // Cold item stays in the catalog.
    assert_eq!(ds.cold_items(), vec![0]);
    assert_eq!(rep.cold_items, 1);
    assert_eq!(ds.items[0].added, None);
    assert_eq!(ds.items[1].added, Some(100.0));
    // Sorted by time, ties in file order.
    // Optional trailing columns may be left out (u4), extra ones may not.
    assert_eq!(ds.users, vec!["u1", "u2", "u4"]);
    assert_eq!(seq_ids(&ds, 0), vec!["A", "A", "B"]);
    assert_eq!(ds.sequences[0][0].at, 900.0);
    assert_eq!(seq_ids(&ds, 1), vec!["C, with comma", "B"]);
    assert_eq!(ds.sequences[1][0].kind, EventKind::Cart);
    // Error messages name file, line and column.
    let ex = &rep.examples["bad_timestamp"][0];
    assert!(
        ex.contains(
            "events.csv:7:3: expected a Unix timestamp or ISO 8601 date, found \"yesterday\""
        ),
        "{ex}"
    );
    assert!(rep.examples["unknown_event_type"][0].contains("events.csv:8:4:"));
    assert!(rep.examples["bad_quantity"][0].contains("events.csv:9:5:"));
    assert!(rep.examples["missing_value"][0].contains("events.csv:11:2:"));
    assert!(rep.examples["wrong_field_count"][0].contains("events.csv:12:6:"));
}

#[test]
fn events_csv_strict_stops_at_first_error() {
    let dir = tempfile::tempdir().unwrap();
    let ev = write(dir.path(), "events.csv", EVENTS);
    let err = load_events_csv(&ev, None, &strict()).unwrap_err();
    match &err {
        DataError::Parse {
            line,
            column,
            kind,
            found,
            ..
        } => {
            assert_eq!((*line, *column), (7, 3));
            assert_eq!(*kind, ParseKind::BadTimestamp);
            assert_eq!(found, "yesterday");
        }
        other => panic!("unexpected {other:?}"),
    }
    // A clean file loads the same in both modes.
    let clean = write(
        dir.path(),
        "clean.csv",
        "user_id,item_id,timestamp\nu1,A,2020-01-01\nu1,B,2020-01-02T10:00:00Z\n",
    );
    let (a, ra) = load_events_csv(&clean, None, &strict()).unwrap();
    let (b, rb) = load_events_csv(&clean, None, &LoadOptions::default()).unwrap();
    assert_eq!(a, b);
    assert_eq!(ra, rb);
    assert_eq!(a.sequences[0][0].kind, EventKind::Purchase);
    assert_eq!(ra.total_dropped(), 0);
}

#[test]
fn items_csv_errors_name_file_line_column() {
    let dir = tempfile::tempdir().unwrap();
    let ev = write(
        dir.path(),
        "events.csv",
        "user_id,item_id,timestamp\nu1,A,1\n",
    );
    let items = write(
        dir.path(),
        "items.csv",
        "item_id,title,category,price\nA,\"Quoted, title\",Home,1\nB,Bee,Home,cheap\nA,Again,Home,2\n",
    );
    let err = load_events_csv(&ev, Some(&items), &strict()).unwrap_err();
    assert!(
        err.to_string()
            .contains("items.csv:3:4: expected a non-negative price, found \"cheap\""),
        "{err}"
    );
    let (ds, rep) = load_events_csv(&ev, Some(&items), &LoadOptions::default()).unwrap();
    check_invariant(&rep);
    assert_eq!(rep.dropped["bad_price"], 1);
    assert_eq!(rep.dropped["duplicate_item"], 1);
    assert!(rep.examples["duplicate_item"][0].contains("items.csv:4:1:"));
    assert!(rep.examples["duplicate_item"][0].contains("first on line 2"));
    assert_eq!(ds.n_items(), 1);
    assert_eq!(ds.items[0].title, "Quoted, title");
}

#[test]
fn missing_column_and_empty_files() {
    let dir = tempfile::tempdir().unwrap();
    let ev = write(
        dir.path(),
        "events.csv",
        "user_id,product,timestamp\nu1,A,1\n",
    );
    let err = load_events_csv(&ev, None, &LoadOptions::default()).unwrap_err();
    match &err {
        DataError::MissingColumn { column, file, .. } => {
            assert_eq!(column, "item_id");
            assert!(file.ends_with("events.csv"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string().contains("missing column \"item_id\""),
        "{err}"
    );
    let items = write(dir.path(), "items.csv", "item_id,category\nA,Home\n");
    let ok_ev = write(dir.path(), "ok.csv", "user_id,item_id,timestamp\nu1,A,1\n");
    let err = load_events_csv(&ok_ev, Some(&items), &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::MissingColumn { ref column, .. } if column == "title"));
    // Header names are matched loosely.
    let loose = write(
        dir.path(),
        "loose.csv",
        "UserId,Item ID,TIMESTAMP\nu1,A,1\n",
    );
    assert!(load_events_csv(&loose, None, &strict()).is_ok());

    let empty = write(dir.path(), "empty.csv", "");
    assert!(matches!(
        load_events_csv(&empty, None, &LoadOptions::default()),
        Err(DataError::Empty { .. })
    ));
    let header_only = write(dir.path(), "h.csv", "user_id,item_id,timestamp\n");
    assert!(matches!(
        load_events_csv(&header_only, None, &LoadOptions::default()),
        Err(DataError::Empty { .. })
    ));
    // All rows bad: an error, not an empty dataset.
    let bad = write(
        dir.path(),
        "bad.csv",
        "user_id,item_id,timestamp\nu1,A,soon\n",
    );
    assert!(matches!(
        load_events_csv(&bad, None, &LoadOptions::default()),
        Err(DataError::Empty { .. })
    ));
    let missing = dir.path().join("nope.csv");
    let err = load_events_csv(&missing, None, &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }));
    assert!(err.to_string().contains("nope.csv"));
    let bad_weights = LoadOptions {
        event_weights: [1.0, f32::NAN, 1.0],
        ..LoadOptions::default()
    };
    assert!(matches!(
        load_events_csv(&ok_ev, None, &bad_weights),
        Err(DataError::InvalidOptions(_))
    ));
}

#[test]
fn rfc4180_quoting_crlf_bom_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let text = "\u{feff}user_id,item_id,timestamp\r\n\"u1\",\"A \"\"big\"\" one\",1\r\nu1,\"multi\nline\",2\r\n\r\nu2,\"x,y\",3\r\n";
    let p = write(dir.path(), "q.csv", text);
    let (ds, rep) = load_events_csv(&p, None, &strict()).unwrap();
    assert_eq!(rep.rows_read, 3);
    let ids: Vec<&str> = ds.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, vec!["A \"big\" one", "multi\nline", "x,y"]);
    // Gzip is detected from the content.
    let gz = dir.path().join("q.csv.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap();
    let (ds2, _) = load_events_csv(&gz, None, &strict()).unwrap();
    assert_eq!(ds, ds2);
    // Line numbers count physical lines, including those inside quoted fields.
    let t2 = "user_id,item_id,timestamp\nu1,\"a\nb\",1\nu1,B,never\n";
    let p2 = write(dir.path(), "lines.csv", t2);
    let err = load_events_csv(&p2, None, &strict()).unwrap_err();
    assert!(err.to_string().contains("lines.csv:4:3:"), "{err}");
    // Unterminated quote and junk after a closing quote.
    let p3 = write(
        dir.path(),
        "unterminated.csv",
        "user_id,item_id,timestamp\nu1,B,1\nu1,\"A,1\n",
    );
    let err = load_events_csv(&p3, None, &strict()).unwrap_err();
    assert_eq!(err.parse_kind(), Some(ParseKind::UnterminatedQuote));
    assert!(err.to_string().contains("unterminated.csv:3:2:"), "{err}");
    let (_, rep) = load_events_csv(&p3, None, &LoadOptions::default()).unwrap();
    assert_eq!(rep.dropped["unterminated_quote"], 1);
    let p4 = write(
        dir.path(),
        "junk.csv",
        "user_id,item_id,timestamp\nu1,\"A\"x,1\n",
    );
    let err = load_events_csv(&p4, None, &strict()).unwrap_err();
    assert_eq!(err.parse_kind(), Some(ParseKind::BadQuoting));
    assert!(err.to_string().contains("junk.csv:2:2:"), "{err}");
    // Invalid UTF-8 is a row error, not a panic.
    let p5 = dir.path().join("latin1.csv");
    std::fs::write(&p5, b"user_id,item_id,timestamp\nu1,caf\xe9,1\nu1,B,2\n").unwrap();
    let err = load_events_csv(&p5, None, &strict()).unwrap_err();
    assert_eq!(err.parse_kind(), Some(ParseKind::InvalidUtf8));
    let (ds, rep) = load_events_csv(&p5, None, &LoadOptions::default()).unwrap();
    assert_eq!(rep.dropped["invalid_utf8"], 1);
    assert_eq!(ds.n_interactions(), 1);
    // A corrupt gzip stream is an I/O error naming the file.
    let p6 = dir.path().join("broken.csv.gz");
    let mut bytes = std::fs::read(&gz).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&p6, bytes).unwrap();
    let err = load_events_csv(&p6, None, &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("broken.csv.gz"));
}

#[test]
fn sequence_file_both_variants_and_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let per_user = write(dir.path(), "Beauty.txt", "1 10 11 12\n2 11 13\n\n3 10\n");
    let pairs = write(
        dir.path(),
        "pairs.txt",
        "1 10\n1 11\n2 11\n1 12\n2 13\n3 10\n",
    );
    let (a, ra) = load_sequence_file(&per_user, None, &LoadOptions::default()).unwrap();
    let (b, rb) = load_sequence_file(&pairs, None, &LoadOptions::default()).unwrap();
    check_invariant(&ra);
    check_invariant(&rb);
    assert_eq!(ra.rows_read, 3);
    assert_eq!(rb.rows_read, 6);
    assert_eq!(a.users, vec!["1", "2", "3"]);
    assert_eq!(b.users, a.users);
    assert_eq!(a.sequences, b.sequences);
    assert_eq!(seq_ids(&a, 0), vec!["10", "11", "12"]);
    let ats: Vec<f64> = a.sequences[0].iter().map(|e| e.at).collect();
    assert_eq!(ats, vec![0.0, 1.0, 2.0]);
    assert_eq!(a.n_items(), 4);
    assert_eq!(a.n_interactions(), 6);

    let attrs = write(
        dir.path(),
        "Beauty_item2attributes.json",
        r#"{"10": ["Skin", "Face"], "11": "Hair", "12": [7, 8], "13": [], "99": ["Ghost"]}"#,
    );
    let (c, rc) = load_sequence_file(&per_user, Some(&attrs), &LoadOptions::default()).unwrap();
    let idx = c.item_index();
    let cat = |id: &str| c.items[idx[id] as usize].category.clone();
    assert_eq!(cat("10").as_deref(), Some("Skin"));
    assert_eq!(cat("11").as_deref(), Some("Hair"));
    assert_eq!(cat("12").as_deref(), Some("7"));
    assert_eq!(cat("13"), None);
    // Every attribute joins the title (numbers as `attr<N>`), so the title tokens carry it.
    let title = |id: &str| c.items[idx[id] as usize].title.clone();
    assert_eq!(title("10"), "10 Skin Face");
    assert_eq!(title("11"), "11 Hair");
    assert_eq!(title("12"), "12 attr7 attr8");
    assert_eq!(title("13"), "13");
    assert_eq!(c.n_items(), 4, "attribute-only items are not added");
    assert!(rc.notes.iter().any(|n| n.contains("1 attribute entries")));

    // Bad lines and bad JSON.
    let bad = write(dir.path(), "bad.txt", "1 10\n2\n3 11\n");
    let err = load_sequence_file(&bad, None, &strict()).unwrap_err();
    assert!(err.to_string().contains("bad.txt:2:2:"), "{err}");
    assert_eq!(err.parse_kind(), Some(ParseKind::MissingItem));
    let (d, rd) = load_sequence_file(&bad, None, &LoadOptions::default()).unwrap();
    check_invariant(&rd);
    assert_eq!(rd.dropped["missing_item"], 1);
    assert_eq!(d.n_users(), 2);
    let bad_json = write(dir.path(), "a.json", "{\"10\": [\"x\"],\n \"11\": }");
    let err = load_sequence_file(&per_user, Some(&bad_json), &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::Json { line: 2, .. }), "{err:?}");
    let obj_json = write(dir.path(), "b.json", "{\"10\": {\"x\": 1}}");
    let err = load_sequence_file(&per_user, Some(&obj_json), &LoadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("item \"10\""), "{err}");
    let arr_json = write(dir.path(), "c.json", "[1, 2]");
    assert!(matches!(
        load_sequence_file(&per_user, Some(&arr_json), &LoadOptions::default()),
        Err(DataError::Json { .. })
    ));
}

#[test]
fn dataset_helpers() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "s.txt", "1 10 11 12\n2 11\n3 10 12\n");
    let (mut ds, _) = load_sequence_file(&p, None, &LoadOptions::default()).unwrap();
    assert_eq!(ds.interaction_counts(), vec![2, 2, 2]);
    assert_eq!(ds.retain_users_with_min_events(2), 1);
    assert_eq!(ds.users, vec!["1", "3"]);
    assert_eq!(ds.sequences.len(), 2);
    assert_eq!(ds.interaction_counts(), vec![2, 1, 2]);
    assert_eq!(ds.n_items(), 3);
}

#[test]
fn real_online_retail_features() {
    use vitrine::features::{build_features, FeatureConfig};
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/online-retail/online_retail.csv.gz");
    let (ds, _) = load_online_retail(&path, &LoadOptions::default()).unwrap();
    let f = build_features(&ds.items, &FeatureConfig::default());
    let t = &f.table;
    assert_eq!(t.len(), ds.n_items());
    let mut counts = vec![0usize; f.categories.len()];
    for &c in &t.category {
        counts[c as usize] += 1;
    }
    let mut shown: Vec<(usize, &str)> = counts
        .iter()
        .zip(&f.categories)
        .map(|(n, c)| (*n, c.as_str()))
        .collect();
    shown.sort_by_key(|s| std::cmp::Reverse(s.0));
    println!(
        "{} categories; largest: {:?}",
        f.categories.len(),
        &shown[..30]
    );
    // Every item has a known price, and most fall into a real (not "other") category.
    assert!(t.price_missing.iter().all(|&m| m == 0.0));
    assert!(counts[0] == 0, "no unknown category: {}", counts[0]);
    assert!(
        counts[1] * 3 < ds.n_items(),
        "other holds {} items",
        counts[1]
    );
    assert!(
        (50..=400).contains(&f.categories.len()),
        "{}",
        f.categories.len()
    );
    let idx = ds.item_index();
    let cat = |id: &str| f.categories[t.category[idx[id] as usize] as usize].as_str();
    assert_eq!(cat("85123A"), "HOLDER");
    assert_eq!(cat("85099B"), "BAG");
}
