#!/usr/bin/env bash
# The filter language against Taskwarrior 2.6, and `heph ls` against the heph
# before the filter language, on one generated 10,000-task data set in one
# run. See benches/README.md ("Filters").
#
#   benches/cli/filter.sh                   # the full run
#   QUICK=1 benches/cli/filter.sh           # smoke test
#   BEFORE=/path/to/heph benches/cli/filter.sh   # the older heph to compare `ls` with
#
# Environment:
#   BEFORE=PATH  an older heph binary for the `ls` comparison (default: build
#                commit $BEFORE_REV in a temporary git worktree)
#   BEFORE_REV=5103f97  the commit before the filter language
#   N=10000, SEED=42, QUICK=1, KEEP=1, OUT=DIR  as in run.sh
#
# Needs: cargo, git, python3, hyperfine, task (Taskwarrior 2.6).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
QUICK=${QUICK:-0}
N=${N:-10000}
SEED=${SEED:-42}
BEFORE_REV=${BEFORE_REV:-5103f97}
FILTER='( +work or +home ) and due.before:eow and -BLOCKED'

if [[ $QUICK == 1 ]]; then
  WARMUP=1 MIN_RUNS=3 MAX_RUNS=5
else
  WARMUP=3 MIN_RUNS=20 MAX_RUNS=40
fi

for tool in cargo git python3 hyperfine task; do
  command -v "$tool" >/dev/null || { echo "filter.sh: $tool is needed" >&2; exit 1; }
done
say() { printf '\n=== %s\n' "$*"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/heph-filter-bench.XXXXXX")
if [[ ${KEEP:-0} == 1 ]]; then trap 'echo "kept $WORK"' EXIT; else trap 'rm -rf "$WORK"' EXIT; fi
mkdir -p "$WORK/bin" "$WORK/json" "$WORK/tw"

# shellcheck source=builds.sh
source "$HERE/builds.sh"
build_heph_and_before
HEPH="$WORK/bin/heph"
OLD="$WORK/bin/heph-before"
unset HEPH_DB
export HOME="$WORK/home" XDG_DATA_HOME="$WORK/home/.local/share" TZ=${TZ:-Europe/Berlin}
mkdir -p "$HOME"
export TASKRC="$WORK/taskrc"
cat > "$TASKRC" <<RC
data.location=$WORK/tw
confirmation=off
news.version=2.6.0
hooks=off
color=off
weekstart=monday
RC

say "generating $N tasks (seed $SEED); +work on the tasks of project work"
python3 "$HERE/gen.py" -n "$N" --seed "$SEED" --all-pending -o "$WORK/tasks.json"
python3 - "$WORK/tasks.json" <<'PY'
import json, sys
path = sys.argv[1]
tasks = json.load(open(path))
for t in tasks:
    if t.get("project", "").split(".")[0] == "work" and "work" not in t.get("tags", []):
        t["tags"] = t.get("tags", []) + ["work"]
json.dump(tasks, open(path, "w"))
PY

say "importing into heph, the older heph and task"
"$HEPH" --db "$WORK/heph/heph.db" import "$WORK/tasks.json" >/dev/null
"$OLD" --db "$WORK/old/heph.db" import "$WORK/tasks.json" >/dev/null
task import "$WORK/tasks.json" >/dev/null 2>&1

say "checking that both select the same tasks"
read -r -a WORDS <<< "$FILTER"
ours=$("$HEPH" --db "$WORK/heph/heph.db" --json ls "${WORDS[@]}" | python3 -c 'import json,sys; print(" ".join(sorted(r["id"] for r in json.load(sys.stdin))))')
theirs=$(task rc.verbose=nothing "${WORDS[@]}" status:pending -WAITING export | python3 -c 'import json,sys; print(" ".join(sorted(t["uuid"].replace("-","") for t in json.load(sys.stdin))))')
count=$(wc -w <<< "$ours")
echo "heph: $count tasks; task: $(wc -w <<< "$theirs") tasks"
[[ $ours == "$theirs" && $count -gt 0 ]] || { echo "the two tools select different tasks" >&2; exit 1; }
old_rows=$("$OLD" --db "$WORK/old/heph.db" --json ls | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
new_rows=$("$HEPH" --db "$WORK/heph/heph.db" --json ls | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
echo "heph ls rows: $new_rows (before: $old_rows)"
[[ $old_rows == "$N" && $new_rows == "$N" ]] || { echo "heph ls does not list all $N tasks" >&2; exit 1; }

say "versions"
"$HEPH" --version; task --version; hyperfine --version; uptime
HF=(hyperfine -N --style basic --warmup "$WARMUP" --min-runs "$MIN_RUNS" --max-runs "$MAX_RUNS")

say "the compound filter: heph ls vs task list"
"${HF[@]}" --export-json "$WORK/json/filter.json" \
  -n "heph ls FILTER" "$HEPH --db $WORK/heph/heph.db ls $FILTER" \
  -n "task FILTER list" "task $FILTER list"

say "the compound filter, as JSON: heph ls --json vs task export"
"${HF[@]}" --export-json "$WORK/json/filter-json.json" \
  -n "heph --json ls FILTER" "$HEPH --db $WORK/heph/heph.db --json ls $FILTER" \
  -n "task FILTER export" "task $FILTER status:pending -WAITING export"

say "heph ls (10,000 pending) now vs before the filter language"
"${HF[@]}" --export-json "$WORK/json/ls.json" \
  -n "heph ls" "$HEPH --db $WORK/heph/heph.db ls" \
  -n "heph ls ($BEFORE_REV)" "$OLD --db $WORK/old/heph.db ls"

say "summary"
python3 - "$WORK/json" <<'PY' | tee "$WORK/summary.md"
import json, os, sys
d = sys.argv[1]
def load(name):
    return {r["command"]: r for r in json.load(open(os.path.join(d, name)))["results"]}
def ms(r, k="median"): return r[k] * 1000
rows = []
for name, a, b in [("filter.json", "heph ls FILTER", "task FILTER list"),
                   ("filter-json.json", "heph --json ls FILTER", "task FILTER export"),
                   ("ls.json", "heph ls", None)]:
    res = load(name)
    ra = res[a]
    rb = res[b] if b else [v for k, v in res.items() if k != a][0]
    rows.append(f"| {a} vs {rb['command']} | {ms(ra):.1f} ms ± {ms(ra,'stddev'):.1f} | {ms(rb):.1f} ms ± {ms(rb,'stddev'):.1f} | {ms(rb)/ms(ra):.2f}× | {len(ra['times'])}/{len(rb['times'])} |")
print("| commands | heph median ± σ | other median ± σ | other / heph | runs |")
print("|---|---|---|---|---|")
print("\n".join(rows))
PY
if [[ -n ${OUT:-} ]]; then mkdir -p "$OUT"; cp -r "$WORK/json" "$WORK/summary.md" "$OUT/"; fi
