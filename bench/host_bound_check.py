"""Does the host-bound flag agree with the profiler's GPU-busy share?

edgebench flags a timed phase `host_bound` when the GPU finishes less than 10% of the phase after the
timed call returns (`gpu_lag_ms`, measured on synchronised warm-up calls). The profiler measures the
same thing another way: the GPU kernel time of one profiled step against the timed median gives
`gpu_idle_share` = 1 - kernel_ms / wall_ms (the GPU sat idle, waiting for launches, that share of the
time). A flagged phase should have a large idle share and an unflagged one a small share.

This script runs `edgebench run ... --profile ops` as a user does (a subprocess, its own log), then
prints one row per phase: median, GPU lag, the flag, the profiler's idle share; and the separation:
the largest idle share among unflagged phases against the smallest among flagged ones.

    python bench/host_bound_check.py --out OUT --json OUT/host_bound_check.json      # the defaults below
    python bench/host_bound_check.py --log OUT/edgebench-....jsonl                     # an existing log
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def run(args) -> Path:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / f"hostbound-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    cmd = [sys.executable, "-m", "edgebench", "run", "-m", args.models, "-c", args.ctx, "-n", str(args.gen),
           "--decode-mode", args.modes, "--profile", "ops", "--device", args.device, "-o", str(log)]
    if args.dtype:
        cmd += ["-t", args.dtype]
    print("$", " ".join(cmd), flush=True)
    rc = subprocess.run(cmd, check=False).returncode
    if rc:  # a failed point still leaves its lines: the table shows what was measured
        print(f"edgebench run exited {rc}: the table below holds the points it measured", file=sys.stderr)
    return log


def rows(log: Path) -> list[dict]:
    from edgebench.logs.loader import load
    logs = load([log])
    # a profile carries the key of its line: a prefill profile its point's prefill line, a decode
    # profile its mode's line (so several dtypes, backends or runs in one log never cross)
    ops = {(o["key"], o["phase"]): o for o in logs.ops}
    out = []
    for c in logs.cases:
        if c.get("status") != "ok":
            continue
        mode = c.get("decode_mode")
        phase, metric = ("decode", "tpot_ms") if mode else ("prefill", "prefill_ms")
        o = ops.get((c["key"], phase))
        stats = c.get(metric) or {}
        if o is None or stats.get("median") is None or c.get("gpu_lag_ms") is None:
            continue
        out.append({"model": c["model"], "ctx": c["ctx"], "phase": mode or "prefill",
                    "median_ms": stats["median"], "gpu_lag_ms": c.get("gpu_lag_ms"),
                    "host_bound": bool(c["host_bound"]), "gpu_idle_share": o.get("gpu_idle_share"),
                    "kernel_ms": o.get("kernel_ms")})
    return out


def summary(table: list[dict]) -> dict:
    flagged = [r["gpu_idle_share"] for r in table if r["host_bound"] and r["gpu_idle_share"] is not None]
    clear = [r["gpu_idle_share"] for r in table if not r["host_bound"] and r["gpu_idle_share"] is not None]
    return {"phases": len(table), "flagged": len(flagged), "unflagged": len(clear),
            "min_idle_share_flagged": min(flagged) if flagged else None,
            "max_idle_share_unflagged": max(clear) if clear else None,
            "separated": (min(flagged) > max(clear)) if flagged and clear else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", "-m", default="qwen2.5-0.5b,mamba2-780m,zamba2-1.2b")
    ap.add_argument("--ctx", "-c", default="1k,4k,16k")
    ap.add_argument("--gen", "-n", type=int, default=32)
    ap.add_argument("--modes", default="eager,graph")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", "-t", default=None)
    ap.add_argument("--out", default="hostbound-out")
    ap.add_argument("--log", help="read this log instead of running")
    ap.add_argument("--json", help="write the rows and the summary here")
    args = ap.parse_args(argv)
    log = Path(args.log) if args.log else run(args)
    if not log.exists():
        print(f"no log at {log}: the run wrote nothing (see its output above)", file=sys.stderr)
        return 1
    table = rows(log)
    print(f"{'model':16} {'ctx':>6} {'phase':8} {'median_ms':>10} {'gpu_lag_ms':>10} {'flag':>4} "
          f"{'kernel_ms':>10} {'gpu_idle':>8}")
    for r in table:
        idle = r["gpu_idle_share"]
        print(f"{r['model']:16} {r['ctx']:>6} {r['phase']:8} {r['median_ms']:>10.4g} "
              f"{(r['gpu_lag_ms'] if r['gpu_lag_ms'] is not None else float('nan')):>10.3g} "
              f"{'H' if r['host_bound'] else '-':>4} {r['kernel_ms'] or float('nan'):>10.4g} "
              f"{'-' if idle is None else f'{100 * idle:.1f}%':>8}")
    s = summary(table)
    fmt = lambda x: "-" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    print(f"\n{s['phases']} phases, {s['flagged']} flagged host-bound: GPU idle share of flagged phases "
          f">= {fmt(s['min_idle_share_flagged'])}, of unflagged <= {fmt(s['max_idle_share_unflagged'])}; "
          + {True: "the flag separates them", False: "the flag does NOT separate them",
             None: "cannot tell: it needs both flagged and unflagged phases"}[s["separated"]])
    if args.json:
        Path(args.json).write_text(json.dumps({"log": str(log), "rows": table, "summary": s}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
