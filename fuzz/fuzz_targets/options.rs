//! cargo-fuzz target `options`: see `fuzz/entries.rs` for the input layout and what counts
//! as a finding.
#![no_main]

#[path = "../entries.rs"]
mod entries;

libfuzzer_sys::fuzz_target!(|data: &[u8]| entries::options(data));
