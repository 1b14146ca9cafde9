"""Graph vs eager decode, and TPOT as a multiple of the bandwidth floor, from edgebench logs.

The floor of one decode step is the bytes it must read once over the device's measured copy
bandwidth: all weights + the KV cache at that depth (attention layers) + the SSM/conv states, from the
analytic memory model (`edgebench.models.memory_model`). The copy bandwidth
is the one `edgebench env --micro` measured on the same device (bytes read + written per second).

    python bench/decode_floor.py LOG.jsonl [LOG...] --env ENV.json [--md OUT.md]

Logs are read with `edgebench.logs.loader` (validated, deduplicated, old schema versions included); a
line it cannot use is reported on stderr and left out.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

from edgebench.logs import loader as eblogs
from edgebench.models import memory_model
from edgebench.models import catalog


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--env", required=True, help="edgebench env --json --micro output of the device")
    ap.add_argument("--md", default=None)
    args = ap.parse_args()
    env = json.load(open(args.env))
    bw = env["micro"][0]["copy_bw_bytes_per_s"]
    got = eblogs.load(args.logs)
    for problem in got.problems:
        print(f"skipped: {problem}", file=sys.stderr)
    cases = defaultdict(dict)
    for r in got.cases:
        if r["source"] == "edgebench" and r["status"] == "ok" and r["tpot_ms"]:
            cases[(r["model"], r["backend"] or "hf", r["ctx"])][r["decode_mode"]] = r
    rows = []
    for (model, backend, ctx), by_mode in sorted(cases.items()):
        any_rec = next(iter(by_mode.values()))
        parts = memory_model.predict(catalog.get(model), ctx, batch=any_rec["batch"], dtype=any_rec["dtype"])
        step_bytes = parts["weights_bytes"] + parts["kv_bytes"] + parts["ssm_state_bytes"]
        floor_ms = step_bytes / bw * 1e3
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
    text = f"copy bandwidth (measured): {bw / 1e9:.0f} GB/s\n\n{head}\n{body}\n"
    print(text)
    if args.md:
        with open(args.md, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
