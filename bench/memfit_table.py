"""Measured peak memory of prefill cases against the analytic model (edgebench.models.memory_model).

Reads edgebench logs with `edgebench.logs.loader` (case lines, and the `mem_at_max_ok` of maxctx searches),
recomputes the prediction with the installed memory model for each point's backend, dtype, batch and
logits mode (so a model change is checked against old measurements) and prints a markdown table:
measured torch allocator peak, predicted total, error. Targets: issue 4, within 10% at 4K, 16K and
64K; issue 12, the same for the mamba_ssm backend at 16K, 64K and 200K+ in both logits modes.

    python bench/memfit_table.py LOG.jsonl [LOG...] [--ctx 4096,16384,65536 | --ctx all] [--backend mamba_ssm]
"""
from __future__ import annotations

import argparse

from edgebench.logs import loader as eblogs
from edgebench.models import memory_model
from edgebench.models import catalog


def points(paths: list[str], wanted: set[int] | None, backend: str | None) -> dict[tuple, int]:
    """(model, backend, dtype, batch, logits, ctx, source) -> measured peak allocated bytes; the first
    measurement of a point wins."""
    got = eblogs.load(paths)
    out: dict[tuple, int] = {}
    for r in got.cases:
        if r["status"] == "ok" and r["peak_allocated_bytes"]:
            key = (r["model"], r["backend"], r["dtype"], r["batch"], r["logits"], r["ctx"], "run")
            out.setdefault(key, r["peak_allocated_bytes"])
    for m in got.maxctx:  # the longest context a search ran, with the backend its run header names
        mem = m.get("mem_at_max_ok") or {}
        spec = (got.runs.get(m["run"]) or {}).get("spec", {}).get("maxctx", {})
        if mem.get("peak_allocated_bytes") and m.get("max_ok_ctx") and not m.get("gen"):
            key = (m["model"], spec.get("backend", "hf"), m.get("dtype", "bfloat16"), 1, m["mode"],
                   m["max_ok_ctx"], "maxctx")
            out.setdefault(key, mem["peak_allocated_bytes"])
    return {k: v for k, v in out.items()
            if (wanted is None or k[5] in wanted) and (backend is None or k[1] == backend)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--ctx", default="4096,16384,65536", help="contexts to show, or 'all'")
    ap.add_argument("--backend", default=None, help="only this backend (hf, mamba_ssm)")
    args = ap.parse_args()
    wanted = None if args.ctx == "all" else {int(c) for c in args.ctx.split(",")}
    worst = 0.0
    print("| model | backend | logits | ctx | from | measured GiB | predicted GiB | error |\n"
          "|---|---|---|---:|---|---:|---:|---:|")
    measured = points(args.logs, wanted, args.backend)
    for (model, backend, dtype, batch, logits, ctx, src), peak in sorted(measured.items()):
        pred = memory_model.predict(catalog.resolve(model), ctx, batch=batch, dtype=dtype, logits=logits,
                                    backend=backend)["total_bytes"]
        err = 100.0 * (pred - peak) / peak
        worst = max(worst, abs(err))
        print(f"| {model} | {backend} | {logits} | {ctx} | {src} | {peak / 2**30:.3f} | {pred / 2**30:.3f} "
              f"| {err:+.1f}% |")
    print(f"\nlargest |error|: {worst:.1f}% (target <= 10%: {'met' if worst <= 10 else 'NOT met'})")


if __name__ == "__main__":
    main()
