#![cfg(not(target_arch = "wasm32"))]
//! Property tests of the shopper's history store (`vitrine::history::HistoryStore`), the
//! state a page keeps in `localStorage`: any sequence of record / clear / import (the
//! store's own JSON back through the reader, or arbitrary text) / cap (prune at a time) /
//! migrate (a model update that forgets some items) / merge (another tab's write) on any
//! valid limits leaves it valid and within its limits:
//! - at most `maxEvents` events and at most `maxBytes` bytes of JSON, and `json_bytes()`
//!   is the length of `to_json()`;
//! - events sorted by time, each with a non-blank id and a finite, non-negative time, no
//!   exact duplicate `(item, kind, time)`;
//! - `to_json()` reads back to the same store;
//! - a successful `record` of an event no older than the newest one leaves it (or the
//!   earlier event it was merged into) newest;
//! - `merge` keeps every event of either side when the union fits the caps.
use proptest::prelude::*;
use proptest::test_runner::Config;
use vitrine::history::{
    EventKind, HistoryLimits, HistoryStore, StoredEvent, MAX_AGE_DAYS_CEILING, MAX_EVENTS_CEILING,
};

const NS: &str = "vitrine:v2:https://shop.example:history";

#[derive(Debug, Clone)]
enum Op {
    Record(StoredEvent),
    Clear,
    Reimport { now: f64 },
    ImportText(String),
    Prune { now: f64 },
    Migrate { forget_mod: u8 },
    Merge(Vec<StoredEvent>),
}

fn item() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (0u8..12).prop_map(|i| format!("I{i}")),
        1 => Just(String::new()),
        1 => Just("  ".to_string()),
        1 => "\\PC{1,40}",
    ]
}

fn time() -> impl Strategy<Value = f64> {
    prop_oneof![
        10 => 1.6e9f64..1.6e9 + 5e7,
        1 => Just(f64::NAN),
        1 => Just(-1.0),
        1 => Just(f64::INFINITY),
        1 => Just(0.0),
    ]
}

fn kind() -> impl Strategy<Value = EventKind> {
    prop_oneof![
        Just(EventKind::View),
        Just(EventKind::Cart),
        Just(EventKind::Purchase)
    ]
}

fn event() -> impl Strategy<Value = StoredEvent> {
    (item(), kind(), time()).prop_map(|(item, kind, at)| StoredEvent { item, kind, at })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => event().prop_map(Op::Record),
        1 => Just(Op::Clear),
        2 => time().prop_map(|now| Op::Reimport { now }),
        1 => "\\PC{0,200}".prop_map(Op::ImportText),
        2 => time().prop_map(|now| Op::Prune { now }),
        1 => (2u8..5).prop_map(|forget_mod| Op::Migrate { forget_mod }),
        2 => prop::collection::vec(event(), 0..8).prop_map(Op::Merge),
    ]
}

fn limits() -> impl Strategy<Value = HistoryLimits> {
    (
        1usize..40,
        256usize..4096,
        1.0f64..MAX_AGE_DAYS_CEILING,
        0.0f64..7.0 * 86_400.0,
    )
        .prop_map(
            |(max_events, max_bytes, max_age_days, dedup_window_secs)| HistoryLimits {
                max_events,
                max_bytes,
                max_age_days,
                dedup_window_secs,
            },
        )
}

fn check_invariants(s: &HistoryStore, limits: &HistoryLimits, after: &Op) {
    assert!(
        s.events.len() <= limits.max_events,
        "{} events after {after:?}",
        s.events.len()
    );
    assert!(s.events.len() <= MAX_EVENTS_CEILING);
    let json = s.to_json();
    assert_eq!(s.json_bytes(), json.len(), "json_bytes after {after:?}");
    assert!(
        json.len() <= limits.max_bytes,
        "{} bytes after {after:?}",
        json.len()
    );
    for w in s.events.windows(2) {
        assert!(w[0].at <= w[1].at, "unsorted after {after:?}");
    }
    let mut seen = std::collections::HashSet::new();
    for e in &s.events {
        assert!(!e.item.trim().is_empty(), "blank id after {after:?}");
        assert!(
            e.at.is_finite() && e.at >= 0.0,
            "time {} after {after:?}",
            e.at
        );
        assert!(
            seen.insert((e.item.clone(), e.kind, e.at.to_bits())),
            "duplicate after {after:?}"
        );
    }
    let back = HistoryStore::from_json(&json, NS, limits).expect("its own JSON reads back");
    assert_eq!(&back, s, "round trip after {after:?}");
}

fn apply(s: &mut HistoryStore, op: &Op, limits: &HistoryLimits) {
    match op {
        Op::Record(ev) => {
            let newest = s.events.last().map(|e| e.at);
            if s.record(ev.clone(), limits).is_ok() && newest.is_none_or(|t| ev.at >= t) {
                let last = s.events.last().expect("a recorded event is kept");
                assert_eq!(
                    last.item, ev.item,
                    "the newest event is the one just recorded"
                );
            }
        }
        Op::Clear => s.events.clear(),
        Op::Reimport { now } => {
            if let Ok(back) = HistoryStore::from_json_at(&s.to_json(), NS, limits, *now) {
                *s = back;
            }
        }
        Op::ImportText(text) => {
            if let Ok(other) = HistoryStore::adopt_json(text, NS, limits, 2e9) {
                let base = HistoryStore::new(NS);
                let mut mine = other;
                mine.merge(&base, s, limits).expect("same namespace");
                *s = mine;
            }
        }
        Op::Prune { now } => s.prune(*now, limits),
        Op::Migrate { forget_mod } => {
            let forget = |id: &str| id.len().is_multiple_of(*forget_mod as usize);
            let before = s.events.len();
            let unknown = s.retain_known(|id| !forget(id));
            assert_eq!(
                unknown.events + s.events.len(),
                before,
                "every dropped event counted"
            );
            assert!(s.events.iter().all(|e| !forget(&e.item)));
        }
        Op::Merge(theirs_events) => {
            let mut theirs = HistoryStore::new(NS);
            for e in theirs_events {
                let _ = theirs.record(e.clone(), limits);
            }
            let base = HistoryStore::new(NS);
            let mine_before = s.clone();
            s.merge(&base, &theirs, limits).expect("same namespace");
            let mut union: Vec<_> = (mine_before.events.iter().chain(&theirs.events))
                .map(|e| (e.item.clone(), e.kind, e.at.to_bits()))
                .collect();
            union.sort();
            union.dedup();
            let fits = union.len() <= limits.max_events
                && mine_before.json_bytes() + theirs.json_bytes() <= limits.max_bytes;
            if fits {
                assert_eq!(
                    s.events.len(),
                    union.len(),
                    "merge kept every event of both tabs"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(Config { cases: 256, ..Config::default() })]

    #[test]
    fn any_sequence_of_operations_keeps_the_history_valid(
        limits in limits(),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        limits.validate().expect("the strategy makes valid limits");
        let mut s = HistoryStore::new(NS);
        for op in &ops {
            apply(&mut s, op, &limits);
            check_invariants(&s, &limits, op);
        }
    }
}
