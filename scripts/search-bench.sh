#!/usr/bin/env bash
# Search comparison: vitrine's product search against MiniSearch and Orama, quality on the
# held-out queries and per-query latency in headless Chromium (bench/search/README.md).
# Installs the bench's pinned npm packages locally (bench/search/node_modules), writes the
# inputs with the JS stand-in generator when artifacts/search/ lacks them, tunes each
# engine on the validation queries, measures on the test queries and writes
# artifacts/search-bench.json (Markdown table on stdout). Not part of scripts/test.sh.
# Usage: bash scripts/search-bench.sh [extra run.mjs flags, e.g. --rounds 5 --no-tune]
# Env: INPUTS (default artifacts/search), CHROMIUM (default /usr/bin/chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[search-bench]\033[0m %s\n' "$*" >&2; }
INPUTS="${INPUTS:-artifacts/search}"
if [ ! -d bench/search/node_modules/minisearch ] || [ ! -d bench/search/node_modules/@orama/orama ] \
  || [ ! -d bench/search/node_modules/playwright-core ]; then
  log "npm ci in bench/search"
  (cd bench/search && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi
if [ ! -f "$INPUTS/catalog.json" ] || [ ! -f "$INPUTS/queries.jsonl" ]; then
  log "no inputs in $INPUTS: writing them with bench/search/make-queries.mjs (JS stand-in)"
  node bench/search/make-queries.mjs --out "$INPUTS" >&2
fi
node bench/search/run.mjs --browser --inputs "$INPUTS" "$@"
