#!/usr/bin/env bash
# Search comparison: vitrine's product search (text only and personalised) against
# MiniSearch and Orama, quality on the held-out queries and per-query latency in headless
# Chromium (bench/search/README.md). Not part of scripts/test.sh.
# Steps: npm ci in bench/search (pinned packages) when missing; the default model
# (www/models/online-retail.vitrine, `vitrine train`, about 15 minutes on 2 cores) when
# missing; pkg/ (scripts/build-wasm.sh, rebuilt only when stale); the inputs
# (`vitrine search-eval --write-queries`, which also prints vitrine's own quality table);
# then bench/search/run.mjs --browser, which tunes MiniSearch and Orama on the validation
# queries, measures every engine on the test queries, checks vitrine's text-only ranks
# against search-eval's, and writes artifacts/search-bench.json (Markdown on stdout).
# Usage: bash scripts/search-bench.sh [extra run.mjs flags, e.g. --rounds 5 --no-tune]
# Env: MODEL (default www/models/online-retail.vitrine), INPUTS (default artifacts/search),
#      KEEP_INPUTS=1 (reuse existing inputs), CHROMIUM (default /usr/bin/chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[search-bench]\033[0m %s\n' "$*" >&2; }
MODEL="${MODEL:-www/models/online-retail.vitrine}"
INPUTS="${INPUTS:-artifacts/search}"
if [ ! -d bench/search/node_modules/minisearch ] || [ ! -d bench/search/node_modules/@orama/orama ] \
  || [ ! -d bench/search/node_modules/playwright-core ]; then
  log "npm ci in bench/search"
  (cd bench/search && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi
if [ ! -f "$MODEL" ]; then
  [ "$MODEL" = www/models/online-retail.vitrine ] || { log "no model at $MODEL"; exit 1; }
  log "no model at $MODEL: training the default model (cargo run --release -- train, about 15 minutes)"
  cargo run --release -- train >&2
fi
bash scripts/build-wasm.sh
if [ "${KEEP_INPUTS:-0}" = 1 ] && [ -f "$INPUTS/catalog.json" ] && [ -f "$INPUTS/queries.jsonl" ]; then
  log "reusing the inputs in $INPUTS (KEEP_INPUTS=1)"
else
  log "writing the inputs from $MODEL: vitrine search-eval --write-queries $INPUTS"
  cargo run --release -- search-eval --model "$MODEL" --write-queries "$INPUTS" >&2
fi
node --expose-gc bench/search/run.mjs --browser --inputs "$INPUTS" --model "$MODEL" "$@"
