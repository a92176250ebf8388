//! The weight file: one file a store publishes beside its static assets, holding the
//! model's tensors and everything the browser needs to serve recommendations (item ids,
//! titles, attributes for filters, popularity, config, metrics, a content hash).
//!
//! Layout: a safetensors file (spec in `docs/weight-format.md`). The reader validates
//! everything against the file length and the declared shapes and returns a typed
//! [`FormatError`] for every defect; it never panics, natively or in wasm.
use std::collections::BTreeMap;

use serde::de::{Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

use crate::config::ModelConfig;
use crate::history::EventKind;
use crate::strs::{StrIndex, StrList};

mod catalog;
pub mod crc32;
mod stream;

/// Format version written by this build: 2, the item catalogue in the [`CATALOG_TENSOR`]
/// section. This build also reads version 1 (the catalogue in the metadata's `items`),
/// and writes it on request ([`WeightFile::to_bytes_as`]).
pub const FORMAT_VERSION: u32 = 2;

/// The oldest format version this build reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// The `U8` tensor holding the item catalogue in a version 2 file (layout: the
/// `catalog` module, `docs/weight-format.md`).
pub const CATALOG_TENSOR: &str = "catalog";

/// A tensor held in memory (quantised tensors are dequantised to `F32` on load).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Shape, outermost first (row-major data).
    pub shape: Vec<usize>,
    /// Values.
    pub data: TensorData,
}

/// Values of a tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// 32-bit floats.
    F32(Vec<f32>),
    /// 32-bit signed integers (indices, offsets).
    I32(Vec<i32>),
    /// Raw bytes (an opaque byte section such as `search.index`; never quantised or
    /// dequantised).
    U8(Vec<u8>),
}

/// How float matrices are stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    /// Plain f32.
    #[default]
    F32,
    /// IEEE half precision.
    F16,
    /// int8 with one f32 scale per output channel (row).
    Int8,
}

/// Catalog attributes the browser needs for display and filters, in catalog order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemCatalog {
    /// Store item ids (unique).
    #[serde(deserialize_with = "column::strs")]
    pub ids: StrList,
    /// Display titles.
    #[serde(deserialize_with = "column::strs")]
    pub titles: StrList,
    /// Category name index per item (into [`Metadata::categories`]; 0 is "unknown").
    #[serde(deserialize_with = "column::u32s")]
    pub category: Vec<u32>,
    /// Price in store currency, when known.
    pub price: OptColumn<f32>,
    /// When the item was first seen/added (Unix seconds), when known.
    pub added: OptColumn<f64>,
}

impl ItemCatalog {
    /// Whether every column is empty (a version 2 metadata document's, before the
    /// reader fills it from the [`CATALOG_TENSOR`] section).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
            && self.titles.is_empty()
            && self.category.is_empty()
            && self.price.is_empty()
            && self.added.is_empty()
    }
}

/// A float that stands for "none" by NaN, so an [`OptColumn`] of it stores no tag.
pub trait NanNone: Copy + PartialEq + serde::Serialize + serde::de::DeserializeOwned {
    /// The "none" value (NaN).
    const NONE: Self;
    /// Whether this is the "none" value.
    fn is_none(self) -> bool;
}

impl NanNone for f32 {
    const NONE: f32 = f32::NAN;
    fn is_none(self) -> bool {
        self.is_nan()
    }
}

impl NanNone for f64 {
    const NONE: f64 = f64::NAN;
    fn is_none(self) -> bool {
        self.is_nan()
    }
}

/// A column of optional floats in their own width: NaN is "none" (a `Vec<Option<f32>>`
/// takes 8 bytes an item, an `Option<f64>` 16; this 4 and 8). In the file it is the same
/// JSON array of numbers and `null`s as a `Vec<Option<T>>`. `Some(NaN)` cannot be
/// stored: it reads back as `None` (JSON has no NaN either); other non-finite values
/// are kept, for [`validate_metadata`] to refuse.
#[derive(Debug, Clone, Default)]
pub struct OptColumn<T: NanNone>(Vec<T>);

impl<T: NanNone> OptColumn<T> {
    /// `n` items, none known.
    pub fn none(n: usize) -> Self {
        OptColumn(vec![T::NONE; n])
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Item `i`'s value; `None` when unknown or out of range.
    pub fn get(&self, i: usize) -> Option<T> {
        self.0.get(i).copied().filter(|v| !v.is_none())
    }

    /// Sets item `i` (`Some(NaN)` stores `None`). Panics if `i` is out of range, like
    /// slice indexing.
    pub fn set(&mut self, i: usize, v: Option<T>) {
        self.0[i] = v.unwrap_or(T::NONE);
    }

    /// The values in item order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<T>> + '_ {
        self.0.iter().map(|&v| (!v.is_none()).then_some(v))
    }

    /// The stored values, NaN for "none" (what kernels and facets read).
    pub fn as_nan_slice(&self) -> &[T] {
        &self.0
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.0.capacity() * std::mem::size_of::<T>()
    }
}

impl<T: NanNone> PartialEq for OptColumn<T> {
    /// Item by item, "none" equal to "none".
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<T: NanNone> FromIterator<Option<T>> for OptColumn<T> {
    fn from_iter<I: IntoIterator<Item = Option<T>>>(iter: I) -> Self {
        OptColumn(iter.into_iter().map(|v| v.unwrap_or(T::NONE)).collect())
    }
}

impl<T: NanNone> From<Vec<Option<T>>> for OptColumn<T> {
    fn from(v: Vec<Option<T>>) -> Self {
        v.into_iter().collect()
    }
}

impl<T: NanNone> Serialize for OptColumn<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de, T: NanNone> Deserialize<'de> for OptColumn<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Column<T>(std::marker::PhantomData<T>);
        impl<'de, T: NanNone> Visitor<'de> for Column<T> {
            type Value = OptColumn<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of numbers and nulls")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut v = Vec::with_capacity(column::capacity(seq.size_hint()));
                while column::read_some(&mut seq, &mut v, |x: Option<T>| x.unwrap_or(T::NONE))? {}
                v.shrink_to_fit();
                Ok(OptColumn(v))
            }
        }
        deserializer.deserialize_seq(Column(std::marker::PhantomData))
    }
}

/// Sizing the catalogue's columns while a metadata document is parsed.
///
/// A column read from JSON does not know its length, and a vector grown by doubling to
/// its end leaves its earlier buffers behind as holes: in wasm, whose memory never
/// shrinks, about a column's size again each (tens of MiB at 1,000,000 items). The
/// metadata states the length first (`model.n_items`, written before `items`), so
/// while [`parse_metadata`] runs, reading the model notes it and each column then
/// reserves that many entries at once. The note is untrusted: it is capped by the
/// metadata text's length (every item takes at least [`MIN_ITEM_JSON`] bytes of it),
/// so a false one allocates at most a few bytes per byte of the file; a document
/// with its items first, or one parsed elsewhere, reserves as before (at most 65,536
/// entries, then doubling). A wrong note never changes what is read: a column longer
/// than noted grows, a shorter one is shrunk to fit.
mod column {
    use std::cell::Cell;

    use serde::de::{SeqAccess, Visitor};
    use serde::Deserializer;

    use crate::config::ModelConfig;
    use crate::strs::StrList;

    /// The fewest metadata bytes an item takes: its id `"",`, title `"",`, category
    /// `0,`, price `0,` and added date `0,`.
    pub(super) const MIN_ITEM_JSON: u64 = 12;

    /// Reservation without a note: what an untrusted size hint is capped at.
    const UNNOTED: usize = 1 << 16;

    thread_local! {
        /// While a [`Sizing`] is alive, `(cap, noted)`: the largest reservation the
        /// text allows and the noted length.
        static NOTE: Cell<Option<(usize, Option<usize>)>> = const { Cell::new(None) };
    }

    /// Columns parsed while this lives reserve the noted length (at most `cap`).
    pub(super) struct Sizing(());

    impl Sizing {
        pub(super) fn start(cap: usize) -> Sizing {
            NOTE.with(|n| n.set(Some((cap, None))));
            Sizing(())
        }
    }

    impl Drop for Sizing {
        fn drop(&mut self) {
            NOTE.with(|n| n.set(None));
        }
    }

    /// Entries a column reserves: the noted length within the cap, else the format's
    /// own hint capped at [`UNNOTED`].
    pub(super) fn capacity(size_hint: Option<usize>) -> usize {
        match NOTE.with(Cell::get) {
            Some((cap, Some(n))) => n.min(cap),
            _ => size_hint.unwrap_or(0).min(UNNOTED),
        }
    }

    /// Reads the model shape and notes its `n_items` for the columns that follow.
    pub(super) fn model_noting_items<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<ModelConfig, D::Error> {
        let model: ModelConfig = serde::Deserialize::deserialize(d)?;
        NOTE.with(|n| {
            if let Some((cap, _)) = n.get() {
                n.set(Some((cap, Some(model.n_items))));
            }
        });
        Ok(model)
    }

    /// Reads at most 4,096 more elements of `seq` into `v` (each through `map`); `false`
    /// once the sequence has ended. A function of its own, called once per 4,096
    /// elements rather than inlined into one loop over them all: V8 runs a wasm function
    /// in baseline code until that call returns (`crate::strs` reads its strings so too).
    #[inline(never)]
    pub(super) fn read_some<'de, A: SeqAccess<'de>, T: serde::Deserialize<'de>, U>(
        seq: &mut A,
        v: &mut Vec<U>,
        map: impl Fn(T) -> U,
    ) -> Result<bool, A::Error> {
        for _ in 0..4096 {
            match seq.next_element()? {
                Some(x) => v.push(map(x)),
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// A string column, reserving [`capacity`] strings.
    pub(super) fn strs<'de, D: Deserializer<'de>>(d: D) -> Result<StrList, D::Error> {
        StrList::deserialize_reserving(d, capacity)
    }

    /// A `u32` column, reserving [`capacity`] entries.
    pub(super) fn u32s<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
        struct Column;
        impl<'de> Visitor<'de> for Column {
            type Value = Vec<u32>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u32>, A::Error> {
                let mut v = Vec::with_capacity(capacity(seq.size_hint()));
                while read_some(&mut seq, &mut v, |x: u32| x)? {}
                v.shrink_to_fit();
                Ok(v)
            }
        }
        d.deserialize_seq(Column)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn model_json(n_items: usize) -> String {
            serde_json::to_string(&ModelConfig::default_for(n_items, 3, 16)).unwrap()
        }

        fn noted(json: &str) -> usize {
            let mut de = serde_json::Deserializer::from_str(json);
            model_noting_items(&mut de).unwrap();
            capacity(None)
        }

        #[test]
        fn columns_reserve_the_noted_length_within_the_cap_only_while_sizing() {
            assert_eq!(capacity(None), 0);
            assert_eq!(
                capacity(Some(1 << 30)),
                UNNOTED,
                "an input's hint is capped"
            );
            {
                let _sizing = Sizing::start(5000);
                assert_eq!(capacity(Some(7)), 7, "nothing noted yet");
                assert_eq!(noted(&model_json(1234)), 1234);
                assert_eq!(noted(&model_json(2_000_000)), 5000, "capped by the text");
            }
            assert_eq!(noted(&model_json(1234)), 0, "no sizing: nothing is noted");
            assert_eq!(capacity(Some(9)), 9);
        }

        #[test]
        fn columns_read_the_same_whatever_was_noted() {
            let _sizing = Sizing::start(1 << 20);
            for note in [2, 3, 100] {
                noted(&model_json(note));
                let mut de = serde_json::Deserializer::from_str(r#"[4, 0, 7]"#);
                let v = u32s(&mut de).unwrap();
                assert_eq!((v.as_slice(), v.capacity()), (&[4, 0, 7][..], 3));
                let mut de = serde_json::Deserializer::from_str(r#"["a", "", "bc"]"#);
                let list = strs(&mut de).unwrap();
                assert_eq!(list, ["a", "", "bc"]);
                assert_eq!(list.heap_bytes(), StrList::from(list.to_vec()).heap_bytes());
            }
        }
    }
}

/// The weight file's JSON metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// Format version (see [`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Model shape.
    #[serde(deserialize_with = "column::model_noting_items")]
    pub model: ModelConfig,
    /// Category names, index 0 = "unknown".
    pub categories: Vec<String>,
    /// Item ids, titles and attributes. In a version 2 file they are stored in the
    /// [`CATALOG_TENSOR`] section, not in the metadata JSON: absent from it (so empty
    /// when read by [`peek_metadata`]) and filled in by the reader.
    #[serde(default, skip_serializing_if = "ItemCatalog::is_empty")]
    pub items: ItemCatalog,
    /// Feature-extraction settings (hashing, price normalisation), free-form JSON.
    pub features: serde_json::Value,
    /// Training-data summary, free-form JSON.
    pub training: serde_json::Value,
    /// Evaluation metrics, free-form JSON.
    pub metrics: serde_json::Value,
    /// How float tensors are stored.
    pub quantization: Quantization,
    /// SHA-256 (hex) of the tensor data section: the model's identity (the browser's
    /// default history namespace, reports); checked on load where `data_crc32` is absent.
    pub content_hash: String,
    /// CRC-32 of `content_hash`'s 64 digits followed by the data section, 8 lowercase
    /// hex digits ([`crc32`]); checked on load instead of the SHA-256 (the same guard
    /// against a damaged file, several times faster: see [`crc32`]'s module docs).
    /// `None` (absent, as in files written before it existed): the SHA-256 is checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_crc32: Option<String>,
    /// The event kinds whose `user.kind` row was trained (they occurred as encoder inputs
    /// in training), in funnel order. `None` (the field absent, as in files written
    /// before it existed): not recorded, and every kind reads its own row as before. The
    /// runtime maps each kind not listed to the closest listed one
    /// (`crate::model::kinds`). When present: at least one kind, none twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trained_kinds: Option<Vec<EventKind>>,
}

/// A parsed weight file.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightFile {
    /// Metadata.
    pub metadata: Metadata,
    /// Tensors by name (dequantised).
    pub tensors: BTreeMap<String, Tensor>,
}

/// An `I8` tensor kept quantised by [`WeightFile::from_source`] (for the catalogue-sized
/// `item.id` table of an int8 file: one byte per value in memory instead of four).
/// Dequantised, element `k` of row `r` is `f32::from(q[k]) * scale[r]`, the same value
/// [`WeightFile::from_bytes`] gives; every such value is checked finite at load.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Tensor {
    /// Shape, outermost first (row-major `q`; rank at least 1).
    pub shape: Vec<usize>,
    /// The stored values.
    pub q: Vec<i8>,
    /// One scale per row (the shape without its last dimension), finite and `>= 0`.
    pub scale: Vec<f32>,
}

impl Int8Tensor {
    /// Row length (the last dimension).
    pub fn cols(&self) -> usize {
        self.shape.last().copied().unwrap_or(1)
    }
}

/// Where [`WeightFile::from_source`] reads a weight file from: a slice in memory, or in
/// the browser the JavaScript `Uint8Array` the file arrived in, read a piece at a time so
/// that the file is never copied whole into wasm memory (which never shrinks).
pub trait ByteSource {
    /// Length in bytes.
    fn byte_len(&self) -> u64;
    /// Copies the `out.len()` bytes starting at `offset` into `out`. The reader asks only
    /// for ranges inside `0..byte_len()`.
    fn read_at(&self, offset: u64, out: &mut [u8]);
}

impl ByteSource for [u8] {
    fn byte_len(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) {
        let start = offset as usize;
        out.copy_from_slice(&self[start..start + out.len()]);
    }
}

/// Bytes [`WeightFile::from_source`] copies out of its source per read (a multiple of
/// every element size).
const READ_CHUNK: usize = 64 * 1024;

/// Calls `f` on consecutive pieces of `src[begin..end)` (at most [`READ_CHUNK`] bytes
/// each, every piece but the last exactly that long).
fn for_each_chunk<S: ByteSource + ?Sized, E>(
    src: &S,
    begin: u64,
    end: u64,
    mut f: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    /// `f` on one piece, in a function of its own (not inlined into the loop): V8 runs a
    /// wasm call in baseline code until it returns, and one call over a header of tens
    /// of MiB would never leave it.
    #[inline(never)]
    fn piece<E>(f: &mut impl FnMut(&[u8]) -> Result<(), E>, bytes: &[u8]) -> Result<(), E> {
        f(bytes)
    }
    let mut buf = vec![0u8; READ_CHUNK.min(end.saturating_sub(begin) as usize)];
    let mut at = begin;
    while at < end {
        let len = (end - at).min(READ_CHUNK as u64) as usize;
        let bytes = &mut buf[..len];
        src.read_at(at, bytes);
        piece(&mut f, bytes)?;
        at += len as u64;
    }
    Ok(())
}

/// Longest JSON header the reader accepts (256 MiB).
pub const MAX_HEADER_LEN: u64 = 256 * 1024 * 1024;

/// Where the header of the weight file in `src` ends (`8 + N`, read from its first 8
/// bytes, which must be there): what [`OpenFile::open_header`] reads. `None` when the
/// source is shorter than 8 bytes or the length is one `open_header` rejects.
pub fn header_end<S: ByteSource + ?Sized>(src: &S) -> Option<u64> {
    if src.byte_len() < 8 {
        return None;
    }
    let mut len = [0u8; 8];
    src.read_at(0, &mut len);
    let n = u64::from_le_bytes(len);
    (n <= MAX_HEADER_LEN).then_some(8 + n)
}

/// Key of vitrine's metadata inside the safetensors `__metadata__` map.
pub const METADATA_KEY: &str = "vitrine";

/// Name of the optional search-index byte section (a 1-D `U8` tensor holding
/// [`crate::search::SearchIndex::to_bytes`]; its own version and SHA-256 inside).
pub const SEARCH_INDEX_TENSOR: &str = "search.index";

/// Suffix of the per-row scale companion of an `int8` tensor (`name` → `name.scale`).
pub const SCALE_SUFFIX: &str = ".scale";

/// The safetensors key holding the string-to-string metadata map.
const SAFETENSORS_METADATA: &str = "__metadata__";

/// Storage data type of a tensor in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// IEEE 754 binary32.
    F32,
    /// Signed 32-bit integer.
    I32,
    /// IEEE 754 binary16 (`f16` quantisation).
    F16,
    /// Signed 8-bit integer with a per-row `F32` scale (`int8` quantisation).
    I8,
    /// Unsigned byte: an opaque byte section (e.g. [`SEARCH_INDEX_TENSOR`]); allowed in
    /// every quantization mode, stored and read as is.
    U8,
}

impl Dtype {
    /// The safetensors name (`"F32"`, `"I32"`, `"F16"`, `"I8"`, `"U8"`).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "F32",
            Dtype::I32 => "I32",
            Dtype::F16 => "F16",
            Dtype::I8 => "I8",
            Dtype::U8 => "U8",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F16 => 2,
            Dtype::I8 | Dtype::U8 => 1,
        }
    }

    /// Parses a safetensors dtype name; `None` for dtypes vitrine does not support.
    pub fn from_name(name: &str) -> Option<Dtype> {
        match name {
            "F32" => Some(Dtype::F32),
            "I32" => Some(Dtype::I32),
            "F16" => Some(Dtype::F16),
            "I8" => Some(Dtype::I8),
            "U8" => Some(Dtype::U8),
            _ => None,
        }
    }
}

/// One tensor entry of the header, as stored (before dequantisation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTensor {
    /// Tensor name.
    pub name: String,
    /// Storage dtype.
    pub dtype: Dtype,
    /// Shape, outermost first.
    pub shape: Vec<usize>,
    /// `[begin, end)` byte range in the data section.
    pub data_offsets: [u64; 2],
}

/// Everything that can be wrong with a weight file (see `docs/weight-format.md`, "Errors").
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatError {
    /// The file ends before the length prefix, the header or the tensor data it declares.
    #[error("weight file truncated: it needs at least {needed} bytes but has {found}")]
    Truncated {
        /// Bytes the file should have at least.
        needed: u64,
        /// Bytes it has.
        found: u64,
    },
    /// The declared header length is over [`MAX_HEADER_LEN`].
    #[error("weight file header length {len} exceeds the limit of {max} bytes")]
    HeaderTooLarge {
        /// Declared header length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The header is not UTF-8, not JSON, or not the safetensors structure.
    #[error("weight file header is invalid: {0}")]
    BadHeader(String),
    /// A key appears twice in the header.
    #[error("weight file header has tensor {0:?} twice")]
    DuplicateTensor(String),
    /// No `__metadata__` map, or no `vitrine` entry in it.
    #[error("weight file has no vitrine metadata (`__metadata__.{METADATA_KEY}`)")]
    MissingMetadata,
    /// The vitrine metadata is not JSON or not the structure of [`Metadata`].
    #[error("weight file metadata is invalid: {0}")]
    BadMetadata(String),
    /// The metadata's `format_version` is not one this build reads.
    #[error("weight file format version {found} is not supported (this build reads versions {OLDEST_FORMAT_VERSION} to {supported})")]
    UnsupportedVersion {
        /// Version in the file.
        found: u64,
        /// The newest version this build reads ([`FORMAT_VERSION`]; it reads every
        /// version from [`OLDEST_FORMAT_VERSION`] up).
        supported: u32,
    },
    /// A version 2 file's item catalogue: no [`CATALOG_TENSOR`] `U8` tensor, an `items`
    /// object in the metadata beside it, or a section that does not hold `model.n_items`
    /// items in the layout of `docs/weight-format.md` (cut short, trailing bytes, a
    /// string that is not UTF-8 or whose length is over 32 bits).
    #[error("weight file catalog section is invalid: {0}")]
    BadCatalog(String),
    /// An `items` array does not have `model.n_items` entries.
    #[error("catalog array items.{field} has {len} entries, but model.n_items is {expected}")]
    CatalogLength {
        /// Which array (`ids`, `titles`, `category`, `price`, `added`).
        field: &'static str,
        /// Its length.
        len: usize,
        /// `model.n_items`.
        expected: usize,
    },
    /// Two catalog items share an id.
    #[error("item id {id:?} appears twice in the catalog (items {first} and {second})")]
    DuplicateItemId {
        /// The id.
        id: String,
        /// Catalog index of its first occurrence.
        first: usize,
        /// Catalog index of the second.
        second: usize,
    },
    /// `trained_kinds` is present but empty, or names a kind twice.
    #[error("trained_kinds is invalid: {0}")]
    BadTrainedKinds(String),
    /// An item's category index is not an index into `categories`.
    #[error(
        "item {item} has category index {category}, but there are only {categories} categories"
    )]
    CategoryOutOfRange {
        /// Catalog index of the item.
        item: usize,
        /// Its category index.
        category: u32,
        /// `categories.len()`.
        categories: usize,
    },
    /// A price is negative or non-finite, or an `added` date is non-finite.
    #[error("item {item} has an invalid {field}: {value}")]
    BadItemAttribute {
        /// Catalog index of the item.
        item: usize,
        /// `price` or `added`.
        field: &'static str,
        /// The value.
        value: f64,
    },
    /// A tensor dtype other than `F32`, `I32`, `F16`, `I8`, `U8`.
    #[error(
        "tensor {tensor:?} has unsupported dtype {dtype:?} (supported: F32, I32, F16, I8, U8)"
    )]
    UnknownDtype {
        /// Tensor name.
        tensor: String,
        /// The dtype in the header.
        dtype: String,
    },
    /// The tensor's byte length is not `product(shape) × dtype size` (or that overflows).
    #[error(
        "tensor {tensor:?}: shape {shape:?} of {dtype} does not match its {bytes} bytes of data"
    )]
    ShapeMismatch {
        /// Tensor name.
        tensor: String,
        /// Storage dtype name.
        dtype: &'static str,
        /// The declared shape.
        shape: Vec<u64>,
        /// The tensor's actual byte length.
        bytes: u64,
    },
    /// `begin > end`, or the tensor ends past the data section.
    #[error("tensor {tensor:?}: data_offsets [{begin}, {end}] are outside the {data_len}-byte data section")]
    OffsetsOutOfBounds {
        /// Tensor name.
        tensor: String,
        /// Start offset.
        begin: u64,
        /// End offset.
        end: u64,
        /// Length of the data section.
        data_len: u64,
    },
    /// Two tensors share bytes of the data section.
    #[error("tensors {first:?} and {second:?} overlap in the data section")]
    OverlappingTensors {
        /// The tensor starting first.
        first: String,
        /// The tensor starting inside it.
        second: String,
    },
    /// Bytes of the data section belong to no tensor.
    #[error("data section bytes [{start}, {end}) belong to no tensor")]
    UnindexedBytes {
        /// First unindexed byte.
        start: u64,
        /// End of the unindexed range.
        end: u64,
    },
    /// An `F16` or `I8` tensor in a file whose `quantization` does not use that dtype.
    #[error(
        "tensor {tensor:?} is stored as {dtype}, which quantization {quantization:?} does not use"
    )]
    QuantizationMismatch {
        /// Tensor name.
        tensor: String,
        /// Its storage dtype.
        dtype: &'static str,
        /// The file's quantization.
        quantization: Quantization,
    },
    /// An `I8` tensor has no `.scale` companion.
    #[error("int8 tensor {tensor:?} has no scale tensor {tensor:?}+\".scale\"")]
    MissingScale {
        /// The `I8` tensor's name.
        tensor: String,
    },
    /// An `I8` tensor's scale companion is not `F32`, has the wrong shape, or holds a
    /// negative or non-finite value.
    #[error("scale of int8 tensor {tensor:?} is invalid: {reason}")]
    BadScale {
        /// The `I8` tensor's name.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// The SHA-256 of the data section differs from the metadata's `content_hash`.
    #[error("weight file content hash mismatch: metadata says {expected}, data hashes to {found}")]
    HashMismatch {
        /// `content_hash` from the metadata.
        expected: String,
        /// Hash of the data section.
        found: String,
    },
    /// The CRC-32 of the `content_hash` digits and the data section differs from the
    /// metadata's `data_crc32`: the file was damaged (or edited) after it was written.
    #[error("weight file checksum mismatch: metadata says data_crc32 {expected}, the file gives {found} (damaged or changed since it was written)")]
    ChecksumMismatch {
        /// `data_crc32` from the metadata.
        expected: String,
        /// The checksum of the file's `content_hash` and data section.
        found: String,
    },
    /// A float value (after dequantisation) is NaN or infinite.
    #[error("tensor {tensor:?} has a non-finite value at element {index}")]
    NonFinite {
        /// Tensor name.
        tensor: String,
        /// Element index (row-major).
        index: usize,
    },
    /// (Writer) A value is out of the `f16` range.
    #[error("tensor {tensor:?}: element {index} = {value} does not fit in f16")]
    F16Overflow {
        /// Tensor name.
        tensor: String,
        /// Element index (row-major).
        index: usize,
        /// The value.
        value: f32,
    },
    /// (Writer) A tensor name the format reserves: `__metadata__`, [`CATALOG_TENSOR`]
    /// in a version 2 file, or with `int8` the `.scale` companion name of a quantised
    /// tensor.
    #[error("cannot write tensor {tensor:?}: the name {reserved:?} is reserved by the format (`__metadata__`, `catalog`, or an int8 `.scale` companion)")]
    ReservedName {
        /// The model tensor being written.
        tensor: String,
        /// The reserved name it needs or has.
        reserved: String,
    },
}

/// SHA-256 of `data` as 64 lowercase hex digits (the metadata's `content_hash`, taken
/// over the data section).
///
/// Fed to the hasher in 64 KiB chunks through a function that is never inlined: the
/// digest is the same as one `Sha256::digest(data)`, but in the browser a wasm function
/// only moves from V8's baseline compiler to its optimising one between calls (there is
/// no on-stack replacement for wasm), so one call over a 30 MB data section ran entirely
/// in baseline code — 1.8 s of a 2.2 s load at 100,000 items (bench/engines cold-start
/// breakdown). Many short calls let the hot function tier up after the first few.
pub fn content_hash(data: &[u8]) -> String {
    #[inline(never)]
    fn feed(hasher: &mut Sha256, chunk: &[u8]) {
        hasher.update(chunk);
    }
    let mut hasher = Sha256::new();
    for chunk in data.chunks(HASH_CHUNK) {
        feed(&mut hasher, chunk);
    }
    to_hex(&hasher.finalize())
}

/// The metadata's `data_crc32` of a data section `data` whose SHA-256 is `content_hash`
/// (its 64 hex digits as written): CRC-32 of those digits, then of `data`.
pub fn data_crc32(content_hash: &str, data: &[u8]) -> u32 {
    let mut c = crc32::Crc32::new();
    c.update(content_hash.as_bytes());
    for chunk in data.chunks(HASH_CHUNK) {
        c.update(chunk);
    }
    c.finish()
}

/// Bytes per call into the hasher in [`content_hash`].
const HASH_CHUNK: usize = 64 * 1024;

/// [`content_hash`] of `src[begin..end)`, read a piece at a time (the same digest).
fn content_hash_of<S: ByteSource + ?Sized>(src: &S, begin: u64, end: u64) -> String {
    to_hex(&sha256_of_range(src, begin..end))
}

/// SHA-256 of `src[range]`, read a piece at a time and fed to the hasher through a
/// function that is never inlined (see [`content_hash`]): a page's `integrity` check or
/// the data section's hash without copying the file.
pub fn sha256_of_range<S: ByteSource + ?Sized>(src: &S, range: std::ops::Range<u64>) -> [u8; 32] {
    #[inline(never)]
    fn feed(hasher: &mut Sha256, chunk: &[u8]) {
        hasher.update(chunk);
    }
    let end = range.end.min(src.byte_len());
    let mut hasher = Sha256::new();
    let _ = for_each_chunk(src, range.start.min(end), end, |chunk| {
        feed(&mut hasher, chunk);
        Ok::<(), ()>(())
    });
    hasher.finalize().into()
}

/// SHA-256 of a range of a source taken as its bytes arrive: [`RangeHasher::feed_to`]
/// hashes up to an offset (from where the last call stopped), [`RangeHasher::finish`]
/// gives the digest. The same digest as [`sha256_of_range`] over the whole range.
pub struct RangeHasher {
    hasher: Sha256,
    at: u64,
}

impl RangeHasher {
    /// A hash of the bytes from offset `start` on.
    pub fn new(start: u64) -> RangeHasher {
        RangeHasher {
            hasher: Sha256::new(),
            at: start,
        }
    }

    /// Hashes `src[at..end)`, where `at` is where the last call stopped (nothing when
    /// `end` is not past it; never past the source's end).
    pub fn feed_to<S: ByteSource + ?Sized>(&mut self, src: &S, end: u64) {
        #[inline(never)]
        fn feed(hasher: &mut Sha256, chunk: &[u8]) {
            hasher.update(chunk);
        }
        let hasher = &mut self.hasher;
        feed_range(src, &mut self.at, end, |chunk| feed(hasher, chunk));
    }

    /// The offset hashed up to.
    pub fn position(&self) -> u64 {
        self.at
    }

    /// The digest of every byte fed.
    pub fn finish(self) -> [u8; 32] {
        self.hasher.finalize().into()
    }
}

/// `f` on `src[*at..end)` a piece at a time, then `*at = end` (nothing when `end` is not
/// past `*at`; never past the source's end): [`RangeHasher`]'s and [`RangeCrc`]'s step.
fn feed_range<S: ByteSource + ?Sized>(src: &S, at: &mut u64, end: u64, mut f: impl FnMut(&[u8])) {
    let end = end.min(src.byte_len());
    if end <= *at {
        return;
    }
    let _ = for_each_chunk(src, *at, end, |chunk| {
        f(chunk);
        Ok::<(), ()>(())
    });
    *at = end;
}

/// The metadata's `data_crc32` taken as the data section's bytes arrive:
/// [`RangeCrc::feed_to`] adds the bytes up to an offset (from where the last call
/// stopped), [`RangeCrc::finish`] gives the checksum — the same as [`data_crc32`] over
/// the whole section.
#[derive(Debug, Clone)]
pub struct RangeCrc {
    crc: crc32::Crc32,
    at: u64,
}

impl RangeCrc {
    /// The checksum of `content_hash`'s digits, then of the bytes from offset `start` on.
    pub fn new(content_hash: &str, start: u64) -> RangeCrc {
        let mut crc = crc32::Crc32::new();
        crc.update(content_hash.as_bytes());
        RangeCrc { crc, at: start }
    }

    /// Adds `src[at..end)`, where `at` is where the last call stopped (nothing when `end`
    /// is not past it; never past the source's end).
    pub fn feed_to<S: ByteSource + ?Sized>(&mut self, src: &S, end: u64) {
        let crc = &mut self.crc;
        feed_range(src, &mut self.at, end, |chunk| crc.update(chunk));
    }

    /// The offset added up to.
    pub fn position(&self) -> u64 {
        self.at
    }

    /// The checksum of everything added.
    pub fn finish(&self) -> u32 {
        self.crc.finish()
    }
}

/// Bytes as lowercase hex digits, two per byte (digests, integrity strings).
pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for &b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}

/// Reads and validates only the header's metadata (cheap: no tensor decoding, no hash).
/// `bytes` may be just the file's first `8 + header_len` bytes. The catalogue of a
/// version 2 file lies in its data section: its `items` come back empty (and unchecked).
pub fn peek_metadata(bytes: &[u8]) -> Result<Metadata, FormatError> {
    let (header, _) = split_header(bytes)?;
    Ok(read_header(header, 0, header.len() as u64)?.0)
}

/// Reads and validates the header and lists the tensors as stored (dtype, shape,
/// offsets), without reading the data section. `bytes` may be just the header prefix.
pub fn peek_tensors(bytes: &[u8]) -> Result<Vec<StoredTensor>, FormatError> {
    let (header, data) = split_header(bytes)?;
    let (_, raw) = read_header(header, 0, header.len() as u64)?;
    raw.into_iter()
        .map(|(name, e)| {
            let info = check_entry(name, e, data.len() as u64)?;
            Ok(StoredTensor {
                name: info.name,
                dtype: info.dtype,
                shape: info.shape,
                data_offsets: [info.begin, info.end],
            })
        })
        .collect()
}

impl WeightFile {
    /// Serialises the file (tensors stored as `quantization` says; the content hash and
    /// format version in the metadata are filled in by the writer).
    ///
    /// Deterministic: tensors are laid out contiguously, the int8 scales and the
    /// catalogue first, the rest in name order.
    pub fn to_bytes(&self, quantization: Quantization) -> Result<Vec<u8>, FormatError> {
        self.to_bytes_as(quantization, FORMAT_VERSION)
    }

    /// [`WeightFile::to_bytes`] in format version `format_version`: 2 (the current one:
    /// the item catalogue in the [`CATALOG_TENSOR`] section) or 1 (the catalogue in the
    /// metadata's `items`, for a runtime older than version 2); any other is
    /// [`FormatError::UnsupportedVersion`].
    pub fn to_bytes_as(
        &self,
        quantization: Quantization,
        format_version: u32,
    ) -> Result<Vec<u8>, FormatError> {
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&format_version) {
            return Err(FormatError::UnsupportedVersion {
                found: u64::from(format_version),
                supported: FORMAT_VERSION,
            });
        }
        validate_metadata(&self.metadata)?;
        let mut stored = encode_tensors(&self.tensors, quantization)?;
        let mut metadata = self.metadata.clone();
        if format_version >= 2 {
            if self.tensors.contains_key(CATALOG_TENSOR) {
                return Err(FormatError::ReservedName {
                    tensor: CATALOG_TENSOR.to_owned(),
                    reserved: CATALOG_TENSOR.to_owned(),
                });
            }
            let bytes = catalog::encode(&metadata.items);
            stored.insert(
                CATALOG_TENSOR.to_owned(),
                (Dtype::U8, vec![bytes.len()], bytes),
            );
            metadata.items = ItemCatalog::default();
        }

        let mut header = serde_json::Map::new();
        let mut data: Vec<u8> = Vec::new();
        for (name, (dtype, shape, bytes)) in data_order(&stored) {
            let begin = data.len();
            data.extend_from_slice(bytes);
            header.insert(
                name.clone(),
                serde_json::json!({
                    "dtype": dtype.name(),
                    "shape": shape,
                    "data_offsets": [begin, data.len()],
                }),
            );
        }

        metadata.format_version = format_version;
        metadata.quantization = quantization;
        metadata.content_hash = content_hash(&data);
        metadata.data_crc32 = Some(crc32::to_hex8(data_crc32(&metadata.content_hash, &data)));
        let meta_json = serde_json::to_string(&metadata)
            .map_err(|e| FormatError::BadMetadata(e.to_string()))?;
        let mut meta_map = serde_json::Map::new();
        meta_map.insert(
            METADATA_KEY.to_owned(),
            serde_json::Value::String(meta_json),
        );
        header.insert(
            SAFETENSORS_METADATA.to_owned(),
            serde_json::Value::Object(meta_map),
        );
        let mut header = serde_json::to_string(&serde_json::Value::Object(header))
            .map_err(|e| FormatError::BadHeader(e.to_string()))?;
        while header.len() % 8 != 0 {
            header.push(' ');
        }

        let mut out = Vec::with_capacity(8 + header.len() + data.len());
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&data);
        Ok(out)
    }

    /// Parses and validates a weight file; every defect is a typed [`FormatError`].
    ///
    /// `F16` and `I8` tensors are dequantised to `F32` (the `.scale` companions are
    /// consumed); the returned metadata records the stored quantization and hash.
    pub fn from_bytes(bytes: &[u8]) -> Result<WeightFile, FormatError> {
        Ok(WeightFile::from_source(bytes, &[])?.0)
    }

    /// [`WeightFile::from_bytes`] reading from any [`ByteSource`], with the same checks in
    /// the same order and the same errors. The `I8` tensors named in `keep_int8` are not
    /// dequantised: they come back apart, as [`Int8Tensor`]s (absent from `tensors`);
    /// every other tensor (and a named one stored in another dtype) is decoded as
    /// `from_bytes` does.
    ///
    /// Memory: nothing but the parsed header (metadata and tensor entries) and the
    /// decoded tensors is allocated. The header is read in pieces of 64 KiB and parsed as
    /// it streams by, the metadata string decoded as the catalogue is built from it
    /// (neither text is held whole); the data section is hashed and decoded in pieces of
    /// 64 KiB too.
    pub fn from_source<S: ByteSource + ?Sized>(
        src: &S,
        keep_int8: &[&str],
    ) -> Result<(WeightFile, BTreeMap<String, Int8Tensor>), FormatError> {
        let (file, kept, _, _) = WeightFile::from_source_leaving(src, keep_int8, &[])?;
        Ok((file, kept))
    }

    /// [`WeightFile::from_source`] that also leaves the `U8` tensors named in `leave`
    /// where they are: not decoded (absent from `tensors`), returned as their byte
    /// ranges in `src` (checked and covered by the content hash like every tensor), for
    /// a reader that decodes them straight from the source — the search index section,
    /// which would otherwise be held whole while its index is built from it. A named
    /// tensor of another dtype is decoded as usual.
    pub fn from_source_leaving<S: ByteSource + ?Sized>(
        src: &S,
        keep_int8: &[&str],
        leave: &[&str],
    ) -> Result<Decoded, FormatError> {
        let open = OpenFile::open(src)?;
        open.check_hash()?;
        open.decode(keep_int8, leave)
    }
}

/// What [`WeightFile::from_source_leaving`] and [`OpenFile::decode`] return: the file
/// (less the tensors below), the `I8` tensors kept quantised, the byte ranges of the
/// `U8` tensors left where they lie, by name, and the id index that checking a version
/// 2 file's catalogue built ([`validate_metadata_indexed`]'s, over the file's ids; `None`
/// for a version 1 file, whose catalogue is checked later), so that a loader does not
/// build it again.
pub type Decoded = (
    WeightFile,
    BTreeMap<String, Int8Tensor>,
    BTreeMap<String, std::ops::Range<u64>>,
    Option<StrIndex>,
);

/// A weight file read up to its content hash: the header, the metadata, the tensor
/// table, the layout, the dtypes and the int8 scales are checked (every error
/// [`WeightFile::from_source`] reports before the hash), no tensor is decoded yet.
///
/// [`WeightFile::from_source_leaving`] is [`OpenFile::open`], [`OpenFile::check_hash`],
/// [`OpenFile::decode`]. A caller that takes the check elsewhere or otherwise (the
/// browser: the `data_crc32` as the bytes arrive, an older file's SHA-256 by WebCrypto)
/// compares it through [`OpenFile::hash_check`] instead, and keeps the error order:
/// what `open` reports first, then a checksum or hash mismatch, then what `decode` (and
/// anything built from it) reports.
pub struct OpenFile<'s, S: ?Sized> {
    src: &'s S,
    metadata: Metadata,
    entries: Vec<Entry>,
    scales: BTreeMap<String, Vec<f32>>,
    data_start: u64,
    /// A version 2 file's catalogue section: its position in `entries` (decoded into
    /// the metadata by `open`, so not a tensor).
    catalog_at: Option<usize>,
    /// What decoding and checking that section found wrong, reported by
    /// [`OpenFile::decode`] (after the hash, as a defect of the data).
    catalog_error: Option<FormatError>,
    /// The id index that checking that section built (see [`Decoded`]).
    id_index: Option<StrIndex>,
}

/// A weight file whose header and layout are read and checked ([`OpenFile::open_header`]),
/// before the catalogue section and the int8 scales ([`OpenHeader::finish`]).
pub struct OpenHeader<'s, S: ?Sized> {
    src: &'s S,
    metadata: Metadata,
    entries: Vec<Entry>,
    data_start: u64,
}

impl<'s, S: ByteSource + ?Sized> OpenHeader<'s, S> {
    /// A version 2 file's catalogue entry, when it is one [`OpenHeader::finish`] decodes
    /// (a 1-D `U8` tensor).
    fn catalog_entry(&self) -> Option<(usize, &Entry)> {
        if self.metadata.format_version < 2 {
            return None;
        }
        let i = self.entries.iter().position(|e| e.name == CATALOG_TENSOR)?;
        let e = &self.entries[i];
        (e.dtype == Dtype::U8 && e.shape.len() == 1).then_some((i, e))
    }

    /// The end (an offset in the source) of the bytes [`OpenHeader::finish`] reads: the
    /// header, a version 2 file's catalogue section and the `.scale` companions of the
    /// `I8` tensors. `vitrine` writes those first in the data section (see
    /// `docs/weight-format.md`), so a loader can open the file once they have arrived.
    pub fn needs(&self) -> u64 {
        let by_name = entries_by_name(&self.entries);
        let scales = (self.entries.iter())
            .filter(|e| e.dtype == Dtype::I8)
            .filter_map(|e| by_name.get(format!("{}{SCALE_SUFFIX}", e.name).as_str()))
            .map(|s| s.end);
        let catalog = self.catalog_entry().map(|(_, e)| e.end);
        let data = scales.chain(catalog).max().unwrap_or(0);
        self.data_start + data
    }

    /// The data section's byte range in the source: what `content_hash` covers.
    pub fn data_section(&self) -> std::ops::Range<u64> {
        self.data_start..self.src.byte_len()
    }

    /// What the metadata declares of the data section ([`OpenFile::hash_check`]).
    pub fn hash_check(&self) -> HashCheck {
        HashCheck::of(&self.metadata)
    }

    /// The rest of [`OpenFile::open`]: decodes a version 2 file's catalogue (its defects
    /// kept for [`OpenFile::decode`]), then checks the dtypes and reads the int8 scales.
    pub fn finish(self) -> Result<OpenFile<'s, S>, FormatError> {
        let catalog_at = self.catalog_entry().map(|(i, _)| i);
        let OpenHeader {
            src,
            mut metadata,
            entries,
            data_start,
        } = self;
        let section = Section {
            src,
            start: data_start,
        };
        // A version 2 file's catalogue is decoded here, where version 1's is parsed
        // (before the int8 scales and every tensor: allocated in that order, the load's
        // wasm memory peaks no higher), and its defects are kept for `decode` to report.
        let (mut catalog_error, mut id_index) = (None, None);
        if let Some(e) = catalog_at.map(|i| &entries[i]) {
            let (begin, end) = (data_start + e.begin, data_start + e.end);
            match catalog::decode(src, begin, end, metadata.model.n_items) {
                Ok(items) => {
                    metadata.items = items;
                    match validate_catalog(&metadata) {
                        Ok(index) => id_index = index,
                        Err(e) => catalog_error = Some(e),
                    }
                }
                Err(e) => catalog_error = Some(e),
            }
            if catalog_error.is_some() {
                metadata.items = ItemCatalog::default();
            }
        }
        let scales = check_dtypes(&entries, &metadata, &section)?;
        if metadata.format_version >= 2 && catalog_at.is_none() {
            let found = entries.iter().find(|e| e.name == CATALOG_TENSOR);
            return Err(FormatError::BadCatalog(match found {
                Some(e) => format!(
                    "`{CATALOG_TENSOR}` must be a 1-D U8 tensor, found {} of shape {:?}",
                    e.dtype.name(),
                    e.shape
                ),
                None => format!(
                    "a version {} file needs the `{CATALOG_TENSOR}` tensor",
                    metadata.format_version
                ),
            }));
        }
        Ok(OpenFile {
            src,
            metadata,
            entries,
            scales,
            data_start,
            catalog_at,
            catalog_error,
            id_index,
        })
    }
}

impl<'s, S: ByteSource + ?Sized> OpenFile<'s, S> {
    /// Reads and checks everything before the content hash (see [`OpenFile`]):
    /// [`OpenFile::open_header`], then [`OpenHeader::finish`].
    pub fn open(src: &'s S) -> Result<Self, FormatError> {
        OpenFile::open_header(src)?.finish()
    }

    /// The first part of [`OpenFile::open`]: the header's length, the header (metadata
    /// and tensor table) and the layout, which read only the first
    /// [`header_end`] bytes of `src`. [`OpenHeader::needs`] says how far the rest of
    /// `open` reads, for a loader that opens the file while it downloads.
    pub fn open_header(src: &'s S) -> Result<OpenHeader<'s, S>, FormatError> {
        let found = src.byte_len();
        if found < 8 {
            return Err(FormatError::Truncated { needed: 8, found });
        }
        let mut len = [0u8; 8];
        src.read_at(0, &mut len);
        let n = u64::from_le_bytes(len);
        if n > MAX_HEADER_LEN {
            return Err(FormatError::HeaderTooLarge {
                len: n,
                max: MAX_HEADER_LEN,
            });
        }
        // n <= 256 MiB, so 8 + n neither overflows u64 nor (once compared) usize.
        let data_start = 8 + n;
        if data_start > found {
            return Err(FormatError::Truncated {
                needed: data_start,
                found,
            });
        }
        let (metadata, raw) = read_header(src, 8, data_start)?;
        let data_len = found - data_start;
        let entries = raw
            .into_iter()
            .map(|(name, e)| check_entry(name, e, data_len))
            .collect::<Result<Vec<_>, _>>()?;
        check_layout(&entries, data_len, data_start)?;
        Ok(OpenHeader {
            src,
            metadata,
            entries,
            data_start,
        })
    }

    /// The source the file is read from.
    pub fn source(&self) -> &'s S {
        self.src
    }

    /// The data section's byte range in the source: what `content_hash` covers.
    pub fn data_section(&self) -> std::ops::Range<u64> {
        self.data_start..self.src.byte_len()
    }

    /// Checks the data section here as the metadata declares: its `data_crc32` where
    /// present ([`data_crc32`]), else its SHA-256 ([`content_hash`]).
    pub fn check_hash(&self) -> Result<(), FormatError> {
        let range = self.data_section();
        let check = self.hash_check();
        if check.has_crc() {
            let found = check.crc_of(self.src, range);
            return check.compare_crc(found);
        }
        check.compare(content_hash_of(self.src, range.start, range.end))
    }

    /// What the metadata declares of the data section, to compare with a checksum or
    /// digest of [`OpenFile::data_section`] taken elsewhere.
    pub fn hash_check(&self) -> HashCheck {
        HashCheck::of(&self.metadata)
    }

    /// Decodes the tensors (see [`WeightFile::from_source_leaving`] for `keep_int8` and
    /// `leave`). Does not look at the hash: call [`OpenFile::check_hash`] first, or compare
    /// through [`OpenFile::hash_check`] before using what this returns.
    pub fn decode(self, keep_int8: &[&str], leave: &[&str]) -> Result<Decoded, FormatError> {
        let mut decoding = self.decoding(keep_int8, leave);
        while decoding.needs().is_some() {
            decoding.step()?;
        }
        decoding.finish()
    }

    /// [`OpenFile::decode`] a tensor at a time, for a loader that decodes while the file
    /// downloads: [`Decoding::needs`] says how far the next [`Decoding::step`] reads.
    pub fn decoding(self, keep_int8: &[&str], leave: &[&str]) -> Decoding<'s, S> {
        let owned = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
        Decoding {
            keep_int8: owned(keep_int8),
            leave: owned(leave),
            next: 0,
            tensors: BTreeMap::new(),
            kept: BTreeMap::new(),
            left: BTreeMap::new(),
            open: self,
        }
    }
}

/// [`OpenFile::decode`] in steps of one tensor ([`OpenFile::decoding`]), in the header's
/// order (the tensors' names), so the first defect found is the one `decode` reports.
pub struct Decoding<'s, S: ?Sized> {
    open: OpenFile<'s, S>,
    keep_int8: Vec<String>,
    leave: Vec<String>,
    /// The next entry to look at.
    next: usize,
    tensors: BTreeMap<String, Tensor>,
    kept: BTreeMap<String, Int8Tensor>,
    left: BTreeMap<String, std::ops::Range<u64>>,
}

impl<'s, S: ByteSource + ?Sized> Decoding<'s, S> {
    /// The end (an offset in the source) of the bytes the next [`Decoding::step`] reads,
    /// or `None` when every tensor is decoded (then [`Decoding::finish`]). A version 2
    /// file's catalogue defect is the first step's error (it reads nothing).
    pub fn needs(&self) -> Option<u64> {
        if self.open.catalog_error.is_some() {
            return Some(0);
        }
        let e = self.open.entries.get(self.pending()?)?;
        Some(self.open.data_start + e.end)
    }

    /// The next entry that is decoded or left (scales and the catalogue are `open`'s).
    fn pending(&self) -> Option<usize> {
        let o = &self.open;
        (self.next..o.entries.len()).find(|&i| {
            !(o.scales.contains_key(o.entries[i].name.as_str()) || o.catalog_at == Some(i))
        })
    }

    /// Decodes (or keeps quantised, or leaves) the next tensor.
    pub fn step(&mut self) -> Result<(), FormatError> {
        if let Some(e) = self.open.catalog_error.take() {
            return Err(e);
        }
        let Some(i) = self.pending() else {
            return Ok(());
        };
        self.next = i + 1;
        let o = &self.open;
        let e = &o.entries[i];
        let section = Section {
            src: o.src,
            start: o.data_start,
        };
        if e.dtype == Dtype::I8 && self.keep_int8.contains(&e.name) {
            let q = decode_int8(e, &section, &o.scales)?;
            self.kept.insert(e.name.clone(), q);
        } else if e.dtype == Dtype::U8 && self.leave.contains(&e.name) {
            (self.left).insert(e.name.clone(), o.data_start + e.begin..o.data_start + e.end);
        } else {
            let data = decode_entry(e, &section, &o.scales)?;
            let shape = e.shape.clone();
            self.tensors.insert(e.name.clone(), Tensor { shape, data });
        }
        Ok(())
    }

    /// The file, the tensors kept quantised and the ranges left, once
    /// [`Decoding::needs`] is `None` (tensors not stepped to yet are not in them).
    pub fn finish(self) -> Result<Decoded, FormatError> {
        if let Some(e) = self.open.catalog_error {
            return Err(e);
        }
        let file = WeightFile {
            metadata: self.open.metadata,
            tensors: self.tensors,
        };
        Ok((file, self.kept, self.left, self.open.id_index))
    }
}

/// A weight file's declared `content_hash` and `data_crc32` ([`OpenFile::hash_check`]):
/// the load checks the CRC where the file has one ([`HashCheck::has_crc`]), else the
/// SHA-256.
#[derive(Debug, Clone)]
pub struct HashCheck {
    expected: String,
    crc: Option<String>,
}

impl HashCheck {
    /// What `metadata` declares.
    pub fn of(metadata: &Metadata) -> HashCheck {
        HashCheck {
            expected: metadata.content_hash.clone(),
            crc: metadata.data_crc32.clone(),
        }
    }

    /// Whether the file declares a `data_crc32` (checked instead of the SHA-256).
    pub fn has_crc(&self) -> bool {
        self.crc.is_some()
    }

    /// The running checksum of a data section starting at `start`: `content_hash`'s
    /// digits already added ([`RangeCrc`]).
    pub fn range_crc(&self, start: u64) -> RangeCrc {
        RangeCrc::new(&self.expected, start)
    }

    /// The `data_crc32` of `src[range]` with this file's `content_hash`, taken here.
    pub fn crc_of<S: ByteSource + ?Sized>(&self, src: &S, range: std::ops::Range<u64>) -> u32 {
        let mut crc = self.range_crc(range.start);
        crc.feed_to(src, range.end);
        crc.finish()
    }

    /// Compares `found`, the data section's `data_crc32`: a
    /// [`FormatError::ChecksumMismatch`] when it is not the declared one (or the file
    /// declares none, which [`HashCheck::has_crc`] tells beforehand).
    pub fn compare_crc(self, found: u32) -> Result<(), FormatError> {
        let found = crc32::to_hex8(found);
        match self.crc {
            Some(expected) if expected == found => Ok(()),
            expected => Err(FormatError::ChecksumMismatch {
                expected: expected.unwrap_or_default(),
                found,
            }),
        }
    }

    /// Compares `found`, the data section's SHA-256 in lowercase hex: a
    /// [`FormatError::HashMismatch`] when it is not the declared one.
    pub fn compare(self, found: String) -> Result<(), FormatError> {
        if found != self.expected {
            return Err(FormatError::HashMismatch {
                expected: self.expected,
                found,
            });
        }
        Ok(())
    }
}

/// The data section of a source: tensor offsets are relative to `start`.
struct Section<'s, S: ?Sized> {
    src: &'s S,
    start: u64,
}

impl<S: ByteSource + ?Sized> Section<'_, S> {
    /// Calls `f` on consecutive pieces of entry `e`'s bytes (see [`for_each_chunk`]).
    fn chunks<E>(&self, e: &Entry, f: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        for_each_chunk(self.src, self.start + e.begin, self.start + e.end, f)
    }
}

/// Step 6 of the validation: every tensor's dtype is allowed by the file's quantization,
/// and every `I8` tensor has a valid `.scale` companion. Returns the companions' values by
/// their names.
fn check_dtypes<S: ByteSource + ?Sized>(
    entries: &[Entry],
    metadata: &Metadata,
    data: &Section<'_, S>,
) -> Result<BTreeMap<String, Vec<f32>>, FormatError> {
    let by_name = entries_by_name(entries);
    let mut scales = BTreeMap::new();
    for e in entries {
        let allowed = match e.dtype {
            Dtype::F16 => metadata.quantization == Quantization::F16,
            Dtype::I8 => metadata.quantization == Quantization::Int8,
            Dtype::F32 | Dtype::I32 | Dtype::U8 => true,
        };
        if !allowed {
            return Err(FormatError::QuantizationMismatch {
                tensor: e.name.clone(),
                dtype: e.dtype.name(),
                quantization: metadata.quantization,
            });
        }
        if e.dtype == Dtype::I8 {
            let scale_name = format!("{}{SCALE_SUFFIX}", e.name);
            let s = by_name
                .get(scale_name.as_str())
                .ok_or_else(|| FormatError::MissingScale {
                    tensor: e.name.clone(),
                })?;
            let values = check_scale(e, s, data)?;
            scales.insert(s.name.clone(), values);
        }
    }
    Ok(scales)
}

/// One tensor's bytes as loaded data: `F16` and `I8` (times its row scales)
/// dequantised to `F32`; every float must be finite (step 8 of the validation).
fn decode_entry<S: ByteSource + ?Sized>(
    e: &Entry,
    data: &Section<'_, S>,
    scales: &BTreeMap<String, Vec<f32>>,
) -> Result<TensorData, FormatError> {
    let bytes = (e.end - e.begin) as usize;
    let values = match e.dtype {
        Dtype::I32 => {
            let mut v = Vec::with_capacity(bytes / 4);
            data.chunks(e, |raw| {
                v.extend(
                    raw.chunks_exact(4)
                        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                );
                Ok::<(), FormatError>(())
            })?;
            TensorData::I32(v)
        }
        Dtype::U8 => {
            let mut v = Vec::with_capacity(bytes);
            data.chunks(e, |raw| {
                v.extend_from_slice(raw);
                Ok::<(), FormatError>(())
            })?;
            TensorData::U8(v)
        }
        Dtype::F32 => {
            let mut v = Vec::with_capacity(bytes / 4);
            data.chunks(e, |raw| {
                v.extend(
                    raw.chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                );
                Ok::<(), FormatError>(())
            })?;
            TensorData::F32(v)
        }
        Dtype::F16 => {
            let mut v = Vec::with_capacity(bytes / 2);
            data.chunks(e, |raw| {
                v.extend(
                    raw.chunks_exact(2)
                        .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()),
                );
                Ok::<(), FormatError>(())
            })?;
            TensorData::F32(v)
        }
        Dtype::I8 => {
            let scale = scale_of(e, scales)?;
            let cols = e.shape.last().copied().unwrap_or(1);
            let mut v = Vec::with_capacity(bytes);
            data.chunks(e, |raw| {
                let at = v.len();
                v.extend(raw.iter().enumerate().map(|(i, &q)| {
                    let row = (at + i).checked_div(cols).unwrap_or(0);
                    f32::from(q as i8) * scale.get(row).copied().unwrap_or(0.0)
                }));
                Ok::<(), FormatError>(())
            })?;
            TensorData::F32(v)
        }
    };
    if let TensorData::F32(v) = &values {
        if let Some(index) = v.iter().position(|x| !x.is_finite()) {
            return Err(FormatError::NonFinite {
                tensor: e.name.clone(),
                index,
            });
        }
    }
    Ok(values)
}

/// The row scales of the `I8` tensor `e` (checked by [`check_dtypes`]).
fn scale_of<'a>(
    e: &Entry,
    scales: &'a BTreeMap<String, Vec<f32>>,
) -> Result<&'a [f32], FormatError> {
    let scale_name = format!("{}{SCALE_SUFFIX}", e.name);
    scales
        .get(scale_name.as_str())
        .map(Vec::as_slice)
        .ok_or_else(|| FormatError::MissingScale {
            tensor: e.name.clone(),
        })
}

/// An `I8` tensor kept quantised: its values as stored and its row scales, with the
/// check [`decode_entry`] makes on the dequantised values (every `f32::from(q) ·
/// scale` finite; the first that is not is the error, at the same index).
fn decode_int8<S: ByteSource + ?Sized>(
    e: &Entry,
    data: &Section<'_, S>,
    scales: &BTreeMap<String, Vec<f32>>,
) -> Result<Int8Tensor, FormatError> {
    let scale = scale_of(e, scales)?;
    let cols = e.shape.last().copied().unwrap_or(1);
    let mut q: Vec<i8> = Vec::with_capacity((e.end - e.begin) as usize);
    data.chunks(e, |raw| {
        q.extend(raw.iter().map(|&b| b as i8));
        Ok::<(), FormatError>(())
    })?;
    // Row by row (the same first element in row-major order as an element-wise scan).
    // Rounding is monotone, so the row's largest |x| gives its largest |x · s|: a row
    // whose largest product is finite has no element to look for (the scan, which does
    // not vectorise, runs only for a row that has one, or a NaN or infinite scale).
    let bad = (q.chunks(cols.max(1)).enumerate()).find_map(|(row, values)| {
        let s = scale.get(row).copied().unwrap_or(0.0);
        let largest = values.iter().map(|&x| x.unsigned_abs()).max().unwrap_or(0);
        if (f32::from(largest) * s).is_finite() {
            return None;
        }
        (values.iter())
            .position(|&x| !(f32::from(x) * s).is_finite())
            .map(|k| row * cols.max(1) + k)
    });
    if let Some(index) = bad {
        return Err(FormatError::NonFinite {
            tensor: e.name.clone(),
            index,
        });
    }
    Ok(Int8Tensor {
        shape: e.shape.clone(),
        q,
        scale: scale.to_vec(),
    })
}

/// A checked header entry (offsets within `u64`, shape dims within `usize`, byte length
/// consistent with shape and dtype).
struct Entry {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    begin: u64,
    end: u64,
}

/// A tensor entry exactly as in the JSON header.
#[derive(Deserialize, Debug)]
struct RawEntry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

/// The header object, parsed straight into typed entries (no intermediate JSON tree, so
/// memory stays proportional to the header).
#[derive(Default)]
struct RawHeader {
    /// Tensor entries in file order.
    entries: Vec<(String, RawEntry)>,
    /// The first key seen twice.
    duplicate: Option<String>,
}

/// A serde message without serde_json's " at line L column C" suffix (the outer error
/// adds the position again).
fn without_position(message: String) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message,
    }
}

impl<'de> Deserialize<'de> for RawHeader {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawHeader;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHeader, A::Error> {
                let mut out = RawHeader::default();
                let mut seen = std::collections::BTreeSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    if !seen.insert(key.clone()) && out.duplicate.is_none() {
                        out.duplicate = Some(key.clone());
                    }
                    if key == SAFETENSORS_METADATA {
                        map.next_value::<SafetensorsMetadata>().map_err(|e| {
                            A::Error::custom(format_args!(
                                "{SAFETENSORS_METADATA} must map strings to strings: {}",
                                without_position(e.to_string())
                            ))
                        })?;
                    } else {
                        let entry = map.next_value::<RawEntry>().map_err(|e| {
                            A::Error::custom(format_args!(
                                "tensor {key:?}: {}",
                                without_position(e.to_string())
                            ))
                        })?;
                        out.entries.push((key, entry));
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

/// The safetensors `__metadata__` map, checked (an object of strings) and dropped: the
/// `vitrine` value, which is the whole catalogue, is skipped where it lies without being
/// read into memory ([`stream::locate_metadata`] checked it is a string and knows where
/// it is); the other values are read as strings.
struct SafetensorsMetadata;

impl<'de> Deserialize<'de> for SafetensorsMetadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SafetensorsMetadata;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while let Some(key) = map.next_key::<String>()? {
                    if key == METADATA_KEY {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    } else {
                        map.next_value::<String>()?;
                    }
                }
                Ok(SafetensorsMetadata)
            }
        }
        d.deserialize_map(V)
    }
}

/// Splits the file into (header JSON bytes, data section), checking the length prefix.
fn split_header(bytes: &[u8]) -> Result<(&[u8], &[u8]), FormatError> {
    let found = bytes.len() as u64;
    let Some(prefix) = bytes.get(..8) else {
        return Err(FormatError::Truncated { needed: 8, found });
    };
    let mut len = [0u8; 8];
    len.copy_from_slice(prefix);
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER_LEN {
        return Err(FormatError::HeaderTooLarge {
            len: n,
            max: MAX_HEADER_LEN,
        });
    }
    // n <= 256 MiB, so 8 + n neither overflows u64 nor (once compared) usize.
    let needed = 8 + n;
    if needed > found {
        return Err(FormatError::Truncated { needed, found });
    }
    let end = needed as usize;
    Ok((&bytes[8..end], &bytes[end..]))
}

/// Parses the header JSON `src[begin..end)`: validated metadata, and the tensor entries
/// in file order. Reads the source a piece at a time ([`stream`]): neither the header's
/// text nor the metadata string unescaped out of it is ever held whole.
fn read_header<S: ByteSource + ?Sized>(
    src: &S,
    begin: u64,
    end: u64,
) -> Result<(Metadata, Vec<(String, RawEntry)>), FormatError> {
    read_header_with(src, begin, end, true)
}

/// [`read_header`]; `skip`: with the metadata string left out of the tensor entries'
/// parse where it can be (`false`: the whole header, the reference the tests compare
/// with).
fn read_header_with<S: ByteSource + ?Sized>(
    src: &S,
    begin: u64,
    end: u64,
    skip: bool,
) -> Result<(Metadata, Vec<(String, RawEntry)>), FormatError> {
    let at = stream::locate_metadata(src, begin, end).map_err(FormatError::BadHeader)?;
    // The tensor entries are parsed with the metadata string's content left out (it
    // reads as `""`), which the scan has checked the parser would skip without error;
    // a syntax error after it gets its column back.
    let hole = match at {
        stream::MetadataAt::String {
            begin: b,
            end: e,
            skippable: true,
        } if skip => b..e,
        _ => end..end,
    };
    let raw: RawHeader = serde_json::from_reader(std::io::BufReader::with_capacity(
        READ_CHUNK,
        stream::SourceReader::new(src, begin, end).skipping(hole.clone()),
    ))
    .map_err(|e| FormatError::BadHeader(message_across(e, src, begin, hole)))?;
    if let Some(name) = raw.duplicate {
        return Err(FormatError::DuplicateTensor(name));
    }
    let metadata = match at {
        stream::MetadataAt::Missing => return Err(FormatError::MissingMetadata),
        stream::MetadataAt::NotString => {
            return Err(FormatError::BadHeader(format!(
            "{SAFETENSORS_METADATA} must map strings to strings: `{METADATA_KEY}` is not a string"
        )))
        }
        stream::MetadataAt::String { begin, end, .. } => parse_metadata(src, begin, end)?,
    };
    Ok((metadata, raw.entries))
}

/// A header parse error's message as the parse of the whole header would give it:
/// `e` came from `src[begin..]` read without `hole` (no line break in it), so an error
/// after the hole on its line is `hole.len()` columns further on.
fn message_across<S: ByteSource + ?Sized>(
    e: serde_json::Error,
    src: &S,
    begin: u64,
    hole: std::ops::Range<u64>,
) -> String {
    if hole.is_empty() || e.line() == 0 {
        return e.to_string();
    }
    // The hole's line and the column serde_json counts there (bytes since the last
    // line break, up to the hole's start).
    let (mut line, mut column) = (1, 0);
    let _ = for_each_chunk(src, begin, hole.start, |piece| {
        for &b in piece {
            if b == b'\n' {
                line += 1;
                column = 0;
            } else {
                column += 1;
            }
        }
        Ok::<(), ()>(())
    });
    if e.line() != line || e.column() <= column {
        return e.to_string();
    }
    let shift = (hole.end - hole.start) as usize;
    format!(
        "{} at line {} column {}",
        without_position(e.to_string()),
        e.line(),
        e.column() + shift
    )
}

/// Parses the vitrine metadata string, whose escaped content is `src[begin..end)`:
/// the version first (a file of another version says so, whatever else is wrong with
/// it), then the structure, then the catalog rules.
fn parse_metadata<S: ByteSource + ?Sized>(
    src: &S,
    begin: u64,
    end: u64,
) -> Result<Metadata, FormatError> {
    /// Only the version; every other field is skipped without being stored.
    #[derive(Deserialize)]
    struct VersionProbe {
        format_version: Option<serde_json::Value>,
    }
    let text = || {
        std::io::BufReader::with_capacity(
            READ_CHUNK,
            stream::Unescape::new(src, begin, end, READ_CHUNK),
        )
    };
    // One pass when the file is good; the probe (a second pass) only explains a failure.
    let parsed: Result<Metadata, _> = {
        // Every item takes at least MIN_ITEM_JSON bytes of the text.
        let _sizing = column::Sizing::start(((end - begin) / column::MIN_ITEM_JSON) as usize);
        serde_json::from_reader(text())
    };
    let metadata = match parsed {
        Ok(m) => m,
        Err(full) => {
            let probe: VersionProbe = serde_json::from_reader(text())
                .map_err(|e| FormatError::BadMetadata(e.to_string()))?;
            let version = probe
                .format_version
                .ok_or_else(|| FormatError::BadMetadata("missing field `format_version`".into()))?;
            let Some(version) = version.as_u64() else {
                return Err(FormatError::BadMetadata(format!(
                    "format_version must be a non-negative integer, found {version}"
                )));
            };
            if !(u64::from(OLDEST_FORMAT_VERSION)..=u64::from(FORMAT_VERSION)).contains(&version) {
                return Err(FormatError::UnsupportedVersion {
                    found: version,
                    supported: FORMAT_VERSION,
                });
            }
            return Err(FormatError::BadMetadata(full.to_string()));
        }
    };
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&metadata.format_version) {
        return Err(FormatError::UnsupportedVersion {
            found: u64::from(metadata.format_version),
            supported: FORMAT_VERSION,
        });
    }
    validate_checksum_fields(&metadata)?;
    if metadata.format_version == 1 {
        validate_metadata(&metadata)?;
    } else {
        // The catalogue is the data section's; it is checked once decoded from there.
        if !metadata.items.is_empty() {
            return Err(FormatError::BadCatalog(format!(
                "a version {} file keeps its catalogue in the `{CATALOG_TENSOR}` section, but its metadata has `items`",
                metadata.format_version
            )));
        }
        validate_trained_kinds(&metadata)?;
    }
    Ok(metadata)
}

/// A file that declares `data_crc32` declares it as 8 lowercase hex digits, beside a
/// `content_hash` of 64 (which it covers: a file whose SHA-256 is no longer checked on
/// load still has its identity checked through the CRC).
fn validate_checksum_fields(m: &Metadata) -> Result<(), FormatError> {
    let Some(crc) = &m.data_crc32 else {
        return Ok(());
    };
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !hex(crc, 8) || !hex(&m.content_hash, 64) {
        return Err(FormatError::BadMetadata(
            "data_crc32 must be 8 lowercase hex digits, beside a content_hash of 64".into(),
        ));
    }
    Ok(())
}

/// The catalog rules shared by reader, writer and loader (the one catalog check of the
/// crate): every catalog column has `model.n_items` entries, ids are unique, category
/// indices are in range, prices are finite and non-negative, `added` dates finite; and
/// `trained_kinds`, when present, lists at least one kind and none twice.
pub fn validate_metadata(m: &Metadata) -> Result<(), FormatError> {
    validate_metadata_indexed(m).map(drop)
}

/// [`validate_metadata`], returning the id index that the uniqueness check builds
/// (`None` only past [`StrIndex`]'s `u32` positions), so a loader that needs one does
/// not build it twice.
pub fn validate_metadata_indexed(m: &Metadata) -> Result<Option<StrIndex>, FormatError> {
    validate_trained_kinds(m)?;
    validate_catalog(m)
}

/// `trained_kinds`, when present, lists at least one kind and none twice.
pub fn validate_trained_kinds(m: &Metadata) -> Result<(), FormatError> {
    if let Some(kinds) = &m.trained_kinds {
        if kinds.is_empty() {
            return Err(FormatError::BadTrainedKinds("no kind listed".into()));
        }
        for (i, k) in kinds.iter().enumerate() {
            if kinds[..i].contains(k) {
                return Err(FormatError::BadTrainedKinds(format!(
                    "{} listed twice",
                    format!("{k:?}").to_lowercase()
                )));
            }
        }
    }
    Ok(())
}

/// [`validate_metadata`]'s catalogue rules: lengths, unique ids (returning their
/// index), category range, attribute values.
fn validate_catalog(m: &Metadata) -> Result<Option<StrIndex>, FormatError> {
    let n = m.model.n_items;
    let items = &m.items;
    for (field, len) in [
        ("ids", items.ids.len()),
        ("titles", items.titles.len()),
        ("category", items.category.len()),
        ("price", items.price.len()),
        ("added", items.added.len()),
    ] {
        if len != n {
            return Err(FormatError::CatalogLength {
                field,
                len,
                expected: n,
            });
        }
    }
    // A 4-byte-per-slot table over the ids themselves (5.1 MiB at 1,000,000 items; a
    // `HashMap<&str, usize>` took 50 MiB of the load's peak).
    let index = match StrIndex::new_unique(&items.ids) {
        Ok(index) => index,
        Err(d) => {
            return Err(FormatError::DuplicateItemId {
                id: items.ids[d.second].to_owned(),
                first: d.first,
                second: d.second,
            })
        }
    };
    for (item, &category) in items.category.iter().enumerate() {
        if !usize::try_from(category).is_ok_and(|c| c < m.categories.len()) {
            return Err(FormatError::CategoryOutOfRange {
                item,
                category,
                categories: m.categories.len(),
            });
        }
    }
    for (item, price) in items.price.iter().enumerate() {
        if let Some(p) = price {
            if !p.is_finite() || p < 0.0 {
                return Err(FormatError::BadItemAttribute {
                    item,
                    field: "price",
                    value: f64::from(p),
                });
            }
        }
    }
    for (item, added) in items.added.iter().enumerate() {
        if let Some(a) = added {
            if !a.is_finite() {
                return Err(FormatError::BadItemAttribute {
                    item,
                    field: "added",
                    value: a,
                });
            }
        }
    }
    Ok(index)
}

/// Checks one entry on its own: dtype, offsets order, shape × size = byte length.
/// `data_len` (the data section's length) only goes into the error message.
fn check_entry(name: String, raw: RawEntry, data_len: u64) -> Result<Entry, FormatError> {
    let Some(dtype) = Dtype::from_name(&raw.dtype) else {
        return Err(FormatError::UnknownDtype {
            tensor: name,
            dtype: raw.dtype,
        });
    };
    let [begin, end] = raw.data_offsets;
    if begin > end {
        return Err(FormatError::OffsetsOutOfBounds {
            tensor: name,
            begin,
            end,
            data_len,
        });
    }
    let bytes = end - begin;
    let expected = raw
        .shape
        .iter()
        .try_fold(dtype.size() as u64, |acc, &d| acc.checked_mul(d));
    let shape: Option<Vec<usize>> = raw.shape.iter().map(|&d| usize::try_from(d).ok()).collect();
    match (expected, shape) {
        (Some(expected), Some(shape)) if expected == bytes => Ok(Entry {
            name,
            dtype,
            shape,
            begin,
            end,
        }),
        _ => Err(FormatError::ShapeMismatch {
            tensor: name,
            dtype: dtype.name(),
            shape: raw.shape,
            bytes,
        }),
    }
}

/// The entries by name (a later entry of the same name wins, as `collect` would
/// have it). Inserted one by one: collecting into a map sorts its input first, one more
/// copy of the standard stable sort in the browser package (`crate::sort`).
fn entries_by_name(entries: &[Entry]) -> BTreeMap<&str, &Entry> {
    let mut by_name = BTreeMap::new();
    for e in entries {
        by_name.insert(e.name.as_str(), e);
    }
    by_name
}

/// Checks that the entries tile the data section exactly (no overlap, no gap, nothing
/// past the end). `data_start` is the data section's offset in the file.
fn check_layout(entries: &[Entry], data_len: u64, data_start: u64) -> Result<(), FormatError> {
    let mut order: Vec<&Entry> = entries.iter().collect();
    crate::sort::sort_by(&mut order, |a, b| {
        (a.begin, a.end, &a.name).cmp(&(b.begin, b.end, &b.name))
    });

    let max_end = order.iter().map(|e| e.end).max().unwrap_or(0);
    if max_end > data_len {
        let tiles = order
            .iter()
            .try_fold(0u64, |cursor, e| (e.begin == cursor).then_some(e.end))
            .is_some();
        if tiles {
            return Err(FormatError::Truncated {
                needed: data_start.saturating_add(max_end),
                found: data_start.saturating_add(data_len),
            });
        }
        if let Some(e) = order.iter().find(|e| e.end > data_len) {
            return Err(FormatError::OffsetsOutOfBounds {
                tensor: e.name.clone(),
                begin: e.begin,
                end: e.end,
                data_len,
            });
        }
    }

    let mut cursor = 0u64;
    let mut prev: Option<&Entry> = None;
    for e in order {
        if e.begin < cursor {
            return Err(FormatError::OverlappingTensors {
                first: prev.map(|p| p.name.clone()).unwrap_or_default(),
                second: e.name.clone(),
            });
        }
        if e.begin > cursor {
            return Err(FormatError::UnindexedBytes {
                start: cursor,
                end: e.begin,
            });
        }
        cursor = e.end;
        prev = Some(e);
    }
    if cursor != data_len {
        return Err(FormatError::UnindexedBytes {
            start: cursor,
            end: data_len,
        });
    }
    Ok(())
}

/// Validates and decodes the scale companion `s` of the `I8` tensor `q`.
fn check_scale<S: ByteSource + ?Sized>(
    q: &Entry,
    s: &Entry,
    data: &Section<'_, S>,
) -> Result<Vec<f32>, FormatError> {
    let bad = |reason: String| FormatError::BadScale {
        tensor: q.name.clone(),
        reason,
    };
    if s.dtype != Dtype::F32 {
        return Err(bad(format!("dtype is {}, expected F32", s.dtype.name())));
    }
    let Some((_, rows)) = q.shape.split_last() else {
        return Err(bad("a rank-0 tensor cannot be stored as int8".into()));
    };
    if s.shape != rows {
        return Err(bad(format!(
            "shape is {:?}, expected {:?} (one scale per row)",
            s.shape, rows
        )));
    }
    let mut values = Vec::with_capacity(((s.end - s.begin) / 4) as usize);
    data.chunks(s, |raw| {
        values.extend(
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
        Ok::<(), FormatError>(())
    })?;
    if let Some((i, v)) = values
        .iter()
        .enumerate()
        .find(|(_, v)| !v.is_finite() || **v < 0.0)
    {
        return Err(bad(format!("element {i} is {v}")));
    }
    Ok(values)
}

/// Stored form of one tensor: dtype, shape, little-endian bytes.
type StoredEntry = (Dtype, Vec<usize>, Vec<u8>);

/// Stored form of every tensor, by name.
type Stored = BTreeMap<String, StoredEntry>;

/// The order of the data section: the `.scale` companions of the `I8` tensors, then the
/// catalogue, then every other tensor, each group in order of name. What
/// [`OpenFile::open`] reads (scales and catalogue, [`OpenHeader::needs`]) comes first,
/// so a loader can open the file while the rest downloads; the order of the rest is the
/// order [`OpenFile::decode`] reads it in (the header's, by name).
fn data_order(stored: &Stored) -> Vec<(&String, &StoredEntry)> {
    let is_scale = |name: &str| {
        (name.strip_suffix(SCALE_SUFFIX))
            .and_then(|base| stored.get(base))
            .is_some_and(|(dtype, _, _)| *dtype == Dtype::I8)
    };
    let group = |name: &str| match name {
        _ if is_scale(name) => 0,
        CATALOG_TENSOR => 1,
        _ => 2,
    };
    let mut order: Vec<_> = stored.iter().collect();
    // Stable: each group keeps the map's name order.
    crate::sort::sort_by_key(&mut order, |(name, _)| group(name));
    order
}

/// The writer's shape check: the data holds exactly `product(shape)` elements.
fn check_tensor_len(name: &str, t: &Tensor) -> Result<(), FormatError> {
    let (len, size, dtype) = match &t.data {
        TensorData::F32(v) => (v.len(), 4u64, "F32"),
        TensorData::I32(v) => (v.len(), 4u64, "I32"),
        TensorData::U8(v) => (v.len(), 1u64, "U8"),
    };
    let count = t
        .shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if count != Some(len) {
        return Err(FormatError::ShapeMismatch {
            tensor: name.to_string(),
            dtype,
            shape: t.shape.iter().map(|&d| d as u64).collect(),
            bytes: (len as u64).saturating_mul(size),
        });
    }
    Ok(())
}

/// `v` as little-endian `F16` (round to nearest); a value beyond the `F16` range is an
/// error, not silently infinity.
fn encode_f16(name: &str, v: &[f32]) -> Result<Vec<u8>, FormatError> {
    let mut bytes = Vec::with_capacity(v.len() * 2);
    for (index, &x) in v.iter().enumerate() {
        let h = half::f16::from_f32(x);
        if h.is_infinite() {
            return Err(FormatError::F16Overflow {
                tensor: name.to_string(),
                index,
                value: x,
            });
        }
        bytes.extend_from_slice(&h.to_le_bytes());
    }
    Ok(bytes)
}

/// Encodes the in-memory tensors for storage under `quantization`.
fn encode_tensors(
    tensors: &BTreeMap<String, Tensor>,
    quantization: Quantization,
) -> Result<Stored, FormatError> {
    let mut out = Stored::new();
    for (name, t) in tensors {
        if name == SAFETENSORS_METADATA {
            return Err(FormatError::ReservedName {
                tensor: name.clone(),
                reserved: name.clone(),
            });
        }
        check_tensor_len(name, t)?;
        let v = match &t.data {
            TensorData::I32(v) => {
                let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                out.insert(name.clone(), (Dtype::I32, t.shape.clone(), bytes));
                continue;
            }
            TensorData::U8(v) => {
                out.insert(name.clone(), (Dtype::U8, t.shape.clone(), v.clone()));
                continue;
            }
            TensorData::F32(v) => v,
        };
        if let Some(index) = v.iter().position(|x| !x.is_finite()) {
            return Err(FormatError::NonFinite {
                tensor: name.clone(),
                index,
            });
        }
        // Empty tensors stay F32 (nothing to quantise, and no scale rows to size).
        let matrix = t.shape.len() >= 2 && !v.is_empty();
        match quantization {
            Quantization::F16 if matrix => {
                let bytes = encode_f16(name, v)?;
                out.insert(name.clone(), (Dtype::F16, t.shape.clone(), bytes));
            }
            Quantization::Int8 if matrix => {
                let scale_name = format!("{name}{SCALE_SUFFIX}");
                if tensors.contains_key(&scale_name) {
                    return Err(FormatError::ReservedName {
                        tensor: name.clone(),
                        reserved: scale_name,
                    });
                }
                let cols = t.shape.last().copied().unwrap_or(1);
                let rows_shape = t
                    .shape
                    .split_last()
                    .map(|(_, r)| r.to_vec())
                    .unwrap_or_default();
                let (q, scales) = quantize_rows(v, cols);
                out.insert(name.clone(), (Dtype::I8, t.shape.clone(), q));
                let scale_bytes = scales.iter().flat_map(|x| x.to_le_bytes()).collect();
                out.insert(scale_name, (Dtype::F32, rows_shape, scale_bytes));
            }
            _ => {
                let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                out.insert(name.clone(), (Dtype::F32, t.shape.clone(), bytes));
            }
        }
    }
    Ok(out)
}

/// Symmetric per-row int8: `scale = max|row| / 127`, `q = round(x / scale)`.
/// Returns the `i8` bytes and one scale per row (`v.len() / cols` rows).
fn quantize_rows(v: &[f32], cols: usize) -> (Vec<u8>, Vec<f32>) {
    let mut q = Vec::with_capacity(v.len());
    let mut scales = Vec::with_capacity(v.len() / cols.max(1));
    if cols == 0 {
        return (q, scales);
    }
    for row in v.chunks(cols) {
        let max = row.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let scale = max / 127.0;
        scales.push(scale);
        for &x in row {
            let level = if scale > 0.0 {
                (x / scale).round().clamp(-127.0, 127.0) as i8
            } else {
                0
            };
            q.push(level as u8);
        }
    }
    (q, scales)
}

#[cfg(test)]
impl Metadata {
    /// Unit tests' metadata: this format version, f32, no features, training, metrics,
    /// hash or trained kinds.
    pub(crate) fn for_tests(
        model: ModelConfig,
        categories: Vec<String>,
        items: ItemCatalog,
    ) -> Metadata {
        Metadata {
            format_version: FORMAT_VERSION,
            model,
            categories,
            items,
            features: serde_json::Value::Null,
            training: serde_json::Value::Null,
            metrics: serde_json::Value::Null,
            quantization: Quantization::F32,
            content_hash: String::new(),
            data_crc32: None,
            trained_kinds: None,
        }
    }
}

#[cfg(test)]
mod header_tests {
    use super::*;

    /// `read_header` with and without the metadata string left out of the entries'
    /// parse, as comparable text (result or error message).
    fn both(header: &[u8]) -> (String, String) {
        let end = header.len() as u64;
        let show = |r: Result<(Metadata, Vec<(String, RawEntry)>), FormatError>| match r {
            Ok((m, e)) => format!("ok {m:?} {e:?}"),
            Err(e) => format!("err {e}"),
        };
        (
            show(read_header_with(header, 0, end, true)),
            show(read_header_with(header, 0, end, false)),
        )
    }

    #[test]
    fn skipping_the_metadata_string_changes_no_result_and_no_error() {
        const N: usize = 3;
        // Version 1: the catalogue in the metadata string, the text this test scans.
        let metadata = serde_json::to_string(&Metadata {
            format_version: 1,
            ..Metadata::for_tests(
                ModelConfig::tiny(N, 2, 4),
                ["unknown", "a"].map(String::from).to_vec(),
                ItemCatalog {
                    ids: (0..N).map(|i| format!("I{i}")).collect(),
                    titles: ["Tasse \"à café\"", "", "x\ny"].iter().collect(),
                    category: vec![1; N],
                    price: (0..N).map(|i| Some(i as f32)).collect(),
                    added: (0..N).map(|_| None).collect(),
                },
            )
        })
        .unwrap()
        .replacen('{', "{\"note\":\"caf\\u00e9 \\ud83d\\ude00 \\n\\\"\",", 1);
        let header = serde_json::json!({
            "__metadata__": { "vitrine": metadata, "other": "x" },
            "w": { "dtype": "F32", "shape": [1], "data_offsets": [0, 4] },
        })
        .to_string();
        // One line, and the same with line breaks before and after the string.
        let broken = header
            .replacen("{\"__metadata__\"", "{\n\"__metadata__\"", 1)
            .replacen(",\"w\"", ",\n\"w\"", 1);
        let mut compared = 0;
        for header in [header, broken] {
            let good = both(header.as_bytes());
            assert_eq!(good.0, good.1);
            assert!(good.0.starts_with("ok"), "{}", good.0);
            let bytes = header.as_bytes();
            for at in 0..bytes.len() {
                for b in [b'}', b'"', b',', b'x', b'\n', b'\\', b' ', b'0', b'u', b']'] {
                    let mut m = bytes.to_vec();
                    m[at] = b;
                    let (skipped, whole) = both(&m);
                    assert_eq!(skipped, whole, "byte {at} set to {:?}", b as char);
                    compared += 1;
                }
                let (skipped, whole) = both(&bytes[..at]);
                assert_eq!(skipped, whole, "cut at {at}");
                let mut m = bytes.to_vec();
                m.insert(at, b'x');
                let (skipped, whole) = both(&m);
                assert_eq!(skipped, whole, "x inserted at {at}");
            }
        }
        assert!(compared > 2_000);
    }
}
