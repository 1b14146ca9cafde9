"""Rows of the `crossover` table: where one model overtakes another as the context grows, for
every device x setting group of ok cases with a context, over `casetable.CaseColumns`. Groups,
series and contexts become integer codes and the candidate pairs are found for all groups at once
(`edgebench.analysis.crossover.candidate_pairs_coded`); only those go through `find_crossovers`. Each crossing says whether it is resolved (`resolution`):
a crossing between points whose difference is within their uncertainty, or measured host-bound, is
listed as not resolved, with the reason."""
from __future__ import annotations

from typing import Any

import numpy as np

from edgebench.analysis.crossover import (bracket_doubt, candidate_pairs_coded, curve,
                                          find_crossovers, resolved)
from edgebench.report.casetable import CaseColumns, _codes



def crossover_rows(c: CaseColumns, chosen: list[tuple[str, int]],
                   lower_is_better: dict[str, bool]) -> tuple[int, list[list[Any]]]:
    """(model pairs compared, crossover rows: device, setting, metric, model_a, model_b,
    crossover_ctx, better_after, resolved, below_ctx, a_below, b_below, above_ctx, a_above, b_above)."""
    n = c.n
    ctx_arr = c.arrays["ctx"]
    has_ctx = ctx_arr != 0 if ctx_arr is not None else np.fromiter(map(bool, c.ctx), bool, n)
    sel_arr = np.flatnonzero(np.fromiter(c.ok, bool, n) & has_ctx)
    sel = sel_arr.tolist()
    if not sel or not chosen:
        return 0, []
    labels, devices, settings = ([col[i] for i in sel] for col in (c.label, c.device, c.setting))
    names = sorted(set(labels))
    series = _codes(labels, names)
    if ctx_arr is not None:
        contexts_arr, ctx = np.unique(ctx_arr[sel_arr], return_inverse=True)
        contexts = contexts_arr.tolist()
    else:
        ctxs = [c.ctx[i] for i in sel]
        contexts = sorted(set(ctxs))
        ctx = _codes(ctxs, contexts)
    values = np.empty((len(sel), len(chosen)))
    for k, (m, _) in enumerate(chosen):
        arr = c.arrays[f"float.{m}"]
        values[:, k] = arr[sel_arr] if arr is not None else np.array(
            [c.values[m][i] for i in sel], dtype=float)
    # Groups in (device, setting) order, each with its rows in the order read.
    uniq_d, uniq_s = sorted(set(devices)), sorted(set(settings))
    key = _codes(devices, uniq_d) * len(uniq_s) + _codes(settings, uniq_s)
    order = np.argsort(key, kind="stable")
    starts = np.flatnonzero(np.diff(key[order], prepend=-1))
    groups = [(uniq_d[k // len(uniq_s)], uniq_s[k % len(uniq_s)])
              for k in key[order[starts]].tolist()]
    found = candidate_pairs_coded(np.split(order, starts[1:]), series, ctx, values)
    out, pairs = [], 0
    at: dict[tuple, int] | None = None  # (device, setting, label, ctx) -> row, built when needed
    for (device, setting), (n_pairs, candidates, s_codes, c_codes, grid) in zip(groups, found):
        pairs += n_pairs
        if not candidates:
            continue
        group_names = [names[i] for i in s_codes.tolist()]
        group_ctxs = [contexts[i] for i in c_codes.tolist()]
        for k, i, j in candidates:
            m = chosen[k][0]
            a, b = curve(grid[k, i], group_ctxs), curve(grid[k, j], group_ctxs)
            for x in find_crossovers(a, b, lower_is_better=lower_is_better[m]):
                na, nb = group_names[i], group_names[j]
                if at is None:
                    at = {(devices[k], settings[k], labels[k], c.ctx[r]): r
                          for k, r in enumerate(sel)}
                rows = [[at.get((device, setting, name, br.ctx)) for name in (na, nb)]
                        for br in (x.before, x.after)]
                out.append([device, setting, m, na, nb, x.ctx,
                            na if x.better_after == "a" else nb,
                            resolution(c, m, rows, [(x.before.a, x.before.b),
                                                    (x.after.a, x.after.b)]),
                            x.before.ctx, x.before.a, x.before.b, x.after.ctx, x.after.a, x.after.b])
    return pairs, out


def resolution(c: CaseColumns, metric: str, rows: list[list[int | None]],
               values: list[tuple[float, float]]) -> str:
    """`analysis.crossover.resolved` over both bracketing contexts of a crossing ("yes", or "no:
    <why>"); metrics without a spread (memory, energy) are not judged: "n/a"."""
    se = c.arrays.get(f"se.{metric}")
    if se is None:
        return "n/a"
    doubts = []
    for (ra, rb), (va, vb) in zip(rows, values):
        if ra is None or rb is None:
            return "no: a bracketing point not found"
        doubts.append(bracket_doubt(va, vb, float(se[ra]), float(se[rb]), c.host[ra] or c.host[rb]))
    return resolved(doubts)
