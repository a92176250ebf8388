//! On-device search: tokeniser, BM25 against hand-computed scores, prefix and typo
//! matching, ranking rules, untrusted queries, facets, suggestions, personalisation,
//! and the index's byte format under truncation and corruption.

use sha2::{Digest, Sha256};
use vitrine::rng::SplitMix64;
use vitrine::search::codec::IndexSource;
use vitrine::search::{
    personalize, search, tokenize, Doc, PriceFacet, SearchIndex, SearchIndexError, SearchOptions,
    SearchResults,
};
use vitrine::strs::StrList;

fn doc<'a>(title: &'a str, category: &'a str) -> Doc<'a> {
    Doc {
        title,
        category: Some(category),
        extra: None,
    }
}

fn index(docs: &[Doc<'_>]) -> SearchIndex {
    SearchIndex::build(docs).expect("index builds")
}

fn all(_: u32) -> bool {
    true
}

fn run(ix: &SearchIndex, q: &str, opts: &SearchOptions<'_>) -> SearchResults {
    search(ix, q, opts, &all)
}

fn exact() -> SearchOptions<'static> {
    SearchOptions {
        k: 100,
        prefix_last: false,
        typos: false,
        price: None,
    }
}

fn docs_of(r: &SearchResults) -> Vec<u32> {
    r.hits.iter().map(|h| h.doc).collect()
}

/// The three-document catalogue of the hand computations below.
fn tiny() -> SearchIndex {
    index(&[
        doc("Red Mug", "Kitchen"),
        doc("Blue Mug Mug", "Kitchen"),
        doc("Red Lamp", "Lighting"),
    ])
}

#[test]
fn tokenizer_folds_splits_and_spans_in_utf16() {
    let toks = tokenize("Crème BRÛLÉE set/2 — Straße");
    let texts: Vec<&str> = toks.iter().map(|t| t.text.as_str()).collect();
    assert_eq!(texts, ["creme", "brulee", "set", "2", "strasse"]);
    assert_eq!((toks[4].start, toks[4].end), (21, 27));
    // The emoji is two UTF-16 units and a separator: "café" starts at unit 3.
    let toks = tokenize("😀 Café 😀");
    assert_eq!(toks.len(), 1);
    assert_eq!(
        (toks[0].text.as_str(), toks[0].start, toks[0].end),
        ("cafe", 3, 7)
    );
    // A decomposed accent folds like the precomposed one and stays in the span.
    let toks = tokenize("e\u{301}te\u{301}");
    assert_eq!(
        (toks[0].text.as_str(), toks[0].start, toks[0].end),
        ("ete", 0, 5)
    );
    // Other scripts are tokens; ligatures expand; emoji-only has no token.
    let texts: Vec<String> = tokenize("Привет 北京 Æsir Œuvre İstanbul")
        .into_iter()
        .map(|t| t.text)
        .collect();
    assert_eq!(texts, ["привет", "北京", "aesir", "oeuvre", "istanbul"]);
    assert!(tokenize("😀🎉 — !!").is_empty());
    // Long runs keep 32 characters of text and their whole span.
    let long = "a".repeat(40);
    let toks = tokenize(&long);
    assert_eq!((toks[0].text.len(), toks[0].end), (32, 40));
}

#[test]
fn bm25_matches_hand_computed_scores() {
    // k1 = 1.2, b = 1, tf = 2·tf_title + 0·tf_other. Weighted lengths (title ×2,
    // category ×1): doc0 2·2 + 1 = 5, doc1 2·3 + 1 = 7, doc2 2·2 + 1 = 5; avglen = 17/3.
    // N = 3.
    // "mug": df 2, idf = ln(1 + (3 − 2 + 0.5)/(2 + 0.5)) = ln 1.6 = 0.4700036.
    //   doc1: tf = 2·2 = 4, norm = 1.2·7/(17/3) = 1.4823529,
    //         4·2.2/(4 + 1.4823529)·0.4700036 = 0.7544264
    //   doc0: tf = 2·1 = 2, norm = 1.2·5/(17/3) = 1.0588235,
    //         2·2.2/(2 + 1.0588235)·0.4700036 = 0.6760821
    let ix = tiny();
    let r = run(&ix, "mug", &exact());
    assert_eq!(docs_of(&r), [1, 0]);
    assert!(
        (r.hits[0].bm25 - 0.754_426_4).abs() < 1e-5,
        "{}",
        r.hits[0].bm25
    );
    assert!(
        (r.hits[1].bm25 - 0.676_082_1).abs() < 1e-5,
        "{}",
        r.hits[1].bm25
    );
    assert_eq!(r.hits[0].text_score, 1.0);
    assert!(r.hits[1].text_score < 1.0 && r.hits[1].text_score > 0.0);
    // "kitchen" (category field only): both match (one word each) with BM25 0 (the
    // category's weight in tf is 0); doc id decides.
    let r = run(&ix, "KITCHEN", &exact());
    assert_eq!(docs_of(&r), [0, 1]);
    assert_eq!((r.hits[0].bm25, r.hits[1].bm25), (0.0, 0.0));
    assert_eq!(r.hits[0].words_matched, 1);
    assert!(
        r.hits[0].spans.is_empty(),
        "a category match has no title span"
    );
    // "red lamp": doc2 matches both words, doc0 only "red".
    //   lamp: df 1, idf = ln(1 + 2.5/1.5) = 0.9808293; doc2: 2·2.2/3.0588235·idf = 1.4108852
    //   doc2 = 0.6760821 + 1.4108852 = 2.0869673
    let r = run(&ix, "red lamp", &exact());
    assert_eq!(docs_of(&r), [2, 0]);
    assert!((r.hits[0].bm25 - 2.086_967_3).abs() < 1e-5);
    assert_eq!(r.hits[0].words_matched, 2);
    let spans: Vec<(u32, u32)> = r.hits[0].spans.iter().map(|s| (s.start, s.end)).collect();
    assert_eq!(spans, [(0, 3), (4, 8)]);
}

fn shop() -> SearchIndex {
    index(&[
        doc("Candle holder", "Home"),        // 0
        doc("Cake stand", "Kitchen"),        // 1
        doc("Christmas lights", "Lighting"), // 2
        doc("Lamp", "Lighting"),             // 3
        doc("Lump lump", "Misc"),            // 4
        doc("Vintage lantern", "Lighting"),  // 5
    ])
}

fn opts() -> SearchOptions<'static> {
    SearchOptions {
        k: 100,
        ..SearchOptions::default()
    }
}

/// The word itself ranks above a longer term it prefixes, though BM25 prefers the other:
/// doc 0 ("Hearts Box": short title, rarer term) beats docs 1 and 2 on BM25, yet for the
/// query `heart` both documents with the word `heart` come first (doc 2 before doc 1:
/// shorter title); a word still being typed (`hea`) completes in all three, and BM25
/// times the completion weight `(3/|term|)³` decides again (doc 0: 1.6723·(3/6)³ =
/// 0.2090; doc 2: 0.6310·(3/5)³ = 0.1363; doc 1: 0.5527·(3/5)³ = 0.1194).
#[test]
fn exact_word_ranks_above_its_completions() {
    let ix = index(&[
        doc("Hearts Box", "Box"),
        doc("Red Heart Wreath With Ribbon And Bells", "Wreath"),
        doc("Heart Of Wicker Large Decoration", "Decoration"),
    ]);
    let r = run(&ix, "heart", &opts());
    assert_eq!(docs_of(&r), [2, 1, 0]);
    assert!(!r.hits[0].matches[0].prefix && r.hits[2].matches[0].prefix);
    assert!(
        r.hits[2].bm25 > r.hits[0].bm25,
        "BM25 alone would put the completion first"
    );
    let typing = run(&ix, "hea", &opts());
    assert_eq!(
        docs_of(&typing),
        [0, 2, 1],
        "all three complete: weighted BM25 orders them"
    );
    assert!((typing.hits[0].bm25 - 0.209_039_2).abs() < 1e-5);
    assert!(typing.hits.iter().all(|h| h.matches[0].prefix));
}

#[test]
fn last_word_matches_as_a_prefix() {
    let ix = shop();
    let r = run(&ix, "ca", &opts());
    // "cake" and "candle": same df (1), same weighted length (5): equal BM25, so the
    // completion weight decides: (2/4)³ for "cake" over (2/6)³ for "candle".
    assert_eq!(docs_of(&r), [1, 0]);
    assert!((r.hits[0].bm25 / r.hits[1].bm25 - 27.0 / 8.0).abs() < 1e-5);
    assert!(r.hits.iter().all(|h| h.matches[0].prefix && h.typos == 0));
    assert!(run(
        &ix,
        "ca",
        &SearchOptions {
            prefix_last: false,
            ..opts()
        }
    )
    .hits
    .is_empty());
    assert!(
        run(&ix, "ca ", &opts()).hits.is_empty(),
        "a trailing space completes the word"
    );
    // Only the last word is a prefix.
    assert!(run(&ix, "ca stand", &opts())
        .hits
        .iter()
        .all(|h| h.doc == 1));
}

#[test]
fn typos_one_edit_from_4_two_from_8_transposition_counts_one() {
    let ix = shop();
    let o = SearchOptions {
        prefix_last: false,
        ..opts()
    };
    let hit = |q: &str| {
        run(&ix, q, &o)
            .hits
            .first()
            .map(|h| (h.doc, h.typos, h.matches[0].term.clone()))
    };
    assert_eq!(
        hit("candel"),
        Some((0, 1, "candle".into())),
        "transposition = 1 edit"
    );
    assert_eq!(hit("cndle"), Some((0, 1, "candle".into())), "deletion");
    assert_eq!(hit("chrstmas"), Some((2, 1, "christmas".into())));
    assert_eq!(
        hit("chirstmsa"),
        Some((2, 2, "christmas".into())),
        "9 letters: two edits"
    );
    assert_eq!(hit("cendlas"), None, "7 letters: only one edit");
    assert_eq!(hit("cak"), None, "under 4 letters: no typo");
    assert_eq!(hit("cakr"), Some((1, 1, "cake".into())));
    assert_eq!(
        run(&ix, "candel", &SearchOptions { typos: false, ..o }).total,
        0
    );
}

#[test]
fn exact_matches_rank_above_corrected_ones() {
    let ix = shop();
    // "lump lump" would score higher on BM25 (tf 2) but is one edit away.
    let r = run(
        &ix,
        "lamp",
        &SearchOptions {
            prefix_last: false,
            ..opts()
        },
    );
    assert_eq!(docs_of(&r), [3, 4]);
    assert_eq!((r.hits[0].typos, r.hits[1].typos), (0, 1));
    assert!(r.hits[1].bm25 > r.hits[0].bm25, "the order is not BM25's");
    assert!(r.hits[0].text_score > r.hits[1].text_score);
}

#[test]
fn untrusted_queries_never_fail() {
    let ix = shop();
    let long = "candle ".repeat(1500);
    let junk = "a\u{0}b\u{FFFF}\u{10FFFF}c";
    let emoji = "😀🎉🔥";
    let queries = [
        "",
        "   \t\n",
        &long,
        emoji,
        "北京 Привет",
        "the of and a",
        junk,
        "%%%",
        &"x".repeat(10_000),
    ];
    for q in queries {
        let r = run(&ix, q, &opts());
        assert!(r.words.len() <= vitrine::search::MAX_QUERY_TERMS);
        assert!(r.hits.len() as u32 <= r.total);
    }
    assert!(run(&ix, "", &opts()).hits.is_empty());
    assert!(run(&ix, emoji, &opts()).words.is_empty());
    assert_eq!(
        docs_of(&run(&ix, &long, &opts())),
        [0],
        "repeated words count once"
    );
    let many: String = (0..100).map(|i| format!("w{i} ")).collect();
    assert_eq!(run(&ix, &many, &opts()).words.len(), 8);
    // Non-Latin titles are searchable.
    let ix = index(&[
        doc("Чайник электрический", "Кухня"),
        doc("北京 烤鸭", "食品"),
    ]);
    assert_eq!(docs_of(&run(&ix, "чайник", &opts())), [0]);
    assert_eq!(docs_of(&run(&ix, "北京", &opts())), [1]);
}

#[test]
fn facets_equal_a_brute_force_count() {
    let mut rng = SplitMix64::new(7);
    let words = [
        "red", "blue", "mug", "lamp", "candle", "bag", "tin", "heart",
    ];
    let cats = ["Kitchen", "Home", "Lighting", "Bags"];
    let titles: Vec<String> = (0..300)
        .map(|_| {
            (0..3)
                .map(|_| words[rng.below(words.len() as u64) as usize])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let docs: Vec<Doc<'_>> = titles
        .iter()
        .enumerate()
        .map(|(i, t)| Doc {
            title: t,
            category: (!i.is_multiple_of(7)).then(|| cats[i % 4]),
            extra: None,
        })
        .collect();
    let prices: Vec<f32> = (0..300u32)
        .map(|i| {
            if i.is_multiple_of(11) {
                f32::NAN
            } else {
                (i % 37) as f32 * 0.5
            }
        })
        .collect();
    let ix = index(&docs);
    let eligible = |d: u32| !d.is_multiple_of(3);
    let edges = [2.0, 5.0, 10.0];
    let o = SearchOptions {
        k: 1000,
        price: Some(PriceFacet {
            prices: &prices,
            edges: &edges,
        }),
        ..opts()
    };
    let r = search(&ix, "red lamp", &o, &eligible);
    assert!(r.total > 0 && r.hits.len() as u32 == r.total);
    let matched: Vec<u32> = (0..300u32)
        .filter(|&d| {
            eligible(d)
                && (titles[d as usize].contains("red") || titles[d as usize].contains("lamp"))
        })
        .collect();
    let mut got: Vec<u32> = docs_of(&r);
    got.sort();
    assert_eq!(got, matched);
    for c in &r.facets.categories {
        let n = matched
            .iter()
            .filter(|&&d| ix.category(d) == Some(c.name.as_str()))
            .count();
        assert_eq!(c.count as usize, n, "{}", c.name);
    }
    let none = matched
        .iter()
        .filter(|&&d| ix.category(d).is_none())
        .count();
    assert_eq!(r.facets.no_category as usize, none);
    assert_eq!(r.facets.price_bands.len(), 4);
    for b in &r.facets.price_bands {
        let n = matched
            .iter()
            .map(|&d| prices[d as usize])
            .filter(|p| {
                p.is_finite() && b.min.is_none_or(|m| *p >= m) && b.max.is_none_or(|m| *p < m)
            })
            .count();
        assert_eq!(b.count as usize, n);
    }
    let no_price = matched
        .iter()
        .filter(|&&d| !prices[d as usize].is_finite())
        .count();
    assert_eq!(r.facets.no_price as usize, no_price);
}

#[test]
fn no_results_gives_suggestions() {
    let ix = shop();
    let o = SearchOptions {
        typos: false,
        prefix_last: false,
        ..opts()
    };
    let r = run(&ix, "vintage lantren", &o);
    assert!(r.total > 0, "vintage matches");
    let r = run(&ix, "lantren candel", &o);
    assert_eq!(r.total, 0);
    let terms: Vec<(&str, &str, u8)> = r
        .suggestions
        .iter()
        .map(|s| (s.word.as_str(), s.term.as_str(), s.distance))
        .collect();
    assert!(terms.contains(&("lantren", "lantern", 1)), "{terms:?}");
    assert!(terms.contains(&("candel", "candle", 1)), "{terms:?}");
    assert_eq!(r.did_you_mean.as_deref(), Some("lantern candle"));
    // Closest first: "lmp" is one edit from "lamp" and "lump".
    let r = run(&ix, "lmp", &o);
    assert_eq!(r.suggestions.len(), 2);
    assert!(r.suggestions.iter().all(|s| s.distance == 1));
    assert!(run(&ix, "qqqqqqqqqq", &o).suggestions.is_empty());
}

#[test]
fn personalisation_blends_and_weight_zero_is_text_order() {
    let ix = shop();
    let r = run(&ix, "l", &opts());
    assert!(r.hits.len() >= 4);
    let text = r.hits.clone();
    let model: Vec<f32> = (0..6).map(|d| d as f32).collect();
    assert_eq!(personalize(r.hits.clone(), Some(&model), 0.0), text);
    assert_eq!(personalize(r.hits.clone(), None, 0.7), text);
    assert_eq!(personalize(r.hits.clone(), Some(&model), f32::NAN), text);
    let by_model = personalize(r.hits.clone(), Some(&model), 1.0);
    let order: Vec<u32> = by_model.iter().map(|h| h.doc).collect();
    let mut expected: Vec<u32> = text.iter().map(|h| h.doc).collect();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(order, expected, "weight 1: the model's order");
    let half = personalize(r.hits.clone(), Some(&model), 0.5);
    for h in &half {
        let norm = (model[h.doc as usize] - 0.0) / 5.0;
        let lo = text
            .iter()
            .map(|t| model[t.doc as usize])
            .fold(f32::INFINITY, f32::min);
        let hi = text
            .iter()
            .map(|t| model[t.doc as usize])
            .fold(f32::NEG_INFINITY, f32::max);
        let norm = if hi > lo {
            (model[h.doc as usize] - lo) / (hi - lo)
        } else {
            norm
        };
        assert!((h.score - (0.5 * h.text_score + 0.5 * norm)).abs() < 1e-6);
    }
}

/// Re-seals a payload with a correct header, so content checks run after the hash.
fn seal(payload: &[u8]) -> Vec<u8> {
    let mut out = b"VSRX".to_vec();
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(payload));
    out.extend_from_slice(payload);
    out
}

#[test]
fn serialisation_round_trips() {
    let ix = shop();
    let bytes = ix.to_bytes();
    let back = SearchIndex::from_bytes(&bytes).expect("loads");
    assert_eq!(back.to_bytes(), bytes);
    for q in ["ca", "lamp", "chrstmas lights", "candel"] {
        assert_eq!(run(&back, q, &opts()), run(&ix, q, &opts()), "{q}");
    }
    let empty = index(&[]);
    let back = SearchIndex::from_bytes(&empty.to_bytes()).expect("empty loads");
    assert_eq!(back.n_docs(), 0);
    assert!(run(&back, "anything", &opts()).hits.is_empty());
}

/// Loading against the catalogue's titles: when they are the stored ones, the index
/// holds no copy of its own (its heap shrinks by exactly the titles' buffer); when one
/// differs (or the count does), it keeps its own as `from_bytes` does. Answers and bytes
/// are the same every way.
#[test]
fn loading_shares_equal_catalogue_titles() {
    let ix = shop();
    let bytes = ix.to_bytes();
    let plain = SearchIndex::from_bytes(&bytes).unwrap();
    let titles: Vec<String> = (0..ix.n_docs() as u32)
        .map(|d| ix.title(d).unwrap().to_owned())
        .collect();
    let mut same: StrList = titles.iter().collect();
    same.shrink_to_fit();
    let mut changed = titles.clone();
    changed[3] = "Lamp!".into();
    let changed: StrList = changed.iter().collect();
    let short: StrList = titles[..5].iter().collect();
    let shared = SearchIndex::from_bytes_sharing_titles(&bytes, &same).unwrap();
    assert_eq!(shared.heap_bytes() + same.heap_bytes(), plain.heap_bytes());
    for other in [&changed, &short] {
        let own = SearchIndex::from_bytes_sharing_titles(&bytes, other).unwrap();
        assert_eq!(own.heap_bytes(), plain.heap_bytes());
        assert_eq!(own.title(3), Some("Lamp"));
        assert_eq!(own.to_bytes(), bytes);
    }
    assert_eq!(shared.to_bytes(), bytes);
    for q in ["ca", "lamp", "chrstmas lights", "candel", "lighting"] {
        assert_eq!(run(&shared, q, &opts()), run(&plain, q, &opts()), "{q}");
    }
}

/// The index's bytes as a weight file's section: read where they lie, counting the
/// largest single read.
struct Counting<'a> {
    bytes: &'a [u8],
    largest: std::cell::Cell<usize>,
}

impl IndexSource for Counting<'_> {
    fn byte_len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) {
        self.largest.set(self.largest.get().max(out.len()));
        let at = offset as usize;
        out.copy_from_slice(&self.bytes[at..at + out.len()]);
    }
}

fn from_source(bytes: &[u8], titles: &StrList) -> (Result<SearchIndex, SearchIndexError>, usize) {
    let src = Counting {
        bytes,
        largest: std::cell::Cell::new(0),
    };
    let r = SearchIndex::from_source_sharing_titles(&src, titles);
    (r, src.largest.get())
}

/// Loading from a source (as a weight file's section is, in pieces) gives the index a
/// slice gives — same bytes, same heap, same answers — reading at most 64 KiB at a time
/// over an index several windows long, and the same error for every cut and flip.
#[test]
fn loading_from_a_source_reads_windows_and_matches_the_slice() {
    let words = [
        "lamp",
        "candle",
        "holder",
        "vintage",
        "lantern",
        "christmas",
        "glass",
    ];
    let titles: Vec<String> = (0..6000)
        .map(|i| {
            format!(
                "{} {} item{i} colour{}",
                words[i % 7],
                words[(i / 7) % 7],
                i % 311
            )
        })
        .collect();
    let docs: Vec<Doc<'_>> = titles.iter().map(|t| doc(t, "Home")).collect();
    let ix = index(&docs);
    let bytes = ix.to_bytes();
    assert!(
        bytes.len() > 3 * 65536,
        "{} bytes: too few windows",
        bytes.len()
    );
    let list: StrList = titles.iter().collect();
    let (loaded, largest) = from_source(&bytes, &list);
    let loaded = loaded.expect("loads from a source");
    let plain = SearchIndex::from_bytes_sharing_titles(&bytes, &list).unwrap();
    assert!(largest <= 65536, "read {largest} bytes at once");
    assert_eq!(loaded.to_bytes(), bytes);
    assert_eq!(loaded.heap_bytes(), plain.heap_bytes());
    for q in ["lamp", "vintage glass", "item4242", "colour17 candel"] {
        assert_eq!(run(&loaded, q, &opts()), run(&plain, q, &opts()), "{q}");
    }
    for len in (0..bytes.len()).step_by(1009).chain([bytes.len() - 1]) {
        let cut = &bytes[..len];
        assert_eq!(
            from_source(cut, &list).0.unwrap_err(),
            SearchIndex::from_bytes_sharing_titles(cut, &list).unwrap_err(),
            "cut at {len}"
        );
    }
    // Flips in the payload, resealed so the decoder (not the hash) meets them.
    let payload = &bytes[44..];
    let mut rng = SplitMix64::new(7);
    for _ in 0..50 {
        let mut p = payload.to_vec();
        let i = rng.below(p.len() as u64) as usize;
        p[i] ^= 1 + rng.below(255) as u8;
        let b = seal(&p);
        let want = SearchIndex::from_bytes_sharing_titles(&b, &list);
        let (got, _) = from_source(&b, &list);
        match (got, want) {
            (Ok(a), Ok(b)) => assert_eq!(a.to_bytes(), b.to_bytes()),
            (a, b) => assert_eq!(a.err(), b.err()),
        }
    }
}

/// A section inside a weight file whose content hash covers it skips its own SHA-256
/// and nothing else: a wrong inner hash loads the same index, and a flipped payload
/// byte gives what the resealed payload gives the checked decoder.
#[test]
fn a_section_covered_by_the_files_hash_skips_only_its_own() {
    let titles: Vec<String> = (0..400)
        .map(|i| format!("vintage lamp{} colour{}", i % 17, i % 29))
        .collect();
    let docs: Vec<Doc<'_>> = titles.iter().map(|t| doc(t, "Home")).collect();
    let bytes = index(&docs).to_bytes();
    let list: StrList = titles.iter().collect();
    let hashed = |b: &[u8]| SearchIndex::from_hashed_source_sharing_titles(b, &list);
    assert_eq!(hashed(&bytes).unwrap().to_bytes(), bytes);
    let mut wrong = bytes.clone();
    wrong[12] ^= 1; // the stored SHA-256
    assert_eq!(
        SearchIndex::from_source_sharing_titles(&wrong[..], &list).unwrap_err(),
        SearchIndexError::HashMismatch
    );
    assert_eq!(hashed(&wrong).unwrap().to_bytes(), bytes);
    let mut rng = SplitMix64::new(11);
    for _ in 0..50 {
        let mut b = bytes.clone();
        let i = 44 + rng.below((b.len() - 44) as u64) as usize;
        b[i] ^= 1 + rng.below(255) as u8;
        let want = SearchIndex::from_bytes_sharing_titles(&seal(&b[44..]), &list);
        match (hashed(&b), want) {
            (Ok(a), Ok(w)) => assert_eq!(a.to_bytes(), w.to_bytes()),
            (a, w) => assert_eq!(a.err(), w.err(), "flip at {i}"),
        }
    }
    // The header's other checks still run.
    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert_eq!(hashed(&bad).unwrap_err(), SearchIndexError::BadMagic);
    assert!(matches!(
        hashed(&bytes[..bytes.len() - 1]),
        Err(SearchIndexError::Truncated { .. })
    ));
}

#[test]
fn corrupt_bytes_are_typed_errors() {
    let bytes = shop().to_bytes();
    for len in 0..bytes.len() {
        assert!(
            SearchIndex::from_bytes(&bytes[..len]).is_err(),
            "truncated at {len}"
        );
    }
    let mut rng = SplitMix64::new(42);
    for _ in 0..2000 {
        let mut b = bytes.clone();
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(b.len() as u64) as usize;
            b[i] ^= 1 + rng.below(255) as u8;
        }
        assert!(SearchIndex::from_bytes(&b).is_err());
    }
    let mut b = bytes.clone();
    b[0] = b'X';
    assert_eq!(
        SearchIndex::from_bytes(&b).unwrap_err(),
        SearchIndexError::BadMagic
    );
    let mut b = bytes.clone();
    b[4] = 9;
    assert_eq!(
        SearchIndex::from_bytes(&b).unwrap_err(),
        SearchIndexError::UnsupportedVersion { found: 9 }
    );
    let mut b = bytes.clone();
    b[6] = 1;
    assert_eq!(
        SearchIndex::from_bytes(&b).unwrap_err(),
        SearchIndexError::Reserved { found: 1 }
    );
    let mut b = bytes.clone();
    b.push(0);
    assert!(matches!(
        SearchIndex::from_bytes(&b),
        Err(SearchIndexError::TrailingBytes { extra: 1 })
    ));
    let mut b = bytes.clone();
    let last = b.len() - 1;
    b[last] ^= 0x40;
    assert_eq!(
        SearchIndex::from_bytes(&b).unwrap_err(),
        SearchIndexError::HashMismatch
    );
}

#[test]
fn malformed_payloads_with_a_valid_hash_are_typed_errors() {
    use SearchIndexError as E;
    let err = |p: &[u8]| SearchIndex::from_bytes(&seal(p)).unwrap_err();
    // Counts larger than the bytes that follow never allocate.
    assert_eq!(
        err(&[0xff, 0xff, 0xff, 0x07, 0, 0]),
        E::Truncated { what: "documents" }
    );
    assert_eq!(
        err(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
        E::TooLarge {
            what: "documents",
            value: u64::from(u32::MAX),
            max: 1 << 24
        }
    );
    assert_eq!(err(&[0x80, 0x80, 0x80, 0x80, 0x80, 0]), E::BadVarint);
    // One doc "ab" (no category), terms "b" then "a": out of order.
    let doc = [0u8, 2, b'a', b'b'];
    let mut p = vec![1u8, 0, 2];
    p.extend_from_slice(&doc);
    p.extend_from_slice(&[0, 1, b'b', 1, 0, 1, 0]);
    p.extend_from_slice(&[0, 1, b'a', 1, 0, 1, 0]);
    assert_eq!(err(&p), E::UnsortedTerms { term: 1 });
    // A posting past the last document.
    let mut p = vec![1u8, 0, 1];
    p.extend_from_slice(&doc);
    p.extend_from_slice(&[0, 1, b'a', 1, 5, 1, 0]);
    assert_eq!(err(&p), E::BadPostings { term: 0 });
    // A category id that does not exist.
    let p = [1u8, 0, 0, 3, 0];
    assert_eq!(err(&p), E::BadCategory { doc: 0 });
    // Invalid UTF-8 in a title.
    let p = [1u8, 0, 0, 0, 1, 0xff];
    assert_eq!(err(&p), E::InvalidUtf8 { what: "title" });
    // Front coding past the previous term.
    let mut p = vec![1u8, 0, 1];
    p.extend_from_slice(&doc);
    p.extend_from_slice(&[3, 1, b'a', 1, 0, 1, 0]);
    assert_eq!(err(&p), E::BadTerm { term: 0 });
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn online_retail_index_is_within_the_size_budget() {
    use vitrine::data::{load_online_retail, LoadOptions};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/online-retail/online_retail.csv.gz");
    let (ds, _) = load_online_retail(&path, &LoadOptions::default()).expect("shipped data loads");
    let docs: Vec<Doc<'_>> = ds
        .items
        .iter()
        .map(|it| Doc {
            title: &it.title,
            category: it.category.as_deref(),
            extra: None,
        })
        .collect();
    let ix = index(&docs);
    let bytes = ix.to_bytes();
    eprintln!(
        "Online Retail search index: {} docs, {} terms, {} bytes",
        ix.n_docs(),
        ix.n_terms(),
        bytes.len()
    );
    assert_eq!(ix.n_docs(), 3659);
    assert!(bytes.len() <= 770_000, "{} bytes", bytes.len());
    let back = SearchIndex::from_bytes(&bytes).expect("loads");
    let r = run(&back, "lunch bag", &opts());
    assert!(r.hits[0].words_matched == 2 && r.total > 10);
    let r = run(&back, "chrismas", &opts());
    assert!(r.total > 0 && r.hits[0].typos == 1);
}

/// A catalogue with many exact ties: 400 documents drawn from a few titles and
/// categories, so equal titles get equal scores and only the doc id orders them.
fn tied_shop() -> (Vec<String>, SearchIndex) {
    let mut rng = SplitMix64::new(21);
    let words = ["red", "lamp", "large", "mug", "blue", "lantern", "candle"];
    let cats = ["Kitchen", "Home", "Lighting"];
    let titles: Vec<String> = (0..400)
        .map(|_| {
            (0..2)
                .map(|_| words[rng.below(words.len() as u64) as usize])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let docs: Vec<Doc<'_>> = (titles.iter().enumerate())
        .map(|(i, t)| doc(t, cats[i % 3]))
        .collect();
    let ix = index(&docs);
    (titles, ix)
}

#[test]
fn top_k_is_the_prefix_of_the_full_ranking_and_ties_go_by_doc_id() {
    let (titles, ix) = tied_shop();
    let cats = |d: u32| ix.category(d).map(str::to_string);
    for q in [
        "l",
        "la",
        "red",
        "red la",
        "lmap",
        "blue mug",
        "candle lanter",
    ] {
        let full = run(&ix, q, &opts_k(1000));
        assert!(full.total > 20, "{q:?} matches many: {}", full.total);
        assert_eq!(full.hits.len() as u32, full.total, "{q:?}");
        for (i, a) in full.hits.iter().enumerate() {
            for b in &full.hits[i + 1..] {
                assert!(a.score >= b.score, "{q:?}: score order");
                let same =
                    titles[a.doc as usize] == titles[b.doc as usize] && cats(a.doc) == cats(b.doc);
                if same {
                    assert_eq!(
                        a.score.to_bits(),
                        b.score.to_bits(),
                        "{q:?}: equal docs tie"
                    );
                    assert!(
                        a.doc < b.doc,
                        "{q:?}: ties by doc id: {} before {}",
                        a.doc,
                        b.doc
                    );
                }
            }
        }
        for k in [1, 2, 5, 17, 50, full.hits.len() - 1] {
            let top = run(&ix, q, &opts_k(k));
            assert_eq!(top.total, full.total, "{q:?} k={k}");
            assert_eq!(top.facets, full.facets, "{q:?} k={k}");
            assert_eq!(top.hits, full.hits[..k], "{q:?} k={k}");
        }
    }
}

fn opts_k(k: usize) -> SearchOptions<'static> {
    SearchOptions { k, ..opts() }
}

#[test]
fn reused_scratch_gives_the_results_of_a_fresh_one() {
    let (_, big) = tied_shop();
    let small = tiny();
    // Alternate indexes of different sizes and queries on one thread (its scratch is
    // reused, resized and re-stamped); each result must equal the same search on a new
    // thread (a fresh scratch).
    let plan: [(&SearchIndex, &str); 7] = [
        (&big, "red la"),
        (&small, "mug"),
        (&big, "lamp"),
        (&big, "red la"),
        (&small, "red"),
        (&big, "blue mug"),
        (&big, "zzzz"),
    ];
    let o = opts_k(30);
    for (ix, q) in plan {
        let here = run(ix, q, &o);
        let fresh = std::thread::scope(|s| s.spawn(|| run(ix, q, &o)).join().expect("runs"));
        assert_eq!(here, fresh, "{q:?}");
    }
}

#[test]
fn a_search_inside_the_eligibility_callback_works() {
    let (_, ix) = tied_shop();
    let o = opts_k(40);
    let plain = search(&ix, "red la", &o, &|d| d.is_multiple_of(2));
    let nested = |d: u32| {
        let inner = run(&ix, "lamp", &opts_k(3));
        inner.total > 0 && d.is_multiple_of(2)
    };
    assert_eq!(search(&ix, "red la", &o, &nested), plain);
    assert!(plain.total > 0);
}
