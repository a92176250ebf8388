//! `catalog()`'s columns as JavaScript arrays, in batches instead of one value at a time.
//!
//! Handing a column over value by value (as `serde_wasm_bindgen` does) costs one UTF-8
//! decode per string: about 2 s for the ids, titles and category names of 1,000,000
//! items, a quarter of that catalogue's cold start (0.65 s this way). Here a string
//! column goes over in batches of about [`BATCH_BYTES`]: the batch's strings joined with
//! NUL become one JavaScript string (one decode), which JavaScript splits at the NULs; a
//! batch in which some string holds a NUL itself goes string by string. Prices go over as
//! one JSON array per batch (`JSON.parse`; each `f32` written as the shortest decimal of
//! its `f64`, so the numbers are the ones a value-by-value conversion gives). The batches
//! bound the transient text in wasm memory (it never shrinks) to about [`BATCH_BYTES`].
//!
//! The result has [`CatalogView`]'s JSON shape; `tests/web.rs` checks every column
//! against the file's values.
use js_sys::{Array, JsString, Object, Reflect};
use wasm_bindgen::{JsCast, JsError, JsValue};

use super::types::CatalogView;

/// Text (or JSON) bytes converted to JavaScript at a time.
const BATCH_BYTES: usize = 1 << 20;

/// The separator of a joined batch.
const SEP: &str = "\0";

/// The catalogue `view` as a JavaScript object of [`CatalogView`]'s shape.
pub fn catalog_to_js(view: &CatalogView<'_>) -> Result<JsValue, JsError> {
    let out = Object::new();
    let n = view.categories.index.len();
    let names = view.category_names.iter().map(String::as_str);
    let categories = (0..n).map(|i| view.categories.name(i));
    let prices_of = (0..view.prices.len()).map(|i| view.prices.get(i));
    let fields: [(&str, JsValue); 5] = [
        ("ids", strings(view.ids.iter())?.into()),
        ("titles", strings(view.titles.iter())?.into()),
        ("categories", strings(categories)?.into()),
        ("prices", prices(prices_of)?.into()),
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

/// `values` (a price or none per item) as a JavaScript array of numbers and `null`s, one
/// JSON array per batch, concatenated at the end.
fn prices(values: impl Iterator<Item = Option<f32>>) -> Result<Array, JsError> {
    let mut out = Array::new();
    let mut json = String::new();
    let flush = |json: &mut String, out: &mut Array| -> Result<(), JsError> {
        json.push(']');
        let batch = js_sys::JSON::parse(json)
            .map_err(|_| JsError::new("internal: cannot convert the prices"))?;
        out.push(&batch);
        json.clear();
        Ok(())
    };
    for v in values {
        json.push(if json.is_empty() { '[' } else { ',' });
        match v {
            // Finite (checked at load): the shortest decimal that reads back as this f64.
            Some(p) if p.is_finite() => json.push_str(&(p as f64).to_string()),
            _ => json.push_str("null"),
        }
        if json.len() >= BATCH_BYTES {
            flush(&mut json, &mut out)?;
        }
    }
    if !json.is_empty() {
        flush(&mut json, &mut out)?;
    }
    concat(&out)
}
