//! JavaScript values in, Rust option structs out: conversion, narrowing of a failed
//! deserialisation to the offending field, and the checks serde cannot express
//! (integrity string, namespace, event time). Every failure is an [`OptionsError`] whose
//! message is what JavaScript sees in the thrown `Error`.
//!
//! Narrowing: when `T` fails to deserialise from an object, each field is tried alone
//! (`{ field: value }`, the rest defaulted); the first one that still fails is descended
//! into the same way (arrays element by element), so the message names the smallest
//! failing part, e.g. `` `filter.priceMin`: invalid type: string "x", expected f32 ``.
//!
//! Compiled natively too (all but the `JsValue` conversions), so the fuzz targets and
//! `tests/fuzz_regressions.rs` / `tests/proptest_options.rs` drive the same JSON → option
//! path the browser runs ([`options_from_json`]).
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen::JsValue;

#[cfg(target_arch = "wasm32")]
use super::types::RecordEvent;

/// Why a JavaScript argument was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// `JSON.stringify` refused the value (a cycle, a BigInt, ...).
    #[error("{what}: not serialisable as JSON")]
    NotJson {
        /// Which argument.
        what: String,
    },
    /// The value is not of the expected shape; `detail` names the field when it can.
    #[error("{what}: {detail}")]
    Invalid {
        /// Which argument.
        what: String,
        /// The serde message, prefixed with the failing field's path.
        detail: String,
    },
    /// An options argument that is neither an object nor `undefined`/`null`.
    #[error("{what}: expected an object")]
    NotObject {
        /// Which argument.
        what: String,
    },
    /// `record()` was given something other than an object.
    #[error("event: expected an object {{ item, type, at? }}")]
    EventNotObject,
    /// `event.at` is NaN or infinite.
    #[error("event: `at` must be a finite number (Unix seconds)")]
    EventTimeNotFinite,
    /// `event.at` is more than a day ahead of the clock (milliseconds passed?).
    #[error("event: `at` is more than a day in the future (Unix seconds expected)")]
    EventTimeInFuture,
    /// `options.integrity` is not `sha256-<64 hex digits>`.
    #[error("options: `integrity` must look like 'sha256-<64 hex digits>'")]
    IntegrityFormat,
    /// The bytes' SHA-256 differs from `options.integrity`.
    #[error("integrity check failed: the weight file's SHA-256 is {actual}, expected {expected}")]
    IntegrityMismatch {
        /// Hex digest of the bytes.
        actual: String,
        /// Hex digest asked for (lowercase).
        expected: String,
    },
    /// `options.namespace` is empty, longer than [`MAX_NAMESPACE_CHARS`] characters or
    /// contains a control character.
    #[error("options: `namespace` must be 1 to 256 characters without control characters")]
    Namespace,
    /// `options.historyLimits` fails [`crate::history::HistoryLimits::validate`].
    #[error("options: `historyLimits`: {0}")]
    HistoryLimits(String),
    /// `search()`'s first argument is not a string.
    #[error("search: `query` must be a string")]
    QueryNotString,
}

/// Converts a JavaScript value to JSON (`undefined`/`null` → `None`).
#[cfg(target_arch = "wasm32")]
fn js_to_json(value: &JsValue, what: &str) -> Result<Option<Value>, OptionsError> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    let not_json = || OptionsError::NotJson {
        what: what.to_string(),
    };
    let text = js_sys::JSON::stringify(value).map_err(|_| not_json())?;
    let text: String = text.into();
    // `from_slice` (the history's reader too): one JSON reader in the package.
    serde_json::from_slice(text.as_bytes())
        .map(Some)
        .map_err(|e| OptionsError::Invalid {
            what: what.to_string(),
            detail: e.to_string(),
        })
}

/// Deserialises `value` as `T`; on failure, names the smallest failing part of the input.
pub fn from_json<T: DeserializeOwned>(value: Value, what: &str) -> Result<T, OptionsError> {
    match serde_json::from_value::<T>(value.clone()) {
        Ok(v) => Ok(v),
        Err(e) => {
            let fails = |v: Value| serde_json::from_value::<T>(v).is_err();
            let path = narrow(&fails, &|v| v, &value, String::new());
            // serde names unknown fields itself; the path adds where a wrong type sits.
            let detail = if path.is_empty() {
                e.to_string()
            } else {
                format!("`{path}`: {e}")
            };
            Err(OptionsError::Invalid {
                what: what.to_string(),
                detail,
            })
        }
    }
}

/// Recursively locates the failing field; `wrap` rebuilds a one-field input around a
/// sub-value at the current path.
fn narrow(
    fails: &dyn Fn(Value) -> bool,
    wrap: &dyn Fn(Value) -> Value,
    value: &Value,
    path: String,
) -> String {
    match value {
        Value::Object(map) => {
            for (k, sub) in map {
                let single = |x: Value| {
                    let mut m = serde_json::Map::new();
                    m.insert(k.clone(), x);
                    wrap(Value::Object(m))
                };
                if fails(single(sub.clone())) {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    return narrow(fails, &single, sub, p);
                }
            }
            path
        }
        Value::Array(items) => {
            for (i, sub) in items.iter().enumerate() {
                let single = |x: Value| wrap(Value::Array(vec![x]));
                if fails(single(sub.clone())) {
                    return narrow(fails, &single, sub, format!("{path}[{i}]"));
                }
            }
            path
        }
        _ => path,
    }
}

/// Parses an optional JavaScript options object into `T` (absent → `T::default()`).
#[cfg(target_arch = "wasm32")]
pub fn parse_options<T: DeserializeOwned + Default>(
    value: &JsValue,
    what: &str,
) -> Result<T, OptionsError> {
    options_from_json(js_to_json(value, what)?, what)
}

/// An options argument as JSON (what `JSON.stringify` made of it; `None` or `null`:
/// absent → `T::default()`) into `T`; anything but an object is
/// [`OptionsError::NotObject`].
pub fn options_from_json<T: DeserializeOwned + Default>(
    value: Option<Value>,
    what: &str,
) -> Result<T, OptionsError> {
    match value {
        None | Some(Value::Null) => Ok(T::default()),
        Some(v @ Value::Object(_)) => from_json(v, what),
        Some(_) => Err(OptionsError::NotObject {
            what: what.to_string(),
        }),
    }
}

/// `search()`'s query: any string (untrusted text is fine: the search caps it), else
/// [`OptionsError::QueryNotString`].
#[cfg(target_arch = "wasm32")]
pub fn parse_query(value: &JsValue) -> Result<String, OptionsError> {
    value.as_string().ok_or(OptionsError::QueryNotString)
}

/// Parses `record()`'s argument (its time is checked by [`event_time`]).
#[cfg(target_arch = "wasm32")]
pub fn parse_event(value: &JsValue) -> Result<RecordEvent, OptionsError> {
    match js_to_json(value, "event")? {
        Some(v @ Value::Object(_)) => from_json(v, "event"),
        _ => Err(OptionsError::EventNotObject),
    }
}

/// An event's time: `at` (Unix seconds) when finite and at most a day after `now`, else
/// `now` when absent.
pub fn event_time(at: Option<f64>, now: f64) -> Result<f64, OptionsError> {
    match at {
        Some(t) if !t.is_finite() => Err(OptionsError::EventTimeNotFinite),
        Some(t) if t > now + 86_400.0 => Err(OptionsError::EventTimeInFuture),
        Some(t) => Ok(t),
        None => Ok(now),
    }
}

/// The digest an `integrity` option names: `sha256-<64 hex digits>` (either case), as
/// lowercase hex.
pub fn integrity_digest(integrity: &str) -> Result<String, OptionsError> {
    let hex = integrity
        .strip_prefix("sha256-")
        .ok_or(OptionsError::IntegrityFormat)?
        .to_ascii_lowercase();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(OptionsError::IntegrityFormat);
    }
    Ok(hex)
}

/// Compares the file's SHA-256 (`actual`, lowercase hex) with the one the `integrity`
/// option named ([`integrity_digest`]).
pub fn compare_integrity(actual: String, expected: String) -> Result<(), OptionsError> {
    if actual != expected {
        return Err(OptionsError::IntegrityMismatch { actual, expected });
    }
    Ok(())
}

/// Longest namespace a page may set, in characters.
pub const MAX_NAMESPACE_CHARS: usize = 256;

/// The history namespace (the store, not the model, so history survives model updates):
/// `requested` when valid, else the page's origin (`location.origin` of the window or
/// worker; `"default"` where there is none).
pub fn namespace(requested: Option<&str>) -> Result<String, OptionsError> {
    match requested {
        Some(ns)
            if ns.is_empty()
                || ns.chars().count() > MAX_NAMESPACE_CHARS
                || ns.chars().any(char::is_control) =>
        {
            Err(OptionsError::Namespace)
        }
        Some(ns) => Ok(ns.to_string()),
        None => Ok(page_origin()
            .filter(|o| !o.is_empty() && o.len() <= 4 * MAX_NAMESPACE_CHARS)
            .unwrap_or_else(|| "default".to_string())),
    }
}

/// `location.origin` of this window or worker, if any.
#[cfg(target_arch = "wasm32")]
fn page_origin() -> Option<String> {
    let location = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("location")).ok()?;
    if !location.is_object() {
        return None;
    }
    js_sys::Reflect::get(&location, &JsValue::from_str("origin"))
        .ok()?
        .as_string()
}

/// Natively (fuzzing, property tests) there is no page: the `"default"` namespace.
#[cfg(not(target_arch = "wasm32"))]
fn page_origin() -> Option<String> {
    None
}

/// Converts a Rust value to a plain JavaScript value (objects, not `Map`s).
#[cfg(target_arch = "wasm32")]
pub fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, String> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| format!("internal: cannot convert result: {e}"))
}

/// [`to_js`] through one JSON text: the value written by serde_json ([`result_json`])
/// and made a JavaScript value by `JSON.parse`. The same values for the result types
/// (every `f32` is written as the `f64` it converts to, so `JSON.parse` gives the number
/// [`to_js`] gives; a non-finite float, which no result holds, would be `null` here and
/// `NaN` there). For the per-request results (`recommend()`, `page()`, `search()`): one
/// string crosses into JavaScript (one UTF-8 decode) instead of one JavaScript call per
/// field and one decode per string — about 0.1 ms of a 4,000-item `recommend()` of
/// 20 items with their reasons (README, "Against ONNX Runtime Web and TF.js").
#[cfg(target_arch = "wasm32")]
pub fn to_js_json<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, String> {
    let text = result_json(value)?;
    js_sys::JSON::parse(&text).map_err(|_| "internal: cannot convert result".to_string())
}

/// `value` as JSON text with every `f32` written as its `f64` (shortest round-trip
/// digits of the `f64`, so parsing the text as a double gives `f32 as f64` exactly).
pub fn result_json<T: Serialize + ?Sized>(value: &T) -> Result<String, String> {
    let mut out = Vec::with_capacity(1024);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, F32AsF64);
    value
        .serialize(&mut ser)
        .map_err(|e| format!("internal: cannot convert result: {e}"))?;
    String::from_utf8(out).map_err(|_| "internal: result is not UTF-8".to_string())
}

/// serde_json's compact formatter, but an `f32` is written as the `f64` it converts to.
struct F32AsF64;

impl serde_json::ser::Formatter for F32AsF64 {
    fn write_f32<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        value: f32,
    ) -> std::io::Result<()> {
        self.write_f64(w, f64::from(value))
    }
}
