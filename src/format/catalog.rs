//! The item catalogue as a binary section (format version 2): the `catalog` `U8` tensor.
//!
//! Version 1 kept the catalogue (ids, titles, category, price, added date per item) in
//! the metadata JSON, itself a JSON string inside the safetensors header: at 1,000,000
//! items, 57 MB of doubly escaped text that every load scanned, unescaped and parsed a
//! byte at a time (about 0.6 s of a 1.9 s browser load). Version 2 stores the same
//! columns as bytes in the data section, where the content hash covers them, read here
//! a piece at a time straight from the [`ByteSource`] (no copy of the section is held):
//!
//! ```text
//! ids       n × (len: LEB128 varint ≤ u32, len bytes of UTF-8)
//! titles    n × (len: LEB128 varint ≤ u32, len bytes of UTF-8)
//! category  n × u32 LE    index into the metadata's `categories`
//! price     n × f32 LE    NaN: unknown
//! added     n × f64 LE    Unix seconds, NaN: unknown
//! ```
//!
//! `n` is the metadata's `model.n_items`; the section ends exactly after the last date.
//! Every item takes at least [`MIN_ITEM_BYTES`] bytes, so a section too short for `n` is
//! rejected before anything is reserved for `n` items. The decoded catalogue then
//! passes the same rules as version 1's ([`super::validate_metadata`]).

use super::{ByteSource, FormatError, ItemCatalog, OptColumn, READ_CHUNK};
use crate::strs::StrList;

/// The fewest bytes an item takes: two one-byte lengths, a category, a price, a date.
pub const MIN_ITEM_BYTES: u64 = 1 + 1 + 4 + 4 + 8;

/// Items read per call of the column readers (see [`read_strs`]).
const BATCH: usize = 4096;

/// The section's bytes for `items` (whose columns all have the same length).
pub fn encode(items: &ItemCatalog) -> Vec<u8> {
    let n = items.ids.len();
    let text = items.ids.text_len() + items.titles.text_len();
    let mut out = Vec::with_capacity(text + n * (2 * 5 + 16));
    for list in [&items.ids, &items.titles] {
        for s in list.iter() {
            let mut len = s.len() as u64;
            loop {
                let low = (len & 0x7f) as u8;
                len >>= 7;
                if len == 0 {
                    out.push(low);
                    break;
                }
                out.push(low | 0x80);
            }
            out.extend_from_slice(s.as_bytes());
        }
    }
    for &c in &items.category {
        out.extend_from_slice(&c.to_le_bytes());
    }
    for &p in items.price.as_nan_slice() {
        out.extend_from_slice(&p.to_le_bytes());
    }
    for &a in items.added.as_nan_slice() {
        out.extend_from_slice(&a.to_le_bytes());
    }
    out
}

/// Decodes the section `src[begin..end)` as the catalogue of `n` items.
pub fn decode<S: ByteSource + ?Sized>(
    src: &S,
    begin: u64,
    end: u64,
    n: usize,
) -> Result<ItemCatalog, FormatError> {
    let len = end - begin;
    if (n as u64).saturating_mul(MIN_ITEM_BYTES) > len {
        return Err(bad(format!(
            "{len} bytes cannot hold {n} items (each takes at least {MIN_ITEM_BYTES})"
        )));
    }
    let mut r = Reader::new(src, begin, end);
    let mut ids = StrList::with_capacity(n, 0);
    let mut titles = StrList::with_capacity(n, 0);
    for (field, list) in [("id", &mut ids), ("title", &mut titles)] {
        let mut item = 0;
        while item < n {
            let to = (item + BATCH).min(n);
            read_strs(&mut r, list, item..to, field)?;
            item = to;
        }
    }
    let category = read_numbers(&mut r, n, "category", u32::from_le_bytes)?;
    let price = OptColumn(read_numbers(&mut r, n, "price", f32::from_le_bytes)?);
    let added = OptColumn(read_numbers(&mut r, n, "added", f64::from_le_bytes)?);
    let left = r.left();
    if left != 0 {
        return Err(bad(format!("{left} bytes follow the last item's date")));
    }
    Ok(ItemCatalog {
        ids,
        titles,
        category,
        price,
        added,
    })
}

fn bad(message: String) -> FormatError {
    FormatError::BadCatalog(message)
}

/// Reads the strings of `items` (their field named `field`) into `list`. A function of
/// its own, called once per [`BATCH`] items: V8 runs a wasm call in baseline code until
/// it returns, and one call over a million strings would never leave it.
#[inline(never)]
fn read_strs<S: ByteSource + ?Sized>(
    r: &mut Reader<'_, S>,
    list: &mut StrList,
    items: std::ops::Range<usize>,
    field: &str,
) -> Result<(), FormatError> {
    for item in items {
        let at = r.offset();
        let len = r.varint().ok_or_else(|| {
            bad(format!(
                "item {item}'s {field} length at byte {at} is cut short or over 32 bits"
            ))
        })? as usize;
        let bytes = r.take(len).ok_or_else(|| {
            bad(format!(
                "item {item}'s {field} at byte {at} has {len} bytes, more than the section has left"
            ))
        })?;
        let s = std::str::from_utf8(bytes)
            .map_err(|_| bad(format!("item {item}'s {field} at byte {at} is not UTF-8")))?;
        list.push(s)
            .map_err(|e| bad(format!("item {item}'s {field}: {e}")))?;
    }
    Ok(())
}

/// Reads `n` fixed-width little-endian numbers (`W` bytes each, through `from`).
fn read_numbers<S: ByteSource + ?Sized, T, const W: usize>(
    r: &mut Reader<'_, S>,
    n: usize,
    field: &str,
    from: fn([u8; W]) -> T,
) -> Result<Vec<T>, FormatError> {
    /// At most [`BATCH`] more values into `out` (a call per batch, as [`read_strs`]);
    /// `false` when the section ends first.
    #[inline(never)]
    fn some<S: ByteSource + ?Sized, T, const W: usize>(
        r: &mut Reader<'_, S>,
        out: &mut Vec<T>,
        count: usize,
        from: fn([u8; W]) -> T,
    ) -> bool {
        let Some(bytes) = r.take(count * W) else {
            return false;
        };
        out.extend(
            bytes
                .chunks_exact(W)
                .map(|b| from(b.try_into().unwrap_or([0; W]))),
        );
        true
    }
    let need = (n as u64) * W as u64;
    if r.left() < need {
        return Err(bad(format!(
            "the {field} column needs {need} bytes at byte {}, the section has {} left",
            r.offset(),
            r.left()
        )));
    }
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let count = (n - out.len()).min(BATCH);
        if !some(r, &mut out, count, from) {
            // Checked above: the section holds the whole column.
            return Err(bad(format!("the {field} column is cut short")));
        }
    }
    Ok(out)
}

/// A sequential reader of `src[begin..end)` through one buffer of [`READ_CHUNK`] bytes
/// (longer only for a string longer than that, and never longer than the section).
struct Reader<'s, S: ?Sized> {
    src: &'s S,
    /// The section's first byte in the source.
    begin: u64,
    /// The next source byte not yet in `buf`.
    next: u64,
    /// The section's end in the source.
    end: u64,
    buf: Vec<u8>,
    /// The next unread byte of `buf`.
    at: usize,
    /// The bytes of `buf` read from the source.
    filled: usize,
}

impl<'s, S: ByteSource + ?Sized> Reader<'s, S> {
    fn new(src: &'s S, begin: u64, end: u64) -> Self {
        Reader {
            src,
            begin,
            next: begin,
            end,
            buf: vec![0; READ_CHUNK.min((end - begin) as usize)],
            at: 0,
            filled: 0,
        }
    }

    /// Unread bytes of the section.
    fn left(&self) -> u64 {
        (self.end - self.next) + (self.filled - self.at) as u64
    }

    /// The next unread byte's offset in the section.
    fn offset(&self) -> u64 {
        self.next - self.begin - (self.filled - self.at) as u64
    }

    /// Makes the next `want` bytes available in `buf[at..]` (fewer only where the
    /// section ends first); returns how many are.
    fn fill(&mut self, want: usize) -> usize {
        if self.filled - self.at >= want {
            return want;
        }
        self.buf.copy_within(self.at..self.filled, 0);
        self.filled -= self.at;
        self.at = 0;
        // Bounded by the section: `want` past its end is cut to what it holds.
        let want = (want as u64).min(self.left()) as usize;
        if want > self.buf.len() {
            self.buf.resize(want, 0);
        }
        let room = (self.buf.len() - self.filled) as u64;
        let len = room.min(self.end - self.next) as usize;
        self.src
            .read_at(self.next, &mut self.buf[self.filled..self.filled + len]);
        self.next += len as u64;
        self.filled += len;
        want.min(self.filled)
    }

    /// The next `len` bytes, or `None` (nothing consumed) when the section has fewer.
    fn take(&mut self, len: usize) -> Option<&[u8]> {
        if self.fill(len) < len {
            return None;
        }
        let at = self.at;
        self.at += len;
        Some(&self.buf[at..at + len])
    }

    /// A LEB128 varint of at most 32 bits; `None` when cut short or longer.
    fn varint(&mut self) -> Option<u32> {
        let avail = self.fill(5);
        let mut value = 0u64;
        for i in 0..avail {
            let b = self.buf[self.at + i];
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.at += i + 1;
                return u32::try_from(value).ok();
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(ids: &[&str], titles: &[&str]) -> ItemCatalog {
        let n = ids.len();
        ItemCatalog {
            ids: ids.iter().map(|s| s.to_string()).collect::<Vec<_>>().into(),
            titles: titles
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .into(),
            category: (0..n as u32).collect(),
            price: (0..n)
                .map(|i| (i % 2 == 0).then_some(i as f32 * 1.5))
                .collect(),
            added: (0..n)
                .map(|i| (i % 3 == 0).then_some(1.7e9 + i as f64))
                .collect(),
        }
    }

    #[test]
    fn round_trips_strings_of_every_length_class() {
        let long = "é".repeat(40_000); // 80,000 bytes: longer than the read buffer
        let titles = ["", "a", &"x".repeat(127), &"y".repeat(128), &long, "ü"];
        let ids = ["0", "1", "2", "3", "4", "5"];
        let c = catalog(&ids, &titles);
        let bytes = encode(&c);
        assert_eq!(decode(&bytes[..], 0, bytes.len() as u64, 6).unwrap(), c);
        // Inside a larger source, at an offset.
        let mut src = vec![7u8; 13];
        src.extend_from_slice(&bytes);
        src.extend_from_slice(&[9; 5]);
        let end = 13 + bytes.len() as u64;
        assert_eq!(decode(&src[..], 13, end, 6).unwrap(), c);
    }

    #[test]
    fn many_items_cross_batches_and_buffer_refills() {
        let n = 3 * BATCH + 17;
        let ids: Vec<String> = (0..n).map(|i| format!("SKU-{i}")).collect();
        let titles: Vec<String> = (0..n).map(|i| "t".repeat(i % 50)).collect();
        let idr: Vec<&str> = ids.iter().map(String::as_str).collect();
        let tr: Vec<&str> = titles.iter().map(String::as_str).collect();
        let c = catalog(&idr, &tr);
        let bytes = encode(&c);
        assert_eq!(decode(&bytes[..], 0, bytes.len() as u64, n).unwrap(), c);
    }

    fn err(bytes: &[u8], n: usize) -> String {
        match decode(bytes, 0, bytes.len() as u64, n) {
            Err(FormatError::BadCatalog(m)) => m,
            other => panic!("expected BadCatalog, got {other:?}"),
        }
    }

    #[test]
    fn defects_are_typed_errors() {
        let c = catalog(&["a", "b"], &["x", "y"]);
        let good = encode(&c);
        // Too short for n items: refused before anything is reserved.
        assert!(err(&good, 1_000_000).contains("cannot hold 1000000 items"));
        // Trailing bytes.
        let mut long = good.clone();
        long.push(0);
        assert!(err(&long, 2).contains("1 bytes follow"));
        // A string longer than the section.
        let mut b = good.clone();
        b[0] = 0x7f;
        assert!(err(&b, 2).contains("item 0's id"), "{}", err(&b, 2));
        // Not UTF-8.
        let mut b = good.clone();
        b[1] = 0xff;
        assert!(err(&b, 2).contains("item 0's id at byte 0 is not UTF-8"));
        // A varint over 32 bits.
        let mut b = vec![0xff, 0xff, 0xff, 0xff, 0x7f];
        b.extend_from_slice(&good);
        assert!(err(&b, 2).contains("over 32 bits"));
        // Shorter than 18 bytes an item.
        let mut b = good.clone();
        b.truncate(good.len() - 8);
        assert!(
            err(&b, 2).contains("32 bytes cannot hold 2 items"),
            "{}",
            err(&b, 2)
        );
        // The numbers cut short: the titles take what the dates needed.
        let mut padded = encode(&catalog(&["a", "b"], &["x", "y1234567"]));
        padded.truncate(good.len());
        assert!(
            err(&padded, 2).contains("the added column needs 16 bytes"),
            "{}",
            err(&padded, 2)
        );
    }
}
