"""How much of a run's wall time is the measurement itself? Runs a command (an `edgebench run`), times
it, reads the log it wrote and prints wall time / timed work.

Timed work is the device work the measurement protocol asks for, from the log's own medians: per
prefill (a prefill line; in a v1 log every line) `(warmup + reps) * median prefill`, per decode
(a decode line; in v1 every line with gen > 0) `(warmup + gen) * median TPOT`, times the point's
runs. Everything else is overhead: process starts, model loads, kernel detection, idle power
baselines, cold first calls (Triton autotune, graph capture) and the parent's bookkeeping; the cold
first calls the log records (`cold_ms`) are printed apart, as they are paid once per point (or, for
an on-disk autotune cache, once per machine).

    python bench/run_overhead.py --label after --json OUT.json -- edgebench run --suite default-gpu -o LOG
    python bench/run_overhead.py --label first --log 'edgebench-logs/*.jsonl' -- edgebench run
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from edgebench.logs.loader import load


def timed_work(log: str) -> dict[str, float]:
    logs = load([log])
    spec = next(iter(logs.runs.values())).get("spec") or {}
    reps, warmup = int(spec.get("reps", 5)), int(spec.get("warmup", 2))
    out = {"timed_s": 0.0, "cold_s": 0.0, "lines": 0, "ok_lines": 0}
    for r in logs.cases:
        out["lines"] += 1
        if r["status"] != "ok":
            continue
        out["ok_lines"] += 1
        runs = r.get("runs") or 1
        pre, tp = r.get("prefill_ms") or {}, r.get("tpot_ms") or {}
        if pre.get("median"):
            out["timed_s"] += (warmup + reps) * pre["median"] * runs / 1e3
        if tp.get("median") and r.get("gen"):
            out["timed_s"] += (warmup + r["gen"]) * tp["median"] * runs / 1e3
        out["cold_s"] += sum(v for v in (r.get("cold_ms") or {}).values()
                             if isinstance(v, (int, float))) / 1e3
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", default="run")
    ap.add_argument("--json", default=None, help="append the result as one JSON line here")
    ap.add_argument("--log", default=None, help="the log the command writes (a glob), when it has no -o "
                    "(e.g. a no-argument `edgebench run`, whose log goes to edgebench-logs/)")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- the command; it must name its log with -o")
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if "-o" not in cmd and not args.log:
        ap.error("the command must name its log with -o LOG, or pass --log")
    t0 = time.monotonic()
    rc = subprocess.call(cmd)
    wall = time.monotonic() - t0
    if args.log:
        import glob
        found = sorted(glob.glob(args.log))
        if not found:
            sys.exit(f"no log matches {args.log} (the command exited {rc})")
        log = found[-1]
    else:
        log = cmd[cmd.index("-o") + 1]
    got = timed_work(log)
    res = {"label": args.label, "rc": rc, "wall_s": round(wall, 1), **{k: round(v, 2) for k, v in got.items()},
           "wall_over_timed": round(wall / got["timed_s"], 2) if got["timed_s"] else None,
           "wall_minus_cold_over_timed": round((wall - got["cold_s"]) / got["timed_s"], 2)
           if got["timed_s"] else None, "command": cmd}
    print(f"{args.label}: wall {res['wall_s']} s, timed work {res['timed_s']} s, cold first calls "
          f"{res['cold_s']} s, {res['ok_lines']}/{res['lines']} lines ok: wall / timed = "
          f"{res['wall_over_timed']}x ({res['wall_minus_cold_over_timed']}x without the cold calls)")
    if args.json:
        with open(args.json, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(res) + "\n")
    sys.exit(rc)


if __name__ == "__main__":
    main()
