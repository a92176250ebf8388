#!/usr/bin/env bash
# GPU benchmark of the scoring head on a real GPU machine (e.g. an NVIDIA H200), native
# wgpu over Vulkan. Prints the GPU rows of benches/kernels.rs as GFLOP/s:
#   gpu_scores        one request: upload the query, run the head, read all logits back
#   gpu_kernels_only  20 head evaluations per submission, one logit read back
#                     (_f16, _int8: the item vectors held as f16 / int8 on the GPU)
#   gpu_top10         one request with the GPU top-k (10 candidates per chunk come back)
# n = 4,000 / 100,000 / 1,000,000 (VITRINE_BENCH_LARGE=0 drops the last), d = h = 64.
#
#   scripts/gpu-bench.sh                 # with cargo: cargo bench --bench kernels -- gpu
#   VITRINE_BENCH_BIN=.benchbin/kernels scripts/gpu-bench.sh
#                                        # without cargo on the GPU machine: run a bench
#                                        # binary built beforehand with
#                                        # `cargo bench --bench kernels --no-run` (copy the
#                                        # "Executable" it prints to .benchbin/kernels).
#
# Vulkan loader: if ./.gl/*.deb exist (libvulkan1 etc., downloaded beforehand where a
# registry is reachable), they are unpacked first; the NVIDIA ICD in /usr/local/nvidia is
# used when present and VK_DRIVER_FILES is unset.
set -euo pipefail
cd "$(dirname "$0")/.."

if compgen -G ".gl/*.deb" >/dev/null; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ]; then
    export VK_DRIVER_FILES="$icd"
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader || true

export VITRINE_BENCH_LARGE="${VITRINE_BENCH_LARGE:-1}"
log=$(mktemp)
if [ -n "${VITRINE_BENCH_BIN:-}" ]; then
    "$VITRINE_BENCH_BIN" --bench gpu 2>&1 | tee "$log"
else
    cargo bench --bench kernels -- gpu 2>&1 | tee "$log"
fi

echo
echo "== GPU scoring head, d=64 h=64 (elements = FLOPs) =="
# criterion prints the id line, then 'time:' and 'thrpt:' lines; Gelem/s = GFLOP/s.
awk '/^gpu_n[0-9]+\// { id = $1 }
     /thrpt:/ && id != "" { c = 0
         for (i = 1; i <= NF; i++) if ($i ~ /elem\/s/ && ++c == 2) { v = $(i - 1); u = $i }
         sub(/elem\/s/, "FLOP/s", u)
         printf "%-32s %s %s (median)\n", id, v, u; id = "" }
     /gpu adapter:/ { print }' "$log" | sort -u
rm -f "$log"
