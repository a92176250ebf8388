//! [`StrList`]: a column of strings in a few large buffers (chunks of at most 64 KiB).
//!
//! A catalogue holds millions of short strings (item ids, titles, search terms). As a
//! `Vec<String>` each costs a 24-byte header (12 in wasm32) and its own heap block (the
//! allocator's header and rounding on top); a `StrList` stores the text back to back in
//! chunks of at most [`CHUNK_BYTES`] (64 KiB), each string whole in one chunk, and one
//! `u16` end offset per string, within its chunk:
//!
//! ```text
//! chunk k: first = f, text = "S0S1S2…"     ends[f..] = [2, 4, 6, …]
//! string i (in chunk k) = text[start .. ends[i]],  start = 0 if i == f, else ends[i-1]
//! ```
//!
//! String `i`'s chunk is the last whose `first` is at most `i` (a binary search). A
//! string longer than a chunk gets a chunk of its own (its end is the chunk's length,
//! not stored: `ends[i]` is 0), and the next string starts a new chunk. A list that
//! grows never moves its text: a new chunk is added when the last is full, instead of
//! doubling one buffer and copying it, which in wasm would leave the old buffers as
//! holes the memory never gives back (at 1,000,000 titles, about 35 MiB of them).
//!
//! So a string costs its bytes plus 2. At 1,000,000 items that is 9 MiB for ids like
//! `S123456` instead of 31 MiB. It serialises as a plain JSON array of strings (the weight
//! file's format does not change) and deserialises straight into the buffer, without a
//! `String` per element. The total text is capped at `u32::MAX` bytes (a wasm32 memory
//! cannot hold more); deserialising more fails with an error instead of wrapping.
//!
//! [`StrIndex`] looks strings up in a list without a second copy of them: an
//! open-addressing table of list positions, `m = n + ⌊n/3⌋ + 1` slots (at most three
//! quarters full), linear probing from `⌊hash(s) · m / 2^64⌋`, the hash std's keyed
//! SipHash ([`RandomState`]). A probe compares with the list's own string, so the table
//! holds 4 bytes per slot: 5.1 MiB at 1,000,000 items, against about 50 MiB for a
//! `HashMap<&str, usize>` and 70 MiB for a `HashMap<String, u32>` with its own copies.
//! A slot's bits above those a position needs (`b = bits(n)`, 12 of them at 1,000,000
//! items) hold the same bits of the string's hash, a tag: a probe reads the list's
//! string (a cache miss, most of a build's time) only when the tags agree, so building
//! and unsuccessful lookups rarely touch the text. A slot is `tag << b | position`; a
//! position never has all `b` bits set (`position < n < 2^b`), so no slot is `EMPTY`.
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::ops::Index;
use std::sync::Arc;

use serde::de::{Deserialize, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeSeq, Serializer};

/// Largest chunk of text whose strings' ends are stored (`u16` offsets within it); a
/// longer string gets a chunk of its own.
pub const CHUNK_BYTES: usize = u16::MAX as usize;

/// Capacity of a growing list's first chunk (later ones double up to [`CHUNK_BYTES`]).
const FIRST_CHUNK_BYTES: usize = 256;

/// A column of strings stored back to back (see the module doc). Cloning shares the
/// buffer (copy on write), so two holders of the same column hold one copy: the search
/// index stores the catalogue's titles this way ([`StrList::shares_buffer_with`]).
#[derive(Clone, Default)]
pub struct StrList {
    inner: Arc<Inner>,
}

#[derive(Clone, Default)]
struct Inner {
    /// The text in chunks; every string lies whole in one chunk.
    chunks: Vec<Chunk>,
    /// End offset of each string within its chunk (0 for the one string of an
    /// oversized chunk).
    ends: Vec<u16>,
}

/// One piece of a list's text.
#[derive(Clone, Default)]
struct Chunk {
    /// Index of the first string stored in this chunk.
    first: u32,
    /// Offset of `text[0]` in the concatenated text (the list's total stays below
    /// `u32::MAX`).
    base: u32,
    /// The strings `first ..` (up to the next chunk's `first`), concatenated.
    text: String,
}

impl Chunk {
    /// Whether this chunk holds one string longer than [`CHUNK_BYTES`].
    fn oversized(&self) -> bool {
        self.text.len() > CHUNK_BYTES
    }
}

/// The list's text would exceed `u32::MAX` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("string list text exceeds {} bytes", u32::MAX)]
pub struct StrListFull;

impl StrList {
    /// An empty list.
    pub fn new() -> StrList {
        StrList::default()
    }

    /// An empty list with room for `strings` strings of `bytes` bytes in all (its first
    /// chunk holds up to [`CHUNK_BYTES`] of them).
    pub fn with_capacity(strings: usize, bytes: usize) -> StrList {
        let chunks = if bytes == 0 {
            Vec::new()
        } else {
            vec![Chunk {
                first: 0,
                base: 0,
                text: String::with_capacity(bytes.min(CHUNK_BYTES)),
            }]
        };
        StrList {
            inner: Arc::new(Inner {
                chunks,
                ends: Vec::with_capacity(strings),
            }),
        }
    }

    /// Appends `s`; fails (and leaves the list unchanged) when the text would exceed
    /// `u32::MAX` bytes or the list `u32::MAX` strings.
    pub fn push(&mut self, s: &str) -> Result<(), StrListFull> {
        let len = self.text_len();
        u32::try_from(len + s.len()).map_err(|_| StrListFull)?;
        let index = u32::try_from(self.len()).map_err(|_| StrListFull)?;
        let inner = Arc::make_mut(&mut self.inner);
        let fits = |c: &Chunk| {
            let end = c.text.len() + s.len();
            end <= c.text.capacity() && end <= CHUNK_BYTES
        };
        let fresh = match inner.chunks.last() {
            // Empty strings before any text need no chunk.
            None => !s.is_empty(),
            Some(c) => !fits(c),
        };
        if fresh {
            let last = inner.chunks.last().map_or(0, |c| c.text.capacity());
            let capacity = (2 * last)
                .clamp(FIRST_CHUNK_BYTES, CHUNK_BYTES)
                .max(s.len());
            inner.chunks.push(Chunk {
                first: index,
                // `len` <= the new total, checked above to fit a u32.
                base: len as u32,
                text: String::with_capacity(capacity),
            });
        }
        let end = match inner.chunks.last_mut() {
            Some(chunk) => {
                chunk.text.push_str(s);
                // 0 for the one string of an oversized chunk (its end is the chunk's).
                u16::try_from(chunk.text.len()).unwrap_or(0)
            }
            None => 0,
        };
        inner.ends.push(end);
        Ok(())
    }

    /// Number of strings.
    pub fn len(&self) -> usize {
        self.inner.ends.len()
    }

    /// Whether the list holds no string.
    pub fn is_empty(&self) -> bool {
        self.inner.ends.is_empty()
    }

    /// String `i`, if it exists.
    pub fn get(&self, i: usize) -> Option<&str> {
        let k = (self.inner.chunks)
            .partition_point(|c| c.first as usize <= i)
            .checked_sub(1);
        self.in_chunk(i, k)
    }

    /// The chunk holding string `i` (`None`: before the first chunk, where strings are
    /// empty), trying `hint` and the chunk after it before a binary search: a reader
    /// going forward finds it at once.
    fn chunk_of(&self, i: usize, hint: usize) -> Option<usize> {
        let chunks = &self.inner.chunks;
        let holds = |k: usize| {
            chunks.get(k).is_some_and(|c| c.first as usize <= i)
                && chunks.get(k + 1).is_none_or(|c| c.first as usize > i)
        };
        if holds(hint) {
            return Some(hint);
        }
        if holds(hint + 1) {
            return Some(hint + 1);
        }
        chunks
            .partition_point(|c| c.first as usize <= i)
            .checked_sub(1)
    }

    /// String `i`, if it exists, given `k`, the last chunk whose first string is at or
    /// before `i` (none: the strings before the first chunk are empty).
    fn in_chunk(&self, i: usize, k: Option<usize>) -> Option<&str> {
        let ends = &self.inner.ends;
        let end = *ends.get(i)? as usize;
        let Some(chunk) = k.and_then(|k| self.inner.chunks.get(k)) else {
            return Some("");
        };
        if chunk.oversized() {
            return Some(&chunk.text);
        }
        let start = if i == chunk.first as usize {
            0
        } else {
            ends[i - 1] as usize
        };
        // Offsets are only ever written at char boundaries of a chunk's text (by `push`).
        chunk.text.get(start..end)
    }

    /// The first string, if any.
    pub fn first(&self) -> Option<&str> {
        self.get(0)
    }

    /// The strings in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            list: self,
            front: 0,
            back: self.len(),
            chunk: 0,
        }
    }

    /// The strings as owned `String`s (for callers that edit a column).
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_owned).collect()
    }

    /// Frees spare capacity (after building a list of unknown size): the last chunk's
    /// and the offsets'. A buffer shared with a clone is left as it is (shrinking it
    /// would copy it).
    pub fn shrink_to_fit(&mut self) {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            if let Some(chunk) = inner.chunks.last_mut() {
                chunk.text.shrink_to_fit();
            }
            inner.chunks.shrink_to_fit();
            inner.ends.shrink_to_fit();
        }
    }

    /// Heap bytes of the buffer (allocated capacity of the text chunks, their headers
    /// and the offsets), counted in full by every list sharing it.
    pub fn heap_bytes(&self) -> usize {
        let inner = &self.inner;
        inner
            .chunks
            .iter()
            .map(|c| c.text.capacity())
            .sum::<usize>()
            + inner.chunks.capacity() * std::mem::size_of::<Chunk>()
            + inner.ends.capacity() * 2
    }

    /// Total bytes of text.
    pub fn text_len(&self) -> usize {
        (self.inner.chunks.last()).map_or(0, |c| c.base as usize + c.text.len())
    }

    /// Whether `self` and `other` hold the same buffer (one is a clone of the other,
    /// neither changed since).
    pub fn shares_buffer_with(&self, other: &StrList) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl PartialEq for StrList {
    /// The same strings in the same order (however the text is chunked).
    fn eq(&self, other: &StrList) -> bool {
        self.shares_buffer_with(other)
            || (self.len() == other.len() && self.iter().eq(other.iter()))
    }
}

impl Eq for StrList {}

impl std::hash::Hash for StrList {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_usize(self.len());
        for s in self {
            s.hash(state);
        }
    }
}

impl Index<usize> for StrList {
    type Output = str;

    /// String `i`; panics when `i >= len()`, like a slice.
    fn index(&self, i: usize) -> &str {
        match self.get(i) {
            Some(s) => s,
            None => panic!("index {i} out of range for a StrList of {}", self.len()),
        }
    }
}

impl fmt::Debug for StrList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Iterator over a [`StrList`]'s strings.
#[derive(Clone)]
pub struct Iter<'a> {
    list: &'a StrList,
    front: usize,
    back: usize,
    /// The chunk of the last string `next` returned (where it looks first).
    chunk: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.front >= self.back {
            return None;
        }
        let i = self.front;
        self.front += 1;
        let k = self.list.chunk_of(i, self.chunk);
        if let Some(k) = k {
            self.chunk = k;
        }
        self.list.in_chunk(i, k)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back - self.front;
        (n, Some(n))
    }

    fn nth(&mut self, n: usize) -> Option<&'a str> {
        self.front = self.front.saturating_add(n).min(self.back);
        self.next()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front >= self.back {
            return None;
        }
        self.back -= 1;
        self.list.get(self.back)
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a StrList {
    type Item = &'a str;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<S: AsRef<str>> FromIterator<S> for StrList {
    /// Collects strings; panics if their text exceeds `u32::MAX` bytes (for strings the
    /// program made; untrusted input goes through `Deserialize` or [`StrList::push`]).
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> StrList {
        let mut list = StrList::new();
        list.extend_strs(iter);
        list
    }
}

impl From<Vec<String>> for StrList {
    fn from(v: Vec<String>) -> StrList {
        let bytes = v.iter().map(String::len).sum();
        let mut list = StrList::with_capacity(v.len(), bytes);
        list.extend_strs(&v);
        list
    }
}

impl StrList {
    /// Appends every string of `iter` (panicking like `FromIterator` past `u32::MAX`).
    fn extend_strs<S: AsRef<str>>(&mut self, iter: impl IntoIterator<Item = S>) {
        for s in iter {
            if self.push(s.as_ref()).is_err() {
                panic!("StrList text exceeds u32::MAX bytes");
            }
        }
    }
}

impl<S: AsRef<str>> PartialEq<[S]> for StrList {
    fn eq(&self, other: &[S]) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == b.as_ref())
    }
}

impl<S: AsRef<str>, const N: usize> PartialEq<[S; N]> for StrList {
    fn eq(&self, other: &[S; N]) -> bool {
        *self == other[..]
    }
}

impl<S: AsRef<str>> PartialEq<Vec<S>> for StrList {
    fn eq(&self, other: &Vec<S>) -> bool {
        *self == other[..]
    }
}

impl Serialize for StrList {
    fn serialize<Se: Serializer>(&self, serializer: Se) -> Result<Se::Ok, Se::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for s in self {
            seq.serialize_element(s)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for StrList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<StrList, D::Error> {
        // The hint comes from the input: capped, so a lying length allocates nothing
        // large (the list grows past it).
        StrList::deserialize_reserving(deserializer, |hint| hint.unwrap_or(0).min(1 << 16))
    }
}

impl StrList {
    /// Deserialises a list, reserving `strings(size_hint)` offsets first (the caller
    /// bounds it: the format's size hint comes from the input). The offsets grow past
    /// it when there are more strings, and are shrunk to fit when fewer.
    pub fn deserialize_reserving<'de, D: Deserializer<'de>>(
        deserializer: D,
        strings: impl FnOnce(Option<usize>) -> usize,
    ) -> Result<StrList, D::Error> {
        deserializer.deserialize_seq(StrListVisitor(strings))
    }
}

/// Reads a sequence of strings into one list, reserving what its function says.
struct StrListVisitor<F>(F);

/// Pushes one element straight into the list: the string the format hands over
/// (borrowed from the input, or from its scratch buffer when it had to unescape or read
/// it from a stream) is copied into the list's text once, with no `String` of its own.
struct PushElement<'l>(&'l mut StrList);

impl<'de> DeserializeSeed<'de> for PushElement<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for PushElement<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push(v).map_err(E::custom)
    }
}

/// Reads at most `max` more elements of `seq` into `list`; `false` once the sequence has
/// ended. A function of its own, called once per `max` strings rather than inlined into
/// one loop over them all: V8 runs a wasm function in baseline code until that call
/// returns, so a million strings read in one call would all be read by baseline code.
#[inline(never)]
fn read_some<'de, A: SeqAccess<'de>>(
    seq: &mut A,
    list: &mut StrList,
    max: usize,
) -> Result<bool, A::Error> {
    for _ in 0..max {
        if seq.next_element_seed(PushElement(list))?.is_none() {
            return Ok(false);
        }
    }
    Ok(true)
}

impl<'de, F: FnOnce(Option<usize>) -> usize> Visitor<'de> for StrListVisitor<F> {
    type Value = StrList;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrList, A::Error> {
        let mut list = StrList::with_capacity((self.0)(seq.size_hint()), 0);
        while read_some(&mut seq, &mut list, 4096)? {}
        list.shrink_to_fit();
        Ok(list)
    }
}

/// A free slot of a [`StrIndex`] (never a position: lists index with `u32`).
const EMPTY: u32 = u32::MAX;

/// Strings whose homes [`StrIndex::insert_some`] hashes before inserting them.
const HOME_BATCH: usize = 64;

/// String → position in a [`StrList`] (see the module doc); built over one list and
/// queried with that same list.
#[derive(Clone, Debug)]
pub struct StrIndex {
    /// `tag | position` per slot, or [`EMPTY`].
    slots: Vec<u32>,
    /// The bits of a slot that hold the tag (the hash's bits there); the rest hold the
    /// position.
    tag_mask: u32,
    /// The hash function's keys.
    hasher: RandomState,
}

/// Two positions of a list hold the same string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duplicate {
    /// The first position holding it.
    pub first: usize,
    /// The next position holding it.
    pub second: usize,
}

impl StrIndex {
    /// The index of `list` (at most `u32::MAX - 1` strings, else `None`). With a repeated
    /// string, the first position wins.
    pub fn new(list: &StrList) -> Option<StrIndex> {
        Self::build(list, false).ok()?
    }

    /// The index of `list` when its strings are unique; the first repeat found (the
    /// lowest `second`) otherwise. `Ok(None)` when the list is too long to index.
    pub fn new_unique(list: &StrList) -> Result<Option<StrIndex>, Duplicate> {
        Self::build(list, true)
    }

    fn build(list: &StrList, unique: bool) -> Result<Option<StrIndex>, Duplicate> {
        if list.len() >= EMPTY as usize {
            return Ok(None);
        }
        // At most three quarters full (and at least one slot empty).
        let len = list.len() + list.len() / 3 + 1;
        // Positions are below n < 2^bits (n < 2^32 - 1 here, so bits <= 32).
        let bits = u32::BITS - (list.len() as u32).leading_zeros();
        let mut index = StrIndex {
            slots: vec![EMPTY; len],
            tag_mask: u32::MAX.checked_shl(bits).unwrap_or(0),
            hasher: RandomState::new(),
        };
        let mut strings = Some(list.iter().enumerate());
        while let Some(rest) = strings {
            strings = index.insert_some(list, rest, unique)?;
        }
        Ok(Some(index))
    }

    /// Inserts at most 4,096 more of `strings` (positions in `list`); the rest, or `None`
    /// once they are all in (the iterator is moved, not borrowed, so that it stays in
    /// locals here). A function of its own, not inlined: V8 runs a wasm call in baseline
    /// code until it returns, and one call over a million ids would never leave it.
    ///
    /// Two passes per [`HOME_BATCH`] strings: their homes are hashed first, then they
    /// are inserted. The slots a batch probes are independent loads, so the processor
    /// keeps several cache misses in flight instead of one per string (the table is
    /// 5 MiB at a million ids, far larger than the caches); the order of insertion and
    /// so every slot, result and error are those of one pass ([`StrIndex::insert_one`]).
    #[inline(never)]
    fn insert_some<'a>(
        &mut self,
        list: &'a StrList,
        mut strings: std::iter::Enumerate<Iter<'a>>,
        unique: bool,
    ) -> Result<Option<std::iter::Enumerate<Iter<'a>>>, Duplicate> {
        let mut homes = [(0u32, 0usize, 0u32); HOME_BATCH];
        for _ in 0..4096 / HOME_BATCH {
            let mut len = 0;
            for home in homes.iter_mut() {
                let Some((i, s)) = strings.next() else {
                    break;
                };
                let (slot, tag) = self.home(s);
                *home = (i as u32, slot, tag);
                len += 1;
            }
            for &(i, slot, tag) in &homes[..len] {
                self.insert_one(list, i, slot, tag, unique)?;
            }
            if len < HOME_BATCH {
                return Ok(None);
            }
        }
        Ok(Some(strings))
    }

    /// Inserts position `i` of `list`, whose home is `slot` and tag `tag`; with
    /// `unique`, a string already in the table is a [`Duplicate`].
    #[inline]
    fn insert_one(
        &mut self,
        list: &StrList,
        i: u32,
        mut slot: usize,
        tag: u32,
        unique: bool,
    ) -> Result<(), Duplicate> {
        loop {
            match self.slots[slot] {
                EMPTY => {
                    self.slots[slot] = tag | i;
                    return Ok(());
                }
                v if v & self.tag_mask == tag
                    && list.get((v & !self.tag_mask) as usize) == list.get(i as usize) =>
                {
                    if unique {
                        return Err(Duplicate {
                            first: (v & !self.tag_mask) as usize,
                            second: i as usize,
                        });
                    }
                    return Ok(());
                }
                _ => slot = self.next(slot),
            }
        }
    }

    /// The slot a probe for `s` starts at, the hash mapped onto the slots by
    /// multiplication (`hash · slots / 2^64`, every slot equally likely), and its tag
    /// (the hash's low bits under the tag mask).
    #[inline]
    fn home(&self, s: &str) -> (usize, u32) {
        let hash = self.hasher.hash_one(s);
        // < slots.len(): the product is below slots.len() · 2^64.
        let slot = ((u128::from(hash) * self.slots.len() as u128) >> 64) as usize;
        (slot, hash as u32 & self.tag_mask)
    }

    /// The slot after `slot`, wrapping around.
    #[inline]
    fn next(&self, slot: usize) -> usize {
        if slot + 1 == self.slots.len() {
            0
        } else {
            slot + 1
        }
    }

    /// The position of `s`; `list` must be the list the index was built over.
    pub fn get(&self, list: &StrList, s: &str) -> Option<u32> {
        let (mut slot, tag) = self.home(s);
        loop {
            match self.slots[slot] {
                EMPTY => return None,
                v if v & self.tag_mask == tag
                    && list.get((v & !self.tag_mask) as usize) == Some(s) =>
                {
                    return Some(v & !self.tag_mask)
                }
                _ => slot = self.next(slot),
            }
        }
    }

    /// Heap bytes of the table.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn index_finds_what_a_map_finds() {
        let ids: StrList = (0..1000)
            .map(|i| format!("id-{}", i * 7919 % 1013))
            .collect();
        let index = StrIndex::new(&ids).unwrap();
        let mut map = HashMap::new();
        for (i, id) in ids.iter().enumerate() {
            map.entry(id.to_owned()).or_insert(i as u32);
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
        // At most three quarters full: probes end at an empty slot.
        assert!(4 * ids.len() <= 3 * index.slots.len());
        assert!(index.slots.len() <= ids.len() * 4 / 3 + 1);
        assert_eq!(index.heap_bytes(), index.slots.len() * 4);
    }

    #[test]
    fn index_tags_leave_no_slot_empty_looking_at_any_length() {
        // Lengths around the powers of two where the position bits (and so the tag
        // mask) change; every string found where it is, others not, repeats the first.
        for n in [1usize, 2, 3, 4, 7, 8, 9, 255, 256, 257, 4095, 4096, 4097] {
            let ids: StrList = (0..n).map(|i| format!("s{i}")).collect();
            let index = StrIndex::new_unique(&ids).unwrap().unwrap();
            let bits = usize::BITS - n.leading_zeros();
            assert_eq!(index.tag_mask, u32::MAX << bits, "n = {n}");
            let filled = index.slots.iter().filter(|&&v| v != EMPTY).count();
            assert_eq!(filled, n, "n = {n}: every position has a slot");
            for i in 0..n {
                assert_eq!(index.get(&ids, &ids[i]), Some(i as u32), "n = {n}");
            }
            for i in n..n + 50 {
                assert_eq!(index.get(&ids, &format!("s{i}")), None, "n = {n}");
            }
            let twice: StrList = (0..n).chain(0..n).map(|i| format!("s{i}")).collect();
            assert_eq!(
                StrIndex::new_unique(&twice).unwrap_err(),
                Duplicate {
                    first: 0,
                    second: n
                }
            );
            let index = StrIndex::new(&twice).unwrap();
            for i in 0..n {
                assert_eq!(index.get(&twice, &twice[i]), Some(i as u32), "n = {n}");
            }
        }
    }

    #[test]
    fn index_of_empty_one_and_repeated_lists() {
        let none = StrList::new();
        assert_eq!(StrIndex::new(&none).unwrap().get(&none, "a"), None);
        let one: StrList = ["a"].iter().collect();
        let index = StrIndex::new_unique(&one).unwrap().unwrap();
        assert_eq!(index.get(&one, "a"), Some(0));
        assert_eq!(index.get(&one, "b"), None);
        let rep: StrList = ["a", "b", "c", "b", "a"].iter().collect();
        assert_eq!(
            StrIndex::new_unique(&rep).unwrap_err(),
            Duplicate {
                first: 1,
                second: 3
            }
        );
        assert_eq!(StrIndex::new(&rep).unwrap().get(&rep, "a"), Some(0));
    }

    #[test]
    fn get_and_iter_give_back_what_was_pushed() {
        let strs = ["", "S1", "", "café crème", "x"];
        let list: StrList = strs.iter().collect();
        assert_eq!(list.len(), 5);
        for (i, s) in strs.iter().enumerate() {
            assert_eq!(&list[i], *s);
            assert_eq!(list.get(i), Some(*s));
        }
        assert_eq!(list.get(5), None);
        assert_eq!(list.iter().collect::<Vec<_>>(), strs);
        assert_eq!(list.iter().rev().collect::<Vec<_>>()[0], "x");
        assert_eq!(list.iter().nth(3), Some("café crème"));
        assert_eq!(list.iter().len(), 5);
        assert_eq!(list, strs);
        assert_ne!(list, ["", "S1"]);
        let mut list = list;
        list.shrink_to_fit();
        let chunk = std::mem::size_of::<Chunk>();
        assert_eq!(list.heap_bytes(), list.text_len() + 2 * 5 + chunk);
    }

    #[test]
    fn a_grown_list_keeps_its_text_in_chunks_that_never_move() {
        // Lengths 0..=40 (many empty strings at chunk ends), one string longer than a
        // chunk, and enough text for several full chunks.
        let strs: Vec<String> = (0..120_000)
            .map(|i: usize| match i {
                7 | 50_001 | 50_003 => String::new(),
                50_000 => "L".repeat(CHUNK_BYTES + 3),
                50_002 => "x".repeat(CHUNK_BYTES),
                _ => "é".repeat(i * 7919 % 21),
            })
            .collect();
        let mut list = StrList::new();
        let mut moved = 0;
        let mut first_chunk = None;
        for s in &strs {
            list.push(s).unwrap();
            let p = list.inner.chunks.first().map(|c| c.text.as_ptr());
            if first_chunk.is_some() && first_chunk != p {
                moved += 1;
            }
            first_chunk = p;
        }
        assert_eq!(moved, 0, "a chunk's text never moves");
        let chunks = &list.inner.chunks;
        assert!(chunks.len() > 3, "{} chunks", chunks.len());
        assert!(chunks
            .iter()
            .all(|c| c.text.capacity() <= CHUNK_BYTES || c.text.len() == CHUNK_BYTES + 3));
        assert_eq!(list.len(), strs.len());
        assert_eq!(list.text_len(), strs.iter().map(String::len).sum::<usize>());
        for (i, s) in strs.iter().enumerate() {
            assert_eq!(list.get(i), Some(s.as_str()), "string {i}");
        }
        assert_eq!(list.get(strs.len()), None);
        // The iterator (which looks in the last string's chunk first) reads the same,
        // going forward, after a jump, and from both ends.
        assert!(list.iter().eq(strs.iter().map(String::as_str)));
        let mut it = list.iter();
        for (at, jump) in [(0, 7), (8, 30_000), (30_009, 0), (30_010, 50_000)] {
            assert_eq!(it.nth(jump), Some(strs[at + jump].as_str()));
        }
        assert_eq!(it.next_back(), strs.last().map(String::as_str));
        assert!(it.eq(strs[80_011..strs.len() - 1].iter().map(String::as_str)));
        // Equal to the same strings chunked from a known size, with the same hash.
        let one = StrList::from(strs.clone());
        assert_eq!(one, list);
        let state = RandomState::new();
        assert_eq!(state.hash_one(&one), state.hash_one(&list));
        let mut other = strs.clone();
        other[60_000].push('x');
        assert_ne!(StrList::from(other), list);
    }

    #[test]
    fn lists_of_empty_strings_need_no_chunk() {
        let mut list = StrList::new();
        for _ in 0..3 {
            list.push("").unwrap();
        }
        list.push("ab").unwrap();
        assert_eq!(list.inner.chunks.len(), 1);
        assert_eq!(list.inner.chunks[0].first, 3);
        assert_eq!(list, ["", "", "", "ab"]);
        let empty: StrList = ["", ""].iter().collect();
        assert!(empty.inner.chunks.is_empty());
        assert_eq!(empty, ["", ""]);
        assert_ne!(empty, [""]);
    }

    #[test]
    fn clones_share_until_one_changes() {
        let a: StrList = ["x", "yz"].iter().collect();
        let mut b = a.clone();
        assert!(b.shares_buffer_with(&a));
        b.push("w").unwrap();
        assert!(!b.shares_buffer_with(&a));
        assert_eq!(a, ["x", "yz"]);
        assert_eq!(b, ["x", "yz", "w"]);
        let c: StrList = ["x", "yz"].iter().collect();
        assert_eq!(c, a);
        assert!(!c.shares_buffer_with(&a));
        let mut d = a.clone();
        d.shrink_to_fit();
        assert!(
            d.shares_buffer_with(&a),
            "shrinking a shared buffer does not copy it"
        );
    }

    #[test]
    fn json_round_trip_keeps_escapes_and_rejects_non_strings() {
        let list: StrList = ["a\"b", "é\n", "plain"].iter().collect();
        let json = serde_json::to_string(&list).unwrap();
        assert_eq!(json, r#"["a\"b","é\n","plain"]"#);
        let back: StrList = serde_json::from_str(&json).unwrap();
        assert_eq!(back, list);
        let chunk = std::mem::size_of::<Chunk>();
        assert_eq!(back.heap_bytes(), back.text_len() + 2 * 3 + chunk);
        for bad in ["[1]", "[\"a\", null]", "{}", "\"a\""] {
            assert!(serde_json::from_str::<StrList>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn index_past_the_end_panics_like_a_slice() {
        let list: StrList = ["a"].iter().collect();
        let _ = &list[1];
    }
}
