#!/usr/bin/env python3
"""Turns the reconcile harness's JSON lines (one or more runs) into a table.

    reconcile_summary.py reconcile.jsonl

One row per scenario and run: time from connect until the device is idle and
the hub's head equals the changes the device holds, frames and bytes each way
(text frame lengths), the bytes by frame type, and the 1-minute load average.
"""

import json
import sys


def mb(b):
    return f"{b / 1e6:.2f} MB"


def kinds(tally):
    return ", ".join(f"{k} {v['frames']}×/{mb(v['bytes'])}" for k, v in tally["by_type"].items())


def main():
    rows = []
    with open(sys.argv[1], encoding="utf-8") as f:
        for line in f:
            if line.startswith("{"):
                rows.append(json.loads(line))
    print("| scenario | docs / changes | ok | time | sent: frames, bytes | received: frames, bytes | after idle (echo) | hub CPU | device session | load 1/5/15 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    details = []
    for v in rows:
        if not v.get("op", "").startswith("reconcile_"):
            continue
        r = v["run"]
        name = v["op"].removeprefix("reconcile_")
        load = " / ".join(v.get("loadavg", "").split()[:3])
        print(
            f"| {name} | {v['docs']:,} / {v['changes']:,} | {'yes' if v['ok'] else '**NO**'} | {r['seconds']:.2f} s "
            f"| {r['sent']['frames']}, {mb(r['sent']['bytes'])} | {r['received']['frames']}, {mb(r['received']['bytes'])} "
            f"| {r['trailing_received']['frames']}, {mb(r['trailing_received']['bytes'])} "
            f"| {r['hub_cpu_s']:.2f} s | {r['device_session_s']:.2f} s | {load} |"
        )
        details.append(f"- {name}: sent {kinds(r['sent'])}; received {kinds(r['received'])}")
    print()
    print("\n".join(details))


if __name__ == "__main__":
    main()
