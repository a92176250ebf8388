//! Parquet event logs (native only): [`load_events_parquet`] reads a file or a directory of
//! Parquet files (Spark, DuckDB, pandas output) with the same cleaning, report and row-level
//! errors as [`super::load_events_csv`], and [`write_synthetic_log`] writes a generated log
//! for the ingest benchmark (`vitrine synth-log`).
//!
//! # Reading
//! Only the event columns are read (projection: other columns are never decoded), one row
//! group at a time, in batches of [`BATCH`] rows per column: memory beyond the dataset is
//! one batch per column plus the decoder's current page, whatever the file size. Columns
//! (leaf names, or dotted paths, matched like CSV headers: case-insensitive, ignoring `_`,
//! `-` and spaces) default to the CSV names and can be renamed ([`ParquetColumns`]).
//!
//! | column | physical types accepted | read as |
//! |---|---|---|
//! | user, item | `BYTE_ARRAY` (UTF-8), `INT32`, `INT64` | text (integers in decimal) |
//! | timestamp | `INT64`/`INT32` | `TIMESTAMP(unit)`: value × 10⁻³/10⁻⁶/10⁻⁹ s; `DATE`: days × 86400 s; otherwise Unix seconds |
//! | | `INT96` (legacy Spark) | nanoseconds since the epoch × 10⁻⁹ s |
//! | | `DOUBLE`/`FLOAT` | Unix seconds |
//! | | `BYTE_ARRAY` | text, parsed by [`super::parse_timestamp`] |
//! | event type | `BYTE_ARRAY` | text |
//! | quantity | `INT32`, `INT64`, `FLOAT`, `DOUBLE` | number |
//!
//! Text is trimmed; a null is an empty field (same outcome as the CSV path: a null id is a
//! `missing_value` row, a null timestamp a `bad_timestamp` row, a null event type the
//! default kind, a null quantity no quantity). A column of another type, or a repeated
//! (list) column, is a [`DataError::ParquetColumnType`] naming the file, the column and
//! its type. Row-level problems are [`DataError::ParquetRow`] with the file, the row group
//! and the row (both 0-based, the row counted within the file). A file that is not
//! Parquet, truncated or corrupt is a [`DataError::Parquet`], never a panic (the decoder's
//! own asserts, which some corrupt pages trip, are caught and reported as that error; the
//! panic message still goes to stderr through the panic hook).
//!
//! A directory is read as its `*.parquet` files in name order (Spark's `_SUCCESS` and
//! `.crc` files are skipped); row order across files is name order, then file order.
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::parquet::basic::{ConvertedType, LogicalType, TimeUnit, Type as PhysicalType};
use ::parquet::column::reader::ColumnReader;
use ::parquet::column::writer::ColumnWriter;
use ::parquet::data_type::{ByteArray, Int96};
use ::parquet::errors::ParquetError;
use ::parquet::file::properties::WriterProperties;
use ::parquet::file::reader::FileReader;
use ::parquet::file::serialized_reader::SerializedFileReader;
use ::parquet::file::writer::SerializedFileWriter;
use ::parquet::schema::parser::parse_message_type;
use ::parquet::schema::types::ColumnDescriptor;

use std::collections::HashMap;

use super::{
    finish, norm_header, push_event, push_item, read_items_csv, Builder, DataError, Dataset,
    EventAt, EventField, IngestReport, LoadOptions, ParseKind, QtyCell, RawEvent, RawItem, Tally,
    TimeCell,
};
use crate::rng::SplitMix64;

/// Rows decoded per column at a time.
pub const BATCH: usize = 4096;

/// Column names of a Parquet events file; `None` = the CSV names (`user_id`/`user`,
/// `item_id`/`item`, `timestamp`/`time`, `event_type`/`event`, `quantity`/`qty`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParquetColumns {
    /// The user id column.
    pub user: Option<String>,
    /// The item id column.
    pub item: Option<String>,
    /// The timestamp column.
    pub timestamp: Option<String>,
    /// The event type column (optional: absent = [`LoadOptions::default_kind`]).
    pub event_type: Option<String>,
    /// The quantity column (optional).
    pub quantity: Option<String>,
}

fn pq_err(file: &str, e: ParquetError) -> DataError {
    DataError::Parquet {
        file: file.to_string(),
        message: e.to_string(),
    }
}

/// The Parquet files of `path`: the file itself, or a directory's `*.parquet` files in
/// name order.
pub fn parquet_files(path: &Path) -> Result<Vec<PathBuf>, DataError> {
    let file = path.display().to_string();
    let io = |source| DataError::Io {
        file: file.clone(),
        source,
    };
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        let p = entry.map_err(io)?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_file()
            && !name.starts_with(['.', '_'])
            && p.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
        {
            out.push(p);
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(DataError::Empty {
            file,
            what: "no *.parquet files in the directory".into(),
        });
    }
    Ok(out)
}

/// How a column's values become an event field.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Decode {
    /// Text (UTF-8 bytes).
    Text,
    /// An integer read as text (ids).
    IntText,
    /// An integer times a scale in seconds (timestamps).
    IntSeconds(f64),
    /// INT96 nanoseconds.
    Int96,
    /// A float (seconds, or a quantity).
    Float,
    /// An integer (a quantity).
    Int,
}

/// One projected column: where it is and how it decodes.
struct Col {
    index: usize,
    name: String,
    decode: Decode,
}

fn type_name(d: &ColumnDescriptor) -> String {
    let mut s = format!("{}", d.physical_type());
    if let Some(l) = d.logical_type_ref() {
        s.push_str(&format!(" ({l:?})"));
    } else if d.converted_type() != ConvertedType::NONE {
        s.push_str(&format!(" ({})", d.converted_type()));
    }
    s
}

/// What a column's role accepts.
#[derive(Clone, Copy)]
enum Accepts {
    /// Ids: text or integers.
    Id,
    /// Timestamps.
    Time,
    /// Text only (event types, titles, categories).
    Text,
    /// Numbers (quantities, prices).
    Number,
}

/// One column role of a projection: the field index it fills, what it accepts, its name
/// (given, or the defaults) and whether it must exist.
struct Role<'a> {
    field: usize,
    accepts: Accepts,
    given: &'a Option<String>,
    defaults: &'a [&'a str],
    required: bool,
}

/// Checks a column's type for its role and picks its decoding.
fn decode_for(file: &str, d: &ColumnDescriptor, accepts: Accepts) -> Result<Decode, DataError> {
    let phys = d.physical_type();
    let logical = d.logical_type_ref();
    let decode = match accepts {
        Accepts::Id => match phys {
            PhysicalType::BYTE_ARRAY => Some(Decode::Text),
            PhysicalType::INT32 | PhysicalType::INT64 => Some(Decode::IntText),
            _ => None,
        },
        Accepts::Time => match phys {
            PhysicalType::INT64 | PhysicalType::INT32 => {
                let scale = match (logical, d.converted_type()) {
                    (Some(LogicalType::Timestamp { unit, .. }), _) => match unit {
                        TimeUnit::MILLIS => 1e-3,
                        TimeUnit::MICROS => 1e-6,
                        TimeUnit::NANOS => 1e-9,
                    },
                    (_, ConvertedType::TIMESTAMP_MILLIS) => 1e-3,
                    (_, ConvertedType::TIMESTAMP_MICROS) => 1e-6,
                    (Some(LogicalType::Date), _) | (_, ConvertedType::DATE) => 86_400.0,
                    _ => 1.0,
                };
                Some(Decode::IntSeconds(scale))
            }
            PhysicalType::INT96 => Some(Decode::Int96),
            PhysicalType::DOUBLE | PhysicalType::FLOAT => Some(Decode::Float),
            PhysicalType::BYTE_ARRAY => Some(Decode::Text),
            _ => None,
        },
        Accepts::Text => match phys {
            PhysicalType::BYTE_ARRAY => Some(Decode::Text),
            _ => None,
        },
        Accepts::Number => match phys {
            PhysicalType::INT32 | PhysicalType::INT64 => Some(Decode::Int),
            PhysicalType::DOUBLE | PhysicalType::FLOAT => Some(Decode::Float),
            _ => None,
        },
    };
    let expected = match accepts {
        Accepts::Id => "a string or integer id",
        Accepts::Time => "an integer or TIMESTAMP, INT96, a float or a string",
        Accepts::Text => "a string",
        Accepts::Number => "an integer or a float",
    };
    let err = |found: String| DataError::ParquetColumnType {
        file: file.to_string(),
        column: d.path().string(),
        found,
        expected: expected.to_string(),
    };
    if d.max_rep_level() > 0 {
        return Err(err(format!("a repeated (list) {}", type_name(d))));
    }
    decode.ok_or_else(|| err(type_name(d)))
}

/// The projection of one file: a column per event field (`None` = optional and absent).
struct Projection {
    cols: [Option<Col>; 5],
}

impl Projection {
    fn new(
        file: &str,
        reader: &SerializedFileReader<File>,
        roles: &[Role<'_>],
    ) -> Result<Projection, DataError> {
        let schema = reader.metadata().file_metadata().schema_descr();
        let columns = schema.columns();
        let find = |given: &Option<String>, defaults: &[&str]| -> Option<usize> {
            let want: Vec<String> = match given {
                Some(g) => vec![norm_header(g)],
                None => defaults.iter().map(|d| norm_header(d)).collect(),
            };
            want.iter().find_map(|w| {
                columns.iter().position(|c| {
                    &norm_header(c.name()) == w || &norm_header(&c.path().string()) == w
                })
            })
        };
        let mut cols: [Option<Col>; 5] = Default::default();
        for role in roles {
            match find(role.given, role.defaults) {
                Some(index) => {
                    let d = &columns[index];
                    cols[role.field] = Some(Col {
                        index,
                        name: d.path().string(),
                        decode: decode_for(file, d, role.accepts)?,
                    });
                }
                // A column named explicitly must exist, even an optional one.
                None if role.required || role.given.is_some() => {
                    return Err(DataError::MissingParquetColumn {
                        file: file.to_string(),
                        column: role
                            .given
                            .clone()
                            .unwrap_or_else(|| role.defaults[0].to_string()),
                        schema: columns
                            .iter()
                            .map(|c| c.path().string())
                            .collect::<Vec<_>>()
                            .join(","),
                    })
                }
                None => {}
            }
        }
        Ok(Projection { cols })
    }
}

/// The decoded values of one column for the current batch.
enum Values {
    I32(Vec<i32>),
    I64(Vec<i64>),
    I96(Vec<Int96>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bytes(Vec<ByteArray>),
}

/// One cell of a batch.
enum Cell<'a> {
    Null,
    Int(i64),
    Float(f64),
    Bytes(&'a [u8]),
    Nanos(i64),
}

/// A projected column's reader in one row group and its current batch.
struct ColBatch {
    reader: ColumnReader,
    max_def: i16,
    def: Vec<i16>,
    values: Values,
    /// Next value in `values` (nulls have none).
    next: usize,
    /// Rows in the batch.
    rows: usize,
}

impl ColBatch {
    fn new(reader: ColumnReader, max_def: i16) -> ColBatch {
        let values = match &reader {
            ColumnReader::Int32ColumnReader(_) => Values::I32(Vec::new()),
            ColumnReader::Int64ColumnReader(_) => Values::I64(Vec::new()),
            ColumnReader::Int96ColumnReader(_) => Values::I96(Vec::new()),
            ColumnReader::FloatColumnReader(_) => Values::F32(Vec::new()),
            ColumnReader::DoubleColumnReader(_) => Values::F64(Vec::new()),
            _ => Values::Bytes(Vec::new()),
        };
        ColBatch {
            reader,
            max_def,
            def: Vec::with_capacity(BATCH),
            values,
            next: 0,
            rows: 0,
        }
    }

    /// Decodes the next batch of up to [`BATCH`] rows; returns the row count.
    fn fill(&mut self) -> Result<usize, ParquetError> {
        self.def.clear();
        self.next = 0;
        let def = (self.max_def > 0).then_some(&mut self.def);
        let (rows, values, levels) = match (&mut self.reader, &mut self.values) {
            (ColumnReader::Int32ColumnReader(r), Values::I32(v)) => {
                v.clear();
                r.read_records(BATCH, def, None, v)?
            }
            (ColumnReader::Int64ColumnReader(r), Values::I64(v)) => {
                v.clear();
                r.read_records(BATCH, def, None, v)?
            }
            (ColumnReader::Int96ColumnReader(r), Values::I96(v)) => {
                v.clear();
                r.read_records(BATCH, def, None, v)?
            }
            (ColumnReader::FloatColumnReader(r), Values::F32(v)) => {
                v.clear();
                r.read_records(BATCH, def, None, v)?
            }
            (ColumnReader::DoubleColumnReader(r), Values::F64(v)) => {
                v.clear();
                r.read_records(BATCH, def, None, v)?
            }
            (ColumnReader::ByteArrayColumnReader(r), Values::Bytes(v)) => {
                v.clear();
                r.read_records(BATCH, def, None, v)?
            }
            _ => return Err(ParquetError::General("unsupported column reader".into())),
        };
        let len = match &self.values {
            Values::I32(v) => v.len(),
            Values::I64(v) => v.len(),
            Values::I96(v) => v.len(),
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
            Values::Bytes(v) => v.len(),
        };
        let consistent = if self.max_def > 0 {
            levels == rows
                && self.def.len() == rows
                && self.def.iter().filter(|&&d| d == self.max_def).count() == values
        } else {
            values == rows
        };
        if !consistent || len != values {
            return Err(ParquetError::General(format!(
                "inconsistent column chunk: {rows} rows, {levels} levels, {values} values"
            )));
        }
        self.rows = rows;
        Ok(rows)
    }

    /// The cell of row `r` of the batch (rows must be taken in order).
    fn cell(&mut self, r: usize) -> Cell<'_> {
        if self.max_def > 0 && self.def[r] < self.max_def {
            return Cell::Null;
        }
        let i = self.next;
        self.next += 1;
        match &self.values {
            Values::I32(v) => Cell::Int(v[i] as i64),
            Values::I64(v) => Cell::Int(v[i]),
            Values::I96(v) => Cell::Nanos(v[i].to_nanos()),
            Values::F32(v) => Cell::Float(v[i] as f64),
            Values::F64(v) => Cell::Float(v[i]),
            Values::Bytes(v) => Cell::Bytes(v[i].data()),
        }
    }
}

/// [`EventAt`] of a Parquet row.
struct PqAt<'a> {
    file: &'a str,
    row_group: usize,
    row: u64,
    names: [&'a str; 5],
}

impl EventAt for PqAt<'_> {
    fn err(&self, field: usize, kind: ParseKind, expected: &str, found: &str) -> DataError {
        DataError::ParquetRow {
            file: self.file.to_string(),
            row_group: self.row_group,
            row: self.row,
            column: self.names.get(field).copied().unwrap_or("").to_string(),
            kind,
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }

    fn place(&self) -> String {
        format!(
            "{}: row group {}, row {}",
            self.file, self.row_group, self.row
        )
    }
}

/// A cell as trimmed text in `buf` (ids, event types, text timestamps); `Err` = not UTF-8.
fn text_of<'b>(cell: &Cell<'_>, buf: &'b mut String) -> Result<&'b str, ()> {
    use std::fmt::Write;
    buf.clear();
    match cell {
        Cell::Null => {}
        Cell::Bytes(b) => buf.push_str(std::str::from_utf8(b).map_err(|_| ())?.trim()),
        Cell::Int(i) => {
            let _ = write!(buf, "{i}");
        }
        Cell::Float(f) => {
            let _ = write!(buf, "{f}");
        }
        Cell::Nanos(n) => {
            let _ = write!(buf, "{n}");
        }
    }
    Ok(buf.as_str())
}

/// Loads a Parquet events file or directory (see the module doc) and, optionally, an
/// items table: Parquet when `items` is a directory or ends in `.parquet` (columns
/// `item_id`/`item`, `title`/`name`, optional `category` and `price`), CSV otherwise. The
/// same dataset and report as [`super::load_events_csv`] for the same events and items
/// (row-level errors and examples name the row group and row instead of the line).
pub fn load_events_parquet(
    events: &Path,
    names: &ParquetColumns,
    items: Option<&Path>,
    opts: &LoadOptions,
) -> Result<(Dataset, IngestReport), DataError> {
    let source = match items {
        Some(i) => format!(
            "events {} (parquet) + items {}",
            events.display(),
            i.display()
        ),
        None => format!("events {} (parquet)", events.display()),
    };
    let mut tally = Tally::new(opts, source)?;
    let mut b = Builder::default();
    let mut items_rows = 0u64;
    if let Some(ipath) = items {
        let is_parquet = ipath.is_dir()
            || ipath
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
        items_rows = if is_parquet {
            read_items_parquet(ipath, &mut b, &mut tally)?
        } else {
            read_items_csv(ipath, &mut b, &mut tally)? as u64
        };
    }
    let roles = [
        Role {
            field: EventField::User as usize,
            accepts: Accepts::Id,
            given: &names.user,
            defaults: &["user_id", "user"],
            required: true,
        },
        Role {
            field: EventField::Item as usize,
            accepts: Accepts::Id,
            given: &names.item,
            defaults: &["item_id", "item"],
            required: true,
        },
        Role {
            field: EventField::Time as usize,
            accepts: Accepts::Time,
            given: &names.timestamp,
            defaults: &["timestamp", "time"],
            required: true,
        },
        Role {
            field: EventField::Kind as usize,
            accepts: Accepts::Text,
            given: &names.event_type,
            defaults: &["event_type", "event"],
            required: false,
        },
        Role {
            field: EventField::Quantity as usize,
            accepts: Accepts::Number,
            given: &names.quantity,
            defaults: &["quantity", "qty"],
            required: false,
        },
    ];
    let mut bufs: [String; 5] = Default::default();
    let event_rows = read_files(events, &roles, &mut tally, |batches, r, at, tally| {
        row_event(batches, r, &mut bufs, &mut b, tally, opts, at)
    })?;
    let file = events.display().to_string();
    if event_rows == 0 && items_rows == 0 {
        return Err(DataError::Empty {
            file,
            what: "no data rows".into(),
        });
    }
    finish(b, tally, &file)
}

/// Reads an items table from Parquet (see [`load_events_parquet`]) with the items CSV's
/// cleaning. Returns the rows read.
fn read_items_parquet(
    path: &Path,
    b: &mut Builder,
    tally: &mut Tally<'_>,
) -> Result<u64, DataError> {
    let none = None;
    let roles = [
        Role {
            field: 0,
            accepts: Accepts::Id,
            given: &none,
            defaults: &["item_id", "item"],
            required: true,
        },
        Role {
            field: 1,
            accepts: Accepts::Text,
            given: &none,
            defaults: &["title", "name"],
            required: true,
        },
        Role {
            field: 2,
            accepts: Accepts::Text,
            given: &none,
            defaults: &["category"],
            required: false,
        },
        Role {
            field: 3,
            accepts: Accepts::Number,
            given: &none,
            defaults: &["price"],
            required: false,
        },
    ];
    let mut first: HashMap<String, String> = HashMap::new();
    let mut bufs: [String; 5] = Default::default();
    read_files(path, &roles, tally, |batches, r, at, tally| {
        let cells = take_cells(batches, r);
        let [id, title, category, price, _] = cells;
        let [b_id, b_title, b_cat, ..] = &mut bufs;
        for (cell, buf, field) in [
            (&id, &mut *b_id, 0),
            (&title, &mut *b_title, 1),
            (&category, &mut *b_cat, 2),
        ] {
            let cell = cell.as_ref().map_or(&Cell::Null, |(_, c)| c);
            if text_of(cell, buf).is_err() {
                return tally.bad_row(at.err(
                    field,
                    ParseKind::InvalidUtf8,
                    "UTF-8 text",
                    "(invalid bytes)",
                ));
            }
        }
        let price = match price {
            Some((_, Cell::Int(v))) => QtyCell::Number(v as f64),
            Some((_, Cell::Float(v))) => QtyCell::Number(v),
            _ => QtyCell::Absent,
        };
        let raw = RawItem {
            id: b_id,
            title: b_title,
            category: b_cat,
            price,
        };
        let (g, row) = (at.row_group, at.row);
        push_item(b, tally, &raw, at, &mut first, || {
            format!("row group {g}, row {row}")
        })
    })
}

/// A row handler of [`read_files`]: the batches, the row in the batch, its place, the tally.
type RowFn<'f, 't> = dyn FnMut(
        &mut [Option<(Decode, ColBatch)>],
        usize,
        &PqAt<'_>,
        &mut Tally<'t>,
    ) -> Result<(), DataError>
    + 'f;

/// Reads every Parquet file of `path` (a file or a directory), handing each row to `each`;
/// a decoder panic on corrupt data becomes a [`DataError::Parquet`]. Returns rows read.
fn read_files<'t>(
    path: &Path,
    roles: &[Role<'_>],
    tally: &mut Tally<'t>,
    mut each: impl FnMut(
        &mut [Option<(Decode, ColBatch)>],
        usize,
        &PqAt<'_>,
        &mut Tally<'t>,
    ) -> Result<(), DataError>,
) -> Result<u64, DataError> {
    let mut rows = 0;
    for path in &parquet_files(path)? {
        // The parquet crate has asserts that corrupt data can trip (e.g. a bit-packed run
        // longer than its page): such a panic becomes this file's error, never ours.
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            read_file(path, roles, tally, &mut each)
        }));
        rows += match read {
            Ok(r) => r?,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "decoder panic".into());
                return Err(DataError::Parquet {
                    file: path.display().to_string(),
                    message: format!("corrupt data ({what})"),
                });
            }
        };
    }
    Ok(rows)
}

fn read_file<'t>(
    path: &Path,
    roles: &[Role<'_>],
    tally: &mut Tally<'t>,
    each: &mut RowFn<'_, 't>,
) -> Result<u64, DataError> {
    let file = path.display().to_string();
    let f = File::open(path).map_err(|source| DataError::Io {
        file: file.clone(),
        source,
    })?;
    let reader = SerializedFileReader::new(f).map_err(|e| pq_err(&file, e))?;
    let proj = Projection::new(&file, &reader, roles)?;
    let col_names: [&str; 5] =
        std::array::from_fn(|i| proj.cols[i].as_ref().map_or("", |c| c.name.as_str()));
    let mut row: u64 = 0;
    for g in 0..reader.num_row_groups() {
        let rg = reader.get_row_group(g).map_err(|e| pq_err(&file, e))?;
        let expected_rows = u64::try_from(rg.metadata().num_rows()).unwrap_or(0);
        let mut batches: Vec<Option<(Decode, ColBatch)>> = Vec::with_capacity(5);
        for c in &proj.cols {
            batches.push(match c {
                None => None,
                Some(c) => {
                    let r = rg
                        .get_column_reader(c.index)
                        .map_err(|e| pq_err(&file, e))?;
                    let max_def = rg.metadata().column(c.index).column_descr().max_def_level();
                    Some((c.decode, ColBatch::new(r, max_def)))
                }
            });
        }
        let mut group_rows = 0u64;
        loop {
            let mut n: Option<usize> = None;
            for (_, cb) in batches.iter_mut().flatten() {
                let k = cb.fill().map_err(|e| pq_err(&file, e))?;
                if n.is_some_and(|n| n != k) {
                    return Err(DataError::Parquet {
                        file: file.clone(),
                        message: format!("row group {g}: columns have different row counts"),
                    });
                }
                n = Some(k);
            }
            let n = n.unwrap_or(0);
            if n == 0 {
                break;
            }
            for r in 0..n {
                tally.report.rows_read += 1;
                let at = PqAt {
                    file: &file,
                    row_group: g,
                    row,
                    names: col_names,
                };
                each(&mut batches, r, &at, tally)?;
                row += 1;
            }
            group_rows += n as u64;
        }
        if group_rows != expected_rows {
            return Err(DataError::Parquet {
                file: file.clone(),
                message: format!(
                    "row group {g}: {group_rows} rows decoded, the footer says {expected_rows}"
                ),
            });
        }
    }
    Ok(row)
}

/// Every column's cell of row `r` (taken once each, so the columns stay in step whatever
/// the row's fate).
fn take_cells(
    batches: &mut [Option<(Decode, ColBatch)>],
    r: usize,
) -> [Option<(Decode, Cell<'_>)>; 5] {
    let mut it = batches.iter_mut();
    std::array::from_fn(|_| {
        it.next()
            .and_then(Option::as_mut)
            .map(|(d, cb)| (*d, ColBatch::cell(cb, r)))
    })
}

/// Cleans row `r` of the current batches into the builder (every column's cell of the row
/// is taken first, so the columns stay in step whatever the row's fate).
fn row_event(
    batches: &mut [Option<(Decode, ColBatch)>],
    r: usize,
    bufs: &mut [String; 5],
    b: &mut Builder,
    tally: &mut Tally<'_>,
    opts: &LoadOptions,
    at: &PqAt<'_>,
) -> Result<(), DataError> {
    let [user, item, time, kind, qty] = take_cells(batches, r);
    let [b_user, b_item, b_time, b_kind, _] = bufs;
    let utf8 = |field: EventField| {
        at.err(
            field as usize,
            ParseKind::InvalidUtf8,
            "UTF-8 text",
            "(invalid bytes)",
        )
    };
    for (cell, buf, field) in [
        (&user, &mut *b_user, EventField::User),
        (&item, &mut *b_item, EventField::Item),
        (&kind, &mut *b_kind, EventField::Kind),
    ] {
        let cell = cell.as_ref().map_or(&Cell::Null, |(_, c)| c);
        if text_of(cell, buf).is_err() {
            return tally.bad_row(utf8(field));
        }
    }
    let time = match time {
        Some((decode, cell)) => match (cell, decode) {
            (Cell::Null, _) => TimeCell::Text(""),
            (Cell::Int(v), Decode::IntSeconds(s)) => TimeCell::Seconds(v as f64 * s),
            (Cell::Int(v), _) => TimeCell::Seconds(v as f64),
            (Cell::Nanos(v), _) => TimeCell::Seconds(v as f64 * 1e-9),
            (Cell::Float(v), _) => TimeCell::Seconds(v),
            (cell @ Cell::Bytes(_), _) => match text_of(&cell, b_time) {
                Ok(_) => TimeCell::Text(b_time.as_str()),
                Err(()) => return tally.bad_row(utf8(EventField::Time)),
            },
        },
        None => TimeCell::Text(""),
    };
    let quantity = match qty {
        Some((_, Cell::Int(v))) => QtyCell::Number(v as f64),
        Some((_, Cell::Float(v))) => QtyCell::Number(v),
        _ => QtyCell::Absent,
    };
    let raw = RawEvent {
        user: b_user,
        item: b_item,
        at: time,
        kind: b_kind,
        quantity,
    };
    push_event(b, tally, opts.default_kind, &raw, at)
}

// ---------------------------------------------------------------------------------------
// Synthetic logs.

/// Shape of a synthetic event log ([`write_synthetic_log`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SynthLogSpec {
    /// Events in total.
    pub events: u64,
    /// Users (activity is Zipf-skewed over them).
    pub users: u64,
    /// Items (popularity is Zipf-skewed over them, exponent [`SynthLogSpec::zipf`]).
    pub items: u64,
    /// Zipf exponent of item popularity (1.0 ≈ real catalogues).
    pub zipf: f64,
    /// Rows per row group.
    pub row_group_rows: usize,
    /// Rows per file.
    pub file_rows: u64,
    /// Seed of the generator.
    pub seed: u64,
}

impl SynthLogSpec {
    /// A log of `events` events with proportionate users (1 per 25 events) and items
    /// (1 per 250 events, at least 100), 1M-row row groups and 10M-row files.
    pub fn new(events: u64, seed: u64) -> SynthLogSpec {
        SynthLogSpec {
            events,
            users: (events / 25).max(10),
            items: (events / 250).max(100),
            zipf: 1.0,
            row_group_rows: 1_000_000,
            file_rows: 10_000_000,
            seed,
        }
    }
}

/// The schema `vitrine synth-log` writes (Spark's shapes: integer ids, a millisecond
/// timestamp, a string event type, an integer quantity).
pub const SYNTH_SCHEMA: &str = "message events {
  required int64 user_id;
  required int64 item_id;
  required int64 timestamp (TIMESTAMP(MILLIS,true));
  required binary event_type (STRING);
  required int32 quantity;
}";

/// Inverse-CDF sampler of a Zipf(s) law over `0..n` (rank 0 most popular).
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: u64, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n as usize);
        let mut acc = 0.0;
        for k in 1..=n {
            acc += (k as f64).powf(-s);
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut SplitMix64) -> u64 {
        let u = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        (self.cdf.partition_point(|&c| c < u) as u64).min(self.cdf.len() as u64 - 1)
    }
}

/// Writes a synthetic event log as `part-00000.parquet`, ... in `dir` (created):
/// sessions of 1–12 events (a user drawn Zipf(0.8) over users, items Zipf(`zipf`) over
/// the catalogue, half of a session's later events re-visiting its previous item's
/// neighbourhood), mostly views with carts (15%) and purchases (5%), quantities 1–3,
/// timestamps increasing over about a year. Deterministic under the seed. Returns the
/// files written.
pub fn write_synthetic_log(dir: &Path, spec: &SynthLogSpec) -> Result<Vec<PathBuf>, DataError> {
    let dname = dir.display().to_string();
    std::fs::create_dir_all(dir).map_err(|source| DataError::Io {
        file: dname.clone(),
        source,
    })?;
    if spec.users == 0 || spec.items == 0 || spec.row_group_rows == 0 || spec.file_rows == 0 {
        return Err(DataError::InvalidOptions(
            "synthetic log: sizes must be positive".into(),
        ));
    }
    let schema = Arc::new(parse_message_type(SYNTH_SCHEMA).map_err(|e| pq_err(&dname, e))?);
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(::parquet::basic::Compression::SNAPPY)
            .set_max_row_group_size(spec.row_group_rows)
            .build(),
    );
    let items = Zipf::new(spec.items, spec.zipf);
    let users = Zipf::new(spec.users, 0.8);
    let mut rng = SplitMix64::new(spec.seed);
    // A fixed permutation of the ranks (x ↦ (p·x + 12345) mod n with a prime p ∤ n, a
    // bijection) so that the popular users and items are not the low ids.
    let perm = |x: u64, n: u64| {
        let p = [1_000_003u128, 1_000_033, 1_000_037]
            .into_iter()
            .find(|p| !(n as u128).is_multiple_of(*p))
            .unwrap_or(1);
        ((p * x as u128 + 12_345) % n as u128) as u64
    };
    let start_ms: i64 = 1_672_531_200_000; // 2023-01-01
    let span_ms = 365 * 86_400_000i64;
    let mut written = 0u64;
    let mut files = Vec::new();
    let kinds = [
        ByteArray::from("view"),
        ByteArray::from("cart"),
        ByteArray::from("purchase"),
    ];
    // Session state carried across row groups.
    let mut left_in_session = 0u32;
    let (mut user, mut item, mut t) = (0i64, 0u64, start_ms);
    while written < spec.events {
        let path = dir.join(format!("part-{:05}.parquet", files.len()));
        let pname = path.display().to_string();
        let f = File::create(&path).map_err(|source| DataError::Io {
            file: pname.clone(),
            source,
        })?;
        let mut w = SerializedFileWriter::new(f, schema.clone(), props.clone())
            .map_err(|e| pq_err(&pname, e))?;
        let in_file = (spec.events - written).min(spec.file_rows);
        let mut file_written = 0u64;
        while file_written < in_file {
            let n = (in_file - file_written).min(spec.row_group_rows as u64) as usize;
            let (mut us, mut is, mut ts, mut ks, mut qs) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            for j in 0..n {
                let global = written + file_written + j as u64;
                // Time advances evenly over the year, plus in-session seconds.
                let base =
                    start_ms + (global as i128 * span_ms as i128 / spec.events as i128) as i64;
                if left_in_session == 0 {
                    left_in_session = 1 + (rng.next_u64() % 12) as u32;
                    user = perm(users.sample(&mut rng), spec.users) as i64;
                    item = perm(items.sample(&mut rng), spec.items);
                    t = base;
                } else {
                    t = t.max(base) + 5_000 + (rng.next_u64() % 120_000) as i64;
                    item = if rng.next_u64() & 1 == 0 {
                        (item + 1 + rng.next_u64() % 5) % spec.items
                    } else {
                        perm(items.sample(&mut rng), spec.items)
                    };
                }
                left_in_session -= 1;
                let k = match rng.next_u64() % 100 {
                    0..=79 => 0,
                    80..=94 => 1,
                    _ => 2,
                };
                us.push(user);
                is.push(item as i64);
                ts.push(t);
                ks.push(kinds[k].clone());
                qs.push(1 + (rng.next_u64() % 3) as i32);
            }
            let mut rg = w.next_row_group().map_err(|e| pq_err(&pname, e))?;
            let mut col = 0;
            while let Some(mut cw) = rg.next_column().map_err(|e| pq_err(&pname, e))? {
                let res = match (col, cw.untyped()) {
                    (0, ColumnWriter::Int64ColumnWriter(c)) => c.write_batch(&us, None, None),
                    (1, ColumnWriter::Int64ColumnWriter(c)) => c.write_batch(&is, None, None),
                    (2, ColumnWriter::Int64ColumnWriter(c)) => c.write_batch(&ts, None, None),
                    (3, ColumnWriter::ByteArrayColumnWriter(c)) => c.write_batch(&ks, None, None),
                    (4, ColumnWriter::Int32ColumnWriter(c)) => c.write_batch(&qs, None, None),
                    _ => Err(ParquetError::General("unexpected column".into())),
                };
                res.map_err(|e| pq_err(&pname, e))?;
                cw.close().map_err(|e| pq_err(&pname, e))?;
                col += 1;
            }
            rg.close().map_err(|e| pq_err(&pname, e))?;
            file_written += n as u64;
        }
        w.close().map_err(|e| pq_err(&pname, e))?;
        written += file_written;
        files.push(path);
    }
    Ok(files)
}
