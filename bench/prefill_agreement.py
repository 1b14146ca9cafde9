"""Does edgebench's prefill time agree with an independent measurement of the same forward?

For each case, one process loads the model once, times its prefill with edgebench's loop
(`measure_prefill`: native CUDA events, warm-up, median of reps) and with `triton.testing.do_bench`
(its own warm-up, L2 flush and event timing; median), interleaved twice to expose drift, and prints the
ratio. Target: within 5%.

    python bench/prefill_agreement.py --cases qwen2.5-0.5b:4096,mamba2-780m:16384,zamba2-1.2b:4096 --json OUT
"""
from __future__ import annotations

import argparse
import json

import torch
import triton.testing

from edgebench.measure.phases import measure_prefill, random_prompt
from edgebench.analysis.stats import summarize
from edgebench.models import catalog, loaders


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="qwen2.5-0.5b:4096,mamba2-780m:16384,zamba2-1.2b:4096")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = []
    for item in args.cases.split(","):
        name, ctx = item.split(":")
        loaded = loaders.load(catalog.get(name), device="cuda", dtype="bfloat16")
        ids = random_prompt(loaded.vocab_size, 1, int(ctx), "cuda")
        fwd = lambda loaded=loaded, ids=ids: loaded.prefill(ids, logits="last")  # noqa: E731
        eb, tb = [], []
        with torch.inference_mode():
            for _ in range(2):
                res = measure_prefill(loaded, ids, reps=args.reps, warmup=2, logits="last", device="cuda")
                eb.append(summarize(res.samples_ms, rounded=True)["median"])
                tb.append(triton.testing.do_bench(fwd, warmup=100, rep=1000, return_mode="median"))
        e, t = sorted(eb)[0], sorted(tb)[0]
        rows.append({"model": name, "ctx": int(ctx), "edgebench_ms": eb, "do_bench_ms": tb,
                     "ratio": e / t})
        del loaded, fwd  # drop every reference before the next model loads
        torch.cuda.empty_cache()
    print(f"{'model':16s} {'ctx':>6s} {'edgebench ms':>22s} {'do_bench ms':>22s} {'ratio':>7s}")
    for r in rows:
        print(f"{r['model']:16s} {r['ctx']:6d} {str([round(x, 3) for x in r['edgebench_ms']]):>22s} "
              f"{str([round(x, 3) for x in r['do_bench_ms']]):>22s} {r['ratio']:7.3f}")
    worst = max(abs(r["ratio"] - 1) for r in rows)
    print(f"largest disagreement: {100 * worst:.1f}% (target <= 5%: {'met' if worst <= 0.05 else 'NOT met'})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
