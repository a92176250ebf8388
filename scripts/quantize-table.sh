#!/usr/bin/env bash
# The README's quantisation table: the trained default model written as f32, f16 and int8,
# each file's size raw and gzipped (-9), and its full-ranking NDCG@10 on the test split.
# Usage: bash scripts/quantize-table.sh [MODEL]   (default www/models/online-retail.vitrine)
set -euo pipefail
cd "$(dirname "$0")/.."
M="${1:-www/models/online-retail.vitrine}"
[ -f "$M" ] || { echo "no model at $M: run 'cargo run --release -- train' first" >&2; exit 1; }
cargo build --release --quiet
B=target/release/vitrine
[ -n "${CARGO_TARGET_DIR:-}" ] && B="$CARGO_TARGET_DIR/release/vitrine"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cp "$M" "$T/f32.vitrine"
"$B" quantize --model "$M" --to f16 --out "$T/f16.vitrine" >/dev/null
"$B" quantize --model "$M" --to int8 --out "$T/int8.vitrine" >/dev/null
echo "| weights | file size | gzipped | NDCG@10 (full ranking) |"
echo "|---|---:|---:|---:|"
for q in f32 f16 int8; do
  f="$T/$q.vitrine"
  raw=$(stat -c %s "$f")
  gz=$(gzip -9 -c "$f" | wc -c)
  # The first model row (the per-bucket table below it has one too); awk reads to the
  # end, so the pipe never closes early under pipefail.
  ndcg=$("$B" eval --model "$f" --protocol full 2>/dev/null | awk -F'|' '/^\| model \(deep/ && !n++ {print $6}')
  echo "| $q | $raw B | $gz B | $ndcg |"
done
