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
use js_sys::{Array, JsString, Object, Reflect};
use wasm_bindgen::{JsCast, JsError, JsValue};

use super::types::{CatalogView, CategoryColumn};

/// Text (or JSON) bytes converted to JavaScript at a time.
const BATCH_BYTES: usize = 1 << 20;

/// The separator of a joined batch.
const SEP: &str = "\0";

/// The catalogue `view` as a JavaScript object of [`CatalogView`]'s shape.
pub fn catalog_to_js(view: &CatalogView<'_>) -> Result<JsValue, JsError> {
    let out = Object::new();
    let names = view.category_names.iter().map(String::as_str);
    let prices_of = (0..view.prices.len()).map(|i| view.prices.get(i));
    let fields: [(&str, JsValue); 5] = [
        ("ids", strings(view.ids.iter())?.into()),
        ("titles", strings(view.titles.iter())?.into()),
        ("categories", categories(&view.categories).into()),
        ("prices", prices(prices_of).into()),
        ("categoryNames", strings(names)?.into()),
    ];
    for (key, value) in fields {
        Reflect::set(&out, &key.into(), &value)
            .map_err(|_| JsError::new("internal: cannot build the catalog object"))?;
    }
    Ok(out.into())
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
