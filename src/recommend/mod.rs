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
//!
//! Rules, in the order [`Recommender::finish`] applies them:
//! - The user encoder reads the history (sorted oldest first), then the context item as a
//!   view and the basket items as cart events, all at `now`. No history, context or basket
//!   at all: the popularity prior ranks instead (score = the item's popularity share).
//! - Left out: `exclude`, the context and basket items, and with `excludeSeen` every
//!   history item, except, with `allowRepurchase`, items the shopper bought.
//! - Filters: category names (exact, else case-insensitive) and price (items without a
//!   price fail any price bound).
//! - Final logit = head logit (or popularity logit) + boosts (each boost once per item) +
//!   `newItemsBoost` for new items (`added` in the newest tenth of the catalog's dates);
//!   score = sigmoid(final logit).
//! - `promote` pins up to `slots` eligible promoted ids, in their order, first; the rest
//!   is the top of the ranking, re-ranked greedily for `diversity` (a repeat of a category
//!   costs `diversity ×` the pool's logit spread per item already taken from it).
//! - Reasons: promoted, then bought-together (the basket item whose vector is closest by
//!   dot product) / similar, then history events by attribution (attention × positive
//!   item-vector dot), or popular; then boosted and new.
use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::format::{FormatError, ItemCatalog, Metadata, TensorData, WeightFile};
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
    /// The weight file's catalog or statistics do not match its model (wrong lengths,
    /// duplicate ids, bad popularity values).
    #[error("inconsistent weight file: {0}")]
    Inconsistent(String),
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
    /// The head's item-side plan (it holds the item vectors, see
    /// [`Recommender::item_vectors`]).
    pub plan: HeadPlan,
    /// Popularity prior per item (from the `stats.popularity` tensor).
    pub popularity: Vec<f32>,
    /// CPU kernel used by [`Recommender::recommend`].
    pub kernel: CpuKernel,
    /// Store item id → catalog index.
    index: HashMap<String, u32>,
    /// Category name → category index (exact names).
    category_by_name: HashMap<String, u32>,
    /// Lower-cased category name → category index (case-insensitive fallback).
    category_by_lower: HashMap<String, u32>,
    /// Items whose `added` date is in the newest tenth of the catalog.
    is_new: Vec<bool>,
    /// Popularity share as a logit (the fallback ranking and its score).
    popularity_logit: Vec<f32>,
}

/// Largest `k` a call may ask for.
pub const MAX_K: usize = 1000;
/// How many top candidates the diversity re-ranking considers.
pub const DIVERSITY_POOL: usize = 5000;
/// Share of the catalog (by `added` date, newest first) that counts as "new".
pub const NEW_ITEM_FRACTION: f64 = 0.1;
/// Name of the popularity-prior tensor in the weight file.
pub const POPULARITY_TENSOR: &str = "stats.popularity";

/// Options with every id and category name resolved to catalog indices.
#[derive(Debug, Default)]
struct Resolved {
    context: Option<u32>,
    basket: Vec<u32>,
    exclude: Vec<u32>,
    /// `Some(mask)` over category indices when `filter.categories` is non-empty.
    only_categories: Option<Vec<bool>>,
    exclude_categories: Vec<u32>,
    /// (item ids, category, weight) per boost.
    boosts: Vec<(Vec<u32>, Option<u32>, f32)>,
    promote: Vec<u32>,
}

impl Recommender {
    /// Parses, validates and loads a weight file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Recommender, RecommendError> {
        let file = WeightFile::from_bytes(bytes)?;
        Recommender::from_weight_file(file)
    }

    /// Loads from a parsed weight file.
    ///
    /// Peak memory is kept near two catalog-sized `[n × d]` buffers besides the file:
    /// once the model holds its parameters, the file's copies are dropped (only the
    /// catalog metadata and the popularity prior are read after that), and the item
    /// vectors move into the scoring plan.
    pub fn from_weight_file(mut file: WeightFile) -> Result<Recommender, RecommendError> {
        let model = Model::from_weights(&file)?;
        file.tensors.retain(|name, _| name == POPULARITY_TENSOR);
        let plan = model.head_plan(model.item_vectors());
        Self::assemble(file, model, plan)
    }

    /// Checks the catalog and popularity prior against the model and builds the lookups.
    fn assemble(
        file: WeightFile,
        model: Model,
        plan: HeadPlan,
    ) -> Result<Recommender, RecommendError> {
        let n = plan.n_items;
        let bad = |m: String| Err(RecommendError::Inconsistent(m));
        if let Err(e) = plan.validate() {
            return bad(format!("scoring head: {e}"));
        }
        if n == 0 {
            return bad("the catalog is empty".into());
        }
        if plan.item_vectors.len() != n * plan.dim {
            return bad(format!(
                "{} item-vector values for {n} items of width {}",
                plan.item_vectors.len(),
                plan.dim
            ));
        }
        let popularity = match file.tensors.get(POPULARITY_TENSOR) {
            None => vec![1.0; n],
            Some(t) => match &t.data {
                TensorData::F32(v) if v.len() == n => {
                    if let Some(j) = v.iter().position(|x| !x.is_finite() || *x < 0.0) {
                        return bad(format!(
                            "{POPULARITY_TENSOR}[{j}] = {} (must be finite and >= 0)",
                            v[j]
                        ));
                    }
                    v.clone()
                }
                TensorData::F32(v) => {
                    return bad(format!(
                        "{POPULARITY_TENSOR} has {} values for {n} items",
                        v.len()
                    ))
                }
                TensorData::I32(_) => return bad(format!("{POPULARITY_TENSOR} is not F32")),
            },
        };
        let metadata = file.metadata;
        let items = &metadata.items;
        if items.ids.len() != n {
            return bad(format!("{} item ids for {n} items", items.ids.len()));
        }
        for (name, len) in [
            ("titles", items.titles.len()),
            ("category", items.category.len()),
            ("price", items.price.len()),
            ("added", items.added.len()),
        ] {
            if len != n && len != 0 {
                return bad(format!("catalog {name} has {len} entries for {n} items"));
            }
        }
        let n_cat = metadata.categories.len();
        if let Some(j) = items.category.iter().position(|&c| c as usize >= n_cat) {
            return bad(format!(
                "item {j} has category index {} but there are {n_cat} categories",
                items.category[j]
            ));
        }
        let mut index = HashMap::with_capacity(n);
        for (i, id) in items.ids.iter().enumerate() {
            if index.insert(id.clone(), i as u32).is_some() {
                return bad(format!("item id {id:?} appears twice"));
            }
        }
        let mut category_by_name = HashMap::new();
        let mut category_by_lower = HashMap::new();
        for (c, name) in metadata.categories.iter().enumerate() {
            category_by_name.entry(name.clone()).or_insert(c as u32);
            category_by_lower
                .entry(name.to_lowercase())
                .or_insert(c as u32);
        }
        let is_new = new_items(&items.added, n);
        let popularity_logit = popularity_logits(&popularity);
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
            popularity_logit,
        })
    }

    /// Item vectors `[n × d]` (kept once, in the plan).
    pub fn item_vectors(&self) -> &[f32] {
        &self.plan.item_vectors
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
        self.index.get(id).copied()
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
    pub fn is_new(&self, i: usize) -> bool {
        self.is_new.get(i).copied().unwrap_or(false)
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
    fn category_of(&self, i: usize) -> u32 {
        self.metadata.items.category.get(i).copied().unwrap_or(0)
    }

    fn title(&self, i: usize) -> &str {
        self.metadata
            .items
            .titles
            .get(i)
            .map(String::as_str)
            .unwrap_or("")
    }

    fn price(&self, i: usize) -> Option<f32> {
        self.metadata.items.price.get(i).copied().flatten()
    }

    fn id(&self, i: usize) -> &str {
        self.metadata
            .items
            .ids
            .get(i)
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Dot product of the item vectors of `a` and `b`.
    fn item_dot(&self, a: usize, b: usize) -> f32 {
        let d = self.plan.dim;
        match (
            self.item_vectors().get(a * d..(a + 1) * d),
            self.item_vectors().get(b * d..(b + 1) * d),
        ) {
            (Some(x), Some(y)) => x.iter().zip(y).map(|(p, q)| p * q).sum(),
            _ => 0.0,
        }
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

    /// Resolves ids and category names. `strict`: unknown ones are errors; otherwise
    /// they are skipped (used by [`Recommender::finish`], which must not fail).
    fn resolve(&self, o: &RecommendOptions, strict: bool) -> Result<Resolved, RecommendError> {
        let item = |id: &str, out: &mut Vec<u32>| -> Result<(), RecommendError> {
            match self.item_index(id) {
                Some(i) => out.push(i),
                None if strict => return Err(RecommendError::UnknownItem(id.to_string())),
                None => {}
            }
            Ok(())
        };
        let cat = |name: &str, field: &str| -> Result<Option<u32>, RecommendError> {
            match self.category_index(name) {
                Some(c) => Ok(Some(c)),
                None if strict => Err(RecommendError::InvalidOption(format!(
                    "{field}: unknown category {name:?}"
                ))),
                None => Ok(None),
            }
        };
        let mut r = Resolved::default();
        if let Some(c) = &o.context {
            let mut v = Vec::new();
            item(c, &mut v)?;
            r.context = v.first().copied();
        }
        for id in &o.basket {
            item(id, &mut r.basket)?;
        }
        for id in &o.exclude {
            item(id, &mut r.exclude)?;
        }
        if !o.filter.categories.is_empty() {
            let mut mask = vec![false; self.metadata.categories.len().max(1)];
            for name in &o.filter.categories {
                if let Some(c) = cat(name, "filter.categories")? {
                    if let Some(m) = mask.get_mut(c as usize) {
                        *m = true;
                    }
                }
            }
            r.only_categories = Some(mask);
        }
        for name in &o.filter.exclude_categories {
            if let Some(c) = cat(name, "filter.excludeCategories")? {
                r.exclude_categories.push(c);
            }
        }
        for (j, b) in o.boost.iter().enumerate() {
            let mut ids = Vec::new();
            for id in &b.ids {
                item(id, &mut ids)?;
            }
            ids.sort_unstable();
            ids.dedup();
            let category = match &b.category {
                Some(name) => cat(name, &format!("boost[{j}].category"))?,
                None => None,
            };
            r.boosts.push((ids, category, b.weight));
        }
        if let Some(p) = &o.promote {
            for id in &p.ids {
                item(id, &mut r.promote)?;
            }
        }
        Ok(r)
    }

    /// Range and consistency checks on the numeric options.
    fn validate_numbers(o: &RecommendOptions) -> Result<(), RecommendError> {
        let invalid = |m: String| Err(RecommendError::InvalidOption(m));
        if o.k == 0 || o.k > MAX_K {
            return invalid(format!("k must be between 1 and {MAX_K}, got {}", o.k));
        }
        if !(o.diversity.is_finite() && (0.0..=1.0).contains(&o.diversity)) {
            return invalid(format!(
                "diversity must be between 0 and 1, got {}",
                o.diversity
            ));
        }
        if !o.new_items_boost.is_finite() {
            return invalid(format!(
                "newItemsBoost must be a finite number, got {}",
                o.new_items_boost
            ));
        }
        if let Some(now) = o.now {
            if !now.is_finite() {
                return invalid(format!("now must be a finite number, got {now}"));
            }
        }
        for (name, v) in [
            ("filter.priceMin", o.filter.price_min),
            ("filter.priceMax", o.filter.price_max),
        ] {
            if let Some(v) = v {
                if !v.is_finite() {
                    return invalid(format!("{name} must be a finite number, got {v}"));
                }
            }
        }
        if let (Some(lo), Some(hi)) = (o.filter.price_min, o.filter.price_max) {
            if lo > hi {
                return invalid(format!(
                    "filter.priceMin ({lo}) is greater than filter.priceMax ({hi})"
                ));
            }
        }
        for (j, b) in o.boost.iter().enumerate() {
            if !b.weight.is_finite() {
                return invalid(format!(
                    "boost[{j}].weight must be a finite number, got {}",
                    b.weight
                ));
            }
            if b.ids.is_empty() && b.category.is_none() {
                return invalid(format!("boost[{j}] names neither ids nor a category"));
            }
        }
        Ok(())
    }

    /// Step 1: validates the options and encodes the user.
    pub fn prepare(
        &self,
        history: &[HistoryEvent],
        options: &RecommendOptions,
    ) -> Result<Prepared, RecommendError> {
        Self::validate_numbers(options)?;
        let r = self.resolve(options, true)?;
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
        hist.sort_by(|a, b| a.at.total_cmp(&b.at));
        let now = options
            .now
            .or_else(|| hist.last().map(|e| e.at))
            .unwrap_or(0.0);
        if let Some(c) = r.context {
            hist.push(HistoryEvent {
                item: c,
                kind: EventKind::View,
                at: now,
            });
        }
        for &b in &r.basket {
            hist.push(HistoryEvent {
                item: b,
                kind: EventKind::Cart,
                at: now,
            });
        }
        if hist.is_empty() {
            return Ok(Prepared {
                query: None,
                options: options.clone(),
                history: hist,
                attention: Vec::new(),
            });
        }
        let enc = self.model.encode_user(self.item_vectors(), &hist, now);
        let query = self.model.user_query(&enc.u);
        let mut attention = enc.attention;
        attention.resize(hist.len(), 0.0);
        Ok(Prepared {
            query: Some(query),
            options: options.clone(),
            history: hist,
            attention,
        })
    }

    /// Step 3: from the head's logits for every item (`logits.len() == n_items`; ignored
    /// when `prepared.query` is `None`), blends, filters, ranks and explains.
    ///
    /// Never fails: ids the catalog does not know are skipped, out-of-range numbers are
    /// clamped, and logits of the wrong length give an empty list.
    pub fn finish(&self, prepared: &Prepared, logits: &[f32]) -> Vec<Recommendation> {
        let n = self.n_items();
        let o = &prepared.options;
        let Ok(r) = self.resolve(o, false) else {
            return Vec::new();
        };
        let personal = prepared.query.is_some();
        if personal && logits.len() != n {
            return Vec::new();
        }
        let k = o.k.clamp(1, MAX_K).min(n);
        let diversity = if o.diversity.is_finite() {
            o.diversity.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let new_boost = if o.new_items_boost.is_finite() {
            o.new_items_boost
        } else {
            0.0
        };

        // The history the shopper actually has (the encoder's input minus the appended
        // context and basket events).
        let appended = usize::from(r.context.is_some()) + r.basket.len();
        let n_real = prepared.history.len().saturating_sub(appended);
        let real = &prepared.history[..n_real];

        // Eligibility: exclusions and filters.
        let mut eligible = vec![true; n];
        let mut ban = |i: u32| {
            if let Some(e) = eligible.get_mut(i as usize) {
                *e = false;
            }
        };
        r.exclude.iter().for_each(|&i| ban(i));
        r.context.into_iter().for_each(&mut ban);
        r.basket.iter().for_each(|&i| ban(i));
        if o.exclude_seen {
            let purchased: HashSet<u32> = real
                .iter()
                .filter(|e| e.kind == EventKind::Purchase)
                .map(|e| e.item)
                .collect();
            for e in real {
                if !(o.allow_repurchase && purchased.contains(&e.item)) {
                    ban(e.item);
                }
            }
        }
        let price_lo = o.filter.price_min.filter(|v| v.is_finite());
        let price_hi = o.filter.price_max.filter(|v| v.is_finite());
        for (i, e) in eligible.iter_mut().enumerate() {
            if !*e {
                continue;
            }
            let c = self.category_of(i);
            if let Some(mask) = &r.only_categories {
                if !mask.get(c as usize).copied().unwrap_or(false) {
                    *e = false;
                    continue;
                }
            }
            if r.exclude_categories.contains(&c) {
                *e = false;
                continue;
            }
            if price_lo.is_some() || price_hi.is_some() {
                match self.price(i) {
                    Some(p) if p.is_finite() => {
                        if price_lo.is_some_and(|lo| p < lo) || price_hi.is_some_and(|hi| p > hi) {
                            *e = false;
                        }
                    }
                    _ => *e = false,
                }
            }
        }

        // Final logits: head (or popularity) + boosts + new-item boost.
        let mut boost = vec![0.0f32; n];
        for (ids, category, w) in &r.boosts {
            if !w.is_finite() {
                continue;
            }
            // Each item gets a boost's weight once, whether named, in the category, or both.
            for (i, b) in boost.iter_mut().enumerate() {
                let named = ids.binary_search(&(i as u32)).is_ok();
                let in_category = category.is_some_and(|c| self.category_of(i) == c);
                if named || in_category {
                    *b += w;
                }
            }
        }
        let mut logit: Vec<f32> = (0..n)
            .map(|i| {
                let base = if personal {
                    logits[i]
                } else {
                    self.popularity_logit.get(i).copied().unwrap_or(0.0)
                };
                let base = if base.is_nan() {
                    f32::NEG_INFINITY
                } else {
                    base
                };
                let new = if self.is_new(i) { new_boost } else { 0.0 };
                let x = base + boost[i] + new;
                // NaN (e.g. inf - inf) sorts last; -0.0 becomes +0.0 so ties are ties.
                if x.is_nan() {
                    f32::NEG_INFINITY
                } else {
                    x + 0.0
                }
            })
            .collect();
        // The model's transition memory (its "wide" part) over the encoder's input.
        if personal {
            self.model.add_memory(&prepared.history, &mut logit);
        }

        // Promoted items take the first slots.
        let slots = o.promote.as_ref().map_or(0, |p| p.slots).min(k);
        let mut picked: Vec<u32> = Vec::with_capacity(k);
        for &p in &r.promote {
            if picked.len() >= slots {
                break;
            }
            if eligible[p as usize] && !picked.contains(&p) {
                picked.push(p);
            }
        }
        let n_promoted = picked.len();
        for &p in &picked {
            eligible[p as usize] = false;
        }
        let candidates: Vec<u32> = (0..n as u32).filter(|&i| eligible[i as usize]).collect();
        let rest = k - n_promoted;
        if diversity > 0.0 {
            let pool = top_k_indices(&logit, candidates, rest.max(DIVERSITY_POOL));
            let counts = picked.iter().fold(HashMap::new(), |mut m, &i| {
                *m.entry(self.category_of(i as usize)).or_insert(0usize) += 1;
                m
            });
            picked.extend(self.diversify(&pool, &logit, rest, diversity, counts));
        } else {
            picked.extend(top_k_indices(&logit, candidates, rest));
        }

        // Explanations.
        let attribution_ctx = Attribution::new(prepared, n_real);
        picked
            .iter()
            .enumerate()
            .map(|(pos, &i)| {
                let iu = i as usize;
                let mut reasons = Vec::new();
                if pos < n_promoted {
                    reasons.push(Reason::Promoted);
                }
                if !r.basket.is_empty() {
                    let best = r
                        .basket
                        .iter()
                        .copied()
                        .map(|b| (b, self.item_dot(b as usize, iu)))
                        .fold(None::<(u32, f32)>, |acc, (b, d)| match acc {
                            Some((_, bd)) if bd >= d || d.is_nan() => acc,
                            _ => Some((b, d)),
                        });
                    if let Some((b, _)) = best {
                        reasons.push(Reason::BoughtTogether {
                            item: self.id(b as usize).to_string(),
                            title: self.title(b as usize).to_string(),
                        });
                    }
                }
                if let Some(c) = r.context {
                    reasons.push(Reason::Similar {
                        item: self.id(c as usize).to_string(),
                        title: self.title(c as usize).to_string(),
                    });
                }
                if personal && n_real > 0 {
                    let scenario = r.context.is_some() || !r.basket.is_empty();
                    reasons.extend(self.history_reasons(prepared, &attribution_ctx, iu, scenario));
                }
                if !personal {
                    reasons.push(Reason::Popular);
                }
                if boost[iu] > 0.0 {
                    reasons.push(Reason::Boosted);
                }
                if new_boost > 0.0 && self.is_new(iu) {
                    reasons.push(Reason::New);
                }
                if reasons.is_empty() {
                    reasons.push(Reason::Popular);
                }
                Recommendation {
                    item: self.id(iu).to_string(),
                    index: i,
                    title: self.title(iu).to_string(),
                    category: self.category_name(iu).to_string(),
                    price: self.price(iu),
                    score: sigmoid(logit[iu]),
                    reasons,
                }
            })
            .collect()
    }

    /// Greedy category diversification over `pool` (sorted best first): each step takes
    /// the item maximising `logit − diversity × unit × (items already taken from its
    /// category)`, where `unit` is the logit spread of the pool, so `diversity = 1` never
    /// repeats a category while another one still has candidates.
    fn diversify(
        &self,
        pool: &[u32],
        logit: &[f32],
        k: usize,
        diversity: f32,
        mut counts: HashMap<u32, usize>,
    ) -> Vec<u32> {
        let finite = pool
            .iter()
            .map(|&i| logit[i as usize])
            .filter(|x| x.is_finite());
        let (lo, hi) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(x), hi.max(x))
        });
        let spread = if hi >= lo { hi - lo } else { 0.0 };
        let unit = spread * 1.001 + 1e-3;
        // Per category, its candidates best first.
        let mut order: Vec<u32> = Vec::new();
        let mut groups: HashMap<u32, Vec<u32>> = HashMap::new();
        for &i in pool {
            let c = self.category_of(i as usize);
            groups
                .entry(c)
                .or_insert_with(|| {
                    order.push(c);
                    Vec::new()
                })
                .push(i);
        }
        let mut head: HashMap<u32, usize> = order.iter().map(|&c| (c, 0)).collect();
        let mut out = Vec::with_capacity(k);
        while out.len() < k {
            let mut best: Option<(f32, f32, u32, u32)> = None; // (adjusted, raw, item, cat)
            for &c in &order {
                let h = head[&c];
                let Some(&i) = groups[&c].get(h) else {
                    continue;
                };
                let raw = logit[i as usize];
                let taken = counts.get(&c).copied().unwrap_or(0) as f32;
                let adj = raw - diversity * unit * taken;
                let better = match best {
                    None => true,
                    Some((ba, br, bi, _)) => adj
                        .total_cmp(&ba)
                        .then(raw.total_cmp(&br))
                        .then(bi.cmp(&i))
                        .is_gt(),
                };
                if better {
                    best = Some((adj, raw, i, c));
                }
            }
            let Some((_, _, i, c)) = best else { break };
            out.push(i);
            *head.get_mut(&c).expect("category has a head") += 1;
            *counts.entry(c).or_insert(0) += 1;
        }
        out
    }

    /// `Reason::History` entries for item `i`: the 1–2 shopper history events (by item)
    /// with the largest attribution `attention_j × max(0, v_j · v_i)`, normalised over
    /// the encoded events. In the context/basket scenarios (`scenario`), only events
    /// with a weight of at least 0.2 are named.
    fn history_reasons(
        &self,
        prepared: &Prepared,
        attr: &Attribution,
        i: usize,
        scenario: bool,
    ) -> Vec<Reason> {
        let hist = &prepared.history;
        let raw: Vec<f32> = hist
            .iter()
            .enumerate()
            .map(|(j, e)| {
                let a = attr.attention[j];
                let d = self.item_dot(e.item as usize, i);
                let x = a * d.max(0.0);
                if x.is_finite() {
                    x
                } else {
                    0.0
                }
            })
            .collect();
        let total: f32 = raw.iter().sum();
        let weights: Vec<f32> = if total > 0.0 && total.is_finite() {
            raw.iter().map(|x| x / total).collect()
        } else {
            attr.fallback.clone()
        };
        // Aggregate per item over the shopper's own events.
        let mut per_item: Vec<(u32, f32, EventKind, f32)> = Vec::new(); // item, sum, kind of best event, best
        for (j, e) in hist.iter().take(attr.n_real).enumerate() {
            let w = weights[j];
            match per_item.iter_mut().find(|p| p.0 == e.item) {
                Some(p) => {
                    p.1 += w;
                    if w > p.3 {
                        p.2 = e.kind;
                        p.3 = w;
                    }
                }
                None => per_item.push((e.item, w, e.kind, w)),
            }
        }
        per_item.sort_by(|a, b| b.1.total_cmp(&a.1));
        per_item
            .iter()
            .enumerate()
            .filter(|(rank, p)| {
                if scenario {
                    *rank < 2 && p.1 >= 0.2
                } else {
                    *rank == 0 || (*rank < 2 && p.1 > 0.0)
                }
            })
            .filter(|(_, p)| (p.0 as usize) < self.n_items())
            .map(|(_, p)| Reason::History {
                item: self.id(p.0 as usize).to_string(),
                title: self.title(p.0 as usize).to_string(),
                event: p.2,
                weight: p.1.clamp(0.0, 1.0),
            })
            .collect()
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
            self.kernel
                .try_scores(&self.plan, q, &mut logits)
                .map_err(|e| RecommendError::Inconsistent(format!("scoring head: {e}")))?;
        }
        Ok(self.finish(&prepared, &logits))
    }
}

/// Per-request attention data shared by every item's explanation.
struct Attribution {
    /// Attention per encoded event (sanitised, aligned with `Prepared::history`).
    attention: Vec<f32>,
    /// Weights used when no event has a positive attribution: attention normalised over
    /// the shopper's events, or uniform.
    fallback: Vec<f32>,
    /// Number of the shopper's own events (the rest are context/basket).
    n_real: usize,
}

impl Attribution {
    fn new(prepared: &Prepared, n_real: usize) -> Attribution {
        let len = prepared.history.len();
        let attention: Vec<f32> = (0..len)
            .map(|j| {
                let a = prepared.attention.get(j).copied().unwrap_or(0.0);
                if a.is_finite() && a > 0.0 {
                    a
                } else {
                    0.0
                }
            })
            .collect();
        let real_sum: f32 = attention[..n_real].iter().sum();
        let fallback = (0..len)
            .map(|j| {
                if j >= n_real {
                    0.0
                } else if real_sum > 0.0 {
                    attention[j] / real_sum
                } else {
                    1.0 / n_real as f32
                }
            })
            .collect();
        Attribution {
            attention,
            fallback,
            n_real,
        }
    }
}

/// Logistic function.
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Indices of the `k` largest `scores` among `candidates`, best first; ties go to the
/// lower index. NaN-safe (`total_cmp`).
fn top_k_indices(scores: &[f32], mut candidates: Vec<u32>, k: usize) -> Vec<u32> {
    let cmp = |a: &u32, b: &u32| {
        scores[*b as usize]
            .total_cmp(&scores[*a as usize])
            .then(a.cmp(b))
    };
    if k == 0 {
        return Vec::new();
    }
    if k < candidates.len() {
        candidates.select_nth_unstable_by(k - 1, cmp);
        candidates.truncate(k);
    }
    candidates.sort_unstable_by(cmp);
    candidates
}

/// Marks the items whose `added` date is among the newest [`NEW_ITEM_FRACTION`] of the
/// known dates (at least one item), and strictly later than the oldest known date.
fn new_items(added: &[Option<f64>], n: usize) -> Vec<bool> {
    let mut dates: Vec<f64> = added
        .iter()
        .flatten()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    if dates.is_empty() {
        return vec![false; n];
    }
    dates.sort_by(|a, b| b.total_cmp(a));
    let count = ((dates.len() as f64 * NEW_ITEM_FRACTION).ceil() as usize).clamp(1, dates.len());
    let threshold = dates[count - 1];
    let oldest = dates[dates.len() - 1];
    (0..n)
        .map(|i| {
            added
                .get(i)
                .copied()
                .flatten()
                .is_some_and(|a| a.is_finite() && a >= threshold && a > oldest)
        })
        .collect()
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
    use crate::format::Quantization;
    use crate::model::ModelConfig;
    use std::collections::BTreeMap;

    const N: usize = 40;
    const D: usize = 4;

    fn fake() -> Recommender {
        let config = ModelConfig {
            n_items: N,
            n_categories: 5,
            n_token_buckets: 8,
            dim: D,
            n_blocks: 1,
            n_heads: 1,
            max_len: 8,
            ffn_dim: 8,
            mlp_hidden: vec![4],
            n_recency_buckets: 4,
        };
        let items = ItemCatalog {
            ids: (0..N).map(|i| format!("I{i}")).collect(),
            titles: (0..N).map(|i| format!("Item {i}")).collect(),
            category: (0..N).map(|i| 1 + (i % 4) as u32).collect(),
            price: (0..N).map(|i| Some(i as f32)).collect(),
            added: (0..N).map(|i| Some(i as f64)).collect(),
        };
        let metadata = Metadata {
            format_version: 1,
            model: config.clone(),
            categories: ["unknown", "a", "b", "c", "d"].map(String::from).to_vec(),
            items,
            features: serde_json::Value::Null,
            training: serde_json::Value::Null,
            metrics: serde_json::Value::Null,
            quantization: Quantization::F32,
            content_hash: String::new(),
        };
        let mut tensors = BTreeMap::new();
        tensors.insert(
            POPULARITY_TENSOR.to_string(),
            crate::format::Tensor {
                shape: vec![N],
                data: TensorData::F32((0..N).map(|i| ((i * 7) % N) as f32).collect()),
            },
        );
        let file = WeightFile { metadata, tensors };
        let model = Model {
            config,
            features: ItemFeatureTable::default(),
            params: Vec::new(),
            memory: None,
        };
        // Item i points along axis i % D with a little of axis (i + 1) % D.
        let mut v = vec![0.0; N * D];
        for i in 0..N {
            v[i * D + i % D] = 1.0;
            v[i * D + (i + 1) % D] = 0.25;
        }
        let plan = HeadPlan {
            n_items: N,
            dim: D,
            hidden: 1,
            item_vectors: v,
            layers: Vec::new(),
            w_out: vec![0.0],
            b_out: 0.0,
        };
        Recommender::assemble(file, model, plan).unwrap()
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
    fn top_k_is_nan_safe_and_breaks_ties_by_index() {
        let s = [1.0, f32::NAN, 1.0, 3.0, f32::NEG_INFINITY];
        // NaN sorts first under total_cmp; callers sanitise it to -inf before ranking.
        let got = top_k_indices(&s, (0..5).collect(), 3);
        assert_eq!(got, vec![1, 3, 0]);
        let s = [1.0, 2.0, 1.0, 2.0];
        assert_eq!(top_k_indices(&s, (0..4).collect(), 4), vec![1, 3, 0, 2]);
        assert!(top_k_indices(&s, (0..4).collect(), 0).is_empty());
    }

    #[test]
    fn new_items_are_the_newest_tenth() {
        let added: Vec<Option<f64>> = (0..20).map(|i| Some(i as f64)).collect();
        let new = new_items(&added, 20);
        assert_eq!(new.iter().filter(|&&b| b).count(), 2);
        assert!(new[18] && new[19]);
        assert!(new_items(&[Some(5.0); 10], 10).iter().all(|&b| !b));
        assert!(new_items(&[None; 3], 3).iter().all(|&b| !b));
    }
}
