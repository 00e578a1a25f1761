#!/usr/bin/env python3
"""The write-path table: the same hub_load runs against the hub before and after.

    write_path_summary.py --before heph-before.jsonl --after heph-after.jsonl [--machine machine.txt] [--quick]

Prints Markdown: the machine, the failures, and one table (metric, before,
after, gain, target, met). The gain is after/before where higher is better
and before/after where lower is better (marked "a/b" or "b/a"): above 1 means
the new hub does better. Lines are told apart by their "run" (hub_load --tag).
"""

import argparse
import json
import math


def load(path):
    rows, errors = {}, []
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
            elif op == "pushlat":
                op = f"pushlat{v.get('pushers')}"
            key = f"{v.get('run', 'main')}/{op}"
            rows.setdefault(key, v)
            if "error" in v:
                errors.append(f"FAILED {key}: {v['error']}")
            if v.get("warning"):
                errors.append(f"{key}: {v['warning']}")
    return rows, errors


def num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def fmt(v, unit="", digits=None):
    if not num(v):
        return "—" if v is None else str(v)
    if isinstance(v, int) and digits is None:
        return f"{v:,}{unit}"
    if digits is None:
        digits = 0 if abs(v) >= 100 else (1 if abs(v) >= 10 else 2)
    return f"{v:,.{digits}f}{unit}"


def get(rows, key, *path):
    v = rows.get(key, {})
    for k in path:
        v = v.get(k) if isinstance(v, dict) else None
    return v


def gain(b, a, higher_better):
    if not (num(a) and num(b)) or (a == 0 if not higher_better else b == 0):
        return ""
    r = a / b if higher_better else b / a
    s = f"{r:,.1f}×" if r >= 10 else f"{r:,.2f}×"
    return s + (" (a/b)" if higher_better else " (b/a)")


QUICK = False


def met(ok):
    if ok is None:
        return ""
    if QUICK:
        return "(quick run)"
    return "yes" if ok else "**NO**"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--machine")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    global QUICK
    QUICK = a.quick
    (b, berr), (n, nerr) = load(a.before), load(a.after)

    if a.machine:
        print("```")
        with open(a.machine, encoding="utf-8") as f:
            print(f.read().rstrip())
        print("```")
        print()
    if QUICK:
        print("**QUICK run: smaller sizes; the targets are for the full run.**\n")
    for side, errs in (("before", berr), ("after", nerr)):
        for e in errs:
            print(f"- {side}: {e}")
    print()

    cols = ["metric", "before", "after", "gain (> 1: after better)", "target", "met"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))

    def row(metric, bv, av, g="", target="", ok=None):
        print("| " + " | ".join(str(c) for c in (metric, bv, av, g, target, met(ok))) + " |")

    def metric(label, key, path, unit="", higher_better=None, target="", check=None, scale=1.0, digits=None):
        """A row of one number; `check(before, after)` says whether the target is met."""
        bv, av = get(b, key, *path), get(n, key, *path)
        if scale != 1.0:
            bv = bv * scale if num(bv) else bv
            av = av * scale if num(av) else av
        g = gain(bv, av, higher_better) if higher_better is not None else ""
        ok = None
        if check is not None:
            ok = bool(num(av) and check(bv, av))
        row(label, fmt(bv, unit, digits), fmt(av, unit, digits), g, target, ok)

    def within(higher_better):
        # Within 10 % of before, or better.
        if higher_better:
            return lambda bv, av: not num(bv) or av >= 0.9 * bv
        return lambda bv, av: not num(bv) or av <= 1.1 * bv

    # ---- write path
    for key, label in (("acks/acks", "acks"), ("acks1000/acks1000", "acks")):
        conns = get(n, key, "connections") or get(b, key, "connections")
        head = f"{fmt(conns)} connections pushing one change at a time"
        if key == "acks/acks":
            metric(
                f"**{head}: acks/s**", key, ("acks_per_s",), "/s", True, "≥ 10,000/s and ≥ 10× before",
                lambda bv, av: av >= 10_000 and (not num(bv) or av >= 10 * bv),
            )
        else:
            metric(f"**{head}: acks/s**", key, ("acks_per_s",), "/s", True)
        metric("  push → ack p50", key, ("ack", "p50_us"), " µs", False)
        metric("  push → ack p99", key, ("ack", "p99_us"), " µs", False)
        metric("  push → ack max", key, ("ack", "max_us"), " µs", False)
        metric("  changes acknowledged", key, ("acked",))
        metric("  group commits/s", key, ("commits_per_s",), "/s")
        metric("  pushes per group commit (mean)", key, ("group_mean",), digits=2)
        metric("  live deliveries/s (hub's counter)", key, ("live_deliveries_per_s",), "/s", True)
        metric("  live changes received/s (clients)", key, ("live_changes_recv_per_s",), "/s", True)
        metric("  hephd CPU s in the window", key, ("hub_cpu_s",), " s")
        metric("  hephd peak RSS", key, ("hub_hwm_kb",), " MB", False, scale=1 / 1024)
        metric("  connections failed or dropped", key, ("errors",))
        metric("  dropped as too slow (hub's counter)", key, ("dropped_slow",))
    for nkey in sorted({k for k in list(b) + list(n) if k.startswith("pushlat/pushlat")}, key=lambda k: int(k.split("pushlat")[-1] or 0)):
        p = get(n, nkey, "pushers") or get(b, nkey, "pushers")
        big = num(p) and p >= 100
        metric(
            f"**push → ack, {fmt(p)} concurrent pusher(s): p50**" if big else f"push → ack, {fmt(p)} pusher(s): p50",
            nkey, ("ack", "p50_us"), " µs", False,
        )
        metric(
            f"**  p99**" if big else "  p99", nkey, ("ack", "p99_us"), " µs", False,
            "< 10 ms" if big else "", (lambda bv, av: av < 10_000) if big else None,
        )
        metric("  max", nkey, ("ack", "max_us"), " µs", False)
        metric("  pushes acked", nkey, ("acked",))
        metric("  acks/s", nkey, ("acks_per_s",), "/s", True)
    key = "storm/storm"
    devs = get(n, key, "devices") or get(b, key, "devices")
    back = (get(n, key, "head") or 0) - (get(n, key, "cursor") or 0)
    metric(f"**reconnect storm after a restart: {fmt(devs)} devices at once, {back} changes behind: all caught up**", key, ("all_caught_up_s",), " s", False, digits=3)
    metric("  per-device catch-up p50", key, ("device", "p50_ms"), " ms", False)
    metric("  per-device catch-up p99", key, ("device", "p99_ms"), " ms", False)
    metric("  per-device connect → welcome p90 (1 s: the connect was retried)", key, ("welcome", "p90_ms"), " ms", False)
    metric(
        "**  hephd peak RSS (restarted for the storm)**", key, ("hub_hwm_kb",), " MB", False, "< 300 MB",
        lambda bv, av: av < 300, scale=1 / 1024,
    )
    metric("  devices failed", key, ("failed",), target="0", check=lambda bv, av: av == 0)

    # ---- the existing table (run "main"); within 10 % of before or better
    m = "main/"
    metric(f"preload {fmt(get(n, m + 'preload', 'count'))} tasks: s", m + "preload", ("seconds",), " s", False, "≤ before + 10 %", within(False))
    metric("new device, snapshot bootstrap: s", m + "bootstrap", ("seconds",), " s", False, "≤ before + 10 %", within(False))
    metric("  from the change log: s", m + "catchup", ("seconds",), " s", False)
    for op in ("latency", "latency_ref"):
        subs, rate = get(n, m + op, "subscribers"), get(n, m + op, "rate")
        for k, nm in (("p50_ms", "p50"), ("p99_ms", "p99")):
            metric(f"latency {subs} subscribers @ {rate}/s: {nm}", m + op, (k,), " ms", False, "≤ before + 10 %", within(False))
        metric(f"  push → ack p99 ({subs} @ {rate}/s)", m + op, ("ack", "p99_ms"), " ms", False)
    for op in sorted(k for k in set(b) | set(n) if k.startswith(m + "fanout")):
        metric(
            f"fan-out to {fmt(get(n, op, 'subscribers'))} subscribers, {get(n, op, 'batch')}/push: deliveries/s",
            op, ("deliveries_per_s",), "/s", True, "≥ before − 10 %", within(True),
        )
        metric("  pushes/s", op, ("pushes_per_s",), "/s", True)
    metric(
        f"hephd RSS, {fmt(get(n, m + 'idle', 'connections'))} idle connections", m + "idle", ("rss_idle_kb",), " MB", False,
        "≤ before + 10 %", within(False), scale=1 / 1024,
    )
    metric("hephd peak RSS, main run", m + "hephd", ("rss_hwm_kb",), " MB", False, scale=1 / 1024)
    print()
    loads = []
    for side, rows in (("before", b), ("after", n)):
        loads.append(side + ": " + ", ".join(f"{k} {v.get('load1')}" for k, v in rows.items() if "load1" in v and k.split("/")[1] not in ("env",)))
    print("Load average (1 min) at each result — " + "; ".join(loads))


if __name__ == "__main__":
    main()
