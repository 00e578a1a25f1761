#!/usr/bin/env bash
# Reading a vault of long notes: `heph show` of a 4 MB note, `heph export` of
# 3,000 notes of 5-20 KB, and a 20 MB body refused, against the heph before
# stored readings (which loaded Automerge documents to read a node), on the
# same generated data in one run. See benches/README.md ("A vault of long
# notes").
#
#   benches/cli/vault.sh
#   QUICK=1 benches/cli/vault.sh            # smoke test (300 notes)
#   BEFORE=/path/to/heph benches/cli/vault.sh
#
# Environment:
#   BEFORE=PATH  an older heph binary (default: build commit $BEFORE_REV in a
#                temporary git worktree)
#   BEFORE_REV=fb69ab7  the commit before stored readings on devices
#   N=3000 notes, SEED=7, QUICK=1, KEEP=1 (keep the work folder)
#
# Needs: cargo, git, python3, hyperfine.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
QUICK=${QUICK:-0}
N=${N:-3000}
SEED=${SEED:-7}
BEFORE_REV=${BEFORE_REV:-fb69ab7}
if [[ $QUICK == 1 ]]; then
  N=300 RUNS=3
else
  RUNS=10
fi

for tool in cargo git python3 hyperfine; do
  command -v "$tool" >/dev/null || { echo "vault.sh: $tool is needed" >&2; exit 1; }
done
say() { printf '\n=== %s\n' "$*"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/heph-vault-bench.XXXXXX")
if [[ ${KEEP:-0} == 1 ]]; then trap 'echo "kept $WORK"' EXIT; else trap 'rm -rf "$WORK"' EXIT; fi
mkdir -p "$WORK/bin"

# shellcheck source=builds.sh
source "$HERE/builds.sh"
build_heph_and_before
HEPH="$WORK/bin/heph"
OLD="$WORK/bin/heph-before"
unset HEPH_DB
export HOME="$WORK/home" XDG_DATA_HOME="$WORK/home/.local/share" TZ=UTC

say "generating $N notes of 5-20 KB, a 4 MB body and a 20 MB one (seed $SEED)"
python3 - "$WORK" "$N" "$SEED" <<'EOF'
import json, random, sys, uuid
work, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
words = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
         "sigma tau upsilon phi chi psi omega").split()
def text(size):
    out, total = [], 0
    while total < size:
        line = " ".join(rng.choice(words) for _ in range(rng.randint(5, 15)))
        out.append(line)
        total += len(line) + 1
    return "\n".join(out) + "\n"
notes = [{"id": uuid.UUID(int=rng.getrandbits(128)).hex, "kind": "note",
          "title": f"Note {i} {rng.choice(words)}", "body": text(rng.randint(5000, 20000)),
          "tags": [rng.choice(words)], "created": "2026-01-01T10:00:00Z",
          "modified": "2026-01-02T10:00:00Z"} for i in range(n)]
json.dump(notes, open(f"{work}/notes.json", "w"))
open(f"{work}/body4.md", "w").write(text(4_000_000))
open(f"{work}/body20.md", "w").write(text(20_000_000))
EOF

for who in new old; do
  bin=$HEPH; [[ $who == old ]] && bin=$OLD
  mkdir -p "$WORK/$who"
  say "$who: importing, and a note with the 4 MB body"
  "$bin" --db "$WORK/$who/heph.db" import "$WORK/notes.json"
  "$bin" --db "$WORK/$who/heph.db" --json note Big --body - < "$WORK/body4.md" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' > "$WORK/$who/big"
done
BIG_NEW=$(cat "$WORK/new/big")
BIG_OLD=$(cat "$WORK/old/big")

say "heph export, $N notes"
hyperfine -N -w 1 -r "$RUNS" --export-markdown "$WORK/export.md" \
  -n "heph export" "$HEPH --db $WORK/new/heph.db export" \
  -n "before export" "$OLD --db $WORK/old/heph.db export"
say "heph show of the 4 MB note"
hyperfine -N -w 1 -r "$RUNS" --export-markdown "$WORK/show.md" \
  -n "heph show" "$HEPH --db $WORK/new/heph.db show $BIG_NEW" \
  -n "before show" "$OLD --db $WORK/old/heph.db show $BIG_OLD"
say "a 20 MB body, refused"
for who in new old; do
  bin=$HEPH; [[ $who == old ]] && bin=$OLD
  start=$(date +%s.%N)
  "$bin" --db "$WORK/$who/heph.db" note Huge --body - < "$WORK/body20.md" > /dev/null 2>&1 || true
  end=$(date +%s.%N)
  python3 -c "print('$who: a 20 MB body refused after %.2f s' % ($end - $start))"
done
say "store sizes"
ls -l "$WORK/new/heph.db" "$WORK/old/heph.db"
cat "$WORK/export.md" "$WORK/show.md"
