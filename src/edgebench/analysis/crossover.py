"""Where one model overtakes another as the context grows.

Input: for two models on one device, one metric measured at several contexts (ctx -> value; only
positive values count). Output: every context where the curves cross in the measured range,
interpolated linearly in log(ctx)-log(value) space between the two bracketing measured contexts
(latency and throughput curves are close to power laws, so that is where they are straight), with
those bracketing points returned beside it. No crossing in the measured range gives an empty list.
`bracket_doubt` / `resolved` say whether a crossing is real: claimed only where both bracketing
contexts separate the models beyond their uncertainty and neither point is host-bound.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence


@dataclass(frozen=True)
class Bracket:
    """One measured context with both models' values."""

    ctx: int
    a: float
    b: float


@dataclass(frozen=True)
class Crossover:
    """The curves of a and b cross at `ctx` (interpolated; `value` is the common value there).
    `better_after` names which side ("a" or "b") is better past the crossing: lower when the metric
    is lower-is-better (times, memory, energy), higher otherwise (throughput)."""

    ctx: float
    value: float
    before: Bracket
    after: Bracket
    better_after: str


def _log_gap(a: float, b: float) -> float:
    return math.log(a) - math.log(b)


def find_crossovers(a: Mapping[int, float], b: Mapping[int, float], *,
                    lower_is_better: bool = True) -> list[Crossover]:
    """All crossings of curve a and curve b over the contexts both were measured at."""
    ctxs = sorted(c for c in a.keys() & b.keys()
                  if c > 0 and _positive(a[c]) and _positive(b[c]))
    points = [Bracket(c, float(a[c]), float(b[c])) for c in ctxs]
    # Drop exact ties from the sign walk, but remember them: a crossing through a tie lands on it.
    signed = [(p, _log_gap(p.a, p.b)) for p in points]
    found: list[Crossover] = []
    prev: tuple[Bracket, float] | None = None
    tie: Bracket | None = None
    for p, gap in signed:
        if gap == 0.0:
            tie = tie or p
            continue
        if prev is not None and (prev[1] > 0) != (gap > 0):
            found.append(_cross(prev, (p, gap), tie, lower_is_better))
        prev, tie = (p, gap), None
    return found


def _cross(lo: tuple[Bracket, float], hi: tuple[Bracket, float], tie: Bracket | None,
           lower_is_better: bool) -> Crossover:
    (p0, g0), (p1, g1) = lo, hi
    a_lower_after = g1 < 0
    better_after = "a" if a_lower_after == lower_is_better else "b"
    if tie is not None:
        return Crossover(float(tie.ctx), tie.a, p0, p1, better_after)
    x0, x1 = math.log(p0.ctx), math.log(p1.ctx)
    frac = g0 / (g0 - g1)
    log_ctx = x0 + frac * (x1 - x0)
    log_val = math.log(p0.a) + frac * (math.log(p1.a) - math.log(p0.a))
    return Crossover(math.exp(log_ctx), math.exp(log_val), p0, p1, better_after)


def _positive(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x and x > 0


def curve(values: Sequence[float], ctxs: Sequence[int]) -> dict[int, float]:
    """ctx -> value of one row of a `candidate_pairs` grid (NaN = not measured)."""
    return {c: float(v) for c, v in zip(ctxs, values) if v == v}


def candidate_pairs(items: list[tuple[str, int, tuple]], metric_at: list[int]):
    """For one device and setting, given (series name, ctx, metric values) items: how many
    (metric, series pair)s were measured at >= 2 common contexts, and those whose curves may cross
    (log(a) - log(b) takes both signs), as (metric index, series i, series j); plus the names,
    contexts and the metric x series x ctx grid of values (NaN = not measured)."""
    import numpy as np

    names = sorted({label for label, _, _ in items})
    ctxs = sorted({ctx for _, ctx, _ in items})
    row_of, col_of = {n: i for i, n in enumerate(names)}, {c: i for i, c in enumerate(ctxs)}
    values = np.array([[v[i] for i in metric_at] for _, _, v in items], dtype=float)
    series = np.array([row_of[label] for label, _, _ in items], dtype=np.intp)
    ctx = np.array([col_of[c] for _, c, _ in items], dtype=np.intp)
    ((n_pairs, found, _, _, grid),) = candidate_pairs_coded(
        [np.arange(len(items))], series, ctx, values.reshape(len(items), len(metric_at)))
    return n_pairs, found, names, ctxs, grid


def candidate_pairs_coded(groups: list, series, ctx, values, chunk_cells: int = 1 << 18) -> list:
    """`candidate_pairs` of many groups at once. `groups`: per group, the positions of its
    measurements in the order read (of a repeated series and context the last counts); `series`,
    `ctx`: integer codes per measurement (in the order of the names and contexts); `values`:
    measurement x metric (NaN = none). Per group: (pairs measured, candidates as (metric, i, j),
    the series codes i and j index, the context codes, grid metric x series x ctx). Groups with the
    same series and contexts (most of a sweep) go through numpy together, about `chunk_cells`
    pair x context cells at a time: a 100k-case comparison has ~500 groups, ~5 * 10^5 pairs."""
    import numpy as np

    shapes: dict[tuple, list[tuple[int, Any, Any, Any]]] = {}
    for g, at in enumerate(groups):
        s_codes, c_codes = np.unique(series[at]), np.unique(ctx[at])
        si, ci = np.searchsorted(s_codes, series[at]), np.searchsorted(c_codes, ctx[at])
        cell = si * len(c_codes) + ci
        _, last = np.unique(cell[::-1], return_index=True)  # the last of each repeated cell
        keep = len(cell) - 1 - last
        shapes.setdefault((s_codes.tobytes(), c_codes.tobytes()), []).append(
            (g, si[keep], ci[keep], at[keep]))
    out: list = [()] * len(groups)
    n_metrics = values.shape[1]
    for members in shapes.values():
        s_codes, c_codes = np.unique(series[members[0][3]]), np.unique(ctx[members[0][3]])
        n_s, n_c = len(s_codes), len(c_codes)
        size = max(1, chunk_cells // max(1, n_metrics * n_s * n_s * n_c))
        upper = np.triu(np.ones((n_s, n_s), dtype=bool), k=1)
        for start in range(0, len(members), size):
            chunk = members[start:start + size]
            grid = np.full((len(chunk), n_s, n_c, n_metrics), np.nan)
            for k, (_, si, ci, at) in enumerate(chunk):
                grid[k, si, ci] = values[at]
            grid = grid.transpose(0, 3, 1, 2)  # group, metric, series, ctx
            with np.errstate(invalid="ignore", divide="ignore"):
                logv = np.log(np.where(grid > 0, grid, np.nan))
                # ctx first: the reductions over contexts become element-wise over whole slices
                lv = np.ascontiguousarray(logv.transpose(3, 0, 1, 2))
                gap = lv[..., :, None] - lv[..., None, :]  # ctx, group, metric, series, series
            measured = upper & ((~np.isnan(gap)).sum(axis=0) >= 2)
            may_cross = measured & (gap > 0).any(axis=0) & (gap < 0).any(axis=0)
            n_pairs = measured.sum(axis=(1, 2, 3)).tolist()
            found: list[list] = [[] for _ in chunk]
            for k, m, i, j in zip(*np.nonzero(may_cross)):
                found[k].append((m, i, j))
            for k, (g, _, _, _) in enumerate(chunk):
                out[g] = (int(n_pairs[k]), found[k], s_codes, c_codes, grid[k])
    return out


Z95 = 1.96


def bracket_doubt(a: float, b: float, se_a: float | None, se_b: float | None,
                  host_bound: bool) -> str | None:
    """Why one bracketing context does not settle which of two models is ahead, or None when it
    does: a host-bound point (it measures the CPU), no spread to judge by (one sample), or a gap
    within the combined 95% uncertainty (|log a/b| <= 1.96 * sqrt(se_a^2 + se_b^2), the relative
    standard errors of the medians, `analysis.stats.median_and_rel_se`)."""
    if host_bound:
        return "host-bound point"
    if se_a is None or se_b is None or se_a != se_a or se_b != se_b:
        return "no spread (one sample)"
    if abs(math.log(a / b)) <= Z95 * math.sqrt(se_a * se_a + se_b * se_b):
        return "intervals overlap"
    return None


def resolved(doubts: list[str | None]) -> str:
    """"yes" when no bracketing context is in doubt, else "no: <the doubts>"."""
    why = [d for d in doubts if d]
    return "yes" if not why else "no: " + ", ".join(dict.fromkeys(why))
