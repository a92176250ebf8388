//! The in-memory search index: term dictionary (`fst::Map`), postings, document
//! lengths and frequencies, titles and categories. Built from the catalogue with
//! [`SearchIndex::build`] or loaded with [`SearchIndex::from_bytes`](super::codec).

use std::collections::BTreeMap;

use fst::{Map, MapBuilder};

use super::postings::{PostingLists, Postings};
use super::tokenize::{tokenize_capped, MAX_TOKEN_CHARS};
use super::SearchIndexError;
use crate::strs::StrList;

/// Documents an index may hold (doc ids are `u32`, kept well below `u32::MAX`).
pub const MAX_DOCS: usize = 1 << 24;
/// Distinct terms an index may hold.
pub const MAX_TERMS: usize = 1 << 24;
/// Distinct category names an index may hold.
pub const MAX_CATEGORIES: usize = 1 << 16;
/// Bytes of a stored title; longer titles are cut at a character boundary by `build`.
pub const MAX_TITLE_BYTES: usize = 512;
/// Bytes of a category name; longer names are cut at a character boundary by `build`.
pub const MAX_CATEGORY_BYTES: usize = 256;
/// Bytes of a dictionary term (at most [`MAX_TOKEN_CHARS`] characters of ≤ 4 bytes).
pub const MAX_TERM_BYTES: usize = 4 * MAX_TOKEN_CHARS;
/// Tokens indexed per field (title, category, extra text); the rest are ignored.
pub const MAX_FIELD_TOKENS: usize = 256;

/// Weight of a title occurrence relative to a category or extra-text occurrence, in
/// the weighted term frequency and the weighted document length (module doc).
pub const TITLE_WEIGHT: f64 = 2.0;

/// One catalogue entry to index. Its position in the slice given to
/// [`SearchIndex::build`] is its doc id (the item index of the weight file).
#[derive(Clone, Copy, Debug, Default)]
pub struct Doc<'a> {
    /// The product title: indexed (boosted), stored, and used for highlight spans.
    pub title: &'a str,
    /// The category name: indexed as "other" text and counted in category facets.
    pub category: Option<&'a str>,
    /// Extra searchable text (description, tags): indexed as "other" text, not stored.
    pub extra: Option<&'a str>,
}

/// One posting: a document containing a term, with the term's count per field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Posting {
    /// Document id.
    pub doc: u32,
    /// Occurrences in the title.
    pub title_tf: u16,
    /// Occurrences in the category name and extra text.
    pub other_tf: u16,
}

/// The search index (see the module doc of [`crate::search`]).
#[derive(Clone, Debug)]
pub struct SearchIndex {
    /// Term → term id; term ids are the terms' ranks in byte order.
    pub(crate) dict: Map<Vec<u8>>,
    /// Term text by term id (a [`StrList`]).
    pub(crate) terms: StrList,
    /// Every term's postings, compressed ([`PostingLists`]), doc ids ascending.
    pub(crate) lists: PostingLists,
    /// Stored titles by doc id (a [`StrList`]).
    pub(crate) titles: StrList,
    /// Category id by doc id (`u32::MAX`: none).
    pub(crate) doc_cat: Vec<u32>,
    /// Category names by category id.
    pub(crate) categories: Vec<Box<str>>,
    /// Weighted document length `TITLE_WEIGHT·|title| + |other|` by doc id. An integer
    /// (title weight 2, integer counts), at most 1,024 in an index `build` made (256
    /// tokens per field), so stored exactly as a `u16` (saturating at 65,535 for a
    /// crafted file).
    pub(crate) doc_len: Vec<u16>,
    /// Mean weighted document length (1 when the index has no tokens).
    pub(crate) avg_len: f64,
    /// Whether `titles` is another holder's buffer
    /// ([`SearchIndex::from_bytes_sharing_titles`]), not counted by
    /// [`SearchIndex::heap_bytes`].
    pub(crate) titles_shared: bool,
}

/// The raw parts of an index, as stored; [`SearchIndex::from_parts`] validates them.
pub(crate) struct Parts {
    pub titles: StrList,
    /// Whether `titles` is another holder's buffer (see [`SearchIndex::titles_shared`]).
    pub titles_shared: bool,
    pub doc_cat: Vec<u32>,
    pub categories: Vec<Box<str>>,
    /// Terms in strictly increasing byte order.
    pub terms: StrList,
    /// Every term's postings, in term order (one list per term, checked by
    /// `from_parts`).
    pub lists: PostingLists,
}

impl SearchIndex {
    /// Heap bytes the index holds (allocated capacity of its tables and strings, not
    /// counting the allocator's own headers, nor titles shared with the catalogue): for
    /// the load's memory breakdown.
    pub fn heap_bytes(&self) -> usize {
        let strs =
            |v: &[Box<str>]| std::mem::size_of_val(v) + v.iter().map(|s| s.len()).sum::<usize>();
        self.dict.as_fst().as_bytes().len()
            + self.terms.heap_bytes()
            + self.lists.heap_bytes()
            + if self.titles_shared {
                0
            } else {
                self.titles.heap_bytes()
            }
            + self.doc_cat.capacity() * 4
            + strs(&self.categories)
            + self.doc_len.capacity() * 2
    }

    /// Builds the index over `docs` (doc id = position). Titles and category names
    /// longer than their caps are cut at a character boundary; each field indexes at
    /// most [`MAX_FIELD_TOKENS`] tokens.
    pub fn build(docs: &[Doc<'_>]) -> Result<SearchIndex, SearchIndexError> {
        if docs.len() > MAX_DOCS {
            return Err(SearchIndexError::TooLarge {
                what: "documents",
                value: docs.len() as u64,
                max: MAX_DOCS as u64,
            });
        }
        let mut cat_ids: BTreeMap<&str, u32> = BTreeMap::new();
        let mut categories = Vec::new();
        let mut doc_cat = Vec::with_capacity(docs.len());
        let mut titles = StrList::with_capacity(docs.len(), 0);
        let mut inverted: BTreeMap<String, Vec<Posting>> = BTreeMap::new();
        for (id, doc) in docs.iter().enumerate() {
            let title = cut(doc.title, MAX_TITLE_BYTES);
            let cat = doc
                .category
                .map(|c| cut(c, MAX_CATEGORY_BYTES))
                .filter(|c| !c.is_empty());
            let cat_id = match cat {
                None => u32::MAX,
                Some(c) => match cat_ids.get(c) {
                    Some(&i) => i,
                    None if categories.len() >= MAX_CATEGORIES => {
                        return Err(SearchIndexError::TooLarge {
                            what: "categories",
                            value: categories.len() as u64 + 1,
                            max: MAX_CATEGORIES as u64,
                        });
                    }
                    None => {
                        let i = categories.len() as u32;
                        cat_ids.insert(c, i);
                        categories.push(Box::<str>::from(c));
                        i
                    }
                },
            };
            doc_cat.push(cat_id);
            titles.push(title).map_err(|_| SearchIndexError::TooLarge {
                what: "title bytes",
                value: titles.text_len() as u64 + title.len() as u64,
                max: u64::from(u32::MAX),
            })?;
            for (term, (title_tf, other_tf)) in doc_terms(title, [cat, doc.extra]) {
                inverted.entry(term).or_default().push(Posting {
                    doc: id as u32,
                    title_tf,
                    other_tf,
                });
            }
        }
        titles.shrink_to_fit();
        let mut terms = StrList::with_capacity(inverted.len(), 0);
        let mut lists = PostingLists::with_capacity(inverted.len(), 0);
        for (term, list) in inverted {
            // Terms are at most MAX_TERM_BYTES each and documents at most MAX_DOCS,
            // but a title's tokens can still sum past u32: report it, never wrap.
            terms.push(&term).map_err(|_| SearchIndexError::TooLarge {
                what: "term bytes",
                value: terms.text_len() as u64 + term.len() as u64,
                max: u64::from(u32::MAX),
            })?;
            lists.push(list)?;
        }
        terms.shrink_to_fit();
        lists.shrink_to_fit();
        SearchIndex::from_parts(Parts {
            titles,
            titles_shared: false,
            doc_cat,
            categories,
            terms,
            lists,
        })
    }

    /// Validates `parts` and derives the dictionary, lengths and offsets. Every check a
    /// loaded file needs is here, so a built and a loaded index obey the same rules.
    pub(crate) fn from_parts(p: Parts) -> Result<SearchIndex, SearchIndexError> {
        let n_docs = p.titles.len();
        if n_docs > MAX_DOCS || p.doc_cat.len() != n_docs {
            return Err(SearchIndexError::TooLarge {
                what: "documents",
                value: n_docs as u64,
                max: MAX_DOCS as u64,
            });
        }
        if p.terms.len() > MAX_TERMS {
            return Err(SearchIndexError::TooLarge {
                what: "terms",
                value: p.terms.len() as u64,
                max: MAX_TERMS as u64,
            });
        }
        if let Some(doc) = p
            .doc_cat
            .iter()
            .position(|&c| c != u32::MAX && c as usize >= p.categories.len())
        {
            return Err(SearchIndexError::BadCategory { doc: doc as u32 });
        }
        let n_terms = p.terms.len();
        if p.lists.len() != n_terms {
            return Err(SearchIndexError::BadPostings {
                term: n_terms.saturating_sub(1) as u32,
            });
        }
        let mut builder = MapBuilder::memory();
        for (id, term) in p.terms.iter().enumerate() {
            check_postings(id as u32, term, p.lists.get(id as u32), n_docs)?;
            builder
                .insert(term.as_bytes(), id as u64)
                .map_err(|_| SearchIndexError::UnsortedTerms { term: id as u32 })?;
        }
        let dict = Map::new(
            builder
                .into_inner()
                .map_err(|_| SearchIndexError::Dictionary)?,
        )
        .map_err(|_| SearchIndexError::Dictionary)?;
        let (doc_len, avg_len) = doc_lengths(&p.lists, n_docs);
        Ok(SearchIndex {
            dict,
            terms: p.terms,
            lists: p.lists,
            titles: p.titles,
            doc_cat: p.doc_cat,
            categories: p.categories,
            doc_len,
            avg_len,
            titles_shared: p.titles_shared,
        })
    }

    /// Number of documents.
    pub fn n_docs(&self) -> usize {
        self.titles.len()
    }

    /// Number of distinct terms in the dictionary.
    pub fn n_terms(&self) -> usize {
        self.terms.len()
    }

    /// The stored title of `doc` (cut to [`MAX_TITLE_BYTES`]), if it exists.
    pub fn title(&self, doc: u32) -> Option<&str> {
        self.titles.get(doc as usize)
    }

    /// The category name of `doc`, if it has one.
    pub fn category(&self, doc: u32) -> Option<&str> {
        let c = *self.doc_cat.get(doc as usize)?;
        self.categories.get(c as usize).map(|c| &**c)
    }

    /// The distinct category names, by category id.
    pub fn categories(&self) -> impl Iterator<Item = &str> {
        self.categories.iter().map(|c| &**c)
    }

    /// The term id of an exact (already folded) dictionary term.
    pub fn term_id(&self, term: &str) -> Option<u32> {
        self.dict.get(term).map(|v| v as u32)
    }

    /// The text of a term id.
    pub fn term(&self, id: u32) -> Option<&str> {
        self.terms.get(id as usize)
    }

    /// The postings of a term id (doc ids ascending), decoded as iterated; empty for an
    /// unknown id.
    pub fn postings(&self, id: u32) -> Postings<'_> {
        self.lists.get(id)
    }

    /// Document frequency of a term id: the number of documents containing it.
    pub fn df(&self, id: u32) -> u32 {
        self.lists.df(id)
    }

    /// Weighted length of `doc` (module doc), 0 for an unknown doc.
    pub fn doc_len(&self, doc: u32) -> f64 {
        self.doc_len
            .get(doc as usize)
            .map_or(0.0, |&l| f64::from(l))
    }

    /// Mean weighted document length (1 for an index without tokens).
    pub fn avg_doc_len(&self) -> f64 {
        self.avg_len
    }
}

/// Checks one term and its postings: non-empty, bounded, doc ids strictly increasing
/// and in range, each posting with at least one occurrence.
fn check_postings(
    id: u32,
    term: &str,
    list: Postings<'_>,
    n_docs: usize,
) -> Result<(), SearchIndexError> {
    if term.is_empty() || term.len() > MAX_TERM_BYTES {
        return Err(SearchIndexError::BadTerm { term: id });
    }
    if list.len() == 0 {
        return Err(SearchIndexError::BadPostings { term: id });
    }
    let mut prev: Option<u32> = None;
    for q in list {
        let ordered = prev.is_none_or(|p| q.doc > p);
        if !ordered || q.doc as usize >= n_docs || (q.title_tf == 0 && q.other_tf == 0) {
            return Err(SearchIndexError::BadPostings { term: id });
        }
        prev = Some(q.doc);
    }
    Ok(())
}

/// Weighted document lengths `TITLE_WEIGHT·|title| + |other|` (postings checked to be
/// in range) and their mean (1 when there are no tokens).
/// Each length is an integer (`TITLE_WEIGHT` is 2), kept as a `u16` that saturates on a
/// crafted file's absurd counts (a built index's are at most 1,024); the mean sums them
/// as `f64`, as the lengths were summed when they were stored as `f64` (the same value:
/// integers below 2^53 add exactly).
fn doc_lengths(lists: &PostingLists, n_docs: usize) -> (Vec<u16>, f64) {
    const _: () = assert!(TITLE_WEIGHT == 2.0);
    let mut len = vec![0u16; n_docs];
    for q in (0..lists.len() as u32).flat_map(|t| lists.get(t)) {
        let add =
            u16::try_from(2 * u32::from(q.title_tf) + u32::from(q.other_tf)).unwrap_or(u16::MAX);
        let l = &mut len[q.doc as usize];
        *l = l.saturating_add(add);
    }
    let total: f64 = len.iter().map(|&l| f64::from(l)).sum();
    let avg = if total > 0.0 {
        total / n_docs as f64
    } else {
        1.0
    };
    (len, avg)
}

/// Term frequencies of one document: `(in the title, in the other fields)`.
fn doc_terms(title: &str, other: [Option<&str>; 2]) -> BTreeMap<String, (u16, u16)> {
    let mut tf: BTreeMap<String, (u16, u16)> = BTreeMap::new();
    for t in tokenize_capped(title, MAX_FIELD_TOKENS) {
        let e = tf.entry(t.text).or_default();
        e.0 = e.0.saturating_add(1);
    }
    for field in other.into_iter().flatten() {
        for t in tokenize_capped(field, MAX_FIELD_TOKENS) {
            let e = tf.entry(t.text).or_default();
            e.1 = e.1.saturating_add(1);
        }
    }
    tf
}

/// `s` cut to at most `max` bytes at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
