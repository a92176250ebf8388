#!/usr/bin/env bash
# Every test: formatting and lints, native tests (GPU parity on lavapipe included), the
# four browser packages (with and without the GPU path), browser tests in headless Chromium (WebGPU on SwiftShader), and the
# storefront end-to-end test with Playwright. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "setup"
bash scripts/setup.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy (native and wasm32)"
cargo clippy --all-targets -- -D warnings
cargo clippy --target wasm32-unknown-unknown --lib -- -D warnings
cargo clippy --target wasm32-unknown-unknown --lib --no-default-features -- -D warnings

step "wasm32 builds: the four browser packages (plain and relaxed SIMD, with and without the GPU path)"
bash scripts/build-wasm.sh

step "native tests (GPU parity on lavapipe required)"
VITRINE_REQUIRE_GPU=1 cargo test

step "browser tests: wasm-pack test in headless Chromium"
# WebGPU runs on SwiftShader (a CPU emulation): the GPU parity test walks every odd shape
# and can pass wasm-bindgen-test's 20-second default on a busy 2-core machine.
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-300}"
CHROMEDRIVER=/usr/bin/chromedriver wasm-pack test --headless --chrome

step "browser tests: the relaxed-SIMD build's kernels against the scalar reference"
# Same parity tests, compiled with relaxed SIMD (fused multiply-add) as the second browser
# build is (scripts/build-wasm.sh); VITRINE_EXPECT_SIMD makes the run fail if the flag
# did not take effect. Own target directory: different RUSTFLAGS.
VITRINE_EXPECT_SIMD=relaxed-simd RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" \
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/wasm-relaxed" \
  CHROMEDRIVER=/usr/bin/chromedriver wasm-pack test --headless --chrome -- --test web_kernels

step "end-to-end storefront test (Playwright + Chromium)"
bash scripts/e2e.sh

step "PyTorch trainer: parity with the Rust model both ways, a 2-process gloo torchrun run, resume"
# Installs torch, safetensors, pyarrow into the cached .venv-py/ (first run: minutes).
bash scripts/test-python.sh
