//! The `vitrine` command-line tool, for the store's developers (native only): trains the
//! model on the store's logs, evaluates it against the baselines, writes the weight file
//! the storefront downloads, and answers `recommend` with the browser's scoring code.
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod cli;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    match cli::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
