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
    python bench/run_overhead.py --log LOG --wall-s 140     # an existing log, its run's wall time known

Each run also prints where the wall time went (`accounting`): outside the points (the run's wall
minus the sum of the points' `wall_s`: the parent's start, the environment snapshot, the fork
server's preload, the header, the summary), each point's set-up (its `wall_s` minus its timed work
and its cold first calls: the worker's fork, the idle power baseline, the decode modes' own
prefills, bookkeeping), the cold first calls by kind (`cold_ms`: load, first_forward,
detect_kernels, first_prefill, graph_warmup ...), and the timed work. Where the log has its run's
timeline (the header's `startup_s` and `preload_s`, the `end` record's `teardown_s`), "outside the
points" is split into named parts: the interpreter's start, the environment snapshot, the fork
servers' preload left after it, the header, the gap to the first point, the fork servers' shutdown,
and the summary and exit after the end record. Where its prefill lines have `setup_ms`, the
per-point set-up is split likewise: the worker process's start and exit, its device init, telemetry
(sampler, idle baseline, energy), memory model, release between decode modes, and the rest.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from edgebench.logs.loader import load


def timed_work(log: str, since: str | None = None) -> dict[str, float]:
    """Timed work, cold calls and the points' wall time of the log's runs (those whose header is
    from `since` on, an ISO UTC time: what the command just run wrote, not a resumed log's older
    runs); `devices`: the most GPUs one of them ran on at once (--devices)."""
    logs = load([log])
    runs = {k: h for k, h in logs.runs.items() if since is None or str(h.get("t") or "") >= since}
    spec = next(iter(runs.values()), {}).get("spec") or {}
    reps, warmup = int(spec.get("reps", 5)), int(spec.get("warmup", 2))
    out = {"timed_s": 0.0, "cold_s": 0.0, "lines": 0, "ok_lines": 0, "points_wall_s": 0.0, "points": 0,
           "devices": max((len(h.get("devices") or []) for h in runs.values()), default=0) or 1,
           "runs_per_point": int(spec.get("runs") or 1), "log_runs": len(runs)}
    cold: dict[str, float] = {}
    setup: dict[str, float] = {}  # the per-point set-up's named parts (the lines' setup_ms)
    for r in logs.cases:
        if r.get("run") not in runs:
            continue
        out["lines"] += 1
        if isinstance(r.get("wall_s"), (int, float)):  # a prefill line: its point's worker wall time
            out["points_wall_s"] += r["wall_s"]
            out["points"] += 1
            parts = r.get("setup_ms")
            if isinstance(parts, dict) and out["runs_per_point"] == 1:  # the worker's untimed steps
                for k, v in parts.items():
                    if isinstance(v, (int, float)) and k != "worker":
                        setup[k] = setup.get(k, 0.0) + v / 1e3
                if isinstance(parts.get("worker"), (int, float)):
                    setup["process start and exit (wall_s - worker)"] = \
                        setup.get("process start and exit (wall_s - worker)", 0.0) + r["wall_s"] - parts["worker"] / 1e3
        if r["status"] != "ok":
            continue
        out["ok_lines"] += 1
        runs_n = r.get("runs") or 1
        pre, tp = r.get("prefill_ms") or {}, r.get("tpot_ms") or {}
        if pre.get("median"):
            out["timed_s"] += (warmup + reps) * pre["median"] * runs_n / 1e3
        if tp.get("median") and r.get("gen"):
            out["timed_s"] += (warmup + r["gen"]) * tp["median"] * runs_n / 1e3
        for k, v in (r.get("cold_ms") or {}).items():
            if isinstance(v, (int, float)):
                out["cold_s"] += v / 1e3
                cold[k] = cold.get(k, 0.0) + v / 1e3
    out["cold_by_kind_s"] = cold
    out["setup_by_part_s"] = setup
    return out


def accounting(got: dict, wall_s: float) -> dict[str, float]:
    """Where a run's `wall_s` went (see the module doc), in seconds; the four parts sum to it. With
    several GPUs at once (--devices) the parts are device-seconds and sum to wall x devices."""
    points, capacity = got["points_wall_s"], wall_s * got.get("devices", 1)
    return {"outside_points_s": capacity - points,
            "point_setup_s": points - got["timed_s"] - got["cold_s"],
            "cold_s": got["cold_s"], "timed_s": got["timed_s"]}


def show_accounting(got: dict, wall_s: float) -> str:
    if not got["points"]:  # a log from before the point executor: no line holds a worker's wall time
        return (f"accounting of {wall_s:.1f} s wall: not split (no line of this log records its worker's "
                f"wall_s); cold first calls {got['cold_s']:.1f} s, timed work {got['timed_s']:.1f} s")
    acc, n = accounting(got, wall_s), got.get("devices", 1)
    capacity = wall_s * n
    setup = "per-point set-up (wall_s - timed - cold)" if got.get("runs_per_point", 1) == 1 else \
        "per-point set-up (incl. runs 2..N's cold calls)"  # only run 1's cold calls are recorded
    names = {"outside_points_s": "outside the points (wall - sum of points' wall_s)" if n == 1 else
             f"idle GPU time ({n} x wall - sum of points' wall_s)",
             "point_setup_s": setup, "cold_s": "cold first calls (cold_ms)", "timed_s": "timed work"}
    head = f"{wall_s:.1f} s wall" if n == 1 else f"{capacity:.1f} device-seconds ({n} GPUs x {wall_s:.1f} s wall)"
    lines = [f"accounting of {head}, {got['points']} points (sum of their wall_s {got['points_wall_s']:.1f} s)"
             + (f", {got['log_runs']} runs of the log" if got.get("log_runs", 1) > 1 else "") + ":"]
    for k, label in names.items():
        lines.append(f"  {label:<52} {acc[k]:7.1f} s  {100 * acc[k] / capacity:5.1f}%")
        parts = {"cold_s": got["cold_by_kind_s"], "point_setup_s": dict(got.get("setup_by_part_s") or {})}.get(k, {})
        if k == "point_setup_s" and parts:  # what no step names: decode set-up prefills, memory probes
            parts["the rest (decode set-up prefills, work count, profiles)"] = acc[k] - sum(parts.values())
        for kind, v in sorted(parts.items(), key=lambda kv: -kv[1]):
            lines.append(f"    {kind:<50} {v:7.1f} s")
    return "\n".join(lines)


# The named parts of "outside the points" (a log's `startup_s` and `end` record, see
# edgebench.execution.timeline): (label, from moment, to moment); "wall" is the run's wall time.
PARTS = (("process start to the CLI's main (interpreter, imports)", None, "main"),
         ("main to the environment snapshot's start", "main", "env_start"),
         ("environment snapshot (a worker)", "env_start", "env"),
         ("- the fork server's imports, until READY", "env_start", "env_server"),
         ("- the snapshot, in a worker forked from it", "env_server", "env"),
         ("snapshot to log open (plan, device checks)", "env", "log_open"),
         ("log open to fork servers READY (preload left)", "log_open", "preload_ready"),
         ("fork servers READY to header written", "preload_ready", "header"),
         ("header to the first point's start", "header", "first_point"),
         ("first point's start to the last point's end", "first_point", "points_done"),
         ("fork servers' shutdown (or hand-over to the next group)", "points_done", "servers_done"),
         ("after the end record (summary, exit)", "servers_done", "wall"))


def timelines(log: str) -> list[dict]:
    """Each run of the log that recorded its timeline: {"run", "startup_s", "preload_s", "env_s",
    "teardown_s"} (seconds since its process started), in file order."""
    out: dict[str, dict] = {}
    with open(log, encoding="utf-8") as fh:
        for line in fh:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            kind, run = obj.get("type"), obj.get("run")
            if kind == "run" and isinstance(obj.get("startup_s"), dict):
                out[run] = {"run": run, "startup_s": obj["startup_s"], "preload_s": obj.get("preload_s") or {},
                            "env_s": (obj.get("env") or {}).get("snapshot_s") or {}, "teardown_s": {}}
            elif kind == "end" and run in out:
                out[run]["teardown_s"] = obj.get("teardown_s") or {}
    return list(out.values())


def split_outside(tl: dict, wall_s: float | None) -> list[tuple[str, float]]:
    """The named parts of one run's timeline that it recorded (both ends known), in seconds."""
    at = {**tl["startup_s"], **tl["teardown_s"], **({"wall": wall_s} if wall_s else {})}
    at["servers_done"] = at.get("servers_closed", at.get("servers_kept"))
    parts = []
    for label, a, b in PARTS:
        start = 0.0 if a is None else at.get(a)
        if isinstance(start, (int, float)) and isinstance(at.get(b), (int, float)):
            parts.append((label, at[b] - start))
    return parts


def show_timelines(log: str, got: dict, wall_s: float) -> str:
    tls = timelines(log)
    lines = []
    for i, tl in enumerate(tls):
        last = i == len(tls) - 1
        lines.append(f"timeline of run {tl['run']} (seconds; the log's startup_s / end record):")
        for label, v in split_outside(tl, wall_s if last else None):
            lines.append(f"  {label:<52} {v:7.2f} s")
        for dev, moments in tl["preload_s"].items():
            if moments:
                started, named, ready = moments
                lines.append(f"    fork server {dev}: started {started}, models named {named}, READY {ready}")
        if tl["env_s"]:
            lines.append("    environment snapshot's parts: " + ", ".join(f"{k} {v:.2f} s"
                                                                    for k, v in tl["env_s"].items()))
    if len(tls) == 1 and tls[0]["teardown_s"].get("points_done") is not None:
        td = tls[0]["teardown_s"]
        span = td["points_done"] - td.get("first_point", td["points_done"])
        lines.append(f"  the points' span minus the sum of their wall_s (parent between points; "
                     f"negative: points overlapped): {span - got['points_wall_s']:.2f} s")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", default="run")
    ap.add_argument("--json", default=None, help="append the result as one JSON line here")
    ap.add_argument("--log", default=None, help="the log the command writes (a glob), when it has no -o "
                    "(e.g. a no-argument `edgebench run`, whose log goes to edgebench-logs/)")
    ap.add_argument("--wall-s", type=float, default=None, help="with --log and no command: the wall "
                    "time of the run that wrote that log (seconds), to account for an existing log")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- the command; it must name its log with -o")
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        if not (args.log and args.wall_s):
            ap.error("give a command to run (-- edgebench run ...), or an existing --log with the "
                     "--wall-s its run took")
        if args.wall_s <= 0:
            ap.error(f"--wall-s must be positive, got {args.wall_s}")
    elif args.wall_s is not None:
        ap.error("--wall-s is for an existing --log; with a command the wall time is measured")
    if cmd and "-o" not in cmd and not args.log:
        ap.error("the command must name its log with -o LOG, or pass --log")
    t0, since = time.monotonic(), time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 1))
    rc = subprocess.call(cmd) if cmd else 0
    wall = time.monotonic() - t0 if cmd else args.wall_s
    if args.log:
        import glob
        found = sorted(glob.glob(args.log))
        if not found:
            sys.exit(f"no log matches {args.log} (the command exited {rc})")
        log = found[-1]
    else:
        log = cmd[cmd.index("-o") + 1]
    got = timed_work(log, since if cmd else None)
    res = {"label": args.label, "rc": rc, "wall_s": round(wall, 1),
           **{k: round(v, 2) for k, v in got.items() if k not in ("cold_by_kind_s", "setup_by_part_s")},
           **{k: {kind: round(v, 2) for kind, v in got[k].items()} for k in ("cold_by_kind_s", "setup_by_part_s")},
           "accounting": {k: round(v, 2) for k, v in accounting(got, wall).items()},
           # with --devices, in device-seconds: GPUs x wall over the work all of them did
           "wall_over_timed": round(wall * got["devices"] / got["timed_s"], 2) if got["timed_s"] else None,
           "wall_minus_cold_over_timed": round((wall * got["devices"] - got["cold_s"]) / got["timed_s"], 2)
           if got["timed_s"] else None, "command": cmd}
    per = "" if got["devices"] == 1 else f" ({got['devices']} GPUs: device-seconds, GPUs x wall / timed)"
    print(f"{args.label}: wall {res['wall_s']} s, timed work {res['timed_s']} s, cold first calls "
          f"{res['cold_s']} s, {res['ok_lines']}/{res['lines']} lines ok: wall / timed = "
          f"{res['wall_over_timed']}x ({res['wall_minus_cold_over_timed']}x without the cold calls){per}")
    print(show_accounting(got, wall))
    parts = show_timelines(log, got, wall)
    if parts:
        print(parts)
        res["timelines"] = timelines(log)
    if args.json:
        with open(args.json, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(res) + "\n")
    sys.exit(rc)


if __name__ == "__main__":
    main()
