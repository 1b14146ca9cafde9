"""Where one model overtakes another as the context grows.

Input: for two models on one device, one metric measured at several contexts (ctx -> value; only
positive values count). Output: every context where the curves cross in the measured range,
interpolated linearly in log(ctx)-log(value) space between the two bracketing measured contexts
(latency and throughput curves are close to power laws, so that is where they are straight), with
those bracketing points returned beside it. No crossing in the measured range gives an empty list.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence


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
    contexts and the metric x series x ctx grid of values (NaN = not measured). Vectorised over
    metrics and pairs: a 100k-case comparison has ~5 * 10^5 of them."""
    import numpy as np

    names = sorted({label for label, _, _ in items})
    ctxs = sorted({ctx for _, ctx, _ in items})
    row_of, col_of = {n: i for i, n in enumerate(names)}, {c: i for i, c in enumerate(ctxs)}
    grid = np.full((len(metric_at), len(names), len(ctxs)), np.nan)
    cells = {(row_of[label], col_of[ctx]): vals for label, ctx, vals in items}  # the last wins
    if cells:  # one assignment for the whole group; None -> NaN
        at = list(cells)
        grid[:, [i for i, _ in at], [j for _, j in at]] = np.array(
            [[vals[i] for i in metric_at] for vals in cells.values()], dtype=float).T
    with np.errstate(invalid="ignore", divide="ignore"):
        logv = np.log(np.where(grid > 0, grid, np.nan))
    gap = logv[:, :, None, :] - logv[:, None, :, :]
    common = (~np.isnan(gap)).sum(axis=3)
    filled = np.where(np.isnan(gap), 0.0, gap)
    upper = np.triu(np.ones((len(names), len(names)), dtype=bool), k=1)
    measured = upper & (common >= 2)
    may_cross = measured & (filled.max(axis=3) > 0) & (filled.min(axis=3) < 0)
    return int(measured.sum()), list(zip(*np.nonzero(may_cross))), names, ctxs, grid
