//! Stage 4 of the pipeline: why each item is in the list.
//!
//! # Rule
//! Reasons for item `i`, in this order: `promoted` (pinned by a promotion); for a
//! basket, `bought-together` with the basket item `b` of the largest evidence term
//! `δ^k · s(b → i)` and its order count `c_bi` when the weight file's `basket.*` section
//! holds the pair (evidence: [`crate::basket::Basket::support`]), else `similar` to the basket item `b`
//! maximising `v_b · v_i` (the first on ties: a likeness, never a claimed co-purchase;
//! files without the section always take this branch); `similar` to the context item;
//! history events by attribution (below), minus those naming an item already named by a
//! `similar` or `bought-together` reason; `popular` when there was no signal at all;
//! then `boosted` (a positive total boost) and `new` (with a positive `newItemsBoost`,
//! or `filter.newOnly`).
//! A list that would be empty says `popular`.
//!
//! # Attribution
//! With `a_j` the user vector's attention on encoded event `j` (NaN or negative → 0),
//! event `j`'s share for item `i` is
//!
//! ```text
//! w_j(i) = a_j · max(0, v_j · v_i) / Σ_l a_l · max(0, v_l · v_i)
//! ```
//!
//! (non-finite terms count 0). When no event has a positive term, the shares fall back to
//! the attention normalised over the shopper's own events (uniform when it is all zero).
//! Shares are summed per item over the shopper's own events (context and basket events
//! excluded) and ranked; the best 1–2 are named (the best always, the second when
//! positive; in the context/basket scenarios only those with a share of at least 0.2).
use super::{Reason, Recommender};
use crate::history::{EventKind, HistoryEvent};

/// What a request knew about the shopper, for its explanations.
#[derive(Debug, Clone, Copy, Default)]
pub struct Signals<'a> {
    /// The encoder's input: the shopper's own events, then context and basket events.
    pub history: &'a [HistoryEvent],
    /// Attention over `history` (shorter is padded with 0).
    pub attention: &'a [f32],
    /// How many leading `history` events are the shopper's own.
    pub n_real: usize,
    /// The context item ("similar to").
    pub context: Option<u32>,
    /// The basket items ("bought together").
    pub basket: &'a [u32],
    /// Whether the model scored the request (false: the popularity fallback ranked).
    pub personal: bool,
}

/// How an item got its place, besides relevance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placement {
    /// Pinned by a promotion.
    pub promoted: bool,
    /// Its total boost is positive.
    pub boosted: bool,
    /// A new item under a positive new-items boost.
    pub new: bool,
}

/// Explains items for one request.
pub struct Explainer<'a> {
    rec: &'a Recommender,
    signals: Signals<'a>,
    /// Attention per encoded event (sanitised, aligned with `signals.history`).
    attention: Vec<f32>,
    /// Shares used when no event has a positive attribution.
    fallback: Vec<f32>,
}

impl<'a> Explainer<'a> {
    /// Precomputes the request's attention data (`signals.n_real` is clamped to the
    /// history's length).
    pub fn new(rec: &'a Recommender, mut signals: Signals<'a>) -> Explainer<'a> {
        let len = signals.history.len();
        let n_real = signals.n_real.min(len);
        signals.n_real = n_real;
        let attention: Vec<f32> = (0..len)
            .map(|j| {
                let a = signals.attention.get(j).copied().unwrap_or(0.0);
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
        Explainer {
            rec,
            signals,
            attention,
            fallback,
        }
    }

    /// The reasons for item `i` (never empty).
    pub fn reasons(&self, i: usize, placement: Placement) -> Vec<Reason> {
        let s = &self.signals;
        let mut reasons = Vec::new();
        if placement.promoted {
            reasons.push(Reason::Promoted);
        }
        let evidence = (self.rec.basket_model()).and_then(|m| m.support(s.basket, i));
        if let Some((b, orders)) = evidence {
            reasons.push(Reason::BoughtTogether {
                item: self.rec.id(b as usize).to_string(),
                title: self.rec.title(b as usize).to_string(),
                orders,
            });
        } else if let Some(b) = self.closest_basket_item(i) {
            reasons.push(Reason::Similar {
                item: self.rec.id(b as usize).to_string(),
                title: self.rec.title(b as usize).to_string(),
            });
        }
        if let Some(c) = s.context {
            reasons.push(Reason::Similar {
                item: self.rec.id(c as usize).to_string(),
                title: self.rec.title(c as usize).to_string(),
            });
        }
        if s.personal && s.n_real > 0 {
            let scenario = s.context.is_some() || !s.basket.is_empty();
            // An item already named above (the context, a basket item) is not named
            // again as a history event: "similar to X" says it.
            let named = |id: &str| {
                reasons.iter().any(|r| {
                    matches!(r, Reason::Similar { item, .. } | Reason::BoughtTogether { item, .. } if item == id)
                })
            };
            let history: Vec<Reason> = (self.history_reasons(i, scenario).into_iter())
                .filter(|r| !matches!(r, Reason::History { item, .. } if named(item)))
                .collect();
            reasons.extend(history);
        }
        if !s.personal {
            reasons.push(Reason::Popular);
        }
        if placement.boosted {
            reasons.push(Reason::Boosted);
        }
        if placement.new {
            reasons.push(Reason::New);
        }
        if reasons.is_empty() {
            reasons.push(Reason::Popular);
        }
        reasons
    }

    /// The basket item whose vector has the largest dot product with item `i`'s (the
    /// first on ties; NaN never wins over a number).
    fn closest_basket_item(&self, i: usize) -> Option<u32> {
        let dots = self
            .signals
            .basket
            .iter()
            .map(|&b| (b, self.rec.item_dot(b as usize, i)));
        let best = dots.fold(None::<(u32, f32)>, |acc, (b, d)| match acc {
            Some((_, bd)) if bd >= d || d.is_nan() => acc,
            _ => Some((b, d)),
        });
        best.map(|(b, _)| b)
    }

    /// Event shares for item `i` (see the module docs).
    fn shares(&self, i: usize) -> Vec<f32> {
        let raw: Vec<f32> = self
            .signals
            .history
            .iter()
            .enumerate()
            .map(|(j, e)| {
                let x = self.attention[j] * self.rec.item_dot(e.item as usize, i).max(0.0);
                if x.is_finite() {
                    x
                } else {
                    0.0
                }
            })
            .collect();
        let total: f32 = raw.iter().sum();
        if total > 0.0 && total.is_finite() {
            raw.iter().map(|x| x / total).collect()
        } else {
            self.fallback.clone()
        }
    }

    /// `Reason::History` entries for item `i`: the 1–2 history items with the largest
    /// summed share. `scenario` (context or basket given): only shares of at least 0.2.
    pub fn history_reasons(&self, i: usize, scenario: bool) -> Vec<Reason> {
        let weights = self.shares(i);
        // Per item over the shopper's own events: (item, sum, kind of best event, best).
        let mut per_item: Vec<(u32, f32, EventKind, f32)> = Vec::new();
        let own = self.signals.history.iter().take(self.signals.n_real);
        for (j, e) in own.enumerate() {
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
        crate::sort::sort_by(&mut per_item, |a, b| b.1.total_cmp(&a.1));
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
            .filter(|(_, p)| (p.0 as usize) < self.rec.n_items())
            .map(|(_, p)| Reason::History {
                item: self.rec.id(p.0 as usize).to_string(),
                title: self.rec.title(p.0 as usize).to_string(),
                event: p.2,
                weight: p.1.clamp(0.0, 1.0),
            })
            .collect()
    }
}
