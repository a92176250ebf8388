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
#   [--int8] (every size an int8 file, synthetic-N-int8.vitrine exported to
#   artifacts/engines/N-int8/: vitrine scores it with its int8 kernels, the rivals run the
#   same dequantised weights in f32; vitrine's agreement is then checked within the
#   quantisation's tolerance, the rivals' still at 1e-4)
#   [--mlp-hidden W1,W2] (the synthetic models' head widths, `vitrine synth --mlp-hidden`;
#   their files and exports are tagged -hW1-W2)
# Env: CHROMIUM (default /usr/bin/chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[engine-bench]\033[0m %s\n' "$*" >&2; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
sizes=4000,100000
int8=
mlp=
prev=
for a in "$@"; do
  [ "$prev" = --sizes ] && sizes=$a
  [ "$prev" = --mlp-hidden ] && mlp=$a
  [ "$a" = --int8 ] && int8=1
  prev=$a
done
if [ ! -d bench/engines/node_modules/onnxruntime-web ] || [ ! -d bench/engines/node_modules/@tensorflow/tfjs-backend-wasm ] \
  || [ ! -d bench/engines/node_modules/playwright-core ]; then
  log "npm ci in bench/engines"
  (cd bench/engines && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi
bash scripts/build-wasm.sh
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/vitrine"
for n in ${sizes//,/ }; do
  tag=$n${int8:+-int8}${mlp:+-h${mlp//,/-}}
  f=www/models/synthetic-$tag.vitrine
  # int8 above 200,000 items (as browser-bench.sh) or with --int8; the rivals get f32.
  q=f32; { [ "$n" -gt 200000 ] || [ -n "$int8" ]; } && q=int8
  [ -f "$f" ] || "$bin" synth --items "$n" --quantize "$q" ${mlp:+--mlp-hidden "$mlp"} --out "$f" >&2
  d=artifacts/engines/$tag
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
