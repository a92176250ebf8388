//! Where the shopper's history lives in the browser: `localStorage` under
//! `vitrine:<namespace>:history` (main thread) or memory (Web Workers, which have no
//! `localStorage`; `www/vitrine.js` mirrors the page's value in and out per call, retrying
//! when another tab wrote meanwhile).
//!
//! Every read validates and prunes the stored value with [`HistoryStore`]'s rules (cap,
//! age limit, dedup); a corrupt, foreign or oversized value is reported once with
//! `console.warn` and reset. Writes re-read first (the caller applies its change on top
//! of a fresh read), so two tabs of the same store do not overwrite each other.
use std::cell::{Cell, RefCell};

use crate::history::{HistoryLimits, HistoryStore};

/// Where the raw stored history lives.
enum Store {
    /// `localStorage` under a namespaced key (main thread).
    Local(web_sys::Storage),
    /// In memory (workers, or where `localStorage` is unavailable); the main thread may
    /// mirror it with `setStoredHistory`/`storedHistory`.
    Memory(RefCell<Option<String>>),
}

/// `setStoredHistory` on an instance that uses `localStorage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("setStoredHistory: only for storage: 'memory' (this instance uses localStorage)")]
pub struct NotMemoryStorage;

/// One model's history store in this page or worker.
pub struct HistoryStorage {
    store: Store,
    key: String,
    namespace: String,
    limits: HistoryLimits,
    warned: Cell<bool>,
}

impl HistoryStorage {
    /// History for `namespace` under `limits`; `local` asks for `localStorage` (memory,
    /// with a warning, where it is unavailable).
    pub fn new(namespace: String, limits: HistoryLimits, local: bool) -> HistoryStorage {
        let store = if local {
            match web_sys::window().map(|w| w.local_storage()) {
                Some(Ok(Some(s))) => Store::Local(s),
                _ => {
                    super::env::warn(
                        "vitrine: localStorage is unavailable; history is kept in memory only",
                    );
                    Store::Memory(RefCell::new(None))
                }
            }
        } else {
            Store::Memory(RefCell::new(None))
        };
        HistoryStorage {
            store,
            key: format!("vitrine:{namespace}:history"),
            namespace,
            limits,
            warned: Cell::new(false),
        }
    }

    /// The `localStorage` key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The namespace stored histories carry.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The limits applied on every read and write.
    pub fn limits(&self) -> &HistoryLimits {
        &self.limits
    }

    /// The raw stored value, if any.
    pub fn load_raw(&self) -> Option<String> {
        match &self.store {
            Store::Local(s) => s.get_item(&self.key).ok().flatten(),
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

    /// Memory storage only: replaces the value with the main thread's copy.
    pub fn set_memory(&self, raw: Option<String>) -> Result<(), NotMemoryStorage> {
        match &self.store {
            Store::Memory(cell) => {
                *cell.borrow_mut() = raw;
                Ok(())
            }
            Store::Local(_) => Err(NotMemoryStorage),
        }
    }

    /// The stored history, pruned to the limits at `now` (a corrupt, foreign or oversized
    /// stored value is reset, with one console warning).
    pub fn read(&self, now: f64) -> HistoryStore {
        let Some(raw) = self.load_raw() else {
            return HistoryStore::new(self.namespace.clone());
        };
        match HistoryStore::from_json_at(&raw, &self.namespace, &self.limits, now) {
            Ok(mut store) => {
                store.prune(now, &self.limits);
                store
            }
            Err(why) => {
                self.warn_once(&format!("vitrine: {why}; the history was reset"));
                self.save_raw(None);
                HistoryStore::new(self.namespace.clone())
            }
        }
    }

    /// Stores `store`.
    pub fn write(&self, store: &HistoryStore) {
        self.save_raw(Some(store.to_json()));
    }

    fn warn_once(&self, msg: &str) {
        if !self.warned.replace(true) {
            super::env::warn(msg);
        }
    }
}
