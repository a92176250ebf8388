#!/usr/bin/env bash
# Browser benchmark: recommend() latency and the scoring head's GFLOP/s per backend in
# headless Chromium, against a mul+add peak measured in the same page, for the trained
# default catalogue and a 100,000-item synthetic one (ITEMS overrides: ITEMS="100000 1000000"),
# each synthetic catalogue as an f32 and an int8 weight file (QUANTS overrides, e.g.
# QUANTS=int8): the int8 file keeps its item vectors int8 in wasm memory and scores them
# with the integer kernels, so the table's int8 rows sit beside the f32 ones of the same
# run, with each page's wasm memory.
# Needs scripts/setup.sh done; builds what is missing. Usage: bash scripts/browser-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
[ -d node_modules/playwright-core ] || PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --silent
bash scripts/build-wasm.sh
cargo build --release --quiet
models=()
[ -f www/models/online-retail.vitrine ] && models+=(models/online-retail.vitrine)
for n in ${ITEMS:-100000}; do
  for q in ${QUANTS:-f32 int8}; do
    # (a 1,000,000-item f32 file is 343 MB to download; QUANTS=int8 skips it)
    f=www/models/synthetic-$n-$q.vitrine
    [ -f "$f" ] || "$CARGO_TARGET_DIR/release/vitrine" synth --items "$n" --quantize "$q" --out "$f" >&2
    models+=("models/synthetic-$n-$q.vitrine")
  done
done
# shellcheck source=scripts/serve-local.sh
source scripts/serve-local.sh
serve_local
log "serving on $URL; models: ${models[*]}"
BASE_URL="$URL" node scripts/browser-bench.mjs "${models[@]}"
