//! cargo-fuzz target `weight_file`: see `fuzz/entries.rs` for the input layout and what counts
//! as a finding.
#![no_main]

#[path = "../entries.rs"]
mod entries;

libfuzzer_sys::fuzz_target!(
    init: {
        // `VITRINE_FUZZ_SEEDS=dir`: write the fixture model's seeds there and exit
        // (scripts/fuzz.sh builds the corpus this way; no second build needed).
        if let Some(dir) = std::env::var_os("VITRINE_FUZZ_SEEDS") {
            let dir = std::path::PathBuf::from(dir);
            std::fs::create_dir_all(&dir).expect("the seed directory can be made");
            for (name, bytes) in entries::fixture_weight_seeds() {
                std::fs::write(dir.join(name), bytes).expect("the seed can be written");
            }
            std::process::exit(0);
        }
    },
    |data: &[u8]| entries::weight_file(data)
);
