//! The `vitrine` command-line tool (native only).
fn main() {}
