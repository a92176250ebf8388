//! `www/vitrine.js`'s JSDoc typedefs against the Rust types they describe: every
//! object-literal `@typedef {{ … }} Name` must list exactly the serde field names of its
//! Rust type (the JSON the wasm API takes or returns), so a field renamed, added or
//! removed on either side without the other fails here. (The typedefs are not generated:
//! see the module docs of `vitrine::wasm::types`.)
mod common;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;
use vitrine::history::{EventKind, HistoryInfo, HistoryLimits, ImportReport, UnknownItems};
use vitrine::model::kinds::KindMap;
use vitrine::recommend::page::PageRequest;
use vitrine::recommend::search::{
    CategoryFacet, Correction, MatchedTerm, NoResults, PriceBandFacet, SearchFacets, SearchReason,
    SearchRequest, SearchResponse, SearchResult, TitleSpan,
};
use vitrine::recommend::{Boost, Filter, Promote, Reason, RecommendOptions, Recommendation};
use vitrine::wasm::types::{
    BuildInfo, CatalogView, CategoryColumn, HistoryRow, ModelInfo, ModelKinds, RecordEvent, Stats,
};

/// Top-level keys of `value` serialised to JSON.
fn keys<T: Serialize>(value: &T) -> BTreeSet<String> {
    match serde_json::to_value(value).unwrap() {
        Value::Object(m) => m.keys().cloned().collect(),
        other => panic!("not an object: {other}"),
    }
}

/// The Rust side: typedef name → field names.
fn rust_fields() -> BTreeMap<&'static str, BTreeSet<String>> {
    let reasons = [
        Reason::History {
            item: "I1".into(),
            title: "T".into(),
            event: EventKind::View,
            weight: 0.5,
        },
        Reason::Similar {
            item: "I1".into(),
            title: "T".into(),
        },
        Reason::BoughtTogether {
            item: "I1".into(),
            title: "T".into(),
            orders: 3,
        },
        Reason::Popular,
        Reason::Promoted,
        Reason::Boosted,
        Reason::New,
    ];
    let recommendation = Recommendation {
        item: "I1".into(),
        index: 0,
        title: "T".into(),
        category: "C".into(),
        price: Some(1.0),
        score: 0.5,
        reasons: vec![Reason::Popular],
    };
    let strings = vec!["a".to_string()];
    let prices: vitrine::format::OptColumn<f32> = vec![Some(1.0f32)].into();
    let list: vitrine::strs::StrList = strings.iter().collect();
    let catalog = CatalogView {
        ids: &list,
        titles: &list,
        categories: CategoryColumn {
            index: &[0],
            names: &strings,
        },
        prices: &prices,
        category_names: &strings,
    };
    let row = HistoryRow {
        item: "I1",
        kind: EventKind::Cart,
        at: 1.0,
        title: None,
    };
    let event = RecordEvent {
        item: "I1".into(),
        kind: EventKind::View,
        at: Some(1.0),
    };
    let build = BuildInfo {
        simd: "simd128",
        gpu: true,
        version: "0",
    };
    let kinds = KindMap::new(Some(&[EventKind::Purchase]));
    let file = common::fixtures::tiny_weight_file(3, 1);
    let info = ModelInfo::new(&file.metadata, 10, &kinds);
    let mut out = BTreeMap::from([
        ("Reason", reasons.iter().flat_map(keys).collect()),
        ("Recommendation", keys(&recommendation)),
        ("Catalog", keys(&catalog)),
        ("HistoryRow", keys(&row)),
        ("HistoryEventIn", keys(&event)),
        ("Stats", keys(&Stats::default())),
        ("BuildInfo", keys(&build)),
        ("ModelInfo", keys(&info)),
        ("ModelKinds", keys(&ModelKinds::new(&kinds))),
        ("RecommendOptions", keys(&RecommendOptions::default())),
        ("Filter", keys(&Filter::default())),
        ("Boost", keys(&Boost::default())),
        ("Promote", keys(&Promote::default())),
        ("PageRequest", keys(&PageRequest::default())),
        ("HistoryLimits", keys(&HistoryLimits::default())),
        ("UnknownItems", keys(&UnknownItems::default())),
        ("ImportReport", keys(&ImportReport::default())),
        ("HistoryInfo", keys(&HistoryInfo::default())),
    ]);
    out.extend(search_fields());
    out
}

/// The search API's types: typedef name → field names.
fn search_fields() -> BTreeMap<&'static str, BTreeSet<String>> {
    let term = MatchedTerm {
        word: "a".into(),
        term: "a".into(),
        distance: 0,
        prefix: false,
    };
    let span = TitleSpan { start: 0, end: 1 };
    let reasons = [
        SearchReason::Match {
            terms: vec![term.clone()],
            spans: vec![span],
        },
        SearchReason::History {
            item: "I1".into(),
            title: "T".into(),
            event: EventKind::View,
            weight: 0.5,
        },
        SearchReason::Popular,
    ];
    let result = SearchResult {
        item: "I1".into(),
        index: 0,
        title: "T".into(),
        category: "C".into(),
        price: None,
        score: 1.0,
        text_score: 1.0,
        reasons: vec![SearchReason::Popular],
    };
    let category = CategoryFacet {
        name: "C".into(),
        count: 1,
    };
    let band = PriceBandFacet {
        min: None,
        max: Some(1.0),
        count: 1,
    };
    let correction = Correction {
        word: "a".into(),
        term: "b".into(),
        distance: 1,
    };
    let response = SearchResponse {
        words: Vec::new(),
        results: Vec::new(),
        total: 0,
        personalized: false,
        facets: None,
        suggestions: None,
    };
    BTreeMap::from([
        ("SearchOptions", keys(&SearchRequest::default())),
        ("MatchedTerm", keys(&term)),
        ("TitleSpan", keys(&span)),
        ("SearchReason", reasons.iter().flat_map(keys).collect()),
        ("SearchResult", keys(&result)),
        ("CategoryFacet", keys(&category)),
        ("PriceBandFacet", keys(&band)),
        ("SearchFacets", keys(&SearchFacets::default())),
        ("Correction", keys(&correction)),
        ("NoResults", keys(&NoResults::default())),
        ("SearchResponse", keys(&response)),
    ])
}

/// Splits `s` at top-level commas (outside any bracket pair).
fn split_top(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut parts) = (0i32, 0, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '{' | '(' | '[' | '<' => depth += 1,
            '}' | ')' | ']' | '>' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// The JS side: every `@typedef {{ … }} Name` of `src` → its field names.
fn js_fields(src: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    let mut rest = src;
    while let Some(at) = rest.find("@typedef {{") {
        let body_start = at + "@typedef {{".len();
        let mut depth = 2;
        let mut end = body_start;
        for (i, c) in rest[body_start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 1 {
                end = body_start + i;
                break;
            }
        }
        assert!(end > body_start, "unterminated typedef in vitrine.js");
        // Drop the JSDoc line prefixes (` * `) inside a multi-line typedef.
        let body: String = rest[body_start..end]
            .lines()
            .map(|l| l.trim_start().trim_start_matches('*'))
            .collect::<Vec<_>>()
            .join(" ");
        let after = rest[end..].trim_start_matches('}').trim_start();
        let name: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let fields = split_top(&body)
            .into_iter()
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                let field = p.split(':').next().unwrap().trim();
                field.trim_end_matches('?').to_string()
            })
            .collect();
        assert!(
            out.insert(name.clone(), fields).is_none(),
            "typedef {name} twice"
        );
        rest = &rest[end..];
    }
    out
}

#[test]
fn jsdoc_typedefs_match_the_rust_types() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/www/vitrine.js");
    let src = std::fs::read_to_string(path).expect("read www/vitrine.js");
    let js = js_fields(&src);
    let rust = rust_fields();
    let js_names: BTreeSet<&str> = js.keys().map(String::as_str).collect();
    let rust_names: BTreeSet<&str> = rust.keys().copied().collect();
    assert_eq!(
        js_names, rust_names,
        "object typedefs in vitrine.js vs the Rust types this test knows"
    );
    for (name, fields) in &rust {
        assert_eq!(
            &js[*name], fields,
            "typedef {name}: JSDoc fields vs serde fields"
        );
    }
}

#[test]
fn the_typedef_parser_reads_nested_and_multi_line_fields() {
    let src = "/**\n * @typedef {{ a: string, b?: { c: number, d: string },\n *   e: (number|null)[] }} X\n */";
    let js = js_fields(src);
    let want: BTreeSet<String> = ["a", "b", "e"].iter().map(|s| s.to_string()).collect();
    assert_eq!(js["X"], want);
}

/// `catalog().categories` is one name per item, resolved from the index column as it is
/// serialised; an index past the names reads "unknown".
#[test]
fn catalog_categories_serialise_one_name_per_item() {
    let names = vec!["unknown".to_string(), "Lamps".into(), "Mugs".into()];
    let column = CategoryColumn {
        index: &[2, 0, 1, 7],
        names: &names,
    };
    assert_eq!(
        serde_json::to_value(&column).unwrap(),
        serde_json::json!(["Mugs", "unknown", "Lamps", "unknown"])
    );
    assert_eq!(column.name(3), "unknown");
    assert_eq!(column.name(99), "unknown");
}

/// The per-request results cross into JavaScript as JSON text
/// (`vitrine::wasm::js_options::result_json`, then `JSON.parse`): every `f32` must come
/// out as the double it converts to (what the field-by-field conversion gives), not as
/// the shortest `f32` digits, which parse to a different double. Checked over awkward
/// floats (subnormal, huge, many digits) in a recommendation and its reasons; the text
/// must also hold the same JSON as `serde_json::to_value` (which stores `f32 as f64`).
#[test]
fn result_json_writes_each_f32_as_its_f64() {
    use vitrine::wasm::js_options::result_json;
    let floats = [
        0.813_847_4f32,
        0.1,
        1.0 / 3.0,
        f32::MIN_POSITIVE,
        1e-45,
        f32::MAX,
        -2.5e-7,
        16_777_217.0,
        0.0,
    ];
    for (i, &x) in floats.iter().enumerate() {
        let rec = Recommendation {
            item: format!("I{i} \"quoted\" é"),
            index: i as u32,
            title: "T\n".into(),
            category: "C".into(),
            price: Some(x),
            score: x,
            reasons: vec![Reason::History {
                item: "I1".into(),
                title: "T".into(),
                event: EventKind::Cart,
                weight: x,
            }],
        };
        let text = result_json(&vec![rec.clone()]).expect("serialises");
        let parsed: Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(parsed, serde_json::to_value(vec![&rec]).unwrap(), "{text}");
        let score = parsed[0]["score"].as_f64().expect("a number");
        assert_eq!(score.to_bits(), f64::from(x).to_bits(), "{x}: {text}");
        if x != 0.0 && x != 16_777_217.0 {
            assert_ne!(
                format!("{x}").parse::<f64>().unwrap().to_bits(),
                score.to_bits(),
                "{x}: the shortest f32 digits would give the same double (a weak case)"
            );
        }
    }
}
