#!/usr/bin/env python3
"""Deterministic generator of a realistic Taskwarrior export (a JSON array).

    python3 benches/cli/gen.py [-n 10000] [--seed 42] [--all-pending | --no-all-pending] [-o FILE]

The same seed and options always give byte-identical output. Dates are in
Taskwarrior's format (20261125T143000Z) and anchored to a fixed "now"
(2026-11-25 14:30 UTC, see --now), not to the clock, so the file never changes.

What a task gets (roughly):
  * uuid: a version-4 UUID drawn from the seeded RNG;
  * description: 2-6 words;
  * status: all "pending" with --all-pending (the default; the CLI benchmark
    lists every task), else ~80% pending, ~14% completed (with `end`),
    ~3% deleted (with `end`), ~3% waiting (with a future `wait`);
  * entry: within the 540 days before now; modified: between entry and now;
  * project for ~60%, a dotted sub-project (home.garden) for about a third of those;
  * 0-3 tags; priority H/M/L for ~40%; due for ~40% (from 30 days ago to 120 ahead);
  * annotations (1-2) for ~5%; depends (1-2 earlier tasks) for ~3%;
  * Taskwarrior's own export fields `id` (for pending tasks) and `urgency`
    (a plausible number), which importers ignore.
"""

import argparse
import json
import random
import sys
import uuid
from datetime import datetime, timedelta, timezone

WORDS = (
    "buy milk call mom fix bug review pull request write report update docs plan sprint "
    "book flight renew passport clean garage pay rent email landlord refactor parser "
    "deploy server backup laptop order parts read paper draft talk prepare slides "
    "water plants walk dog schedule dentist check logs migrate database test release "
    "invoice client sync calendar repair bike replace filter sort receipts cook dinner "
    "pick up package organise desk file taxes answer survey learn rust benchmark cli "
    "upgrade kernel rotate keys archive photos mow lawn paint fence fix leak tune piano"
).split()

PROJECTS = ["home", "work", "errands", "health", "finance", "garden", "car", "study",
            "heph", "travel", "family", "house", "writing", "ops", "hiring"]
SUBPROJECTS = ["backend", "frontend", "docs", "infra", "q1", "q2", "kitchen", "garden",
               "taxes", "bills", "reading", "trip", "release", "design"]
TAGS = ["next", "errand", "phone", "email", "computer", "someday", "waiting", "urgent",
        "quick", "review", "bug", "idea", "weekend", "office", "home", "shopping",
        "meeting", "read", "write", "call"]
NOTES = ["asked about it", "see the email from Tuesday", "needs a second look",
         "blocked on the vendor", "half done", "left a voicemail", "prices went up",
         "moved to next week", "discussed at standup", "receipt in the drawer"]


def tw(t: datetime) -> str:
    return t.strftime("%Y%m%dT%H%M%SZ")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", "--count", type=int, default=10000, help="number of tasks (default 10000)")
    p.add_argument("--seed", type=int, default=42, help="RNG seed (default 42)")
    p.add_argument("--all-pending", action=argparse.BooleanOptionalAction, default=True,
                   help="make every task pending (default on; --no-all-pending mixes statuses)")
    p.add_argument("--now", default="20261125T143000Z", help="the fixed 'now' dates are anchored to")
    p.add_argument("-o", "--output", help="write here instead of standard output")
    a = p.parse_args()

    rng = random.Random(a.seed)
    now = datetime.strptime(a.now, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    tasks = []
    uuids = []
    next_id = 1
    for i in range(a.count):
        u = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        entry = now - timedelta(seconds=rng.randrange(540 * 86400))
        modified = entry + timedelta(seconds=rng.randrange(max(1, int((now - entry).total_seconds()))))
        words = [rng.choice(WORDS) for _ in range(rng.randint(2, 6))]
        words[0] = words[0].capitalize()
        t = {"description": " ".join(words), "entry": tw(entry), "modified": tw(modified)}

        if a.all_pending:
            status = "pending"
        else:
            r = rng.random()
            status = ("pending" if r < 0.80 else "completed" if r < 0.94 else
                      "deleted" if r < 0.97 else "waiting")
        t["status"] = status
        if status in ("completed", "deleted"):
            t["end"] = tw(modified)
        if status == "waiting":
            t["wait"] = tw(now + timedelta(days=rng.randint(1, 60)))

        if rng.random() < 0.60:
            proj = rng.choice(PROJECTS)
            if rng.random() < 0.35:
                proj += "." + rng.choice(SUBPROJECTS)
            t["project"] = proj
        ntags = rng.choice([0, 0, 0, 1, 1, 1, 2, 2, 3])
        if ntags:
            t["tags"] = rng.sample(TAGS, ntags)
        if rng.random() < 0.40:
            t["priority"] = rng.choice("HHMMML")
        if rng.random() < 0.40:
            due = now + timedelta(days=rng.randint(-30, 120), hours=rng.choice([0, 9, 17]))
            t["due"] = tw(due.replace(minute=0, second=0))
        if rng.random() < 0.05:
            anns = []
            for _ in range(rng.randint(1, 2)):
                at = entry + timedelta(seconds=rng.randrange(max(1, int((now - entry).total_seconds()))))
                anns.append({"entry": tw(at), "description": rng.choice(NOTES)})
            anns.sort(key=lambda x: x["entry"])
            t["annotations"] = anns
        if uuids and rng.random() < 0.03:
            t["depends"] = sorted(set(rng.choice(uuids) for _ in range(rng.randint(1, 2))))
        t["uuid"] = u
        if status in ("pending", "waiting"):
            t["id"] = next_id
            next_id += 1
        else:
            t["id"] = 0
        t["urgency"] = round(rng.uniform(0, 15), 4)
        uuids.append(u)
        tasks.append(t)

    out = open(a.output, "w", encoding="utf-8") if a.output else sys.stdout
    # One task per line inside the array, like `task export`.
    out.write("[\n")
    out.write(",\n".join(json.dumps(t, sort_keys=True, separators=(",", ":")) for t in tasks))
    out.write("\n]\n")
    if a.output:
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
