#!/usr/bin/env bash
# Fuzzes vitrine's untrusted inputs with cargo-fuzz (libFuzzer + AddressSanitizer): the
# weight-file loader through model construction, recommend() and search(); Online Retail,
# events/items CSV and sequence-file ingestion; recommend()/search() options as JSON.
# Not part of scripts/test.sh (it needs nightly and takes minutes); docs/fuzzing.md.
#
# Idempotent: installs cargo-fuzz (pinned) and the nightly toolchain when missing, builds
# the seed corpora under fuzz/corpus/ (the committed inputs of tests/data/fuzz/, the
# fixture model in every quantization, a quick model, heads of the shipped data), then
# runs each target for FUZZ_SECONDS (default 60) and prints a summary. Exits non-zero on a
# crash and prints the reproducer's path (add it under tests/data/fuzz/<target>/).
#
# Usage: scripts/fuzz.sh [target ...]      (default: every target)
# Environment: FUZZ_SECONDS (per target), FUZZ_JOBS (parallel fuzzing processes per target,
#   default 1), VITRINE_FUZZ_MODEL (a trained weight file to seed with; default: a --quick
#   model trained once into /tmp/fuzz-quick.vitrine), SHARED_DATA (default ../shared/data
#   relative to the repository; the benchmark sequence files are read from there when
#   present, never copied into the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[fuzz]\033[0m %s\n' "$*" >&2; }

CARGO_FUZZ_VERSION=0.13.1
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
FUZZ_JOBS="${FUZZ_JOBS:-1}"
ALL_TARGETS=(weight_file online_retail events_csv sequence_file options)
TARGETS=("${@:-${ALL_TARGETS[@]}}")
MODEL="${VITRINE_FUZZ_MODEL:-/tmp/fuzz-quick.vitrine}"
SHARED_DATA="${SHARED_DATA:-../shared/data}"
RETAIL=data/online-retail/online_retail.csv.gz

# 1. Tools: a nightly toolchain and cargo-fuzz (pinned; without --locked when the
#    registry mirror lags behind the lock file).
if ! rustup toolchain list | grep -q '^nightly'; then
  log "installing the nightly toolchain"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo +stable install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked ||
    cargo +stable install cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

# The fuzz build has its own target directory (fuzz/target): nightly with sanitizer flags
# shares no artifact with the main crate's builds, and a separate lock keeps it from
# blocking them.
fuzz() { env -u CARGO_TARGET_DIR cargo +nightly fuzz "$@"; }
log "building the fuzz targets (release, AddressSanitizer)"
(cd fuzz && fuzz build -O)
BIN_DIR=fuzz/target/x86_64-unknown-linux-gnu/release

# 2. Seed corpora (rebuilt each run; what the fuzzer adds stays).
mkdir -p fuzz/logs
corpus() { mkdir -p "fuzz/corpus/$1" && echo "fuzz/corpus/$1"; }
for t in "${ALL_TARGETS[@]}"; do
  cp tests/data/fuzz/"$t"/* "$(corpus "$t")"/
done
VITRINE_FUZZ_SEEDS="$(corpus weight_file)" "$BIN_DIR/weight_file" >/dev/null 2>&1
if [ ! -f "$MODEL" ]; then
  log "training a quick model for the weight-file seeds ($MODEL; a few minutes)"
  cargo run --release -- train --quick --out "$MODEL" --artifacts /tmp/fuzz-art
fi
# A trained model is ~3 MB, far over the weight_file target's -max_len (64 KiB, where it
# runs hundreds of inputs a second): it runs once through the target as is (both modes),
# and the fuzzer mutates the small fixture files.
mkdir -p fuzz/seeds-large
{ printf '\x00'; cat "$MODEL"; } >fuzz/seeds-large/quick-model-mode-0
{ printf '\x01'; cat "$MODEL"; } >fuzz/seeds-large/quick-model-mode-1
log "running the trained model through the weight_file target"
"$BIN_DIR/weight_file" fuzz/seeds-large/quick-model-mode-0 fuzz/seeds-large/quick-model-mode-1 \
  >fuzz/logs/weight_file-large-seeds.log 2>&1 || {
  log "the trained model crashes the weight_file target: see fuzz/logs/weight_file-large-seeds.log"
  exit 1
}
# The first lines of a gzip file (zcat's broken pipe is not an error).
head_of() { { zcat "$1" || true; } | head -"$2"; }
head_of "$RETAIL" 300 >/tmp/fuzz-retail-300.csv
cp /tmp/fuzz-retail-300.csv "$(corpus online_retail)/head-300.csv"
gzip -c /tmp/fuzz-retail-300.csv >"$(corpus online_retail)/head-300.csv.gz"
# Online Retail rows as a generic events CSV plus an items CSV (simple rows only).
awk -F, 'NR == 1 { print "user_id,item_id,timestamp,event_type,quantity"; next }
  NF == 8 && $7 != "" { print $7 "," $2 "," $5 ",purchase," $4 }' /tmp/fuzz-retail-300.csv >/tmp/fuzz-events.csv
awk -F, 'NR == 1 { print "item_id,title,price"; next }
  NF == 8 && !seen[$2]++ { print $2 "," $3 "," $6 }' /tmp/fuzz-retail-300.csv >/tmp/fuzz-items.csv
{ cat /tmp/fuzz-events.csv; printf '\x00'; cat /tmp/fuzz-items.csv; } >"$(corpus events_csv)/retail-300"
BENCH="$SHARED_DATA/benchmarks"
if [ -f "$BENCH/Toys_and_Games.txt.gz" ]; then
  head_of "$BENCH/Toys_and_Games.txt.gz" 40 >"$(corpus sequence_file)/toys-40"
  head_of "$BENCH/Sports_and_Outdoors.txt.gz" 40 >"$(corpus sequence_file)/sports-40"
  if command -v python3 >/dev/null; then
    # The first 40 users with the attributes of their items (a real item2attributes shape).
    python3 - "$BENCH/Toys_and_Games_item2attributes.json.gz" "$(corpus sequence_file)/toys-40" \
      >"$(corpus sequence_file)/toys-40-with-attrs" <<'EOF'
import gzip, json, sys
attrs = json.load(gzip.open(sys.argv[1]))
seqs = open(sys.argv[2], "rb").read()
items = {w for line in seqs.decode().split("\n") for w in line.split()[1:]}
sys.stdout.buffer.write(seqs + b"\0" + json.dumps({i: attrs[i] for i in items if i in attrs}).encode())
EOF
  fi
else
  log "no benchmark files under $BENCH: sequence seeds are the committed ones only"
fi

# 3. Fuzz each target for FUZZ_SECONDS.
parallel=()
if [ "$FUZZ_JOBS" -gt 1 ]; then parallel=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS"); fi
status=0
summary=()
for t in "${TARGETS[@]}"; do
  log "fuzzing $t for ${FUZZ_SECONDS}s"
  logf="fuzz/logs/$t.log"
  set +e
  max_len=()
  if [ "$t" = weight_file ]; then max_len=(-max_len=65536); fi
  (cd fuzz && fuzz run -O "$t" "corpus/$t" -- -max_total_time="$FUZZ_SECONDS" \
    "${max_len[@]}" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 "${parallel[@]}") >"$logf" 2>&1
  rc=$?
  set -e
  stat() { { cat "$logf" fuzz/fuzz-*.log 2>/dev/null || true; } | awk -v k="$1" '$1 == k { s += $2 } END { print s + 0 }'; }
  execs=$(stat stat::number_of_executed_units:)
  rate=$(stat stat::average_exec_per_sec:)
  corpus_n=$(find "fuzz/corpus/$t" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    summary+=("$(printf '%-14s ok      %10s execs  %7s exec/s  corpus %5s' "$t" "$execs" "$rate" "$corpus_n")")
  else
    status=1
    repro=$(sed -n 's/.*Test unit written to \([^ ]*\).*/\1/p' "$logf" fuzz/fuzz-*.log 2>/dev/null | head -1)
    summary+=("$(printf '%-14s CRASH   %10s execs  reproducer %s  (log %s)' "$t" "$execs" "${repro:-?}" "$logf")")
  fi
  rm -f fuzz/fuzz-*.log
done

log "summary (${FUZZ_SECONDS}s per target, $FUZZ_JOBS job(s) each)"
printf '  %s\n' "${summary[@]}"
if [ "$status" -ne 0 ]; then
  log "a target crashed: reproduce with (cd fuzz && cargo +nightly fuzz run <target> <reproducer>),"
  log "then commit the input under tests/data/fuzz/<target>/ with the fix (docs/fuzzing.md)"
fi
exit "$status"
