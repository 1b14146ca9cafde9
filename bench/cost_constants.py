"""The constants of the expected-cost model (`edgebench.sweep.cost`) recomputed from recorded logs.

    PYTHONPATH=src python bench/cost_constants.py bench/results/h100-2026-11-22b/logs/sweep_h100.jsonl

Prints, over the `ok` case records of presets with a published parameter count: the median prefill
seconds per parameter per prompt token at contexts of 16k tokens and more (`PARAM_TOKEN_S`), and
the median TPOT per decode mode (`STEP_S`), each with its range, beside the values the module uses.
"""
from __future__ import annotations

import statistics
import sys

from edgebench.errors import UserError
from edgebench.logs import loader as eblogs
from edgebench.models import catalog
from edgebench.sweep import cost

LONG_CTX = 16384


def main(paths: list[str]) -> None:
    rows = [r for r in eblogs.load(paths).cases if r.get("status") == "ok"]
    per_token, steps = [], {}
    for r in rows:
        try:
            n = catalog.get(r["model"]).published_params
        except UserError:  # a model outside the catalog: not counted
            n = None
        prefill, tpot = (r.get("prefill_ms") or {}).get("median"), (r.get("tpot_ms") or {}).get("median")
        if n and r["ctx"] >= LONG_CTX and prefill:
            per_token.append(prefill / 1e3 / (n * r["ctx"] * (r.get("batch") or 1)))
        if tpot:
            steps.setdefault(r["decode_mode"], []).append(tpot / 1e3)
    if per_token:
        print(f"PARAM_TOKEN_S: median {statistics.median(per_token):.3g} s over {len(per_token)} points "
              f"(range {min(per_token):.2g} .. {max(per_token):.2g}); the module uses {cost.PARAM_TOKEN_S:g}")
    for mode, values in sorted(steps.items()):
        print(f"STEP_S[{mode}]: median {statistics.median(values) * 1e3:.3g} ms over {len(values)} points "
              f"(range {min(values) * 1e3:.3g} .. {max(values) * 1e3:.3g} ms); the module uses "
              f"{cost.STEP_S.get(mode, float('nan')) * 1e3:g} ms")


if __name__ == "__main__":
    main(sys.argv[1:])
