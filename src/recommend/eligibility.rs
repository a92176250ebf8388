//! Stage 1 of the pipeline: which items may appear in a result list.
//!
//! # Rule
//! Item `i` is eligible iff every one of these holds (a conjunction, so the order the
//! rules are applied in does not matter):
//! - `i` is not excluded by the caller (`exclude`; for a recommendation also the context
//!   and basket items);
//! - with `excludeSeen`, `i` is not in the shopper's own history, unless
//!   `allowRepurchase` is set and the shopper bought `i` ([`Eligibility::exclude_seen`]);
//! - `filter.categories` non-empty ⇒ `category(i)` is one of them (names match exactly,
//!   else case-insensitively; a name the catalog does not know matches nothing);
//! - `category(i)` is not in `filter.excludeCategories`;
//! - `filter.newOnly` ⇒ `i` is new ([`Recommender::is_new`]);
//! - a price bound set ⇒ `i` has a finite price `p` with `priceMin ≤ p ≤ priceMax`
//!   (non-finite bounds are ignored; items without a price fail any bound).
//!
//! [`Eligibility::new`] takes a [`Filter`] and excluded indices, with no recommendation
//! request, so the search can share it.
use std::collections::HashSet;

use super::{Filter, RecommendError, Recommender};
use crate::history::{EventKind, HistoryEvent};

/// A [`Filter`] with its category names resolved to catalog category indices.
#[derive(Debug, Clone, Default)]
pub struct ResolvedFilter {
    /// `Some(mask)` over category indices when `filter.categories` is non-empty.
    only_categories: Option<Vec<bool>>,
    /// Category indices never to return.
    exclude_categories: Vec<u32>,
    /// Finite lower price bound.
    price_min: Option<f32>,
    /// Finite upper price bound.
    price_max: Option<f32>,
    /// Only new items.
    new_only: bool,
}

impl ResolvedFilter {
    /// Resolves the category names. `strict`: an unknown name is
    /// [`RecommendError::InvalidOption`]; otherwise it is skipped (never an error).
    pub fn resolve(
        rec: &Recommender,
        filter: &Filter,
        strict: bool,
    ) -> Result<ResolvedFilter, RecommendError> {
        let cat = |name: &str, field: &str| match rec.category_index(name) {
            Some(c) => Ok(Some(c)),
            None if strict => Err(RecommendError::InvalidOption(format!(
                "{field}: unknown category {name:?}"
            ))),
            None => Ok(None),
        };
        let mut out = ResolvedFilter {
            price_min: filter.price_min.filter(|v| v.is_finite()),
            price_max: filter.price_max.filter(|v| v.is_finite()),
            new_only: filter.new_only,
            ..ResolvedFilter::default()
        };
        if !filter.categories.is_empty() {
            let mut mask = vec![false; rec.metadata.categories.len().max(1)];
            for name in &filter.categories {
                if let Some(c) = cat(name, "filter.categories")? {
                    if let Some(m) = mask.get_mut(c as usize) {
                        *m = true;
                    }
                }
            }
            out.only_categories = Some(mask);
        }
        for name in &filter.exclude_categories {
            if let Some(c) = cat(name, "filter.excludeCategories")? {
                out.exclude_categories.push(c);
            }
        }
        Ok(out)
    }

    /// Whether items of category `c` pass the category rules.
    #[inline]
    pub fn allows_category(&self, c: u32) -> bool {
        if let Some(mask) = &self.only_categories {
            if !mask.get(c as usize).copied().unwrap_or(false) {
                return false;
            }
        }
        !self.exclude_categories.contains(&c)
    }

    /// Whether only new items pass.
    pub fn new_only(&self) -> bool {
        self.new_only
    }

    /// The finite price bounds `(priceMin, priceMax)`.
    pub fn price_bounds(&self) -> (Option<f32>, Option<f32>) {
        (self.price_min, self.price_max)
    }

    /// Whether the filter has no rule: every item passes it.
    pub fn admits_every_item(&self) -> bool {
        self.only_categories.is_none()
            && self.exclude_categories.is_empty()
            && self.price_min.is_none()
            && self.price_max.is_none()
            && !self.new_only
    }

    /// Whether item `i` passes the category and price rules.
    #[inline]
    pub fn admits(&self, rec: &Recommender, i: usize) -> bool {
        let c = rec.category_of(i);
        if !self.allows_category(c) || (self.new_only && !rec.is_new(i)) {
            return false;
        }
        if self.price_min.is_none() && self.price_max.is_none() {
            return true;
        }
        match rec.price(i) {
            Some(p) if p.is_finite() => {
                !(self.price_min.is_some_and(|lo| p < lo)
                    || self.price_max.is_some_and(|hi| p > hi))
            }
            _ => false,
        }
    }
}

/// The items [`Eligibility::exclude_seen`] leaves out: every item of `history`, except,
/// with `allow_repurchase`, the items bought (in history order, with repeats).
pub fn seen_items(history: &[HistoryEvent], allow_repurchase: bool) -> Vec<u32> {
    let purchased: HashSet<u32> = history
        .iter()
        .filter(|e| e.kind == EventKind::Purchase)
        .map(|e| e.item)
        .collect();
    (history.iter())
        .filter(|e| !(allow_repurchase && purchased.contains(&e.item)))
        .map(|e| e.item)
        .collect()
}

/// The eligibility mask over the catalog, one bit an item (bit `i % 64` of word
/// `i / 64` set = item `i` may appear): 122 KiB a request at 1,000,000 items, not 1 MiB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eligibility {
    bits: Vec<u64>,
    n: usize,
}

impl Eligibility {
    /// Items passing `filter` (unknown category names skipped), minus `exclude` (catalog
    /// indices; out-of-range ones are ignored).
    pub fn new(rec: &Recommender, filter: &Filter, exclude: &[u32]) -> Eligibility {
        let resolved = ResolvedFilter::resolve(rec, filter, false).unwrap_or_default();
        Eligibility::with_filter(rec, &resolved, exclude)
    }

    /// As [`Eligibility::new`] with an already resolved filter.
    pub fn with_filter(rec: &Recommender, filter: &ResolvedFilter, exclude: &[u32]) -> Eligibility {
        let n = rec.n_items();
        let mut bits;
        if filter.admits_every_item() {
            // No rule (the usual request): every bit below `n` set, none above.
            bits = vec![u64::MAX; n.div_ceil(64)];
            if let (Some(last), 1..) = (bits.last_mut(), n % 64) {
                *last = (1 << (n % 64)) - 1;
            }
        } else {
            bits = vec![0u64; n.div_ceil(64)];
            for (w, word) in bits.iter_mut().enumerate() {
                for b in 0..64 {
                    let i = w * 64 + b;
                    if i < n && filter.admits(rec, i) {
                        *word |= 1 << b;
                    }
                }
            }
        }
        let mut e = Eligibility { bits, n };
        exclude.iter().for_each(|&i| e.ban(i));
        e
    }

    /// Makes item `i` ineligible (no-op when out of range).
    pub fn ban(&mut self, i: u32) {
        let i = i as usize;
        if let Some(w) = self.bits.get_mut(i / 64) {
            *w &= !(1 << (i % 64));
        }
    }

    /// Leaves out every item of the shopper's own `history`, except, with
    /// `allow_repurchase`, the items they bought.
    pub fn exclude_seen(&mut self, history: &[HistoryEvent], allow_repurchase: bool) {
        seen_items(history, allow_repurchase)
            .into_iter()
            .for_each(|i| self.ban(i));
    }

    /// Whether item `i` may appear.
    pub fn is_eligible(&self, i: u32) -> bool {
        let i = i as usize;
        self.bits
            .get(i / 64)
            .is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    /// Number of catalog items the mask covers.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the mask covers no item.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}
