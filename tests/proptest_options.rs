#![cfg(not(target_arch = "wasm32"))]
//! Property tests of `recommend()` and `search()` options as a page may pass them: any
//! JSON value (arbitrary nesting and types, huge and tiny numbers, strings that look like
//! NaN or infinity, long strings, unknown fields), through the browser's own JSON →
//! options path (`vitrine::wasm::js_options::options_from_json`, what `parse_options`
//! runs after `JSON.stringify`) and both calls on a tiny model, with a history and
//! without. Each value either works (results checked by the fuzz entry's invariants:
//! at most `k` distinct catalogue items, no NaN score) or gives a typed error whose
//! message names the offending field — never a panic.
//!
//! Shares its runner with the `options` fuzz target (`fuzz/entries.rs`). The case count
//! is bounded so the file runs in about a second in the test profile.
use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Map, Value};

#[path = "../fuzz/entries.rs"]
mod entries;

/// Every field name of the option structs (top level and nested), as JavaScript spells
/// them.
const FIELDS: [&str; 22] = [
    "k",
    "context",
    "basket",
    "exclude",
    "excludeSeen",
    "allowRepurchase",
    "filter",
    "boost",
    "promote",
    "diversity",
    "newItemsBoost",
    "now",
    "personalize",
    "facets",
    "categories",
    "excludeCategories",
    "priceMin",
    "priceMax",
    "ids",
    "category",
    "weight",
    "slots",
];

/// Numbers a page can send (JSON has no NaN or infinity: `JSON.stringify` makes them
/// `null`), weighted toward the edges of f32, usize and the options' ranges.
fn number() -> impl Strategy<Value = Value> {
    let edges = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        1.5,
        1e-45,
        1e-320,
        3.4e38,
        3.5e38,
        1e39,
        -1e39,
        1e300,
        -1e308,
        1000.0,
        1001.0,
        4294967296.0,
        1.7e9,
        9.007e15,
        1.8446744073709552e19,
    ];
    prop_oneof![
        prop::sample::select(edges.to_vec()).prop_map(|x| json!(x)),
        any::<i64>().prop_map(|x| json!(x)),
        any::<u64>().prop_map(|x| json!(x)),
        (0u64..1200).prop_map(|x| json!(x)),
        any::<f64>().prop_filter_map("JSON numbers are finite", |x| {
            serde_json::Number::from_f64(x).map(Value::Number)
        }),
    ]
}

/// Strings: catalogue ids and category names of the tiny model, words that look like
/// numbers, control characters and emoji, and long text.
fn string() -> impl Strategy<Value = Value> {
    let special = [
        "",
        " ",
        "I0",
        "I3",
        "I23",
        "I24",
        "unknown",
        "RED",
        "mug",
        "NaN",
        "Infinity",
        "-Infinity",
        "1e999",
        "0x10",
        "null",
        "\u{0}",
        "\u{200b}",
        "é",
        "🙂🙂",
        "k",
    ];
    prop_oneof![
        3 => prop::sample::select(special.to_vec()).prop_map(|s| json!(s)),
        2 => "\\PC{0,24}".prop_map(Value::String),
        1 => (1usize..20_000).prop_map(|n| Value::String("ab ".repeat(n / 3 + 1))),
    ]
}

/// Any JSON value, nested up to four levels, objects keyed mostly by real field names.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        string(),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6).prop_map(object),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(FIELDS.to_vec()).prop_map(str::to_string),
        1 => "[a-zA-Z_]{1,12}",
    ]
}

fn object(map: BTreeMap<String, Value>) -> Value {
    Value::Object(map.into_iter().collect::<Map<String, Value>>())
}

/// Options objects: top-level keys are field names (and sometimes unknown ones), values
/// anything.
fn options_object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(key(), value(), 0..5).prop_map(object)
}

/// Every key anywhere in `v`.
fn keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, sub) in m {
                out.push(k.clone());
                keys(sub, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|x| keys(x, out)),
        _ => {}
    }
}

/// Whether `message` contains `name` as a whole word (not inside a longer identifier).
fn names(message: &str, name: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    message.match_indices(name).any(|(i, _)| {
        let before = message[..i].chars().next_back();
        let after = message[i + name.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

/// Checks one options value on both calls; returns the outcome for further checks.
fn check(value: &Value, query: &str) -> entries::OptionsOutcome {
    let out = entries::run_options(value, query);
    let errors = out.recommend.iter().chain(&out.search).flatten();
    match value {
        Value::Object(_) => {
            let mut present = Vec::new();
            keys(value, &mut present);
            for e in errors {
                assert!(
                    present.iter().any(|k| names(e, k)),
                    "the error does not name a field of {value}: {e}"
                );
            }
        }
        Value::Null => assert!(errors.count() == 0, "null means the defaults: {out:?}"),
        _ => {
            for e in errors {
                assert!(e.contains("expected an object"), "{value}: {e}");
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(Config { cases: 384, failure_persistence: None, ..Config::default() })]

    #[test]
    fn any_options_object_works_or_names_the_field(v in options_object(), q in string()) {
        check(&v, q.as_str().unwrap_or_default());
    }

    #[test]
    fn any_json_value_works_or_is_refused_clearly(v in value()) {
        check(&v, "red mug");
    }
}

/// Each field with a wrong type or an out-of-range value is refused with its path, for
/// both calls where the field exists; the property tests above rely on this mapping.
#[test]
fn wrong_values_name_their_field() {
    let cases = [
        (json!({ "k": 0 }), "k"),
        (json!({ "k": 1001 }), "k"),
        (json!({ "k": 1e300 }), "k"),
        (json!({ "k": "10" }), "k"),
        (
            json!({ "filter": { "priceMin": "NaN" } }),
            "filter.priceMin",
        ),
        (json!({ "filter": { "priceMin": 1e39 } }), "filter.priceMin"),
        (
            json!({ "filter": { "priceMin": 5, "priceMax": 1 } }),
            "filter.priceMin",
        ),
        (
            json!({ "filter": { "categories": ["no such"] } }),
            "filter.categories",
        ),
        (json!({ "exclude": ["I1", "ghost"] }), "exclude[1]"),
        (json!({ "exclude": ["I1", 7] }), "exclude[1]"),
        (json!({ "colour": "red" }), "colour"),
    ];
    for (v, field) in cases {
        let out = check(&v, "red");
        for (call, errors) in [("recommend", &out.recommend), ("search", &out.search)] {
            let e = errors
                .first()
                .cloned()
                .flatten()
                .unwrap_or_else(|| panic!("{call} accepted {v}"));
            assert!(e.contains(field), "{call} {v}: {e}");
        }
    }
    let recommend_only = [
        (json!({ "diversity": 2 }), "diversity"),
        (json!({ "newItemsBoost": 3.5e38 }), "newItemsBoost"),
        (json!({ "context": "ghost" }), "context"),
        (json!({ "basket": ["I2", "ghost"] }), "basket[1]"),
        (json!({ "boost": [{ "weight": 1 }] }), "boost[0]"),
        (
            json!({ "boost": [{ "ids": ["ghost"], "weight": 1 }] }),
            "boost[0].ids[0]",
        ),
        (
            json!({ "promote": { "ids": ["ghost"], "slots": 1 } }),
            "promote.ids[0]",
        ),
    ];
    for (v, field) in recommend_only {
        let out = check(&v, "red");
        let e = out.recommend.first().cloned().flatten();
        assert!(
            e.as_deref().is_some_and(|e| e.contains(field)),
            "{v}: {e:?}"
        );
    }
    let out = check(&json!({ "personalize": 1.5 }), "red");
    let e = out.search.first().cloned().flatten();
    assert!(
        e.as_deref().is_some_and(|e| e.contains("personalize")),
        "{e:?}"
    );
}
