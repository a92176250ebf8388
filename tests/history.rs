//! The on-device history rules: caps, dedup, concurrent merge, and validation of
//! whatever `localStorage` hands back.
use vitrine::history::{
    EventKind, HistoryError, HistoryLimits, HistoryStore, StoredEvent, HISTORY_SCHEMA,
};
use vitrine::rng::SplitMix64;

const NS: &str = "vitrine:shop:model";
const DAY: f64 = 86_400.0;
const T0: f64 = 1_700_000_000.0;

fn ev(item: &str, kind: EventKind, at: f64) -> StoredEvent {
    StoredEvent {
        item: item.to_string(),
        kind,
        at,
    }
}

fn view(item: &str, at: f64) -> StoredEvent {
    ev(item, EventKind::View, at)
}

fn assert_sorted(s: &HistoryStore) {
    for w in s.events.windows(2) {
        assert!(w[0].at <= w[1].at, "events out of order: {w:?}");
    }
}

#[test]
fn defaults_are_the_documented_ones() {
    let l = HistoryLimits::default();
    assert_eq!(l.max_events, 200);
    assert_eq!(l.max_bytes, 64 * 1024);
    assert_eq!(l.max_age_days, 180.0);
    assert_eq!(l.dedup_window_secs, 1800.0);
}

#[test]
fn record_caps_event_count_dropping_oldest() {
    let limits = HistoryLimits::default();
    let mut s = HistoryStore::new(NS);
    for i in 0..500 {
        s.record(view(&format!("I{i}"), T0 + i as f64 * 60.0), &limits)
            .unwrap();
    }
    assert_eq!(s.events.len(), 200);
    assert_eq!(s.events[0].item, "I300");
    assert_eq!(s.events[199].item, "I499");
    assert_sorted(&s);
}

#[test]
fn record_caps_bytes_dropping_oldest() {
    let limits = HistoryLimits {
        max_bytes: 2_000,
        ..HistoryLimits::default()
    };
    let mut s = HistoryStore::new(NS);
    let long = "x".repeat(100);
    for i in 0..100 {
        s.record(view(&format!("{long}{i}"), T0 + i as f64 * 60.0), &limits)
            .unwrap();
        let json = s.to_json();
        assert!(json.len() <= 2_000, "{} bytes", json.len());
        assert_eq!(json.len(), s.json_bytes());
    }
    assert!(s.events.len() >= 10, "byte cap dropped too much");
    assert!(s.events.last().unwrap().item.ends_with("99"));
    // Adding one more event of the same size would exceed the cap: it is as full as allowed.
    let one = s.json_bytes() / s.events.len();
    assert!(s.json_bytes() + one > 2_000 - one);
}

#[test]
fn a_single_event_larger_than_the_cap_is_refused() {
    let limits = HistoryLimits {
        max_bytes: 200,
        ..HistoryLimits::default()
    };
    let mut s = HistoryStore::new(NS);
    s.record(view("small", T0), &limits).unwrap();
    let err = s.record(view(&"y".repeat(500), T0 + 1.0), &limits);
    assert!(
        matches!(err, Err(HistoryError::TooLarge { max: 200, .. })),
        "{err:?}"
    );
    assert_eq!(s.events.len(), 1);
}

#[test]
fn repeated_view_within_window_updates_time() {
    let limits = HistoryLimits::default();
    let mut s = HistoryStore::new(NS);
    s.record(view("A", T0), &limits).unwrap();
    s.record(view("B", T0 + 60.0), &limits).unwrap();
    s.record(view("A", T0 + 600.0), &limits).unwrap();
    assert_eq!(s.events.len(), 2);
    assert_eq!(s.events[1], view("A", T0 + 600.0));
    // Outside the window: a new event.
    s.record(view("A", T0 + 600.0 + 1801.0), &limits).unwrap();
    assert_eq!(s.events.len(), 3);
    // A purchase is never merged, and a different kind is a different event.
    s.record(ev("A", EventKind::Cart, T0 + 2500.0), &limits)
        .unwrap();
    s.record(ev("A", EventKind::Purchase, T0 + 2600.0), &limits)
        .unwrap();
    s.record(ev("A", EventKind::Purchase, T0 + 2700.0), &limits)
        .unwrap();
    assert_eq!(s.events.len(), 6);
    assert_sorted(&s);
}

#[test]
fn prune_drops_old_and_far_future_events() {
    let limits = HistoryLimits::default();
    let now = T0 + 1000.0 * DAY;
    let mut s = HistoryStore::new(NS);
    s.events = vec![
        view("old", now - 181.0 * DAY),
        view("keep1", now - 179.0 * DAY),
        view("keep2", now - 1.0),
        view("soon", now + 3600.0),
        view("future", now + 2.0 * DAY),
    ];
    s.prune(now, &limits);
    let items: Vec<&str> = s.events.iter().map(|e| e.item.as_str()).collect();
    assert_eq!(items, ["keep1", "keep2", "soon"]);
}

#[test]
fn merge_of_two_concurrent_writers_loses_nothing() {
    let limits = HistoryLimits::default();
    let mut base = HistoryStore::new(NS);
    for i in 0..20 {
        base.record(view(&format!("B{i}"), T0 + i as f64 * 100.0), &limits)
            .unwrap();
    }
    // Two tabs load the same state and write interleaved events.
    let mut tab1 = base.clone();
    let mut tab2 = base.clone();
    for i in 0..30 {
        let t = T0 + 10_000.0 + i as f64 * 7.0;
        tab1.record(ev(&format!("X{i}"), EventKind::Cart, t), &limits)
            .unwrap();
        tab2.record(ev(&format!("Y{i}"), EventKind::Purchase, t + 3.0), &limits)
            .unwrap();
    }
    let mut merged = tab1.clone();
    merged.merge(&base, &tab2, &limits).unwrap();
    assert_eq!(merged.events.len(), 20 + 30 + 30);
    for e in tab1.events.iter().chain(&tab2.events) {
        assert!(merged.events.contains(e), "lost {e:?}");
    }
    assert_sorted(&merged);
    // Merging is symmetric and idempotent.
    let mut other = tab2.clone();
    other.merge(&base, &tab1, &limits).unwrap();
    assert_eq!(other, merged);
    let again = merged.clone();
    merged.merge(&again, &again, &limits).unwrap();
    assert_eq!(merged, other);
}

#[test]
fn merge_keeps_what_this_writer_removed_removed() {
    let limits = HistoryLimits::default();
    let mut base = HistoryStore::new(NS);
    for i in 0..10 {
        base.record(view(&format!("B{i}"), T0 + i as f64 * 100.0), &limits)
            .unwrap();
    }
    let mut theirs = base.clone();
    theirs.record(view("T", T0 + 5_000.0), &limits).unwrap();
    // This tab cleared, then recorded one event, while the other tab recorded "T".
    let mut mine = HistoryStore::new(NS);
    mine.record(view("M", T0 + 6_000.0), &limits).unwrap();
    mine.merge(&base, &theirs, &limits).unwrap();
    let items: Vec<&str> = mine.events.iter().map(|e| e.item.as_str()).collect();
    assert_eq!(items, ["T", "M"]);
    // A dedup in this tab moved "B9" to a later time: the old time does not come back.
    let mut mine = base.clone();
    mine.record(view("B9", T0 + 1_000.0), &limits).unwrap();
    assert_eq!(mine.events.len(), 10);
    mine.merge(&base, &theirs, &limits).unwrap();
    let b9: Vec<f64> = (mine.events.iter().filter(|e| e.item == "B9"))
        .map(|e| e.at)
        .collect();
    assert_eq!(b9, [T0 + 1_000.0]);
    assert_eq!(mine.events.len(), 11);
}

#[test]
fn retain_known_counts_and_samples_unknown_ids() {
    let limits = HistoryLimits::default();
    let mut s = HistoryStore::new(NS);
    for i in 0..20 {
        let item = if i % 2 == 0 {
            format!("K{i}")
        } else {
            format!("gone{}", i % 7)
        };
        s.record(ev(&item, EventKind::Purchase, T0 + i as f64), &limits)
            .unwrap();
    }
    let unknown = s.retain_known(|id| id.starts_with('K'));
    assert_eq!(s.events.len(), 10);
    assert!(s.events.iter().all(|e| e.item.starts_with('K')));
    assert_eq!(unknown.events, 10);
    // Distinct ids in history order, at most five: gone1, gone3, gone5, gone0, gone2.
    assert_eq!(unknown.ids, ["gone1", "gone3", "gone5", "gone0", "gone2"]);
}

#[test]
fn merge_above_the_cap_keeps_the_newest() {
    let limits = HistoryLimits {
        max_events: 50,
        ..HistoryLimits::default()
    };
    let mut a = HistoryStore::new(NS);
    let mut b = HistoryStore::new(NS);
    for i in 0..40 {
        a.record(view(&format!("A{i}"), T0 + 2.0 * i as f64), &limits)
            .unwrap();
        b.record(view(&format!("B{i}"), T0 + 2.0 * i as f64 + 1.0), &limits)
            .unwrap();
    }
    a.merge(&HistoryStore::new(NS), &b, &limits).unwrap();
    assert_eq!(a.events.len(), 50);
    assert_eq!(a.events[0], view("A15", T0 + 30.0));
    assert_eq!(a.events[49], view("B39", T0 + 79.0));
}

#[test]
fn merge_refuses_another_namespace() {
    let limits = HistoryLimits::default();
    let mut a = HistoryStore::new(NS);
    let b = HistoryStore::new("other");
    assert!(matches!(
        a.merge(&HistoryStore::new(NS), &b, &limits),
        Err(HistoryError::ForeignNamespace { .. })
    ));
    assert!(matches!(
        a.merge(&b, &HistoryStore::new(NS), &limits),
        Err(HistoryError::ForeignNamespace { .. })
    ));
}

#[test]
fn json_round_trip() {
    let limits = HistoryLimits::default();
    let mut s = HistoryStore::new(NS);
    s.record(view("A", T0), &limits).unwrap();
    s.record(
        ev("B \"quoted\" ünïcode", EventKind::Cart, T0 + 5.5),
        &limits,
    )
    .unwrap();
    let json = s.to_json();
    assert_eq!(json.len(), s.json_bytes());
    let back = HistoryStore::from_json_at(&json, NS, &limits, T0 + 10.0).unwrap();
    assert_eq!(back, s);
    let back = HistoryStore::from_json(&json, NS, &limits).unwrap();
    assert_eq!(back, s);
    assert_eq!(s.schema, HISTORY_SCHEMA);
}

fn store_json(events: &str) -> String {
    format!(r#"{{"schema":{HISTORY_SCHEMA},"namespace":"{NS}","events":[{events}]}}"#)
}

/// A value that reads as a whole and one that does not name a newer layout and another
/// namespace alike, schema first; a good header over unreadable events is corrupt.
#[test]
fn the_header_names_the_error_whether_or_not_the_events_read() {
    let limits = HistoryLimits::default();
    let read = |s: &str| HistoryStore::from_json_at(s, NS, &limits, T0);
    let good = r#"{"item":"A","kind":"view","at":1}"#;
    let bad = r#"{"item":"A","kind":"teleport","at":1}"#;
    for events in [good, bad] {
        let newer = store_json(events).replacen(
            &format!(r#""schema":{HISTORY_SCHEMA}"#),
            r#""schema":7"#,
            1,
        );
        assert_eq!(
            read(&newer),
            Err(HistoryError::WrongSchema {
                found: 7,
                expected: HISTORY_SCHEMA
            }),
            "{newer}"
        );
        let both = newer.replace(NS, "other");
        assert!(
            matches!(read(&both), Err(HistoryError::WrongSchema { found: 7, .. })),
            "{both}"
        );
        let foreign = store_json(events).replace(NS, "other");
        assert_eq!(
            read(&foreign),
            Err(HistoryError::ForeignNamespace {
                found: "other".into(),
                expected: NS.into()
            }),
            "{foreign}"
        );
    }
    assert!(
        matches!(read(&store_json(bad)), Err(HistoryError::Corrupt(m)) if m.contains("teleport"))
    );
    assert_eq!(read(&store_json(good)).map(|s| s.events.len()), Ok(1));
}

#[test]
fn every_corrupt_input_gives_its_error() {
    let limits = HistoryLimits::default();
    let now = T0;
    let read = |s: &str| HistoryStore::from_json_at(s, NS, &limits, now);
    for bad in [
        "",
        "not json",
        "{",
        "[]",
        "null",
        r#"{"schema":1}"#,
        &store_json(r#"{"item":"A","kind":"teleport","at":1}"#),
        &store_json(r#"{"item":"A","kind":"view"}"#),
        &store_json(r#"{"item":7,"kind":"view","at":1}"#),
        &store_json(r#"{"item":"A","kind":"view","at":"yesterday"}"#),
    ] {
        assert!(
            matches!(read(bad), Err(HistoryError::Corrupt(_))),
            "{bad:?} → {:?}",
            read(bad)
        );
    }
    assert_eq!(
        read(r#"{"schema":2,"namespace":"x","events":"whatever"}"#),
        Err(HistoryError::WrongSchema {
            found: 2,
            expected: HISTORY_SCHEMA
        })
    );
    assert_eq!(
        read(&store_json("").replace(NS, "other")),
        Err(HistoryError::ForeignNamespace {
            found: "other".into(),
            expected: NS.into()
        })
    );
    let big = store_json(&vec![r#"{"item":"A","kind":"view","at":1}"#; 3000].join(","));
    assert_eq!(
        read(&big),
        Err(HistoryError::TooLarge {
            bytes: big.len(),
            max: limits.max_bytes
        })
    );
    let cases = [
        (r#"{"item":"","kind":"view","at":1}"#, "empty"),
        (r#"{"item":"   ","kind":"view","at":1}"#, "empty"),
        (r#"{"item":"A","kind":"view","at":-5}"#, "negative"),
        (r#"{"item":"A","kind":"view","at":1e300}"#, "after"),
    ];
    for (event, why) in cases {
        let json = store_json(&format!(r#"{{"item":"ok","kind":"cart","at":1}},{event}"#));
        match read(&json) {
            Err(HistoryError::BadEvent { index: 1, why: w }) => {
                assert!(w.contains(why), "{event}: {w}")
            }
            other => panic!("{event}: {other:?}"),
        }
    }
    // A day of clock skew is tolerated, more is not.
    let json = store_json(&format!(
        r#"{{"item":"A","kind":"view","at":{}}}"#,
        now + 0.5 * DAY
    ));
    assert!(read(&json).is_ok());
    let json = store_json(&format!(
        r#"{{"item":"A","kind":"view","at":{}}}"#,
        now + 1.5 * DAY
    ));
    assert!(matches!(
        read(&json),
        Err(HistoryError::BadEvent { index: 0, .. })
    ));
    // Non-finite times cannot be recorded either.
    let mut s = HistoryStore::new(NS);
    for at in [f64::NAN, f64::INFINITY, -1.0] {
        assert!(matches!(
            s.record(view("A", at), &limits),
            Err(HistoryError::BadEvent { .. })
        ));
    }
    assert!(matches!(
        s.record(view("", T0), &limits),
        Err(HistoryError::BadEvent { .. })
    ));
    assert!(s.events.is_empty());
}

#[test]
fn unsorted_or_oversized_stores_are_normalised_on_read() {
    let limits = HistoryLimits {
        max_events: 3,
        ..HistoryLimits::default()
    };
    let json = store_json(
        r#"{"item":"C","kind":"view","at":30},{"item":"A","kind":"view","at":10},
           {"item":"D","kind":"view","at":40},{"item":"B","kind":"view","at":20},
           {"item":"D","kind":"view","at":40}"#,
    );
    let s = HistoryStore::from_json_at(&json, NS, &limits, T0).unwrap();
    let items: Vec<&str> = s.events.iter().map(|e| e.item.as_str()).collect();
    assert_eq!(items, ["B", "C", "D"]);
}

/// A uniform index in `0..n`.
fn below(rng: &mut SplitMix64, n: usize) -> usize {
    rng.below(n as u64) as usize
}

#[test]
fn random_mutations_never_panic() {
    let limits = HistoryLimits::default();
    let mut s = HistoryStore::new(NS);
    for i in 0..20 {
        s.record(
            ev(&format!("I{i}"), EventKind::ALL[i % 3], T0 + i as f64),
            &limits,
        )
        .unwrap();
    }
    let valid = s.to_json().into_bytes();
    let alphabet = br#"{}[]":,.-+eE0123456789 \naviewcartpurchaseschemanamespaceeventsitemkindatnulltruefalse"#;
    let mut rng = SplitMix64::new(0x9E37_79B9_7F4A_7C15);
    let mut outcomes = [0usize; 2];
    for _ in 0..2000 {
        let mut bytes = valid.clone();
        for _ in 0..1 + below(&mut rng, 8) {
            let pos = below(&mut rng, bytes.len() + 1);
            match below(&mut rng, 4) {
                0 if pos < bytes.len() => {
                    bytes.remove(pos);
                }
                1 => bytes.insert(pos, alphabet[below(&mut rng, alphabet.len())]),
                2 if pos < bytes.len() => bytes[pos] = alphabet[below(&mut rng, alphabet.len())],
                _ => {
                    let cut = below(&mut rng, bytes.len() + 1);
                    bytes.truncate(cut);
                }
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let result = HistoryStore::from_json_at(&text, NS, &limits, T0 + 100.0);
        if let Ok(store) = &result {
            // Whatever is accepted satisfies the invariants.
            assert!(store.events.len() <= limits.max_events);
            assert_sorted(store);
            for e in &store.events {
                assert!(!e.item.trim().is_empty() && e.at.is_finite() && e.at >= 0.0);
            }
        }
        outcomes[usize::from(result.is_ok())] += 1;
    }
    assert!(outcomes[0] > 0, "no mutation was rejected");
}

#[test]
fn limits_parse_from_js_names_and_validate() {
    let l: HistoryLimits = serde_json::from_str(r#"{"maxEvents":50,"dedupSeconds":60}"#).unwrap();
    assert_eq!(l.max_events, 50);
    assert_eq!(l.dedup_window_secs, 60.0);
    assert_eq!(l.max_bytes, 64 * 1024);
    assert!(l.validate().is_ok());
    let e = serde_json::from_str::<HistoryLimits>(r#"{"maxEvent":50}"#).unwrap_err();
    assert!(e.to_string().contains("maxEvent"), "{e}");
    // The removed option is refused, not silently ignored.
    let e = serde_json::from_str::<HistoryLimits>(r#"{"halfLifeDays":30}"#).unwrap_err();
    assert!(e.to_string().contains("halfLifeDays"), "{e}");
    // The ceilings themselves are accepted.
    let top = HistoryLimits {
        max_events: vitrine::history::MAX_EVENTS_CEILING,
        max_bytes: vitrine::history::MAX_BYTES_CEILING,
        max_age_days: 3650.0,
        dedup_window_secs: 7.0 * DAY,
    };
    assert!(top.validate().is_ok());
    for bad in [
        HistoryLimits {
            max_events: 0,
            ..HistoryLimits::default()
        },
        HistoryLimits {
            max_bytes: 10,
            ..HistoryLimits::default()
        },
        HistoryLimits {
            max_events: vitrine::history::MAX_EVENTS_CEILING + 1,
            ..HistoryLimits::default()
        },
        HistoryLimits {
            max_bytes: vitrine::history::MAX_BYTES_CEILING + 1,
            ..HistoryLimits::default()
        },
        HistoryLimits {
            max_age_days: f64::NAN,
            ..HistoryLimits::default()
        },
        HistoryLimits {
            max_age_days: 3651.0,
            ..HistoryLimits::default()
        },
        HistoryLimits {
            dedup_window_secs: 8.0 * DAY,
            ..HistoryLimits::default()
        },
        HistoryLimits {
            max_age_days: 0.0,
            ..HistoryLimits::default()
        },
        HistoryLimits {
            dedup_window_secs: -1.0,
            ..HistoryLimits::default()
        },
    ] {
        assert!(
            matches!(bad.validate(), Err(HistoryError::InvalidLimits(_))),
            "{bad:?}"
        );
    }
}
