#!/usr/bin/env python3
"""Medians and gearbox/gearmand ratios of a bench/compare.sh run.

usage: bench/summarize.py OUT_DIR

Reads OUT_DIR/{gearmand,gearbox}.rN.SCENARIO.json (the `gearbox bench --json` output of each
round), prints one line per metric: both medians, the ratio gearbox/gearmand, the target and
whether it holds, and writes the same as OUT_DIR/summary.json.
"""

import glob
import json
import os
import statistics
import sys


def load(out, kind, name):
    """Every round's phases of one scenario for one server, as a list of lists."""
    runs = []
    for path in sorted(glob.glob(os.path.join(out, f"{kind}.r*.{name}.json"))):
        with open(path) as f:
            text = f.read().strip()
        if text:
            runs.append(json.loads(text))
    return runs


def phase(runs, phase_name):
    return [p for run in runs for p in run if p["phase"] == phase_name]


# (label, scenario file, phase, value, higher is better, target ratio)
METRICS = [
    ("fg jobs/s, classic, 1 client", "fg1", "fg", "rate", True, None),
    ("fg jobs/s, classic, 16 clients", "fg16", "fg", "rate", True, 1.2),
    ("fg jobs/s, classic, 64 clients", "fg64", "fg", "rate", True, None),
    ("fg p99 latency ms, classic, 16 clients", "fg16", "fg", "p99", False, 0.8),
    ("fg server CPU us/job, classic, 16 clients", "fg16", "fg", "cpu", False, 0.5),
    ("bg submit jobs/s, classic, 16 clients", "bg16", "bg-submit", "rate", True, 1.6),
    ("bg drain jobs/s, classic, 16 workers", "bg16", "bg-drain", "rate", True, 1.6),
    ("bg submit server CPU us/job, classic", "bg16", "bg-submit", "cpu", False, 0.5),
    ("bg drain server CPU us/job, classic", "bg16", "bg-drain", "cpu", False, 0.5),
    ("fg jobs/s, pipelined, 16 clients", "pfg16", "fg", "rate", True, 2.0),
    ("fg server CPU us/job, pipelined", "pfg16", "fg", "cpu", False, 0.5),
    ("bg submit jobs/s, pipelined, 16 clients", "pbg16", "bg-submit", "rate", True, 2.0),
    ("bg drain jobs/s, pipelined, 4 workers", "pbg16", "bg-drain", "rate", True, 2.0),
    ("fg jobs/s, 16 clients, 4 workers, 10 KB payloads", "sweep", "fg 10240B", "rate", True, None),
    ("fg jobs/s, 16 clients, 4 workers, 1 MB payloads", "sweep", "fg 1048576B", "rate", True, None),
    ("fg server CPU us/job, 1 MB payloads", "sweep", "fg 1048576B", "cpu", False, None),
    ("server RSS MiB, idle", "idle", "fg", "rss", False, None),
    ("server RSS MiB, 1M queued 100 B jobs", "mem", "bg-submit", "rss", False, 0.5),
    ("durable bg submit jobs/s, SQLite, 16 clients", "dur16", "bg-submit", "rate", True, 10.0),
]


def value(p, what):
    if what == "rate":
        return p["jobs_per_sec"]
    if what == "p99":
        return p["latency"]["p99_us"] / 1000.0
    if what == "cpu":
        return p.get("server_cpu_us_per_job")
    if what == "rss":
        return p.get("server_rss_kib", 0) / 1024.0
    raise ValueError(what)


def main():
    out = sys.argv[1]
    rows = []
    for label, scenario, phase_name, what, higher, target in METRICS:
        medians = {}
        for kind in ("gearmand", "gearbox"):
            values = [value(p, what) for p in phase(load(out, kind, scenario), phase_name)]
            values = [v for v in values if v is not None]
            medians[kind] = statistics.median(values) if values else None
        gm, gb = medians["gearmand"], medians["gearbox"]
        if gm is None or gb is None:
            continue
        ratio = gb / gm if gm else float("inf")
        ok = None
        if target is not None:
            ok = ratio >= target if higher else ratio <= target
        rows.append(
            {
                "metric": label,
                "gearmand": gm,
                "gearbox": gb,
                "ratio": ratio,
                "target": (">= " if higher else "<= ") + f"{target}x" if target else "",
                "ok": ok,
            }
        )
    width = max(len(r["metric"]) for r in rows) if rows else 10
    print(f"{'METRIC':<{width}}  {'GEARMAND':>10}  {'GEARBOX':>10}  {'RATIO':>6}  TARGET    OK")
    for r in rows:
        verdict = {True: "yes", False: "NO", None: ""}[r["ok"]]
        print(
            f"{r['metric']:<{width}}  {r['gearmand']:>10.1f}  {r['gearbox']:>10.1f}"
            f"  {r['ratio']:>5.2f}x  {r['target']:<8}  {verdict}"
        )
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(rows, f, indent=2)
    return 0 if all(r["ok"] is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
