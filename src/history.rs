//! The shopper's browsing history: the events the user encoder reads, and the rules
//! that keep the on-device store bounded (cap, decay, dedup, validation).
//!
//! Used by the storefront runtime (history kept in `localStorage`, never sent anywhere),
//! by the CLI's `recommend --history`, and by the data loaders (each user's sequence is
//! a `Vec<HistoryEvent>`).
use serde::{Deserialize, Serialize};

/// What the shopper did with an item. Stored as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// Looked at the product page.
    View,
    /// Put the item in the cart.
    Cart,
    /// Bought the item.
    Purchase,
}

impl EventKind {
    /// All kinds, in index order (the index is the row of the event-type embedding).
    pub const ALL: [EventKind; 3] = [EventKind::View, EventKind::Cart, EventKind::Purchase];

    /// Row of this kind in the event-type embedding.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Parses `view`, `cart` or `purchase` (case-insensitive).
    pub fn parse(s: &str) -> Option<EventKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "view" => Some(EventKind::View),
            "cart" => Some(EventKind::Cart),
            "purchase" => Some(EventKind::Purchase),
            _ => None,
        }
    }
}

/// One event of a history: an item (index into the model's catalog), what happened, and
/// when (Unix seconds, as JavaScript's `Date.now() / 1000`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    /// Catalog index of the item (position in the weight file's item list).
    pub item: u32,
    /// What the shopper did.
    pub kind: EventKind,
    /// When, in Unix seconds.
    pub at: f64,
}
