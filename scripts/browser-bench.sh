#!/usr/bin/env bash
# Browser benchmark: recommend() latency and the scoring head's GFLOP/s per backend in
# headless Chromium, against a mul+add peak measured in the same page, for the trained
# default catalogue and a 100,000-item synthetic one (ITEMS overrides: ITEMS="100000 1000000").
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
  f=www/models/synthetic-$n.vitrine
  # int8 above 200,000 items: a 1,000,000-item f32 file would be 343 MB to download.
  q=f32; [ "$n" -gt 200000 ] && q=int8
  [ -f "$f" ] || "$CARGO_TARGET_DIR/release/vitrine" synth --items "$n" --quantize "$q" --out "$f" >&2
  models+=("models/synthetic-$n.vitrine")
done
# shellcheck source=scripts/serve-local.sh
source scripts/serve-local.sh
serve_local
log "serving on $URL; models: ${models[*]}"
BASE_URL="$URL" node scripts/browser-bench.mjs "${models[@]}"
