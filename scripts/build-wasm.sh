#!/usr/bin/env bash
# Builds the browser package: four wasm-pack (`--target web`) builds of the same crate with
# the same JS API, chosen at load time by www/vitrine.js:
#   pkg/               wasm SIMD128 (every current browser; the fallback)
#   pkg/relaxed/       SIMD128 + relaxed SIMD (fused multiply-add in the scoring GEMM),
#                      loaded where WebAssembly.validate accepts a relaxed-SIMD instruction
#   pkg/lean/          pkg/ without the GPU path (`--no-default-features`: no wgpu), and
#   pkg/lean-relaxed/  pkg/relaxed/ without it: loaded where the page has no WebGPU
#                      (`navigator.gpu` absent) or asks for the `simd`/`scalar` backend,
#                      about 50 KB gzip smaller
# Each is rebuilt only when a source file is newer than it (FORCE=1 rebuilds all), with
# Cargo.toml's `wasm` profile (fat LTO, one code unit, dependencies at opt-level "s") and
# LLVM's inline threshold lowered to 25 (SIZE_FLAGS): a smaller download at the same
# scoring speed (docs/benchmarks/engines-log.md, "A smaller module at the same speed").
# The relaxed builds have their own cargo target directory (different RUSTFLAGS); a lean
# build shares its full build's directory (its dependencies but wgpu's are the same).
# wasm-pack's own wasm-opt is off in Cargo.toml ([package.metadata.wasm-pack]): Debian's
# binaryen 108 is too old for rustc's reference-types output (the optimised module fails at
# instantiation). Instead each fresh build goes through a current wasm-opt, the npm package
# `binaryen` (pinned below), installed once under target/tools/ (WASM_OPT=0 skips it;
# WASM_OPT_FLAGS overrides the optimisation level). The default is -O3 with functions
# that have one caller inlined only when small (`-ocimfs 20`): V8 runs a module's first
# calls in baseline code and a long call stays there until it returns, so a loop's
# per-chunk function kept apart is optimised during the first load and request instead
# of staying inlined in one long call (the first `fromBytes` at 100,000 items: 293–318
# against 330–380 ms; warm requests unchanged; 15 KB less gzipped;
# docs/benchmarks/engines-log.md, "The first request after a load").
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[wasm]\033[0m %s\n' "$*" >&2; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
BINARYEN_VERSION=132.0.0
TOOLS="$CARGO_TARGET_DIR/tools/binaryen-$BINARYEN_VERSION"
SIZE_FLAGS="-C llvm-args=-inline-threshold=25"
PLAIN_FLAGS="-C target-feature=+simd128 $SIZE_FLAGS"
stale() { [ "${FORCE:-0}" = 1 ] || [ ! -f "$1" ] || [ -n "$(find src Cargo.toml Cargo.lock .cargo -newer "$1" -print -quit 2>/dev/null)" ]; }
# wasm-opt on one fresh module, in place; the features rustc's output uses are enabled
# explicitly (nothing newer is introduced).
optimise() {
  [ "${WASM_OPT:-1}" = 1 ] || return 0
  if [ ! -x "$TOOLS/node_modules/.bin/wasm-opt" ]; then
    log "npm install binaryen@$BINARYEN_VERSION (wasm-opt) into $TOOLS"
    mkdir -p "$TOOLS"
    npm install --prefix "$TOOLS" --no-audit --no-fund --silent "binaryen@$BINARYEN_VERSION"
  fi
  local before after
  before=$(stat -c %s "$1")
  # shellcheck disable=SC2086
  "$TOOLS/node_modules/.bin/wasm-opt" ${WASM_OPT_FLAGS:--O3 -ocimfs 20} "$@" \
    --enable-simd --enable-relaxed-simd --enable-bulk-memory --enable-sign-ext \
    --enable-mutable-globals --enable-nontrapping-float-to-int --enable-reference-types \
    --enable-multivalue -o "$1.opt"
  mv "$1.opt" "$1"
  after=$(stat -c %s "$1")
  log "wasm-opt ${WASM_OPT_FLAGS:--O3 -ocimfs 20} $1: $before → $after bytes"
}
if stale pkg/vitrine_bg.wasm; then
  log "wasm-pack build --target web --profile wasm (SIMD128) → pkg/"
  RUSTFLAGS="$PLAIN_FLAGS" nice wasm-pack build --target web --profile wasm --out-dir pkg --out-name vitrine
  optimise pkg/vitrine_bg.wasm
fi
if stale pkg/relaxed/vitrine_bg.wasm; then
  log "wasm-pack build --target web --profile wasm (SIMD128 + relaxed SIMD) → pkg/relaxed/"
  RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd $SIZE_FLAGS" CARGO_TARGET_DIR="$CARGO_TARGET_DIR/wasm-relaxed" \
    nice wasm-pack build --target web --profile wasm --out-dir pkg/relaxed --out-name vitrine
  rm -f pkg/relaxed/.gitignore pkg/relaxed/package.json pkg/relaxed/README.md
  optimise pkg/relaxed/vitrine_bg.wasm
fi
if stale pkg/lean/vitrine_bg.wasm; then
  log "wasm-pack build --target web --profile wasm --no-default-features (SIMD128, no GPU path) → pkg/lean/"
  RUSTFLAGS="$PLAIN_FLAGS" nice wasm-pack build --target web --profile wasm --out-dir pkg/lean --out-name vitrine \
    -- --no-default-features
  rm -f pkg/lean/.gitignore pkg/lean/package.json pkg/lean/README.md
  optimise pkg/lean/vitrine_bg.wasm
fi
if stale pkg/lean-relaxed/vitrine_bg.wasm; then
  log "wasm-pack build --target web --profile wasm --no-default-features (SIMD128 + relaxed SIMD, no GPU path) → pkg/lean-relaxed/"
  RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd $SIZE_FLAGS" CARGO_TARGET_DIR="$CARGO_TARGET_DIR/wasm-relaxed" \
    nice wasm-pack build --target web --profile wasm --out-dir pkg/lean-relaxed --out-name vitrine \
    -- --no-default-features
  rm -f pkg/lean-relaxed/.gitignore pkg/lean-relaxed/package.json pkg/lean-relaxed/README.md
  optimise pkg/lean-relaxed/vitrine_bg.wasm
fi
