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

/// Version of the local-storage layout written by this build.
pub const HISTORY_SCHEMA: u32 = 1;

/// Seconds per day.
const DAY: f64 = 86_400.0;

/// One event as the browser keeps it: the store's item id (so the history survives a
/// model update that reorders the catalog), what happened, when (Unix seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Store item id.
    pub item: String,
    /// What the shopper did.
    pub kind: EventKind,
    /// When, in Unix seconds.
    pub at: f64,
}

/// Bounds on the local history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct HistoryLimits {
    /// Most events kept (oldest dropped first). Default 200.
    pub max_events: usize,
    /// Most bytes of the stored JSON (oldest dropped first). Default 64 KiB.
    pub max_bytes: usize,
    /// Half-life of an event's weight, in days. Default 30.
    pub half_life_days: f64,
    /// Events older than this many days are dropped. Default 180.
    pub max_age_days: f64,
    /// A repeated view (or cart) of the same item within this many seconds updates the
    /// earlier event's time instead of appending. Default 30 minutes. (JSON also accepts
    /// `dedupSeconds`.)
    #[serde(alias = "dedupSeconds")]
    pub dedup_window_secs: f64,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        HistoryLimits {
            max_events: 200,
            max_bytes: 64 * 1024,
            half_life_days: 30.0,
            max_age_days: 180.0,
            dedup_window_secs: 30.0 * 60.0,
        }
    }
}

impl HistoryLimits {
    /// Checks that the limits are usable: at least one event and 256 bytes, positive
    /// finite half-life and maximum age, a finite non-negative dedup window.
    pub fn validate(&self) -> Result<(), HistoryError> {
        let bad = |m: &str| Err(HistoryError::InvalidLimits(m.to_string()));
        if self.max_events == 0 {
            return bad("maxEvents must be at least 1");
        }
        if self.max_bytes < 256 {
            return bad("maxBytes must be at least 256");
        }
        if !(self.half_life_days.is_finite() && self.half_life_days > 0.0) {
            return bad("halfLifeDays must be a positive number");
        }
        if !(self.max_age_days.is_finite() && self.max_age_days > 0.0) {
            return bad("maxAgeDays must be a positive number");
        }
        if !(self.dedup_window_secs.is_finite() && self.dedup_window_secs >= 0.0) {
            return bad("dedupWindowSecs must be a non-negative number");
        }
        Ok(())
    }
}

/// What can be wrong with a stored history (or an event to record).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HistoryError {
    /// Not valid JSON, or not the history layout (the parser's message).
    #[error("stored history is corrupt: {0}")]
    Corrupt(String),
    /// Written by another layout version.
    #[error("stored history has schema {found}, this build reads {expected}")]
    WrongSchema {
        /// Schema in the store.
        found: u32,
        /// Schema this build reads.
        expected: u32,
    },
    /// Belongs to another store or model (namespace key).
    #[error("stored history belongs to {found:?}, expected {expected:?}")]
    ForeignNamespace {
        /// Namespace in the store.
        found: String,
        /// Namespace expected.
        expected: String,
    },
    /// Larger than the byte limit.
    #[error("stored history is {bytes} bytes, the limit is {max}")]
    TooLarge {
        /// Size found.
        bytes: usize,
        /// Limit.
        max: usize,
    },
    /// The limits themselves are unusable (the message names the field).
    #[error("invalid history limits: {0}")]
    InvalidLimits(String),
    /// One event is invalid (empty id, non-finite, negative or far-future time).
    #[error("history event {index} is invalid: {why}")]
    BadEvent {
        /// Position of the event.
        index: usize,
        /// What is wrong with it.
        why: String,
    },
}

/// The shopper's history as kept in `localStorage`: a layout version, the namespace key
/// of the store/model it belongs to, and the events, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryStore {
    /// Layout version ([`HISTORY_SCHEMA`]).
    pub schema: u32,
    /// Namespace key (for example `vitrine:<store>:<model>`); a history is only read back
    /// by the page that wrote it.
    pub namespace: String,
    /// Events, oldest first.
    pub events: Vec<StoredEvent>,
}

/// Header read first so a newer layout reports [`HistoryError::WrongSchema`] rather than
/// [`HistoryError::Corrupt`].
#[derive(Deserialize)]
struct Header {
    schema: u32,
    namespace: String,
}

/// Checks one event; `now` (Unix seconds), when given, rejects times more than a day
/// ahead of it.
fn check_event(index: usize, ev: &StoredEvent, now: Option<f64>) -> Result<(), HistoryError> {
    let bad = |why: String| Err(HistoryError::BadEvent { index, why });
    if ev.item.trim().is_empty() {
        return bad("empty item id".into());
    }
    if !ev.at.is_finite() {
        return bad(format!("time {} is not finite", ev.at));
    }
    if ev.at < 0.0 {
        return bad(format!("time {} is negative", ev.at));
    }
    if let Some(now) = now {
        if now.is_finite() && ev.at > now + DAY {
            return bad(format!(
                "time {} is more than a day after now ({now})",
                ev.at
            ));
        }
    }
    Ok(())
}

/// Compact JSON length of one event.
fn event_bytes(ev: &StoredEvent) -> usize {
    serde_json::to_string(ev).map_or(0, |s| s.len())
}

impl HistoryStore {
    /// An empty history for a namespace.
    pub fn new(namespace: impl Into<String>) -> HistoryStore {
        HistoryStore {
            schema: HISTORY_SCHEMA,
            namespace: namespace.into(),
            events: Vec::new(),
        }
    }

    /// Size in bytes of the JSON of this store without events.
    fn envelope_bytes(&self) -> usize {
        let envelope = HistoryStore {
            schema: self.schema,
            namespace: self.namespace.clone(),
            events: Vec::new(),
        };
        serde_json::to_string(&envelope).map_or(0, |s| s.len())
    }

    /// Size in bytes of [`HistoryStore::to_json`].
    pub fn json_bytes(&self) -> usize {
        let base = self.envelope_bytes();
        let events: usize = self.events.iter().map(event_bytes).sum();
        base + events + self.events.len().saturating_sub(1)
    }

    /// Records one event (its time is taken as "now"): validates it, merges a repeated
    /// view or cart of the same item within the dedup window into the earlier event,
    /// then applies the age, count and byte limits.
    pub fn record(&mut self, ev: StoredEvent, limits: &HistoryLimits) -> Result<(), HistoryError> {
        check_event(self.events.len(), &ev, None)?;
        let window = limits.dedup_window_secs;
        if ev.kind != EventKind::Purchase && window > 0.0 {
            let repeat = self.events.iter().rposition(|e| {
                e.item == ev.item && e.kind == ev.kind && (ev.at - e.at).abs() <= window
            });
            if let Some(j) = repeat {
                let now = self.events.last().map_or(ev.at, |e| e.at.max(ev.at));
                let mut e = self.events.remove(j);
                e.at = e.at.max(ev.at);
                self.insert_sorted(e);
                self.prune(now, limits);
                return Ok(());
            }
        }
        let alone = self.envelope_bytes() + event_bytes(&ev);
        if alone > limits.max_bytes {
            return Err(HistoryError::TooLarge {
                bytes: alone,
                max: limits.max_bytes,
            });
        }
        let now = self.events.last().map_or(ev.at, |e| e.at.max(ev.at));
        self.insert_sorted(ev);
        self.prune(now, limits);
        Ok(())
    }

    /// Inserts keeping the events sorted by time (after equal times).
    fn insert_sorted(&mut self, ev: StoredEvent) {
        let pos = self.events.partition_point(|e| e.at <= ev.at);
        self.events.insert(pos, ev);
    }

    /// Sorts by time (stable) and removes exact duplicates `(item, kind, at)`.
    fn normalise(&mut self) {
        self.events.sort_by(|a, b| a.at.total_cmp(&b.at));
        let mut seen = std::collections::HashSet::new();
        self.events
            .retain(|e| seen.insert((e.item.clone(), e.kind, e.at.to_bits())));
    }

    /// Merges another writer's copy of the same history (two tabs writing at once): the
    /// union of both event lists by `(item, kind, at)`, sorted by time, then capped by
    /// `limits` (count and bytes; oldest dropped first). Nothing is lost below the caps.
    pub fn merge(
        &mut self,
        other: &HistoryStore,
        limits: &HistoryLimits,
    ) -> Result<(), HistoryError> {
        if other.namespace != self.namespace {
            return Err(HistoryError::ForeignNamespace {
                found: other.namespace.clone(),
                expected: self.namespace.clone(),
            });
        }
        if other.schema != self.schema {
            return Err(HistoryError::WrongSchema {
                found: other.schema,
                expected: self.schema,
            });
        }
        self.events.extend(other.events.iter().cloned());
        self.normalise();
        self.cap(limits);
        Ok(())
    }

    /// Compact JSON, as stored in `localStorage`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a stored history without a clock (times in the future are not checked; use
    /// [`HistoryStore::from_json_at`] where the current time is known).
    pub fn from_json(
        s: &str,
        expected_namespace: &str,
        limits: &HistoryLimits,
    ) -> Result<HistoryStore, HistoryError> {
        Self::parse(s, expected_namespace, limits, None)
    }

    /// Reads and validates a stored history: size, JSON layout, schema, namespace, then
    /// every event (non-empty id, finite non-negative time, at most a day after `now`).
    /// The events come back sorted, without exact duplicates, and capped to
    /// `limits.max_events` (newest kept).
    pub fn from_json_at(
        s: &str,
        expected_namespace: &str,
        limits: &HistoryLimits,
        now: f64,
    ) -> Result<HistoryStore, HistoryError> {
        Self::parse(s, expected_namespace, limits, Some(now))
    }

    fn parse(
        s: &str,
        expected_namespace: &str,
        limits: &HistoryLimits,
        now: Option<f64>,
    ) -> Result<HistoryStore, HistoryError> {
        if s.len() > limits.max_bytes {
            return Err(HistoryError::TooLarge {
                bytes: s.len(),
                max: limits.max_bytes,
            });
        }
        let header: Header =
            serde_json::from_str(s).map_err(|e| HistoryError::Corrupt(e.to_string()))?;
        if header.schema != HISTORY_SCHEMA {
            return Err(HistoryError::WrongSchema {
                found: header.schema,
                expected: HISTORY_SCHEMA,
            });
        }
        if header.namespace != expected_namespace {
            return Err(HistoryError::ForeignNamespace {
                found: header.namespace,
                expected: expected_namespace.to_string(),
            });
        }
        let mut store: HistoryStore =
            serde_json::from_str(s).map_err(|e| HistoryError::Corrupt(e.to_string()))?;
        for (i, ev) in store.events.iter().enumerate() {
            check_event(i, ev, now)?;
        }
        store.normalise();
        store.cap(limits);
        Ok(store)
    }

    /// Weight of each event for recency: `0.5^(age / half_life)`, age in days before
    /// `now` (events at or after `now` weigh 1).
    pub fn decay_weights(&self, now: f64, limits: &HistoryLimits) -> Vec<f32> {
        let half = limits.half_life_days;
        self.events
            .iter()
            .map(|e| {
                let age = ((now - e.at) / DAY).max(0.0);
                if !age.is_finite() {
                    return 0.0;
                }
                if half.is_nan() || half <= 0.0 {
                    return 1.0;
                }
                0.5f64.powf(age / half) as f32
            })
            .collect()
    }

    /// Drops invalid events, events older than `limits.max_age_days` or more than a day
    /// after `now`, then applies the count and byte caps (oldest first).
    pub fn prune(&mut self, now: f64, limits: &HistoryLimits) {
        let max_age = limits.max_age_days * DAY;
        self.events.retain(|e| {
            check_event(0, e, Some(now)).is_ok() && !(now.is_finite() && now - e.at > max_age)
        });
        self.normalise();
        self.cap(limits);
    }

    /// Count and byte caps, dropping the oldest events first.
    fn cap(&mut self, limits: &HistoryLimits) {
        if self.events.len() > limits.max_events {
            let drop = self.events.len() - limits.max_events;
            self.events.drain(..drop);
        }
        let mut bytes = self.json_bytes();
        let mut drop = 0;
        while bytes > limits.max_bytes && drop < self.events.len() {
            bytes -= event_bytes(&self.events[drop]) + usize::from(self.events.len() - drop > 1);
            drop += 1;
        }
        self.events.drain(..drop);
    }

    /// The events as `(item id, kind, time)`, oldest first, for
    /// [`crate::recommend::Recommender::resolve_history`].
    pub fn entries(&self) -> Vec<(String, EventKind, f64)> {
        self.events
            .iter()
            .map(|e| (e.item.clone(), e.kind, e.at))
            .collect()
    }
}
