"""Graph vs eager decode side by side, each TPOT as a multiple of the bandwidth floor, from edgebench
logs whose run headers predate the micro-benchmarks (`edgebench compare` gives every case its floor
from the run header itself: tpot_x_floor, prefill_x_floor).

The floor is `edgebench.analysis.floors`' (bytes one decode step reads: weights + KV cache at the
context + SSM/conv states, from the memory model, over the device's measured copy bandwidth); the
bandwidth comes from an `edgebench env --micro --json` file of the same device.

    python bench/decode_floor.py LOG.jsonl [LOG...] --env ENV.json [--md OUT.md]

Logs are read with `edgebench.logs.loader` (validated, deduplicated, old schema versions included); a
line it cannot use is reported on stderr and left out.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

from edgebench.analysis import floors
from edgebench.logs import loader as eblogs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--env", default=None,
                    help="edgebench env --json --micro output of the device (default: each run header's)")
    ap.add_argument("--md", default=None)
    args = ap.parse_args()
    got = eblogs.load(args.logs)
    for problem in got.problems:
        print(f"skipped: {problem}", file=sys.stderr)
    rates = {}  # the copy bandwidth of each run: the --env file's, else its header's
    for run_id, header in got.runs.items():
        env, index = (json.load(open(args.env)), 0) if args.env else (header.get("env"), floors.run_gpu(header)[0])
        rates[run_id] = floors.rates_from_env(env, index)
    cases = defaultdict(dict)
    for r in got.cases:
        if r["source"] == "edgebench" and r["status"] == "ok" and r["tpot_ms"]:
            cases[(r["model"], r["backend"] or "hf", r["ctx"])][r["decode_mode"]] = r
    rows, bws = [], set()
    for (model, backend, ctx), by_mode in sorted(cases.items()):
        any_rec = next(iter(by_mode.values()))
        rate = rates[any_rec["run"]]
        if rate.copy_bytes_per_s is None:
            sys.exit(f"run {any_rec['run']}: no copy bandwidth ({rate.why}); pass --env ENV.json")
        bws.add(rate.copy_bytes_per_s)
        step_bytes, _, why = floors.row_work(any_rec)  # the line's recorded work, else the catalog's
        if step_bytes is None:
            sys.exit(f"{model} at {ctx}: no decode step bytes ({why})")
        floor_ms = floors.floor_ms(step_bytes, rate.copy_bytes_per_s)
        eager = by_mode.get("eager", {}).get("tpot_ms", {}).get("median")
        graph = by_mode.get("graph", {}).get("tpot_ms", {}).get("median")
        rows.append((model if backend == "hf" else f"{model} ({backend})", ctx, step_bytes / 2**20, floor_ms, eager, graph,
                     eager / graph if eager and graph else None,
                     eager / floor_ms if eager else None, graph / floor_ms if graph else None))
    head = ("| model | ctx | bytes/step MiB | floor ms | eager TPOT ms | graph TPOT ms | graph speedup "
            "| eager / floor | graph / floor |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    fmt = lambda x, f: "-" if x is None else format(x, f)  # noqa: E731
    body = "\n".join(f"| {m} | {c} | {b:.0f} | {fl:.3f} | {fmt(e, '.3f')} | {fmt(g, '.3f')} | {fmt(s, '.2f')}x "
                     f"| {fmt(ef, '.1f')}x | {fmt(gf, '.1f')}x |" for m, c, b, fl, e, g, s, ef, gf in rows)
    text = f"copy bandwidth (measured): {', '.join(f'{bw / 1e9:.0f}' for bw in sorted(bws))} GB/s\n\n{head}\n{body}\n"
    print(text)
    if args.md:
        with open(args.md, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
