#!/usr/bin/env bash
# The hub's write path, before and after: the current hub_load drives the hub
# built at a "before" revision and the hub of the current tree, one after the
# other in one run, and benches/hub/write_path_summary.py prints the table.
# See benches/README.md, "Hub", "Write path".
#
#   benches/hub/write_path.sh            # full run: about 4 minutes per hub, plus the builds
#   QUICK=1 benches/hub/write_path.sh    # smoke run: small sizes, a few seconds per phase
#
# Environment:
#   BEFORE=153b04e      the "before" revision (any git revision)
#   BEFORE_TREE=DIR     its worktree [default: ../before-build beside this checkout]; made with
#                       `git worktree add --detach` if missing, reused (and moved to BEFORE) if present
#   BEFORE_TARGET=DIR   its CARGO_TARGET_DIR [default: BEFORE_TREE/target]; builds are incremental
#   BEFORE_HEPHD=PATH   use this hephd as "before" instead of building BEFORE
#   QUICK=1             smaller everything (numbers not comparable with the targets)
#   OUT=DIR             also copy heph-before.jsonl, heph-after.jsonl, machine.txt, summary.md to DIR
#   KEEP=1              keep the temp dir
#
# Each hub gets the same runs, each with its own hephd and store (so each
# phase's peak RSS is its own): `main` (preload, bootstrap, catchup, latency,
# latency_ref, idle, fanout, as run.sh with SKIP_PEER=1), then `acks`,
# `acks1000`, `pushlat` and `storm`. hephd is only ever started with the
# flags hub_load passes (--mode --http-addr --log --log-json --db), which the
# old binary has too. Only 127.0.0.1 is used.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
QUICK=${QUICK:-0}
BEFORE=${BEFORE:-153b04e}
BEFORE_TREE=${BEFORE_TREE:-$(dirname "$ROOT")/before-build}
BEFORE_TARGET=${BEFORE_TARGET:-$BEFORE_TREE/target}

if [[ $QUICK == 1 ]]; then
  MAIN_ARGS=(--count 1000 --conns 200 --lat-seconds 3 --ref-seconds 3 --fan-seconds 3 --fan-max-pushes 500)
  ACKS_ARGS=(--acks-conns 20 --acks-seconds 3 --acks-max 3000)
  ACKS_BIG_ARGS=(--acks-big-conns 200 --acks-seconds 3 --acks-max 300)
  PUSHLAT_ARGS=(--pushlat-pushers 1,20 --pushlat-seconds 3 --acks-max 3000)
  STORM_ARGS=(--storm-devices 200 --storm-back 100 --storm-min-head 2000)
else
  MAIN_ARGS=(--count 10000 --conns 1000 --lat-seconds 10 --ref-seconds 10 --fan-seconds 10 --fan-max-pushes 3000)
  ACKS_ARGS=(--acks-conns 100 --acks-seconds 10)
  ACKS_BIG_ARGS=(--acks-big-conns 1000 --acks-seconds 10)
  PUSHLAT_ARGS=(--pushlat-pushers 1,100 --pushlat-seconds 10)
  STORM_ARGS=(--storm-devices 1000 --storm-back 100 --storm-min-head 5000)
fi

for tool in cargo git python3; do
  command -v "$tool" >/dev/null || { echo "write_path.sh: $tool is needed" >&2; exit 1; }
done
say() { printf '\n=== %s\n' "$*" >&2; }

# ------------------------------------------------------------------ builds
AFTER_REV="$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- engine hub 2>/dev/null || echo ' with uncommitted engine/ or hub/ changes')"
say "after: building the current tree (cargo build --release -p heph-hub -p heph-benches)"
(cd "$ROOT" && cargo build --release -p heph-hub -p heph-benches)
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

if [[ -n ${BEFORE_HEPHD:-} ]]; then
  BEFORE_REV="given binary $BEFORE_HEPHD"
else
  rev=$(git -C "$ROOT" rev-parse --verify "$BEFORE^{commit}")
  BEFORE_REV=$(git -C "$ROOT" rev-parse --short "$rev")
  if [[ -e $BEFORE_TREE/.git ]]; then
    if [[ $(git -C "$BEFORE_TREE" rev-parse HEAD) != "$rev" ]]; then
      say "before: moving $BEFORE_TREE to $BEFORE_REV"
      git -C "$BEFORE_TREE" checkout --quiet --detach "$rev"
    fi
  else
    say "before: git worktree add --detach $BEFORE_TREE $BEFORE_REV"
    git -C "$ROOT" worktree add --detach "$BEFORE_TREE" "$rev" >&2
  fi
  say "before: building hephd at $BEFORE_REV in $BEFORE_TREE (CARGO_TARGET_DIR=$BEFORE_TARGET)"
  (cd "$BEFORE_TREE" && CARGO_TARGET_DIR=$BEFORE_TARGET cargo build --release -p heph-hub)
  BEFORE_HEPHD=$BEFORE_TARGET/release/hephd
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/heph-write-path.XXXXXX")
if [[ ${KEEP:-0} == 1 ]]; then
  trap 'echo "write_path.sh: kept $WORK" >&2' EXIT
else
  trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK/bin"
# Frozen copies: others may rebuild the target dirs while this runs.
cp "$BEFORE_HEPHD" "$WORK/bin/hephd-before"
cp "$TARGET_DIR/release/hephd" "$WORK/bin/hephd-after"
cp "$TARGET_DIR/release/hub_load" "$WORK/bin/hub_load"

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc: $(nproc)"
  echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
  echo "kernel: $(uname -r)"
  echo "before: $BEFORE_REV"
  echo "after: $AFTER_REV (at build time)"
  echo "quick: $QUICK"
} >"$WORK/machine.txt"

# ------------------------------------------------------------------ runs
status=0
run() { # side, tag, hub_load args...
  local side=$1 tag=$2
  shift 2
  say "$side: hub_load --tag $tag $*"
  "$WORK/bin/hub_load" --hephd "$WORK/bin/hephd-$side" --tag "$tag" "$@" | tee -a "$WORK/heph-$side.jsonl" || status=1
}
for side in before after; do
  : >"$WORK/heph-$side.jsonl"
  echo "$side load before: $(loadavg)" >>"$WORK/machine.txt"
  run "$side" main "${MAIN_ARGS[@]}"
  run "$side" acks --phases acks "${ACKS_ARGS[@]}"
  run "$side" acks1000 --phases acks1000 "${ACKS_BIG_ARGS[@]}"
  run "$side" pushlat --phases pushlat "${PUSHLAT_ARGS[@]}"
  run "$side" storm --phases storm "${STORM_ARGS[@]}"
  echo "$side load after: $(loadavg)" >>"$WORK/machine.txt"
done

say "summary"
SUMMARY_ARGS=(--machine "$WORK/machine.txt" --before "$WORK/heph-before.jsonl" --after "$WORK/heph-after.jsonl")
[[ $QUICK == 1 ]] && SUMMARY_ARGS+=(--quick)
python3 "$HERE/write_path_summary.py" "${SUMMARY_ARGS[@]}" | tee "$WORK/summary.md"

if [[ -n ${OUT:-} ]]; then
  mkdir -p "$OUT"
  cp "$WORK"/heph-*.jsonl "$WORK/machine.txt" "$WORK/summary.md" "$OUT/"
  echo "write_path.sh: results in $OUT" >&2
fi
exit "$status"
