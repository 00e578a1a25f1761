#!/usr/bin/env python3
"""Compares two hub_load runs (heph.jsonl from benches/hub/run.sh, OUT=DIR).

    compare.py --base base/heph.jsonl --new new/heph.jsonl [--names 1a9d00b,3d4d526] [--limit 10]

Prints a Markdown table: each figure for both runs, the ratio new/base, and
whether the new run is worse by more than --limit percent (for times and
memory, higher is worse; for throughput, lower is worse). Several runs of a
side may be given comma-separated; then each cell is their median.
"""

import argparse
import json
import statistics


def load(path):
    rows = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                v = json.loads(line)
            except json.JSONDecodeError:
                continue
            op = v.get("op")
            if op == "fanout":
                op = f"fanout{v.get('batch')}"
            rows.setdefault(op, v)
    return rows


def get(rows, path):
    v = rows
    for k in path:
        v = v.get(k) if isinstance(v, dict) else None
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


# (label, path into the JSON lines, unit, higher_is_better)
FIGURES = [
    ("preload 10,000 tasks", ("preload", "seconds"), "s", False),
    ("bootstrap (snapshots) 10,000 tasks", ("bootstrap", "seconds"), "s", False),
    ("  of which the device's apply", ("bootstrap", "apply_s"), "s", False),
    ("catch-up (change log) 10,000 tasks", ("catchup", "seconds"), "s", False),
    ("latency 100 subs @ 100/s: send → receipt p50", ("latency", "p50_ms"), "ms", False),
    ("latency 100 subs @ 100/s: send → receipt p99", ("latency", "p99_ms"), "ms", False),
    ("latency 100 subs @ 100/s: push → ack p50", ("latency", "ack", "p50_ms"), "ms", False),
    ("latency 100 subs @ 100/s: push → ack p99", ("latency", "ack", "p99_ms"), "ms", False),
    ("latency 10 subs @ 50/s: send → receipt p50", ("latency_ref", "p50_ms"), "ms", False),
    ("latency 10 subs @ 50/s: send → receipt p99", ("latency_ref", "p99_ms"), "ms", False),
    ("latency 10 subs @ 50/s: push → ack p50", ("latency_ref", "ack", "p50_ms"), "ms", False),
    ("latency 10 subs @ 50/s: push → ack p99", ("latency_ref", "ack", "p99_ms"), "ms", False),
    ("fan-out 1,000 subs, 1 change/push: deliveries/s", ("fanout1", "deliveries_per_s"), "/s", True),
    ("fan-out 1,000 subs, 10 changes/push: deliveries/s", ("fanout10", "deliveries_per_s"), "/s", True),
    ("hephd RSS, 1,000 idle connections", ("idle", "rss_idle_kb"), "KB", False),
    ("  per connection", ("idle", "per_conn_kb"), "KB", False),
    ("hephd RSS peak (VmHWM at the end of the run)", ("hephd", "rss_hwm_kb"), "KB", False),
]


def fmt(v, unit):
    if v is None:
        return "—"
    if unit in ("/s", "KB") and v >= 1000:
        return f"{v:,.0f} {unit}"
    return f"{v:,.3g} {unit}" if abs(v) < 100 else f"{v:,.0f} {unit}"


def median(runs, path):
    vals = [x for x in (get(r, path) for r in runs) if x is not None]
    return statistics.median(vals) if vals else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="heph.jsonl of the base (comma-separated for several runs)")
    ap.add_argument("--new", required=True, help="heph.jsonl of the new build (comma-separated for several runs)")
    ap.add_argument("--names", default="base,new")
    ap.add_argument("--limit", type=float, default=10.0, help="percent")
    a = ap.parse_args()
    base = [load(p) for p in a.base.split(",")]
    new = [load(p) for p in a.new.split(",")]
    nb, nn = a.names.split(",", 1)
    print(f"| figure | {nb} | {nn} | {nn}/{nb} | worse by > {a.limit:g}%? |")
    print("|---|---|---|---|---|")
    worse = 0
    for label, path, unit, higher_better in FIGURES:
        b, n = median(base, path), median(new, path)
        if b is None or n is None or b == 0:
            print(f"| {label} | {fmt(b, unit)} | {fmt(n, unit)} | | |")
            continue
        r = n / b
        bad = r < 1 - a.limit / 100 if higher_better else r > 1 + a.limit / 100
        worse += bad
        print(f"| {label} | {fmt(b, unit)} | {fmt(n, unit)} | {r:.2f} | {'**yes**' if bad else 'no'} |")
    loads = []
    for name, runs in ((nb, base), (nn, new)):
        for r in runs:
            loads.append(f"{name} " + "/".join(str(v.get("load1")) for k, v in r.items() if "load1" in v and k != "env"))
    print()
    print("1-minute load average at each result, in phase order: " + "; ".join(loads))
    print(f"\nFigures worse by more than {a.limit:g}%: {worse}")


if __name__ == "__main__":
    main()
