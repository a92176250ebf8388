//! The recommendation engine behind `recommend()`: turns a history and options into a
//! ranked, explained list, with the same code in the CLI and in the browser.
//!
//! Scenarios: for you (history), similar items (a context item), frequently bought
//! together (the cart), cross-category (filters, diversity), new items (cold-start content
//! vectors), promotions (boost, promote). Every result carries its reasons.
//!
//! Scoring is split in three steps so the browser can run the middle one on the GPU:
//! [`Recommender::prepare`] (validate options, encode the user, build the head's user
//! query), the head's logits for every item (any [`crate::kernels`] path), and
//! [`Recommender::finish`] (blend, filter, rank, explain). [`Recommender::recommend`] does
//! all three on the CPU.
use serde::{Deserialize, Serialize};

use crate::format::{FormatError, ItemCatalog, Metadata, WeightFile};
use crate::history::{EventKind, HistoryEvent};
use crate::kernels::{CpuKernel, HeadPlan, UserQuery};
use crate::model::{Model, ModelError};

/// Everything that can go wrong serving a recommendation.
#[derive(Debug, thiserror::Error)]
pub enum RecommendError {
    /// The weight file is unreadable or invalid.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The weight file's tensors do not make a model.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// An item id in the options or history is not in the catalog.
    #[error("unknown item id {0:?}")]
    UnknownItem(String),
    /// An option is out of range or inconsistent (the message names it).
    #[error("invalid option: {0}")]
    InvalidOption(String),
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
    /// Similar to the context item.
    Similar {
        /// Context item id.
        item: String,
        /// Its title.
        title: String,
    },
    /// Often bought with an item in the basket.
    BoughtTogether {
        /// Basket item id.
        item: String,
        /// Its title.
        title: String,
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
    /// The weight file's metadata.
    pub metadata: Metadata,
    /// The model.
    pub model: Model,
    /// Item vectors `[n × d]`.
    pub item_vectors: Vec<f32>,
    /// The head's item-side plan.
    pub plan: HeadPlan,
    /// Popularity prior per item (from the `stats.popularity` tensor).
    pub popularity: Vec<f32>,
    /// CPU kernel used by [`Recommender::recommend`].
    pub kernel: CpuKernel,
}

impl Recommender {
    /// Parses, validates and loads a weight file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Recommender, RecommendError> {
        let _ = bytes;
        todo!("engine helper")
    }

    /// Loads from a parsed weight file.
    pub fn from_weight_file(file: WeightFile) -> Result<Recommender, RecommendError> {
        let _ = file;
        todo!("engine helper")
    }

    /// Number of catalog items.
    pub fn n_items(&self) -> usize {
        self.plan.n_items
    }

    /// The catalog (ids, titles, attributes).
    pub fn catalog(&self) -> &ItemCatalog {
        &self.metadata.items
    }

    /// Catalog index of a store item id.
    pub fn item_index(&self, id: &str) -> Option<u32> {
        let _ = id;
        todo!("engine helper")
    }

    /// Step 1: validates the options and encodes the user.
    pub fn prepare(
        &self,
        history: &[HistoryEvent],
        options: &RecommendOptions,
    ) -> Result<Prepared, RecommendError> {
        let _ = (history, options);
        todo!("engine helper")
    }

    /// Step 3: from the head's logits for every item (`logits.len() == n_items`; ignored
    /// when `prepared.query` is `None`), blends, filters, ranks and explains.
    pub fn finish(&self, prepared: &Prepared, logits: &[f32]) -> Vec<Recommendation> {
        let _ = (prepared, logits);
        todo!("engine helper")
    }

    /// All three steps on the CPU with [`Recommender::kernel`].
    pub fn recommend(
        &self,
        history: &[HistoryEvent],
        options: &RecommendOptions,
    ) -> Result<Vec<Recommendation>, RecommendError> {
        let prepared = self.prepare(history, options)?;
        let mut logits = vec![0.0; self.n_items()];
        if let Some(q) = &prepared.query {
            self.kernel.scores(&self.plan, q, &mut logits);
        }
        Ok(self.finish(&prepared, &logits))
    }
}
