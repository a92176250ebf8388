//! Reading the header JSON straight from a [`ByteSource`], a piece at a time, so that
//! loading a weight file never holds the header's text (tens of MiB at a million items)
//! nor the metadata string unescaped out of it.
//!
//! The vitrine metadata is one JSON document stored as a JSON *string* inside the
//! safetensors header (`{"__metadata__": {"vitrine": "{\"format_version\":…}"}, …}`).
//! Three readers replace "read the header, unescape the string, parse it":
//!
//! - [`locate_metadata`] scans the header once, checks that it is UTF-8, and finds the
//!   byte range of that string's content (between its quotes), following the JSON
//!   structure (the last `vitrine` key of the top-level `__metadata__` object, as a
//!   JSON map would keep it), without storing any string longer than a key it compares;
//! - [`SourceReader`] hands a byte range of the source to `serde_json::from_reader`
//!   (the tensor entries are parsed from it), less the metadata string's content when
//!   the scan found nothing there the parser would reject
//!   ([`SourceReader::skipping`]: the string reads as `""`, one pass less over it);
//! - [`Unescape`] reads the string's content as the text it stands for (JSON escapes
//!   decoded, surrogate pairs joined), so the metadata document is parsed from it
//!   directly.
//!
//! Each holds one buffer of at most [`READ_CHUNK`](super::READ_CHUNK) bytes.

use std::io;

use super::{for_each_chunk, ByteSource};

/// Where the header keeps vitrine's metadata, as [`locate_metadata`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MetadataAt {
    /// No `vitrine` key in a top-level `__metadata__` object.
    Missing,
    /// The (last) `vitrine` value is a string; its content (between the quotes, still
    /// escaped) is `begin..end` of the source. `skippable`: every `\u` escape in it has
    /// four hex digits, so (with the checks the scan makes) a JSON parser skips it
    /// without error, and the header's parse may read it as `""`
    /// ([`SourceReader::skipping`]).
    String {
        begin: u64,
        end: u64,
        skippable: bool,
    },
    /// The (last) `vitrine` value is not a string.
    NotString,
}

/// Longest key (in raw bytes, escapes included) [`locate_metadata`] compares: longer
/// ones cannot spell `__metadata__` even with every character escaped (`\u005f` is six
/// bytes).
const MAX_KEY: usize = 128;

/// A container the scanner follows: the top-level object, or the `__metadata__` object
/// inside it. Deeper containers are only counted.
struct Frame {
    /// The next string in this object is a key (after `{` or `,`).
    expect_key: bool,
    /// The last key read in this object is the one looked for at this level.
    key_matches: bool,
}

/// Scans `src[begin..end)` (a safetensors header) for vitrine's metadata string. The
/// only errors are the header's text not being UTF-8 and, inside the metadata string, a
/// raw control character or an unknown escape (`Err` holds the message); any other
/// malformation is left to the JSON parser that reads the header next.
pub(super) fn locate_metadata<S: ByteSource + ?Sized>(
    src: &S,
    begin: u64,
    end: u64,
) -> Result<MetadataAt, String> {
    const TOP_KEY: &str = super::SAFETENSORS_METADATA;
    const META_KEY: &str = super::METADATA_KEY;
    let mut frames: Vec<Frame> = Vec::with_capacity(2);
    // Containers open below the followed frames (or beside them).
    let mut deep: u64 = 0;
    let mut found = MetadataAt::Missing;
    // String state.
    let mut in_string = false;
    let mut escape = false;
    // The string being read is a key of a followed frame (its raw bytes, up to MAX_KEY).
    let mut key: Option<Vec<u8>> = None;
    let mut key_too_long = false;
    // The string being read is the metadata value: where its content starts.
    let mut value_start: Option<u64> = None;
    // Hex digits still due after a `\u` in the metadata value, and whether one was not.
    let mut hex_left = 0u8;
    let mut bad_hex = false;
    // UTF-8 check across pieces: the bytes of a character cut by a piece's end.
    let mut carry: Vec<u8> = Vec::with_capacity(4);
    let mut checked: Vec<u8> = Vec::new();

    let mut at = begin;
    for_each_chunk(src, begin, end, |piece| {
        let len = piece.len();
        // UTF-8, with the previous piece's unfinished character in front.
        if carry.is_empty() {
            check_utf8(piece, &mut carry, at)?;
        } else {
            checked.clear();
            checked.extend_from_slice(&carry);
            checked.extend_from_slice(piece);
            carry.clear();
            check_utf8(
                &checked,
                &mut carry,
                at - checked.len().saturating_sub(len) as u64,
            )?;
        }
        // Inside a string that is not a key, the bytes up to the next quote, backslash or
        // control byte need no look: they are skipped in one search.
        let mut skip_to = 0;
        for (i, &b) in piece.iter().enumerate() {
            if i < skip_to {
                continue;
            }
            let pos = at + i as u64;
            if in_string {
                if hex_left > 0 {
                    if b.is_ascii_hexdigit() {
                        hex_left -= 1;
                        continue;
                    }
                    // The parser reports this; the byte is read on as usual here.
                    hex_left = 0;
                    bad_hex = true;
                }
                if escape {
                    escape = false;
                    if value_start.is_some() && b == b'u' {
                        hex_left = 4;
                    }
                    if value_start.is_some() && !b"\"\\/bfnrtu".contains(&b) {
                        return Err(format!(
                            "invalid escape `\\{}` in the metadata string at byte {pos}",
                            char::from(b).escape_default()
                        ));
                    }
                    if let Some(k) = key.as_mut() {
                        push_key(k, &mut key_too_long, b);
                    }
                } else if b == b'\\' {
                    escape = true;
                    if let Some(k) = key.as_mut() {
                        push_key(k, &mut key_too_long, b);
                    }
                } else if b == b'"' {
                    in_string = false;
                    if let Some(start) = value_start.take() {
                        found = MetadataAt::String {
                            begin: start,
                            end: pos,
                            skippable: !bad_hex,
                        };
                    }
                    if let Some(k) = key.take() {
                        let want = if frames.len() == 1 { TOP_KEY } else { META_KEY };
                        let matches = !key_too_long && key_equals(&k, want);
                        if let Some(f) = frames.last_mut() {
                            f.key_matches = matches;
                        }
                    }
                } else if b < 0x20 && value_start.is_some() {
                    return Err(format!(
                        "control character {b:#04x} in the metadata string at byte {pos}"
                    ));
                } else if let Some(k) = key.as_mut() {
                    push_key(k, &mut key_too_long, b);
                }
                if in_string && !escape && key.is_none() && hex_left == 0 {
                    skip_to = if value_start.is_some() {
                        value_run_end(piece, i + 1)
                    } else {
                        plain_run_end(piece, i + 1)
                    };
                }
                continue;
            }
            match b {
                b' ' | b'\t' | b'\n' | b'\r' => {}
                b'"' => {
                    in_string = true;
                    if deep == 0 {
                        match frames.last() {
                            Some(f) if f.expect_key => {
                                key = Some(Vec::new());
                                key_too_long = false;
                            }
                            Some(f) if frames.len() == 2 && f.key_matches => {
                                value_start = Some(pos + 1);
                                bad_hex = false;
                            }
                            _ => {}
                        }
                    }
                    if value_start.is_some() {
                        skip_to = value_run_end(piece, i + 1);
                    } else if key.is_none() {
                        skip_to = plain_run_end(piece, i + 1);
                    }
                }
                b'{' | b'[' => {
                    let follow = deep == 0
                        && b == b'{'
                        && match frames.last() {
                            None => true,
                            Some(f) => frames.len() == 1 && !f.expect_key && f.key_matches,
                        };
                    if deep == 0 && frames.len() == 2 && is_meta_value(&frames) {
                        found = MetadataAt::NotString;
                    }
                    if follow {
                        frames.push(Frame {
                            expect_key: true,
                            key_matches: false,
                        });
                    } else {
                        deep += 1;
                    }
                }
                b'}' | b']' => {
                    if deep > 0 {
                        deep -= 1;
                    } else {
                        frames.pop();
                    }
                }
                b':' => {
                    if deep == 0 {
                        if let Some(f) = frames.last_mut() {
                            f.expect_key = false;
                        }
                    }
                }
                b',' => {
                    if deep == 0 {
                        if let Some(f) = frames.last_mut() {
                            f.expect_key = true;
                            f.key_matches = false;
                        }
                    }
                }
                _ => {
                    // A number or literal: the metadata value, if it is where one is read.
                    if deep == 0 && frames.len() == 2 && is_meta_value(&frames) {
                        found = MetadataAt::NotString;
                    }
                }
            }
        }
        at += len as u64;
        Ok(())
    })?;
    if !carry.is_empty() {
        return Err(format!(
            "not UTF-8: incomplete character at byte {}",
            end - carry.len() as u64
        ));
    }
    Ok(found)
}

/// Where the run of plain string bytes starting at `from` ends: the next quote,
/// backslash or control byte, or the piece's end.
fn plain_run_end(piece: &[u8], from: usize) -> usize {
    plain_run_end_skipping(piece, from, skip_plain_words)
}

/// [`plain_run_end`], passing over plain bytes first with `skip` (one that returns its
/// `from` leaves every byte to the byte loop: the reference the tests compare with).
fn plain_run_end_skipping(piece: &[u8], from: usize, skip: fn(&[u8], usize) -> usize) -> usize {
    let from = skip(piece, from);
    let rest = piece.get(from..).unwrap_or(&[]);
    from + rest
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .unwrap_or(rest.len())
}

/// Eight ones: `byte · ONES` repeats a byte in each lane of a `u64`.
const ONES: u64 = u64::from_ne_bytes([1; 8]);
/// The high bit of each lane.
const HIGHS: u64 = ONES << 7;

/// Whether any lane of `w` may be below `n` (`n ≤ 128`): never `false` when one is
/// (the classic bit trick; a lane above a true one may also be flagged, which only
/// sends the caller to its byte loop).
fn may_have_below(w: u64, n: u8) -> bool {
    w.wrapping_sub(ONES * u64::from(n)) & !w & HIGHS != 0
}

/// Whether any lane of `w` may equal `c` (never `false` when one does).
fn may_have(w: u64, c: u8) -> bool {
    may_have_below(w ^ (ONES * u64::from(c)), 1)
}

/// The first position from `from` on (in steps of eight bytes) whose eight bytes may hold
/// a quote, a backslash or a control byte, or where fewer than eight are left: the bytes
/// passed over are plain string bytes. Tens of MiB of metadata are mostly such bytes,
/// eight at a time here rather than one.
fn skip_plain_words(piece: &[u8], from: usize) -> usize {
    skip_words(piece, from, |w| {
        may_have(w, b'"') || may_have(w, b'\\') || may_have_below(w, 0x20)
    })
}

/// The first position from `from` on (in steps of eight bytes) where `may_stop` holds
/// for the next eight bytes (little-endian), or where fewer than eight are left.
fn skip_words(piece: &[u8], from: usize, may_stop: impl Fn(u64) -> bool) -> usize {
    let mut i = from;
    while let Some(word) = piece.get(i..i.saturating_add(8)) {
        let mut lanes = [0u8; 8];
        lanes.copy_from_slice(word);
        if may_stop(u64::from_le_bytes(lanes)) {
            break;
        }
        i += 8;
    }
    i
}

/// Inside the metadata string, where the run of bytes starting at `from` that need no
/// look one by one ends: plain bytes and whole escapes the scan accepts (a backslash and
/// one of `"\\/bfnrt`, or `\u` and four hex digits) are passed over; it stops at a
/// quote, a control byte, any other escape, or an escape the piece's end cuts (the scan
/// reads those a byte at a time). Tens of MiB of metadata are mostly such runs.
fn value_run_end(piece: &[u8], from: usize) -> usize {
    value_run_end_skipping(piece, from, skip_plain_words)
}

/// [`value_run_end`], passing over plain bytes with `skip` (one that returns its `from`
/// steps a byte at a time: the reference the tests compare with).
fn value_run_end_skipping(piece: &[u8], from: usize, skip: fn(&[u8], usize) -> usize) -> usize {
    let mut i = skip(piece, from);
    while let Some(&b) = piece.get(i) {
        match b {
            b'"' => return i,
            b'\\' => match piece.get(i + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                Some(b'u')
                    if (piece.get(i + 2..i + 6))
                        .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
                {
                    i += 6
                }
                _ => return i,
            },
            _ if b < 0x20 => return i,
            _ => i = skip(piece, i + 1),
        }
    }
    i
}

/// The innermost followed frame is the `__metadata__` object, reading the value of its
/// `vitrine` key.
fn is_meta_value(frames: &[Frame]) -> bool {
    frames
        .last()
        .is_some_and(|f| !f.expect_key && f.key_matches)
}

fn push_key(k: &mut Vec<u8>, too_long: &mut bool, b: u8) {
    if k.len() < MAX_KEY {
        k.push(b);
    } else {
        *too_long = true;
    }
}

/// Whether a key's raw bytes (escapes included) spell `want`.
fn key_equals(raw: &[u8], want: &str) -> bool {
    if !raw.contains(&b'\\') {
        return raw == want.as_bytes();
    }
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted).is_ok_and(|k| k == want)
}

/// Checks `bytes` (whose first byte is at `offset`) as UTF-8; the bytes of a character
/// cut by the end go to `carry`, to be checked with the next piece.
fn check_utf8(bytes: &[u8], carry: &mut Vec<u8>, offset: u64) -> Result<(), String> {
    match std::str::from_utf8(bytes) {
        Ok(_) => Ok(()),
        Err(e) if e.error_len().is_none() => {
            carry.extend_from_slice(&bytes[e.valid_up_to()..]);
            Ok(())
        }
        Err(e) => Err(format!(
            "not UTF-8: invalid byte at {}",
            offset + e.valid_up_to() as u64
        )),
    }
}

/// `src[begin..end)` as an [`io::Read`], copied out a piece at a time, less an
/// optional hole.
pub(super) struct SourceReader<'s, S: ?Sized> {
    src: &'s S,
    at: u64,
    end: u64,
    /// Bytes left out: reading jumps from `hole.start` to `hole.end`.
    hole: std::ops::Range<u64>,
}

impl<'s, S: ByteSource + ?Sized> SourceReader<'s, S> {
    /// Reads `src[begin..end)` (a range inside the source).
    pub(super) fn new(src: &'s S, begin: u64, end: u64) -> Self {
        SourceReader {
            src,
            at: begin,
            end,
            hole: end..end,
        }
    }

    /// The same without the bytes of `hole` (a range inside the one read): the header
    /// with the metadata string's content left out reads as if that string were `""`,
    /// so its parse does not go through tens of MiB it does not keep.
    pub(super) fn skipping(mut self, hole: std::ops::Range<u64>) -> Self {
        if self.at <= hole.start && hole.start <= hole.end && hole.end <= self.end {
            self.hole = hole;
        }
        self
    }
}

impl<S: ByteSource + ?Sized> io::Read for SourceReader<'_, S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.at == self.hole.start {
            self.at = self.hole.end;
        }
        let stop = if self.at < self.hole.start {
            self.hole.start
        } else {
            self.end
        };
        let len = (stop - self.at).min(out.len() as u64) as usize;
        self.src.read_at(self.at, &mut out[..len]);
        self.at += len as u64;
        Ok(len)
    }
}

/// The text a JSON string's content (`src[begin..end)`, between its quotes) stands for,
/// as an [`io::Read`] of UTF-8 bytes: escapes decoded, `\uD83D\uDE00` pairs joined. An
/// invalid escape (unknown letter, bad hex, a lone surrogate, the content ending inside
/// an escape) is an [`io::ErrorKind::InvalidData`] error.
pub(super) struct Unescape<'s, S: ?Sized> {
    src: &'s S,
    at: u64,
    end: u64,
    /// Raw bytes read from the source and not yet consumed: `buf[lo..hi]`.
    buf: Vec<u8>,
    lo: usize,
    hi: usize,
    /// Decoded bytes of an escaped character that did not fit the caller's buffer.
    pending: [u8; 4],
    pending_lo: usize,
    pending_hi: usize,
}

impl<'s, S: ByteSource + ?Sized> Unescape<'s, S> {
    /// Decodes `src[begin..end)`, reading at most `chunk` bytes of it at a time.
    pub(super) fn new(src: &'s S, begin: u64, end: u64, chunk: usize) -> Self {
        let cap = chunk.max(1).min(end.saturating_sub(begin) as usize);
        Unescape {
            src,
            at: begin,
            end,
            buf: vec![0; cap],
            lo: 0,
            hi: 0,
            pending: [0; 4],
            pending_lo: 0,
            pending_hi: 0,
        }
    }

    /// The next raw byte, refilling the buffer when it is spent; `None` at the end.
    fn next_raw(&mut self) -> Option<u8> {
        if self.lo == self.hi {
            if self.at >= self.end {
                return None;
            }
            let len = (self.end - self.at).min(self.buf.len() as u64) as usize;
            self.src.read_at(self.at, &mut self.buf[..len]);
            self.at += len as u64;
            self.lo = 0;
            self.hi = len;
        }
        let b = self.buf[self.lo];
        self.lo += 1;
        Some(b)
    }

    /// Four hex digits of a `\u` escape.
    fn hex4(&mut self) -> io::Result<u32> {
        let mut v = 0u32;
        for _ in 0..4 {
            let b = self
                .next_raw()
                .ok_or_else(|| bad("the string ends inside a \\u escape"))?;
            let d = char::from(b)
                .to_digit(16)
                .ok_or_else(|| bad("a \\u escape with a non-hex digit"))?;
            v = v * 16 + d;
        }
        Ok(v)
    }

    /// Decodes the escape after a backslash.
    fn escaped(&mut self) -> io::Result<char> {
        let b = self
            .next_raw()
            .ok_or_else(|| bad("the string ends inside an escape"))?;
        Ok(match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let u = self.hex4()?;
                let code = if (0xD800..0xDC00).contains(&u) {
                    if self.next_raw() != Some(b'\\') || self.next_raw() != Some(b'u') {
                        return Err(bad("a lone leading surrogate in a \\u escape"));
                    }
                    let low = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err(bad("a leading surrogate without its trailing one"));
                    }
                    0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    u
                };
                char::from_u32(code)
                    .ok_or_else(|| bad("a lone trailing surrogate in a \\u escape"))?
            }
            _ => return Err(bad("an unknown escape")),
        })
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("metadata string: {what}"),
    )
}

impl<S: ByteSource + ?Sized> io::Read for Unescape<'_, S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < out.len() {
            if self.pending_lo < self.pending_hi {
                out[n] = self.pending[self.pending_lo];
                self.pending_lo += 1;
                n += 1;
                continue;
            }
            // A run of plain bytes straight from the buffer.
            if self.lo < self.hi {
                let raw = &self.buf[self.lo..self.hi];
                let plain = skip_words(raw, 0, |w| may_have(w, b'\\'));
                let run = (raw[plain..].iter())
                    .position(|&b| b == b'\\')
                    .map_or(raw.len(), |k| plain + k)
                    .min(out.len() - n);
                if run > 0 {
                    out[n..n + run].copy_from_slice(&raw[..run]);
                    self.lo += run;
                    n += run;
                    continue;
                }
                // A one-letter escape whole in the buffer: its byte straight out.
                let simple = match raw.get(1) {
                    Some(b'"') => Some(b'"'),
                    Some(b'\\') => Some(b'\\'),
                    Some(b'/') => Some(b'/'),
                    Some(b'b') => Some(8),
                    Some(b'f') => Some(12),
                    Some(b'n') => Some(b'\n'),
                    Some(b'r') => Some(b'\r'),
                    Some(b't') => Some(b'\t'),
                    _ => None,
                };
                if let Some(b) = simple {
                    out[n] = b;
                    n += 1;
                    self.lo += 2;
                    continue;
                }
            }
            match self.next_raw() {
                None => break,
                Some(b'\\') => {
                    let c = self.escaped()?;
                    let len = c.encode_utf8(&mut self.pending).len();
                    self.pending_lo = 0;
                    self.pending_hi = len;
                }
                Some(b) => {
                    out[n] = b;
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::super::READ_CHUNK;
    use super::*;
    use std::io::Read;

    /// [`plain_run_end`] a byte at a time: the reference for the eight-byte steps.
    fn plain_run_end_bytewise(piece: &[u8], from: usize) -> usize {
        plain_run_end_skipping(piece, from, |_, i| i)
    }

    /// [`value_run_end`] a byte at a time: the reference for the eight-byte steps.
    fn value_run_end_bytewise(piece: &[u8], from: usize) -> usize {
        value_run_end_skipping(piece, from, |_, i| i)
    }

    /// The runs found eight bytes at a time end where the byte-at-a-time references say,
    /// and the unescaper's plain runs read the same text, on pieces with rare special
    /// bytes at every offset: quotes, backslashes and escapes, control bytes, 0x1f/0x20
    /// and 0x7f/0x80 edges, and multi-byte UTF-8.
    #[test]
    fn word_steps_match_the_bytewise_scans() {
        let specials: [&[u8]; 10] = [
            b"\"",
            b"\\",
            b"\\n",
            b"\\u00e9",
            b"\\u00g9",
            b"\x1f",
            b"\x00",
            b" ",
            b"\x7f",
            "é中😀".as_bytes(),
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |m: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) % m
        };
        for _ in 0..3000 {
            let mut piece = Vec::new();
            let len = next(64) as usize;
            while piece.len() < len {
                if next(12) == 0 {
                    piece.extend_from_slice(specials[next(10) as usize]);
                } else {
                    piece.push(b'a' + next(26) as u8);
                }
            }
            for from in 0..=piece.len() + 1 {
                assert_eq!(
                    plain_run_end(&piece, from),
                    plain_run_end_bytewise(&piece, from),
                    "{piece:?} from {from}"
                );
                assert_eq!(
                    value_run_end(&piece, from),
                    value_run_end_bytewise(&piece, from),
                    "{piece:?} from {from}"
                );
            }
            // As a JSON string's content (quotes and control bytes escaped): unescaped
            // as serde_json reads it.
            let text = String::from_utf8_lossy(&piece).into_owned();
            let quoted = serde_json::to_string(&text).unwrap();
            let content = &quoted.as_bytes()[1..quoted.len() - 1];
            for chunk in [5, 64] {
                assert_eq!(unescape_all(content, chunk).unwrap(), text);
            }
        }
    }

    fn unescape_all(content: &[u8], chunk: usize) -> io::Result<String> {
        let mut out = Vec::new();
        // Read into small, odd-sized buffers so every boundary is crossed.
        let mut r = Unescape::new(content, 0, content.len() as u64, chunk);
        let mut piece = [0u8; 3];
        loop {
            let k = r.read(&mut piece)?;
            if k == 0 {
                break;
            }
            out.extend_from_slice(&piece[..k]);
        }
        Ok(String::from_utf8(out).expect("unescaped text is UTF-8"))
    }

    #[test]
    fn unescape_matches_serde_json_on_every_kind_of_escape() {
        let texts = [
            "",
            "plain",
            "quote \" backslash \\ slash / controls \u{8}\u{c}\n\r\t and \u{1} \u{1f}",
            "é ü 中文 😀 \u{10FFFF} \u{FFFF}",
            r#"{"format_version":1,"items":{"ids":["a\"b","c\\d"]}}"#,
        ];
        for text in texts {
            let quoted = serde_json::to_string(text).unwrap();
            let content = &quoted.as_bytes()[1..quoted.len() - 1];
            for chunk in [1, 2, 5, 7, 64, READ_CHUNK] {
                assert_eq!(unescape_all(content, chunk).unwrap(), text, "chunk {chunk}");
            }
        }
        // \u escapes written out (serde_json writes most characters raw).
        let content = br"\u0041\u00e9\u4e2d\ud83d\ude00\/";
        let want: String = serde_json::from_slice(&[b"\"", &content[..], b"\""].concat()).unwrap();
        for chunk in [1, 3, 4, 13] {
            assert_eq!(unescape_all(content, chunk).unwrap(), want);
        }
    }

    #[test]
    fn unescape_rejects_what_serde_json_rejects() {
        for content in [
            &br"\x"[..],
            br"\u12",
            br"\u12g4",
            br"\ud83d",
            br"\ud83dx",
            br"\ud83d\u0041",
            br"\ude00",
            br"abc\",
        ] {
            let quoted = [b"\"", content, b"\""].concat();
            assert!(serde_json::from_slice::<String>(&quoted).is_err());
            for chunk in [1, 4, 64] {
                let e = unescape_all(content, chunk).unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            }
        }
    }

    fn locate(header: &str) -> Result<MetadataAt, String> {
        locate_metadata(header.as_bytes(), 0, header.len() as u64)
    }

    fn content(header: &str) -> &str {
        match locate(header).unwrap() {
            MetadataAt::String { begin, end, .. } => &header[begin as usize..end as usize],
            other => panic!("{header}: {other:?}"),
        }
    }

    #[test]
    fn locate_follows_the_structure() {
        assert_eq!(content(r#"{"__metadata__":{"vitrine":"abc"}}"#), "abc");
        // Whitespace, other keys and values before and after, tensors with nested values.
        let h = r#" { "w": {"dtype": "F32", "shape": [1, {"vitrine": "no"}], "data_offsets": [0, 4]},
            "__metadata__" : { "other": "x\"y", "vitrine" : "a\"b\\c" , "z": "" } , "v": [] } "#;
        assert_eq!(content(h), r#"a\"b\\c"#);
        // The key escaped; the last `vitrine` wins, as in a JSON map.
        let h = r#"{"__metadata\u005f_":{"vitrine":"1","vitrine":"2"}}"#;
        assert_eq!(content(h), "2");
        // A `vitrine` key elsewhere is not it; nor is a string that looks like the key.
        for h in [
            r#"{"vitrine":"x"}"#,
            r#"{"a":{"__metadata__":{"vitrine":"x"}}}"#,
            r#"{"__metadata__":["vitrine","x"]}"#,
            r#"{"__metadata__":{"a":{"vitrine":"x"}}}"#,
            r#"{"x":"__metadata__","y":{"vitrine":"x"}}"#,
            r#"{"__metadata__":{"x":"vitrine","vitrine2":"x"}}"#,
            r#"[{"__metadata__":{"vitrine":"x"}}]"#,
            "",
        ] {
            assert_eq!(locate(h).unwrap(), MetadataAt::Missing, "{h}");
        }
        for h in [
            r#"{"__metadata__":{"vitrine":5}}"#,
            r#"{"__metadata__":{"vitrine":{"a":"b"}}}"#,
            r#"{"__metadata__":{"vitrine":"x","vitrine":null}}"#,
        ] {
            assert_eq!(locate(h).unwrap(), MetadataAt::NotString, "{h}");
        }
    }

    #[test]
    fn locate_checks_utf8_across_pieces() {
        // A character cut by the 64 KiB piece boundary is fine; a bad byte is not.
        let pad = "x".repeat(READ_CHUNK - 1);
        let h = format!(r#"{{"__metadata__":{{"vitrine":"é"}},"p":"{pad}é"}}"#);
        assert!(matches!(locate(&h), Ok(MetadataAt::String { .. })));
        let mut bytes = h.clone().into_bytes();
        let last = bytes.len() - 3;
        bytes[last] = 0xff;
        assert!(locate_metadata(&bytes[..], 0, bytes.len() as u64)
            .unwrap_err()
            .contains("not UTF-8"));
        let cut = &h.as_bytes()[..h.len() - 3];
        assert!(locate_metadata(cut, 0, cut.len() as u64)
            .unwrap_err()
            .contains("not UTF-8"));
        // A metadata string over several pieces, escapes and all, is found whole; a raw
        // control byte deep inside it is still caught.
        let long = r#"ab\"c\\d\u00e9 "#.repeat(20_000);
        let h = format!(r#"{{"__metadata__":{{"vitrine":"{long}"}},"w":{{"x":"\""}}}}"#);
        assert!(h.len() > 3 * READ_CHUNK);
        assert_eq!(content(&h), long);
        let mut bad = h.clone().into_bytes();
        bad[2 * READ_CHUNK + 11] = b'\n';
        let e = locate_metadata(&bad[..], 0, bad.len() as u64).unwrap_err();
        assert!(e.contains("control character"), "{e}");
        // Every alignment of the escapes against the pieces' ends (a run stops before an
        // escape a piece cuts): found whole and skippable; a `\u` with a bad digit, an
        // unknown escape or a control byte placed across a piece's end is still seen.
        for pad in 0..16 {
            let p = "p".repeat(pad);
            let h = format!(r#"{{"q":"{p}","__metadata__":{{"vitrine":"{long}"}}}}"#);
            let start = h.find(r#"ab\"c"#).unwrap();
            assert_eq!(
                locate(&h).unwrap(),
                MetadataAt::String {
                    begin: start as u64,
                    end: (start + long.len()) as u64,
                    skippable: true
                },
                "pad {pad}"
            );
            // At a copy of the 15-byte pattern's start, the last that begins before the
            // second piece's end (over the pads, every distance from it).
            let at = start + (2 * READ_CHUNK - 1 - start) / 15 * 15;
            for (bad, what) in [
                (&b"\\u00z"[..], "bad hex"),
                (b"\\q", "escape"),
                (b"\x01", "control"),
            ] {
                let mut b = h.clone().into_bytes();
                b[at..at + bad.len()].copy_from_slice(bad);
                let found = locate_metadata(&b[..], 0, b.len() as u64);
                match what {
                    "bad hex" => assert!(
                        matches!(
                            found,
                            Ok(MetadataAt::String {
                                skippable: false,
                                ..
                            })
                        ),
                        "pad {pad}: {found:?}"
                    ),
                    "escape" => assert_eq!(
                        found.unwrap_err(),
                        format!(
                            "invalid escape `\\q` in the metadata string at byte {}",
                            at + 1
                        ),
                        "pad {pad}"
                    ),
                    _ => assert_eq!(
                        found.unwrap_err(),
                        format!("control character 0x01 in the metadata string at byte {at}"),
                        "pad {pad}"
                    ),
                }
            }
        }
        let raw_control = "{\"__metadata__\":{\"vitrine\":\"a\nb\"}}";
        assert!(locate(raw_control)
            .unwrap_err()
            .contains("control character"));
    }
}
