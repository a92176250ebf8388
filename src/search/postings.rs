//! Posting lists in 5 bytes a posting instead of the 8 of a [`Posting`] struct: doc ids
//! as plain `u32`s (read as fast as before), and both counts packed in one byte,
//! `title_tf << 4 | other_tf`, when `title_tf < 15` and `other_tf < 16` (a byte below
//! `0xF0`: nearly every posting). The few others hold [`TF_ESCAPE`] and their counts in a
//! side table, by position. At 1,000,000 synthetic items: 21 MB instead of 35.
//!
//! Lists are only built by [`PostingLists::append`] and [`PostingLists::close`];
//! [`SearchIndex::from_parts`](super::SearchIndex) checks every list (non-empty, doc ids
//! increasing and in range, some occurrence).

use super::index::Posting;
use super::SearchIndexError;

/// The count byte of a posting whose counts are in the escape table.
const TF_ESCAPE: u8 = 0xFF;

/// Every term's postings, by term id.
#[derive(Clone, Debug)]
pub(crate) struct PostingLists {
    /// Doc ids, term after term.
    docs: Vec<u32>,
    /// Packed counts, one per posting (parallel to `docs`).
    tfs: Vec<u8>,
    /// `(position in docs, title tf, other tf)` of each escaped posting, positions
    /// increasing.
    escapes: Vec<(u32, u16, u16)>,
    /// Term `t`'s postings are positions `off[t]..off[t + 1]` (`n_terms + 1` entries
    /// from 0).
    off: Vec<u32>,
}

impl PostingLists {
    /// Empty lists with room for `terms` terms and `postings` postings.
    pub(crate) fn with_capacity(terms: usize, postings: usize) -> PostingLists {
        let mut off = Vec::with_capacity(terms + 1);
        off.push(0);
        PostingLists {
            docs: Vec::with_capacity(postings),
            tfs: Vec::with_capacity(postings),
            escapes: Vec::new(),
            off,
        }
    }

    /// Appends a whole list as the next term's.
    pub(crate) fn push(
        &mut self,
        list: impl IntoIterator<Item = Posting>,
    ) -> Result<(), SearchIndexError> {
        for p in list {
            self.append(p.doc, p.title_tf, p.other_tf)?;
        }
        self.close()
    }

    /// Appends one posting to the list being written.
    pub(crate) fn append(
        &mut self,
        doc: u32,
        title_tf: u16,
        other_tf: u16,
    ) -> Result<(), SearchIndexError> {
        let at = position(self.docs.len())?;
        if title_tf < 15 && other_tf < 16 {
            self.tfs.push((title_tf << 4 | other_tf) as u8);
        } else {
            self.tfs.push(TF_ESCAPE);
            self.escapes.push((at, title_tf, other_tf));
        }
        self.docs.push(doc);
        Ok(())
    }

    /// Ends the list being written (the next term's starts).
    pub(crate) fn close(&mut self) -> Result<(), SearchIndexError> {
        let end = position(self.docs.len())?;
        self.off.push(end);
        Ok(())
    }

    /// Number of terms (closed lists).
    pub(crate) fn len(&self) -> usize {
        self.off.len() - 1
    }

    /// Term `id`'s postings (doc ids ascending once checked); empty for an unknown id.
    pub(crate) fn get(&self, id: u32) -> Postings<'_> {
        let i = id as usize;
        let (a, b) = match (self.off.get(i), self.off.get(i + 1)) {
            (Some(&a), Some(&b)) => (a as usize, b as usize),
            _ => (0, 0),
        };
        Postings {
            docs: self.docs.get(a..b).unwrap_or(&[]),
            tfs: self.tfs.get(a..b).unwrap_or(&[]),
            at: a as u32,
            escapes: &self.escapes,
        }
    }

    /// Term `id`'s document frequency (0 for an unknown id).
    pub(crate) fn df(&self, id: u32) -> u32 {
        let i = id as usize;
        match (self.off.get(i), self.off.get(i + 1)) {
            (Some(&a), Some(&b)) => b.saturating_sub(a),
            _ => 0,
        }
    }

    /// Heap bytes (allocated capacity).
    pub(crate) fn heap_bytes(&self) -> usize {
        4 * (self.docs.capacity() + self.off.capacity())
            + self.tfs.capacity()
            + self.escapes.capacity() * std::mem::size_of::<(u32, u16, u16)>()
    }

    /// Drops growth slack.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.docs.shrink_to_fit();
        self.tfs.shrink_to_fit();
        self.escapes.shrink_to_fit();
        self.off.shrink_to_fit();
    }
}

/// A posting's position as a `u32`, or the error an index over `u32::MAX` postings gets.
fn position(n: usize) -> Result<u32, SearchIndexError> {
    u32::try_from(n).map_err(|_| SearchIndexError::TooLarge {
        what: "postings",
        value: n as u64,
        max: u64::from(u32::MAX),
    })
}

/// One term's postings, unpacked as iterated.
#[derive(Clone, Debug)]
pub struct Postings<'a> {
    docs: &'a [u32],
    tfs: &'a [u8],
    /// Position of `docs[0]` among all postings (for the escape table).
    at: u32,
    escapes: &'a [(u32, u16, u16)],
}

impl Iterator for Postings<'_> {
    type Item = Posting;

    #[inline]
    fn next(&mut self) -> Option<Posting> {
        let (&doc, docs) = self.docs.split_first()?;
        let (&tf, tfs) = self.tfs.split_first()?;
        self.docs = docs;
        self.tfs = tfs;
        let at = self.at;
        self.at = self.at.wrapping_add(1);
        let (title_tf, other_tf) = if tf < 0xF0 {
            (u16::from(tf >> 4), u16::from(tf & 15))
        } else {
            match self.escapes.binary_search_by_key(&at, |e| e.0) {
                Ok(k) => (self.escapes[k].1, self.escapes[k].2),
                Err(_) => (0, 0),
            }
        };
        Some(Posting {
            doc,
            title_tf,
            other_tf,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.docs.len(), Some(self.docs.len()))
    }
}

impl ExactSizeIterator for Postings<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(doc: u32, title_tf: u16, other_tf: u16) -> Posting {
        Posting {
            doc,
            title_tf,
            other_tf,
        }
    }

    #[test]
    fn lists_round_trip_packed_and_escaped_counts() {
        let lists_in = vec![
            vec![p(0, 1, 0)],
            vec![
                p(3, 0, 2),
                p(200, 1, 1),
                p(20_000, 300, 0),
                p(3_000_000, 1, 65_535),
            ],
            vec![
                p(1, 14, 15),
                p(2, 15, 0),
                p(3, 0, 16),
                p(4, 15, 15),
                p(5, 0, 0),
            ],
            vec![p(u32::MAX - 1, 65_535, 65_535), p(u32::MAX, 1, 1)],
            vec![],
        ];
        let mut lists = PostingLists::with_capacity(0, 0);
        for l in &lists_in {
            lists.push(l.iter().copied()).unwrap();
        }
        assert_eq!(lists.len(), lists_in.len());
        for (id, l) in lists_in.iter().enumerate() {
            let got: Vec<Posting> = lists.get(id as u32).collect();
            assert_eq!(&got, l, "term {id}");
            assert_eq!(lists.df(id as u32) as usize, l.len());
            assert_eq!(lists.get(id as u32).len(), l.len());
        }
        // One byte a posting, plus the escape table for the six outside the packing.
        assert_eq!(
            lists.tfs.len(),
            lists_in.iter().map(Vec::len).sum::<usize>()
        );
        assert_eq!(lists.escapes.len(), 6);
        assert_eq!(lists.get(99).count(), 0);
        assert_eq!(lists.df(99), 0);
    }
}
