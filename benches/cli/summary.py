#!/usr/bin/env python3
"""Prints the summary table (Markdown) of a benches/cli/run.sh run.

    python3 benches/cli/summary.py WORKDIR

WORKDIR holds json/{import,ls,add,big-ls}.json (hyperfine --export-json) and
sizes.env (key=value lines written by run.sh).
"""

import json
import statistics
import sys
from pathlib import Path


def load(path: Path) -> dict:
    """hyperfine results by command name."""
    return {r["command"]: r for r in json.loads(path.read_text())["results"]}


def ms(seconds: float) -> str:
    v = seconds * 1000
    return f"{v:,.0f} ms" if v >= 100 else f"{v:.1f} ms"


def ratio(tw: float, heph: float) -> str:
    return f"{tw / heph:.1f}×" if heph > 0 else "—"


def verdict(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def main() -> int:
    work = Path(sys.argv[1])
    env = dict(
        line.split("=", 1) for line in (work / "sizes.env").read_text().splitlines() if "=" in line
    )
    n, big_n = int(env["n"]), int(env["big_n"])
    imp = load(work / "json/import.json")
    ls = load(work / "json/ls.json")
    add = load(work / "json/add.json")
    big = next(iter(load(work / "json/big-ls.json").values()))

    def med(r):
        return statistics.median(r["times"])

    def cpu(r):
        return r["user"] + r["system"]

    h_add, t_add = add["heph add"], add["task add"]
    h_ls, t_ls = ls["heph ls"], ls["task list"]
    h_imp, t_imp = imp["heph import"], imp["task import"]

    rows = []

    def timed(label, h, t, target, ok):
        rows.append((f"{label}: median", ms(med(h)), ms(med(t)), ratio(med(t), med(h)), target, verdict(ok)))
        rows.append((f"{label}: mean ± σ", f"{ms(h['mean'])} ± {ms(h['stddev'])}",
                     f"{ms(t['mean'])} ± {ms(t['stddev'])}", ratio(t["mean"], h["mean"]), "", ""))
        rows.append((f"{label}: CPU (user+sys), mean", ms(cpu(h)), ms(cpu(t)), ratio(cpu(t), cpu(h)), "", ""))
        rows.append((f"{label}: runs", str(len(h["times"])), str(len(t["times"])), "", "", ""))

    timed(f"add, store of {n:,}", h_add, t_add, "heph < 15 ms and < task",
          med(h_add) < 0.015 and med(h_add) < med(t_add))
    timed(f"ls, {n:,} pending → /dev/null", h_ls, t_ls, "heph < 100 ms and ≥ 5× faster",
          med(h_ls) < 0.100 and med(t_ls) / med(h_ls) >= 5)
    timed(f"import {n:,} into an empty store", h_imp, t_imp, "heph < 1 s", med(h_imp) < 1.0)

    big_s = float(env["big_import_s"])
    rows.append((f"import {big_n:,} (heph only, one run)",
                 f"{big_s:.2f} s (CPU {float(env['big_import_cpu_s']):.2f} s, max RSS "
                 f"{int(env['big_import_maxrss_kb']) / 1024:.0f} MiB)", "—", "", "", ""))
    rows.append((f"open {big_n:,} + `ls --limit 50`: median", ms(med(big)), "—", "", "< 300 ms",
                 verdict(med(big) < 0.300)))
    rows.append((f"open {big_n:,} + `ls --limit 50`: mean ± σ",
                 f"{ms(big['mean'])} ± {ms(big['stddev'])} ({len(big['times'])} runs)", "—", "", "", ""))

    hb, ha = int(env["heph_bytes"]), int(env["heph_alloc"])
    tb, ta = int(env["tw_bytes"]), int(env["tw_alloc"])
    tw_files = ", ".join(f"{k[len('tw_file_'):]} {int(v) / n:.0f}" for k, v in env.items()
                         if k.startswith("tw_file_") and int(v) > 0)
    rows.append((f"bytes on disk per task at {n:,}", f"{hb / n:,.0f} B", f"{tb / n:,.0f} B",
                 f"{tb / hb:.2f}×", "", ""))
    rows.append(("  allocated (du) per task", f"{ha / n:,.0f} B", f"{ta / n:,.0f} B", f"{ta / ha:.2f}×", "", ""))
    rows.append(("  what is counted", f"heph.db ({hb / 1e6:.1f} MB)", f"data dir ({tb / 1e6:.1f} MB: {tw_files} B/task)",
                 "", "", ""))
    rows.append((f"bytes on disk per task at {big_n:,}", f"{int(env['big_bytes']) / big_n:,.0f} B", "—", "", "", ""))

    head = ("metric", "heph", "Taskwarrior", "ratio task/heph", "target", "met")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(["---"] * len(head)) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
