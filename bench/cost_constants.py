"""How well the expected-time model (`edgebench.sweep.estimate`: dry-run times, shard and GPU balance)
matches recorded logs: per model and decode mode, the measured median prefill and TPOT beside what the
model predicts for them, and the ratio.

    PYTHONPATH=src python bench/cost_constants.py bench/results/h200-2026-11-30b/call3/vm-default-gpu.jsonl

Only `ok` lines of catalog presets count. The model is meant to err long (a dry run should not promise
less than a run takes); a ratio far below 1 means its constants are too pessimistic for that device.
"""
from __future__ import annotations

import statistics
import sys

from edgebench.errors import UserError
from edgebench.logs import loader as eblogs
from edgebench.models import catalog
from edgebench.sweep import estimate


def main(paths: list[str]) -> None:
    ratios: dict[tuple[str, str], list[float]] = {}
    for r in eblogs.load(paths).cases:
        if r.get("status") != "ok":
            continue
        try:
            pre = catalog.get(r["model"])
        except UserError:  # a model outside the catalog: not counted
            continue
        prefill, tpot = (r.get("prefill_ms") or {}).get("median"), (r.get("tpot_ms") or {}).get("median")
        if prefill:
            want = estimate.prefill_s(pre, r["ctx"], r.get("logits") or "last", r.get("batch") or 1)
            ratios.setdefault((r["model"], "prefill"), []).append(prefill / 1e3 / want)
        if tpot and r.get("decode_mode"):
            ratios.setdefault((r["model"], r["decode_mode"]), []).append(
                tpot / 1e3 / estimate.tpot_s(pre, r["decode_mode"]))
    for (model, phase), values in sorted(ratios.items()):
        print(f"{model:16} {phase:8} measured / predicted: median {statistics.median(values):.2f} over "
              f"{len(values)} points (range {min(values):.2f} .. {max(values):.2f})")


if __name__ == "__main__":
    main(sys.argv[1:])
