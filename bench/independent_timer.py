"""Does edgebench agree with a plain, independent timer, phase by phase?

One call measures the same points twice, one after the other:
1. `edgebench run` as a user runs it (a subprocess; the log goes to OUT/edgebench-<time>.jsonl);
2. `bench/plain_timer.py`, which imports no edgebench module (torch, transformers and the standard
   library; it reads presets.json as data), in a fresh process per model: prefill with CUDA event
   pairs, eager decode on the cache transformers returns, graph decode on a StaticCache step captured
   with torch.cuda.graph (OUT/plain-<model>.json).
Then it prints one table: model, ctx, phase (prefill / eager / graph), edgebench's median, the
independent median, their ratio (edgebench / independent), and `H` with edgebench's GPU lag where
edgebench flagged the phase host-bound (`U` where it flagged it unstable); then the largest
disagreement among the phases not flagged host-bound and among the host-bound ones. `--json PATH` writes the same rows. Logs where each decode line carries its own
prefill (before points) read too: the prefill then comes from the first decode line of the point.

    python bench/independent_timer.py --out OUT --json OUT/agreement.json     # the defaults below
    python bench/independent_timer.py -m tiny-llama -c 32 -n 4 --modes eager --device cpu -t float32 --out OUT
"""
from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

PLAIN = Path(__file__).with_name("plain_timer.py")
PHASES = ("prefill", "eager", "graph")


def parse_ctx(text: str) -> list[int]:
    """"1k,16k" -> [1024, 16384] (k = 1024, as edgebench counts tokens), ascending."""
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        out.append(int(part[:-1]) * 1024 if part.endswith("k") else int(part))
    return sorted(set(out))


def _stat(rec: dict, name: str) -> dict:
    s = rec.get(name) if isinstance(rec.get(name), dict) else {}
    return {"median": s.get("median"), "p10": s.get("p10"), "p90": s.get("p90"), "status": rec.get("status"),
            "reason": rec.get("reason"), "host_bound": rec.get("host_bound") is True,
            "gpu_lag_ms": rec.get("gpu_lag_ms"), "unstable": rec.get("unstable") is True}


def read_edgebench(path: Path) -> dict[tuple[str, int, str], dict]:
    """(model, ctx, phase) -> edgebench's median and flags, from a log's case lines. A point's prefill
    line has no decode_mode; each decode mode has its own line (tpot_ms). A later line of the same
    phase wins (a rerun). Lines that do not parse are skipped and counted on stderr."""
    opener = gzip.open if path.suffix == ".gz" else open
    phases: dict[tuple[str, int, str], dict] = {}
    old_prefill: dict[tuple[str, int, str], dict] = {}
    bad = 0
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict) or rec.get("type") != "case":
                    continue
                model, ctx, mode = str(rec["model"]), int(rec["ctx"]), rec.get("decode_mode")
            except (ValueError, KeyError, TypeError):
                bad += 1
                continue
            if mode is None:
                phases[(model, ctx, "prefill")] = _stat(rec, "prefill_ms")
                continue
            phases[(model, ctx, str(mode))] = _stat(rec, "tpot_ms")
            if isinstance(rec.get("prefill_ms"), dict):  # a log from before points: prefill on each decode line
                old = _stat(rec, "prefill_ms")
                old.update(host_bound=False, gpu_lag_ms=None, note=f"prefill from the {mode} line (log before points)")
                old_prefill.setdefault((model, ctx, "prefill"), old)
    if bad:
        print(f"{path}: {bad} line(s) skipped (not JSON case lines)", file=sys.stderr)
    return {**old_prefill, **phases}


def agreement(eb: dict[tuple[str, int, str], dict], plain_rows: list[dict]) -> list[dict]:
    """One row per (model, ctx, phase) in either side: both medians, the ratio edgebench /
    independent where both exist, edgebench's host-bound flag and GPU lag, and why a number is missing."""
    plain = {(r["model"], r["ctx"], r["phase"]): r for r in plain_rows}
    models = list(dict.fromkeys([k[0] for k in plain] + [k[0] for k in eb]))
    keys = sorted(set(plain) | set(eb), key=lambda k: (models.index(k[0]), k[1],
                                                         PHASES.index(k[2]) if k[2] in PHASES else 9, k[2]))
    rows = []
    for key in keys:
        e, p = eb.get(key, {}), plain.get(key, {})
        e_ms, p_ms = e.get("median"), p.get("median_ms")
        notes = [e["note"]] if e.get("note") else []
        if not e:
            notes.append("edgebench: no line")
        elif e_ms is None:
            notes.append(f"edgebench: {e.get('status')} {e.get('reason') or ''}".strip())
        if not p:
            notes.append("independent: not measured")
        elif "skipped" in p:
            notes.append(f"independent: skipped, {p['skipped']}")
        rows.append({"model": key[0], "ctx": key[1], "phase": key[2], "edgebench_ms": e_ms,
                     "edgebench_p10_ms": e.get("p10"), "edgebench_p90_ms": e.get("p90"),
                     "independent_ms": p_ms, "independent_p10_ms": p.get("p10_ms"),
                     "independent_p90_ms": p.get("p90_ms"),
                     "ratio": round(e_ms / p_ms, 4) if e_ms and p_ms else None,
                     "host_bound": bool(e.get("host_bound")), "gpu_lag_ms": e.get("gpu_lag_ms"),
                     "unstable": bool(e.get("unstable")),
                     "note": "; ".join(notes)})
    return rows


def format_table(rows: list[dict]) -> str:
    def ms(x):
        return f"{x:.3f}" if isinstance(x, (int, float)) else "-"
    head = f"{'model':16s} {'ctx':>6s} {'phase':8s} {'edgebench ms':>13s} {'independent ms':>15s} {'ratio':>7s}  edgebench flags"
    lines = [head, "-" * len(head)]
    for r in rows:
        mark = " ".join(([f"H (lag {ms(r['gpu_lag_ms'])} ms)"] if r["host_bound"] else [])
                        + (["U"] if r["unstable"] else []))
        ratio = f"{r['ratio']:.3f}" if r["ratio"] is not None else "-"
        note = f"  [{r['note']}]" if r["note"] else ""
        lines.append(f"{r['model']:16s} {r['ctx']:6d} {r['phase']:8s} {ms(r['edgebench_ms']):>13s} "
                     f"{ms(r['independent_ms']):>15s} {ratio:>7s}  {mark}{note}")
    return "\n".join(lines)


def summary(rows: list[dict]) -> list[str]:
    out = []
    for label, bound in (("not flagged host-bound", False), ("host-bound (H)", True)):
        got = [r for r in rows if r["ratio"] is not None and r["host_bound"] is bound]
        if got:
            worst = max(got, key=lambda r: abs(r["ratio"] - 1))
            out.append(f"{label}: {len(got)} phase(s), largest disagreement {100 * (worst['ratio'] - 1):+.1f}% "
                       f"({worst['model']} {worst['ctx']} {worst['phase']})")
    return out


def run_edgebench(args, log: Path) -> tuple[list[str], int]:
    cmd = [sys.executable, "-m", "edgebench", "run", "-m", args.models, "-c", ",".join(map(str, args.ctx)),
           "-n", str(args.gen), "-r", str(args.reps), "--warmup", str(args.warmup), "--decode-mode", args.modes,
           "-t", args.dtype, "--device", args.device, "--timeout", str(args.case_timeout), "-o", str(log)]
    print("$ " + " ".join(cmd[1:]), flush=True)
    return cmd, subprocess.run(cmd).returncode


def run_plain(args, model: str, path: Path) -> dict:
    cmd = [sys.executable, str(PLAIN), "-m", model, "-c", ",".join(map(str, args.ctx)), "-n", str(args.gen),
           "--modes", args.modes, "-t", args.dtype, "--device", args.device, "-r", str(args.reps),
           "--warmup", str(args.warmup), "--json", str(path)]
    print("$ " + " ".join(cmd[1:]), flush=True)
    t0 = time.monotonic()
    try:
        rc = subprocess.run(cmd, timeout=args.plain_timeout).returncode
    except subprocess.TimeoutExpired:
        rc = "timeout"
    info = {"model": model, "rc": rc, "wall_s": round(time.monotonic() - t0, 1), "file": str(path), "rows": []}
    if rc == 0 and path.exists():
        info.update(json.loads(path.read_text()))
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--models", default="qwen2.5-0.5b,mamba2-780m,zamba2-1.2b")
    ap.add_argument("-c", "--ctx", default="1k,16k", type=parse_ctx, help="prompt lengths: 1k = 1024")
    ap.add_argument("-n", "--gen", type=int, default=64, help="decode steps timed per mode")
    ap.add_argument("--modes", default="eager,graph", help="decode modes: eager, graph (graph: CUDA only)")
    ap.add_argument("-t", "--dtype", default="bfloat16")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("-r", "--reps", type=int, default=5, help="timed prefills, both timers")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up calls, both timers")
    ap.add_argument("--out", type=Path, default=Path("indep-out"), help="folder for the logs")
    ap.add_argument("--edgebench-log", type=Path, help="compare with this log instead of running edgebench")
    ap.add_argument("--case-timeout", type=int, default=120, help="edgebench run --timeout")
    ap.add_argument("--plain-timeout", type=int, default=240, help="seconds per model for the plain timer")
    ap.add_argument("--json", type=Path, help="write the agreement rows here")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    cmd, eb_rc = None, 0
    log = args.edgebench_log
    if log is None:  # a fresh log each call: an existing one would make edgebench resume, not measure
        log = args.out / f"edgebench-{stamp}.jsonl"
        cmd, eb_rc = run_edgebench(args, log)
    plain = [run_plain(args, m, args.out / f"plain-{m}-{stamp}.json") for m in args.models.split(",")]
    eb = read_edgebench(log) if log.exists() else {}
    rows = agreement(eb, [r for p in plain for r in p["rows"]])
    print(format_table(rows))
    for line in summary(rows):
        print(line)
    failed = [f"{p['model']}: plain timer exit {p['rc']}" for p in plain if p["rc"] != 0]
    if eb_rc:
        failed.append(f"edgebench run exit {eb_rc}")
    for f in failed:
        print(f"FAILED {f}")
    if args.json:
        args.json.write_text(json.dumps({"edgebench_log": str(log), "edgebench_command": cmd, "rows": rows,
                                         "plain": [{k: v for k, v in p.items() if k != "rows"} for p in plain],
                                         "failed": failed}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
