//! Which event kinds the model was trained on, and what an untrained kind reads.
//!
//! The user encoder adds the kind embedding `kind[k_t]` (a row of `user.kind`) to each
//! input event. A row is trained only if events of that kind were encoder inputs in
//! training; otherwise it keeps its random initial value, and a shopper's view or cart
//! would add random numbers to the input (Online Retail, the default data, has
//! purchases only, while a storefront records mostly views and carts).
//!
//! The weight file records the trained kinds (`trained_kinds` in the metadata,
//! `docs/weight-format.md`). When it does, every untrained kind `k` reads the row of the
//! **closest trained kind** `c(k)`, by position in the funnel
//! `f(view) = 0, f(cart) = 1, f(purchase) = 2`:
//!
//! `c(k) = argmin over trained t of ( |f(k) − f(t)|, −f(t) )`
//!
//! — nearest in the funnel first, a tie going to the kind further down the funnel
//! (toward purchase). So with purchases only, view and cart both read purchase; with
//! views and purchases, cart (one step from each) reads purchase; with views only, cart
//! and purchase read view. A trained kind reads its own row.
//!
//! The mapping is applied **once, at load** ([`super::Model::set_trained_kinds`], called by
//! [`super::Model::from_weights`]): the mapped kind's row is copied into each untrained
//! row of `user.kind`. Copying rows rather than remapping kinds where the encoder input
//! is built keeps one code path: every consumer of the encoder (recommend, search's
//! personalisation, evaluation, the GPU and CPU paths) reads `user.kind` as before, at no
//! cost per request, and the explanations still name the kind the shopper did. A file
//! without the field keeps today's behaviour (each kind its own row, trained or not):
//! older files were trained on purchases in practice, but the format does not say so,
//! and the runtime does not guess.
use crate::history::EventKind;

/// A kind's position in the funnel (view 0, cart 1, purchase 2; the embedding row).
fn funnel(k: EventKind) -> usize {
    k.index()
}

/// The trained kind whose row `kind` reads: `kind` itself when trained, else the closest
/// trained kind in the funnel, ties toward purchase (see the module doc). `None` when
/// `trained` is empty.
pub fn closest_trained(kind: EventKind, trained: &[EventKind]) -> Option<EventKind> {
    trained
        .iter()
        .copied()
        .min_by_key(|&t| (funnel(kind).abs_diff(funnel(t)), usize::MAX - funnel(t)))
}

/// The kinds a model was trained on and the row each kind reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindMap {
    /// The trained kinds in funnel order; `None` when the file does not record them.
    pub trained: Option<Vec<EventKind>>,
    /// The kind whose row each kind reads, indexed by [`EventKind::index`].
    pub reads: [EventKind; 3],
}

impl KindMap {
    /// The map for `trained` (`None`: not recorded, every kind reads its own row).
    pub fn new(trained: Option<&[EventKind]>) -> KindMap {
        let trained = trained.map(canonical);
        let reads = EventKind::ALL.map(|k| match &trained {
            Some(t) => closest_trained(k, t).unwrap_or(k),
            None => k,
        });
        KindMap { trained, reads }
    }

    /// The untrained kinds and the trained kind each one reads, in funnel order (empty
    /// when the trained kinds are not recorded or every kind was trained).
    pub fn mapped(&self) -> Vec<(EventKind, EventKind)> {
        EventKind::ALL
            .iter()
            .map(|&k| (k, self.reads[k.index()]))
            .filter(|(k, r)| k != r)
            .collect()
    }
}

/// `kinds` sorted in funnel order without repeats.
pub fn canonical(kinds: &[EventKind]) -> Vec<EventKind> {
    let mut v = kinds.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventKind::{Cart, Purchase, View};

    /// Every non-empty set of trained kinds, against the rule worked by hand.
    #[test]
    fn every_trained_set_maps_each_kind_to_the_closest_trained_one() {
        let cases: [(&[EventKind], [EventKind; 3]); 7] = [
            (&[Purchase], [Purchase, Purchase, Purchase]),
            (&[Cart], [Cart, Cart, Cart]),
            (&[View], [View, View, View]),
            (&[View, Purchase], [View, Purchase, Purchase]),
            (&[View, Cart], [View, Cart, Cart]),
            (&[Cart, Purchase], [Cart, Cart, Purchase]),
            (&[View, Cart, Purchase], [View, Cart, Purchase]),
        ];
        for (trained, want) in cases {
            assert_eq!(
                KindMap::new(Some(trained)).reads,
                want,
                "trained {trained:?}"
            );
        }
        assert_eq!(KindMap::new(None).reads, [View, Cart, Purchase]);
        assert_eq!(closest_trained(View, &[]), None);
        assert_eq!(
            KindMap::new(Some(&[Purchase])).mapped(),
            vec![(View, Purchase), (Cart, Purchase)]
        );
        assert_eq!(
            KindMap::new(Some(&[Purchase, View, View])).trained,
            Some(vec![View, Purchase])
        );
    }
}
