#!/usr/bin/env bash
# The main job: set up a fresh machine, train on the default dataset (reused when already
# trained), build the wasm package, and serve the demo storefront on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-8080}"
MODEL=www/models/online-retail.vitrine

bash scripts/setup.sh
# Serve the full default model: train it when missing, or when the file there is a reduced
# or outdated one (a --quick or partial training run written to the same path; a file
# without the trained event kinds or the basket section: scripts/model-info.mjs).
status=0
[ -f "$MODEL" ] && { node scripts/model-info.mjs "$MODEL" >&2 || status=$?; }
if [ ! -f "$MODEL" ] || [ "$status" != 0 ]; then
  echo "[run] training the full default model on Online Retail (about 5 minutes) → $MODEL" >&2
  cargo run --release -- train --out "$MODEL"
else
  echo "[run] reusing $MODEL (delete it to retrain)" >&2
fi
echo "[run] building the wasm packages (pkg/, pkg/relaxed/, pkg/lean/, pkg/lean-relaxed/)" >&2
bash scripts/build-wasm.sh
echo "[run] storefront: http://127.0.0.1:$PORT/www/" >&2
exec node scripts/serve.mjs --port "$PORT"
