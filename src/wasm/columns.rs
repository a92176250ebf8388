//! `catalog()`'s columns as JavaScript arrays, in batches instead of one value at a time.
//!
//! Handing a column over value by value (as `serde_wasm_bindgen` does) costs one UTF-8
//! decode per string: about 2 s for the ids, titles and category names of 1,000,000
//! items, a quarter of that catalogue's cold start (0.65 s this way). Here a string
//! column goes over in batches of about [`BATCH_BYTES`]: the batch's strings joined with
//! NUL become one JavaScript string (one decode), which JavaScript splits at the NULs; a
//! batch in which some string holds a NUL itself goes string by string. The batches
//! bound the transient text in wasm memory (it never shrinks) to about [`BATCH_BYTES`].
//! The per-item category names are references to the few name strings, made once (no
//! string per item); prices cross one `f64` at a time (`null` where unknown), the same
//! numbers as the `f32`s' conversion to `f64`.
//!
//! The result has [`CatalogView`]'s JSON shape; `tests/web.rs` checks every column
//! against the file's values.
//!
//! [`catalog_packed_to_js`] hands the same columns over as typed arrays instead, with no
//! JavaScript string made here: each string column as its UTF-8 text in one `Uint8Array`,
//! each string's length in UTF-16 units (`lens`, a `Uint32Array`) and the text's
//! segments (`segments`: pairs of byte length and string count, each segment at most
//! [`SEGMENT_BYTES`] unless one string is longer); the category index per item; prices
//! as a `Float64Array` with NaN where unknown. A Worker transfers these buffers to the
//! page (no structured clone of a million strings), where `www/catalog.js` makes the
//! strings: one UTF-8 decode per segment, then a slice per string. The copies from wasm
//! go a segment at a time, so the transient text in wasm memory stays below about
//! [`SEGMENT_BYTES`].
use js_sys::{Array, Float64Array, JsString, Object, Reflect, Uint32Array, Uint8Array};
use wasm_bindgen::{JsCast, JsError, JsValue};

use super::types::{CatalogView, CategoryColumn};

/// Text (or JSON) bytes converted to JavaScript at a time.
const BATCH_BYTES: usize = 1 << 20;

/// The separator of a joined batch.
const SEP: &str = "\0";

/// Text bytes per segment of a packed string column (module docs).
const SEGMENT_BYTES: usize = 1 << 20;

/// The catalogue `view` as a JavaScript object of [`CatalogView`]'s shape.
pub fn catalog_to_js(view: &CatalogView<'_>) -> Result<JsValue, JsError> {
    let names = view.category_names.iter().map(String::as_str);
    let prices_of = (0..view.prices.len()).map(|i| view.prices.get(i));
    let fields: [(&str, JsValue); 5] = [
        ("ids", strings(view.ids.iter())?.into()),
        ("titles", strings(view.titles.iter())?.into()),
        ("categories", categories(&view.categories).into()),
        ("prices", prices(prices_of).into()),
        ("categoryNames", strings(names)?.into()),
    ];
    object(fields).map(Into::into)
}

/// A JavaScript object with `fields`, in order.
fn object<const N: usize>(fields: [(&str, JsValue); N]) -> Result<Object, JsError> {
    let out = Object::new();
    for (key, value) in fields {
        Reflect::set(&out, &key.into(), &value)
            .map_err(|_| JsError::new("internal: cannot build the catalog object"))?;
    }
    Ok(out)
}

/// `values` as a JavaScript array of strings, in order, in batches (module docs).
fn strings<'a>(values: impl Iterator<Item = &'a str>) -> Result<Array, JsError> {
    let batches = Array::new();
    let mut batch: Vec<&str> = Vec::new();
    let mut bytes = 0;
    for s in values {
        bytes += s.len() + SEP.len();
        batch.push(s);
        if bytes >= BATCH_BYTES {
            batches.push(&string_batch(&batch));
            batch.clear();
            bytes = 0;
        }
    }
    if !batch.is_empty() {
        batches.push(&string_batch(&batch));
    }
    concat(&batches)
}

/// The arrays in `batches` as one: a single `[].concat(...batches)` (concatenating them
/// one by one would copy the first ones again for every batch).
fn concat(batches: &Array) -> Result<Array, JsError> {
    let empty = Array::new();
    let err = |_| JsError::new("internal: cannot concatenate the catalog's batches");
    let f = Reflect::get(&empty, &"concat".into()).map_err(err)?;
    let f: js_sys::Function = f.dyn_into().map_err(err)?;
    let all = Reflect::apply(&f, &empty, batches).map_err(err)?;
    Ok(Array::from(&all))
}

/// One batch: joined and split when no string holds the separator (the split of `k`
/// strings joined by it then gives exactly those `k`), else string by string.
fn string_batch(batch: &[&str]) -> Array {
    if batch.iter().any(|s| s.contains(SEP)) {
        return batch.iter().map(|&s| JsValue::from_str(s)).collect();
    }
    JsString::from(batch.join(SEP).as_str()).split(SEP)
}

/// Each item's category name: the few names become JavaScript strings once, and the
/// array holds references to them (no string per item).
fn categories(column: &CategoryColumn<'_>) -> Array {
    let names: Vec<JsValue> = (column.names.iter())
        .map(|s| JsValue::from_str(s))
        .collect();
    let unknown = JsValue::from_str("unknown");
    let out = Array::new_with_length(column.index.len() as u32);
    for (i, &k) in column.index.iter().enumerate() {
        let name = names.get(k as usize).unwrap_or(&unknown);
        // Setting an index of an array cannot fail.
        let _ = Reflect::set_u32(&out, i as u32, name);
    }
    out
}

/// `values` (a price or none per item) as a JavaScript array of numbers and `null`s, one
/// value at a time (a number crosses as an `f64`, no text).
fn prices(values: impl ExactSizeIterator<Item = Option<f32>>) -> Array {
    let out = Array::new_with_length(values.len() as u32);
    for (i, v) in values.enumerate() {
        let v = match v {
            // Finite (checked at load).
            Some(p) if p.is_finite() => JsValue::from_f64(f64::from(p)),
            _ => JsValue::NULL,
        };
        out.set(i as u32, v);
    }
    out
}

/// The catalogue `view` as typed arrays (module docs): `{ ids, titles, categoryIndex,
/// prices, categoryNames }`, each string column `{ text, lens, segments }`.
pub fn catalog_packed_to_js(view: &CatalogView<'_>) -> Result<JsValue, JsError> {
    let n = view.ids.len();
    let prices = Float64Array::new_with_length(js_len(n, "prices")?);
    let mut batch: Vec<f64> = Vec::with_capacity(n.min(1 << 16));
    let mut at = 0;
    for i in 0..n {
        batch.push(match view.prices.get(i) {
            Some(p) if p.is_finite() => f64::from(p),
            _ => f64::NAN,
        });
        if batch.len() == batch.capacity() || i + 1 == n {
            prices
                .subarray(at as u32, (at + batch.len()) as u32)
                .copy_from(&batch);
            at += batch.len();
            batch.clear();
        }
    }
    let index = Uint32Array::new_with_length(js_len(view.categories.index.len(), "categories")?);
    index.copy_from(view.categories.index);
    let names = view.category_names.iter().map(String::as_str);
    let fields: [(&str, JsValue); 5] = [
        ("ids", packed_strings(view.ids.iter(), n, "ids")?.into()),
        (
            "titles",
            packed_strings(view.titles.iter(), view.titles.len(), "titles")?.into(),
        ),
        ("categoryIndex", index.into()),
        ("prices", prices.into()),
        ("categoryNames", strings(names)?.into()),
    ];
    object(fields).map(Into::into)
}

/// `n` as a typed array's length, or an error past `u32`.
fn js_len(n: usize, what: &str) -> Result<u32, JsError> {
    u32::try_from(n).map_err(|_| {
        JsError::new(&format!(
            "catalog {what}: {n} is too long for a typed array"
        ))
    })
}

/// Length of `s` in UTF-16 code units (JavaScript's `length`): one per character, two for
/// a character above U+FFFF (a four-byte UTF-8 sequence).
fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        return s.len();
    }
    s.bytes()
        .map(|b| usize::from(b & 0xC0 != 0x80) + usize::from(b >= 0xF0))
        .sum()
}

/// The `n` strings of `values` as `{ text, lens, segments }` (module docs).
fn packed_strings<'a>(
    values: impl Iterator<Item = &'a str> + Clone,
    n: usize,
    what: &str,
) -> Result<Object, JsError> {
    let total: usize = values.clone().map(str::len).sum();
    let text = Uint8Array::new_with_length(js_len(total, what)?);
    let lens = Uint32Array::new_with_length(js_len(n, what)?);
    let mut segments: Vec<u32> = Vec::new();
    let mut buf: Vec<u8> = Vec::with_capacity(SEGMENT_BYTES.min(total));
    let mut buf_lens: Vec<u32> = Vec::new();
    // Bytes and strings copied out so far.
    let (mut bytes_at, mut strings_at) = (0u32, 0u32);
    let mut flush = |buf: &mut Vec<u8>, buf_lens: &mut Vec<u32>, segments: &mut Vec<u32>| {
        if buf_lens.is_empty() {
            return;
        }
        let (b, k) = (buf.len() as u32, buf_lens.len() as u32);
        text.subarray(bytes_at, bytes_at + b).copy_from(buf);
        lens.subarray(strings_at, strings_at + k)
            .copy_from(buf_lens);
        segments.extend([b, k]);
        (bytes_at, strings_at) = (bytes_at + b, strings_at + k);
        buf.clear();
        buf_lens.clear();
    };
    for s in values {
        if !buf_lens.is_empty() && buf.len() + s.len() > SEGMENT_BYTES {
            flush(&mut buf, &mut buf_lens, &mut segments);
        }
        buf.extend_from_slice(s.as_bytes());
        // A string's UTF-16 length is at most its UTF-8 length, which fits (`total` does).
        buf_lens.push(utf16_len(s) as u32);
    }
    flush(&mut buf, &mut buf_lens, &mut segments);
    if strings_at as usize != n {
        return Err(JsError::new(&format!(
            "internal: catalog {what}: {strings_at} strings packed, {n} expected"
        )));
    }
    let segments = Uint32Array::from(segments.as_slice());
    object([
        ("text", JsValue::from(text)),
        ("lens", lens.into()),
        ("segments", segments.into()),
    ])
}
