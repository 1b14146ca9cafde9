"""The floor columns of a comparison's case rows, a column at a time (`floor_columns`): what
`edgebench.analysis.floors.case_floors` gives one row, for the 10^5 rows of a large `compare`, with
each run's rates and each distinct case's work found once and the divisions done as numpy columns.
"""
from __future__ import annotations

from collections import Counter
from operator import itemgetter
from typing import Any, Sequence

from edgebench.analysis.floors import (FLOOR_COLUMNS, NO_MICRO, PREFILL_DTYPES, Rates, case_work,
                                       rates_from_env, run_gpu)
from edgebench.logs.schema import WORK_KEYS

def floor_columns(rows: Sequence[dict], runs: dict[str, dict], prefill_ms: Sequence[float | None],
                  tpot_ms: Sequence[float | None]) -> tuple[list[list[float | None]], list[str]]:
    """The `FLOOR_COLUMNS` of loader case rows, in row order, given each row's prefill and TPOT
    medians (None where not ok), and notes counting the measured rows without a floor, by reason.
    Cell for cell what `case_floors` gives, a column at a time (a comparison reaches 10^5 rows): the
    rates of each run and the work of each distinct case are found once, then gathered and divided
    as numpy columns. A line's recorded `work` is used as it is; the catalog counts the work of lines
    without it (a model outside the catalog: a parameter count, which imports torch), and only those of
    runs with rates: with none, nothing is."""
    import numpy as np
    n = len(rows)
    pre, tp = (np.array(x, dtype=float) for x in (prefill_ms, tpot_ms))
    measured = ~(np.isnan(pre) & np.isnan(tp))
    runs_at, run_code = _codes(list(map(_RUN_SOURCE, rows)))
    rates = []
    for run, source in runs_at:
        index, name = run_gpu(runs.get(run))
        rates.append(rates_from_env((runs.get(run) or {}).get("env"), index, name)
                     if source == "edgebench" else _NONE)
    r_bw, r_mm = (np.array([getattr(r, k) or np.nan for r in rates], dtype=float)
                  for k in ("copy_bytes_per_s", "matmul_flop_s"))
    r_has = ~np.isnan(r_bw) | ~np.isnan(r_mm)
    if not r_has.any():  # nothing to divide by: each measured row's reason is its run's
        counts = np.bincount(run_code[measured], minlength=len(rates)).tolist()
        missing = Counter()
        for r, k in zip(rates, counts):
            missing[r.why] += k
        return [[None] * n for _ in FLOOR_COLUMNS], _notes(missing)
    has = r_has[run_code]
    cases_at, case_code = _codes(list(map(_CASE, rows)))
    # a line's recorded work first; the catalog's (a parameter count) only for lines without it
    recorded = [r.get("work") for r in rows]  # the reader set a bad one to None
    r_step, r_flops = (np.array([w[k] if w else np.nan for w in recorded], dtype=float) for k in WORK_KEYS)
    by_catalog = np.isnan(r_step)
    wanted = set(np.unique(case_code[measured & has & by_catalog]).tolist())
    work = [case_work(*c) if i in wanted else (None, None, None) for i, c in enumerate(cases_at)]
    c_step, c_flops = (np.array([w[k] or np.nan for w in work], dtype=float) for k in (0, 1))
    c_bf16 = np.array([c[2] in PREFILL_DTYPES for c in cases_at], dtype=bool)
    c_why = np.array([bool(w[2]) for w in work], dtype=bool)
    r_why = np.array([bool(r.why) for r in rates], dtype=bool)
    step = np.where(has, np.where(by_catalog, c_step[case_code], r_step), np.nan)
    flops = np.where(has, np.where(by_catalog, c_flops[case_code], r_flops), np.nan)
    row_why = by_catalog & c_why[case_code]
    bw, mm = r_bw[run_code], np.where(c_bf16[case_code], r_mm[run_code], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        arrays = (step / tp / 1e6, tp / (step / bw * 1e3), flops / pre / 1e9, pre / (flops / mm * 1e3))
    # why cells are empty, in the order case_floors gives: the run's rates, the case, the dtype
    missing: Counter = Counter()
    ok_case = measured & has & ~row_why
    for mask, code, why in ((measured & ~has, run_code, [r.why for r in rates]),
                            (measured & has & row_why, case_code, [w[2] for w in work]),
                            (ok_case & r_why[run_code], run_code, [r.why for r in rates]),
                            (ok_case & ~r_why[run_code] & ~c_bf16[case_code], case_code,
                             [f"the bf16 matmul rate is no floor for a {c[2]} prefill" for c in cases_at])):
        for i, k in enumerate(np.bincount(code[mask], minlength=len(why)).tolist()):
            if k:
                missing[why[i]] += k
    return [_none_for_nan(a) for a in arrays], _notes(missing)


def _notes(missing: Counter) -> list[str]:
    return [f"no floor for {k} measured rows: {why}" for why, k in sorted(missing.items()) if k]


_RUN_SOURCE = itemgetter("run", "source")
_CASE = itemgetter("model", "backend", "dtype", "batch", "ctx", "logits")
_NONE = Rates(None, None, NO_MICRO)


def _codes(keys: list) -> tuple[list, Any]:
    """The distinct keys in first-seen order and each key's position among them."""
    import numpy as np
    at: dict = {}
    for k in keys:
        at.setdefault(k, len(at))
    return list(at), np.fromiter(map(at.__getitem__, keys), dtype=np.intp, count=len(keys))


def _none_for_nan(a) -> list[float | None]:
    import numpy as np
    out = a.astype(object)
    out[np.isnan(a)] = None
    return out.tolist()
