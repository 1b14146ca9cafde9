"""The longest context the analytic memory model predicts under each search's budget, against what
`edgebench maxctx` measured: how far the model can be trusted to plan a smaller card.

    PYTHONPATH=src python bench/maxctx_vs_model.py LOG.jsonl [LOG...]

For each maxctx record with a budget, `memory_model.longest_fit` (1K resolution over 1K..1M tokens,
in the record's logits mode and dtype, for the backend its run header names); the last search of a
(model, backend, mode, budget) wins. Logs are read with `edgebench.logs.loader`.
"""
from __future__ import annotations

import sys

from edgebench.logs import loader as eblogs
from edgebench.models import memory_model
from edgebench.models import catalog


def main(paths: list[str]) -> None:
    got = eblogs.load(paths)
    last: dict[tuple, dict] = {}
    for rec in got.maxctx:
        if rec.get("budget_bytes") and rec.get("max_ok_ctx"):
            spec = (got.runs.get(rec["run"]) or {}).get("spec", {}).get("maxctx", {})
            last[(rec["model"], spec.get("backend", "hf"), rec["mode"], rec["budget_bytes"])] = rec
    print("| model | backend | logits | budget GiB | measured max ctx | model's max ctx | model vs measured |")
    print("|---|---|---|---:|---:|---:|---:|")
    for (model, backend, mode, budget), rec in sorted(last.items()):
        pred = memory_model.longest_fit(catalog.resolve(model), budget, dtype=rec.get("dtype", "bfloat16"),
                                        logits=mode, backend=backend)
        got_ctx = rec["max_ok_ctx"]
        shown = f"{pred:,} | {100 * (pred - got_ctx) / got_ctx:+.1f}%" if pred else "none fits | -"
        print(f"| {model} | {backend} | {mode} | {budget / 2**30:.0f} | {got_ctx:,} | {shown} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
