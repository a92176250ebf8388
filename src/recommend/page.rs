//! Several shelves of one page in one call, never showing an item twice.
//!
//! # Rule
//! A page request is an ordered list of shelves (each a [`RecommendOptions`]) and a
//! `dedup` flag (default true). Shelves are filled in order; with `dedup`, shelf `j`
//! treats every item placed on shelves `0..j` as excluded (like its own `exclude`), so
//! the page never shows an item twice. The order is the page's priority: the first shelf
//! gets its best items, a later one its best among the rest. `dedup: false` gives each
//! shelf exactly what `recommend()` would (the page asks for repeats).
//!
//! Every shelf is checked before any is scored, so a bad shelf fails the whole call with
//! an error naming it (`shelves[2].k …`, `shelves[1].context: unknown item id …`).
//! Shelves whose encoder input is identical (same history, context, basket and `now`)
//! share one head pass ([`PageCache`]); a shelf's result is then exactly that of
//! `recommend()` with the earlier shelves' items added to `exclude`.
use serde::{Deserialize, Serialize};

use super::{Prepared, RecommendError, RecommendOptions, Recommendation, Recommender};
use crate::history::HistoryEvent;

/// Most shelves in one page request.
pub const MAX_SHELVES: usize = 16;

/// Options of one `page()` call; field names are the JavaScript ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PageRequest {
    /// The shelves, in priority order (1..=[`MAX_SHELVES`]).
    pub shelves: Vec<RecommendOptions>,
    /// Leave out of each shelf the items of the shelves before it (default true).
    pub dedup: bool,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            shelves: Vec::new(),
            dedup: true,
        }
    }
}

/// The state of a page being filled: the items shown so far (with `dedup`).
#[derive(Debug, Clone, Default)]
pub struct PageState {
    dedup: bool,
    shown: Vec<u32>,
}

impl PageState {
    /// The items later shelves must leave out (empty without `dedup`).
    pub fn shown(&self) -> &[u32] {
        &self.shown
    }

    /// Records a filled shelf.
    pub fn add(&mut self, shelf: &[Recommendation]) {
        if self.dedup {
            self.shown.extend(shelf.iter().map(|r| r.index));
        }
    }
}

/// Head logits already computed for an encoder input, so shelves with the same input
/// share one pass.
#[derive(Debug, Default)]
pub struct PageCache {
    entries: Vec<(Vec<HistoryEvent>, Vec<f32>)>,
}

impl PageCache {
    /// The logits computed for `prepared`'s encoder input, if any.
    pub fn get(&self, prepared: &Prepared) -> Option<&[f32]> {
        (self.entries.iter())
            .find(|(h, _)| *h == prepared.history)
            .map(|(_, l)| l.as_slice())
    }

    /// Keeps `logits` for `prepared`'s encoder input.
    pub fn put(&mut self, prepared: &Prepared, logits: Vec<f32>) {
        self.entries.push((prepared.history.clone(), logits));
    }
}

/// `e` with the shelf's position in front of the option it names.
fn in_shelf(j: usize, e: RecommendError) -> RecommendError {
    match e {
        RecommendError::UnknownOptionItem { field, id } => RecommendError::UnknownOptionItem {
            field: format!("shelves[{j}].{field}"),
            id,
        },
        RecommendError::InvalidOption(m) => {
            RecommendError::InvalidOption(format!("shelves[{j}]: {m}"))
        }
        other => other,
    }
}

impl Recommender {
    /// Checks a page request (shelf count, every shelf's options) and encodes each
    /// shelf's user ([`Recommender::prepare`]); the first problem is the error, named by
    /// its shelf.
    pub fn prepare_page(
        &self,
        history: &[HistoryEvent],
        req: &PageRequest,
    ) -> Result<(Vec<Prepared>, PageState), RecommendError> {
        if req.shelves.is_empty() || req.shelves.len() > MAX_SHELVES {
            return Err(RecommendError::InvalidOption(format!(
                "shelves must hold 1 to {MAX_SHELVES} shelves, got {}",
                req.shelves.len()
            )));
        }
        let prepared = (req.shelves.iter().enumerate())
            .map(|(j, o)| self.prepare(history, o).map_err(|e| in_shelf(j, e)))
            .collect::<Result<Vec<_>, _>>()?;
        let state = PageState {
            dedup: req.dedup,
            shown: Vec::new(),
        };
        Ok((prepared, state))
    }

    /// Fills every shelf of a page on the CPU ([`Recommender::kernel`]).
    pub fn page(
        &self,
        history: &[HistoryEvent],
        req: &PageRequest,
    ) -> Result<Vec<Vec<Recommendation>>, RecommendError> {
        let (prepared, mut state) = self.prepare_page(history, req)?;
        let mut cache = PageCache::default();
        let mut out = Vec::with_capacity(prepared.len());
        for p in &prepared {
            if p.query.is_some() && cache.get(p).is_none() {
                let logits = self.cpu_logits(p)?;
                cache.put(p, logits);
            }
            let logits = cache.get(p).unwrap_or(&[]);
            let shelf = self.finish_page(p, logits, state.shown());
            state.add(&shelf);
            out.push(shelf);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_state_records_only_with_dedup() {
        let rec = |index| Recommendation {
            item: format!("I{index}"),
            index,
            title: String::new(),
            category: String::new(),
            price: None,
            score: 0.5,
            reasons: Vec::new(),
        };
        let mut on = PageState {
            dedup: true,
            shown: Vec::new(),
        };
        on.add(&[rec(3), rec(1)]);
        on.add(&[rec(7)]);
        assert_eq!(on.shown(), &[3, 1, 7]);
        let mut off = PageState::default();
        off.add(&[rec(3)]);
        assert!(off.shown().is_empty());
        assert!(PageRequest::default().dedup);
    }

    #[test]
    fn shelf_errors_name_the_shelf() {
        let e = in_shelf(
            2,
            RecommendError::UnknownOptionItem {
                field: "basket[1]".into(),
                id: "X".into(),
            },
        );
        assert_eq!(e.to_string(), "shelves[2].basket[1]: unknown item id \"X\"");
        let e = in_shelf(0, RecommendError::InvalidOption("k must be…".into()));
        assert_eq!(e.to_string(), "invalid option: shelves[0]: k must be…");
    }
}
