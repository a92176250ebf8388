//! BM25 with a boosted title field (formula in the module doc of [`crate::search`]).

use super::index::{Posting, SearchIndex, TITLE_WEIGHT};

/// BM25 term-frequency saturation.
pub const K1: f64 = 1.2;
/// BM25 length normalisation.
pub const B: f64 = 0.75;

/// `idf(t) = ln(1 + (N − df + 0.5) / (df + 0.5))` (never negative).
pub fn idf(n_docs: usize, df: u32) -> f64 {
    let n = n_docs as f64;
    let df = f64::from(df);
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

/// The BM25 contribution of one term (with inverse document frequency `idf`) to the
/// document of posting `p`: `idf · tf·(k1 + 1) / (tf + k1·(1 − b + b·dl/avgdl))` with
/// `tf = TITLE_WEIGHT·tf_title + tf_other` and `dl` the weighted document length.
pub fn term_score(index: &SearchIndex, idf: f64, p: &Posting) -> f64 {
    let tf = TITLE_WEIGHT * f64::from(p.title_tf) + f64::from(p.other_tf);
    let dl = index.doc_len(p.doc);
    let norm = K1 * (1.0 - B + B * dl / index.avg_doc_len());
    idf * tf * (K1 + 1.0) / (tf + norm)
}
