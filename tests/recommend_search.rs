//! `Recommender::search` and the weight file's `search.index` section on the fixture
//! model: round trip through every quantization, corrupt sections, files without an
//! index, filters shared with `recommend()`, the text-only order for an empty history,
//! personalisation, facets against a brute-force count, untrusted queries.
use std::collections::BTreeMap;

use vitrine::format::{
    peek_tensors, Dtype, FormatError, OpenFile, Quantization, TensorData, WeightFile,
    SEARCH_INDEX_TENSOR,
};
use vitrine::history::{EventKind, HistoryEvent};
use vitrine::kernels::CpuKernel;
use vitrine::model::memory::Memory;
use vitrine::recommend::score;
use vitrine::recommend::search::{attach_index, SearchReason, SearchRequest, CANDIDATE_POOL};
use vitrine::recommend::{Filter, RecommendError, RecommendOptions, Recommender};
use vitrine::rng::SplitMix64;
use vitrine::search::{personalize, search, SearchIndex, SearchIndexError, SearchOptions};
mod common;
use common::fixtures::tiny_weight_file;

const N: usize = 96;
const T0: f64 = 1_700_000_000.0;

/// The fixture with a search index.
fn file_with_index() -> WeightFile {
    let mut file = tiny_weight_file(N, 11);
    let size = attach_index(&mut file).expect("index builds");
    assert!(size > 44, "an index has at least its header");
    file
}

fn recommender(file: WeightFile) -> Recommender {
    let mut rec = Recommender::from_weight_file(file).expect("loads");
    rec.kernel = CpuKernel::Scalar;
    rec
}

fn rec() -> Recommender {
    recommender(file_with_index())
}

fn ev(item: u32, kind: EventKind, at: f64) -> HistoryEvent {
    HistoryEvent { item, kind, at }
}

fn req(k: usize) -> SearchRequest {
    SearchRequest {
        k,
        ..SearchRequest::default()
    }
}

fn items(r: &vitrine::recommend::search::SearchResponse) -> Vec<u32> {
    r.results.iter().map(|x| x.index).collect()
}

#[test]
fn index_section_round_trips_in_every_quantization() {
    let file = file_with_index();
    let TensorData::U8(original) = &file.tensors[SEARCH_INDEX_TENSOR].data else {
        panic!("search.index is U8");
    };
    for q in [Quantization::F32, Quantization::F16, Quantization::Int8] {
        let bytes = file.to_bytes(q).expect("writes");
        let stored = peek_tensors(&bytes).unwrap();
        let entry = stored
            .iter()
            .find(|t| t.name == SEARCH_INDEX_TENSOR)
            .expect("stored");
        assert_eq!(entry.dtype, Dtype::U8, "{q:?}");
        assert_eq!(entry.shape, vec![original.len()]);
        let back = WeightFile::from_bytes(&bytes).expect("reads");
        assert_eq!(
            back.tensors[SEARCH_INDEX_TENSOR].data,
            TensorData::U8(original.clone()),
            "{q:?}: bytes kept exactly"
        );
        let rec = Recommender::from_bytes(&bytes).expect("loads");
        let index = rec.search_index().expect("index loaded");
        assert_eq!(index.n_docs(), N);
        assert_eq!(index.to_bytes(), *original);
    }
}

/// The test file with its search section edited by `edit`, written (f32) by the writer,
/// which seals the file's content hash over the edited section.
fn written_with_section(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut file = file_with_index();
    let section = file.tensors.get_mut(SEARCH_INDEX_TENSOR).unwrap();
    let TensorData::U8(bytes) = &mut section.data else {
        panic!("U8");
    };
    edit(bytes);
    section.shape = vec![bytes.len()];
    file.to_bytes(Quantization::F32).unwrap()
}

/// The error loading `bytes` gives.
fn load_err(bytes: &[u8]) -> RecommendError {
    Recommender::from_bytes(bytes).err().expect("rejected")
}

#[test]
fn corrupt_index_section_is_a_typed_error_at_load() {
    // A byte of the section changed after writing: the file's checksum, which covers
    // the section, catches it (the loader does not hash the section a second time).
    let written = file_with_index().to_bytes(Quantization::F32).unwrap();
    let entry = peek_tensors(&written)
        .unwrap()
        .into_iter()
        .find(|t| t.name == SEARCH_INDEX_TENSOR)
        .expect("stored");
    let data = 8 + u64::from_le_bytes(written[..8].try_into().unwrap());
    let mut tampered = written.clone();
    tampered[(data + entry.data_offsets[1] - 1) as usize] ^= 0x5a;
    let err = load_err(&tampered);
    assert!(
        matches!(
            err,
            RecommendError::Format(FormatError::ChecksumMismatch { .. })
        ),
        "{err:?}"
    );

    // A section that fails only its own SHA-256, sealed into the file by its writer:
    // the file's checksum vouches for it, and it loads as the index it encodes.
    let mut original = Vec::new();
    let written = written_with_section(|bytes| {
        original = bytes.clone();
        bytes[12] ^= 0x5a; // the first byte of the section's stored SHA-256
    });
    let rec = Recommender::from_bytes(&written).expect("loads");
    assert_eq!(rec.search_index().expect("index").to_bytes(), original);

    // A malformed section sealed the same way: the decoder's checks still reject it.
    let err = load_err(&written_with_section(|bytes| {
        bytes.pop();
    }));
    assert!(
        matches!(
            err,
            RecommendError::SearchIndex(SearchIndexError::Truncated { .. })
        ),
        "{err:?}"
    );

    // Wrong dtype for the section.
    let mut file = file_with_index();
    file.tensors.get_mut(SEARCH_INDEX_TENSOR).unwrap().data = TensorData::I32(vec![0; 4]);
    file.tensors.get_mut(SEARCH_INDEX_TENSOR).unwrap().shape = vec![4];
    let err = Recommender::from_weight_file(file).err().expect("rejected");
    assert!(matches!(err, RecommendError::Inconsistent(_)), "{err:?}");

    // An index of another catalogue (wrong document count).
    let mut file = file_with_index();
    let mut small = tiny_weight_file(N / 2, 11);
    attach_index(&mut small).unwrap();
    let other = small.tensors.remove(SEARCH_INDEX_TENSOR).unwrap();
    file.tensors.insert(SEARCH_INDEX_TENSOR.into(), other);
    let err = Recommender::from_weight_file(file).err().expect("rejected");
    assert!(matches!(err, RecommendError::Inconsistent(_)), "{err:?}");
}

/// The engine the browser loads: the index left in its section until
/// `load_search_index`, which decodes the same index with the same checks as a load.
#[test]
fn a_left_index_is_decoded_by_load_search_index_alike() {
    let leaving = |bytes: &[u8]| {
        let open = OpenFile::open(bytes).expect("opens");
        open.check_hash().expect("hash");
        let mut rec = Recommender::from_open_leaving_search(open).expect("loads");
        rec.kernel = CpuKernel::Scalar;
        rec
    };
    for q in [Quantization::F32, Quantization::Int8] {
        let bytes = file_with_index().to_bytes(q).unwrap();
        let eager = Recommender::from_bytes(&bytes).expect("loads");
        let rec = leaving(&bytes);
        let entry = (peek_tensors(&bytes).unwrap().into_iter())
            .find(|t| t.name == SEARCH_INDEX_TENSOR)
            .expect("stored");
        let data = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap());
        let range = rec.search_section().expect("left in the file");
        assert_eq!(
            range,
            data + entry.data_offsets[0]..data + entry.data_offsets[1]
        );
        assert!(rec.search_index().is_none());
        let bytes_of = |r: &Recommender| {
            (r.memory_report().into_iter())
                .find(|(part, _)| *part == "search index")
                .map(|(_, b)| b)
        };
        assert_eq!(bytes_of(&rec), Some(0));
        let err = rec.search(&[], "red", &req(5)).expect_err("not loaded");
        assert!(matches!(err, RecommendError::SearchNotLoaded), "{err:?}");
        let got = rec
            .recommend(&[], &RecommendOptions::default())
            .expect("recommends");
        assert_eq!(got.len(), RecommendOptions::default().k);

        // A source too short for the section: an error, and the section stays left.
        let err = rec.load_search_index(&bytes[..range.end as usize - 1]);
        assert!(
            matches!(err, Err(RecommendError::Inconsistent(_))),
            "{err:?}"
        );
        assert_eq!(rec.search_section(), Some(range.clone()));

        rec.load_search_index(&bytes[..]).expect("decodes");
        assert_eq!(rec.search_section(), None);
        rec.load_search_index(&[][..])
            .expect("nothing left to decode");
        assert_eq!(
            rec.search_index().expect("decoded").to_bytes(),
            eager.search_index().expect("decoded").to_bytes()
        );
        assert_eq!(bytes_of(&rec), bytes_of(&eager));
        assert!(bytes_of(&rec).unwrap() > 0);
        for query in ["red candle", "vintag", "zzzzqqq"] {
            let a = rec.search(&[], query, &req(8)).expect("search");
            let b = eager.search(&[], query, &req(8)).expect("search");
            let idx = |r: &vitrine::recommend::search::SearchResponse| {
                r.results.iter().map(|h| h.index).collect::<Vec<_>>()
            };
            assert_eq!(idx(&a), idx(&b), "{query}");
        }
    }

    // A malformed section sealed into the file: it loads, and the decode fails as a
    // load does.
    let sealed = written_with_section(|bytes| {
        bytes.pop();
    });
    let rec = leaving(&sealed);
    let err = rec.load_search_index(&sealed[..]).expect_err("rejected");
    assert!(
        matches!(
            err,
            RecommendError::SearchIndex(SearchIndexError::Truncated { .. })
        ),
        "{err:?}"
    );
    assert_eq!(err.to_string(), load_err(&sealed).to_string());
    assert!(rec.search_section().is_some(), "left as it was");
    assert!(rec.recommend(&[], &RecommendOptions::default()).is_ok());

    // Without a section there is nothing to leave.
    let bytes = tiny_weight_file(N, 11).to_bytes(Quantization::F32).unwrap();
    let rec = leaving(&bytes);
    assert_eq!(rec.search_section(), None);
    rec.load_search_index(&bytes[..])
        .expect("nothing to decode");
    let err = rec.search(&[], "red", &req(5)).expect_err("no index");
    assert!(matches!(err, RecommendError::SearchUnavailable), "{err:?}");
}

#[test]
fn file_without_index_loads_and_reports_search_unavailable() {
    let file = tiny_weight_file(N, 11);
    assert!(!file.tensors.contains_key(SEARCH_INDEX_TENSOR));
    let bytes = file.to_bytes(Quantization::F32).unwrap();
    let rec = recommender(WeightFile::from_bytes(&bytes).unwrap());
    assert!(rec.search_index().is_none());
    assert!(rec.recommend(&[], &RecommendOptions::default()).is_ok());
    let err = rec.search(&[], "red", &req(5)).expect_err("no index");
    assert!(matches!(err, RecommendError::SearchUnavailable), "{err:?}");
    assert!(err.to_string().contains("search"), "{err}");
}

#[test]
fn recommend_is_unchanged_by_the_index() {
    let with = rec();
    let without = recommender(tiny_weight_file(N, 11));
    let h = [
        ev(3, EventKind::View, T0),
        ev(20, EventKind::Cart, T0 + 5.0),
    ];
    let o = RecommendOptions {
        k: 20,
        ..RecommendOptions::default()
    };
    assert_eq!(
        with.recommend(&h, &o).unwrap(),
        without.recommend(&h, &o).unwrap()
    );
}

#[test]
fn empty_history_is_exactly_the_text_order() {
    let rec = rec();
    let index = rec.search_index().unwrap();
    for q in ["red candle", "vintage", "blu", "chrstmas mug", "box"] {
        let got = rec.search(&[], q, &req(30)).unwrap();
        let opts = SearchOptions {
            k: 30,
            ..SearchOptions::default()
        };
        let text = search(index, q, &opts, &|_| true);
        let want: Vec<u32> = text.hits.iter().map(|h| h.doc).collect();
        assert!(!want.is_empty(), "{q}");
        assert_eq!(items(&got), want, "{q}");
        assert!(!got.personalized);
        for r in &got.results {
            assert_eq!(r.score, r.text_score);
            assert!(matches!(r.reasons[0], SearchReason::Match { .. }));
        }
    }
    // Weight 0 with a history: also the text order.
    let h = [ev(5, EventKind::Purchase, T0)];
    let zero = SearchRequest {
        personalize: Some(0.0),
        ..req(30)
    };
    assert_eq!(
        items(&rec.search(&h, "red", &zero).unwrap()),
        items(&rec.search(&[], "red", &req(30)).unwrap())
    );
}

#[test]
fn filters_are_shared_with_recommend() {
    let rec = rec();
    let cat = rec.category_name(4).to_string();
    let filter = Filter {
        categories: vec![cat.clone()],
        price_min: Some(2.0),
        price_max: Some(20.0),
        ..Filter::default()
    };
    let r = SearchRequest {
        filter: filter.clone(),
        exclude: vec!["I4".into()],
        ..req(50)
    };
    let got = rec.search(&[], "red blue vintage christmas pink white glass paper", &r);
    let got = got.unwrap();
    assert!(!got.results.is_empty());
    for x in &got.results {
        assert_eq!(x.category, cat);
        let p = x.price.expect("priced");
        assert!((2.0..=20.0).contains(&p));
        assert_ne!(x.item, "I4");
    }
    // The same eligibility as recommend() with the same filter and exclusions.
    let o = RecommendOptions {
        k: 1000.min(N),
        filter,
        exclude: vec!["I4".into()],
        exclude_seen: false,
        ..RecommendOptions::default()
    };
    let mut eligible: Vec<u32> = rec
        .recommend(&[], &o)
        .unwrap()
        .iter()
        .map(|x| x.index)
        .collect();
    eligible.sort();
    let mut found = items(&got);
    found.sort();
    assert!(found.iter().all(|i| eligible.binary_search(i).is_ok()));
    assert_eq!(
        got.total as usize,
        found.len(),
        "every eligible match listed (k = 50)"
    );
    // Unknown categories and ids are errors, as for recommend().
    let bad = SearchRequest {
        filter: Filter {
            categories: vec!["no such category".into()],
            ..Filter::default()
        },
        ..req(5)
    };
    assert!(matches!(
        rec.search(&[], "red", &bad),
        Err(RecommendError::InvalidOption(_))
    ));
    let bad = SearchRequest {
        exclude: vec!["nope".into()],
        ..req(5)
    };
    assert!(matches!(
        rec.search(&[], "red", &bad),
        Err(RecommendError::UnknownOptionItem { .. })
    ));
    for k in [0, 1001] {
        assert!(rec.search(&[], "red", &req(k)).is_err());
    }
    for w in [-0.1, 1.5, f32::NAN] {
        let r = SearchRequest {
            personalize: Some(w),
            ..req(5)
        };
        assert!(matches!(
            rec.search(&[], "red", &r),
            Err(RecommendError::InvalidOption(_))
        ));
    }
}

#[test]
fn personalisation_moves_a_history_related_item_up() {
    let rec = rec();
    let q = "red";
    let text = rec.search(&[], q, &req(40)).unwrap();
    let text_order = items(&text);
    assert!(text_order.len() > 5);
    // The full-weight order is the model's order among the pool: find a history that
    // lifts a hit from the bottom half of the text order.
    let full = SearchRequest {
        personalize: Some(1.0),
        ..req(40)
    };
    let mut moved = false;
    for &seed_item in text_order.iter().rev().take(8) {
        let h = [
            ev(seed_item, EventKind::Purchase, T0),
            ev(seed_item, EventKind::View, T0 + 10.0),
        ];
        let got = rec.search(&h, q, &full).unwrap();
        assert!(got.personalized);
        let mut a = items(&got);
        let mut b = text_order.clone();
        a.sort();
        b.sort();
        assert_eq!(a, b, "same matches, re-ordered");
        let top = got.results[0].index;
        let text_pos = text_order.iter().position(|&d| d == top).unwrap();
        if text_pos > 0 {
            moved = true;
            let history_reason = got.results[0]
                .reasons
                .iter()
                .any(|r| matches!(r, SearchReason::History { item, .. } if *item == format!("I{seed_item}")));
            assert!(history_reason, "{:?}", got.results[0].reasons);
        }
    }
    assert!(moved, "personalisation changed the order for some history");
}

#[test]
fn facets_equal_a_brute_force_count() {
    let rec = rec();
    let index = rec.search_index().unwrap();
    let filter = Filter {
        price_max: Some(15.0),
        ..Filter::default()
    };
    let r = SearchRequest { filter, ..req(3) };
    let got = rec.search(&[], "pink mug", &r).unwrap();
    let facets = got.facets.expect("facets asked for");
    // Brute force: every item containing "pink" or "mug" with a price ≤ 15.
    let mut per_cat: BTreeMap<String, u32> = BTreeMap::new();
    let mut total = 0;
    for i in 0..N {
        let title = rec.catalog().titles[i].to_lowercase();
        let words: Vec<&str> = title.split(' ').collect();
        let matches = words.iter().any(|w| *w == "pink" || w.starts_with("mug"));
        let priced = rec.catalog().price.get(i).is_some_and(|p| p <= 15.0);
        if matches && priced {
            total += 1;
            if let Some(c) = index.category(i as u32) {
                *per_cat.entry(c.to_string()).or_default() += 1;
            }
        }
    }
    assert_eq!(got.total, total);
    let got_cats: BTreeMap<String, u32> = facets
        .categories
        .iter()
        .map(|c| (c.name.clone(), c.count))
        .collect();
    assert_eq!(got_cats, per_cat);
    let banded: u32 = facets.price_bands.iter().map(|b| b.count).sum();
    assert_eq!(banded + facets.no_price, total);
    assert_eq!(facets.no_price, 0, "the filter keeps priced items only");
    // Facets off.
    let off = SearchRequest {
        facets: false,
        ..req(3)
    };
    assert!(rec.search(&[], "pink", &off).unwrap().facets.is_none());
}

#[test]
fn no_match_gives_corrections_then_popular_items() {
    let rec = rec();
    let got = rec.search(&[], "zzzzzz qqqq", &req(5)).unwrap();
    assert!(got.results.is_empty());
    assert_eq!(got.total, 0);
    let s = got.suggestions.expect("suggestions when nothing matches");
    assert!(
        s.popular_category.is_none(),
        "nothing to correct: all categories"
    );
    assert_eq!(s.popular.len(), 5);
    assert!(s
        .popular
        .iter()
        .all(|p| p.reasons == [SearchReason::Popular]));
    // Typo'd beyond the typo budget (two edits in a 6-letter word): corrected spelling.
    let got = rec.search(&[], "cxndlx", &req(5)).unwrap();
    if got.total == 0 {
        let s = got.suggestions.expect("suggestions");
        assert_eq!(s.did_you_mean.as_deref(), Some("candle"));
        let cat = s.popular_category.expect("category of the corrected query");
        assert!(s.popular.iter().all(|p| p.category == cat));
        // Most popular first.
        let pops: Vec<f32> = s
            .popular
            .iter()
            .map(|p| rec.popularity[p.index as usize])
            .collect();
        assert!(pops.windows(2).all(|w| w[0] >= w[1]));
        // Exactly the definition: every item of the category by popularity, ties to the
        // lower index, the first five.
        let mut want: Vec<u32> = (0..rec.n_items() as u32)
            .filter(|&i| rec.category_name(i as usize) == cat)
            .collect();
        want.sort_by(|&a, &b| {
            let (pa, pb) = (rec.popularity[a as usize], rec.popularity[b as usize]);
            pb.total_cmp(&pa).then(a.cmp(&b))
        });
        want.truncate(5);
        let got: Vec<u32> = s.popular.iter().map(|p| p.index).collect();
        assert_eq!(got, want);
    } else {
        panic!("two edits in a 6-letter word must not match");
    }
}

#[test]
fn untrusted_queries_never_error() {
    let rec = rec();
    let h = [ev(1, EventKind::View, T0)];
    let mut rng = SplitMix64::new(3);
    let mut queries: Vec<String> = vec![
        String::new(),
        "   ".into(),
        "🎄🎁".into(),
        "x".repeat(10_000),
        "\u{0}\u{ffff}\u{202e}".into(),
        "ЁЛКА 圣诞".into(),
        "red ".repeat(100),
    ];
    for _ in 0..50 {
        let len = rng.below(40) as usize;
        queries.push(
            (0..len)
                .map(|_| char::from_u32(rng.below(0x3000) as u32).unwrap_or('?'))
                .collect(),
        );
    }
    for q in &queries {
        for history in [&h[..], &[]] {
            let r = rec.search(history, q, &req(10));
            assert!(r.is_ok(), "{q:?}: {r:?}");
        }
    }
}

#[test]
fn spans_highlight_the_matched_words() {
    let rec = rec();
    let got = rec.search(&[], "candle", &req(5)).unwrap();
    assert!(!got.results.is_empty());
    for r in &got.results {
        let SearchReason::Match { terms, spans } = &r.reasons[0] else {
            panic!("match first");
        };
        assert_eq!(terms[0].term, "candle");
        let utf16: Vec<u16> = r.title.encode_utf16().collect();
        let s = spans[0];
        let word = String::from_utf16(&utf16[s.start as usize..s.end as usize]).unwrap();
        assert_eq!(word.to_lowercase(), "candle");
    }
    let _ = SearchIndex::from_bytes(&[]).expect_err("empty bytes are not an index");
}

/// A catalogue larger than the re-rank pool (so the pool cut matters) with a transition
/// memory, so the personalised score has both of its terms.
fn pooled_rec(kernel: CpuKernel) -> Recommender {
    let n = 1500;
    let mut file = tiny_weight_file(n, 23);
    attach_index(&mut file).expect("index builds");
    let mut rec = recommender(file);
    let mut rng = SplitMix64::new(41);
    let mut memory = Memory::from_lists((0..n).map(|_| {
        (0..30)
            .map(|_| (rng.below(n as u64) as u32, rng.next_f32()))
            .collect::<Vec<_>>()
    }));
    (memory.alpha, memory.last_l, memory.decay) = (3.0, 4, 0.6);
    rec.model.memory = Some(memory);
    rec.kernel = kernel;
    rec
}

/// What personalised `search()` computed before it scored only its pool: the text hits
/// of the pool (`max(k, CANDIDATE_POOL)`), re-ranked by the model's logits for **every**
/// catalogue item (`score::logits`: encoder, head, memory term when `memory`), cut to
/// `k`. `history` must be oldest first (as `prepare` sorts it). Returns (item, score,
/// text score) and the number of text matches.
fn full_catalogue_reference(
    rec: &Recommender,
    history: &[HistoryEvent],
    query: &str,
    k: usize,
    weight: f32,
    memory: bool,
) -> (Vec<(u32, f32, f32)>, u32) {
    let opts = SearchOptions {
        k: k.max(CANDIDATE_POOL),
        ..SearchOptions::default()
    };
    let found = search(rec.search_index().unwrap(), query, &opts, &|_| true);
    let mut logits = vec![f32::NAN; rec.n_items()];
    score::logits(
        &rec.model,
        &rec.plan,
        rec.kernel,
        history,
        memory,
        &mut logits,
    )
    .unwrap();
    let hits = personalize(found.hits, Some(&logits), weight);
    let got = (hits.iter().take(k))
        .map(|h| (h.doc, h.score, h.text_score))
        .collect();
    (got, found.total)
}

#[test]
fn personalised_search_equals_the_full_catalogue_logits_path() {
    let histories: Vec<Vec<HistoryEvent>> = vec![
        vec![ev(7, EventKind::View, T0)],
        vec![
            ev(3, EventKind::View, T0),
            ev(420, EventKind::Cart, T0 + 60.0),
            ev(1099, EventKind::Purchase, T0 + 7200.0),
        ],
        common::fixtures::history(&(0..20).map(|i| (i * 173 + 11) % 1500).collect::<Vec<_>>()),
    ];
    let queries = [
        "red",
        "vintage candle",
        "blu",
        "chrstmas mug",
        "box",
        "pink st",
    ];
    let mut pool_cut = false;
    let mut memory_moves = false;
    for &kernel in CpuKernel::ALL {
        let rec = pooled_rec(kernel);
        for h in &histories {
            for q in queries {
                for (k, w) in [(10, 0.3), (40, 1.0), (300, 0.7)] {
                    let r = SearchRequest {
                        personalize: Some(w),
                        ..req(k)
                    };
                    let got = rec.search(h, q, &r).unwrap();
                    let (want, total) = full_catalogue_reference(&rec, h, q, k, w, true);
                    let what = format!("{} {q:?} k={k} w={w} history={}", kernel.name(), h.len());
                    assert!(got.personalized, "{what}");
                    assert_eq!(got.total, total, "{what}");
                    let order: Vec<u32> = want.iter().map(|x| x.0).collect();
                    assert_eq!(items(&got), order, "{what}");
                    for (x, &(_, score, text_score)) in got.results.iter().zip(&want) {
                        assert!(
                            (x.score - score).abs() <= 1e-6 * score.abs().max(1e-6),
                            "{what}: item {}: score {} vs {score}",
                            x.index,
                            x.score
                        );
                        assert_eq!(x.text_score, text_score, "{what}: item {}", x.index);
                    }
                    pool_cut |= total as usize > CANDIDATE_POOL.max(k);
                    let (no_memory, _) = full_catalogue_reference(&rec, h, q, k, w, false);
                    memory_moves |= no_memory.iter().map(|x| x.0).ne(order.iter().copied());
                }
            }
        }
    }
    assert!(
        pool_cut,
        "some query matches more items than the pool re-ranks"
    );
    assert!(
        memory_moves,
        "the memory term changes some order (so it is tested)"
    );
}

#[test]
fn pool_steps_give_the_full_logits_of_the_listed_items() {
    let h = common::fixtures::history(&[5, 900, 77, 1203, 5, 64]);
    let mut rng = SplitMix64::new(8);
    let items: Vec<u32> = (0..300).map(|_| rng.below(1500) as u32).collect();
    for &kernel in CpuKernel::ALL {
        let rec = pooled_rec(kernel);
        let mut full = vec![f32::NAN; rec.n_items()];
        score::logits(&rec.model, &rec.plan, kernel, &h, true, &mut full).unwrap();
        let enc = score::encode(&rec.model, &rec.plan, &h);
        let mut got = vec![f32::NAN; items.len()];
        score::head_logits_for(kernel, &rec.plan, &enc.query, &items, &mut got).unwrap();
        let head_only = got.clone();
        score::add_memory_for(&rec.model, &h, &items, &mut got);
        for (r, &i) in items.iter().enumerate() {
            assert_eq!(
                got[r].to_bits(),
                full[i as usize].to_bits(),
                "{}: item {i} at {r}: {} vs {}",
                kernel.name(),
                got[r],
                full[i as usize]
            );
        }
        assert!(
            got.iter().zip(&head_only).any(|(a, b)| a != b),
            "the memory term reaches some listed item"
        );
        let err = score::head_logits_for(kernel, &rec.plan, &enc.query, &[1500], &mut [0.0]);
        assert!(err.is_err(), "an index past the catalogue is an error");
    }
}
