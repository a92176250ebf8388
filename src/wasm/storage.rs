//! Where the shopper's history lives in the browser, and how it survives model updates.
//!
//! **Keys.** One history per store: `localStorage` key `vitrine:v2:<namespace>:history`,
//! where the namespace is the one the page passes (`load(url, { namespace })`) or, by
//! default, the page's origin — never the model, so publishing a retrained model keeps
//! every shopper's history. Every key vitrine writes starts with `vitrine:`
//! ([`KEY_PREFIX`]); `clearHistory()` removes all of them.
//!
//! **Migration at load** ([`HistoryStorage::migrate`]): the old layout kept one key per
//! model, `vitrine:<namespace>:history` (the namespace then defaulted to the first 12 hex
//! digits of the model's content hash and could not contain `:`). Old keys of this store
//! (the same namespace when the page names one; every 12-hex-digit one under the default
//! namespace) are read, merged into the current history and removed — at most
//! [`MAX_LEGACY_KEYS`] per load. Then events of items the loaded model does not know are
//! dropped and counted; `historyInfo()` reports both.
//!
//! **Untrusted values.** A stored value is measured before it is copied out of
//! JavaScript: one longer than `maxBytes` characters (UTF-8 is never shorter than UTF-16,
//! so it is also over `maxBytes` bytes) is discarded unread. A value that is corrupt, of
//! another schema or namespace, or over the limits is discarded (and removed), reported
//! once with `console.warn` and listed in `historyInfo().discarded`; the history starts
//! empty. Nothing read from storage can panic.
//!
//! **Workers** have no `localStorage`: there the history is kept in memory and
//! `www/vitrine.js` hands the page's value in and takes the new one out on every call
//! (`setStoredHistory`/`storedHistory`), migrates at load with `migrateStoredHistory`,
//! and resolves a concurrent write by another tab with `mergeStoredHistory`
//! ([`crate::history::HistoryStore::merge`], three-way).
use std::cell::{Cell, RefCell};

use wasm_bindgen::{JsCast, JsValue};

use crate::history::{HistoryInfo, HistoryLimits, HistoryStore};

/// Prefix of every `localStorage` key vitrine writes.
pub const KEY_PREFIX: &str = "vitrine:";

/// Most old-layout keys read per load (the rest are read at the next load).
pub const MAX_LEGACY_KEYS: usize = 64;

/// Most reasons kept in `historyInfo().discarded`.
const MAX_DISCARDED: usize = 8;

/// The `localStorage` key of a namespace's history.
pub fn history_key(namespace: &str) -> String {
    format!("{KEY_PREFIX}v2:{namespace}:history")
}

/// The namespace of an old-layout key `vitrine:<namespace>:history` (namespace without
/// `:`), or `None` for any other key.
pub fn legacy_namespace(key: &str) -> Option<&str> {
    let ns = key.strip_prefix(KEY_PREFIX)?.strip_suffix(":history")?;
    (!ns.is_empty() && !ns.contains(':')).then_some(ns)
}

/// Whether `ns` looks like the old default namespace (12 lowercase hex digits of a
/// model's content hash).
fn is_content_hash_prefix(ns: &str) -> bool {
    ns.len() == 12 && ns.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A JavaScript string of at most `max` UTF-16 units, copied into Rust; `Err(length)`
/// for a longer one (not copied); `Ok(None)` for anything that is not a string.
pub fn bounded_string(value: &JsValue, max: usize) -> Result<Option<String>, usize> {
    let Some(s) = value.dyn_ref::<js_sys::JsString>() else {
        return Ok(None);
    };
    let len = s.length() as usize;
    if len > max {
        return Err(len);
    }
    Ok(s.as_string())
}

/// Where the raw stored history lives.
enum Store {
    /// `localStorage` (main thread).
    Local(web_sys::Storage),
    /// In memory (workers, or where `localStorage` is unavailable); the main thread may
    /// mirror it with `setStoredHistory`/`storedHistory`.
    Memory(RefCell<Option<String>>),
}

/// A memory-storage method called on an instance that uses `localStorage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}: only for storage: 'memory' (this instance uses localStorage)")]
pub struct NotMemoryStorage(pub &'static str);

/// One store's history in this page or worker.
pub struct HistoryStorage {
    store: Store,
    key: String,
    namespace: String,
    /// Whether the page named the namespace (else it is the origin).
    explicit: bool,
    limits: HistoryLimits,
    warned: Cell<bool>,
    info: RefCell<HistoryInfo>,
}

impl HistoryStorage {
    /// History for `namespace` (`explicit`: named by the page) under `limits`; `local`
    /// asks for `localStorage` (memory, with a warning, where it is unavailable).
    pub fn new(
        namespace: String,
        explicit: bool,
        limits: HistoryLimits,
        local: bool,
    ) -> HistoryStorage {
        // `localStorage` is touched only when asked for: its first access opens the
        // origin's storage (milliseconds in Chromium), which a memory store never reads.
        let store = match local.then(|| web_sys::window().map(|w| w.local_storage())) {
            Some(Some(Ok(Some(s)))) => Store::Local(s),
            Some(_) => {
                super::env::warn(
                    "vitrine: localStorage is unavailable; history is kept in memory only",
                );
                Store::Memory(RefCell::new(None))
            }
            None => Store::Memory(RefCell::new(None)),
        };
        let key = history_key(&namespace);
        let info = HistoryInfo {
            namespace: namespace.clone(),
            storage_key: key.clone(),
            ..HistoryInfo::default()
        };
        HistoryStorage {
            store,
            key,
            namespace,
            explicit,
            limits,
            warned: Cell::new(false),
            info: RefCell::new(info),
        }
    }

    /// The `localStorage` key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The limits applied on every read and write.
    pub fn limits(&self) -> &HistoryLimits {
        &self.limits
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Whether the history is kept in memory (workers, or no `localStorage`).
    pub fn is_memory(&self) -> bool {
        matches!(self.store, Store::Memory(_))
    }

    /// An empty history of this namespace.
    pub fn empty(&self) -> HistoryStore {
        HistoryStore::new(self.namespace.clone())
    }

    /// `localStorage.getItem(key)`, bounded to `max` characters (`Err(length)` beyond).
    fn local_get(s: &web_sys::Storage, key: &str, max: usize) -> Result<Option<String>, usize> {
        let get = js_sys::Reflect::get(s, &JsValue::from_str("getItem"))
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        match get.map(|f| f.call1(s, &JsValue::from_str(key))) {
            Some(Ok(v)) => bounded_string(&v, max),
            _ => Ok(None),
        }
    }

    /// The raw stored value, if any; an oversize one is discarded (removed, reported).
    pub fn load_raw(&self) -> Option<String> {
        let max = self.limits.max_bytes;
        match &self.store {
            Store::Local(s) => match Self::local_get(s, &self.key, max) {
                Ok(v) => v,
                Err(len) => {
                    self.discard(&format!("stored history is {len} characters, over {max}"));
                    self.save_raw(None);
                    None
                }
            },
            Store::Memory(cell) => cell.borrow().clone(),
        }
    }

    /// Replaces (or with `None` deletes) the raw stored value; a failed `localStorage`
    /// write (quota, privacy mode) is warned about once.
    pub fn save_raw(&self, raw: Option<String>) {
        match &self.store {
            Store::Local(s) => {
                let r = match &raw {
                    Some(v) => s.set_item(&self.key, v),
                    None => s.remove_item(&self.key),
                };
                if r.is_err() {
                    self.warn_once("vitrine: could not write the history to localStorage");
                }
            }
            Store::Memory(cell) => *cell.borrow_mut() = raw,
        }
    }

    /// Memory storage only: replaces the value with the main thread's copy, measured
    /// before it is copied (an oversize value is discarded and reported).
    pub fn set_memory(&self, raw: &JsValue) -> Result<(), NotMemoryStorage> {
        let Store::Memory(cell) = &self.store else {
            return Err(NotMemoryStorage("setStoredHistory"));
        };
        let max = self.limits.max_bytes;
        let value = bounded_string(raw, max).unwrap_or_else(|len| {
            self.discard(&format!("stored history is {len} characters, over {max}"));
            None
        });
        *cell.borrow_mut() = value;
        Ok(())
    }

    /// Parses a raw value of this history at `now`; an unreadable one is reported.
    fn parse(&self, raw: &str, now: f64) -> Option<HistoryStore> {
        match HistoryStore::from_json_at(raw, &self.namespace, &self.limits, now) {
            Ok(mut store) => {
                store.prune(now, &self.limits);
                Some(store)
            }
            Err(why) => {
                self.discard(&why.to_string());
                None
            }
        }
    }

    /// The stored history, pruned to the limits at `now` (an unreadable stored value is
    /// removed and reported; the history is then empty).
    pub fn read(&self, now: f64) -> HistoryStore {
        let Some(raw) = self.load_raw() else {
            return self.empty();
        };
        self.parse(&raw, now).unwrap_or_else(|| {
            self.save_raw(None);
            self.empty()
        })
    }

    /// Stores `store` (an empty history removes the key).
    pub fn write(&self, store: &HistoryStore) {
        let raw = (!store.events.is_empty()).then(|| store.to_json());
        self.save_raw(raw);
    }

    /// Removes every vitrine key (`localStorage`: every key starting with `vitrine:`,
    /// all namespaces and old layouts; memory: the value).
    pub fn clear_all(&self) {
        match &self.store {
            Store::Local(s) => {
                let n = s.length().unwrap_or(0);
                let keys: Vec<String> = (0..n)
                    .filter_map(|i| s.key(i).ok().flatten())
                    .filter(|k| k.starts_with(KEY_PREFIX))
                    .collect();
                for k in keys {
                    if s.remove_item(&k).is_err() {
                        self.warn_once("vitrine: could not remove a history key");
                    }
                }
            }
            Store::Memory(cell) => *cell.borrow_mut() = None,
        }
    }

    /// Whether an old-layout key belongs to this store (see the module docs).
    fn wants_legacy(&self, key: &str) -> bool {
        match legacy_namespace(key) {
            Some(ns) if self.explicit => ns == self.namespace,
            Some(ns) => is_content_hash_prefix(ns),
            None => false,
        }
    }

    /// `localStorage` only: the old-layout keys of this store with their values (`None`
    /// when a value is over the size limit), at most [`MAX_LEGACY_KEYS`].
    pub fn local_legacy_entries(&self) -> Vec<(String, Option<String>)> {
        let Store::Local(s) = &self.store else {
            return Vec::new();
        };
        let n = s.length().unwrap_or(0);
        let keys: Vec<String> = (0..n)
            .filter_map(|i| s.key(i).ok().flatten())
            .filter(|k| self.wants_legacy(k))
            .take(MAX_LEGACY_KEYS)
            .collect();
        let max = self.limits.max_bytes;
        (keys.into_iter())
            .map(|k| {
                let v = Self::local_get(s, &k, max).ok().flatten();
                (k, v)
            })
            .collect()
    }

    /// Migration at load: merges the old-layout `legacy` entries of this store (others
    /// are ignored; `None` values count as unreadable) into the current history, drops
    /// events of items `known` rejects, stores the result and reports both in
    /// [`HistoryStorage::info`]. Returns the old keys consumed (removed here from
    /// `localStorage`; the caller removes them in memory mode).
    pub fn migrate(
        &self,
        now: f64,
        known: impl Fn(&str) -> bool,
        legacy: Vec<(String, Option<String>)>,
    ) -> Vec<String> {
        let had = self.load_raw().is_some();
        let mut store = self.read(now);
        let mut consumed = Vec::new();
        for (key, raw) in legacy.into_iter().take(MAX_LEGACY_KEYS) {
            if !self.wants_legacy(&key) {
                continue;
            }
            let parsed = match raw {
                Some(raw) => HistoryStore::adopt_json(&raw, &self.namespace, &self.limits, now)
                    .map_err(|e| e.to_string()),
                None => Err("stored history is over the size limit".to_string()),
            };
            match parsed {
                Ok(old) => {
                    // Union (empty base); both are this namespace's, so this cannot fail.
                    let _ = store.merge(&self.empty(), &old, &self.limits);
                }
                Err(why) => self.discard(&format!("{key}: {why}")),
            }
            consumed.push(key);
        }
        let unknown = store.retain_known(known);
        store.prune(now, &self.limits);
        if had || !consumed.is_empty() {
            self.write(&store);
        }
        if let Store::Local(s) = &self.store {
            for k in &consumed {
                let _ = s.remove_item(k);
            }
        }
        let mut info = self.info.borrow_mut();
        info.migrated_keys.extend(consumed.iter().cloned());
        info.unknown = unknown;
        consumed
    }

    /// Three-way merge of raw values for a concurrent write by another tab
    /// ([`HistoryStore::merge`]): `mine` was computed from `base`, `theirs` is what the
    /// other tab stored meanwhile. An unreadable value counts as empty. `None` when the
    /// result is empty.
    pub fn merge_raw(
        &self,
        base: Option<&str>,
        mine: Option<&str>,
        theirs: Option<&str>,
        now: f64,
    ) -> Option<String> {
        let read = |raw: Option<&str>| {
            raw.and_then(|r| self.parse(r, now))
                .unwrap_or_else(|| self.empty())
        };
        let mut merged = read(mine);
        // Same namespace and schema by construction: the merge cannot fail.
        let _ = merged.merge(&read(base), &read(theirs), &self.limits);
        (!merged.events.is_empty()).then(|| merged.to_json())
    }

    /// What the store did since load, with the current number of events.
    pub fn info(&self, now: f64) -> HistoryInfo {
        let events = self.read(now).events.len();
        HistoryInfo {
            events,
            ..self.info.borrow().clone()
        }
    }

    /// Reports a discarded stored value (warned once, listed in `info`).
    fn discard(&self, why: &str) {
        self.warn_once(&format!("vitrine: {why}; the history was reset"));
        let mut info = self.info.borrow_mut();
        if info.discarded.len() < MAX_DISCARDED {
            info.discarded.push(why.to_string());
        }
    }

    fn warn_once(&self, msg: &str) {
        if !self.warned.replace(true) {
            super::env::warn(msg);
        }
    }
}
