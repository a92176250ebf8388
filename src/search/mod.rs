//! On-device product search: tokeniser, BM25 index, typo-tolerant search-as-you-type,
//! facets, suggestions and a personalised re-rank. Everything runs where it is called
//! (the browser, via wasm); the query never leaves the device. Spec of the stored
//! index and the ranking in `docs/search.md`.
//!
//! Entry points:
//! - [`SearchIndex::build`] over the catalogue ([`Doc`]: title, category, extra text;
//!   doc id = position = item index), [`SearchIndex::to_bytes`] /
//!   [`SearchIndex::from_bytes`] (versioned, SHA-256-checked, bounded; [`codec`]);
//! - [`search`]`(&index, query, &`[`SearchOptions`]`, eligible)` → [`SearchResults`];
//! - [`personalize`]`(hits, model_scores, weight)` to blend in the recommender's scores.
//!
//! # Tokens
//! [`tokenize`]: alphanumeric runs, lower-cased and accent-folded, with UTF-16 spans
//! (`title.slice(start, end)` in JavaScript). The same tokeniser reads titles, category
//! names, extra text and queries.
//!
//! # Index
//! A term dictionary `fst::Map` (term → term id, ids in byte order), and per term its
//! postings `(doc, tf_title, tf_other)` with doc ids ascending; `df(t)` is the postings'
//! length. `tf_other` counts the category name and the extra text. Titles and category
//! names are stored (for spans and facets); extra text is not.
//!
//! # Matching
//! The query is cut to [`MAX_QUERY_CHARS`] characters and its first [`MAX_QUERY_TERMS`]
//! distinct words are used. Each word expands to dictionary terms ([`typo::expand`]):
//! - the exact term; for the last word when `prefix_last` (and the query does not end
//!   with a separator), every term it begins (an `fst` prefix automaton);
//! - when `typos`: terms within `d` Damerau–Levenshtein edits (a transposition is one
//!   edit), `d = 0` below 4 characters, 1 for 4–7, 2 for 8 or more (0 past
//!   [`typo::MAX_FUZZY_CHARS`]): a `levenshtein_automata` DFA (a prefix DFA for the
//!   prefix word) run as an `fst::Automaton` over the dictionary;
//! - at most [`typo::MAX_EXPANSIONS`] terms per word (fewest edits, then highest df),
//!   from at most [`typo::MAX_SCAN`] automaton matches.
//!
//! A document matches when it contains an expansion of **any** word (OR semantics);
//! for each word it keeps its best expansion (fewest edits, then the word itself over a
//! longer term it prefixes, then highest score).
//!
//! # Ranking
//! Lexicographic, like hosted engines' ranking rules:
//! 1. more query words matched first (the bonus for matching all terms),
//! 2. then fewer total edits (exact and prefix matches above corrected ones),
//! 3. then fewer words matched only as the prefix of a longer term (completions),
//! 4. then higher score, summed over the matched words,
//! 5. then lower doc id.
//!
//! The score is BM25 ([`bm25`]: k1 = 1.2, b = 1, a boosted title `TITLE_WEIGHT` = 2,
//! category and extra text weight [`bm25::OTHER_WEIGHT`] = 0 in `tf`: they make a document
//! match but add no score), a completion's scaled by `(|word| / |term|)³`:
//!
//! ```text
//! idf(t)     = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))
//! tf(t, d)   = 2·tf_title(t, d) + 0·tf_other(t, d)
//! len(d)     = 2·|title(d)| + |category(d)| + |extra(d)|        (in tokens)
//! bm25(t, d) = idf(t) · tf·(k1 + 1) / (tf + k1·(1 − b + b·len(d)/avglen))  (0 if tf = 0)
//! score      = bm25(t, d) · (|w| / |t|)³ for a word w completed to a longer t, else bm25
//! ```
//!
//! The keys fold into one number, `raw = tier + score/(1 + score)` with
//! `tier = (words·17 + (16 − typos))·9 + (8 − completions)` (17 and 9 are
//! 2·[`MAX_QUERY_TERMS`] + 1 and [`MAX_QUERY_TERMS`] + 1), and the hit's
//! `text_score = raw / raw_best` ∈ (0, 1]: monotone in the ranking, 1 for the best hit. The constants were chosen on the
//! validation queries of `vitrine search-eval` (`docs/search.md`, "Ranking").
//!
//! # Facets, suggestions, personalisation
//! [`facets`]: counts per category and per price band over every matching eligible
//! document. With no match, [`SearchResults::suggestions`] holds dictionary terms close
//! to each unknown word (one edit for 2–4 characters, two from 5; fewest edits, then
//! highest df; [`MAX_SUGGESTIONS_PER_WORD`] per word). [`personalize`] blends the text
//! score with the model's min–max-normalised score.
//!
//! # Caps (untrusted queries)
//! [`MAX_QUERY_CHARS`] = 256 characters, [`MAX_QUERY_TERMS`] = 8 words,
//! [`tokenize::MAX_TOKEN_CHARS`] = 32 characters per word, [`typo::MAX_EXPANSIONS`] = 50
//! terms per word, [`typo::MAX_SCAN`] = 4,096 automaton matches read per word, typo
//! automata only up to [`typo::MAX_FUZZY_CHARS`] = 32 characters. An empty,
//! whitespace-only, emoji-only or overlong query gives empty results or results, never
//! an error or a panic.

pub mod bm25;
pub mod codec;
pub mod facets;
mod index;
mod postings;
mod query;
mod rank;
pub mod tokenize;
pub mod typo;

pub use facets::{CategoryCount, Facets, PriceBand, PriceFacet};
pub use index::{
    Doc, Posting, SearchIndex, MAX_CATEGORIES, MAX_CATEGORY_BYTES, MAX_DOCS, MAX_FIELD_TOKENS,
    MAX_TERMS, MAX_TERM_BYTES, MAX_TITLE_BYTES, TITLE_WEIGHT,
};
pub use postings::Postings;
pub use query::{
    search, Hit, SearchOptions, SearchResults, Span, Suggestion, TermMatch, MAX_QUERY_CHARS,
    MAX_QUERY_TERMS, MAX_SUGGESTIONS_PER_WORD,
};
pub use rank::{personalize, personalize_hits};
pub use tokenize::{tokenize, Token};

/// Why an index could not be built or loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchIndexError {
    /// The bytes end before the named part is complete.
    #[error("search index truncated: {what} incomplete")]
    Truncated {
        /// The part being read.
        what: &'static str,
    },
    /// The bytes do not start with the search-index magic `VSRX`.
    #[error("not a search index (bad magic)")]
    BadMagic,
    /// The format version is not one this build reads.
    #[error("unsupported search index version {found}")]
    UnsupportedVersion {
        /// The version in the header.
        found: u16,
    },
    /// The reserved header field is not 0 (a writer this build does not know).
    #[error("search index reserved header field is {found}, not 0")]
    Reserved {
        /// The value found.
        found: u16,
    },
    /// The SHA-256 of the payload does not match the header: corrupt or tampered.
    #[error("search index hash mismatch (corrupt or tampered)")]
    HashMismatch,
    /// A count or length exceeds its cap.
    #[error("search index has too many {what}: {value} > {max}")]
    TooLarge {
        /// What was counted.
        what: &'static str,
        /// The value found.
        value: u64,
        /// The cap.
        max: u64,
    },
    /// Bytes remain after the payload.
    #[error("search index has {extra} trailing bytes")]
    TrailingBytes {
        /// How many.
        extra: u64,
    },
    /// A varint is longer than 5 bytes or overflows 32 bits.
    #[error("search index has a malformed varint")]
    BadVarint,
    /// A string is not UTF-8.
    #[error("search index {what} is not UTF-8")]
    InvalidUtf8 {
        /// Which string.
        what: &'static str,
    },
    /// Terms are not strictly increasing in byte order (unsorted or duplicated).
    #[error("search index term {term} is out of order")]
    UnsortedTerms {
        /// Term id.
        term: u32,
    },
    /// A term is empty, too long, or front-coded past the previous term.
    #[error("search index term {term} is malformed")]
    BadTerm {
        /// Term id.
        term: u32,
    },
    /// A term's postings are empty, unordered, out of range or have no occurrence.
    #[error("search index postings of term {term} are malformed")]
    BadPostings {
        /// Term id.
        term: u32,
    },
    /// A document's category id is not a stored category.
    #[error("search index document {doc} has an unknown category")]
    BadCategory {
        /// Doc id.
        doc: u32,
    },
    /// The term dictionary could not be built.
    #[error("search index dictionary could not be built")]
    Dictionary,
}
