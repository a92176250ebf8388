//! Query-word expansion against the term dictionary: exact, prefix (search-as-you-type)
//! and typo-tolerant matches (Levenshtein automata with Damerau transpositions run
//! against the `fst`).

use std::collections::HashSet;
use std::sync::OnceLock;

use fst::automaton::{Automaton, Str};
use fst::{IntoStreamer, Streamer};
use levenshtein_automata::{Distance, LevenshteinAutomatonBuilder, DFA, SINK_STATE};

use super::index::SearchIndex;

/// Dictionary matches read from one automaton stream before ranking them.
pub const MAX_SCAN: usize = 4096;
/// Dictionary terms one query word expands to (closest first, then most frequent).
pub const MAX_EXPANSIONS: usize = 50;
/// Longest query word (in characters) given typo tolerance: bounds the automaton
/// (≤ 68 states per character at distance 2, 1 KiB each).
pub const MAX_FUZZY_CHARS: usize = 32;

/// Typos allowed for a word of `chars` characters: none below 4, one for 4–7, two for
/// 8 or more (none past [`MAX_FUZZY_CHARS`]).
pub fn allowed_typos(chars: usize) -> u8 {
    match chars {
        0..=3 => 0,
        4..=7 => 1,
        8..=MAX_FUZZY_CHARS => 2,
        _ => 0,
    }
}

/// One dictionary term a query word matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expansion {
    /// Term id.
    pub term: u32,
    /// Edit distance (Damerau–Levenshtein; for a prefix match, to the closest prefix).
    pub distance: u8,
    /// The word was matched as a prefix (search-as-you-type) and the term is longer
    /// than the word.
    pub prefix: bool,
}

/// The shared automaton builders (building one takes a few milliseconds).
fn builder(d: u8) -> &'static LevenshteinAutomatonBuilder {
    static ONE: OnceLock<LevenshteinAutomatonBuilder> = OnceLock::new();
    static TWO: OnceLock<LevenshteinAutomatonBuilder> = OnceLock::new();
    if d <= 1 {
        ONE.get_or_init(|| LevenshteinAutomatonBuilder::new(1, true))
    } else {
        TWO.get_or_init(|| LevenshteinAutomatonBuilder::new(2, true))
    }
}

/// A Levenshtein DFA as an `fst` automaton (as tantivy wraps it); the state is the DFA
/// state, whose distance says how far the term read so far is from the query.
struct Lev<'a>(&'a DFA);

impl Automaton for Lev<'_> {
    type State = u32;

    fn start(&self) -> u32 {
        self.0.initial_state()
    }

    fn is_match(&self, state: &u32) -> bool {
        matches!(self.0.distance(*state), Distance::Exact(_))
    }

    fn can_match(&self, state: &u32) -> bool {
        *state != SINK_STATE
    }

    fn accept(&self, state: &u32, byte: u8) -> u32 {
        self.0.transition(*state, byte)
    }
}

/// Terms within `d` edits of `word` (of a prefix of the term when `prefix`), at most
/// [`MAX_SCAN`], with their distances.
pub fn fuzzy_terms(index: &SearchIndex, word: &str, d: u8, prefix: bool) -> Vec<(u32, u8)> {
    let b = builder(d);
    let dfa = if prefix {
        b.build_prefix_dfa(word)
    } else {
        b.build_dfa(word)
    };
    let mut out = Vec::new();
    let mut stream = index.dict.search_with_state(Lev(&dfa)).into_stream();
    while let Some((_, id, state)) = stream.next() {
        if let Distance::Exact(dist) = dfa.distance(state) {
            out.push((id as u32, dist.min(d)));
        }
        if out.len() >= MAX_SCAN {
            break;
        }
    }
    out
}

/// Expands one folded query word: the exact term (or, when `prefix`, every term it
/// begins), then terms within the allowed typos; keeps the [`MAX_EXPANSIONS`] closest
/// (distance, then document frequency descending, then term id).
pub fn expand(index: &SearchIndex, word: &str, prefix: bool, typos: bool) -> Vec<Expansion> {
    let mut out: Vec<Expansion> = Vec::new();
    if prefix {
        let mut stream = index
            .dict
            .search(Str::new(word).starts_with())
            .into_stream();
        while let Some((key, id)) = stream.next() {
            out.push(Expansion {
                term: id as u32,
                distance: 0,
                prefix: key != word.as_bytes(),
            });
            if out.len() >= MAX_SCAN {
                break;
            }
        }
    } else if let Some(id) = index.term_id(word) {
        out.push(Expansion {
            term: id,
            distance: 0,
            prefix: false,
        });
    }
    let chars = word.chars().count();
    let d = if typos { allowed_typos(chars) } else { 0 };
    if d > 0 {
        let seen: HashSet<u32> = out.iter().map(|e| e.term).collect();
        for (term, dist) in fuzzy_terms(index, word, d, prefix) {
            if dist > 0 && !seen.contains(&term) {
                let longer = index.term(term).is_some_and(|t| t.chars().count() > chars);
                out.push(Expansion {
                    term,
                    distance: dist,
                    prefix: prefix && longer,
                });
            }
        }
    }
    rank_terms(index, &mut out, |e| (e.distance, e.term));
    out.truncate(MAX_EXPANSIONS);
    out
}

/// Sorts by distance, then document frequency descending, then term id.
pub fn rank_terms<T>(index: &SearchIndex, v: &mut [T], key: impl Fn(&T) -> (u8, u32)) {
    crate::sort::sort_by(v, |a, b| {
        let (da, ta) = key(a);
        let (db, tb) = key(b);
        da.cmp(&db)
            .then(index.df(tb).cmp(&index.df(ta)))
            .then(ta.cmp(&tb))
    });
}
