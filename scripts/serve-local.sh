# Sourced by scripts that drive the repository in a browser (e2e.sh, browser-bench.sh,
# search-latency.sh): `serve_local` starts scripts/serve.mjs on a free 127.0.0.1 port in
# the background, stops it when the calling script exits, and sets URL to its base URL
# (http://127.0.0.1:PORT/); the script fails, with the server's output, if it does not start.
serve_local() {
  SERVE_LOG=$(mktemp)
  node scripts/serve.mjs --port 0 >"$SERVE_LOG" 2>&1 &
  SERVER=$!
  trap 'kill "$SERVER" 2>/dev/null || true; rm -f "$SERVE_LOG"' EXIT
  for _ in $(seq 50); do
    grep -q listening "$SERVE_LOG" && break
    sleep 0.1
  done
  URL=$(grep -o 'http://127.0.0.1:[0-9]*/' "$SERVE_LOG" | head -1)
  [ -n "$URL" ] || { cat "$SERVE_LOG" >&2; echo "server did not start" >&2; exit 1; }
}
