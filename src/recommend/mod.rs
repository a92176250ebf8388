//! The recommendation engine behind `recommend()`: turns a history and options into a
//! ranked, explained list, with the same code in the CLI and in the browser.
//!
//! Scenarios: for you (history), similar items (a context item), frequently bought
//! together (the cart), cross-category (filters, diversity), new items (cold-start content
//! vectors), promotions (boost, promote). Every result carries its reasons.
//!
//! Scoring is split in three steps so the browser can run the middle one on the GPU:
//! [`Recommender::prepare`] (validate options, encode the user, build the head's user
//! query: [`score::encode`]), the head's logits for every item (any [`crate::kernels`]
//! path; [`score::head_logits`] on the CPU), and [`Recommender::finish`].
//! [`Recommender::recommend`] does all three on the CPU. [`score`] is the one
//! "history → logits" path (evaluation uses [`score::logits`]). On the GPU, the middle
//! and last steps can instead be [`Recommender::plan_shortlist`] → the GPU's shortlist
//! (filters, the dense blend and a per-chunk top-`m` on the GPU) →
//! [`Recommender::finish_shortlist`], which reads back a few candidates instead of every
//! logit and returns exactly [`Recommender::finish`]'s list ([`shortlist`]).
//!
//! [`Recommender::finish`] is a pipeline of four stages, each a module stating its math:
//! 1. [`eligibility`]: which items may appear (exclusions, seen items, category and
//!    price filters);
//! 2. [`blend`]: one logit per item (head or popularity logit, boosts, new-item boost,
//!    then the transition-memory term, for a basket its co-purchase evidence
//!    ([`crate::basket`]), then the context item's similarity); score = sigmoid(logit);
//! 3. [`rank`]: promoted items first, then the top of the ranking, re-ranked for
//!    category diversity;
//! 4. [`explain`]: the reasons of each item.
//!
//! [`page`] fills several shelves of one page in one call, each leaving out what the
//! shelves before it placed.
//!
//! Input rules: the user encoder reads the history (sorted oldest first), then the context
//! item as a view and the basket items as cart events, all at `now`. No history, context
//! or basket at all: the popularity prior ranks instead (score = the item's popularity
//! share).
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::basket::{Basket, BasketError};
use crate::format::{
    validate_metadata_indexed, validate_trained_kinds, ByteSource, Decoded, FormatError,
    ItemCatalog, Metadata, OpenFile, OptColumn, TensorData, WeightFile, SEARCH_INDEX_TENSOR,
};
use crate::history::{EventKind, HistoryEvent};
use crate::kernels::{CpuKernel, HeadPlan, ItemVectors, UserQuery};
use crate::model::layers::sigmoid;
use crate::model::params::{TensorName, ID_TENSOR};
use crate::model::{Model, ModelError};
use crate::strs::StrIndex;

pub mod arriving;
pub mod blend;
pub mod eligibility;
pub mod explain;
pub mod page;
pub mod rank;
mod request;
pub mod score;
pub mod search;
pub mod shortlist;

use eligibility::Eligibility;
use explain::{Explainer, Placement, Signals};
use search::SearchState;

/// Everything that can go wrong serving a recommendation.
#[derive(Debug, thiserror::Error)]
pub enum RecommendError {
    /// The weight file is unreadable or invalid.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The weight file's tensors do not make a model.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A history event's item is not in the catalog.
    #[error("unknown item id {0:?}")]
    UnknownItem(String),
    /// An item id in the options is not in the catalog; `field` is where it sits
    /// (`context`, `basket[2]`, `exclude[0]`, `boost[1].ids[0]`, `promote.ids[3]`).
    #[error("{field}: unknown item id {id:?}")]
    UnknownOptionItem {
        /// The option's path, as JavaScript spells it.
        field: String,
        /// The id.
        id: String,
    },
    /// An option is out of range or inconsistent (the message names it).
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The weight file's statistics or scoring head do not match its model (a
    /// popularity prior of the wrong length, dtype or with negative or non-finite
    /// values; head tensors of the wrong shape). Catalog errors are
    /// [`RecommendError::Format`] ([`crate::format::validate_metadata`]).
    #[error("inconsistent weight file: {0}")]
    Inconsistent(String),
    /// The weight file's `search.index` section is present but corrupt (bad version,
    /// hash, or structure; see `docs/search.md`).
    #[error("search index section: {0}")]
    SearchIndex(#[from] crate::search::SearchIndexError),
    /// The weight file's `basket.*` section ("frequently bought together" order counts)
    /// is present but corrupt (`docs/weight-format.md`, "The basket section").
    #[error("basket section: {0}")]
    Basket(#[from] BasketError),
    /// `search()` was called on a weight file without a `search.index` section (written
    /// before search existed, or by a trainer that skipped it): search is unavailable,
    /// recommendations still work.
    #[error("search is unavailable: this weight file has no search index (retrain or re-quantize it with a vitrine that writes `search.index`)")]
    SearchUnavailable,
    /// `search()` was called on an engine loaded by
    /// [`Recommender::from_open_leaving_search`] before
    /// [`Recommender::load_search_index`] decoded its index (a caller's mistake: the
    /// browser binding always loads it first).
    #[error("the search index is not loaded yet: load_search_index decodes it from the weight file's bytes")]
    SearchNotLoaded,
}

/// Options of one `recommend()` call; field names are the JavaScript ones (camelCase).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RecommendOptions {
    /// How many results (1..=1000).
    pub k: usize,
    /// "Similar to this item": a context item id (product page).
    pub context: Option<String>,
    /// "Frequently bought together": the items in the cart.
    pub basket: Vec<String>,
    /// Item ids never to return.
    pub exclude: Vec<String>,
    /// Leave out items already in the history (default true).
    pub exclude_seen: bool,
    /// With `exclude_seen`, still allow items the shopper bought before.
    pub allow_repurchase: bool,
    /// Attribute filters.
    pub filter: Filter,
    /// Score boosts for some items or a category (promotions).
    pub boost: Vec<Boost>,
    /// Pin some items into fixed slots (promotions).
    pub promote: Option<Promote>,
    /// 0 = pure relevance, 1 = strongest category diversification (MMR-style).
    pub diversity: f32,
    /// Extra weight for new items (cold start), 0 = none.
    pub new_items_boost: f32,
    /// Current time in Unix seconds (recency); defaults to the last history event.
    pub now: Option<f64>,
}

impl Default for RecommendOptions {
    fn default() -> Self {
        RecommendOptions {
            k: 10,
            context: None,
            basket: Vec::new(),
            exclude: Vec::new(),
            exclude_seen: true,
            allow_repurchase: false,
            filter: Filter::default(),
            boost: Vec::new(),
            promote: None,
            diversity: 0.0,
            new_items_boost: 0.0,
            now: None,
        }
    }
}

/// Attribute filters on the results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Filter {
    /// Only these category names (empty = all).
    pub categories: Vec<String>,
    /// Never these category names.
    pub exclude_categories: Vec<String>,
    /// Minimum price (items without a price are excluded when set).
    pub price_min: Option<f32>,
    /// Maximum price (items without a price are excluded when set).
    pub price_max: Option<f32>,
    /// Only new items ([`Recommender::is_new`]: the newest tenth of the catalog by its
    /// `added` date): the "new in" shelf.
    pub new_only: bool,
}

/// A score boost for some items or a whole category.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Boost {
    /// Item ids to boost.
    pub ids: Vec<String>,
    /// Or a category name to boost.
    pub category: Option<String>,
    /// Added to the logit (may be negative to demote).
    pub weight: f32,
}

/// Pins promoted items into the result list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Promote {
    /// Candidate promoted item ids, best first.
    pub ids: Vec<String>,
    /// How many result slots they may take.
    pub slots: usize,
}

/// One recommended item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
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
    /// Probability-like score in (0, 1): sigmoid of the final logit.
    pub score: f32,
    /// Why it is here, most important first (never empty).
    pub reasons: Vec<Reason>,
}

/// Why an item was recommended; serialised with a `kind` tag (`history`, `similar`,
/// `bought-together`, `popular`, `promoted`, `boosted`, `new`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reason {
    /// A history event that contributed (attention/attribution weight in [0, 1]).
    History {
        /// Item id of the history event.
        item: String,
        /// Its title.
        title: String,
        /// What the shopper did.
        event: EventKind,
        /// Share of the contribution.
        weight: f32,
    },
    /// Similar to the context item, or (basket requests) to the basket item whose
    /// vector is closest, when there is no co-purchase evidence for the item.
    Similar {
        /// Context (or basket) item id.
        item: String,
        /// Its title.
        title: String,
    },
    /// Bought in the same order as a basket item in `orders` training orders (the
    /// weight file's `basket.*` counts): the evidence, never a guess. A basket request
    /// without such evidence for an item explains it with [`Reason::Similar`] instead.
    BoughtTogether {
        /// Basket item id.
        item: String,
        /// Its title.
        title: String,
        /// Training orders that held both items (at least 1).
        orders: u32,
    },
    /// Popular overall (the empty-history fallback says so).
    Popular,
    /// Pinned by a promotion.
    Promoted,
    /// Score raised by a boost.
    Boosted,
    /// A new item (content-only vector, cold start).
    New,
}

/// Result of [`Recommender::prepare`]: the head's user-side input plus what
/// [`Recommender::finish`] needs.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The scoring head's user query; `None` when there is no signal at all (empty
    /// history, no context, no basket): popularity fallback, no head scores needed.
    pub query: Option<UserQuery>,
    /// Options, validated.
    pub options: RecommendOptions,
    /// The history the user encoder read.
    pub history: Vec<HistoryEvent>,
    /// Attention of the user vector over `history` (explanations).
    pub attention: Vec<f32>,
}

/// A loaded model ready to serve: the weight file's catalog, the model, its item vectors
/// and the precomputed scoring-head plan.
pub struct Recommender {
    /// The weight file's metadata, less the catalogue's `added` dates (empty: they are
    /// read once, for [`Recommender::is_new`]).
    pub metadata: Metadata,
    /// The model.
    pub model: Model,
    /// The head's item-side plan (it holds the item vectors, see
    /// [`Recommender::item_vectors`]).
    pub plan: HeadPlan,
    /// Popularity prior per item (from the `stats.popularity` tensor).
    pub popularity: Vec<f32>,
    /// CPU kernel used by [`Recommender::recommend`].
    pub kernel: CpuKernel,
    /// Store item id → catalog index (over `metadata.items.ids`, no copy of the ids).
    index: StrIndex,
    /// Category name → category index (exact names).
    category_by_name: HashMap<String, u32>,
    /// Lower-cased category name → category index (case-insensitive fallback).
    category_by_lower: HashMap<String, u32>,
    /// Items whose `added` date is in the newest tenth of the catalog: bit `i % 64` of
    /// word `i / 64`.
    is_new: Vec<u64>,
    /// Popularity share as a logit (the fallback ranking and its score), computed by the
    /// first request that needs it and kept: two `f64` logarithms an item would double
    /// the fallback's time at 1,000,000 items, and would add 30 ms to every load there
    /// whose requests all have a history.
    popularity_logit: OnceLock<Vec<f32>>,
    /// The product-search index (`search.index`) and its price facet, when the file
    /// has one: decoded, or its section still in the file.
    search_index: SearchState,
    /// The "frequently bought together" order counts (`basket.*`), when the file has
    /// them.
    basket: Option<Basket>,
    /// Euclidean norm of each item vector of an f32 plan (the context term's cosines;
    /// empty for an int8 plan, whose norms come from the dequantised rows).
    item_norms: Vec<f32>,
}

/// Largest `k` a call may ask for.
pub const MAX_K: usize = 1000;
/// How many top candidates the diversity re-ranking considers.
pub const DIVERSITY_POOL: usize = 5000;
/// Share of the catalog (by `added` date, newest first) that counts as "new".
pub const NEW_ITEM_FRACTION: f64 = 0.1;
/// Name of the popularity-prior tensor in the weight file.
pub const POPULARITY_TENSOR: &str = "stats.popularity";

/// The `I8` tensors a load keeps quantised: the item ID rows.
const LOAD_KEEPS_INT8: [&str; 1] = [match ID_TENSOR {
    TensorName::Top(name) => name,
    _ => panic!("item.id is a top-level tensor"),
}];
/// The `U8` sections a load leaves where they lie: the search index.
const LOAD_LEAVES: [&str; 1] = [SEARCH_INDEX_TENSOR];

impl Recommender {
    /// Parses, validates and loads a weight file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Recommender, RecommendError> {
        Recommender::from_source(bytes)
    }

    /// Parses, validates and loads a weight file from any [`ByteSource`] (in the
    /// browser, the page's `Uint8Array`, never copied whole into wasm memory).
    ///
    /// An int8 file's `item.id` table stays int8 from the file to the scoring plan
    /// ([`Model::from_weights_int8`]): no `[n × d]` f32 buffer is ever allocated, and
    /// the plan's int8 item vectors are the ones [`Recommender::from_weight_file`]
    /// builds from the dequantised file. Other files load through
    /// [`Recommender::from_weight_file`].
    pub fn from_source<S: ByteSource + ?Sized>(src: &S) -> Result<Recommender, RecommendError> {
        let open = OpenFile::open(src)?;
        open.check_hash()?;
        Recommender::from_open(open)
    }

    /// [`Recommender::from_source`] from a file opened by [`OpenFile::open`], whose
    /// content hash the caller compares: before calling this ([`OpenFile::check_hash`]),
    /// or after it, before using the result or reporting its error (the browser hashes
    /// the data section with WebCrypto while this builds the model; a hash mismatch is
    /// reported in place of any error from here, as [`Recommender::from_source`] would).
    pub fn from_open<S: ByteSource + ?Sized>(
        open: OpenFile<'_, S>,
    ) -> Result<Recommender, RecommendError> {
        let src = open.source();
        let engine = Recommender::from_open_leaving_search(open)?;
        engine.load_search_index(src)?;
        Ok(engine)
    }

    /// [`Recommender::from_open`] with the `search.index` section left where it lies:
    /// the engine recommends at once, and [`Recommender::search`] answers
    /// [`RecommendError::SearchNotLoaded`] until [`Recommender::load_search_index`] has
    /// decoded the section from the same bytes ([`Recommender::search_section`] names
    /// its range). The browser loads this way, so that the index (0.25 s and 26 MiB at
    /// 1,000,000 items) costs nothing before the first `search()`.
    pub fn from_open_leaving_search<S: ByteSource + ?Sized>(
        open: OpenFile<'_, S>,
    ) -> Result<Recommender, RecommendError> {
        let decoded = open.decode(&LOAD_KEEPS_INT8, &LOAD_LEAVES)?;
        Recommender::from_decoded(decoded)
    }

    /// [`Recommender::from_open_leaving_search`] from the tensors it decodes (the int8
    /// `item.id` kept quantised, the search index left): [`arriving::ArrivingLoad`]
    /// decodes them while the file downloads.
    pub fn from_decoded(decoded: Decoded) -> Result<Recommender, RecommendError> {
        let (mut file, mut kept, left, id_index) = decoded;
        let search = match left.get(SEARCH_INDEX_TENSOR) {
            Some(range) => SearchState::left(range.clone()),
            None => SearchState::absent(),
        };
        let Some(ids) = kept.remove(LOAD_KEEPS_INT8[0]) else {
            return Recommender::from_parsed(file, search, id_index);
        };
        let (model, plan) = Model::from_weights_int8(&mut file, ids)?;
        retain_served(&mut file);
        Self::assemble(file, model, plan, search, id_index)
    }

    /// Loads from a parsed weight file.
    ///
    /// Peak memory is kept near two catalog-sized `[n × d]` buffers besides the file:
    /// once the model holds its parameters, the file's copies are dropped (only the
    /// catalog metadata and the popularity prior are read after that), the item
    /// vectors move into the scoring plan, and the model's own `item.id` rows are freed
    /// ([`Model::drop_id_rows`]: nothing reads them after the plan is built).
    pub fn from_weight_file(file: WeightFile) -> Result<Recommender, RecommendError> {
        Recommender::from_parsed(file, SearchState::absent(), None)
    }

    /// [`Recommender::from_weight_file`] with the search index left in the source
    /// ([`SearchState::left`]) or, when [`SearchState::absent`], taken from the file's
    /// `search.index` tensor, when it has one.
    fn from_parsed(
        mut file: WeightFile,
        search: SearchState,
        id_index: Option<StrIndex>,
    ) -> Result<Recommender, RecommendError> {
        let mut model = Model::from_weights(&file)?;
        retain_served(&mut file);
        let plan = model.runtime_plan();
        model.drop_id_rows();
        Self::assemble(file, model, plan, search, id_index)
    }

    /// Checks the popularity prior and the scoring head against the catalog and builds
    /// the lookups. The catalog itself is checked by [`validate_metadata`], the weight
    /// format's one rule (lengths, unique ids, category range, attribute values).
    /// `search`: the index's section left in the source, or [`SearchState::absent`] to
    /// take the index from the file's `search.index` tensor, when there is one.
    fn assemble(
        mut file: WeightFile,
        model: Model,
        plan: HeadPlan,
        search: SearchState,
        id_index: Option<StrIndex>,
    ) -> Result<Recommender, RecommendError> {
        // `id_index`: the open step's, built over these ids while it checked the
        // catalogue ([`crate::format::Decoded`]); then only the rest of the metadata is
        // left to check. (Building it is most of the check: 65 ms at 1,000,000 items in
        // the browser.)
        let index = match id_index {
            Some(index) => {
                validate_trained_kinds(&file.metadata)?;
                Some(index)
            }
            None => validate_metadata_indexed(&file.metadata)?,
        };
        // The `added` dates are read once, for the new-item flags, then dropped (8 bytes
        // an item; in wasm their room is reused by what the load and requests allocate
        // next).
        let is_new = new_items(&file.metadata.items.added, file.metadata.model.n_items);
        file.metadata.items.added = OptColumn::default();
        let n = plan.n_items;
        let bad = |m: String| Err(RecommendError::Inconsistent(m));
        if let Err(e) = plan.validate() {
            return bad(format!("scoring head: {e}"));
        }
        if n != file.metadata.model.n_items {
            return bad(format!(
                "the scoring head has {n} items, the catalog {}",
                file.metadata.model.n_items
            ));
        }
        let popularity = popularity_prior(&mut file, n)?;
        let loaded = if search.is_left() {
            None
        } else {
            search::load_index(&mut file, n)?
        };
        let basket = Basket::from_weight_file(&file, n)?;
        let metadata = file.metadata;
        let search_index = match loaded {
            Some(index) => SearchState::ready(search::Searchable::new(index, &metadata)),
            None => search,
        };
        // At most MAX_ITEMS items (validated), far below the index's u32 limit.
        let Some(index) = index else {
            return bad(format!("{n} items are too many to index"));
        };
        let mut category_by_name = HashMap::new();
        let mut category_by_lower = HashMap::new();
        for (c, name) in metadata.categories.iter().enumerate() {
            category_by_name.entry(name.clone()).or_insert(c as u32);
            category_by_lower
                .entry(name.to_lowercase())
                .or_insert(c as u32);
        }
        let item_norms = blend::norms(&plan.item_vectors, plan.dim);
        Ok(Recommender {
            metadata,
            model,
            plan,
            popularity,
            kernel: CpuKernel::best(),
            index,
            category_by_name,
            category_by_lower,
            is_new,
            popularity_logit: OnceLock::new(),
            search_index,
            basket,
            item_norms,
        })
    }

    /// Where the loaded engine's memory goes: `(part, heap bytes)` for each resident
    /// structure, catalogue-sized ones first (allocated capacity; strings counted as
    /// their `String`/`Box<str>` headers plus their text; the allocator's own per-block
    /// headers and a hash map's empty buckets' keys are not counted, so the sum is a
    /// lower bound of what the allocator holds). `vitrine memory` prints it.
    pub fn memory_report(&self) -> Vec<(&'static str, usize)> {
        use std::mem::size_of;
        let strings = |v: &Vec<String>| {
            v.capacity() * size_of::<String>() + v.iter().map(String::capacity).sum::<usize>()
        };
        let map = |m: &HashMap<String, u32>| {
            // hashbrown: buckets = next power of two of capacity · 8/7, one control byte each.
            let buckets = (m.capacity() * 8 / 7).next_power_of_two();
            buckets * (size_of::<(String, u32)>() + 1)
                + m.keys().map(String::capacity).sum::<usize>()
        };
        let items = &self.metadata.items;
        let f = &self.model.features;
        let plan_layers: usize = (self.plan.layers.iter())
            .map(|(w, b)| (w.capacity() + b.capacity()) * 4)
            .sum();
        vec![
            (
                "item vectors (scoring plan)",
                self.plan.item_vectors.heap_bytes(),
            ),
            (
                "model parameters (f32)",
                self.model.params.capacity() * 4 + plan_layers + self.plan.w_out.capacity() * 4,
            ),
            (
                "item features",
                (f.category.capacity()
                    + f.price.capacity()
                    + f.price_missing.capacity()
                    + f.token_offsets.capacity()
                    + f.tokens.capacity())
                    * 4,
            ),
            (
                "transition memory",
                self.model.memory.as_ref().map_or(0, |m| {
                    (m.offsets.capacity() + m.items.capacity() + m.weights.capacity()) * 4
                }),
            ),
            ("catalogue ids", items.ids.heap_bytes()),
            ("catalogue titles", items.titles.heap_bytes()),
            (
                "catalogue attributes",
                items.category.capacity() * 4 + items.price.heap_bytes() + items.added.heap_bytes(),
            ),
            ("id → index table", self.index.heap_bytes()),
            (
                "popularity (prior and logits)",
                (self.popularity.capacity()
                    + (self.popularity_logit.get()).map_or(0, |l| l.capacity()))
                    * 4,
            ),
            ("item norms", self.item_norms.capacity() * 4),
            ("new-item flags", self.is_new.capacity() * 8),
            (
                "search index",
                self.search_index
                    .get()
                    .map_or(0, search::Searchable::heap_bytes),
            ),
            (
                "basket section",
                self.basket.as_ref().map_or(0, Basket::heap_bytes),
            ),
            (
                "categories",
                strings(&self.metadata.categories)
                    + map(&self.category_by_name)
                    + map(&self.category_by_lower),
            ),
        ]
    }

    /// Euclidean norm of each item vector of an f32 plan (empty for an int8 plan, which
    /// keeps none: see [`Recommender::item_norm`]).
    pub fn item_norms(&self) -> &[f32] {
        &self.item_norms
    }

    /// Euclidean norm of item `i`'s vector (int8 rows dequantised), `None` past the
    /// catalogue.
    pub fn item_norm(&self, i: usize) -> Option<f32> {
        match &self.plan.item_vectors {
            ItemVectors::F32(_) => self.item_norms.get(i).copied(),
            v => v.row(i, self.plan.dim).map(|r| blend::norm(&r)),
        }
    }

    /// The weight file's "frequently bought together" section, when it has one.
    pub fn basket_model(&self) -> Option<&Basket> {
        self.basket.as_ref()
    }

    /// Item vectors `[n × d]` (kept once, in the plan; int8 for an int8 weight file).
    pub fn item_vectors(&self) -> &ItemVectors {
        &self.plan.item_vectors
    }

    /// The popularity logits, computed on the first request that needs them.
    fn popularity_logit(&self) -> &[f32] {
        self.popularity_logit
            .get_or_init(|| popularity_logits(&self.popularity))
    }

    /// Number of catalog items.
    pub fn n_items(&self) -> usize {
        self.plan.n_items
    }

    /// Runs the scoring head [`WARM_UP_CALLS`] times over the first [`WARM_UP_ITEMS`]
    /// items for a zero user vector and discards the logits: nothing changes. In the
    /// browser a module's functions start in the engine's baseline compiler, and a long
    /// call (the first request over the whole catalogue) stays in that code until it
    /// returns; these short calls get the kernel's functions optimised first. The browser
    /// binding runs it while WebCrypto hashes the file.
    pub fn warm_up(&self) {
        let m = self.n_items().min(WARM_UP_ITEMS);
        let items: Vec<u32> = (0..m as u32).collect();
        let query = self.model.user_query(&vec![0.0; self.plan.dim]);
        let mut out = vec![0.0; m];
        for _ in 0..WARM_UP_CALLS {
            // Discarded; a shape error would be the first request's to report.
            let _ = score::head_logits_for(self.kernel, &self.plan, &query, &items, &mut out);
        }
    }

    /// The catalog (ids, titles, attributes).
    pub fn catalog(&self) -> &ItemCatalog {
        &self.metadata.items
    }

    /// Catalog index of a store item id.
    pub fn item_index(&self, id: &str) -> Option<u32> {
        self.index.get(&self.metadata.items.ids, id)
    }

    /// Category index of a category name (exact, else ASCII/Unicode case-insensitive).
    pub fn category_index(&self, name: &str) -> Option<u32> {
        self.category_by_name
            .get(name)
            .or_else(|| self.category_by_lower.get(&name.to_lowercase()))
            .copied()
    }

    /// Whether item `i` counts as new: its `added` date is in the newest tenth of the
    /// catalog's known dates (and strictly later than the oldest one).
    #[inline]
    pub fn is_new(&self, i: usize) -> bool {
        self.is_new
            .get(i / 64)
            .is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    /// Category name of item `i` (`"unknown"` when it has none).
    pub fn category_name(&self, i: usize) -> &str {
        let c = self.metadata.items.category.get(i).copied().unwrap_or(0) as usize;
        self.metadata
            .categories
            .get(c)
            .map(String::as_str)
            .unwrap_or(crate::features::UNKNOWN_CATEGORY)
    }

    /// Category index of item `i`.
    #[inline]
    fn category_of(&self, i: usize) -> u32 {
        self.metadata.items.category.get(i).copied().unwrap_or(0)
    }

    fn title(&self, i: usize) -> &str {
        self.metadata.items.titles.get(i).unwrap_or("")
    }

    #[inline]
    fn price(&self, i: usize) -> Option<f32> {
        self.metadata.items.price.get(i)
    }

    fn id(&self, i: usize) -> &str {
        self.metadata.items.ids.get(i).unwrap_or("")
    }

    /// Dot product of the item vectors of `a` and `b`.
    fn item_dot(&self, a: usize, b: usize) -> f32 {
        self.item_vectors().dot(a, b, self.plan.dim).unwrap_or(0.0)
    }

    /// Resolves store item ids to a history the engine reads; events whose id is not in
    /// the catalog are skipped and their ids returned (each once, first-seen order).
    pub fn resolve_history(
        &self,
        events: &[(String, EventKind, f64)],
    ) -> (Vec<HistoryEvent>, Vec<String>) {
        let mut known = Vec::with_capacity(events.len());
        let mut unknown: Vec<String> = Vec::new();
        for (id, kind, at) in events {
            match self.item_index(id) {
                Some(item) => known.push(HistoryEvent {
                    item,
                    kind: *kind,
                    at: *at,
                }),
                None => {
                    if !unknown.contains(id) {
                        unknown.push(id.clone());
                    }
                }
            }
        }
        (known, unknown)
    }

    /// Step 1: validates the options and encodes the user ([`score::encode`]).
    pub fn prepare(
        &self,
        history: &[HistoryEvent],
        options: &RecommendOptions,
    ) -> Result<Prepared, RecommendError> {
        Self::validate_numbers(options)?;
        let r = self.resolve(options, true)?;
        let hist = self.encoder_input(history, options, &r)?;
        if hist.is_empty() {
            return Ok(Prepared {
                query: None,
                options: options.clone(),
                history: hist,
                attention: Vec::new(),
            });
        }
        let enc = score::encode(&self.model, &self.plan, &hist);
        let mut attention = enc.attention;
        attention.resize(hist.len(), 0.0);
        Ok(Prepared {
            query: Some(enc.query),
            options: options.clone(),
            history: hist,
            attention,
        })
    }

    /// The encoder's input: the checked history sorted oldest first, then the
    /// context item (a view) and the basket items (cart events) at `now` (the option,
    /// else the last event's time, else 0).
    fn encoder_input(
        &self,
        history: &[HistoryEvent],
        options: &RecommendOptions,
        r: &request::Resolved,
    ) -> Result<Vec<HistoryEvent>, RecommendError> {
        let n = self.n_items();
        for (j, ev) in history.iter().enumerate() {
            if ev.item as usize >= n {
                return Err(RecommendError::UnknownItem(format!(
                    "catalog index {} (history event {j}; the catalog has {n} items)",
                    ev.item
                )));
            }
            if !ev.at.is_finite() {
                return Err(RecommendError::InvalidOption(format!(
                    "history event {j} has a non-finite time {}",
                    ev.at
                )));
            }
        }
        let mut hist = history.to_vec();
        crate::sort::sort_by(&mut hist, |a, b| a.at.total_cmp(&b.at));
        let now = options
            .now
            .or_else(|| hist.last().map(|e| e.at))
            .unwrap_or(0.0);
        let at = now;
        hist.extend(r.context.map(|item| HistoryEvent {
            item,
            kind: EventKind::View,
            at,
        }));
        hist.extend(r.basket.iter().map(|&item| HistoryEvent {
            item,
            kind: EventKind::Cart,
            at,
        }));
        Ok(hist)
    }

    /// Step 3: from the head's logits for every item (`logits.len() == n_items`; ignored
    /// when `prepared.query` is `None`), runs the pipeline: [`eligibility`] → [`blend`]
    /// → [`rank`] → [`explain`].
    ///
    /// Never fails: ids the catalog does not know are skipped, out-of-range numbers are
    /// clamped, and logits of the wrong length give an empty list.
    pub fn finish(&self, prepared: &Prepared, logits: &[f32]) -> Vec<Recommendation> {
        self.finish_logits(prepared, Cow::Borrowed(logits), &[])
    }

    /// [`Recommender::finish`] taking the logits by value: the blend is written over
    /// them, so a request holds one catalogue-sized buffer of scores, not two (the
    /// same list).
    pub fn finish_owned(&self, prepared: &Prepared, logits: Vec<f32>) -> Vec<Recommendation> {
        self.finish_logits(prepared, Cow::Owned(logits), &[])
    }

    /// [`Recommender::finish`] with the items `shown` (catalog indices) on earlier shelves
    /// of the same page left out ([`page`]).
    pub fn finish_page(
        &self,
        prepared: &Prepared,
        logits: &[f32],
        shown: &[u32],
    ) -> Vec<Recommendation> {
        self.finish_logits(prepared, Cow::Borrowed(logits), shown)
    }

    /// The pipeline of [`Recommender::finish_page`], blending into `logits` when they
    /// are owned.
    fn finish_logits(
        &self,
        prepared: &Prepared,
        logits: Cow<'_, [f32]>,
        shown: &[u32],
    ) -> Vec<Recommendation> {
        let n = self.n_items();
        let o = &prepared.options;
        let Ok(r) = self.resolve(o, false) else {
            return Vec::new();
        };
        let personal = prepared.query.is_some();
        if personal && logits.len() != n {
            return Vec::new();
        }
        let n_real = n_real(prepared, &r);

        let mut eligible = Eligibility::with_filter(self, &r.filter, &r.banned());
        if o.exclude_seen {
            eligible.exclude_seen(&prepared.history[..n_real], o.allow_repurchase);
        }
        shown.iter().for_each(|&i| eligible.ban(i));

        let new_boost = finite_or_zero(o.new_items_boost);
        let boost = |i| blend::boost_of(self, &r.boosts, i);
        let is_new = |i| self.is_new(i);
        let mut logit = match logits {
            Cow::Borrowed(l) if personal => blend::blend(n, |i| l[i], boost, is_new, new_boost),
            Cow::Borrowed(_) => {
                let pop = self.popularity_logit();
                let base = |i| pop[i];
                blend::blend(n, base, boost, is_new, new_boost)
            }
            Cow::Owned(mut z) => {
                z.resize(n, 0.0);
                if !personal {
                    z.copy_from_slice(self.popularity_logit());
                }
                blend::blend_in_place(&mut z, boost, is_new, new_boost);
                z
            }
        };
        if personal {
            score::add_memory(&self.model, &prepared.history, &mut logit);
            if let Some(b) = &self.basket {
                b.add_to(&r.basket, &mut logit);
            }
        }
        if let Some(c) = r.context {
            blend::add_context_similarity(self, c, &mut logit);
        }

        let k = o.k.clamp(1, MAX_K).min(n);
        let slots = o.promote.as_ref().map_or(0, |p| p.slots);
        let diversity = finite_or_zero(o.diversity).clamp(0.0, 1.0);
        let ranked = rank::rank(self, &logit, eligible, &r.promote, slots, k, diversity);
        self.present(prepared, &r, &ranked, |i| logit[i], boost)
    }

    /// Stage 4 and the result entries: `ranked`'s items with their reasons and scores
    /// (`logit(i)`: item `i`'s final logit; `boost(i)`: its total boost).
    fn present(
        &self,
        prepared: &Prepared,
        r: &request::Resolved,
        ranked: &rank::Ranked,
        logit: impl Fn(usize) -> f32,
        boost: impl Fn(usize) -> f32,
    ) -> Vec<Recommendation> {
        let o = &prepared.options;
        let new_boost = finite_or_zero(o.new_items_boost);
        let explainer = Explainer::new(
            self,
            Signals {
                history: &prepared.history,
                attention: &prepared.attention,
                n_real: n_real(prepared, r),
                context: r.context,
                basket: &r.basket,
                personal: prepared.query.is_some(),
            },
        );
        let placement = |pos: usize, i: usize| Placement {
            promoted: pos < ranked.n_promoted,
            boosted: boost(i) > 0.0,
            new: (new_boost > 0.0 || o.filter.new_only) && self.is_new(i),
        };
        (ranked.items.iter().enumerate())
            .map(|(pos, &i)| {
                let i = i as usize;
                let reasons = explainer.reasons(i, placement(pos, i));
                self.recommendation(i, sigmoid(logit(i)), reasons)
            })
            .collect()
    }

    /// The result entry for item `i`.
    fn recommendation(&self, i: usize, score: f32, reasons: Vec<Reason>) -> Recommendation {
        Recommendation {
            item: self.id(i).to_string(),
            index: i as u32,
            title: self.title(i).to_string(),
            category: self.category_name(i).to_string(),
            price: self.price(i),
            score,
            reasons,
        }
    }

    /// All three steps on the CPU with [`Recommender::kernel`].
    pub fn recommend(
        &self,
        history: &[HistoryEvent],
        options: &RecommendOptions,
    ) -> Result<Vec<Recommendation>, RecommendError> {
        let prepared = self.prepare(history, options)?;
        let logits = self.cpu_logits(&prepared)?;
        Ok(self.finish_owned(&prepared, logits))
    }

    /// The head's logits for every item with [`Recommender::kernel`] (zeros when
    /// `prepared` has no query: the popularity fallback needs none).
    pub fn cpu_logits(&self, prepared: &Prepared) -> Result<Vec<f32>, RecommendError> {
        let mut logits = vec![0.0; self.n_items()];
        if let Some(q) = &prepared.query {
            score::head_logits(self.kernel, &self.plan, q, &mut logits)
                .map_err(|e| RecommendError::Inconsistent(format!("scoring head: {e}")))?;
        }
        Ok(logits)
    }
}

/// How many leading events of `prepared.history` are the shopper's own: the encoder's
/// input minus the appended context and basket events.
fn n_real(prepared: &Prepared, r: &request::Resolved) -> usize {
    let appended = usize::from(r.context.is_some()) + r.basket.len();
    prepared.history.len().saturating_sub(appended)
}

/// Items [`Recommender::warm_up`] scores per call.
pub const WARM_UP_ITEMS: usize = 4096;
/// Calls [`Recommender::warm_up`] makes.
pub const WARM_UP_CALLS: usize = 3;

/// Drops the file's tensors the model has read: only the ones a [`Recommender`] reads
/// after building its model remain (popularity, search index, basket section).
fn retain_served(file: &mut WeightFile) {
    file.tensors.retain(|name, _| {
        name == POPULARITY_TENSOR
            || name == SEARCH_INDEX_TENSOR
            || crate::basket::TENSORS.contains(&name.as_str())
    });
}

/// `x`, or 0 when it is not finite.
fn finite_or_zero(x: f32) -> f32 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

/// The `stats.popularity` prior: one finite, non-negative value per item (all 1 when the
/// tensor is absent).
/// The tensor is moved out of `file`.
fn popularity_prior(file: &mut WeightFile, n: usize) -> Result<Vec<f32>, RecommendError> {
    let bad = |m: String| Err(RecommendError::Inconsistent(m));
    let Some(t) = file.tensors.remove(POPULARITY_TENSOR) else {
        return Ok(vec![1.0; n]);
    };
    match t.data {
        TensorData::F32(v) if v.len() == n => {
            if let Some(j) = v.iter().position(|x| !x.is_finite() || *x < 0.0) {
                return bad(format!(
                    "{POPULARITY_TENSOR}[{j}] = {} (must be finite and >= 0)",
                    v[j]
                ));
            }
            Ok(v)
        }
        TensorData::F32(v) => bad(format!(
            "{POPULARITY_TENSOR} has {} values for {n} items",
            v.len()
        )),
        TensorData::I32(_) | TensorData::U8(_) => bad(format!("{POPULARITY_TENSOR} is not F32")),
    }
}

/// Marks the items whose `added` date is among the newest [`NEW_ITEM_FRACTION`] of the
/// known dates (at least one item), and strictly later than the oldest known date, one
/// bit an item (bit `i % 64` of word `i / 64`). The threshold is found without a copy of the dates ([`crate::select`]).
fn new_items(added: &OptColumn<f64>, n: usize) -> Vec<u64> {
    let mut bits = vec![0u64; n.div_ceil(64)];
    let dates = || {
        added
            .as_nan_slice()
            .iter()
            .copied()
            .filter(|x| x.is_finite())
    };
    let known = dates().count();
    if known == 0 {
        return bits;
    }
    let count = ((known as f64 * NEW_ITEM_FRACTION).ceil() as usize).clamp(1, known);
    let Some(threshold) = crate::select::kth_largest(dates, count) else {
        return bits;
    };
    let oldest = dates().fold(f64::INFINITY, f64::min);
    for (i, a) in added.iter().enumerate().take(n) {
        if a.is_some_and(|a| a.is_finite() && a >= threshold && a > oldest) {
            bits[i / 64] |= 1 << (i % 64);
        }
    }
    bits
}

/// Popularity as a logit of its share: `sigmoid(logit_i) = pop_i / Σ pop` (uniform when
/// the prior is all zero), clamped away from 0 and 1.
fn popularity_logits(pop: &[f32]) -> Vec<f32> {
    let n = pop.len().max(1) as f64;
    let sum: f64 = pop.iter().map(|&x| x as f64).sum();
    pop.iter()
        .map(|&x| {
            let s = if sum > 0.0 { x as f64 / sum } else { 1.0 / n };
            let s = s.clamp(1e-12, 1.0 - 1e-7);
            (s.ln() - (1.0 - s).ln()) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! Engine logic on a hand-built catalog with synthetic head logits (no model
    //! forward pass); `tests/recommend.rs` covers the whole path on a real model.
    use super::*;
    use crate::features::ItemFeatureTable;
    use crate::model::ModelConfig;
    use std::collections::BTreeMap;
    use std::collections::HashSet;

    const N: usize = 40;
    const D: usize = 4;

    fn fake() -> Recommender {
        fake_n(N)
    }

    /// [`fake`] with `n` items.
    fn fake_n(n: usize) -> Recommender {
        let config = ModelConfig::tiny(n, 5, D);
        let items = ItemCatalog {
            ids: (0..n).map(|i| format!("I{i}")).collect(),
            titles: (0..n).map(|i| format!("Item {i}")).collect(),
            category: (0..n).map(|i| 1 + (i % 4) as u32).collect(),
            price: (0..n).map(|i| Some(i as f32)).collect(),
            added: (0..n).map(|i| Some(i as f64)).collect(),
        };
        let metadata = Metadata::for_tests(
            config.clone(),
            ["unknown", "a", "b", "c", "d"].map(String::from).to_vec(),
            items,
        );
        let mut tensors = BTreeMap::new();
        tensors.insert(
            POPULARITY_TENSOR.to_string(),
            crate::format::Tensor {
                shape: vec![n],
                data: TensorData::F32((0..n).map(|i| ((i * 7) % n) as f32).collect()),
            },
        );
        let file = WeightFile { metadata, tensors };
        let model = Model {
            config,
            features: ItemFeatureTable::default(),
            params: Vec::new(),
            memory: None,
            trained_kinds: None,
            storage: crate::format::Quantization::F32,
            id_rows: true,
            id_mix: None,
        };
        // Item i points along axis i % D with a little of axis (i + 1) % D.
        let mut v = vec![0.0; n * D];
        for i in 0..n {
            v[i * D + i % D] = 1.0;
            v[i * D + (i + 1) % D] = 0.25;
        }
        let plan = HeadPlan {
            n_items: n,
            dim: D,
            hidden: 1,
            item_vectors: v.into(),
            layers: Vec::new(),
            w_out: vec![0.0],
            b_out: 0.0,
            gpu_f16: false,
        };
        Recommender::assemble(file, model, plan, SearchState::absent(), None).unwrap()
    }

    fn prepared(o: RecommendOptions, history: Vec<HistoryEvent>, attention: Vec<f32>) -> Prepared {
        Prepared {
            query: Some(UserQuery {
                m: Vec::new(),
                a: Vec::new(),
            }),
            options: o,
            history,
            attention,
        }
    }

    fn logits() -> Vec<f32> {
        (0..N).map(|i| ((i * 13) % N) as f32 / 10.0).collect()
    }

    fn ev(item: u32, kind: EventKind) -> HistoryEvent {
        HistoryEvent {
            item,
            kind,
            at: 0.0,
        }
    }

    #[test]
    fn ranks_by_logit_with_exclusions() {
        let r = fake();
        let l = logits();
        let o = RecommendOptions {
            k: 5,
            exclude: vec!["I3".into()],
            ..RecommendOptions::default()
        };
        let p = prepared(o, vec![ev(6, EventKind::View)], vec![1.0]);
        let got: Vec<u32> = r.finish(&p, &l).iter().map(|x| x.index).collect();
        let mut want: Vec<u32> = (0..N as u32).filter(|&i| i != 3 && i != 6).collect();
        want.sort_by(|&a, &b| l[b as usize].total_cmp(&l[a as usize]));
        assert_eq!(got, want[..5]);
    }

    #[test]
    fn popularity_fallback() {
        let r = fake();
        let p = r.prepare(&[], &RecommendOptions::default()).unwrap();
        assert!(p.query.is_none());
        let recs = r.finish(&p, &[]);
        assert_eq!(recs.len(), 10);
        for w in recs.windows(2) {
            assert!(r.popularity[w[0].index as usize] >= r.popularity[w[1].index as usize]);
        }
        assert!(recs.iter().all(|x| x.reasons == vec![Reason::Popular]));
    }

    /// The popularity logits are computed by the first fallback request, not by the
    /// load, and score it as the shares' logits: `sigmoid(score) = pop_i / Σ pop`.
    #[test]
    fn popularity_logits_wait_for_the_first_fallback() {
        let r = fake();
        assert!(r.popularity_logit.get().is_none(), "computed at load");
        let p = r.prepare(&[], &RecommendOptions::default()).unwrap();
        let recs = r.finish(&p, &[]);
        assert_eq!(r.popularity_logit.get().map(Vec::len), Some(r.n_items()));
        let sum: f32 = r.popularity.iter().sum();
        for x in &recs {
            let share = r.popularity[x.index as usize] / sum;
            assert!((x.score - share).abs() < 1e-5, "{} vs {share}", x.score);
        }
    }

    #[test]
    fn owned_logits_give_the_borrowed_list() {
        let r = fake();
        let o = RecommendOptions {
            k: 12,
            boost: vec![Boost {
                category: Some("b".into()),
                weight: 0.7,
                ..Boost::default()
            }],
            new_items_boost: 0.4,
            ..RecommendOptions::default()
        };
        let personal = prepared(o.clone(), vec![ev(6, EventKind::View)], vec![1.0]);
        let mut none = prepared(o, Vec::new(), Vec::new());
        none.query = None;
        for p in [&personal, &none] {
            let want = r.finish(p, &logits());
            assert_eq!(want.len(), 12);
            assert_eq!(r.finish_owned(p, logits()), want);
        }
        assert_eq!(r.finish_owned(&none, Vec::new()), r.finish(&none, &[]));
        assert!(r.finish_owned(&personal, vec![0.0; N - 1]).is_empty());
    }

    #[test]
    fn diversity_one_round_robins_categories() {
        let r = fake();
        let o = RecommendOptions {
            k: 8,
            diversity: 1.0,
            ..RecommendOptions::default()
        };
        let p = prepared(o, vec![ev(0, EventKind::View)], vec![1.0]);
        let recs = r.finish(&p, &logits());
        let cats: Vec<&str> = recs.iter().map(|x| x.category.as_str()).collect();
        let first: HashSet<&str> = cats[..4].iter().copied().collect();
        let second: HashSet<&str> = cats[4..].iter().copied().collect();
        assert_eq!(first.len(), 4, "{cats:?}");
        assert_eq!(second.len(), 4, "{cats:?}");
    }

    #[test]
    fn history_reason_weights_follow_attribution() {
        let r = fake();
        // Item 4 lies along axis 0 (like item 0) and not at all along axis 2 (item 2).
        let p = prepared(
            RecommendOptions {
                k: N - 2,
                ..RecommendOptions::default()
            },
            vec![ev(0, EventKind::View), ev(2, EventKind::Cart)],
            vec![0.5, 0.5],
        );
        let recs = r.finish(&p, &logits());
        let four = recs.iter().find(|x| x.index == 4).unwrap();
        match &four.reasons[0] {
            Reason::History { item, weight, .. } => {
                assert_eq!(item, "I0");
                assert!((*weight - 1.0).abs() < 1e-6);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            four.reasons.len(),
            1,
            "item 2 contributes nothing to item 4"
        );
    }

    #[test]
    fn promote_boost_and_price_filter() {
        let r = fake();
        let o = RecommendOptions {
            k: 4,
            promote: Some(Promote {
                ids: vec!["I39".into(), "I1".into()],
                slots: 1,
            }),
            boost: vec![Boost {
                ids: vec!["I2".into()],
                category: None,
                weight: 50.0,
            }],
            filter: Filter {
                price_min: Some(1.0),
                ..Filter::default()
            },
            ..RecommendOptions::default()
        };
        let p = prepared(o, vec![ev(0, EventKind::View)], vec![1.0]);
        let recs = r.finish(&p, &logits());
        assert_eq!(recs[0].index, 39);
        assert_eq!(recs[0].reasons[0], Reason::Promoted);
        assert_eq!(recs[1].index, 2);
        assert!(recs[1].reasons.contains(&Reason::Boosted));
        assert!(recs.iter().all(|x| x.price.unwrap() >= 1.0));
    }

    #[test]
    fn rank_top_k_respects_the_mask_and_breaks_ties_by_index() {
        let s = [1.0, 2.0, 1.0, 2.0, 5.0, f32::NAN];
        let mask = [true, true, true, true, false, true];
        let mask = |i: u32| mask[i as usize];
        assert_eq!(rank::top_k(&s, mask, 6), vec![1, 3, 0, 2, 5]);
        assert_eq!(rank::top_k(&s, mask, 2), vec![1, 3]);
        assert!(rank::top_k(&s, mask, 0).is_empty());
    }

    #[test]
    fn eligibility_without_a_request() {
        let r = fake();
        let filter = Filter {
            categories: vec!["A".into(), "ghost".into()],
            price_max: Some(20.0),
            ..Filter::default()
        };
        let e = Eligibility::new(&r, &filter, &[4, 999]);
        let got: Vec<u32> = (0..N as u32).filter(|&i| e.is_eligible(i)).collect();
        // Category "a" is index 1: items i with i % 4 == 0, priced i <= 20, minus item 4.
        assert_eq!(got, vec![0, 8, 12, 16, 20]);
        let mut e = Eligibility::new(&r, &Filter::default(), &[]);
        e.exclude_seen(&[ev(3, EventKind::View), ev(5, EventKind::Purchase)], true);
        assert!(!e.is_eligible(3) && e.is_eligible(5) && e.len() == N);
        assert!(!e.is_eligible(N as u32) && !e.is_eligible(u32::MAX));
        e.ban(N as u32 + 70);
        assert_eq!((0..N as u32).filter(|&i| e.is_eligible(i)).count(), N - 1);
    }

    #[test]
    fn a_filter_without_rules_admits_exactly_the_catalogue() {
        for n in [1, 40, 63, 64, 65, 128] {
            let r = fake_n(n);
            let all = Eligibility::new(&r, &Filter::default(), &[]);
            assert_eq!(
                (0..n as u32).filter(|&i| all.is_eligible(i)).count(),
                n,
                "n = {n}"
            );
            assert!(
                !all.is_eligible(n as u32) && !all.is_eligible(u32::MAX),
                "n = {n}"
            );
            // A bound every item passes goes item by item: the same mask.
            let filter = Filter {
                price_max: Some(1e9),
                ..Filter::default()
            };
            assert_eq!(Eligibility::new(&r, &filter, &[]), all, "n = {n}");
        }
    }

    #[test]
    fn new_items_are_the_newest_tenth() {
        let flags = |bits: Vec<u64>, n: usize| -> Vec<bool> {
            assert_eq!(bits.len(), n.div_ceil(64));
            (0..n).map(|i| bits[i / 64] >> (i % 64) & 1 == 1).collect()
        };
        let added: OptColumn<f64> = (0..20).map(|i| Some(i as f64)).collect();
        let new = flags(new_items(&added, 20), 20);
        assert_eq!(new.iter().filter(|&&b| b).count(), 2);
        assert!(new[18] && new[19]);
        let same: OptColumn<f64> = vec![Some(5.0); 10].into();
        assert!(flags(new_items(&same, 10), 10).iter().all(|&b| !b));
        assert!(flags(new_items(&OptColumn::none(3), 3), 3)
            .iter()
            .all(|&b| !b));
        // Against sorting a copy of the dates (the definition), on columns with gaps,
        // ties and negative dates, across word boundaries.
        let mut rng = crate::rng::SplitMix64::new(3);
        for n in [1usize, 63, 64, 65, 200, 1000] {
            let added: OptColumn<f64> = (0..n)
                .map(|_| match rng.below(5) {
                    0 => None,
                    1 => Some(-(rng.below(50) as f64)),
                    _ => Some(rng.below(300) as f64 * 86_400.0),
                })
                .collect();
            let mut dates: Vec<f64> = added.iter().flatten().collect();
            dates.sort_by(|a, b| b.total_cmp(a));
            let want: Vec<bool> = match dates.len() {
                0 => vec![false; n],
                k => {
                    let count = ((k as f64 * NEW_ITEM_FRACTION).ceil() as usize).clamp(1, k);
                    let (threshold, oldest) = (dates[count - 1], dates[k - 1]);
                    (0..n)
                        .map(|i| added.get(i).is_some_and(|a| a >= threshold && a > oldest))
                        .collect()
                }
            };
            assert_eq!(flags(new_items(&added, n), n), want, "n = {n}");
        }
    }
}
