#!/usr/bin/env python3
"""Turns hub_load's and the reference's JSON lines into the side-by-side table.

    summary.py --heph heph.jsonl [--peer peer.jsonl] [--machine machine.txt] [--quick]

Prints Markdown: the machine, one table (heph, reference, ratio reference/heph,
target, met), and the extra rows of each phase. Ratios > 1 mean heph is faster
(smaller is better for every metric compared).
"""

import argparse
import json
import math


def load(path):
    rows = {}
    if not path:
        return rows
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


def ratio(ref, heph):
    if not (num(ref) and num(heph)) or heph == 0:
        return ""
    r = ref / heph
    return f"{r:,.1f}×" if r >= 10 else f"{r:,.2f}×"


QUICK = False


def met(ok):
    if ok is None:
        return ""
    if QUICK:
        return "(quick run)"
    return "yes" if ok else "**NO**"


def fetch_cell(p):
    f = p.get("fetch")
    if not f:
        return "—"
    if "error" in f:
        return f"failed: {f['error']}"
    cell = f"{fmt(f.get('seconds'), ' s')} ({fmt(f.get('ok'))} ok"
    if not fetch_complete(p):
        cell += f", **{fmt(f.get('unavailable'))} unavailable, {fmt(f.get('failed'))} failed**"
    return cell + f", {f.get('disconnects', 0)} disconnects)"


def fetch_complete(p):
    f = p.get("fetch", {})
    return f.get("ok") is not None and f.get("ok") == f.get("count")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heph", required=True)
    ap.add_argument("--peer")
    ap.add_argument("--machine")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    global QUICK
    QUICK = a.quick
    h, p = load(a.heph), load(a.peer)

    if a.machine:
        print("```")
        with open(a.machine, encoding="utf-8") as f:
            print(f.read().rstrip())
        print("```")
        print()
    if a.quick:
        print("**QUICK run: smaller sizes; the targets are for the full run.**\n")
    for side, rows in (("heph", h), ("reference", p)):
        for op, v in rows.items():
            if "error" in v:
                print(f"- {side} {op} FAILED: {v['error']}")
    print()

    def g(rows, op, *keys):
        v = rows.get(op, {})
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        return v

    cols = ["metric", "heph", "reference", "ratio ref/heph", "target", "met"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))

    def row(metric, heph, ref="", r="", target="", ok=None):
        cells = [metric, heph, ref, r, target, met(ok)]
        print("| " + " | ".join(str(c) for c in cells) + " |")

    count = g(h, "preload", "count")
    # 1. preload
    hs, ps = g(h, "preload", "seconds"), g(p, "preload", "seconds")
    row(
        f"preload {fmt(count)} tasks (one client, pushes of {g(h, 'preload', 'batch')}; ref rounds of {g(p, 'preload', 'batch') or '—'}): s",
        f"{fmt(hs)} s ({fmt(g(h, 'preload', 'docs_per_s'))}/s)",
        f"{fmt(ps)} s ({fmt(g(p, 'preload', 'docs_per_s'))}/s, {g(p, 'preload', 'disconnects')} disconnects)" if ps is not None else "—",
        ratio(ps, hs),
    )
    # 2. bootstrap vs fetch
    hb, pf = g(h, "bootstrap", "seconds"), g(p, "fetch", "seconds")
    ok = None
    if num(hb):
        ok = hb < 2 and (not num(pf) or pf / hb >= 10)
        if not num(pf):
            ok = hb < 2
    row(
        f"new device gets {fmt(g(h, 'bootstrap', 'docs'))} tasks (heph: snapshot bootstrap into an in-memory replica; ref: fetch, batches of {g(p, 'fetch', 'batch') or '—'})",
        f"{fmt(hb, ' s')} (apply {fmt(g(h, 'bootstrap', 'apply_s'), ' s')})",
        fetch_cell(p),
        ratio(pf, hb) + ("" if fetch_complete(p) or "fetch" not in p else " (ref incomplete)"),
        "< 2 s and ≥ 10× faster",
        ok,
    )
    row(
        "  same, receive only (no decode/apply): hub + socket",
        f"{fmt(g(h, 'bootstrap_recv', 'seconds'), ' s', 3)} ({fmt(g(h, 'bootstrap_recv', 'mb'))} MB, {g(h, 'bootstrap_recv', 'frames')} frames)",
    )
    row(
        "  same, from the change log (bootstrap off)",
        f"{fmt(g(h, 'catchup', 'seconds'), ' s')} (apply {fmt(g(h, 'catchup', 'apply_s'), ' s')})",
        "",
        ratio(pf, g(h, "catchup", "seconds")),
    )
    res = h.get("bootstrap_resume", {})
    if res:
        row(
            "  bootstrap cut after the first snapshot frame, then resumed: tasks on the device",
            f"{fmt(res.get('docs_after_resume'))} of {fmt(res.get('expected_docs'))}",
            "",
            "",
            "all",
            res.get("ok"),
        )
    # 3. latency
    for op, pop, label, target in (
        ("latency_ref", "latency", "10 subscribers @ 50 changes/s", None),
        ("latency", None, "100 subscribers @ 100 changes/s", ("p50 < 5 ms", "p99 < 25 ms")),
    ):
        subs, rate = g(h, op, "subscribers"), g(h, op, "rate")
        label = f"{subs} subscribers @ {rate} changes/s" if subs else label
        for i, (k, name) in enumerate((("p50_ms", "p50"), ("p99_ms", "p99"), ("max_ms", "max"))):
            hv = g(h, op, k)
            pv = g(p, pop, k) if pop else None
            t = ""
            ok = None
            if target and i < 2:
                t = target[i]
                limit = 5 if i == 0 else 25
                ok = num(hv) and hv < limit
            row(
                f"latency {label}, send → receipt: {name}",
                fmt(hv, " ms"),
                fmt(pv, " ms") if pop else "",
                ratio(pv, hv) if pop else "",
                t,
                ok,
            )
        hd, he = g(h, op, "deliveries"), g(h, op, "expected")
        pd, pe = (g(p, pop, "deliveries"), g(p, pop, "expected")) if pop else (None, None)
        row(
            f"  deliveries ({label})",
            f"{fmt(hd)} of {fmt(he)}",
            f"{fmt(pd)} of {fmt(pe)}" if pop and pd is not None else "",
        )
        row(
            f"  push → ack (durable commit) p50 / p99 ({label})",
            f"{fmt(g(h, op, 'ack', 'p50_ms'), ' ms')} / {fmt(g(h, op, 'ack', 'p99_ms'), ' ms')}",
        )
    # 4. fan-out
    for key in sorted(k for k in h if k.startswith("fanout")):
        v = h[key]
        dps = v.get("deliveries_per_s")
        row(
            f"fan-out to {fmt(v.get('subscribers'))} subscribers, {v.get('batch')} change(s)/push: deliveries/s",
            f"{fmt(dps)} ({fmt(v.get('frames_per_s'))} frames/s)",
            "",
            "",
            "≥ 50,000/s",
            num(dps) and dps >= 50_000,
        )
        row(
            f"  pushes/s acked; delivered; send → receipt p50 / p99 ({v.get('batch')}/push)",
            f"{fmt(v.get('pushes_per_s'))}/s; {fmt(v.get('deliveries'))} of {fmt(v.get('expected'))}; "
            f"{fmt(g(h, key, 'latency', 'p50_ms'), ' ms')} / {fmt(g(h, key, 'latency', 'p99_ms'), ' ms')}",
        )
        row(
            f"  CPU during the run: hephd / harness ({v.get('batch')}/push, {fmt(v.get('seconds'))} s)",
            f"{fmt(v.get('hub_cpu_s'), ' s')} / {fmt(v.get('harness_cpu_s'), ' s')}",
        )
    # 5. idle
    idle = h.get("idle", {})
    if idle:
        mb = idle.get("rss_idle_kb", 0) / 1024
        row(
            f"hephd RSS with {fmt(idle.get('connections'))} idle live connections",
            f"{fmt(mb, ' MB')} (before: {fmt(idle.get('rss_before_kb', 0) / 1024, ' MB')}, "
            f"{fmt(idle.get('per_conn_kb'), ' KB')}/conn; at start {fmt(idle.get('rss_start_kb', 0) / 1024, ' MB')})",
            "",
            "",
            "< 200 MB",
            mb < 200,
        )
    hd = h.get("hephd", {})
    if hd:
        row(
            "hephd at the end: RSS peak, CPU total, log warnings/errors, dropped slow",
            f"{fmt(hd.get('rss_hwm_kb', 0) / 1024, ' MB')}, {fmt(hd.get('cpu_s'), ' s')}, "
            f"{hd.get('log_warn')}/{hd.get('log_error')}, {fmt(g(h, 'hephd', 'metrics', 'heph_hub_dropped_slow_total'))}",
        )
    print()
    print("Load average (1 min) at each heph result: " + ", ".join(f"{k} {v.get('load1')}" for k, v in h.items() if "load1" in v))


if __name__ == "__main__":
    main()
