"""Measured peak memory of prefill cases against the analytic model (edgebench.analysis.memory_model).

Reads edgebench case logs, recomputes the prediction with the installed memory model (so a model
change is checked against old measurements) and prints a markdown table: measured torch allocator
peak, predicted total, error. Target (issue 4): within 10% at 4K, 16K and 64K.

    python bench/memfit_table.py LOG.jsonl [LOG...] [--ctx 4096,16384,65536]
"""
from __future__ import annotations

import argparse
import json

from edgebench.analysis import memory_model
from edgebench.models import catalog


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--ctx", default="4096,16384,65536")
    args = ap.parse_args()
    wanted = {int(c) for c in args.ctx.split(",")}
    seen, worst = {}, 0.0
    for path in args.logs:
        for line in open(path, encoding="utf-8"):
            r = json.loads(line)
            peak = (r.get("mem") or {}).get("peak_allocated_bytes")
            if r.get("type") != "case" or r.get("status") != "ok" or r["ctx"] not in wanted or not peak:
                continue
            seen.setdefault((r["model"], r["ctx"]), (r, peak))
    print("| model | ctx | measured GiB | predicted GiB | error |\n|---|---:|---:|---:|---:|")
    for (model, ctx), (r, peak) in sorted(seen.items()):
        pred = memory_model.predict(catalog.resolve(model), ctx, batch=r.get("batch", 1),
                                    dtype=r.get("dtype", "bfloat16"), logits=r.get("logits", "last"),
                                    gen=r.get("gen", 0))["total_bytes"]
        err = 100.0 * (pred - peak) / peak
        worst = max(worst, abs(err))
        print(f"| {model} | {ctx} | {peak / 2**30:.3f} | {pred / 2**30:.3f} | {err:+.1f}% |")
    print(f"\nlargest |error|: {worst:.1f}% (target <= 10%: {'met' if worst <= 10 else 'NOT met'})")


if __name__ == "__main__":
    main()
