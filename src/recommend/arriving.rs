//! Loading a weight file while it downloads: the steps of [`Recommender::from_source`]
//! (with the search index left, as the browser loads), each run as soon as the bytes it
//! reads have arrived.
//!
//! The source has its final length from the start (the download's announced length;
//! the bytes past what has arrived are not read). [`ArrivingLoad::needs`] says how many
//! leading bytes the next [`ArrivingLoad::advance`] reads:
//! 1. the header's length (8 bytes), then the header ([`crate::format::header_end`]):
//!    metadata, tensor table, layout ([`OpenFile::open_header`]);
//! 2. the catalogue section and the int8 scales ([`OpenHeader::needs`]; `vitrine`
//!    writes them first in the data section): the rest of [`OpenFile::open`];
//! 3. one tensor at a time, in the order `decode` reads them ([`Decoding::needs`]).
//!
//! Then [`ArrivingLoad::finish`]: the caller hashes the data section once every byte
//! has arrived and compares ([`Arrived::check`]) before it uses [`Arrived::build`]'s
//! result or reports its error — the errors and their order are
//! [`Recommender::from_source`]'s: what `open` reports (returned by `finish` at once,
//! whatever the rest of the file holds), then a hash mismatch, then what decoding and
//! building report. The model is built after the last byte (it needs every tensor).
//!
//! [`StreamHash`] decides where the check of a file still downloading is taken: a
//! `data_crc32` (files written since it exists) always as the bytes arrive; an older
//! file's SHA-256 as the bytes arrive when the download, measured over its first
//! [`RATE_WINDOW`] bytes, is slower than [`FAST_DOWNLOAD`], else by the caller once the
//! last byte is in.
use std::ops::Range;

use crate::format::{
    header_end, ByteSource, Decoding, FormatError, HashCheck, OpenFile, OpenHeader, RangeCrc,
    RangeHasher,
};

use super::{RecommendError, Recommender, LOAD_KEEPS_INT8, LOAD_LEAVES};

/// A load in progress (see the module docs).
pub struct ArrivingLoad<'s, S: ?Sized> {
    src: &'s S,
    stage: Stage<'s, S>,
    /// The most any step so far needed (a tensor may lie before one decoded earlier).
    reached: u64,
}

/// Where a load is.
enum Stage<'s, S: ?Sized> {
    /// Nothing read yet.
    Start,
    /// The header's length is read: the header ends at this offset.
    Header(u64),
    /// The header is read; the catalogue and the scales are next.
    Opening(Box<OpenHeader<'s, S>>),
    /// Opened; tensors being decoded.
    Decoding(Box<Decoding<'s, S>>, Seal),
    /// `open` failed: the load's error, whatever the rest of the file holds.
    Failed(FormatError),
    /// Decoding failed: reported after the hash check.
    DecodeFailed(FormatError, Seal),
    /// Moved out (by `advance` only for the length of a step).
    Taken,
}

/// What the content hash covers and should be.
struct Seal {
    check: HashCheck,
    data: Range<u64>,
}

/// A load whose every step has run ([`ArrivingLoad::finish`]).
pub struct Arrived<'s, S: ?Sized> {
    seal: Seal,
    decoded: Result<Box<Decoding<'s, S>>, FormatError>,
}

impl<'s, S: ByteSource + ?Sized> ArrivingLoad<'s, S> {
    /// A load of `src`, whose length is the file's (nothing read yet).
    pub fn new(src: &'s S) -> ArrivingLoad<'s, S> {
        ArrivingLoad {
            src,
            stage: Stage::Start,
            reached: 0,
        }
    }

    /// How many leading bytes of the source the next [`ArrivingLoad::advance`] reads;
    /// `None` when no step is left ([`ArrivingLoad::finish`]). Never more than the
    /// source's length; never less than an earlier answer.
    pub fn needs(&self) -> Option<u64> {
        let len = self.src.byte_len();
        let needs = match &self.stage {
            Stage::Start => 8,
            Stage::Header(end) => *end,
            Stage::Opening(header) => header.needs(),
            Stage::Decoding(d, _) => d.needs()?,
            Stage::Failed(_) | Stage::DecodeFailed(..) | Stage::Taken => return None,
        };
        Some(needs.min(len).max(self.reached))
    }

    /// Runs the next step; its error, if any, is kept for [`ArrivingLoad::finish`] and
    /// ends the steps.
    pub fn advance(&mut self) {
        if let Some(needs) = self.needs() {
            self.reached = needs;
        }
        let src = self.src;
        self.stage = match std::mem::replace(&mut self.stage, Stage::Taken) {
            // A length `open_header` rejects, or a source shorter than 8 bytes: it
            // reports which at once.
            Stage::Start => match header_end(src) {
                Some(end) => Stage::Header(end),
                None => Self::open_header(src),
            },
            Stage::Header(_) => Self::open_header(src),
            Stage::Opening(header) => match (*header).finish() {
                Ok(open) => {
                    let seal = Seal {
                        check: open.hash_check(),
                        data: open.data_section(),
                    };
                    let decoding = open.decoding(&LOAD_KEEPS_INT8, &LOAD_LEAVES);
                    Stage::Decoding(Box::new(decoding), seal)
                }
                Err(e) => Stage::Failed(e),
            },
            Stage::Decoding(mut d, seal) => match d.step() {
                Ok(()) => Stage::Decoding(d, seal),
                Err(e) => Stage::DecodeFailed(e, seal),
            },
            done => done,
        };
    }

    fn open_header(src: &'s S) -> Stage<'s, S> {
        match OpenFile::open_header(src) {
            Ok(header) => Stage::Opening(Box::new(header)),
            Err(e) => Stage::Failed(e),
        }
    }

    /// The data section's byte range (what the content hash covers), once the header is
    /// read (`None` before, and after `open` failed).
    pub fn data_section(&self) -> Option<Range<u64>> {
        match &self.stage {
            Stage::Opening(header) => Some(header.data_section()),
            Stage::Decoding(_, seal) | Stage::DecodeFailed(_, seal) => Some(seal.data.clone()),
            _ => None,
        }
    }

    /// What the metadata declares of the data section (its `data_crc32`, else its
    /// SHA-256), once the header is read (`None` before, and after `open` failed).
    pub fn hash_check(&self) -> Option<HashCheck> {
        match &self.stage {
            Stage::Opening(header) => Some(header.hash_check()),
            Stage::Decoding(_, seal) | Stage::DecodeFailed(_, seal) => Some(seal.check.clone()),
            _ => None,
        }
    }

    /// Whether the file is opened (everything before the content hash is read and
    /// checked; tensors may still be decoding).
    pub fn is_open(&self) -> bool {
        matches!(self.stage, Stage::Decoding(..) | Stage::DecodeFailed(..))
    }

    /// Runs the steps left ([`ArrivingLoad::advance`] until [`ArrivingLoad::needs`] is
    /// `None`: every byte must be there) and ends the load: `open`'s error, or what the
    /// hash check and the build need.
    pub fn finish(mut self) -> Result<Arrived<'s, S>, RecommendError> {
        while self.needs().is_some() {
            self.advance();
        }
        let (decoded, seal) = match self.stage {
            Stage::Failed(e) => return Err(e.into()),
            Stage::Decoding(d, seal) => (Ok(d), seal),
            Stage::DecodeFailed(e, seal) => (Err(e), seal),
            Stage::Start | Stage::Header(_) | Stage::Opening(_) | Stage::Taken => {
                unreachable!("steps are left only while `needs` is Some")
            }
        };
        Ok(Arrived { seal, decoded })
    }
}

impl<S: ByteSource + ?Sized> Arrived<'_, S> {
    /// The data section's byte range: what the content hash covers.
    pub fn data_section(&self) -> Range<u64> {
        self.seal.data.clone()
    }

    /// The declared content hash, to compare with the data section's digest.
    pub fn check(&self) -> HashCheck {
        self.seal.check.clone()
    }

    /// The engine, with the search index left
    /// ([`Recommender::from_open_leaving_search`]), or decoding's or the build's error.
    pub fn build(self) -> Result<Recommender, RecommendError> {
        Recommender::from_decoded(self.decoded?.finish()?)
    }
}

/// How far behind the download a streamed load's own SHA-256 may fall (32 MiB) before
/// it leaves the hash to WebCrypto after the last byte: behind by more, the download is
/// faster than hashing here (about 0.3 GB/s in wasm on one core beside the decoding),
/// and WebCrypto's faster SHA-256 is then the quicker way. (Files with a `data_crc32`
/// take that checksum as the bytes arrive instead, whatever the rate.)
pub const HASH_LAG: u64 = 32 << 20;

/// The download rate (bytes per millisecond: 100 MB/s) above which a streamed load
/// leaves the hash to WebCrypto, measured over the first [`RATE_WINDOW`] bytes after
/// the header. Nothing is hashed while the rate is measured: hashing beside the
/// decoding on one thread slowed a fast download's load (on the browser's main thread
/// the download itself slows while they run) by 50–100 ms at 100,000 items on loopback,
/// for a hash WebCrypto then takes anyway. Slower downloads (the
/// internet's) are hashed as they arrive once the window is past, the window's bytes
/// first, so that only the model's build is left after the last byte (0.2 s instead of
/// 0.55 s at 1,000,000 items).
pub const FAST_DOWNLOAD: f64 = 100_000.0;

/// Bytes over which the download rate is measured (8 MiB).
pub const RATE_WINDOW: u64 = 8 << 20;

/// How far a load that hashes as the bytes arrive waits at a time (4 MiB), so that the
/// hash follows the download.
pub const HASH_STEP: u64 = 4 << 20;

/// Where a streamed load's content hash is taken: as the bytes arrive, or (the
/// download outran it: [`FAST_DOWNLOAD`], [`HASH_LAG`]; or the file ended within the
/// rate's window) by the caller after the last byte. The caller says when the header
/// is read ([`StreamHash::start`]) and, after each wait, how many bytes are in and the
/// time ([`StreamHash::arrived`]).
#[derive(Default)]
pub struct StreamHash {
    state: Hashing,
}

/// [`StreamHash`]'s state.
#[derive(Default)]
enum Hashing {
    /// The header (which says where the data section starts) is not read yet.
    #[default]
    NotYet,
    /// The download rate is being measured from `from` bytes in at `t0` (ms); nothing
    /// is hashed yet. The data section starts at `data_start`.
    Measuring { data_start: u64, from: u64, t0: f64 },
    /// Taken as the bytes arrive.
    Here(RangeHasher),
    /// The file declares a `data_crc32`: that checksum, taken as the bytes arrive from
    /// the data section's start (several GB/s: it keeps up with any download, so no
    /// rate is measured).
    Crc(RangeCrc),
    /// Left to the caller once every byte is in.
    AtTheEnd,
}

impl StreamHash {
    /// Whether [`StreamHash::start`] was called.
    pub fn is_started(&self) -> bool {
        !matches!(self.state, Hashing::NotYet)
    }

    /// Starts, with `have` bytes in at time `now_ms`; the data section (what the hash
    /// covers) starts at `data_start`. A file with a `data_crc32` (`check`) has that
    /// checksum taken as the bytes arrive; any other file's SHA-256 waits for the
    /// download's rate to be measured.
    pub fn start(&mut self, check: &HashCheck, data_start: u64, have: u64, now_ms: f64) {
        self.state = if check.has_crc() {
            Hashing::Crc(check.range_crc(data_start))
        } else {
            Hashing::Measuring {
                data_start,
                from: have,
                t0: now_ms,
            }
        };
    }

    /// The next offset to wait for on the way to `end` with `have` bytes in: the end of
    /// the rate's window while measuring, a [`HASH_STEP`] at a time while hashing as
    /// the bytes arrive, else `end`.
    pub fn next_wait(&self, have: u64, end: u64) -> u64 {
        match self.state {
            Hashing::Measuring { from, .. } => end.min((from + RATE_WINDOW).max(have + 1)),
            Hashing::Here(..) | Hashing::Crc(..) => end.min(have + HASH_STEP),
            Hashing::NotYet | Hashing::AtTheEnd => end,
        }
    }

    /// The first `have` bytes of `src` are in at time `now_ms`: once the rate's window
    /// is past, hashes them (from the data section's start) on a slow download, or
    /// leaves the hash to the caller on a fast one or when the hash lags by more than
    /// [`HASH_LAG`].
    pub fn arrived<S: ByteSource + ?Sized>(&mut self, src: &S, have: u64, now_ms: f64) {
        if let Hashing::Measuring {
            data_start,
            from,
            t0,
        } = self.state
        {
            if have < from + RATE_WINDOW {
                return;
            }
            let ms = now_ms - t0;
            self.state = if ms <= 0.0 || (have - from) as f64 / ms > FAST_DOWNLOAD {
                Hashing::AtTheEnd
            } else {
                Hashing::Here(RangeHasher::new(data_start))
            };
        }
        if let Hashing::Crc(c) = &mut self.state {
            c.feed_to(src, have);
            return;
        }
        let Hashing::Here(h) = &mut self.state else {
            return;
        };
        if have.saturating_sub(h.position()) > HASH_LAG {
            self.state = Hashing::AtTheEnd;
        } else {
            h.feed_to(src, have);
        }
    }

    /// The data section's digest or checksum when it was taken as the bytes arrived
    /// (every byte must have been fed), or `None`: the caller takes it.
    pub fn finish(self) -> Option<Taken> {
        match self.state {
            Hashing::Here(h) => Some(Taken::Sha256(h.finish())),
            Hashing::Crc(c) => Some(Taken::Crc32(c.finish())),
            Hashing::NotYet | Hashing::Measuring { .. } | Hashing::AtTheEnd => None,
        }
    }
}

/// What a [`StreamHash`] took as the bytes arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// The data section's SHA-256 (a file without `data_crc32`).
    Sha256([u8; 32]),
    /// The file's `data_crc32` ([`crate::format::data_crc32`]).
    Crc32(u32),
}
