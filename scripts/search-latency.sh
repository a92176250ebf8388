#!/usr/bin/env bash
# Search latency in headless Chromium: as-you-type queries, text-only and personalised,
# against recommend({k: 20}) in the same page (www/search-bench.html; the issue's targets:
# under 5 ms per query on the default catalogue, under 30 ms at 100,000 items, on the CPU
# path). Models: www/models/online-retail.vitrine (the trained default, when present) and
# a synthetic catalogue per ITEMS size (default 100000, `vitrine synth`, titles and search
# index included). Not a test: prints a Markdown table and the JSON of every run.
# Needs scripts/setup.sh done; builds what is missing.
# Usage: bash scripts/search-latency.sh        Env: ITEMS, BUILDS, RUNS, MODEL (a trained
# weight file to copy to www/models/online-retail.vitrine when that is absent).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[search-latency]\033[0m %s\n' "$*" >&2; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
[ -d node_modules/playwright-core ] || PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --silent
bash scripts/build-wasm.sh
mkdir -p www/models
if [ ! -f www/models/online-retail.vitrine ] && [ -n "${MODEL:-}" ]; then cp "$MODEL" www/models/online-retail.vitrine; fi
models=()
[ -f www/models/online-retail.vitrine ] && models+=(models/online-retail.vitrine)
for n in ${ITEMS:-100000}; do
  f=www/models/synthetic-$n.vitrine
  if [ ! -f "$f" ]; then
    cargo build --release --quiet
    "$CARGO_TARGET_DIR/release/vitrine" synth --items "$n" --out "$f" >&2
  fi
  models+=("models/synthetic-$n.vitrine")
done
# shellcheck source=scripts/serve-local.sh
source scripts/serve-local.sh
serve_local
log "serving on $URL; models: ${models[*]}"
BASE_URL="$URL" node scripts/search-latency.mjs "${models[@]}"
