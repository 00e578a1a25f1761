#!/usr/bin/env bash
# Side-by-side benchmark of the hub (`hephd --mode server`) against the
# reference automerge-repo sync server (benches/peer), in one run. See
# benches/README.md, "Hub".
#
#   benches/hub/run.sh               # full run: ~5 minutes plus the build (the reference preload alone ~2 min)
#   QUICK=1 benches/hub/run.sh       # smoke run: 1,000 documents, short phases, 200 connections
#
# Environment:
#   QUICK=1          smaller everything, for a smoke test (numbers not comparable with the targets)
#   COUNT=10000      documents preloaded (both sides)
#   CONNS=1000       idle connections / fan-out subscribers (heph)
#   SKIP_PEER=1      run only the heph harness
#   KEEPALIVE_MS=N   passed on to the reference server (benches/peer): 600000 turns its keepalive drops off
#   OUT=DIR          also copy the JSON lines (heph.jsonl, peer.jsonl, …) and summary.md to DIR
#   KEEP=1           keep the temp dir
#
# Needs: cargo, python3, node (>= 20) for the reference.
# Only 127.0.0.1 is used. Both servers are stopped at the end of their part.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
QUICK=${QUICK:-0}
SKIP_PEER=${SKIP_PEER:-0}

if [[ $QUICK == 1 ]]; then
  COUNT=${COUNT:-1000} CONNS=${CONNS:-200}
  LAT_SECONDS=3 REF_SECONDS=3 FAN_SECONDS=3 FAN_MAX_PUSHES=500
else
  COUNT=${COUNT:-10000} CONNS=${CONNS:-1000}
  LAT_SECONDS=10 REF_SECONDS=10 FAN_SECONDS=10 FAN_MAX_PUSHES=3000
fi

for tool in cargo python3; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is needed" >&2; exit 1; }
done
if [[ $SKIP_PEER != 1 ]]; then
  command -v node >/dev/null || { echo "run.sh: node is needed for the reference (or SKIP_PEER=1)" >&2; exit 1; }
fi

say() { printf '\n=== %s\n' "$*" >&2; }

COMMIT="$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && git diff --quiet HEAD -- engine hub 2>/dev/null || echo ' with uncommitted engine/ or hub/ changes')"
say "building (cargo build --release -p heph-hub -p heph-benches)"
(cd "$ROOT" && cargo build --release -p heph-hub -p heph-benches)
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

WORK=$(mktemp -d "${TMPDIR:-/tmp}/heph-hub-bench.XXXXXX")
if [[ ${KEEP:-0} == 1 ]]; then
  trap 'echo "run.sh: kept $WORK" >&2' EXIT
else
  trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK/bin"
# Frozen copies: others may rebuild target/ while this runs.
cp "$TARGET_DIR/release/hephd" "$TARGET_DIR/release/hub_load" "$WORK/bin/"

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc: $(nproc)"
  echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
  echo "kernel: $(uname -r)"
  echo "commit: $COMMIT (at build time)"
  echo "node: $(node --version 2>/dev/null || echo none)"
} >"$WORK/machine.txt"
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

HARNESS_ARGS=(--count "$COUNT" --conns "$CONNS" --lat-seconds "$LAT_SECONDS" --ref-seconds "$REF_SECONDS"
  --fan-seconds "$FAN_SECONDS" --fan-max-pushes "$FAN_MAX_PUSHES")

status=0
say "heph: hub_load ${HARNESS_ARGS[*]}"
echo "heph load before: $(loadavg)" >>"$WORK/machine.txt"
"$WORK/bin/hub_load" --hephd "$WORK/bin/hephd" "${HARNESS_ARGS[@]}" | tee "$WORK/heph.jsonl" || status=1
echo "heph load after: $(loadavg)" >>"$WORK/machine.txt"

if [[ $SKIP_PEER != 1 ]]; then
  say "reference: benches/peer/run.sh (COUNT=$COUNT, fetch in batches of 250, latency 10 subs @ 50/s for $REF_SECONDS s, KEEPALIVE_MS=${KEEPALIVE_MS:-default})"
  echo "reference KEEPALIVE_MS: ${KEEPALIVE_MS:-default (5000)}" >>"$WORK/machine.txt"
  echo "reference load before: $(loadavg)" >>"$WORK/machine.txt"
  : >"$WORK/peer.jsonl"
  COUNT=$COUNT PRELOAD_BATCH=250 FETCH_BATCHES=250 SUBSCRIBERS=10 RATE=50 DURATION=$REF_SECONDS DOCS=1 \
    OUT="$WORK/peer.jsonl" bash "$ROOT/benches/peer/run.sh" || status=1
  echo "reference load after: $(loadavg)" >>"$WORK/machine.txt"
fi

say "summary"
SUMMARY_ARGS=(--machine "$WORK/machine.txt" --heph "$WORK/heph.jsonl")
[[ -f $WORK/peer.jsonl ]] && SUMMARY_ARGS+=(--peer "$WORK/peer.jsonl")
[[ $QUICK == 1 ]] && SUMMARY_ARGS+=(--quick)
python3 "$HERE/summary.py" "${SUMMARY_ARGS[@]}" | tee "$WORK/summary.md"

if [[ -n ${OUT:-} ]]; then
  mkdir -p "$OUT"
  cp "$WORK"/*.jsonl "$WORK/machine.txt" "$WORK/summary.md" "$OUT/"
  echo "run.sh: results in $OUT" >&2
fi
exit "$status"
