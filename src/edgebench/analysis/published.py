"""The published study's figures as data: `published/arxiv-2507.12442.json` beside this module.

That file holds the paper's four claims (`claims`: id, kind, the claimed factor or share, where in
the paper) and its figures behind them (`figures`: a metric, the platform, where in the paper each
comes from, and `points` {model, ctx, value} or `ranges` {model, low, high}), with model names as
edgebench's presets. Readers here:
- `study()` the whole document (parsed once);
- `claim(n)` one claim; `points(metric, platform=None)` every published point of a metric, each with
  the `where` of its figure; `ranges(metric)` the published share ranges;
- `max_contexts(memory_bytes)` {model: (longest context, where)} of the platform whose memory is
  within `MEMORY_MATCH` of `memory_bytes` (24 GiB: the RTX 4090; 8 GiB: the Jetson Orin Nano), or
  {} when no platform matches.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

PATH = Path(__file__).with_name("published") / "arxiv-2507.12442.json"
MEMORY_MATCH = 0.15  # a budget this close to a platform's memory compares with its figures


@functools.lru_cache(maxsize=1)
def study() -> dict[str, Any]:
    return json.loads(PATH.read_text(encoding="utf-8"))


def claim(n: int) -> dict[str, Any]:
    return next(c for c in study()["claims"] if c["id"] == n)


def points(metric: str, platform: str | None = None) -> list[dict[str, Any]]:
    """Every published point of `metric` (on `platform` when given), with its figure's `where`."""
    return [{**p, "where": f["where"].split(" (")[0], "platform": f["platform"]}
            for f in study()["figures"] if f["metric"] == metric
            and (platform is None or f["platform"] == platform) for p in f.get("points", [])]


def ranges(metric: str) -> list[dict[str, Any]]:
    return [{**r, "where": f["where"].split(" (")[0], "platform": f["platform"]}
            for f in study()["figures"] if f["metric"] == metric for r in f.get("ranges", [])]


def platform_for(memory_bytes: int | None) -> str | None:
    """The platform whose memory is within MEMORY_MATCH of `memory_bytes`, else None."""
    if not memory_bytes:
        return None
    for f in study()["figures"]:
        gib = f.get("memory_gib")
        if gib and abs(memory_bytes / (gib * 2**30) - 1) <= MEMORY_MATCH:
            return f["platform"]
    return None


def max_contexts(memory_bytes: int | None) -> dict[str, tuple[int, str]]:
    """{model: (the longest published context, where)} of the matching platform (see the doc)."""
    platform = platform_for(memory_bytes)
    if platform is None:
        return {}
    return {p["model"]: (p["value"], p["where"]) for p in points("max_ok_ctx", platform)}
