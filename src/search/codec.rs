//! The byte format of a search index (spec: `docs/search.md`).
//!
//! ```text
//! header (44 bytes)
//!   0   4  magic "VSRX"
//!   4   2  version, u16 LE (= 1)
//!   6   2  reserved, u16 LE (= 0)
//!   8   4  payload length, u32 LE (≤ MAX_PAYLOAD_BYTES)
//!   12 32  SHA-256 of the payload
//! payload (integers are LEB128 u32 varints, at most 5 bytes)
//!   n_docs, n_categories, n_terms
//!   n_categories × (len, UTF-8 bytes)                 category names
//!   n_docs × (category id + 1 or 0 for none, len, UTF-8 bytes)   documents
//!   n_terms × (shared prefix len, suffix len, suffix bytes, df,
//!              df × (doc id delta, title tf, other tf))         terms, front-coded
//! ```
//!
//! Loading checks, in order: header, payload length, hash, then every count against the
//! bytes left before allocating for it (each element takes at least one byte, so no
//! vector is larger than the payload), then the index rules of
//! [`SearchIndex::from_parts`] (sorted unique terms, postings in range and increasing).
//! The term dictionary is rebuilt from the sorted terms, so untrusted bytes never reach
//! `fst`'s reader.

use sha2::{Digest, Sha256};

use super::index::{
    Parts, SearchIndex, MAX_CATEGORIES, MAX_CATEGORY_BYTES, MAX_DOCS, MAX_TERMS, MAX_TERM_BYTES,
    MAX_TITLE_BYTES,
};
use super::postings::PostingLists;
use super::SearchIndexError;
use crate::strs::StrList;

/// The four bytes every index starts with.
pub const MAGIC: [u8; 4] = *b"VSRX";
/// The format version written and read.
pub const VERSION: u16 = 1;
/// Header length: magic, version, reserved, payload length, SHA-256.
pub const HEADER_BYTES: usize = 44;
/// Largest payload accepted (256 MiB).
pub const MAX_PAYLOAD_BYTES: usize = 256 << 20;

impl SearchIndex {
    /// Serialises the index (format in the [module doc](self) and `docs/search.md`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut p = Vec::new();
        put(&mut p, self.titles.len() as u32);
        put(&mut p, self.categories.len() as u32);
        put(&mut p, self.terms.len() as u32);
        for c in &self.categories {
            put_str(&mut p, c);
        }
        for (t, &c) in self.titles.iter().zip(&self.doc_cat) {
            put(&mut p, c.wrapping_add(1));
            put_str(&mut p, t);
        }
        let mut prev: &[u8] = &[];
        for (id, term) in self.terms.iter().enumerate() {
            let b = term.as_bytes();
            let shared = b.iter().zip(prev).take_while(|(x, y)| x == y).count();
            put(&mut p, shared as u32);
            put(&mut p, (b.len() - shared) as u32);
            p.extend_from_slice(&b[shared..]);
            let list = self.postings(id as u32);
            put(&mut p, list.len() as u32);
            let mut last = 0u32;
            for q in list {
                put(&mut p, q.doc - last);
                put(&mut p, u32::from(q.title_tf));
                put(&mut p, u32::from(q.other_tf));
                last = q.doc;
            }
            prev = b;
        }
        let mut out = Vec::with_capacity(HEADER_BYTES + p.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(&Sha256::digest(&p));
        out.extend_from_slice(&p);
        out
    }

    /// Loads an index written by [`SearchIndex::to_bytes`]. Untrusted input: every
    /// failure is a [`SearchIndexError`], never a panic, and no allocation exceeds a
    /// small multiple of `bytes.len()`.
    pub fn from_bytes(bytes: &[u8]) -> Result<SearchIndex, SearchIndexError> {
        SearchIndex::decode::<[u8]>(bytes, None, true)
    }

    /// [`SearchIndex::from_bytes`] for an index of `titles`' catalogue: when the stored
    /// titles are exactly `titles` (as a weight file's index and catalogue are), the
    /// index shares that buffer (a [`StrList`] clone) and never holds a copy,
    /// not even while it loads. Otherwise it keeps its own, as `from_bytes` does; the
    /// index answers the same either way.
    pub fn from_bytes_sharing_titles(
        bytes: &[u8],
        titles: &StrList,
    ) -> Result<SearchIndex, SearchIndexError> {
        SearchIndex::decode::<[u8]>(bytes, Some(titles), true)
    }

    /// [`SearchIndex::from_bytes_sharing_titles`] reading the index's bytes where they
    /// lie (in the browser, the page's copy of the weight file), a window of at most
    /// 64 KiB at a time: the section is never copied whole into memory. Same checks,
    /// same errors, the same index.
    pub fn from_source_sharing_titles<S: IndexSource + ?Sized>(
        bytes: &S,
        titles: &StrList,
    ) -> Result<SearchIndex, SearchIndexError> {
        SearchIndex::decode(bytes, Some(titles), true)
    }

    /// [`SearchIndex::from_source_sharing_titles`] for a section that lies in a weight
    /// file whose content hash covers it, and whose caller compares that hash before it
    /// uses the index (as [`crate::recommend::Recommender::from_open`]'s does): the
    /// section's own SHA-256 is not taken again (0.14 s of a load at 1,000,000 items).
    /// Every other check is made, so a section that fails only its own hash loads.
    pub fn from_hashed_source_sharing_titles<S: IndexSource + ?Sized>(
        bytes: &S,
        titles: &StrList,
    ) -> Result<SearchIndex, SearchIndexError> {
        SearchIndex::decode(bytes, Some(titles), false)
    }

    fn decode<S: IndexSource + ?Sized>(
        bytes: &S,
        share: Option<&StrList>,
        check_hash: bool,
    ) -> Result<SearchIndex, SearchIndexError> {
        let mut r = check_header(bytes, check_hash)?;
        let n_docs = r.count("documents", MAX_DOCS, 2)?;
        let n_cats = r.count("categories", MAX_CATEGORIES, 1)?;
        let n_terms = r.count("terms", MAX_TERMS, 3)?;
        let mut categories = Vec::with_capacity(n_cats);
        for _ in 0..n_cats {
            categories.push(r.str("category", MAX_CATEGORY_BYTES)?.into());
        }
        // While every title so far equals the shared list's, none is copied; at the
        // first difference the ones before it are copied from the shared list.
        let mut shared = share.filter(|t| t.len() == n_docs);
        // The shared list read alongside (in step with `i`; a lookup by position would
        // search its chunks every time).
        let mut shared_titles = shared.map(StrList::iter);
        let mut titles = StrList::with_capacity(if shared.is_some() { 0 } else { n_docs }, 0);
        let mut doc_cat = Vec::with_capacity(n_docs);
        // The payload is at most 256 MiB, so its titles fit a StrList.
        let full = |_| SearchIndexError::Truncated { what: "title" };
        // Each document (and below, each term) in a call of its own, not inlined: V8 runs
        // a wasm call in baseline code until it returns, and one call over a million
        // documents would never leave it.
        each(
            n_docs,
            #[inline(never)]
            |i| {
                doc_cat.push(r.varint()?.wrapping_sub(1));
                let title = r.str("title", MAX_TITLE_BYTES)?;
                if let (Some(list), Some(next)) = (shared, shared_titles.as_mut()) {
                    if next.next() == Some(title) {
                        return Ok(());
                    }
                    titles = StrList::with_capacity(n_docs, 0);
                    for earlier in list.iter().take(i) {
                        titles.push(earlier).map_err(full)?;
                    }
                    shared = None;
                    shared_titles = None;
                }
                titles.push(title).map_err(full)
            },
        )?;
        let titles_shared = shared.is_some();
        if let Some(list) = shared {
            titles = list.clone();
        }
        titles.shrink_to_fit();
        // Sized once from a first pass over the terms: growing by doubling would leave
        // up to twice the postings' bytes allocated (in wasm memory, never returned).
        // The postings are bounded by the payload (a posting takes ≥ 3 bytes); the term
        // text, front-coded, is not (up to MAX_TERM_BYTES per 7-byte term), so its
        // first allocation is capped at 4× the payload and grows past that only as
        // decoded terms arrive.
        let (term_bytes, total) = skim_terms(r.clone(), n_terms);
        let term_bytes = term_bytes.min(r.left().saturating_mul(4));
        let mut terms = StrList::with_capacity(n_terms, term_bytes);
        let mut lists = PostingLists::with_capacity(n_terms, total);
        let mut prev = String::new();
        each(
            n_terms,
            #[inline(never)]
            |id| {
                let term = r.term(&prev, id as u32)?;
                let df = r.count("postings", n_docs, 3)?;
                let mut doc = 0u32;
                for i in 0..df {
                    let delta = r.varint()?;
                    doc = if i == 0 {
                        delta
                    } else {
                        doc.checked_add(delta)
                            .ok_or(SearchIndexError::BadPostings { term: id as u32 })?
                    };
                    let title_tf = r.tf(id as u32)?;
                    let other_tf = r.tf(id as u32)?;
                    lists.append(doc, title_tf, other_tf)?;
                }
                lists.close()?;
                terms
                    .push(&term)
                    .map_err(|_| SearchIndexError::Truncated { what: "term" })?;
                prev = term;
                Ok(())
            },
        )?;
        if r.left() != 0 {
            return Err(SearchIndexError::TrailingBytes {
                extra: r.left() as u64,
            });
        }
        SearchIndex::from_parts(Parts {
            titles,
            titles_shared,
            doc_cat,
            categories,
            terms,
            lists,
        })
    }
}

/// Calls `f(i)` for `i` in `0..n`, up to the first error.
fn each<E>(n: usize, mut f: impl FnMut(usize) -> Result<(), E>) -> Result<(), E> {
    (0..n).try_for_each(&mut f)
}

/// The total term bytes and postings of the `n_terms` terms at `r`, for sizing the
/// tables once. Lenient: it stops at the first malformed field and returns what it
/// counted (the decoding pass then reports the error).
fn skim_terms<S: IndexSource + ?Sized>(mut r: Reader<'_, S>, n_terms: usize) -> (usize, usize) {
    let (mut bytes, mut postings) = (0usize, 0usize);
    for _ in 0..n_terms {
        let Ok(shared) = r.varint() else { break };
        let Ok(suffix) = r.varint() else { break };
        if (shared as usize).saturating_add(suffix as usize) > MAX_TERM_BYTES
            || r.bytes(suffix as usize, "term").is_err()
        {
            break;
        }
        let Ok(df) = r.varint() else { break };
        if (df as usize).saturating_mul(3) > r.left() {
            break;
        }
        bytes = bytes.saturating_add(shared as usize + suffix as usize);
        postings += df as usize;
        for _ in 0..3 * df {
            if r.varint().is_err() {
                return (bytes, postings);
            }
        }
    }
    (bytes, postings)
}

/// Checks magic, version, length and, when `check_hash`, the hash (the payload streamed
/// through SHA-256 a window at a time); returns a reader at the payload's start.
fn check_header<S: IndexSource + ?Sized>(
    bytes: &S,
    check_hash: bool,
) -> Result<Reader<'_, S>, SearchIndexError> {
    if bytes.byte_len() < HEADER_BYTES as u64 {
        return Err(SearchIndexError::Truncated { what: "header" });
    }
    let mut head = [0u8; HEADER_BYTES];
    bytes.read_at(0, &mut head);
    if head[..4] != MAGIC {
        return Err(SearchIndexError::BadMagic);
    }
    let version = u16::from_le_bytes([head[4], head[5]]);
    if version != VERSION {
        return Err(SearchIndexError::UnsupportedVersion { found: version });
    }
    let reserved = u16::from_le_bytes([head[6], head[7]]);
    if reserved != 0 {
        return Err(SearchIndexError::Reserved { found: reserved });
    }
    let len = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize;
    if len > MAX_PAYLOAD_BYTES {
        return Err(SearchIndexError::TooLarge {
            what: "payload bytes",
            value: len as u64,
            max: MAX_PAYLOAD_BYTES as u64,
        });
    }
    let rest = bytes.byte_len() - HEADER_BYTES as u64;
    if rest < len as u64 {
        return Err(SearchIndexError::Truncated { what: "payload" });
    }
    if rest > len as u64 {
        return Err(SearchIndexError::TrailingBytes {
            extra: rest - len as u64,
        });
    }
    if check_hash {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; WINDOW.min(len)];
        let mut at = 0usize;
        while at < len {
            let n = (len - at).min(WINDOW);
            bytes.read_at((HEADER_BYTES + at) as u64, &mut buf[..n]);
            hasher.update(&buf[..n]);
            at += n;
        }
        if hasher.finalize()[..] != head[12..HEADER_BYTES] {
            return Err(SearchIndexError::HashMismatch);
        }
    }
    Ok(Reader {
        src: bytes,
        base: HEADER_BYTES as u64,
        end: len,
        at: 0,
        win: Vec::new(),
        win_at: 0,
    })
}

/// Appends `v` as a LEB128 varint.
fn put(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a length-prefixed string.
fn put_str(out: &mut Vec<u8>, s: &str) {
    put(out, s.len() as u32);
    out.extend_from_slice(s.as_bytes());
}

/// Where an index's bytes are read from: a slice in memory, or (for a weight file's
/// index section) the weight file where it lies, read a window at a time.
pub trait IndexSource {
    /// Length of the index in bytes (header and payload).
    fn byte_len(&self) -> u64;
    /// Copies the `out.len()` bytes at `offset` into `out`; the decoder only asks for
    /// ranges inside `0..byte_len()`.
    fn read_at(&self, offset: u64, out: &mut [u8]);
}

impl IndexSource for [u8] {
    fn byte_len(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) {
        let start = offset as usize;
        out.copy_from_slice(&self[start..start + out.len()]);
    }
}

/// Most bytes a [`Reader`] holds at once (beyond that only for one field longer than
/// this, and fields are at most [`MAX_TITLE_BYTES`] or [`MAX_TERM_BYTES`] long).
const WINDOW: usize = 64 * 1024;

/// A bounds-checked cursor over the payload, reading it a window at a time.
struct Reader<'a, S: ?Sized> {
    src: &'a S,
    /// Where the payload starts in the index's bytes.
    base: u64,
    /// Payload length.
    end: usize,
    /// Position in the payload.
    at: usize,
    /// The payload's bytes `win_at..win_at + win.len()`.
    win: Vec<u8>,
    win_at: usize,
}

impl<S: ?Sized> Clone for Reader<'_, S> {
    fn clone(&self) -> Self {
        Reader {
            src: self.src,
            base: self.base,
            end: self.end,
            at: self.at,
            win: self.win.clone(),
            win_at: self.win_at,
        }
    }
}

impl<S: IndexSource + ?Sized> Reader<'_, S> {
    fn left(&self) -> usize {
        self.end - self.at
    }

    /// Makes the `n` bytes at the position available in the window (`n ≤ left()`).
    fn fill(&mut self, n: usize) {
        if self.at >= self.win_at && self.at + n <= self.win_at + self.win.len() {
            return;
        }
        let len = self.left().min(WINDOW.max(n));
        self.win.resize(len, 0);
        self.src
            .read_at(self.base + self.at as u64, &mut self.win[..len]);
        self.win_at = self.at;
    }

    /// One LEB128 u32 (at most 5 bytes, no bits past 32): read from the window in one
    /// step when its five bytes are there, else a byte at a time
    /// ([`Reader::varint_bytewise`], the reference it is tested against).
    fn varint(&mut self) -> Result<u32, SearchIndexError> {
        let s = self.at.wrapping_sub(self.win_at);
        let Some(w) = self
            .win
            .get(s..s.wrapping_add(5))
            .filter(|_| self.at >= self.win_at)
        else {
            return self.varint_bytewise();
        };
        // The window never extends past the payload, so these bytes are all in it.
        let mut v: u32 = 0;
        for (i, &byte) in w.iter().enumerate() {
            if i == 4 && byte > 0x0f {
                self.at += 5;
                return Err(SearchIndexError::BadVarint);
            }
            v |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.at += i + 1;
                return Ok(v);
            }
        }
        self.at += 5;
        Err(SearchIndexError::BadVarint)
    }

    /// [`Reader::varint`] a byte at a time, filling the window for each.
    fn varint_bytewise(&mut self) -> Result<u32, SearchIndexError> {
        let mut v: u32 = 0;
        for i in 0..5 {
            if self.at == self.end {
                return Err(SearchIndexError::Truncated { what: "varint" });
            }
            self.fill(1);
            let byte = self.win[self.at - self.win_at];
            self.at += 1;
            if i == 4 && byte > 0x0f {
                return Err(SearchIndexError::BadVarint);
            }
            v |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(SearchIndexError::BadVarint)
    }

    /// A count of elements that each take at least `min_bytes` bytes: checked against
    /// `max` and against the bytes left, so allocating for it is bounded by the input.
    fn count(
        &mut self,
        what: &'static str,
        max: usize,
        min_bytes: usize,
    ) -> Result<usize, SearchIndexError> {
        let n = self.varint()? as usize;
        if n > max {
            return Err(SearchIndexError::TooLarge {
                what,
                value: n as u64,
                max: max as u64,
            });
        }
        if n.saturating_mul(min_bytes) > self.left() {
            return Err(SearchIndexError::Truncated { what });
        }
        Ok(n)
    }

    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&[u8], SearchIndexError> {
        if n > self.left() {
            return Err(SearchIndexError::Truncated { what });
        }
        self.fill(n);
        let s = self.at - self.win_at;
        self.at += n;
        Ok(&self.win[s..s + n])
    }

    fn str(&mut self, what: &'static str, max: usize) -> Result<&str, SearchIndexError> {
        let n = self.varint()? as usize;
        if n > max {
            return Err(SearchIndexError::TooLarge {
                what,
                value: n as u64,
                max: max as u64,
            });
        }
        let raw = self.bytes(n, what)?;
        std::str::from_utf8(raw).map_err(|_| SearchIndexError::InvalidUtf8 { what })
    }

    /// A front-coded term: `prev[..shared]` + suffix.
    fn term(&mut self, prev: &str, id: u32) -> Result<String, SearchIndexError> {
        let shared = self.varint()? as usize;
        let suffix = self.varint()? as usize;
        if shared > prev.len() || shared.saturating_add(suffix) > MAX_TERM_BYTES {
            return Err(SearchIndexError::BadTerm { term: id });
        }
        let tail = self.bytes(suffix, "term")?;
        let mut raw = Vec::with_capacity(shared + suffix);
        raw.extend_from_slice(&prev.as_bytes()[..shared]);
        raw.extend_from_slice(tail);
        String::from_utf8(raw).map_err(|_| SearchIndexError::InvalidUtf8 { what: "term" })
    }

    fn tf(&mut self, term: u32) -> Result<u16, SearchIndexError> {
        u16::try_from(self.varint()?).map_err(|_| SearchIndexError::BadPostings { term })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(payload: &[u8]) -> Reader<'_, [u8]> {
        Reader {
            src: payload,
            base: 0,
            end: payload.len(),
            at: 0,
            win: Vec::new(),
            win_at: 0,
        }
    }

    /// Reads varints until the end or the first error: each result and position.
    fn read_all(payload: &[u8], bytewise: bool) -> Vec<(Result<u32, SearchIndexError>, usize)> {
        let mut r = reader(payload);
        if !bytewise {
            r.fill(r.left()); // the whole payload in the window: the one-step path
        }
        let mut out = Vec::new();
        while r.left() > 0 {
            let v = if bytewise {
                r.varint_bytewise()
            } else {
                r.varint()
            };
            let stop = v.is_err();
            out.push((v, r.at));
            if stop {
                break;
            }
        }
        out
    }

    /// The one-step varint reads the values, errors and positions the byte-at-a-time
    /// reference reads: every length, the largest values, bits past 32, an encoding
    /// longer than five bytes, and a varint cut by the payload's end.
    #[test]
    fn varint_in_one_step_matches_the_bytewise_reference() {
        let mut good = Vec::new();
        for v in [
            0u32,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            1 << 21,
            (1 << 28) - 1,
            1 << 28,
        ] {
            put(&mut good, v);
        }
        put(&mut good, u32::MAX);
        let tails: [&[u8]; 5] = [
            &[],
            &[0x80, 0x80, 0x80, 0x80, 0x10],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            &[0x80, 0x80, 0x80],
            &[0x81, 0x01, 0x85],
        ];
        for tail in tails {
            for cut in 0..good.len() {
                let mut p = good[cut..].to_vec();
                p.extend_from_slice(tail);
                let fast = read_all(&p, false);
                assert_eq!(fast, read_all(&p, true), "{p:?}");
                if tail.is_empty() && cut == 0 {
                    assert_eq!(fast.len(), 11);
                    assert_eq!(fast[10].0, Ok(u32::MAX));
                }
            }
        }
    }
}
