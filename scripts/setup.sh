#!/usr/bin/env bash
# Installs everything vitrine's build, demo and tests need on a fresh Debian machine with
# Rust (rustup) installed. Idempotent: every step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi

# 1. Debian packages: headless browser + driver (wasm-pack test, Playwright), lavapipe
#    (native wgpu tests on the CPU), binaryen (wasm-opt).
need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || need_apt+=(mesa-vulkan-drivers)
[ -x /usr/bin/wasm-opt ] || need_apt+=(binaryen)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# 2. Rust target for the browser build.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# 3. wasm-bindgen-cli pinned to the wasm-bindgen version in Cargo.lock, and wasm-pack.
wb_version=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wb_version" ]; then
  log "cargo install wasm-bindgen-cli $wb_version (a few minutes)"
  cargo install -q wasm-bindgen-cli --version "$wb_version" --force
fi
if ! command -v wasm-pack >/dev/null; then
  log "cargo install wasm-pack (a few minutes)"
  cargo install -q wasm-pack
fi

# 4. Playwright driver for the end-to-end test (never downloads a browser: it drives
#    Debian's /usr/bin/chromium).
if [ -f package.json ] && [ ! -d node_modules/playwright-core ]; then
  log "npm install (playwright-core)"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --silent
fi
log "ready"
