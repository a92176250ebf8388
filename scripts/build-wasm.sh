#!/usr/bin/env bash
# Builds the browser package: two wasm-pack (`--target web`) builds of the same crate with
# the same JS API, chosen at load time by www/vitrine.js:
#   pkg/          wasm SIMD128 (every current browser; the fallback)
#   pkg/relaxed/  SIMD128 + relaxed SIMD (fused multiply-add in the scoring GEMM), loaded
#                 where WebAssembly.validate accepts a relaxed-SIMD instruction
# Each is rebuilt only when a source file is newer than it (FORCE=1 rebuilds both).
# The relaxed build has its own cargo target directory (different RUSTFLAGS).
# wasm-opt is off in Cargo.toml ([package.metadata.wasm-pack]): Debian's binaryen 108 is
# too old for rustc's reference-types output (the optimised module fails at instantiation).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[wasm]\033[0m %s\n' "$*" >&2; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
stale() { [ "${FORCE:-0}" = 1 ] || [ ! -f "$1" ] || [ -n "$(find src Cargo.toml Cargo.lock .cargo -newer "$1" -print -quit 2>/dev/null)" ]; }
if stale pkg/vitrine_bg.wasm; then
  log "wasm-pack build --target web --release (SIMD128) → pkg/"
  nice wasm-pack build --target web --release --out-dir pkg --out-name vitrine
fi
if stale pkg/relaxed/vitrine_bg.wasm; then
  log "wasm-pack build --target web --release (SIMD128 + relaxed SIMD) → pkg/relaxed/"
  RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" CARGO_TARGET_DIR="$CARGO_TARGET_DIR/wasm-relaxed" \
    nice wasm-pack build --target web --release --out-dir pkg/relaxed --out-name vitrine
  rm -f pkg/relaxed/.gitignore pkg/relaxed/package.json pkg/relaxed/README.md
fi
