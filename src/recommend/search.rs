//! `search()`: product search over the weight file's `search.index` section, with the
//! recommendation engine's filters and a personalised re-rank by the same model logits
//! `recommend()` uses.
//!
//! # Pipeline
//! 1. **Eligibility** ([`super::eligibility`]): `filter` and `exclude` exactly as for
//!    `recommend()` (unknown category names and ids are errors, as there). Items in the
//!    history are *not* left out: a shopper may search for what they bought.
//! 2. **Text match** ([`crate::search::search`]): BM25 with typo tolerance and a prefix
//!    last word; the best `max(k, `[`CANDIDATE_POOL`]`)` eligible hits when
//!    personalising, else the best `k`. Facets and `total` cover every eligible match.
//! 3. **Personalised re-rank** ([`crate::search::personalize`]), only when the history is
//!    non-empty and the weight `w > 0`: with `z_i` the model's logit for item `i` given
//!    the history ([`super::score`]: encoder, head, transition-memory term — the same
//!    user vector `recommend()` reads), computed for the pool's items only (the history
//!    is encoded once; the head and the memory term run for the ≤ `max(k, 200)` hits,
//!    not the catalogue, with the same per-item values),
//!
//!    ```text
//!    m_i     = (z_i − min_pool z) / (max_pool z − min_pool z)      (0 when all equal)
//!    score_i = (1 − w)·text_score_i + w·m_i                        (stable sort)
//!    ```
//!
//!    then the top `k`. An empty history or `w = 0` gives exactly the text order, and
//!    `score = textScore`. `w` defaults to [`DEFAULT_PERSONALIZE`].
//! 4. **Reasons**: a `match` reason with the matched terms and their UTF-16 spans in the
//!    title (highlighting), and, for a hit the re-rank moved above its text rank, the
//!    `history` reasons of [`super::explain`] ("because you viewed X").
//! 5. **Suggestions** when nothing matches: the search module's corrected spellings
//!    (`didYouMean`), then the most popular eligible items of the closest category —
//!    the category of the best hit for `didYouMean` (all categories when there is none)
//!    — flagged `popular`.
use std::ops::Range;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::eligibility::Eligibility;
use super::explain::{Explainer, Signals};
use super::{Filter, Reason, RecommendError, RecommendOptions, Recommender};
use crate::format::{ByteSource, Metadata, Tensor, TensorData, WeightFile, SEARCH_INDEX_TENSOR};
use crate::history::HistoryEvent;
use crate::search::codec::IndexSource;
use crate::search::{
    self as text, Doc, Facets, Hit, PriceFacet, SearchIndex, SearchIndexError, SearchOptions,
    SearchResults,
};

/// Default weight of the model's score in the personalised re-rank (`personalize`
/// option), chosen by `vitrine search-eval --tune` on validation NDCG@10 (flat from
/// 0.003 to 0.01: text scores differ by ~0.003 per completion tier, see docs/search.md).
pub const DEFAULT_PERSONALIZE: f32 = 0.007;
/// Text hits re-ranked when personalising (at least `k`).
pub const CANDIDATE_POOL: usize = 200;

/// Options of one `search()` call; field names are the JavaScript ones (camelCase).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SearchRequest {
    /// How many results (1..=1000).
    pub k: usize,
    /// Attribute filters (as for `recommend()`).
    pub filter: Filter,
    /// Item ids never to return.
    pub exclude: Vec<String>,
    /// Weight of the model's score in [0, 1] (`None`: [`DEFAULT_PERSONALIZE`]).
    pub personalize: Option<f32>,
    /// Compute category and price facets over every eligible match.
    pub facets: bool,
}

impl Default for SearchRequest {
    fn default() -> Self {
        SearchRequest {
            k: 10,
            filter: Filter::default(),
            exclude: Vec::new(),
            personalize: None,
            facets: true,
        }
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResult {
    /// Store item id.
    pub item: String,
    /// Catalog index.
    pub index: u32,
    /// Display title.
    pub title: String,
    /// Category name.
    pub category: String,
    /// Price, when known.
    pub price: Option<f32>,
    /// Final score in [0, 1]: the text score, or its blend with the model's.
    pub score: f32,
    /// Text score in (0, 1], 1 for the best text match (0 for a `popular` suggestion).
    pub text_score: f32,
    /// Why it is here: `match` first, then `history` reasons (or `popular`).
    pub reasons: Vec<SearchReason>,
}

/// A query word a result matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchedTerm {
    /// The query word (folded).
    pub word: String,
    /// The catalogue term it matched.
    pub term: String,
    /// Edits between them (0: exact or prefix).
    pub distance: u8,
    /// Matched as a prefix (search-as-you-type).
    pub prefix: bool,
}

/// A title span to highlight: `title.slice(start, end)` in JavaScript (UTF-16 units).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TitleSpan {
    /// First UTF-16 code unit.
    pub start: u32,
    /// One past the last.
    pub end: u32,
}

/// Why a search result is listed; serialised with a `kind` tag (`match`, `history`,
/// `popular`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SearchReason {
    /// The text matched: the terms and the title spans to highlight.
    Match {
        /// Matched query words.
        terms: Vec<MatchedTerm>,
        /// Title tokens that matched, in title order.
        spans: Vec<TitleSpan>,
    },
    /// Personalisation moved it up: a history item it relates to.
    History {
        /// Item id of the history event.
        item: String,
        /// Its title.
        title: String,
        /// What the shopper did.
        event: crate::history::EventKind,
        /// Share of the contribution.
        weight: f32,
    },
    /// Not a match: a popular item of the closest category (no-result suggestion).
    Popular,
}

/// Category count of the facets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryFacet {
    /// Category name.
    pub name: String,
    /// Eligible matches in it.
    pub count: u32,
}

/// Price band of the facets, `[min, max)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceBandFacet {
    /// Inclusive lower edge (`null`: unbounded).
    pub min: Option<f32>,
    /// Exclusive upper edge (`null`: unbounded).
    pub max: Option<f32>,
    /// Eligible matches priced in the band.
    pub count: u32,
}

/// Facets over every eligible match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchFacets {
    /// By count, then name.
    pub categories: Vec<CategoryFacet>,
    /// Matches without a category.
    pub no_category: u32,
    /// Quartile bands of the catalogue's prices, ascending.
    pub price_bands: Vec<PriceBandFacet>,
    /// Matches without a price.
    pub no_price: u32,
}

/// A corrected spelling of a query word.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Correction {
    /// The query word (folded).
    pub word: String,
    /// A catalogue term close to it.
    pub term: String,
    /// Edits between them.
    pub distance: u8,
}

/// What to show when nothing matches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NoResults {
    /// The query with each unknown word replaced by its best correction.
    pub did_you_mean: Option<String>,
    /// Corrections, closest first.
    pub corrections: Vec<Correction>,
    /// The category the popular items come from (`None`: all categories).
    pub popular_category: Option<String>,
    /// Popular eligible items of that category (reason `popular`).
    pub popular: Vec<SearchResult>,
}

/// What `search()` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResponse {
    /// The query words used (folded, deduplicated, capped).
    pub words: Vec<String>,
    /// The results, best first.
    pub results: Vec<SearchResult>,
    /// Eligible matches in all.
    pub total: u32,
    /// Whether the model's scores re-ranked the results.
    pub personalized: bool,
    /// Facets (when asked for).
    pub facets: Option<SearchFacets>,
    /// Suggestions (only when nothing matched).
    pub suggestions: Option<NoResults>,
}

/// The catalogue as search documents: title and category name (none for category 0,
/// "unknown"), doc id = catalog index.
pub fn catalog_docs(metadata: &Metadata) -> Vec<Doc<'_>> {
    let items = &metadata.items;
    (0..items.titles.len())
        .map(|i| {
            let c = items.category.get(i).copied().unwrap_or(0) as usize;
            Doc {
                title: &items.titles[i],
                category: (c > 0)
                    .then(|| metadata.categories.get(c).map(String::as_str))
                    .flatten(),
                extra: None,
            }
        })
        .collect()
}

/// Builds the catalogue's index and stores it in `file` as the `U8` tensor
/// [`SEARCH_INDEX_TENSOR`] (replacing any). Returns the section's size in bytes.
pub fn attach_index(file: &mut WeightFile) -> Result<usize, SearchIndexError> {
    let bytes = SearchIndex::build(&catalog_docs(&file.metadata))?.to_bytes();
    let len = bytes.len();
    file.tensors.insert(
        SEARCH_INDEX_TENSOR.to_string(),
        Tensor {
            shape: vec![len],
            data: TensorData::U8(bytes),
        },
    );
    Ok(len)
}

/// Takes the `search.index` section out of `file` (`None` when absent) and loads it: a
/// `U8` tensor holding an index of exactly `n` documents. Its bytes are freed once
/// decoded, and the index shares the catalogue's titles when it stores the same ones
/// ([`SearchIndex::from_bytes_sharing_titles`]).
pub(super) fn load_index(
    file: &mut WeightFile,
    n: usize,
) -> Result<Option<SearchIndex>, RecommendError> {
    let Some(t) = file.tensors.remove(SEARCH_INDEX_TENSOR) else {
        return Ok(None);
    };
    let TensorData::U8(bytes) = t.data else {
        return Err(RecommendError::Inconsistent(format!(
            "{SEARCH_INDEX_TENSOR} is not a U8 byte section"
        )));
    };
    let index = SearchIndex::from_bytes_sharing_titles(&bytes, &file.metadata.items.titles)?;
    drop(bytes);
    check_docs(index, n).map(Some)
}

/// Loads the `search.index` section from where it lies, `range` of the weight file
/// `src` ([`WeightFile::from_source_leaving`] checked its place), a 64 KiB window at a
/// time: the section's bytes are never held whole (at 1,000,000 items, 35 MiB of wasm
/// memory the index would otherwise be built beside). The same checks and index as
/// [`load_index`], but for the section's own SHA-256: the file's content hash covers
/// the section, and [`Recommender::from_open`](super::Recommender::from_open)'s caller
/// compares it before the index is used
/// ([`SearchIndex::from_hashed_source_sharing_titles`]).
fn load_index_from<S: ByteSource + ?Sized>(
    src: &S,
    range: Range<u64>,
    metadata: &Metadata,
) -> Result<SearchIndex, RecommendError> {
    let section = Section { src, range };
    let index = SearchIndex::from_hashed_source_sharing_titles(&section, &metadata.items.titles)?;
    check_docs(index, metadata.model.n_items)
}

/// `index` when it indexes exactly the catalogue's `n` items.
fn check_docs(index: SearchIndex, n: usize) -> Result<SearchIndex, RecommendError> {
    if index.n_docs() != n {
        return Err(RecommendError::Inconsistent(format!(
            "{SEARCH_INDEX_TENSOR} indexes {} documents, the catalog has {n} items",
            index.n_docs()
        )));
    }
    Ok(index)
}

/// A byte range of a weight file, read by the search index's decoder.
struct Section<'s, S: ?Sized> {
    src: &'s S,
    range: Range<u64>,
}

impl<S: ByteSource + ?Sized> IndexSource for Section<'_, S> {
    fn byte_len(&self) -> u64 {
        self.range.end - self.range.start
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) {
        self.src.read_at(self.range.start + offset, out);
    }
}

/// The loaded index with what every search reuses: the price facet's band edges
/// (quartiles of the catalogue's prices, fixed at load). The facet reads the
/// catalogue's own price column (NaN: none); no copy is kept here.
pub(super) struct Searchable {
    index: SearchIndex,
    edges: Vec<f32>,
}

impl Searchable {
    /// Heap bytes of the index and the band edges.
    pub(super) fn heap_bytes(&self) -> usize {
        self.index.heap_bytes() + self.edges.capacity() * 4
    }

    pub(super) fn new(index: SearchIndex, metadata: &Metadata) -> Searchable {
        let edges = text::facets::quantile_edges(
            metadata.items.price.as_nan_slice(),
            text::facets::DEFAULT_PRICE_BANDS,
        );
        Searchable { index, edges }
    }
}

/// Where a loaded engine's search index is: decoded, or its section still in the weight
/// file ([`Recommender::from_open_leaving_search`]), or absent. Decoding needs only
/// `&self` ([`Recommender::load_search_index`]), so the browser binding can decode on a
/// `search()` while a `recommend()` of the same engine awaits the GPU.
#[derive(Default)]
pub(super) struct SearchState {
    /// The section's byte range in the weight file, until it is decoded.
    left: Option<Range<u64>>,
    /// The decoded index.
    ready: OnceLock<Box<Searchable>>,
}

impl SearchState {
    /// The file has no `search.index` section.
    pub(super) fn absent() -> SearchState {
        SearchState::default()
    }

    /// The section at `range` of the weight file, not decoded yet.
    pub(super) fn left(range: Range<u64>) -> SearchState {
        SearchState {
            left: Some(range),
            ..SearchState::default()
        }
    }

    /// A decoded index.
    pub(super) fn ready(index: Searchable) -> SearchState {
        let state = SearchState::default();
        // Freshly made: the cell is empty.
        let _ = state.ready.set(Box::new(index));
        state
    }

    /// Whether the index is still in the weight file ([`SearchState::left`], not decoded).
    pub(super) fn is_left(&self) -> bool {
        self.left.is_some() && self.ready.get().is_none()
    }

    /// The decoded index, if any.
    pub(super) fn get(&self) -> Option<&Searchable> {
        self.ready.get().map(|b| &**b)
    }
}

/// A validated request: the eligibility mask (`None`: no filter and no exclusions, every
/// item is eligible — no catalogue-sized mask to build per call) and the re-rank weight.
struct Checked {
    eligible: Option<Eligibility>,
    weight: f32,
    k: usize,
}

impl Checked {
    /// Whether item `d` may be returned.
    fn is_eligible(&self, d: u32) -> bool {
        self.eligible.as_ref().is_none_or(|e| e.is_eligible(d))
    }
}

impl Recommender {
    /// The search index, when the weight file has one and it is decoded.
    pub fn search_index(&self) -> Option<&SearchIndex> {
        self.search_index.get().map(|s| &s.index)
    }

    /// The byte range of the weight file's `search.index` section while it waits for
    /// [`Recommender::load_search_index`] (`None` once decoded, or without a section).
    pub fn search_section(&self) -> Option<Range<u64>> {
        let state = &self.search_index;
        state.left.clone().filter(|_| state.is_left())
    }

    /// Decodes the search index left in the weight file by
    /// [`Recommender::from_open_leaving_search`] from `src`, the same file's bytes (or
    /// a source that holds at least [`Recommender::search_section`]'s range at the same
    /// offsets), with the checks [`Recommender::from_source`] makes at load. Nothing to
    /// do when the index is decoded or the file has none. On an error the section stays
    /// left, so the engine recommends as before and a later call fails the same way.
    pub fn load_search_index<S: ByteSource + ?Sized>(&self, src: &S) -> Result<(), RecommendError> {
        let Some(range) = self.search_section() else {
            return Ok(());
        };
        if range.end > src.byte_len() {
            return Err(RecommendError::Inconsistent(format!(
                "{SEARCH_INDEX_TENSOR} ends at byte {}, past the {} bytes given",
                range.end,
                src.byte_len()
            )));
        }
        let index = load_index_from(src, range, &self.metadata)?;
        // Another caller may have decoded the same index meanwhile: either is kept.
        let _ = (self.search_index.ready).set(Box::new(Searchable::new(index, &self.metadata)));
        Ok(())
    }

    /// Searches the catalogue for `query` (untrusted: any string gives results or an
    /// empty list, never an error), filtered and personalised by `history` (see the
    /// module docs). Errors: [`RecommendError::SearchUnavailable`] without an index,
    /// [`RecommendError::SearchNotLoaded`] before [`Recommender::load_search_index`] on
    /// an engine that left it in the file;
    /// invalid options and history as for [`Recommender::recommend`].
    pub fn search(
        &self,
        history: &[HistoryEvent],
        query: &str,
        request: &SearchRequest,
    ) -> Result<SearchResponse, RecommendError> {
        let s = match self.search_index.get() {
            Some(s) => s,
            None if self.search_index.is_left() => return Err(RecommendError::SearchNotLoaded),
            None => return Err(RecommendError::SearchUnavailable),
        };
        let c = self.check_search(request)?;
        let personal = !history.is_empty() && c.weight > 0.0;
        let opts = SearchOptions {
            k: if personal {
                c.k.max(CANDIDATE_POOL)
            } else {
                c.k
            },
            price: request.facets.then_some(PriceFacet {
                prices: self.metadata.items.price.as_nan_slice(),
                edges: &s.edges,
            }),
            ..SearchOptions::default()
        };
        let is_eligible = |d: u32| c.is_eligible(d);
        let mut found = text::search(&s.index, query, &opts, &is_eligible);
        let text_rank: Vec<u32> = found.hits.iter().map(|h| h.doc).collect();
        let hits = std::mem::take(&mut found.hits);
        let (hits, explainer_input) = if personal {
            let (logits, prepared) = self.pool_logits(history, c.k, &text_rank)?;
            (
                text::personalize_hits(hits, Some(&logits), c.weight),
                Some(prepared),
            )
        } else {
            (text::personalize(hits, None, 0.0), None)
        };
        let explainer = explainer_input.as_ref().map(|p| {
            Explainer::new(
                self,
                Signals {
                    history: &p.history,
                    attention: &p.attention,
                    n_real: p.history.len(),
                    context: None,
                    basket: &[],
                    personal: true,
                },
            )
        });
        let results = (hits.iter().take(c.k).enumerate())
            .map(|(pos, h)| {
                let moved_up = text_rank
                    .iter()
                    .position(|&d| d == h.doc)
                    .is_some_and(|t| pos < t);
                self.search_result(h, explainer.as_ref().filter(|_| moved_up))
            })
            .collect();
        let suggestions = (found.total == 0).then(|| self.no_results(&s.index, &found, &c));
        Ok(SearchResponse {
            words: found.words.clone(),
            results,
            total: found.total,
            personalized: personal,
            facets: request.facets.then(|| facets_json(&found.facets)),
            suggestions,
        })
    }

    /// Validates a request the way `recommend()` validates its options (k, price bounds,
    /// known categories and ids) and builds the eligibility mask.
    fn check_search(&self, request: &SearchRequest) -> Result<Checked, RecommendError> {
        let as_options = RecommendOptions {
            k: request.k,
            exclude: request.exclude.clone(),
            filter: request.filter.clone(),
            exclude_seen: false,
            ..RecommendOptions::default()
        };
        Self::validate_numbers(&as_options)?;
        let resolved = self.resolve(&as_options, true)?;
        let weight = request.personalize.unwrap_or(DEFAULT_PERSONALIZE);
        if !(weight.is_finite() && (0.0..=1.0).contains(&weight)) {
            return Err(RecommendError::InvalidOption(format!(
                "personalize must be between 0 and 1, got {weight}"
            )));
        }
        let everything = request.filter == Filter::default() && resolved.exclude.is_empty();
        Ok(Checked {
            eligible: (!everything)
                .then(|| Eligibility::new(self, &request.filter, &resolved.exclude)),
            weight,
            k: request.k,
        })
    }

    /// The model's logits for the pool's items only, `out[j]` for `docs[j]` (encoder
    /// once, then the head and the memory term for these items: [`super::score`]'s
    /// subset steps, equal to the full path's values), and the prepared request
    /// (explanations).
    fn pool_logits(
        &self,
        history: &[HistoryEvent],
        k: usize,
        docs: &[u32],
    ) -> Result<(Vec<f32>, super::Prepared), RecommendError> {
        let options = RecommendOptions {
            k,
            ..RecommendOptions::default()
        };
        let prepared = self.prepare(history, &options)?;
        let mut logits = vec![0.0; docs.len()];
        if let Some(q) = &prepared.query {
            super::score::head_logits_for(self.kernel, &self.plan, q, docs, &mut logits)
                .map_err(|e| RecommendError::Inconsistent(format!("scoring head: {e}")))?;
            super::score::add_memory_for(&self.model, &prepared.history, docs, &mut logits);
        }
        Ok((logits, prepared))
    }

    /// The result entry of a hit; `explainer` set: add its `history` reasons.
    fn search_result(&self, h: &Hit, explainer: Option<&Explainer<'_>>) -> SearchResult {
        let i = h.doc as usize;
        let mut reasons = vec![SearchReason::Match {
            terms: (h.matches.iter())
                .map(|m| MatchedTerm {
                    word: m.word.clone(),
                    term: m.term.clone(),
                    distance: m.distance,
                    prefix: m.prefix,
                })
                .collect(),
            spans: (h.spans.iter())
                .map(|s| TitleSpan {
                    start: s.start,
                    end: s.end,
                })
                .collect(),
        }];
        if let Some(e) = explainer {
            reasons.extend(
                e.history_reasons(i, false)
                    .into_iter()
                    .filter_map(|r| match r {
                        Reason::History {
                            item,
                            title,
                            event,
                            weight,
                        } => Some(SearchReason::History {
                            item,
                            title,
                            event,
                            weight,
                        }),
                        _ => None,
                    }),
            );
        }
        SearchResult {
            item: self.id(i).to_string(),
            index: h.doc,
            title: self.title(i).to_string(),
            category: self.category_name(i).to_string(),
            price: self.price(i),
            score: h.score,
            text_score: h.text_score,
            reasons,
        }
    }

    /// Suggestions for a query without matches: corrections, then popular eligible items
    /// of the closest category (see the module docs).
    fn no_results(&self, index: &SearchIndex, found: &SearchResults, c: &Checked) -> NoResults {
        let is_eligible = |d: u32| c.is_eligible(d);
        let category = found.did_you_mean.as_deref().and_then(|q| {
            let opts = SearchOptions {
                k: 1,
                ..SearchOptions::default()
            };
            let best = text::search(index, q, &opts, &is_eligible)
                .hits
                .first()?
                .doc;
            Some(self.category_of(best as usize))
        });
        // The `k` most popular, ties to the lower index: the popularity prior is finite
        // (checked at load), where the top-k's order is `total_cmp`'s. A bounded buffer,
        // not a sort of every eligible item (a whole catalogue when no category is found).
        let candidates = (0..self.n_items() as u32)
            .filter(|&i| is_eligible(i))
            .filter(|&i| category.is_none_or(|cat| self.category_of(i as usize) == cat));
        let items = crate::kernels::topk::top_k_among(&self.popularity, candidates, c.k);
        let popular = (items.iter())
            .map(|&i| {
                let i = i as usize;
                SearchResult {
                    item: self.id(i).to_string(),
                    index: i as u32,
                    title: self.title(i).to_string(),
                    category: self.category_name(i).to_string(),
                    price: self.price(i),
                    score: 0.0,
                    text_score: 0.0,
                    reasons: vec![SearchReason::Popular],
                }
            })
            .collect();
        NoResults {
            did_you_mean: found.did_you_mean.clone(),
            corrections: (found.suggestions.iter())
                .map(|s| Correction {
                    word: s.word.clone(),
                    term: s.term.clone(),
                    distance: s.distance,
                })
                .collect(),
            popular_category: category.map(|cat| self.category_name_of(cat).to_string()),
            popular,
        }
    }

    /// Name of category index `c`.
    fn category_name_of(&self, c: u32) -> &str {
        (self.metadata.categories.get(c as usize))
            .map(String::as_str)
            .unwrap_or(crate::features::UNKNOWN_CATEGORY)
    }
}

/// The facets in their JavaScript shape.
fn facets_json(f: &Facets) -> SearchFacets {
    SearchFacets {
        categories: (f.categories.iter())
            .map(|c| CategoryFacet {
                name: c.name.clone(),
                count: c.count,
            })
            .collect(),
        no_category: f.no_category,
        price_bands: (f.price_bands.iter())
            .map(|b| PriceBandFacet {
                min: b.min,
                max: b.max,
                count: b.count,
            })
            .collect(),
        no_price: f.no_price,
    }
}
