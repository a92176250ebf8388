//! Data ingestion (native only): turns a store's export into a [`Dataset`] of items and
//! per-user event sequences, with an [`IngestReport`] that says what was read, kept and
//! dropped, and why. The trainer, the evaluator, the baselines and the CLI read datasets
//! from here.
//!
//! Four inputs are supported:
//! - [`load_online_retail`]: the shipped default dataset, UCI Online Retail
//!   (`data/online-retail/online_retail.csv.gz`), with its cleaning rules (below).
//! - [`load_events_csv`]: the generic export any store can produce: an events CSV
//!   `user_id,item_id,timestamp[,event_type][,quantity]` and an optional items CSV
//!   `item_id,title[,category][,price]`.
//! - [`load_events_parquet`]: the same events as a Parquet file or a directory of them
//!   (Spark, DuckDB, pandas output), columns configurable, read by row group with
//!   projection; the same cleaning and report as the CSV (`data/parquet.rs`).
//! - [`load_sequence_file`]: the plain `user item item ...` / `user item` files of the
//!   public sequential-recommendation benchmarks (SASRec, BERT4Rec, S3-Rec), with an
//!   optional item→attributes JSON.
//!
//! Files may be plain or gzip-compressed (detected from the content, not the name).
//! CSV follows RFC 4180: fields may be quoted, quoted fields may hold commas, newlines and
//! doubled quotes (`""`). A UTF-8 byte-order mark is ignored; CRLF line ends are accepted;
//! blank lines are skipped. Header names are matched case-insensitively, ignoring `_`,
//! `-` and spaces (`user_id`, `UserId` and `user id` are the same column); extra columns
//! are ignored.
//!
//! # Errors and bad rows
//! Problems with a whole file (cannot be read, missing column, no data rows) are always
//! errors. Problems with one row (a bad timestamp, an unknown event type, a wrong field
//! count, ...) are [`DataError::Parse`] errors naming the file, the line (1-based, the
//! line where the record starts), the column (1-based field number) and what was
//! expected. By default ([`LoadOptions::strict`] = false) such a row is skipped and
//! counted in the report under its reason ([`ParseKind::reason`]) with the first few
//! messages kept as examples; with `strict` the first one is returned as the error.
//! Every row read is either kept or counted under exactly one reason:
//! `rows_read == rows_kept + dropped.values().sum()`.
//!
//! # Online Retail cleaning
//! Each row is checked in this order and dropped under the first reason that applies:
//! 1. `cancellation`: `InvoiceNo` starts with `C`;
//! 2. `non_positive_quantity`: `Quantity` ≤ 0 (adjustments, returns);
//! 3. `missing_customer`: empty `CustomerID`;
//! 4. `non_product_code`: the `StockCode` is not a product. Rule: a product code is
//!    exactly five ASCII digits optionally followed by ASCII letters (`85123A`,
//!    `71053`, `15056BL`). Everything else is a non-product: `POST`, `DOT`, `M`, `BANK
//!    CHARGES`, `AMAZONFEE`, `D`, `C2`, `S`, `PADS`, `CRUK`, `B`, gift vouchers
//!    `gift_0001_*`, the `DCGS*` marketplace codes;
//! 5. `non_positive_price`: `UnitPrice` ≤ 0 (free samples, write-offs);
//! 6. `duplicate_in_invoice`: the same stock code already appeared in the same invoice
//!    (duplicate lines of one basket are merged into the first; consecutive or not, since
//!    the line order inside one invoice carries no meaning).
//!
//! Unparseable fields count under their parse reason (`bad_quantity`, `bad_price`,
//! `bad_timestamp`, ...). Every kept row is one `purchase` event at the invoice time.
//! Stock codes are compared case-insensitively (upper-cased). An item's title is its most
//! frequent non-empty description among kept rows (ties: the first seen; the code when
//! there is none), its price the median unit price of kept rows, its `added` time the
//! first kept sale. `InvoiceDate` is ISO 8601 local time without zone
//! (`2010-12-01T08:26:00`), read as if UTC; the `12/1/2010 8:26` form of other copies is
//! accepted too.
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::format::ItemCatalog;
use crate::history::{EventKind, HistoryEvent};

mod parquet;
pub use self::parquet::{
    load_events_parquet, parquet_files, write_synthetic_log, ParquetColumns, SynthLogSpec,
    SYNTH_SCHEMA,
};

/// One catalog item.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRecord {
    /// The store's item id (unique within a dataset).
    pub id: String,
    /// Display title (the id when the data has no title).
    pub title: String,
    /// Category given by the data, when it has one.
    pub category: Option<String>,
    /// Price in store currency, when known.
    pub price: Option<f32>,
    /// When the item was first seen (Unix seconds), when known.
    pub added: Option<f64>,
}

/// The weight file's catalog of `items` (ids, titles, prices, `added` times) with the
/// category index of each item (from the features, see
/// [`crate::features::ItemFeatureTable::category`]), in catalog order.
pub fn catalog(items: &[ItemRecord], category: Vec<u32>) -> ItemCatalog {
    ItemCatalog {
        ids: items.iter().map(|i| &i.id).collect(),
        titles: items.iter().map(|i| &i.title).collect(),
        category,
        price: items.iter().map(|i| i.price).collect(),
        added: items.iter().map(|i| i.added).collect(),
    }
}

/// A loaded dataset: the catalog, the users and each user's time-ordered events.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The catalog; an event's `item` is an index into it. Items without any event (cold
    /// items) stay in the catalog.
    pub items: Vec<ItemRecord>,
    /// User ids, in order of first appearance in the data.
    pub users: Vec<String>,
    /// One sequence per user (same order as `users`), sorted by time; events with equal
    /// timestamps keep their file order.
    pub sequences: Vec<Vec<HistoryEvent>>,
    /// How strongly each event kind counts, indexed by [`EventKind::index`]
    /// (view, cart, purchase); from [`LoadOptions::event_weights`].
    pub event_weights: [f32; 3],
}

impl Dataset {
    /// Number of users.
    pub fn n_users(&self) -> usize {
        self.users.len()
    }

    /// Number of catalog items (including cold items).
    pub fn n_items(&self) -> usize {
        self.items.len()
    }

    /// Total number of events over all users.
    pub fn n_interactions(&self) -> usize {
        self.sequences.iter().map(Vec::len).sum()
    }

    /// The weight of an event kind (see [`Dataset::event_weights`]).
    pub fn weight(&self, kind: EventKind) -> f32 {
        self.event_weights[kind.index()]
    }

    /// Map from item id to catalog index.
    pub fn item_index(&self) -> HashMap<&str, u32> {
        self.items
            .iter()
            .enumerate()
            .map(|(i, it)| (it.id.as_str(), i as u32))
            .collect()
    }

    /// Number of events per catalog item.
    pub fn interaction_counts(&self) -> Vec<u32> {
        let mut counts = vec![0u32; self.items.len()];
        for ev in self.sequences.iter().flatten() {
            if let Some(c) = counts.get_mut(ev.item as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// Catalog indices of the items that have no event at all (cold items).
    pub fn cold_items(&self) -> Vec<u32> {
        self.interaction_counts()
            .iter()
            .enumerate()
            .filter(|(_, &c)| c == 0)
            .map(|(i, _)| i as u32)
            .collect()
    }

    /// Removes users with fewer than `min_events` events (their items stay in the
    /// catalog). Returns how many users were removed.
    pub fn retain_users_with_min_events(&mut self, min_events: usize) -> usize {
        let before = self.users.len();
        let mut users = Vec::with_capacity(before);
        let mut sequences = Vec::with_capacity(before);
        for (u, s) in self.users.drain(..).zip(self.sequences.drain(..)) {
            if s.len() >= min_events {
                users.push(u);
                sequences.push(s);
            }
        }
        self.users = users;
        self.sequences = sequences;
        before - self.users.len()
    }
}

/// How to load a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    /// Stop at the first bad row with its error instead of skipping and counting it.
    pub strict: bool,
    /// Weight of each event kind (view, cart, purchase), copied into
    /// [`Dataset::event_weights`]. Must be finite and non-negative.
    pub event_weights: [f32; 3],
    /// Event kind of rows without one (events CSV without `event_type`, empty
    /// `event_type` fields, sequence files).
    pub default_kind: EventKind,
    /// How many example messages the report keeps per drop reason.
    pub max_examples: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            strict: false,
            event_weights: [1.0, 2.0, 4.0],
            default_kind: EventKind::Purchase,
            max_examples: 3,
        }
    }
}

/// What a load read, kept and dropped; printable (its `Display` is the CLI's summary).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestReport {
    /// What was loaded (file names).
    pub source: String,
    /// Data rows read (records after the header; lines of a sequence file).
    pub rows_read: usize,
    /// Rows that became events (sequence files: lines that contributed events).
    pub rows_kept: usize,
    /// Rows dropped, by reason.
    pub dropped: BTreeMap<String, usize>,
    /// The first few dropped rows per reason, as `file:line[:column]: message`.
    pub examples: BTreeMap<String, Vec<String>>,
    /// Further remarks (breakdowns, ignored entries).
    pub notes: Vec<String>,
    /// Users in the dataset.
    pub users: usize,
    /// Items in the catalog.
    pub items: usize,
    /// Catalog items without any event.
    pub cold_items: usize,
    /// Events in the dataset.
    pub interactions: usize,
}

impl IngestReport {
    /// Total rows dropped over all reasons.
    pub fn total_dropped(&self) -> usize {
        self.dropped.values().sum()
    }

    fn fill_summary(&mut self, ds: &Dataset) {
        self.users = ds.n_users();
        self.items = ds.n_items();
        self.cold_items = ds.cold_items().len();
        self.interactions = ds.n_interactions();
    }
}

impl fmt::Display for IngestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "ingest: {}", self.source)?;
        writeln!(f, "  rows read     {:>9}", self.rows_read)?;
        writeln!(f, "  rows kept     {:>9}", self.rows_kept)?;
        writeln!(f, "  rows dropped  {:>9}", self.total_dropped())?;
        for (reason, n) in &self.dropped {
            writeln!(f, "    {reason:<24}{n:>9}")?;
            for ex in self.examples.get(reason).into_iter().flatten() {
                writeln!(f, "      e.g. {ex}")?;
            }
        }
        for note in &self.notes {
            writeln!(f, "  note: {note}")?;
        }
        write!(
            f,
            "  dataset: {} users, {} items ({} without events), {} events",
            self.users, self.items, self.cold_items, self.interactions
        )
    }
}

/// The kind of a row-level parse problem; its [`reason`](ParseKind::reason) is the key
/// under which lenient loading counts skipped rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseKind {
    /// The record has too few or too many fields.
    WrongFieldCount,
    /// A required field is empty.
    MissingValue,
    /// A timestamp is neither Unix seconds nor an ISO 8601 date/datetime.
    BadTimestamp,
    /// A quantity is not a number.
    BadQuantity,
    /// A price is not a non-negative number.
    BadPrice,
    /// An event type is not `view`, `cart` or `purchase`.
    UnknownEventType,
    /// A quoted field is not closed before the end of the file.
    UnterminatedQuote,
    /// Characters follow a closing quote before the next comma.
    BadQuoting,
    /// The bytes of a field are not UTF-8.
    InvalidUtf8,
    /// An item id appears twice in an items file.
    DuplicateItem,
    /// A sequence-file line has a user but no item.
    MissingItem,
}

impl ParseKind {
    /// Stable snake_case name, used as the drop reason in [`IngestReport::dropped`].
    pub fn reason(self) -> &'static str {
        match self {
            ParseKind::WrongFieldCount => "wrong_field_count",
            ParseKind::MissingValue => "missing_value",
            ParseKind::BadTimestamp => "bad_timestamp",
            ParseKind::BadQuantity => "bad_quantity",
            ParseKind::BadPrice => "bad_price",
            ParseKind::UnknownEventType => "unknown_event_type",
            ParseKind::UnterminatedQuote => "unterminated_quote",
            ParseKind::BadQuoting => "bad_quoting",
            ParseKind::InvalidUtf8 => "invalid_utf8",
            ParseKind::DuplicateItem => "duplicate_item",
            ParseKind::MissingItem => "missing_item",
        }
    }
}

impl fmt::Display for ParseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// Errors loading a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be opened or read (including corrupt gzip data). The reason is
    /// the source, not repeated in the message: a report of the chain (the CLI's) reads
    /// "reading FILE: REASON" once.
    #[error("reading {file}")]
    Io {
        /// The file, as given.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A field or record could not be parsed (in lenient mode, the row is counted under
    /// `kind` instead).
    #[error("{file}:{line}:{column}: expected {expected}, found {found:?}")]
    Parse {
        /// The file, as given.
        file: String,
        /// 1-based line where the record starts.
        line: usize,
        /// 1-based field number.
        column: usize,
        /// What kind of problem.
        kind: ParseKind,
        /// What was expected, in words.
        expected: String,
        /// What was found (the raw field text).
        found: String,
    },
    /// The header lacks a required column.
    #[error("{file}:1: missing column {column:?} (header has: {header})")]
    MissingColumn {
        /// The file, as given.
        file: String,
        /// The required column.
        column: String,
        /// The header as read.
        header: String,
    },
    /// The file has no header, or no usable data rows at all.
    #[error("{file}: {what}")]
    Empty {
        /// The file, as given.
        file: String,
        /// What is missing (no header / no rows / no rows kept).
        what: String,
    },
    /// The attributes JSON is not valid JSON, not an object, or has an entry that is not
    /// a string, a number or a list of them.
    #[error("{file}{}: invalid attributes JSON: {message}", json_pos(*.line, *.column))]
    Json {
        /// The file, as given.
        file: String,
        /// 1-based line of the problem (0 when unknown).
        line: usize,
        /// 1-based column of the problem (0 when unknown).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A Parquet file cannot be read: not Parquet, truncated, corrupt, or an unsupported
    /// encoding.
    #[error("{file}: not a readable Parquet file: {message}")]
    Parquet {
        /// The file, as given.
        file: String,
        /// What the Parquet decoder reported.
        message: String,
    },
    /// A Parquet file lacks a required (or an explicitly named) column.
    #[error("{file}: missing column {column:?} (schema has: {schema})")]
    MissingParquetColumn {
        /// The file, as given.
        file: String,
        /// The column looked for.
        column: String,
        /// The file's leaf columns, comma-separated.
        schema: String,
    },
    /// A Parquet column has a type its role does not accept (see the table in
    /// `data::parquet`'s doc).
    #[error("{file}: column {column:?} has type {found}, expected {expected}")]
    ParquetColumnType {
        /// The file, as given.
        file: String,
        /// The column (dotted path).
        column: String,
        /// Its physical (and logical) type.
        found: String,
        /// What the role accepts.
        expected: String,
    },
    /// A Parquet row could not be parsed (in lenient mode, the row is counted under
    /// `kind`, like [`DataError::Parse`]).
    #[error("{file}: row group {row_group}, row {row}, column {column:?}: expected {expected}, found {found:?}")]
    ParquetRow {
        /// The file, as given.
        file: String,
        /// 0-based row group.
        row_group: usize,
        /// 0-based row within the file.
        row: u64,
        /// The column (dotted path).
        column: String,
        /// What kind of problem.
        kind: ParseKind,
        /// What was expected, in words.
        expected: String,
        /// What was found.
        found: String,
    },
    /// The load options are unusable.
    #[error("invalid load options: {0}")]
    InvalidOptions(String),
}

fn json_pos(line: usize, column: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(":{line}:{column}")
    }
}

impl DataError {
    /// The parse-problem kind, when this is a row-level [`DataError::Parse`].
    pub fn parse_kind(&self) -> Option<ParseKind> {
        match self {
            DataError::Parse { kind, .. } | DataError::ParquetRow { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Input: plain or gzip, RFC 4180 records with positions.

fn open_input(path: &Path) -> Result<Box<dyn BufRead>, DataError> {
    let file = path.display().to_string();
    let f = File::open(path).map_err(|source| DataError::Io {
        file: file.clone(),
        source,
    })?;
    let mut r = BufReader::with_capacity(1 << 16, f);
    let head = r.fill_buf().map_err(|source| DataError::Io {
        file: file.clone(),
        source,
    })?;
    if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        let dec = flate2::bufread::MultiGzDecoder::new(r);
        Ok(Box::new(BufReader::with_capacity(1 << 16, dec)))
    } else {
        Ok(Box::new(r))
    }
}

/// One CSV record: the line it starts on and its fields (unquoted, raw text).
struct Record {
    line: usize,
    fields: Vec<String>,
}

struct CsvReader {
    inner: Box<dyn BufRead>,
    file: String,
    /// Number of physical lines consumed so far.
    lines: usize,
    buf: Vec<u8>,
    first: bool,
}

impl CsvReader {
    fn open(path: &Path) -> Result<CsvReader, DataError> {
        Ok(CsvReader {
            inner: open_input(path)?,
            file: path.display().to_string(),
            lines: 0,
            buf: Vec::new(),
            first: true,
        })
    }

    fn parse_err(
        &self,
        line: usize,
        column: usize,
        kind: ParseKind,
        expected: &str,
        found: &str,
    ) -> DataError {
        parse_error(&self.file, line, column, kind, expected, found)
    }

    /// Reads one physical line (without its `\n`/`\r\n`) into `self.buf`, appending.
    /// Returns false at end of input.
    fn read_physical(&mut self) -> Result<bool, DataError> {
        let start = self.buf.len();
        let n = self
            .inner
            .read_until(b'\n', &mut self.buf)
            .map_err(|source| DataError::Io {
                file: self.file.clone(),
                source,
            })?;
        if n == 0 {
            return Ok(false);
        }
        self.lines += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') && self.buf.len() > start {
                self.buf.pop();
            }
        }
        if self.first {
            self.first = false;
            if self.buf[start..].starts_with(&[0xEF, 0xBB, 0xBF]) {
                self.buf.drain(start..start + 3);
            }
        }
        Ok(true)
    }

    /// The next record: `Ok(None)` at end of input, `Ok(Some(Err(_)))` for a record that
    /// is malformed (row-level), `Err(_)` for I/O failures.
    #[allow(clippy::type_complexity)]
    fn next_record(&mut self) -> Result<Option<Result<Record, DataError>>, DataError> {
        loop {
            self.buf.clear();
            if !self.read_physical()? {
                return Ok(None);
            }
            if self.buf.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            break;
        }
        let line = self.lines;
        let fields = match self.split_fields(line)? {
            Ok(fields) => fields,
            Err(e) => return Ok(Some(Err(e))),
        };
        let mut out = Vec::with_capacity(fields.len());
        for (i, f) in fields.into_iter().enumerate() {
            match String::from_utf8(f) {
                Ok(s) => out.push(s),
                Err(e) => {
                    let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
                    return Ok(Some(Err(self.parse_err(
                        line,
                        i + 1,
                        ParseKind::InvalidUtf8,
                        "UTF-8 text",
                        &lossy,
                    ))));
                }
            }
        }
        Ok(Some(Ok(Record { line, fields: out })))
    }

    /// Splits the record in `self.buf` (starting on `line`) into raw fields, reading
    /// further physical lines while a quoted field spans a line break. The outer error is
    /// an I/O failure, the inner one a malformed record.
    #[allow(clippy::type_complexity)]
    fn split_fields(&mut self, line: usize) -> Result<Result<Vec<Vec<u8>>, DataError>, DataError> {
        // Split into fields; a quoted field may continue on following physical lines.
        let mut fields: Vec<Vec<u8>> = Vec::new();
        let mut field: Vec<u8> = Vec::new();
        let mut pos = 0usize;
        let mut in_quotes = false;
        let mut at_field_start = true;
        let mut after_quote = false;
        loop {
            if pos >= self.buf.len() {
                if in_quotes {
                    // The quoted field spans a line break.
                    field.push(b'\n');
                    let before = self.buf.len();
                    if !self.read_physical()? {
                        let col = fields.len() + 1;
                        return Ok(Err(self.parse_err(
                            line,
                            col,
                            ParseKind::UnterminatedQuote,
                            "a closing quote '\"' before the end of the file",
                            &String::from_utf8_lossy(&field),
                        )));
                    }
                    pos = before;
                    continue;
                }
                fields.push(std::mem::take(&mut field));
                break;
            }
            let b = self.buf[pos];
            pos += 1;
            if in_quotes {
                if b == b'"' {
                    if self.buf.get(pos) == Some(&b'"') {
                        field.push(b'"');
                        pos += 1;
                    } else {
                        in_quotes = false;
                        after_quote = true;
                    }
                } else {
                    field.push(b);
                }
                continue;
            }
            if b == b',' {
                fields.push(std::mem::take(&mut field));
                at_field_start = true;
                after_quote = false;
                continue;
            }
            if after_quote {
                let col = fields.len() + 1;
                let rest_end = self.buf[pos - 1..]
                    .iter()
                    .position(|&c| c == b',')
                    .map_or(self.buf.len(), |p| pos - 1 + p);
                let found = String::from_utf8_lossy(&self.buf[pos - 1..rest_end]).into_owned();
                return Ok(Err(self.parse_err(
                    line,
                    col,
                    ParseKind::BadQuoting,
                    "',' or the end of the line after a closing quote",
                    &found,
                )));
            }
            if b == b'"' && at_field_start {
                in_quotes = true;
                at_field_start = false;
                continue;
            }
            at_field_start = false;
            field.push(b);
        }
        Ok(Ok(fields))
    }
}

fn norm_header(h: &str) -> String {
    h.trim()
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Column positions from a header; `names` are the accepted spellings per column.
struct Header {
    raw: Vec<String>,
    norm: Vec<String>,
}

impl Header {
    fn read(r: &mut CsvReader) -> Result<Header, DataError> {
        match r.next_record()? {
            None => Err(DataError::Empty {
                file: r.file.clone(),
                what: "no header row (the file is empty)".into(),
            }),
            Some(Err(e)) => Err(e),
            Some(Ok(rec)) => Ok(Header {
                norm: rec.fields.iter().map(|f| norm_header(f)).collect(),
                raw: rec.fields,
            }),
        }
    }

    fn find(&self, names: &[&str]) -> Option<usize> {
        names
            .iter()
            .find_map(|n| self.norm.iter().position(|h| h == &norm_header(n)))
    }

    fn require(&self, file: &str, names: &[&str]) -> Result<usize, DataError> {
        self.find(names).ok_or_else(|| DataError::MissingColumn {
            file: file.to_string(),
            column: names[0].to_string(),
            header: self.raw.join(","),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Report bookkeeping.

struct Tally<'a> {
    opts: &'a LoadOptions,
    report: IngestReport,
}

impl<'a> Tally<'a> {
    fn new(opts: &'a LoadOptions, source: String) -> Result<Tally<'a>, DataError> {
        if opts
            .event_weights
            .iter()
            .any(|w| !w.is_finite() || *w < 0.0)
        {
            return Err(DataError::InvalidOptions(format!(
                "event weights must be finite and non-negative, got {:?}",
                opts.event_weights
            )));
        }
        Ok(Tally {
            opts,
            report: IngestReport {
                source,
                ..IngestReport::default()
            },
        })
    }

    /// Counts a cleaning drop (never an error, even in strict mode).
    fn drop_row(&mut self, reason: &str, example: impl FnOnce() -> String) {
        *self.report.dropped.entry(reason.to_string()).or_insert(0) += 1;
        let ex = self.report.examples.entry(reason.to_string()).or_default();
        if ex.len() < self.opts.max_examples {
            ex.push(example());
        }
    }

    /// A row-level error: returned in strict mode, counted otherwise.
    fn bad_row(&mut self, err: DataError) -> Result<(), DataError> {
        if self.opts.strict {
            return Err(err);
        }
        let reason = err.parse_kind().map_or("error", ParseKind::reason);
        let msg = err.to_string();
        self.drop_row(reason, || msg);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Field parsing.

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    // Howard Hinnant's algorithm: days since 1970-01-01 in the proleptic Gregorian calendar.
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

fn fixed_digits(s: &str, n: usize) -> Option<u32> {
    if s.len() == n && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

fn civil_to_unix(y: i64, mo: u32, d: u32, h: u32, mi: u32, sec: f64) -> Option<f64> {
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) {
        return None;
    }
    if h > 23 || mi > 59 || !(0.0..61.0).contains(&sec) {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(days as f64 * 86_400.0 + (h * 3600 + mi * 60) as f64 + sec)
}

/// Parses `HH:MM[:SS[.fff]]`.
fn parse_clock(t: &str) -> Option<(u32, u32, f64)> {
    let mut parts = t.split(':');
    let h = parts.next()?;
    let m = parts.next()?;
    let s = parts.next();
    if parts.next().is_some() {
        return None;
    }
    let h = fixed_digits(h, 2).or_else(|| fixed_digits(h, 1))?;
    let m = fixed_digits(m, 2)?;
    let s = match s {
        None => 0.0,
        Some(s) => {
            let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
            let w = fixed_digits(whole, 2)? as f64;
            if frac.is_empty() {
                if s.contains('.') {
                    return None;
                }
                w
            } else {
                if !frac.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                w + format!("0.{frac}").parse::<f64>().ok()?
            }
        }
    };
    Some((h, m, s))
}

/// Parses a timestamp: Unix seconds (`1291191960`, `1291191960.5`), or ISO 8601
/// `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS[.fff]]` (`T` or a space), optionally followed by
/// `Z` or an offset `±HH[:MM]`. Times without an offset are read as UTC. Returns Unix
/// seconds, or `None` when the text is none of these.
pub fn parse_timestamp(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    // Unix seconds.
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|&b| b == b'.').count() <= 1
        && digits.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && !digits.contains('-')
    {
        return s.parse::<f64>().ok().filter(|v| v.is_finite());
    }
    // ISO 8601.
    if s.len() < 10 {
        return None;
    }
    let (date, rest) = s.split_at_checked(10)?;
    let mut dp = date.split('-');
    let y = fixed_digits(dp.next()?, 4)? as i64;
    let mo = fixed_digits(dp.next()?, 2)?;
    let d = fixed_digits(dp.next()?, 2)?;
    if dp.next().is_some() {
        return None;
    }
    if rest.is_empty() {
        return civil_to_unix(y, mo, d, 0, 0, 0.0);
    }
    let rest = rest
        .strip_prefix('T')
        .or_else(|| rest.strip_prefix(' '))
        .or_else(|| rest.strip_prefix('t'))?;
    // Zone suffix.
    let (clock, offset) = if let Some(c) = rest.strip_suffix('Z').or(rest.strip_suffix('z')) {
        (c, 0i64)
    } else if let Some(p) = rest.rfind(['+', '-']) {
        let (c, z) = rest.split_at(p);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let z = &z[1..];
        let (zh, zm) = match z.split_once(':') {
            Some((a, b)) => (fixed_digits(a, 2)?, fixed_digits(b, 2)?),
            None if z.len() == 4 => (fixed_digits(&z[..2], 2)?, fixed_digits(&z[2..], 2)?),
            None => (fixed_digits(z, 2)?, 0),
        };
        if zh > 23 || zm > 59 {
            return None;
        }
        (c, sign * (zh as i64 * 3600 + zm as i64 * 60))
    } else {
        (rest, 0)
    };
    let (h, mi, sec) = parse_clock(clock)?;
    civil_to_unix(y, mo, d, h, mi, sec).map(|t| t - offset as f64)
}

/// `M/D/YYYY H:MM[:SS]`, the form of some Online Retail copies.
fn parse_us_datetime(s: &str) -> Option<f64> {
    let (date, clock) = s.trim().split_once(' ')?;
    let mut dp = date.split('/');
    let mo: u32 = dp.next()?.parse().ok()?;
    let d: u32 = dp.next()?.parse().ok()?;
    let y = fixed_digits(dp.next()?, 4)? as i64;
    if dp.next().is_some() {
        return None;
    }
    let (h, mi, sec) = parse_clock(clock.trim())?;
    civil_to_unix(y, mo, d, h, mi, sec)
}

fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    if body.is_empty()
        || !body.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        || body.bytes().filter(|&b| b == b'.').count() > 1
        || body == "."
    {
        return None;
    }
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn median(v: &mut [f32]) -> Option<f32> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

// ---------------------------------------------------------------------------------------
// Dataset assembly.

#[derive(Default)]
struct Builder {
    items: Vec<ItemRecord>,
    item_idx: HashMap<String, u32>,
    users: Vec<String>,
    user_idx: HashMap<String, usize>,
    sequences: Vec<Vec<HistoryEvent>>,
}

impl Builder {
    /// Index of an item, adding it (title = id) when new.
    fn item(&mut self, id: &str) -> u32 {
        if let Some(&i) = self.item_idx.get(id) {
            return i;
        }
        match self.item_idx.entry(id.to_string()) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                let i = self.items.len() as u32;
                self.items.push(ItemRecord {
                    id: id.to_string(),
                    title: id.to_string(),
                    category: None,
                    price: None,
                    added: None,
                });
                e.insert(i);
                i
            }
        }
    }

    /// Index of a user, adding it when new.
    fn user(&mut self, id: &str) -> usize {
        if let Some(&u) = self.user_idx.get(id) {
            return u;
        }
        match self.user_idx.entry(id.to_string()) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                let u = self.users.len();
                self.users.push(id.to_string());
                self.sequences.push(Vec::new());
                e.insert(u);
                u
            }
        }
    }

    fn push(&mut self, user: &str, item: u32, kind: EventKind, at: f64) {
        let u = self.user(user);
        self.sequences[u].push(HistoryEvent { item, kind, at });
    }

    fn finish(mut self, weights: [f32; 3]) -> Dataset {
        for s in &mut self.sequences {
            s.sort_by(|a, b| a.at.total_cmp(&b.at)); // stable: file order on ties
        }
        Dataset {
            items: self.items,
            users: self.users,
            sequences: self.sequences,
            event_weights: weights,
        }
    }
}

fn field(rec: &Record, i: usize) -> &str {
    rec.fields.get(i).map_or("", |s| s.trim())
}

/// A row-level parse error (see [`DataError::Parse`]).
fn parse_error(
    file: &str,
    line: usize,
    column: usize,
    kind: ParseKind,
    expected: &str,
    found: &str,
) -> DataError {
    DataError::Parse {
        file: file.to_string(),
        line,
        column,
        kind,
        expected: expected.to_string(),
        found: found.to_string(),
    }
}

fn check_width(
    r: &CsvReader,
    rec: &Record,
    needed: usize,
    width: usize,
    header: &Header,
) -> Result<(), DataError> {
    if rec.fields.len() < needed || rec.fields.len() > width {
        let column = if rec.fields.len() < needed {
            rec.fields.len() + 1
        } else {
            width + 1
        };
        return Err(r.parse_err(
            rec.line,
            column,
            ParseKind::WrongFieldCount,
            &format!("{} fields ({})", width, header.raw.join(",")),
            &format!("{} fields", rec.fields.len()),
        ));
    }
    Ok(())
}

/// A well-formed data row of a CSV file, as [`for_each_row`] hands it out.
struct Row<'r> {
    file: &'r str,
    rec: &'r Record,
}

impl<'r> Row<'r> {
    /// 1-based line where the record starts.
    fn line(&self) -> usize {
        self.rec.line
    }

    /// The trimmed text of 0-based column `c` (empty when the row is shorter).
    fn field(&self, c: usize) -> &'r str {
        field(self.rec, c)
    }

    /// A parse error about 0-based column `c` of this row.
    fn err(&self, c: usize, kind: ParseKind, expected: &str, found: &str) -> DataError {
        parse_error(self.file, self.rec.line, c + 1, kind, expected, found)
    }
}

/// The per-row prelude of every CSV loader: reads the records after the header, counts
/// each as read, turns a malformed record or one with fewer than `needed` or more fields
/// than the header into a row-level error (counted, or returned in strict mode), and
/// hands every other row to `each`. Returns the number of data rows read.
fn for_each_row<'o>(
    r: &mut CsvReader,
    header: &Header,
    needed: usize,
    tally: &mut Tally<'o>,
    mut each: impl FnMut(Row<'_>, &mut Tally<'o>) -> Result<(), DataError>,
) -> Result<usize, DataError> {
    let width = header.raw.len();
    let mut rows = 0usize;
    while let Some(rec) = r.next_record()? {
        tally.report.rows_read += 1;
        rows += 1;
        let checked = rec.and_then(|rec| check_width(r, &rec, needed, width, header).map(|()| rec));
        match checked {
            Ok(rec) => each(
                Row {
                    file: &r.file,
                    rec: &rec,
                },
                tally,
            )?,
            Err(e) => tally.bad_row(e)?,
        }
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------------------
// Online Retail.

/// True for an Online Retail product code: five ASCII digits, then optional ASCII
/// letters (`85123A`, `71053`, `15056BL`). See the module doc for the codes this excludes.
pub fn is_product_code(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() >= 5
        && b[..5].iter().all(u8::is_ascii_digit)
        && b[5..].iter().all(u8::is_ascii_alphabetic)
}

#[derive(Default)]
struct ItemAgg {
    descs: HashMap<String, (usize, usize)>, // description -> (count, first order)
    prices: Vec<f32>,
    first: f64,
}

/// Column indices (0-based) of an Online Retail file.
struct RetailCols {
    inv: usize,
    code: usize,
    desc: usize,
    qty: usize,
    date: usize,
    price: usize,
    cust: usize,
}

impl RetailCols {
    fn find(header: &Header, file: &str) -> Result<RetailCols, DataError> {
        Ok(RetailCols {
            inv: header.require(file, &["InvoiceNo"])?,
            code: header.require(file, &["StockCode"])?,
            desc: header.require(file, &["Description"])?,
            qty: header.require(file, &["Quantity"])?,
            date: header.require(file, &["InvoiceDate"])?,
            price: header.require(file, &["UnitPrice", "Price"])?,
            cust: header.require(file, &["CustomerID", "Customer ID"])?,
        })
    }

    /// Fields a row needs.
    fn needed(&self) -> usize {
        let c = [
            self.inv, self.code, self.desc, self.qty, self.date, self.price, self.cust,
        ];
        c.into_iter().max().unwrap_or(0) + 1
    }
}

/// An Online Retail row that passed cleaning rules 1–5.
struct RetailLine<'r> {
    line: usize,
    inv: &'r str,
    code: String,
    desc: &'r str,
    cust: &'r str,
    price: f64,
    at: f64,
}

/// The dataset being built from Online Retail rows, with the per-item aggregates.
#[derive(Default)]
struct RetailBuilder {
    b: Builder,
    aggs: Vec<ItemAgg>,
    /// (invoice, item) pairs seen (rule 6).
    seen: HashSet<(String, u32)>,
    /// Dropped non-product codes and their counts (for the report's note).
    non_product: BTreeMap<String, usize>,
}

/// Loads UCI Online Retail (`.csv` or `.csv.gz`) with the cleaning rules in the module
/// doc. Every kept row is a `purchase`.
pub fn load_online_retail(
    path: &Path,
    opts: &LoadOptions,
) -> Result<(Dataset, IngestReport), DataError> {
    let mut r = CsvReader::open(path)?;
    let file = r.file.clone();
    let mut tally = Tally::new(opts, format!("Online Retail ({file})"))?;
    let header = Header::read(&mut r)?;
    let cols = RetailCols::find(&header, &file)?;
    let mut rb = RetailBuilder::default();
    for_each_row(&mut r, &header, cols.needed(), &mut tally, |row, tally| {
        if let Some(line) = clean_retail_row(&row, &cols, &mut rb.non_product, tally)? {
            rb.add(line, row.file, tally);
        }
        Ok(())
    })?;
    let b = rb.finish(&mut tally.report);
    finish(b, tally, &file)
}

/// A numeric column that must be positive (rules 2 and 4 of the module doc).
struct Positive {
    col: usize,
    kind: ParseKind,
    expected: &'static str,
    name: &'static str,
    drop_reason: &'static str,
}

/// The value of `f` in `row` when it parses and is positive; `None` when the
/// row is malformed (counted, or the error in strict mode) or the value is ≤ 0 (dropped
/// under `f.drop_reason`).
fn positive_field<'r>(
    row: &Row<'r>,
    f: &Positive,
    tally: &mut Tally<'_>,
) -> Result<Option<f64>, DataError> {
    let text = row.field(f.col);
    let Some(v) = parse_number(text) else {
        let e = row.err(f.col, f.kind, f.expected, text);
        return tally.bad_row(e).map(|()| None);
    };
    if v <= 0.0 {
        let (file, line) = (row.file, row.line());
        tally.drop_row(f.drop_reason, || {
            format!("{file}:{line}: {} {text}", f.name)
        });
        return Ok(None);
    }
    Ok(Some(v))
}

/// Applies cleaning rules 1–5 of the module doc to a row, in order. `None` when the row
/// is dropped (counted under its reason) or malformed (counted, or the error in strict
/// mode).
fn clean_retail_row<'r>(
    row: &Row<'r>,
    c: &RetailCols,
    non_product: &mut BTreeMap<String, usize>,
    tally: &mut Tally<'_>,
) -> Result<Option<RetailLine<'r>>, DataError> {
    let (file, line) = (row.file, row.line());
    let inv = row.field(c.inv);
    if inv.starts_with(['C', 'c']) {
        tally.drop_row("cancellation", || format!("{file}:{line}: InvoiceNo {inv}"));
        return Ok(None);
    }
    let qty_field = Positive {
        col: c.qty,
        kind: ParseKind::BadQuantity,
        expected: "an integer Quantity",
        name: "Quantity",
        drop_reason: "non_positive_quantity",
    };
    if positive_field(row, &qty_field, tally)?.is_none() {
        return Ok(None);
    }
    let cust = row.field(c.cust);
    let cust = cust.strip_suffix(".0").unwrap_or(cust);
    if cust.is_empty() {
        tally.drop_row("missing_customer", || {
            format!("{file}:{line}: empty CustomerID")
        });
        return Ok(None);
    }
    let code = row.field(c.code).to_ascii_uppercase();
    if !is_product_code(&code) {
        *non_product.entry(code.clone()).or_insert(0) += 1;
        tally.drop_row("non_product_code", || {
            format!("{file}:{line}: StockCode {code:?}")
        });
        return Ok(None);
    }
    let price_field = Positive {
        col: c.price,
        kind: ParseKind::BadPrice,
        expected: "a UnitPrice in pounds",
        name: "UnitPrice",
        drop_reason: "non_positive_price",
    };
    let Some(price) = positive_field(row, &price_field, tally)? else {
        return Ok(None);
    };
    let date_s = row.field(c.date);
    let Some(at) = parse_timestamp(date_s).or_else(|| parse_us_datetime(date_s)) else {
        let expected = "an InvoiceDate like 2010-12-01T08:26:00";
        let e = row.err(c.date, ParseKind::BadTimestamp, expected, date_s);
        return tally.bad_row(e).map(|()| None);
    };
    let desc = row.field(c.desc);
    Ok(Some(RetailLine {
        line,
        inv,
        code,
        desc,
        cust,
        price,
        at,
    }))
}

impl RetailBuilder {
    /// Applies rule 6 (a stock code once per invoice) and adds a kept row: its purchase
    /// event and its item's price, description and first sale.
    fn add(&mut self, l: RetailLine<'_>, file: &str, tally: &mut Tally<'_>) {
        let item = self.b.item(&l.code);
        if !self.seen.insert((l.inv.to_string(), item)) {
            let (line, code, inv) = (l.line, &l.code, l.inv);
            tally.drop_row("duplicate_in_invoice", || {
                format!("{file}:{line}: StockCode {code} again in invoice {inv}")
            });
            return;
        }
        if item as usize == self.aggs.len() {
            self.aggs.push(ItemAgg {
                first: l.at,
                ..ItemAgg::default()
            });
        }
        let agg = &mut self.aggs[item as usize];
        agg.first = agg.first.min(l.at);
        agg.prices.push(l.price as f32);
        if !l.desc.is_empty() {
            let n = agg.descs.len();
            agg.descs.entry(l.desc.to_string()).or_insert((0, n)).0 += 1;
        }
        self.b.push(l.cust, item, EventKind::Purchase, l.at);
        tally.report.rows_kept += 1;
    }

    /// Sets every item's title, price and `added` time from its aggregates and notes the
    /// dropped non-product codes in the report.
    fn finish(mut self, report: &mut IngestReport) -> Builder {
        for (it, agg) in self.b.items.iter_mut().zip(self.aggs.iter_mut()) {
            if let Some((title, _)) = agg
                .descs
                .iter()
                .max_by(|a, b| a.1 .0.cmp(&b.1 .0).then(b.1 .1.cmp(&a.1 .1)))
            {
                it.title = title.clone();
            }
            it.price = median(&mut agg.prices);
            it.added = Some(agg.first);
        }
        if !self.non_product.is_empty() {
            let mut v: Vec<_> = self.non_product.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let list: Vec<String> = v.iter().take(12).map(|(c, n)| format!("{c} {n}")).collect();
            report.notes.push(format!(
                "non-product codes dropped ({} distinct): {}{}",
                v.len(),
                list.join(", "),
                if v.len() > 12 { ", ..." } else { "" }
            ));
        }
        self.b
    }
}

fn finish(b: Builder, tally: Tally<'_>, file: &str) -> Result<(Dataset, IngestReport), DataError> {
    let weights = tally.opts.event_weights;
    let mut report = tally.report;
    if report.rows_kept == 0 && b.items.is_empty() {
        return Err(DataError::Empty {
            file: file.to_string(),
            what: format!(
                "no usable rows ({} read, {} dropped)",
                report.rows_read,
                report.total_dropped()
            ),
        });
    }
    let ds = b.finish(weights);
    report.fill_summary(&ds);
    Ok((ds, report))
}

// ---------------------------------------------------------------------------------------
// Generic events + items CSV.

/// Loads a generic events CSV (`user_id,item_id,timestamp[,event_type][,quantity]`,
/// header required) and, optionally, an items CSV (`item_id,title[,category][,price]`).
///
/// Timestamps are Unix seconds or ISO 8601 dates/datetimes ([`parse_timestamp`]); event
/// types are `view`, `cart`, `purchase` (case-insensitive; empty or absent =
/// [`LoadOptions::default_kind`]); a quantity, when present and non-empty, must be a
/// number and rows with quantity ≤ 0 are dropped as `non_positive_quantity`. Items file
/// rows come first in the catalog, in file order; items only in the events get title =
/// id; items only in the items file stay in the catalog as cold items. A duplicate item
/// id in the items file is a `duplicate_item` row (the first one is kept); a price must be
/// a non-negative number. An item's `added` time is its first event.
pub fn load_events_csv(
    events: &Path,
    items: Option<&Path>,
    opts: &LoadOptions,
) -> Result<(Dataset, IngestReport), DataError> {
    let source = match items {
        Some(i) => format!("events {} + items {}", events.display(), i.display()),
        None => format!("events {}", events.display()),
    };
    let mut tally = Tally::new(opts, source)?;
    let mut b = Builder::default();
    let mut items_rows = 0usize;
    if let Some(ipath) = items {
        items_rows = read_items_csv(ipath, &mut b, &mut tally)?;
    }

    let mut r = CsvReader::open(events)?;
    let file = r.file.clone();
    let header = Header::read(&mut r)?;
    let c_user = header.require(&file, &["user_id", "user"])?;
    let c_item = header.require(&file, &["item_id", "item"])?;
    let c_ts = header.require(&file, &["timestamp", "time"])?;
    let c_kind = header.find(&["event_type", "event"]);
    let c_qty = header.find(&["quantity", "qty"]);
    let needed = c_user.max(c_item).max(c_ts) + 1;
    let event_rows = for_each_row(&mut r, &header, needed, &mut tally, |row, tally| {
        let raw = RawEvent {
            user: row.field(c_user),
            item: row.field(c_item),
            at: TimeCell::Text(row.field(c_ts)),
            kind: c_kind.map_or("", |c| row.field(c)),
            quantity: c_qty.map_or(QtyCell::Absent, |c| QtyCell::Text(row.field(c))),
        };
        let cols = [Some(c_user), Some(c_item), Some(c_ts), c_kind, c_qty];
        let at = CsvAt {
            row: &row,
            cols: &cols,
        };
        push_event(&mut b, tally, opts.default_kind, &raw, &at)
    })?;
    if event_rows == 0 && items_rows == 0 {
        return Err(DataError::Empty {
            file: file.clone(),
            what: "no data rows".into(),
        });
    }
    finish(b, tally, &file)
}

/// The fields of an event row ([`load_events_csv`], the Parquet reader), in this order in
/// [`EventAt::err`]'s `field` argument.
#[derive(Clone, Copy)]
enum EventField {
    User = 0,
    Item = 1,
    Time = 2,
    Kind = 3,
    Quantity = 4,
}

/// An event row's timestamp as read: text (parsed by [`parse_timestamp`]) or a value
/// already in Unix seconds (typed Parquet columns).
enum TimeCell<'a> {
    Text(&'a str),
    Seconds(f64),
}

/// An event row's quantity (an item row's price) as read.
enum QtyCell<'a> {
    /// No such column, or an empty field / null.
    Absent,
    /// Text, parsed as a number.
    Text(&'a str),
    /// A typed number.
    Number(f64),
}

/// One event row's raw values (trimmed text; empty = missing), from any input.
struct RawEvent<'a> {
    user: &'a str,
    item: &'a str,
    at: TimeCell<'a>,
    kind: &'a str,
    quantity: QtyCell<'a>,
}

/// Where an event or item row is, for its errors and drop examples.
trait EventAt {
    /// A row-level parse error about `field` (an [`EventField`] or [`ItemField`]) of this row.
    fn err(&self, field: usize, kind: ParseKind, expected: &str, found: &str) -> DataError;
    /// The row's position as `file:line` (CSV) or `file: row group g, row r` (Parquet).
    fn place(&self) -> String;
}

/// [`EventAt`] of a CSV row: `cols` maps [`EventField`] to 0-based columns.
struct CsvAt<'a, 'r> {
    row: &'a Row<'r>,
    cols: &'a [Option<usize>],
}

impl EventAt for CsvAt<'_, '_> {
    fn err(&self, field: usize, kind: ParseKind, expected: &str, found: &str) -> DataError {
        let c = self.cols.get(field).copied().flatten().unwrap_or(0);
        self.row.err(c, kind, expected, found)
    }

    fn place(&self) -> String {
        format!("{}:{}", self.row.file, self.row.line())
    }
}

/// The cleaning of one event row, shared by every events input (CSV and Parquet give the
/// same dataset and report for the same events): a missing user or item id is a
/// `missing_value` row, a timestamp that does not parse a `bad_timestamp` row, an event
/// type other than view/cart/purchase an `unknown_event_type` row (empty =
/// `default_kind`), a quantity that is not a number a `bad_quantity` row (row-level
/// errors: counted, or returned in strict mode); a quantity ≤ 0 drops the row as
/// `non_positive_quantity`. A kept row becomes an event and sets its item's `added` time
/// to its earliest event.
fn push_event(
    b: &mut Builder,
    tally: &mut Tally<'_>,
    default_kind: EventKind,
    raw: &RawEvent<'_>,
    at: &impl EventAt,
) -> Result<(), DataError> {
    if raw.user.is_empty() || raw.item.is_empty() {
        let (field, what) = if raw.user.is_empty() {
            (EventField::User, "a user_id")
        } else {
            (EventField::Item, "an item_id")
        };
        return tally.bad_row(at.err(field as usize, ParseKind::MissingValue, what, ""));
    }
    let time = match raw.at {
        TimeCell::Seconds(t) if t.is_finite() => Some(t),
        TimeCell::Seconds(_) => None,
        TimeCell::Text(ts) => parse_timestamp(ts),
    };
    let Some(time) = time else {
        let found = match raw.at {
            TimeCell::Text(ts) => ts.to_string(),
            TimeCell::Seconds(t) => t.to_string(),
        };
        let expected = "a Unix timestamp or ISO 8601 date";
        return tally.bad_row(at.err(
            EventField::Time as usize,
            ParseKind::BadTimestamp,
            expected,
            &found,
        ));
    };
    let kind = if raw.kind.is_empty() {
        default_kind
    } else if let Some(kind) = EventKind::parse(raw.kind) {
        kind
    } else {
        let expected = "an event type view, cart or purchase";
        let e = at.err(
            EventField::Kind as usize,
            ParseKind::UnknownEventType,
            expected,
            raw.kind,
        );
        return tally.bad_row(e);
    };
    let qty = match raw.quantity {
        QtyCell::Absent | QtyCell::Text("") => None,
        QtyCell::Number(v) => Some((v, None)),
        QtyCell::Text(q) => match parse_number(q) {
            Some(v) => Some((v, Some(q))),
            None => {
                let e = at.err(
                    EventField::Quantity as usize,
                    ParseKind::BadQuantity,
                    "a quantity (a number)",
                    q,
                );
                return tally.bad_row(e);
            }
        },
    };
    if let Some((v, text)) = qty {
        if v.is_nan() || v <= 0.0 {
            let place = at.place();
            tally.drop_row("non_positive_quantity", || match text {
                Some(q) => format!("{place}: quantity {q}"),
                None => format!("{place}: quantity {v}"),
            });
            return Ok(());
        }
    }
    let idx = b.item(raw.item);
    let rec_item = &mut b.items[idx as usize];
    rec_item.added = Some(rec_item.added.map_or(time, |a| a.min(time)));
    b.push(raw.user, idx, kind, time);
    tally.report.rows_kept += 1;
    Ok(())
}

fn read_items_csv(path: &Path, b: &mut Builder, tally: &mut Tally<'_>) -> Result<usize, DataError> {
    let mut r = CsvReader::open(path)?;
    let file = r.file.clone();
    let header = Header::read(&mut r)?;
    let c_item = header.require(&file, &["item_id", "item"])?;
    let c_title = header.require(&file, &["title", "name"])?;
    let c_cat = header.find(&["category"]);
    let c_price = header.find(&["price"]);
    let needed = c_item.max(c_title) + 1;
    let mut first: HashMap<String, String> = HashMap::new();
    for_each_row(&mut r, &header, needed, tally, |row, tally| {
        let raw = RawItem {
            id: row.field(c_item),
            title: row.field(c_title),
            category: c_cat.map_or("", |c| row.field(c)),
            price: c_price.map_or(QtyCell::Absent, |c| QtyCell::Text(row.field(c))),
        };
        let cols = [Some(c_item), Some(c_title), c_cat, c_price];
        let at = CsvAt {
            row: &row,
            cols: &cols,
        };
        push_item(b, tally, &raw, &at, &mut first, || {
            format!("line {}", row.line())
        })
    })
}

/// The fields of an items row, in this order in [`EventAt::err`]'s `field` argument.
#[derive(Clone, Copy)]
enum ItemField {
    Id = 0,
    Price = 3,
}

/// One items row's raw values (trimmed text; empty = missing).
struct RawItem<'a> {
    id: &'a str,
    title: &'a str,
    category: &'a str,
    price: QtyCell<'a>,
}

/// The cleaning of one items row, shared by the items CSV and Parquet: an empty id is a
/// `missing_value` row, an id seen before a `duplicate_item` row (`first` maps ids to
/// where they were first seen, `here` names this row's place), a price that is not a
/// non-negative number a `bad_price` row; otherwise the item gets its title (when not
/// empty), category and price.
fn push_item(
    b: &mut Builder,
    tally: &mut Tally<'_>,
    raw: &RawItem<'_>,
    at: &impl EventAt,
    first: &mut HashMap<String, String>,
    here: impl FnOnce() -> String,
) -> Result<(), DataError> {
    let id = raw.id;
    if id.is_empty() {
        let e = at.err(
            ItemField::Id as usize,
            ParseKind::MissingValue,
            "an item_id",
            "",
        );
        return tally.bad_row(e);
    }
    if let Some(f) = first.get(id) {
        let expected = format!("a unique item_id (first on {f})");
        let e = at.err(
            ItemField::Id as usize,
            ParseKind::DuplicateItem,
            &expected,
            id,
        );
        return tally.bad_row(e);
    }
    let price = match raw.price {
        QtyCell::Absent | QtyCell::Text("") => None,
        QtyCell::Number(v) if v >= 0.0 => Some(v as f32),
        QtyCell::Text(p) if parse_number(p).is_some_and(|v| v >= 0.0) => {
            parse_number(p).map(|v| v as f32)
        }
        QtyCell::Number(v) => {
            let e = at.err(
                ItemField::Price as usize,
                ParseKind::BadPrice,
                "a non-negative price",
                &v.to_string(),
            );
            return tally.bad_row(e);
        }
        QtyCell::Text(p) => {
            let e = at.err(
                ItemField::Price as usize,
                ParseKind::BadPrice,
                "a non-negative price",
                p,
            );
            return tally.bad_row(e);
        }
    };
    first.insert(id.to_string(), here());
    let idx = b.item(id);
    let it = &mut b.items[idx as usize];
    if !raw.title.is_empty() {
        it.title = raw.title.to_string();
    }
    it.category = (!raw.category.is_empty()).then(|| raw.category.to_string());
    it.price = price;
    tally.report.rows_kept += 1;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Sequence files.

/// Loads a sequential-benchmark file: each line is `user item [item ...]`, whitespace
/// separated; lines of one user append to that user's sequence in file order, so both
/// the `user item item ...` (one line per user) and the `user item` (one interaction per
/// line, in time order) variants read the same way. Timestamps are synthesised as the
/// position in the user's sequence (0, 1, 2, ...); the event kind is
/// [`LoadOptions::default_kind`]. Titles are the item ids.
///
/// `item_attrs_json`, when given, is an object `{"item": ["attr", ...]}` or
/// `{"item": "attr"}` (attributes may be strings or numbers, as in S3-Rec's
/// `*_item2attributes.json`); an item's category becomes its first attribute, and every
/// attribute is appended to its title (a number `7` as the word `attr7`, so attribute ids
/// and numeric item ids never share a title token): the title tokens are the model's
/// content features, so the item encoder sees all of them (chosen on validation on Amazon
/// Toys; README, "Public benchmarks"). Entries for items not in the sequence file are ignored (noted in the report),
/// so the catalog is exactly the benchmark's item set.
pub fn load_sequence_file(
    path: &Path,
    item_attrs_json: Option<&Path>,
    opts: &LoadOptions,
) -> Result<(Dataset, IngestReport), DataError> {
    let file = path.display().to_string();
    let mut tally = Tally::new(opts, format!("sequences {file}"))?;
    let mut input = open_input(path)?;
    let mut b = Builder::default();
    let mut line_no = 0usize;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = input
            .read_until(b'\n', &mut buf)
            .map_err(|source| DataError::Io {
                file: file.clone(),
                source,
            })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t,
            Err(_) => {
                tally.report.rows_read += 1;
                let found = String::from_utf8_lossy(&buf);
                let kind = ParseKind::InvalidUtf8;
                tally.bad_row(parse_error(
                    &file,
                    line_no,
                    1,
                    kind,
                    "UTF-8 text",
                    found.trim_end(),
                ))?;
                continue;
            }
        };
        let text = if line_no == 1 {
            text.strip_prefix('\u{feff}').unwrap_or(text)
        } else {
            text
        };
        let mut toks = text.split_whitespace();
        let Some(user) = toks.next() else { continue };
        tally.report.rows_read += 1;
        let items: Vec<&str> = toks.collect();
        if items.is_empty() {
            let expected = "at least one item id after the user id";
            let kind = ParseKind::MissingItem;
            tally.bad_row(parse_error(&file, line_no, 2, kind, expected, text.trim()))?;
            continue;
        }
        let u = b.user(user);
        for it in items {
            let idx = b.item(it);
            let at = b.sequences[u].len() as f64;
            b.sequences[u].push(HistoryEvent {
                item: idx,
                kind: opts.default_kind,
                at,
            });
        }
        tally.report.rows_kept += 1;
    }
    if tally.report.rows_read == 0 {
        return Err(DataError::Empty {
            file,
            what: "no data lines".into(),
        });
    }
    if let Some(jpath) = item_attrs_json {
        apply_attributes(jpath, &mut b, &mut tally.report)?;
    }
    finish(b, tally, &file)
}

fn apply_attributes(
    path: &Path,
    b: &mut Builder,
    report: &mut IngestReport,
) -> Result<(), DataError> {
    let file = path.display().to_string();
    let mut text = String::new();
    open_input(path)?
        .read_to_string(&mut text)
        .map_err(|source| DataError::Io {
            file: file.clone(),
            source,
        })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| DataError::Json {
        file: file.clone(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let serde_json::Value::Object(map) = value else {
        return Err(DataError::Json {
            file,
            line: 1,
            column: 1,
            message: "expected an object mapping item ids to attributes".into(),
        });
    };
    let mut unknown = 0usize;
    for (item, v) in map {
        let values = match &v {
            serde_json::Value::Array(a) => a.as_slice(),
            other => std::slice::from_ref(other),
        };
        let words: Option<Vec<String>> = values.iter().map(attribute_word).collect();
        let Some(words) = words else {
            return Err(DataError::Json {
                file,
                line: 0,
                column: 0,
                message: format!(
                    "item {item:?}: expected a string, a number or a list of them, found {v}"
                ),
            });
        };
        match b.item_idx.get(&item) {
            Some(&i) => {
                let rec = &mut b.items[i as usize];
                rec.category = values.first().and_then(scalar_text);
                for a in words {
                    rec.title.push(' ');
                    rec.title.push_str(&a);
                }
            }
            None => unknown += 1,
        }
    }
    if unknown > 0 {
        report.notes.push(format!(
            "{file}: {unknown} attribute entries for items not in the sequence file were ignored"
        ));
    }
    Ok(())
}

fn scalar_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Prefix of a numeric attribute's title word (`7` → `attr7`), so that attribute ids do
/// not share title tokens with numeric item ids.
const ATTR_PREFIX: &str = "attr";

/// An attribute as title text: a string as it is, a number prefixed with [`ATTR_PREFIX`].
fn attribute_word(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(format!("{ATTR_PREFIX}{n}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows handed out as (line, first field), the rows read and the report.
    type Rows = (Vec<(usize, String)>, usize, IngestReport);

    /// Runs [`for_each_row`] over `csv` (header `a,b,c`, rows need 2 fields) and returns
    /// the handed-out rows as (line, first field), the rows read and the report.
    fn rows_of(csv: &str, strict: bool) -> Result<Rows, DataError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.csv");
        std::fs::write(&path, csv).unwrap();
        let opts = LoadOptions {
            strict,
            ..LoadOptions::default()
        };
        let mut tally = Tally::new(&opts, "test".into())?;
        let mut r = CsvReader::open(&path)?;
        let header = Header::read(&mut r)?;
        let mut seen = Vec::new();
        let n = for_each_row(&mut r, &header, 2, &mut tally, |row, tally| {
            if row.field(1) == "bad" {
                return tally.bad_row(row.err(1, ParseKind::BadPrice, "a price", "bad"));
            }
            seen.push((row.line(), row.field(0).to_string()));
            Ok(())
        })?;
        Ok((seen, n, tally.report))
    }

    #[test]
    fn the_row_prelude_counts_malformed_rows_with_their_position() {
        let csv = "a,b,c\nx,1,2\ny\n\"z\"q,1,2\nw,bad,2\nv,1,2,3\nu,2\n";
        let (seen, n, report) = rows_of(csv, false).unwrap();
        assert_eq!(seen, [(2, "x".to_string()), (7, "u".to_string())]);
        assert_eq!((n, report.rows_read), (6, 6));
        assert_eq!(report.dropped["wrong_field_count"], 2);
        assert_eq!(report.dropped["bad_quoting"], 1);
        assert_eq!(report.dropped["bad_price"], 1);
        let ex = &report.examples;
        assert!(
            ex["wrong_field_count"][0].contains("rows.csv:3:2:"),
            "{ex:?}"
        );
        assert!(
            ex["wrong_field_count"][1].contains("rows.csv:6:4:"),
            "{ex:?}"
        );
        assert!(ex["bad_quoting"][0].contains("rows.csv:4:1:"), "{ex:?}");
        assert!(ex["bad_price"][0].contains("rows.csv:5:2:"), "{ex:?}");
    }

    #[test]
    fn strict_mode_returns_the_first_bad_row_with_file_line_and_column() {
        let err = rows_of("a,b,c\nx,1,2\n\ny,bad,2\nz\n", true).unwrap_err();
        match err {
            DataError::Parse {
                file,
                line,
                column,
                kind,
                ..
            } => {
                assert!(file.ends_with("rows.csv"), "{file}");
                assert_eq!((line, column, kind), (4, 2, ParseKind::BadPrice));
            }
            other => panic!("expected a parse error, got {other}"),
        }
        let err = rows_of("a,b,c\nx\n", true).unwrap_err();
        assert_eq!(err.parse_kind(), Some(ParseKind::WrongFieldCount));
        assert!(err.to_string().contains("rows.csv:2:2:"), "{err}");
    }
}
