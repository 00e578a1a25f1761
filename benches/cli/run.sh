#!/usr/bin/env bash
# Side-by-side benchmark of the `heph` CLI against Taskwarrior 2.6 (`task`) on
# the same generated 10,000-task data set, in one run. See benches/README.md.
#
#   benches/cli/run.sh            # the full run (about 5-10 minutes)
#   QUICK=1 benches/cli/run.sh    # smoke test: few runs of everything
#
# Environment:
#   QUICK=1     fewer runs, for a smoke test
#   N=10000     tasks in the main data set
#   BIG_N=100000  tasks in the large heph store
#   SEED=42     generator seed
#   OUT=DIR     also copy the hyperfine JSON, the data files' sizes and the
#               summary (summary.md) to DIR
#   KEEP=1      do not remove the temp dir at the end (its path is printed)
#
# Needs: cargo, python3, hyperfine, task (Taskwarrior 2.6), GNU time (/usr/bin/time).
# Taskwarrior runs with a throwaway TASKRC and data.location, heph with a
# throwaway --db; both live in one temp dir, removed at the end.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
QUICK=${QUICK:-0}
N=${N:-10000}
BIG_N=${BIG_N:-100000}
SEED=${SEED:-42}

if [[ $QUICK == 1 ]]; then
  ADD_WARMUP=2 ADD_RUNS=5
  LS_WARMUP=1 LS_MIN_RUNS=3 LS_MAX_RUNS=10
  IMPORT_MIN_RUNS=2 IMPORT_MAX_RUNS=2
  BIG_WARMUP=1 BIG_MIN_RUNS=5
else
  ADD_WARMUP=5 ADD_RUNS=40
  LS_WARMUP=3 LS_MIN_RUNS=15 LS_MAX_RUNS=60
  IMPORT_MIN_RUNS=8 IMPORT_MAX_RUNS=10
  BIG_WARMUP=3 BIG_MIN_RUNS=30
fi

for tool in cargo python3 hyperfine task /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is needed" >&2; exit 1; }
done

say() { printf '\n=== %s\n' "$*"; }

say "building heph (cargo build --release -p heph-cli)"
(cd "$ROOT" && cargo build --release -p heph-cli)
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

WORK=$(mktemp -d "${TMPDIR:-/tmp}/heph-cli-bench.XXXXXX")
if [[ ${KEEP:-0} == 1 ]]; then
  trap 'echo "kept $WORK"' EXIT
else
  trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK/bin" "$WORK/json" "$WORK/tw"
# A frozen copy: others may rebuild target/ while this runs.
cp "$TARGET_DIR/release/heph" "$WORK/bin/heph"
HEPH="$WORK/bin/heph"
HDB="$WORK/heph/heph.db"
BIGDB="$WORK/heph-big/heph.db"
TWDATA="$WORK/tw"
export TASKRC="$WORK/taskrc"
# Never read the user's store or config by accident.
unset HEPH_DB
export HOME="$WORK/home" XDG_DATA_HOME="$WORK/home/.local/share"
mkdir -p "$HOME"

# Taskwarrior's defaults, except: its data lives in the temp dir; no prompts
# (confirmation=off); no "run task news" nag (news.version); no hooks from
# ~/.task/hooks; color=off, which is what Taskwarrior does anyway when its
# output is not a terminal (and heph prints no colour). Verbosity stays at
# Taskwarrior's default (header, labels, footnote, "Created task N."), as
# heph also prints a header and a footer.
cat > "$TASKRC" <<RC
data.location=$TWDATA
confirmation=off
news.version=2.6.0
hooks=off
color=off
RC

say "generating $N tasks (seed $SEED) and $BIG_N tasks (seed $((SEED + 1)))"
python3 "$HERE/gen.py" -n "$N" --seed "$SEED" --all-pending -o "$WORK/tasks.json"
python3 "$HERE/gen.py" -n "$BIG_N" --seed "$((SEED + 1))" --all-pending -o "$WORK/tasks-big.json"
ls -l "$WORK/tasks.json" "$WORK/tasks-big.json"

say "versions"
"$HEPH" --version
task --version
hyperfine --version
echo "heph commit: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && [[ -n $(git status --porcelain -- engine cli 2>/dev/null) ]] && echo ' (engine/ or cli/ modified)')"
uptime

HF=(hyperfine -N --style basic)

# 1. Import 10,000 tasks into an empty store. The prepare step wipes the
# store, so after the last run each tool holds exactly the N tasks.
say "import $N tasks into an empty store"
"${HF[@]}" --min-runs "$IMPORT_MIN_RUNS" --max-runs "$IMPORT_MAX_RUNS" \
  --export-json "$WORK/json/import.json" \
  --prepare "rm -rf $WORK/heph" -n "heph import" "$HEPH --db $HDB import $WORK/tasks.json" \
  --prepare "sh -c 'rm -rf $TWDATA && mkdir -p $TWDATA'" -n "task import" "task import $WORK/tasks.json"

# 2. Bytes on disk, right after the import (both include their history:
# heph's change log, Taskwarrior's undo.data and backlog.data).
say "bytes on disk at $N tasks"
ls -l "$WORK/heph" "$TWDATA"
{
  echo "heph_bytes=$(stat -c %s "$HDB")"
  echo "heph_alloc=$(du -B1 -s "$WORK/heph" | cut -f1)"
  echo "tw_bytes=$(find "$TWDATA" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')"
  echo "tw_alloc=$(du -B1 -s "$TWDATA" | cut -f1)"
  for f in "$TWDATA"/*.data; do echo "tw_file_$(basename "$f" .data)=$(stat -c %s "$f")"; done
  echo "n=$N"
  echo "big_n=$BIG_N"
} > "$WORK/sizes.env"
cat "$WORK/sizes.env"

# 3. Both must list every task, or the ls comparison means nothing.
say "checking that both list all $N tasks"
tw_footer=$(task list 2>/dev/null | tail -n 1)
heph_rows=$("$HEPH" --db "$HDB" ls --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
echo "task list footer: '$tw_footer'; heph ls --json rows: $heph_rows"
[[ $tw_footer == "$N tasks" ]] || { echo "task list does not list all $N tasks" >&2; exit 1; }
[[ $heph_rows == "$N" ]] || { echo "heph ls does not list all $N tasks" >&2; exit 1; }

say "heph ls vs task list ($N pending tasks, output to /dev/null)"
"${HF[@]}" --warmup "$LS_WARMUP" --min-runs "$LS_MIN_RUNS" --max-runs "$LS_MAX_RUNS" \
  --export-json "$WORK/json/ls.json" \
  -n "heph ls" "$HEPH --db $HDB ls" \
  -n "task list" "task list"

# 4. Add one task to a store holding N tasks (each run adds one more: the
# store ends at N + warmup + runs tasks).
say "heph add vs task add (store holding $N tasks)"
"${HF[@]}" --warmup "$ADD_WARMUP" --runs "$ADD_RUNS" \
  --export-json "$WORK/json/add.json" \
  -n "heph add" "$HEPH --db $HDB add Buy milk due:tomorrow +errand pri:H project:home" \
  -n "task add" "task add Buy milk due:tomorrow +errand priority:H project:home"

# 5. A store of BIG_N tasks: one timed import, then open it and list one page.
say "heph import of $BIG_N tasks (one run)"
/usr/bin/time -f '%e %U %S %M' -o "$WORK/big-import.time" \
  "$HEPH" --db "$BIGDB" import "$WORK/tasks-big.json"
read -r big_wall big_user big_sys big_rss < "$WORK/big-import.time"
{
  echo "big_import_s=$big_wall"
  echo "big_import_cpu_s=$(python3 -c "print($big_user + $big_sys)")"
  echo "big_import_maxrss_kb=$big_rss"
  echo "big_bytes=$(stat -c %s "$BIGDB")"
} >> "$WORK/sizes.env"
tail -n 4 "$WORK/sizes.env"

say "heph ls --limit 50 on the $BIG_N-task store"
"${HF[@]}" --warmup "$BIG_WARMUP" --min-runs "$BIG_MIN_RUNS" \
  --export-json "$WORK/json/big-ls.json" \
  -n "heph ls --limit 50 ($BIG_N)" "$HEPH --db $BIGDB ls --limit 50"

say "summary"
uptime
python3 "$HERE/summary.py" "$WORK" | tee "$WORK/summary.md"

if [[ -n ${OUT:-} ]]; then
  mkdir -p "$OUT"
  cp "$WORK"/json/*.json "$WORK/sizes.env" "$WORK/summary.md" "$OUT/"
  echo "results copied to $OUT"
fi
