#!/usr/bin/env bash
# Reconciliation after a hub replacement / restore (benches/src/bin/reconcile.rs),
# RUNS times, then a table. See benches/README.md, "Hub".
#
#   benches/hub/reconcile.sh                 # 10,000 tasks, +2,000 for the restore, 3 runs
#   COUNT=1000 MORE=200 RUNS=1 benches/hub/reconcile.sh
#   OUT=DIR                                  # also keep reconcile.jsonl and the table in DIR
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
COUNT=${COUNT:-10000} MORE=${MORE:-2000} RUNS=${RUNS:-3}

(cd "$ROOT" && cargo build --release -p heph-hub -p heph-benches)
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
WORK=$(mktemp -d "${TMPDIR:-/tmp}/heph-reconcile-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# Frozen copies: others may rebuild target/ while this runs.
cp "$TARGET_DIR/release/hephd" "$TARGET_DIR/release/reconcile" "$WORK/"

for i in $(seq 1 "$RUNS"); do
  echo "=== run $i of $RUNS, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  "$WORK/reconcile" --hephd "$WORK/hephd" --count "$COUNT" --more "$MORE" | tee -a "$WORK/reconcile.jsonl"
done
python3 "$HERE/reconcile_summary.py" "$WORK/reconcile.jsonl" | tee "$WORK/summary.md"
if [[ -n ${OUT:-} ]]; then
  mkdir -p "$OUT"
  cp "$WORK/reconcile.jsonl" "$WORK/summary.md" "$OUT/"
fi
