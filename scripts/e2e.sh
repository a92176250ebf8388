#!/usr/bin/env bash
# End-to-end test of the demo storefront in headless Chromium (Playwright, /usr/bin/chromium;
# never downloads a browser). Idempotent: installs playwright-core, builds pkg/ (both builds)
# when missing or older than the sources, trains the test's own quick model
# (www/models/e2e-quick.vitrine, never the main command's www/models/online-retail.vitrine)
# when it is missing or older than the sources or data, serves the repository on a free port,
# runs tests/e2e/storefront.mjs, history.mjs and loader.mjs against it, then
# tests/e2e/engines.mjs (vitrine, ONNX Runtime Web and TF.js agree on a tiny synthetic
# catalogue; npm ci in bench/engines only when its packages are missing).
# Screenshots land in artifacts/. Usage: scripts/e2e.sh
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[e2e]\033[0m %s\n' "$*" >&2; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
MODEL=www/models/e2e-quick.vitrine

# 1. playwright-core (driver only).
if [ ! -d node_modules/playwright-core ]; then
  log "npm install (playwright-core)"
  if [ -f package-lock.json ]; then
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent
  else
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --silent
  fi
fi

# 2. The wasm packages (pkg/, pkg/relaxed/ and their lean twins without the GPU path),
#    rebuilt when a source file is newer.
bash scripts/build-wasm.sh

# 3. The test's own model (TRAIN_ARGS overrides the training options). --quick (d = 32,
#    4 epochs, transition memory from plain counts) takes a minute or two. It lives at its
#    own path so that `scripts/run.sh` never serves it in place of the full default model.
#    Retrained when a source or the data is newer than it: a stale model once hid a
#    failure that a fresh clone's model showed.
if [ ! -f "$MODEL" ] || [ -n "$(find src Cargo.toml Cargo.lock data -newer "$MODEL" -print -quit 2>/dev/null)" ]; then
  log "training a quick model into $MODEL (vitrine train ${TRAIN_ARGS:---quick})"
  mkdir -p "$(dirname "$MODEL")"
  # shellcheck disable=SC2086
  nice cargo run --release -- train ${TRAIN_ARGS:---quick} --out "$MODEL" --artifacts artifacts/e2e-model
fi

# 3b. A file larger than the streamed load's 8 MiB rate window (tests/e2e/loader.mjs: its
#     checksum taken as the bytes arrive; stripped of it, its SHA-256 taken as the bytes
#     arrive on a slow download, by WebCrypto on a fast one): a
#     40,000-item synthetic model, 16 MB, written in a fraction of a second when missing
#     or older than the sources.
STREAM_MODEL=www/models/e2e-stream.vitrine
if [ ! -f "$STREAM_MODEL" ] || [ -n "$(find src Cargo.toml Cargo.lock -newer "$STREAM_MODEL" -print -quit 2>/dev/null)" ]; then
  cargo run --release --quiet -- synth --items 40000 --out "$STREAM_MODEL"
fi

# 4. Serve on a free port and run the test.
mkdir -p artifacts
# shellcheck source=scripts/serve-local.sh
source scripts/serve-local.sh
serve_local
log "serving on $URL"
BASE_URL="$URL" MODEL_URL="models/$(basename "$MODEL")" node tests/e2e/storefront.mjs
BASE_URL="$URL" MODEL_URL="models/$(basename "$MODEL")" node tests/e2e/history.mjs
BASE_URL="$URL" MODEL_URL="models/$(basename "$MODEL")" STREAM_MODEL_URL="models/$(basename "$STREAM_MODEL")" node tests/e2e/loader.mjs

# 5. The engine comparison's smoke test: a 300-item synthetic model (once) and its ONNX
#    export (every run, well under a second), then one call per engine, checked to agree.
if [ ! -d bench/engines/node_modules/onnxruntime-web ] || [ ! -d bench/engines/node_modules/@tensorflow/tfjs-backend-wasm ]; then
  log "npm ci in bench/engines (onnxruntime-web, tfjs)"
  (cd bench/engines && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi
#    Twice: the default blocks, and LiGR's (`--blocks ligr`: gated residuals, SwiGLU),
#    which the ONNX graph and the TF.js layers build with their own operations.
for blocks in plain ligr; do
  SMOKE_MODEL=www/models/engines-smoke-$blocks.vitrine
  [ -f "$SMOKE_MODEL" ] || cargo run --release --quiet -- synth --items 300 --blocks "$blocks" --out "$SMOKE_MODEL"
  cargo run --release --quiet -- export-onnx --model "$SMOKE_MODEL" --out "artifacts/engines-smoke-$blocks"
  BASE_URL="$URL" SMOKE_MODEL="$SMOKE_MODEL" SMOKE_DIR="artifacts/engines-smoke-$blocks/" node tests/e2e/engines.mjs
done
