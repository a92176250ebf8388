//! The catalogue's item id → index lookup without a second copy of the ids.
//!
//! An open-addressing table of catalogue indices: `2^b ≥ 2n` slots (at most half full),
//! linear probing from `hash(id) mod 2^b`, the hash std's keyed SipHash
//! ([`RandomState`]). A probe compares the id with the catalogue's own string
//! (`ids[slot]`), so the table holds 4 bytes per slot and no strings: 8 MiB at 1,000,000
//! items, against about 70 MiB for a `HashMap<String, u32>` with its own copies of the
//! ids. Lookups return exactly what the map did: the catalogue index of the id
//! (ids are unique, [`crate::format::validate_metadata`]; with a duplicate the first
//! occurrence wins).
use std::hash::{BuildHasher, RandomState};

/// A free slot (never a catalogue index: catalogues hold at most 20,000,000 items).
const EMPTY: u32 = u32::MAX;

/// Item id → catalogue index over a catalogue's id column (see the module docs).
pub(crate) struct IdIndex {
    /// Catalogue index per slot, or [`EMPTY`].
    slots: Vec<u32>,
    /// The hash function's keys.
    hasher: RandomState,
}

impl IdIndex {
    /// The index of `ids` (catalogue order).
    pub(crate) fn new(ids: &[String]) -> IdIndex {
        let len = ids.len().saturating_mul(2).next_power_of_two().max(2);
        let mut index = IdIndex {
            slots: vec![EMPTY; len],
            hasher: RandomState::new(),
        };
        let mask = len - 1;
        for (i, id) in ids.iter().enumerate() {
            let mut s = index.home(id) & mask;
            loop {
                match index.slots[s] {
                    EMPTY => {
                        index.slots[s] = i as u32;
                        break;
                    }
                    j if ids[j as usize] == *id => break,
                    _ => s = (s + 1) & mask,
                }
            }
        }
        index
    }

    /// The slot a probe for `id` starts at (before the mask).
    fn home(&self, id: &str) -> usize {
        self.hasher.hash_one(id) as usize
    }

    /// The catalogue index of `id`; `ids` must be the column the index was built over.
    pub(crate) fn get(&self, ids: &[String], id: &str) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut s = self.home(id) & mask;
        loop {
            match self.slots[s] {
                EMPTY => return None,
                j if ids.get(j as usize).is_some_and(|x| x == id) => return Some(j),
                _ => s = (s + 1) & mask,
            }
        }
    }

    /// Heap bytes of the table.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn finds_what_a_map_finds() {
        let ids: Vec<String> = (0..1000)
            .map(|i| format!("id-{}", i * 7919 % 1013))
            .collect();
        let index = IdIndex::new(&ids);
        let mut map = HashMap::new();
        for (i, id) in ids.iter().enumerate() {
            map.entry(id.clone()).or_insert(i as u32);
        }
        for probe in (0..1100)
            .map(|i| format!("id-{i}"))
            .chain(["".into(), "x".into()])
        {
            assert_eq!(
                index.get(&ids, &probe),
                map.get(&probe).copied(),
                "{probe:?}"
            );
        }
        // At most half full: probes end at an empty slot.
        assert!(index.slots.len() >= 2 * ids.len());
    }

    #[test]
    fn empty_and_one_item_catalogues() {
        let none: Vec<String> = Vec::new();
        assert_eq!(IdIndex::new(&none).get(&none, "a"), None);
        let one = vec!["a".to_string()];
        let index = IdIndex::new(&one);
        assert_eq!(index.get(&one, "a"), Some(0));
        assert_eq!(index.get(&one, "b"), None);
    }
}
