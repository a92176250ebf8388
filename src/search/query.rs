//! `search()`: query parsing, candidate matching, ranking, highlight spans and
//! suggestions (ranking rules in the module doc of [`crate::search`]).

use std::cell::RefCell;
use std::cmp::Ordering;

use super::bm25::{completion_weight, idf, term_score};
use super::facets::{Counter, Facets, PriceFacet};
use super::index::{SearchIndex, MAX_FIELD_TOKENS};
use super::tokenize::tokenize_capped;
use super::typo::{expand, fuzzy_terms, rank_terms, Expansion, MAX_FUZZY_CHARS};

/// Characters of a query read; the rest is ignored.
pub const MAX_QUERY_CHARS: usize = 256;
/// Distinct query words used; the rest are ignored.
pub const MAX_QUERY_TERMS: usize = 8;
/// Suggestions per unknown query word.
pub const MAX_SUGGESTIONS_PER_WORD: usize = 3;

/// Options of one search.
#[derive(Clone, Copy, Debug)]
pub struct SearchOptions<'a> {
    /// Hits returned (the facets and `total` cover every match).
    pub k: usize,
    /// Match the last query word as a prefix (search-as-you-type), unless the query
    /// ends with a separator (the word is then complete).
    pub prefix_last: bool,
    /// Allow typos (one edit for words of 4–7 characters, two from 8).
    pub typos: bool,
    /// Prices and band edges for the price facet (`None`: no price facet).
    pub price: Option<PriceFacet<'a>>,
}

impl Default for SearchOptions<'_> {
    fn default() -> Self {
        SearchOptions {
            k: 20,
            prefix_last: true,
            typos: true,
            price: None,
        }
    }
}

/// A query word a hit matched, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TermMatch {
    /// The query word (folded).
    pub word: String,
    /// The dictionary term it matched.
    pub term: String,
    /// Edit distance between them (0: exact or prefix).
    pub distance: u8,
    /// Matched as a prefix of a longer term (search-as-you-type).
    pub prefix: bool,
    /// The term occurs in the title (and so has highlight spans).
    pub in_title: bool,
}

/// A token of the title to highlight: `title.slice(start, end)` in JavaScript.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// First UTF-16 code unit.
    pub start: u32,
    /// One past the last UTF-16 code unit.
    pub end: u32,
}

/// One search result.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// Document id (item index).
    pub doc: u32,
    /// Sum over matched query words of the BM25 score of the term each matched (a
    /// completion's scaled by its completion weight, [`super::bm25::completion_weight`]).
    pub bm25: f32,
    /// Text score in [0, 1], monotone in the text ranking (1 for the best match).
    pub text_score: f32,
    /// Final score: `text_score`, or the blend set by [`personalize`](super::personalize).
    pub score: f32,
    /// Query words matched.
    pub words_matched: u32,
    /// Total edit distance over the matched words.
    pub typos: u32,
    /// How each matched query word matched.
    pub matches: Vec<TermMatch>,
    /// Title tokens that matched, in title order.
    pub spans: Vec<Span>,
}

/// A corrected spelling for a query word that is not in the dictionary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suggestion {
    /// The query word (folded).
    pub word: String,
    /// A dictionary term close to it.
    pub term: String,
    /// Edit distance between them.
    pub distance: u8,
    /// Documents containing the term.
    pub df: u32,
}

/// What [`search`] returns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchResults {
    /// The query words used (folded, deduplicated, capped).
    pub words: Vec<String>,
    /// The best `k` hits.
    pub hits: Vec<Hit>,
    /// Matching eligible documents (hits before the cut at `k`).
    pub total: u32,
    /// Facets over every matching eligible document.
    pub facets: Facets,
    /// When nothing matched: corrected spellings, closest first, then most frequent.
    pub suggestions: Vec<Suggestion>,
    /// When nothing matched and a word has a suggestion: the query with each such word
    /// replaced by its best suggestion.
    pub did_you_mean: Option<String>,
}

/// One parsed query word.
struct Word {
    text: String,
    prefix: bool,
}

/// The best way one document matched one query word.
#[derive(Clone, Copy)]
struct Best {
    term: u32,
    score: f64,
    distance: u8,
    prefix: bool,
    in_title: bool,
}

/// A matching document with its ranking key; its per-word matches are row `row` of
/// [`SearchScratch::best`].
#[derive(Clone, Copy)]
struct DocMatch {
    doc: u32,
    row: u32,
    words: u32,
    typos: u32,
    bm25: f64,
    raw: f64,
}

/// Reusable buffers of [`search_with`], dense by doc id, so that matching costs no
/// hashing and no allocation per matching document: after the first search over an
/// index (which allocates `slot`: 8 bytes per document of the index), the buffers grow
/// only past the largest match set seen (at most `n_docs` rows of one best match per
/// query word, `n_docs · MAX_QUERY_TERMS` entries).
///
/// A document `d` has a row in the current search iff `slot[d].0 == gen`; `gen` is
/// bumped at each search instead of clearing `slot` (cleared only when `gen` wraps or
/// the index's size changes).
#[derive(Default)]
pub(crate) struct SearchScratch {
    /// Current generation (never 0 during a search, so a fresh `slot` matches nothing).
    gen: u32,
    /// Per doc id: (generation of its row, row index).
    slot: Vec<(u32, u32)>,
    /// Doc of each row, in first-match order.
    touched: Vec<u32>,
    /// Best match per (row, query word): `best[row · n_words + w]`.
    best: Vec<Option<Best>>,
    /// The eligible matches with their ranking keys.
    matches: Vec<DocMatch>,
}

impl SearchScratch {
    /// Starts a search over an index of `n_docs` documents.
    fn reset(&mut self, n_docs: usize) {
        if self.slot.len() != n_docs {
            self.slot.clear();
            self.slot.resize(n_docs, (0, 0));
            self.gen = 0;
        }
        self.gen = self.gen.wrapping_add(1);
        if self.gen == 0 {
            self.slot.fill((0, 0));
            self.gen = 1;
        }
        self.touched.clear();
        self.best.clear();
        self.matches.clear();
    }

    /// The row of `doc`, opened (with no match for any of the `n_words` words) on first
    /// use; `None` for a doc id outside the index.
    fn row(&mut self, doc: u32, n_words: usize) -> Option<usize> {
        let slot = self.slot.get_mut(doc as usize)?;
        if slot.0 == self.gen {
            return Some(slot.1 as usize);
        }
        let row = self.touched.len();
        *slot = (self.gen, row as u32);
        self.touched.push(doc);
        self.best.resize(self.best.len() + n_words, None);
        Some(row)
    }
}

thread_local! {
    /// The scratch [`search`] reuses on this thread.
    static SCRATCH: RefCell<SearchScratch> = RefCell::new(SearchScratch::default());
}

/// The total order of matches: higher `raw` first, then lower doc id (doc ids are
/// unique, so no two matches tie).
fn rank_order(a: &DocMatch, b: &DocMatch) -> Ordering {
    b.raw.total_cmp(&a.raw).then(a.doc.cmp(&b.doc))
}

/// Searches `index` for `query` among the documents `eligible` accepts (see the module
/// doc of [`crate::search`] for the rules). Never fails: an empty or unusable query
/// gives empty results. Reuses a per-thread `SearchScratch` (a fresh one if this
/// thread's is in use, e.g. when `eligible` searches).
pub fn search(
    index: &SearchIndex,
    query: &str,
    opts: &SearchOptions<'_>,
    eligible: &dyn Fn(u32) -> bool,
) -> SearchResults {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => search_with(index, query, opts, eligible, &mut scratch),
        Err(_) => search_with(index, query, opts, eligible, &mut SearchScratch::default()),
    })
}

/// [`search`] with the caller's scratch buffers.
///
/// Only the best `k` matches are ordered: a partial selection
/// (`select_nth_unstable_by`, `O(n)`) puts them first, then they alone are sorted
/// (`O(k log k)`). The order is total (score, then doc id), so this gives exactly the
/// first `k` of a full sort.
pub(crate) fn search_with(
    index: &SearchIndex,
    query: &str,
    opts: &SearchOptions<'_>,
    eligible: &dyn Fn(u32) -> bool,
    scratch: &mut SearchScratch,
) -> SearchResults {
    let words = parse_query(query, opts.prefix_last);
    let mut res = SearchResults {
        words: words.iter().map(|w| w.text.clone()).collect(),
        ..SearchResults::default()
    };
    if words.is_empty() || index.n_docs() == 0 {
        return res;
    }
    let expansions: Vec<Vec<Expansion>> = words
        .iter()
        .map(|w| expand(index, &w.text, w.prefix, opts.typos))
        .collect();
    let mut counter = Counter::new(index, opts.price.as_ref());
    collect(index, &words, &expansions, eligible, scratch, &mut counter);
    res.facets = counter.finish();
    let matches = &mut scratch.matches;
    res.total = matches.len() as u32;
    if matches.is_empty() {
        (res.suggestions, res.did_you_mean) = suggest(index, &words);
        return res;
    }
    let k = opts.k.min(matches.len());
    if k == 0 {
        return res;
    }
    if k < matches.len() {
        matches.select_nth_unstable_by(k - 1, rank_order);
    }
    matches[..k].sort_unstable_by(rank_order);
    let top = matches[0].raw;
    let n_words = words.len();
    res.hits = matches[..k]
        .iter()
        .map(|m| {
            let row = m.row as usize * n_words;
            to_hit(index, &words, m, &scratch.best[row..row + n_words], top)
        })
        .collect();
    res
}

/// Cuts the query to [`MAX_QUERY_CHARS`], tokenises it, keeps the first
/// [`MAX_QUERY_TERMS`] distinct words; the last is a prefix when `prefix_last` and the
/// query does not end with a separator.
fn parse_query(query: &str, prefix_last: bool) -> Vec<Word> {
    let q = match query.char_indices().nth(MAX_QUERY_CHARS) {
        Some((i, _)) => &query[..i],
        None => query,
    };
    let len16 = q.encode_utf16().count() as u32;
    let mut words: Vec<Word> = Vec::new();
    let tokens = tokenize_capped(q, MAX_QUERY_CHARS);
    let n = tokens.len();
    for (i, t) in tokens.into_iter().enumerate() {
        let prefix = prefix_last && i + 1 == n && t.end == len16;
        if let Some(w) = words.iter_mut().find(|w| w.text == t.text) {
            w.prefix |= prefix;
        } else if words.len() < MAX_QUERY_TERMS {
            words.push(Word {
                text: t.text,
                prefix,
            });
        }
    }
    words
}

/// Scores every posting of every expansion (a completion's BM25 scaled by
/// [`completion_weight`]) and keeps, per document and query word, the best match (fewest
/// edits, then the word itself over a longer term it prefixes, then highest score, then
/// lowest term id); then fills `scratch.matches` with the eligible documents and their
/// ranking keys and counts them in `facets`.
fn collect(
    index: &SearchIndex,
    words: &[Word],
    expansions: &[Vec<Expansion>],
    eligible: &dyn Fn(u32) -> bool,
    scratch: &mut SearchScratch,
    facets: &mut Counter<'_, '_>,
) {
    let n_words = expansions.len();
    scratch.reset(index.n_docs());
    for (w, exps) in expansions.iter().enumerate() {
        let word_chars = words.get(w).map_or(0, |x| x.text.chars().count());
        for e in exps {
            let idf = idf(index.n_docs(), index.df(e.term));
            let weight = match index.term(e.term) {
                Some(t) if e.prefix => completion_weight(word_chars, t.chars().count()),
                _ => 1.0,
            };
            for p in index.postings(e.term) {
                let Some(row) = scratch.row(p.doc, n_words) else {
                    continue;
                };
                let cand = Best {
                    term: e.term,
                    score: weight * term_score(index, idf, &p),
                    distance: e.distance,
                    prefix: e.prefix,
                    in_title: p.title_tf > 0,
                };
                let slot = &mut scratch.best[row * n_words + w];
                if slot.is_none_or(|b| better(&cand, &b)) {
                    *slot = Some(cand);
                }
            }
        }
    }
    let rows = scratch
        .touched
        .iter()
        .zip(scratch.best.chunks_exact(n_words));
    for (row, (&doc, best)) in rows.enumerate() {
        if !eligible(doc) {
            continue;
        }
        facets.add(doc);
        let words = best.iter().flatten().count() as u32;
        let typos: u32 = best.iter().flatten().map(|b| u32::from(b.distance)).sum();
        let completions = best.iter().flatten().filter(|b| b.prefix).count() as u32;
        let bm25: f64 = best.iter().flatten().map(|b| b.score).sum();
        scratch.matches.push(DocMatch {
            doc,
            row: row as u32,
            words,
            typos,
            bm25,
            raw: raw_score(words, typos, completions, bm25),
        });
    }
}

/// Whether `a` is a better match of a query word than `b`.
fn better(a: &Best, b: &Best) -> bool {
    a.distance
        .cmp(&b.distance)
        .then(a.prefix.cmp(&b.prefix))
        .then(b.score.total_cmp(&a.score))
        .then(a.term.cmp(&b.term))
        == Ordering::Less
}

/// The ranking key as one number: `tier + bm25 / (1 + bm25)` with
/// `tier = (words·(2·MAX_QUERY_TERMS + 1) + (2·MAX_QUERY_TERMS − typos))·(MAX_QUERY_TERMS
/// + 1) + (MAX_QUERY_TERMS − completions)`, so ordering by it is ordering by words
/// matched (more first), then typos (fewer first), then words matched only as the prefix
/// of a longer term (fewer first: `heart` above `hearts` for the query `heart`), then BM25.
pub(crate) fn raw_score(words: u32, typos: u32, completions: u32, bm25: f64) -> f64 {
    let span = 2 * MAX_QUERY_TERMS as u32;
    let terms = MAX_QUERY_TERMS as u32;
    let tier = (words * (span + 1) + span.saturating_sub(typos)) * (terms + 1)
        + terms.saturating_sub(completions);
    f64::from(tier) + bm25 / (1.0 + bm25)
}

/// Builds the hit of one match: term matches, normalised score and title spans.
fn to_hit(
    index: &SearchIndex,
    words: &[Word],
    m: &DocMatch,
    best: &[Option<Best>],
    top: f64,
) -> Hit {
    let mut matches = Vec::new();
    for (w, b) in words.iter().zip(best) {
        if let Some(b) = b {
            let term = index.term(b.term).unwrap_or_default().to_string();
            matches.push(TermMatch {
                word: w.text.clone(),
                term,
                distance: b.distance,
                prefix: b.prefix,
                in_title: b.in_title,
            });
        }
    }
    let title = index.title(m.doc).unwrap_or_default();
    let spans = tokenize_capped(title, MAX_FIELD_TOKENS)
        .into_iter()
        .filter(|t| matches.iter().any(|x| x.in_title && x.term == t.text))
        .map(|t| Span {
            start: t.start,
            end: t.end,
        })
        .collect();
    let text_score = if top > 0.0 { (m.raw / top) as f32 } else { 0.0 };
    Hit {
        doc: m.doc,
        bm25: m.bm25 as f32,
        text_score,
        score: text_score,
        words_matched: m.words,
        typos: m.typos,
        matches,
        spans,
    }
}

/// Corrected spellings for the words not in the dictionary: terms within one edit
/// (words of 2–4 characters) or two (5 or more), closest first, then most frequent.
fn suggest(index: &SearchIndex, words: &[Word]) -> (Vec<Suggestion>, Option<String>) {
    let mut out = Vec::new();
    let mut corrected = Vec::with_capacity(words.len());
    let mut changed = false;
    for w in words {
        let chars = w.text.chars().count();
        if index.term_id(&w.text).is_some() || !(2..=MAX_FUZZY_CHARS).contains(&chars) {
            corrected.push(w.text.clone());
            continue;
        }
        let d = if chars <= 4 { 1 } else { 2 };
        let mut cands: Vec<(u32, u8)> = fuzzy_terms(index, &w.text, d, false)
            .into_iter()
            .filter(|c| c.1 > 0)
            .collect();
        rank_terms(index, &mut cands, |c| (c.1, c.0));
        cands.truncate(MAX_SUGGESTIONS_PER_WORD);
        match cands.first() {
            Some(&(t, _)) => {
                corrected.push(index.term(t).unwrap_or_default().to_string());
                changed = true;
            }
            None => corrected.push(w.text.clone()),
        }
        for (t, distance) in cands {
            let term = index.term(t).unwrap_or_default().to_string();
            out.push(Suggestion {
                word: w.text.clone(),
                term,
                distance,
                df: index.df(t),
            });
        }
    }
    (out, changed.then(|| corrected.join(" ")))
}
