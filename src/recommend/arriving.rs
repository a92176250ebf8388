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
use std::ops::Range;

use crate::format::{
    header_end, ByteSource, Decoding, FormatError, HashCheck, OpenFile, OpenHeader,
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
