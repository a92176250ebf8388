//! The shopper's browsing history: the events the user encoder reads, and the rules
//! that keep the on-device store bounded (cap, age limit, dedup, validation, merge).
//!
//! Used by the storefront runtime (history kept in `localStorage`, never sent anywhere),
//! by the CLI's `recommend --history`, and by the data loaders (each user's sequence is
//! a `Vec<HistoryEvent>`).
//!
//! ## The stored history and its rules
//!
//! The browser keeps a [`HistoryStore`]: the store's item **ids** (never catalogue
//! indices, so a retrained model with a reordered or changed catalogue still reads it),
//! the event kind and the time in Unix seconds, oldest first. Its rules:
//!
//! - **Bounds.** At most `maxEvents` events and `maxBytes` bytes of JSON (oldest dropped
//!   first) and nothing older than `maxAgeDays`; a page may raise the defaults (200
//!   events, 64 KiB, 180 days, 30 min) only up to [`MAX_EVENTS_CEILING`],
//!   [`MAX_BYTES_CEILING`], [`MAX_AGE_DAYS_CEILING`] and [`DEDUP_WINDOW_CEILING`]. A
//!   stored value longer than `maxBytes` is refused before it is parsed.
//! - **Dedup rule** (the only way an event the shopper made is not kept, below the caps):
//!   a repeated view, or a repeated cart, of the same item within `dedupWindowSecs` of
//!   the earlier one moves the earlier event to the new time instead of adding one;
//!   purchases are never merged; two events with the same item, kind and time are one.
//! - **Cross-tab merge** ([`HistoryStore::merge`]): when another tab wrote while this one
//!   computed its change, the result is three-way: the other tab's value, minus the events
//!   this change removed, plus the events it added — `theirs − (base − mine) ∪ (mine −
//!   base)`, events compared by `(item, kind, at)` — then sorted and capped. Both tabs'
//!   new events survive; a clear or an import in one tab does not resurrect what it
//!   removed.
//! - **Catalogue changes** ([`HistoryStore::retain_known`]): after a model update, events
//!   of items the model does not know are dropped and counted ([`UnknownItems`]).
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

/// Largest `maxEvents` a page may set.
pub const MAX_EVENTS_CEILING: usize = 5_000;
/// Largest `maxBytes` a page may set (1 MiB); also the largest export `importHistory`
/// accepts, checked on its length before it is parsed.
pub const MAX_BYTES_CEILING: usize = 1 << 20;
/// Largest `maxAgeDays` a page may set (ten years).
pub const MAX_AGE_DAYS_CEILING: f64 = 3_650.0;
/// Largest `dedupWindowSecs` a page may set (one week).
pub const DEDUP_WINDOW_CEILING: f64 = 7.0 * DAY;
/// How many distinct unknown ids a report lists (the count covers all of them).
pub const UNKNOWN_SAMPLE: usize = 5;

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
    /// Most events kept (oldest dropped first). Default 200, at most
    /// [`MAX_EVENTS_CEILING`].
    pub max_events: usize,
    /// Most bytes of the stored JSON (oldest dropped first). Default 64 KiB, at most
    /// [`MAX_BYTES_CEILING`].
    pub max_bytes: usize,
    /// Events older than this many days are dropped. Default 180, at most
    /// [`MAX_AGE_DAYS_CEILING`].
    pub max_age_days: f64,
    /// A repeated view (or cart) of the same item within this many seconds updates the
    /// earlier event's time instead of appending. Default 30 minutes, at most
    /// [`DEDUP_WINDOW_CEILING`]. (JSON also accepts `dedupSeconds`.)
    #[serde(alias = "dedupSeconds")]
    pub dedup_window_secs: f64,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        HistoryLimits {
            max_events: 200,
            max_bytes: 64 * 1024,
            max_age_days: 180.0,
            dedup_window_secs: 30.0 * 60.0,
        }
    }
}

impl HistoryLimits {
    /// Checks that the limits are usable and bounded: 1 to [`MAX_EVENTS_CEILING`]
    /// events, 256 to [`MAX_BYTES_CEILING`] bytes, a maximum age in (0,
    /// [`MAX_AGE_DAYS_CEILING`]] days, a dedup window in [0, [`DEDUP_WINDOW_CEILING`]]
    /// seconds.
    pub fn validate(&self) -> Result<(), HistoryError> {
        let bad = |m: String| Err(HistoryError::InvalidLimits(m));
        if !(1..=MAX_EVENTS_CEILING).contains(&self.max_events) {
            return bad(format!("maxEvents must be 1 to {MAX_EVENTS_CEILING}"));
        }
        if !(256..=MAX_BYTES_CEILING).contains(&self.max_bytes) {
            return bad(format!("maxBytes must be 256 to {MAX_BYTES_CEILING}"));
        }
        if !(self.max_age_days > 0.0 && self.max_age_days <= MAX_AGE_DAYS_CEILING) {
            return bad(format!(
                "maxAgeDays must be a positive number of at most {MAX_AGE_DAYS_CEILING}"
            ));
        }
        if !(self.dedup_window_secs >= 0.0 && self.dedup_window_secs <= DEDUP_WINDOW_CEILING) {
            return bad(format!(
                "dedupWindowSecs must be a number from 0 to {DEDUP_WINDOW_CEILING}"
            ));
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

/// The header alone, read when a stored value does not parse as a whole, so that a newer
/// layout reports [`HistoryError::WrongSchema`] (and another page's history
/// [`HistoryError::ForeignNamespace`]) rather than [`HistoryError::Corrupt`].
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

/// The longest JSON an event's fields other than the item id's characters can take:
/// `{"item":"","kind":"purchase","at":}` is 35 bytes and a finite time at most 24.
const EVENT_JSON_FIXED_MAX: usize = 64;

/// An upper bound on [`event_bytes`] without writing the JSON: each byte of the item id
/// takes at most 6 in JSON (`\u001f`).
fn event_bytes_bound(ev: &StoredEvent) -> usize {
    EVENT_JSON_FIXED_MAX.saturating_add(ev.item.len().saturating_mul(6))
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
        crate::sort::sort_by(&mut self.events, |a, b| a.at.total_cmp(&b.at));
        // Sorted by time, equal events are neighbours in a run of equal times: where no
        // two neighbours share a time there is nothing to remove (the usual history,
        // read from storage on every request), and no set of ids is built.
        if (self.events.windows(2)).all(|w| w[0].at.to_bits() != w[1].at.to_bits()) {
            return;
        }
        let mut seen = std::collections::HashSet::new();
        self.events
            .retain(|e| seen.insert((e.item.clone(), e.kind, e.at.to_bits())));
    }

    /// Checks that `other` belongs to this history (same namespace and schema).
    fn same_history(&self, other: &HistoryStore) -> Result<(), HistoryError> {
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
        Ok(())
    }

    /// Three-way merge for two writers of the same history (two tabs): `self` is this
    /// writer's result ("mine"), computed from `base`; `theirs` is what the other writer
    /// stored meanwhile. `self` becomes `theirs − (base − mine) ∪ (mine − base)` (events
    /// compared by `(item, kind, at)`), sorted by time and capped by `limits` (count and
    /// bytes, oldest dropped first): every event either side added is kept below the
    /// caps, and what this writer removed (dedup, clear, import) stays removed. With an
    /// empty `base` it is the union of both.
    pub fn merge(
        &mut self,
        base: &HistoryStore,
        theirs: &HistoryStore,
        limits: &HistoryLimits,
    ) -> Result<(), HistoryError> {
        self.same_history(base)?;
        self.same_history(theirs)?;
        type Key = (String, EventKind, u64);
        let key = |e: &StoredEvent| -> Key { (e.item.clone(), e.kind, e.at.to_bits()) };
        let mine: std::collections::HashSet<Key> = self.events.iter().map(key).collect();
        let base_keys: std::collections::HashSet<Key> = base.events.iter().map(key).collect();
        let removed: std::collections::HashSet<&Key> = base_keys.difference(&mine).collect();
        let added: Vec<StoredEvent> = (self.events.iter())
            .filter(|e| !base_keys.contains(&key(e)))
            .cloned()
            .collect();
        self.events = (theirs.events.iter())
            .filter(|e| !removed.contains(&key(e)))
            .cloned()
            .chain(added)
            .collect();
        self.normalise();
        self.cap(limits);
        Ok(())
    }

    /// Keeps the events whose item `known` accepts (the loaded model's catalogue) and
    /// reports the others: how many events were dropped and the first
    /// [`UNKNOWN_SAMPLE`] distinct ids.
    pub fn retain_known(&mut self, known: impl Fn(&str) -> bool) -> UnknownItems {
        let mut unknown = UnknownItems::default();
        self.events.retain(|e| {
            if known(&e.item) {
                return true;
            }
            unknown.events += 1;
            if unknown.ids.len() < UNKNOWN_SAMPLE && !unknown.ids.contains(&e.item) {
                unknown.ids.push(e.item.clone());
            }
            false
        });
        unknown
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
        Self::parse(s, Some(expected_namespace), limits, None)
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
        Self::parse(s, Some(expected_namespace), limits, Some(now))
    }

    /// Reads a history written under any namespace (an older model's key, an export from
    /// another page of the store) with the checks of [`HistoryStore::from_json_at`], and
    /// adopts it into `namespace`.
    pub fn adopt_json(
        s: &str,
        namespace: &str,
        limits: &HistoryLimits,
        now: f64,
    ) -> Result<HistoryStore, HistoryError> {
        let mut store = Self::parse(s, None, limits, Some(now))?;
        store.namespace = namespace.to_string();
        Ok(store)
    }

    fn parse(
        s: &str,
        expected_namespace: Option<&str>,
        limits: &HistoryLimits,
        now: Option<f64>,
    ) -> Result<HistoryStore, HistoryError> {
        if s.len() > limits.max_bytes {
            return Err(HistoryError::TooLarge {
                bytes: s.len(),
                max: limits.max_bytes,
            });
        }
        // `from_slice`, not `from_str`: the same parse of valid UTF-8, and one JSON reader
        // fewer in the wasm package (docs/benchmarks/engines-log.md, "A smaller module at
        // the same speed"). One parse of the whole value where it reads (every request
        // reads the stored history); the header alone only to name what a value that does
        // not read is: a newer layout or another namespace rather than a corrupt one,
        // checked in the same order as before.
        let check = |schema: u32, namespace: &str| {
            if schema != HISTORY_SCHEMA {
                return Err(HistoryError::WrongSchema {
                    found: schema,
                    expected: HISTORY_SCHEMA,
                });
            }
            match expected_namespace.filter(|e| *e != namespace) {
                Some(expected) => Err(HistoryError::ForeignNamespace {
                    found: namespace.to_string(),
                    expected: expected.to_string(),
                }),
                None => Ok(()),
            }
        };
        let mut store = match serde_json::from_slice::<HistoryStore>(s.as_bytes()) {
            Ok(store) => {
                check(store.schema, &store.namespace)?;
                store
            }
            Err(whole) => {
                let header: Header = serde_json::from_slice(s.as_bytes())
                    .map_err(|e| HistoryError::Corrupt(e.to_string()))?;
                check(header.schema, &header.namespace)?;
                return Err(HistoryError::Corrupt(whole.to_string()));
            }
        };
        for (i, ev) in store.events.iter().enumerate() {
            check_event(i, ev, now)?;
        }
        store.normalise();
        store.cap(limits);
        Ok(store)
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
        // Most histories are far below the byte cap: a bound on their JSON's size, from
        // the ids' lengths, settles it without writing every event's JSON (a read from
        // storage on every request prunes and caps).
        let bound = self
            .events
            .iter()
            .map(event_bytes_bound)
            .fold(self.envelope_bytes(), usize::saturating_add)
            .saturating_add(self.events.len());
        if bound <= limits.max_bytes {
            return;
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

/// Events dropped because the loaded model does not know their item (a model update
/// removed it, or an export came from another catalogue).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UnknownItems {
    /// How many events were dropped.
    pub events: usize,
    /// The first [`UNKNOWN_SAMPLE`] distinct unknown ids, in history order.
    pub ids: Vec<String>,
}

/// What `importHistory` did with an export.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// Events stored after the import (after the limits).
    pub kept: usize,
    /// Events in the export.
    pub read: usize,
    /// Events skipped because this model does not know their item.
    pub unknown: UnknownItems,
    /// Events dropped by the history limits (count, bytes, age) after the unknown ones.
    pub over_limits: usize,
}

/// What the history store did at load and since (`historyInfo()`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryInfo {
    /// The namespace (the store; default the page's origin).
    pub namespace: String,
    /// The `localStorage` key of the history.
    pub storage_key: String,
    /// Events stored now.
    pub events: usize,
    /// Keys of the old layout (`vitrine:<namespace>:history`, one per model) read into
    /// this history at load and removed.
    pub migrated_keys: Vec<String>,
    /// Events dropped at load because this model does not know their item.
    pub unknown: UnknownItems,
    /// Stored values discarded as unreadable since load (corrupt, foreign, too large),
    /// with the reason; at most the first 8.
    pub discarded: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_bound_is_never_below_the_json() {
        let ids = [
            "a".to_string(),
            "\u{1}\u{1f}\"\\".repeat(40),
            "é✓😀".repeat(30),
            "x".repeat(300),
        ];
        let times = [0.0, 5e-324, 1e-300, 1_234_567_890.123_456_7, f64::MAX];
        for item in &ids {
            for kind in EventKind::ALL {
                for at in times {
                    let ev = StoredEvent {
                        item: item.clone(),
                        kind,
                        at,
                    };
                    assert!(
                        event_bytes(&ev) <= event_bytes_bound(&ev),
                        "{ev:?}: {} > {}",
                        event_bytes(&ev),
                        event_bytes_bound(&ev)
                    );
                }
            }
        }
    }

    #[test]
    fn normalise_sorts_and_removes_exact_duplicates_only() {
        let ev = |item: &str, kind, at| StoredEvent {
            item: item.to_string(),
            kind,
            at,
        };
        let mut store = HistoryStore::new("ns");
        store.events = vec![
            ev("b", EventKind::View, 30.0),
            ev("a", EventKind::View, 10.0),
            ev("a", EventKind::Cart, 20.0),
            ev("c", EventKind::View, 20.0),
            ev("a", EventKind::Cart, 20.0),
            ev("c", EventKind::Purchase, 20.0),
            ev("b", EventKind::View, 30.0),
            ev("b", EventKind::View, 31.0),
        ];
        store.normalise();
        let got: Vec<(&str, EventKind, f64)> = (store.events.iter())
            .map(|e| (e.item.as_str(), e.kind, e.at))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", EventKind::View, 10.0),
                ("a", EventKind::Cart, 20.0),
                ("c", EventKind::View, 20.0),
                ("c", EventKind::Purchase, 20.0),
                ("b", EventKind::View, 30.0),
                ("b", EventKind::View, 31.0),
            ]
        );
        // Distinct times: sorted, nothing removed, even for a repeated item and kind.
        store.events = vec![
            ev("a", EventKind::View, 2.0),
            ev("a", EventKind::View, 1.0),
            ev("a", EventKind::View, 3.0),
        ];
        store.normalise();
        let times: Vec<f64> = store.events.iter().map(|e| e.at).collect();
        assert_eq!(times, vec![1.0, 2.0, 3.0]);
    }

    #[test]
    fn the_byte_cap_still_drops_the_oldest_events() {
        let limits = HistoryLimits {
            max_bytes: 2_000,
            ..HistoryLimits::default()
        };
        let mut store = HistoryStore::new("ns");
        store.events = (0..100)
            .map(|i| StoredEvent {
                item: format!("item-{i}"),
                kind: EventKind::View,
                at: 1_000.0 + i as f64,
            })
            .collect();
        store.cap(&limits);
        assert!(store.json_bytes() <= limits.max_bytes);
        assert!(store.events.len() < 100 && !store.events.is_empty());
        assert_eq!(
            store.events.last().map(|e| e.item.as_str()),
            Some("item-99")
        );
        // One more event would not have fitted: the fewest were dropped.
        let first = store.events[0].at as usize - 1_000;
        let mut wider = store.clone();
        wider.events.insert(
            0,
            StoredEvent {
                item: format!("item-{}", first - 1),
                kind: EventKind::View,
                at: store.events[0].at - 1.0,
            },
        );
        assert!(wider.json_bytes() > limits.max_bytes);
    }
}
