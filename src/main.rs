//! The `vitrine` command-line tool, for the store's developers (native only): trains the
//! model on the store's logs, evaluates it against the baselines, writes the weight file
//! the storefront downloads, and answers `recommend` with the browser's scoring code.
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod cli;

/// Exit status of a program whose output pipe was closed (128 + SIGPIPE), as `head`'s
/// upstream commands end.
#[cfg(not(target_arch = "wasm32"))]
const BROKEN_PIPE_EXIT: u8 = 141;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    // A closed stdout (`vitrine memory F | head -3`) ends the program quietly with
    // status 141: `println!` panics on a broken pipe, so that panic (and only it) is
    // neither printed nor reported as a crash.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_broken_pipe(info.payload()) {
            report(info);
        }
    }));
    match std::panic::catch_unwind(cli::run) {
        Ok(Ok(())) => std::process::ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
        Err(payload) if is_broken_pipe(&*payload) => BROKEN_PIPE_EXIT.into(),
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// Whether a panic is `println!`'s on a closed stdout.
#[cfg(not(target_arch = "wasm32"))]
fn is_broken_pipe(payload: &(dyn std::any::Any + Send)) -> bool {
    let message = (payload.downcast_ref::<String>().map(String::as_str))
        .or_else(|| payload.downcast_ref::<&str>().copied());
    message.is_some_and(|m| m.starts_with("failed printing to stdout") && m.contains("Broken pipe"))
}
