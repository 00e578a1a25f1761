#!/usr/bin/env bash
# Reference benchmark: automerge-repo sync server (server.mjs) driven by client.mjs.
#
#   bash run.sh                 # full run: 10,000 docs, fetch in batches of 250, latency 10 subs x 50/s x 10 s
#   COUNT=200 bash run.sh       # smoke run
#
# Env overrides (defaults in brackets):
#   COUNT [10000]           documents to preload
#   PRELOAD_BATCH [250]     documents created per preload round (each round waits for the hub's ack;
#                           all 10,000 in one round crashed the reference server, see README)
#   FETCH_BATCHES [250]     space-separated batch sizes; one fetch (fresh peer) per size
#   SUBSCRIBERS [10]  RATE [50]  DURATION [10] (seconds)  DOCS [1]   latency workload
#   KEEPALIVE_MS [5000]     server's WebSocket keepalive (ping interval; a client that misses one ping is
#                           dropped). 5000 is the adapter default, i.e. the reference configuration.
#   COLD_FETCH [0]          1 = restart the server (same data dir) after preload, so fetches load from disk
#   OUT [unset]             also append the JSON lines to this file
#   KEEP_DATA [0]           1 = keep the temp dir (server data, ids.json, server log)
# Only 127.0.0.1 is contacted. The server is stopped (SIGTERM) on exit.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

COUNT="${COUNT:-10000}"
PRELOAD_BATCH="${PRELOAD_BATCH:-250}"
FETCH_BATCHES="${FETCH_BATCHES:-250}"
SUBSCRIBERS="${SUBSCRIBERS:-10}"
RATE="${RATE:-50}"
DURATION="${DURATION:-10}"
DOCS="${DOCS:-1}"
COLD_FETCH="${COLD_FETCH:-0}"
KEEP_DATA="${KEEP_DATA:-0}"

if [ ! -d node_modules/@automerge/automerge-repo ]; then
  npm ci --no-audit --no-fund >&2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/heph-peer-bench.XXXXXX")"
server_pid=""

stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}

cleanup() {
  stop_server
  if [ -s "$work/server.log" ]; then
    echo "run.sh: server log:" >&2
    sed 's/^/  /' "$work/server.log" >&2
  fi
  if [ "$KEEP_DATA" = "1" ]; then
    echo "run.sh: kept $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=""
start_server() {
  : >"$work/server.out"
  node server.mjs --port 0 --dir "$work/data" >"$work/server.out" 2>>"$work/server.log" &
  server_pid=$!
  for _ in $(seq 1 200); do
    port="$(sed -n 's/^{"port":\([0-9]*\)}$/\1/p' "$work/server.out" | head -n1)"
    [ -n "$port" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "run.sh: server did not start; log:" >&2
  cat "$work/server.log" >&2 || true
  exit 1
}

report() {
  # Print a client's JSON line; also append it to $OUT when set.
  local line="$1"
  echo "$line"
  if [ -n "${OUT:-}" ]; then echo "$line" >>"$OUT"; fi
}

status=0
run_client() {
  local out rc=0
  out="$(node client.mjs "$@")" || rc=$?
  [ -n "$out" ] && report "$out"
  if [ "$rc" -ne 0 ]; then
    echo "run.sh: client $1 exited $rc" >&2
    status=1
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    report "{\"op\":\"server\",\"error\":\"server exited during $1\"}"
    server_pid=""
    exit 1
  fi
}

start_server
echo "run.sh: server on 127.0.0.1:$port, data in $work/data" >&2

run_client preload --url "ws://127.0.0.1:$port" --count "$COUNT" --batch "$PRELOAD_BATCH" --out "$work/ids.json"

if [ "$COLD_FETCH" = "1" ]; then
  stop_server
  start_server
  echo "run.sh: restarted server on 127.0.0.1:$port (cold fetch)" >&2
fi

for b in $FETCH_BATCHES; do
  run_client fetch --url "ws://127.0.0.1:$port" --ids "$work/ids.json" --batch "$b"
done

run_client latency --url "ws://127.0.0.1:$port" --subscribers "$SUBSCRIBERS" --rate "$RATE" \
  --seconds "$DURATION" --docs "$DOCS"

stop_server
exit "$status"
