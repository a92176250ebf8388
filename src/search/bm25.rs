//! BM25 with a boosted title field (formula in the module doc of [`crate::search`]).
//!
//! ```text
//! idf(t)     = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))
//! tf(t, d)   = TITLE_WEIGHT·tf_title(t, d) + OTHER_WEIGHT·tf_other(t, d)
//! bm25(t, d) = idf(t) · tf·(k1 + 1) / (tf + k1·(1 − b + b·len(d)/avglen))
//! ```
//!
//! with `len(d)` the index's weighted length `TITLE_WEIGHT·|title| + |other|`. A query
//! word matched as the prefix of a longer term (search-as-you-type) scores
//! `bm25 · completion_weight(word, term)`: `(|word| / |term|)³` in characters.
//!
//! The constants were chosen on the validation queries of `vitrine search-eval`
//! (`docs/search.md`, "Ranking", has the ablation): `b = 1` (full length
//! normalisation: a short title that is mostly the query word ranks above a long one),
//! `OTHER_WEIGHT = 0` (a category name still makes a document match and counts as a
//! matched word, but adds no BM25: on the default catalogue the category is one of the
//! title's words, so counting it again favours documents whose category repeats the
//! query word over better title matches), and the cubic completion weight (a short
//! completion such as `heart` → `hearts` ranks above a long one such as
//! `heart` → `heartfelt`).

use super::index::{Posting, SearchIndex, TITLE_WEIGHT};

/// BM25 term-frequency saturation.
pub const K1: f64 = 1.2;
/// BM25 length normalisation.
pub const B: f64 = 1.0;
/// Weight of an occurrence in the category name or extra text in `tf` (the title's is
/// [`TITLE_WEIGHT`]). Zero: such occurrences make a document match but add no score.
pub const OTHER_WEIGHT: f64 = 0.0;
/// Exponent of the completion weight `(|word| / |term|)^COMPLETION_POWER`.
pub const COMPLETION_POWER: i32 = 3;

/// `idf(t) = ln(1 + (N − df + 0.5) / (df + 0.5))` (never negative).
pub fn idf(n_docs: usize, df: u32) -> f64 {
    let n = n_docs as f64;
    let df = f64::from(df);
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

/// The BM25 contribution of one term (with inverse document frequency `idf`) to the
/// document of posting `p`: `idf · tf·(k1 + 1) / (tf + k1·(1 − b + b·dl/avgdl))` with
/// `tf = TITLE_WEIGHT·tf_title + OTHER_WEIGHT·tf_other` and `dl` the weighted document
/// length. Zero when `tf` is zero (a category-only match).
pub fn term_score(index: &SearchIndex, idf: f64, p: &Posting) -> f64 {
    let tf = TITLE_WEIGHT * f64::from(p.title_tf) + OTHER_WEIGHT * f64::from(p.other_tf);
    if tf <= 0.0 {
        return 0.0;
    }
    let dl = index.doc_len(p.doc);
    let norm = K1 * (1.0 - B + B * dl / index.avg_doc_len());
    idf * tf * (K1 + 1.0) / (tf + norm)
}

/// The factor applied to the BM25 of a term that a query word of `word_chars`
/// characters matched as a prefix (a completion): `(word_chars / term_chars)^3`, in
/// (0, 1]; 1 when `term_chars` is not longer than the word (not a completion).
pub fn completion_weight(word_chars: usize, term_chars: usize) -> f64 {
    if term_chars <= word_chars || term_chars == 0 {
        return 1.0;
    }
    (word_chars as f64 / term_chars as f64).powi(COMPLETION_POWER)
}
