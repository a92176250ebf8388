#!/usr/bin/env bash
# Inference comparison: vitrine's recommend() and scoring head against ONNX Runtime Web and
# TensorFlow.js (wasm backend) on the same model and weights, in headless Chromium
# (bench/engines/README.md). Not part of scripts/test.sh.
# Steps: npm ci in bench/engines (pinned onnxruntime-web, @tensorflow/tfjs-core,
# @tensorflow/tfjs-backend-wasm, playwright-core) when missing; pkg/ (scripts/build-wasm.sh,
# rebuilt only when stale); the release binary; per catalogue size a synthetic model
# (`vitrine synth`, int8 above 200,000 items) and its export (`vitrine export-onnx`: ONNX
# graphs, tensors for TF.js, vitrine's reference result), each only when missing; then
# bench/engines/run.mjs, which checks the engines agree (1e-4) before timing and writes
# artifacts/engine-bench.{json,md,svg}.
# Usage: bash scripts/engine-bench.sh [--sizes 4000,100000,1000000] [--runs 25] [--cold-runs 7] [--no-threads]
# Env: CHROMIUM (default /usr/bin/chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[engine-bench]\033[0m %s\n' "$*" >&2; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
sizes=4000,100000
prev=
for a in "$@"; do [ "$prev" = --sizes ] && sizes=$a; prev=$a; done
if [ ! -d bench/engines/node_modules/onnxruntime-web ] || [ ! -d bench/engines/node_modules/@tensorflow/tfjs-backend-wasm ] \
  || [ ! -d bench/engines/node_modules/playwright-core ]; then
  log "npm ci in bench/engines"
  (cd bench/engines && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi
bash scripts/build-wasm.sh
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/vitrine"
for n in ${sizes//,/ }; do
  f=www/models/synthetic-$n.vitrine
  # int8 above 200,000 items (as browser-bench.sh): the download; every engine gets f32.
  q=f32; [ "$n" -gt 200000 ] && q=int8
  [ -f "$f" ] || "$bin" synth --items "$n" --quantize "$q" --out "$f" >&2
  d=artifacts/engines/$n
  if [ ! -f "$d/reference.json" ] || [ "$f" -nt "$d/reference.json" ] || [ "$bin" -nt "$d/reference.json" ]; then
    log "exporting $f to $d (vitrine export-onnx)"
    "$bin" export-onnx --model "$f" --out "$d" >&2
  fi
done
# shellcheck source=scripts/serve-local.sh
source scripts/serve-local.sh
serve_local
log "serving on $URL; sizes $sizes"
BASE_URL="$URL" node bench/engines/run.mjs "$@"
