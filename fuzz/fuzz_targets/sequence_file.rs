//! cargo-fuzz target `sequence_file`: see `fuzz/entries.rs` for the input layout and what counts
//! as a finding.
#![no_main]

#[path = "../entries.rs"]
mod entries;

libfuzzer_sys::fuzz_target!(|data: &[u8]| entries::sequence_file(data));
