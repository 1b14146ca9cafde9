"""The longest context the analytic memory model predicts under each search's budget, against what
`edgebench maxctx` measured: how far the model can be trusted to plan a smaller card.

    PYTHONPATH=src python bench/maxctx_vs_model.py LOG.jsonl [LOG...]

For each maxctx record with a budget, `memory_model.longest_fit` (1K resolution over 1K..1M tokens,
in the record's logits mode and dtype); the last search of a (model, mode, budget) wins.
"""
from __future__ import annotations

import json
import sys

from edgebench.analysis import memory_model
from edgebench.models import catalog


def main(paths: list[str]) -> None:
    last: dict[tuple, dict] = {}
    for path in paths:
        for line in open(path, encoding="utf-8"):
            rec = json.loads(line)
            if rec.get("type") == "maxctx" and rec.get("budget_bytes") and rec.get("max_ok_ctx"):
                last[(rec["model"], rec["mode"], rec["budget_bytes"])] = rec
    print("| model | logits | budget GiB | measured max ctx | model's max ctx | model vs measured |")
    print("|---|---|---:|---:|---:|---:|")
    for (model, mode, budget), rec in sorted(last.items()):
        pred = memory_model.longest_fit(catalog.resolve(model), budget, dtype=rec.get("dtype", "bfloat16"),
                                        logits=mode)
        got = rec["max_ok_ctx"]
        print(f"| {model} | {mode} | {budget / 2**30:.0f} | {got:,} | {pred:,} | {100 * (pred - got) / got:+.1f}% |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
