#!/usr/bin/env bash
# The PyTorch trainer's tests (python/, package vitrine_torch): parity with the Rust
# model both ways (1e-4), a 2-process gloo torchrun run whose file the Rust CLI loads,
# and checkpoint/resume. Installs the Python side into a cached virtual environment under
# .venv-py/ (ignored; reused when the pinned versions are already there: the PyTorch wheel
# on Linux from PyPI pulls several GB of CUDA packages, so the first install takes
# minutes). If PyTorch cannot be installed the script fails and says why: nothing is
# skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VITRINE_PY_VENV:-.venv-py}"
TORCH_VERSION=2.9.1
PINS=(safetensors==0.6.2 pyarrow==21.0.0 numpy==2.3.3 pytest==8.4.2 wheel==0.45.1)
CPU_INDEX=https://download.pytorch.org/whl/cpu

log() { printf 'test-python: %s\n' "$*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
PY="$(cd "$VENV" && pwd)/bin/python"

# Installed at the pinned versions? (torch's version may carry a local tag: 2.9.1+cpu.)
pinned() {
  "$PY" - "$TORCH_VERSION" "${PINS[@]}" <<'EOF'
import sys
from importlib.metadata import version, PackageNotFoundError
want = {"torch": sys.argv[1]}
want.update(dict(p.split("==") for p in sys.argv[2:]))
try:
    ok = all(version(k).split("+")[0] == v for k, v in want.items())
except PackageNotFoundError:
    ok = False
sys.exit(0 if ok else 1)
EOF
}

if ! pinned; then
  t0=$(date +%s)
  # The CPU-only wheel (about 200 MB) when its index is reachable, else PyPI's (CUDA deps).
  if "$VENV/bin/pip" install -q --timeout 15 --retries 1 --index-url "$CPU_INDEX" "torch==$TORCH_VERSION" 2>/dev/null; then
    log "torch $TORCH_VERSION from the CPU wheel index"
  elif "$VENV/bin/pip" install -q "torch==$TORCH_VERSION"; then
    log "torch $TORCH_VERSION from PyPI (the CPU wheel index was unreachable)"
  else
    log "error: could not install torch==$TORCH_VERSION from $CPU_INDEX or PyPI (see pip's message above)"
    exit 1
  fi
  "$VENV/bin/pip" install -q "${PINS[@]}" || { log "error: could not install ${PINS[*]}"; exit 1; }
  log "installed the Python side in $(( $(date +%s) - t0 )) s"
  pinned || { log "error: the installed versions are not the pinned ones"; exit 1; }
fi
# The package itself (editable, no dependencies to resolve: quick when already there),
# reinstalled when the venv's copy points at another checkout (a venv reused across them).
if ! "$PY" -c 'import os, sys, vitrine_torch as v; sys.exit(os.path.realpath(v.__file__).startswith(os.path.realpath("python") + os.sep) is False)' 2>/dev/null; then
  "$VENV/bin/pip" install -q --no-deps --no-build-isolation -e python
fi

cargo build --release --bin vitrine
TARGET_DIR=$("$PY" -c 'import json,subprocess; print(json.loads(subprocess.check_output(["cargo","metadata","--format-version","1","--no-deps"]))["target_directory"])')
export VITRINE_BIN="$TARGET_DIR/release/vitrine"

cd python
exec "$PY" -m pytest -q -p no:cacheprovider tests
