"""The part of a `--dry-run` the grid plan does not say: a suite's grids and max-context searches,
and the estimated time of the whole run (`edgebench.sweep.estimate`).

`shard_units(spec, which)` divides a suite's searches among N shards, balanced by their estimated
time: longest first, each to the shard with the least so far (one 4-minute search and three
30-second ones should not land on one shard, as plain round-robin over the table order would).
`estimated_seconds(spec, cases, units, devices=1)` -> (cases s, searches s), on `devices` GPUs
(--devices: whole series and searches dealt longest first); `describe(spec, cases, units, device,
devices=1)` the lines printed after the grid plan. Nothing here imports torch or starts a worker.
"""
from __future__ import annotations

from typing import Any

from edgebench.sweep import estimate
from edgebench.sweep.spec import Case, Spec
from edgebench.sweep.suite import Suite
from edgebench.sweep.units import format_bytes

NO_BUDGET_BYTES = 24 << 30  # what a search without a budget is timed against (the study's desktop card)


def shard_units(spec: Spec, which: str | None) -> list[tuple[int, str, str]]:
    """The search units (table index, model, logits mode) of shard `which` ("i/N") in table order;
    all of them without a shard (see the module doc)."""
    units = spec.search_units() if isinstance(spec, Suite) else []
    if not which:
        return units
    from edgebench.sweep import shards
    shard = shards.parse(which)  # refuses a bad "i/N" or array environment as the cases' shard does
    if not units:
        return units
    # (fewer searches than shards leaves some shards without one, which is no error)
    picked = shards.assign(_search_seconds(spec, units), shard.count)[shard.index - 1]
    return [units[k] for k in sorted(picked)]


def _search_seconds(spec: Suite, units: list[tuple[int, str, str]]) -> list[float]:
    presets = _presets(m for _, m, _ in units)
    out = []
    for i, model, mode in units:
        s = spec.searches[i]
        out.append(estimate.search_s(presets[model], mode, s.memory_budget_bytes or NO_BUDGET_BYTES,
                                     s.resolution, s.limit or (1 << 20)))
    return out


def _presets(names) -> dict[str, Any]:
    from edgebench.models import catalog
    return {n: catalog.resolve(n) for n in dict.fromkeys(names)}


def estimated_seconds(spec: Spec, cases: list[Case], units: list[tuple[int, str, str]],
                      devices: int = 1) -> tuple[float, float]:
    """(seconds of the cases, seconds of the searches) on an H100/H200-class GPU; with `devices`
    GPUs (--devices), each series of the grids and each search whole on one GPU, dealt longest first
    within each executor the suite runs one after another (a profile group of grids; every search
    table together, `maxctx_planner.TablesPlanner`)."""
    presets = _presets([c.model for c in cases] + [m for _, m, _ in units])
    groups = [(bool(profile), sub.plan()) for profile, sub in spec.groups(cases)] \
        if isinstance(spec, Suite) else [(False, cases)]
    grid = estimate.RUN_START_S if cases else 0.0
    for profiled, group in groups:
        series: dict[tuple, float] = {}
        for c in group:  # --runs: each point that many times
            cost = spec.runs * estimate.case_s(c, presets[c.model], spec.reps, spec.warmup, profiled)
            series[c.series()] = series.get(c.series(), 0.0) + cost
        grid += estimate.makespan(list(series.values()), devices)
    if not units:
        return grid, 0.0
    seconds = dict(zip(units, _search_seconds(spec, units)))
    every = []  # one executor for every table (suite_runner.run): their searches dealt together
    for table, models, modes in spec.searches_for(units):
        i = next(j for j, t in enumerate(spec.searches) if t is table)
        every += [seconds[(i, m, mode)] for m in models for mode in modes]
    return grid, estimate.makespan(every, devices)


def describe(spec: Spec, cases: list[Case], units: list[tuple[int, str, str]], device: str,
             devices: int = 1) -> list[str]:
    """The lines a dry run prints after the grid plan: a suite's grids and searches, then the
    estimated time (on a CUDA device class only: the rates are a GPU's), and with `devices` > 1
    (--devices) the time on that many GPUs."""
    lines = []
    if isinstance(spec, Suite) and spec.grids:
        mine = set(cases)
        counts = [sum(1 for c in g.spec.plan() if c in mine) for g in spec.grids]
        lines.append("grids: " + "; ".join(
            f"{g.name} ({n} case{'' if n == 1 else 's'}{', operators profiled' if g.profile else ''})"
            for g, n in zip(spec.grids, counts)))
    if isinstance(spec, Suite) and spec.searches:
        lines.append(f"maxctx: {len(units)} of {len(spec.search_units())} searches after the grids, into "
                     "the same log (growth, then bisection; about log2(fit / resolution) + 2 probes each):")
        for s, models, modes in spec.searches_for(units):
            budget = format_bytes(s.memory_budget_bytes) if s.memory_budget_bytes else "the whole device"
            lines.append(f"  {s.name} [{s.backend} {s.dtype}, logits {','.join(modes)}, budget {budget}, "
                         f"resolution {s.resolution}, limit {s.limit or 'none'}]: {', '.join(models)}")
    if device.startswith("cuda"):
        grid, searches = estimated_seconds(spec, cases, units)
        parts = f"cases {estimate.minutes(grid)}" + (
            f", max-context searches {estimate.minutes(searches)}" if units else "")
        lines.append(f"estimated time on an H100/H200-class GPU: {estimate.minutes(grid + searches)} "
                     f"({parts}; calibrated on the H100/H200 logs in bench/results, meant to err long; "
                     "a Jetson is several times slower: time one --shard and scale)")
        if devices > 1:
            grid_n, searches_n = estimated_seconds(spec, cases, units, devices)
            lines.append(f"on {devices} GPUs (--devices): about {estimate.minutes(grid_n + searches_n)}, "
                         f"{(grid + searches) / (grid_n + searches_n):.1f}x faster "
                         "(counted as if each series of contexts and each search ran whole on one GPU, "
                         "the longest first, which errs long: a series that cannot run out of memory is "
                         "dealt point by point; a short plan gains less: one cold autotune or a long "
                         "search sets its pace)")
    return lines
