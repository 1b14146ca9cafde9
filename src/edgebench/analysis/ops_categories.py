"""Operator categories: which kind of work each GPU kernel (or ATen op) is, and the breakdown.

The rules live in one data table, `ops_rules.json` beside this module: an ordered list of
`{"re", "category", "fused_gemm"?}`; the first regex that matches a name (`re.search`) decides.
Categories: gemm, attention, ssm_scan, causal_conv1d, norm, elementwise, memory,
embedding_logits, reduce, other. Kernels that do matrix products inside another category (the
Mamba-2 SSD `_bmm_chunk_*`, `_chunk_state_*`, `_chunk_scan_*` Triton kernels) keep that category
but carry `fused_gemm` and are summed apart in `fused_gemm_ms`, so they are never hidden.

A name of the form `edgebench:<category>/<kernel>` is what `edgebench.measure.ops_profile` gives a kernel
launched inside a scope named for a category (the lm-head GEMM, the sampler): the scope decides.
The lm-head GEMM cannot be told from the other GEMMs by its name (cuBLAS picks the same families),
only by where it was launched, hence the scope.

`classify(name) -> str`, `is_fused_gemm(name) -> bool`, and
`categorize(kernels: [(name, total_us, count)], top_n=10) -> dict` with `kernel_ms`,
`by_category_ms`, `shares` (category -> fraction of kernel time, all categories present),
`top` (largest kernels: kernel, category, ms, count, fused_gemm), `uncategorized_share` (the
"other" fraction) and `fused_gemm_ms`. Pure Python; no torch.
"""
from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path
from typing import Iterable, Sequence

RULES_PATH = Path(__file__).with_name("ops_rules.json")
SCOPE_PREFIX = "edgebench:"
_SCOPED = re.compile(r"^edgebench:(\w+)/")
TOP_NAME_CHARS = 120


@functools.lru_cache(maxsize=1)
def _table() -> tuple[tuple[str, ...], tuple[tuple[re.Pattern[str], str, bool], ...]]:
    data = json.loads(RULES_PATH.read_text(encoding="utf-8"))
    categories = tuple(data["categories"])
    rules = []
    for rule in data["rules"]:
        if rule["category"] not in categories:
            raise ValueError(f"{RULES_PATH.name}: rule {rule['re']!r} names unknown category "
                             f"{rule['category']!r}; known: {', '.join(categories)}")
        rules.append((re.compile(rule["re"]), rule["category"], bool(rule.get("fused_gemm"))))
    return categories, tuple(rules)


def categories() -> tuple[str, ...]:
    """All category names, in report order, `other` last."""
    return _table()[0]


@functools.lru_cache(maxsize=4096)
def _match(name: str) -> tuple[str, bool]:
    scoped = _SCOPED.match(name)
    if scoped and scoped.group(1) in categories():
        inner = _match(name[scoped.end():])
        return scoped.group(1), inner[1]
    for pattern, category, fused in _table()[1]:
        if pattern.search(name):
            return category, fused
    return "other", False


def classify(name: str) -> str:
    """The category of one kernel or op name; `other` when no rule matches."""
    return _match(name)[0]


def is_fused_gemm(name: str) -> bool:
    """True for kernels that contain matrix products but are counted in another category."""
    return _match(name)[1]


def short_name(name: str, max_chars: int = TOP_NAME_CHARS) -> str:
    """A kernel name cut for a compact log line: no leading `void `, at most `max_chars`."""
    if name.startswith("void "):
        name = name[5:]
    return name if len(name) <= max_chars else name[: max_chars - 1] + "…"


def categorize(kernels: Iterable[Sequence], top_n: int = 10) -> dict:
    """Break kernel time down by category. `kernels`: (name, total_us, count) rows, one per name
    (rows with the same name are merged). Times in the result are in ms; shares sum to 1 (or are
    all 0 when no kernel time was recorded)."""
    merged: dict[str, list[float]] = {}
    for name, total_us, count in kernels:
        if total_us < 0:
            raise ValueError(f"negative kernel time {total_us} us for {name!r}")
        row = merged.setdefault(str(name), [0.0, 0])
        row[0] += float(total_us)
        row[1] += int(count)
    cats = categories()
    per_cat_us: dict[str, list[float]] = {c: [] for c in cats}
    fused_us: list[float] = []
    for name, (us, _) in merged.items():
        category, fused = _match(name)
        per_cat_us[category].append(us)
        if fused:
            fused_us.append(us)
    by_category_ms = {c: math.fsum(v) / 1000.0 for c, v in per_cat_us.items()}
    kernel_ms = math.fsum(us for us, _ in merged.values()) / 1000.0
    shares = {c: (ms / kernel_ms if kernel_ms > 0 else 0.0) for c, ms in by_category_ms.items()}
    ranked = sorted(merged.items(), key=lambda item: (-item[1][0], item[0]))[:max(top_n, 0)]
    top = [{"kernel": short_name(name), "category": classify(name), "ms": us / 1000.0,
            "count": count, "fused_gemm": is_fused_gemm(name)}
           for name, (us, count) in ranked]
    return {
        "kernel_ms": kernel_ms,
        "by_category_ms": by_category_ms,
        "shares": shares,
        "top": top,
        "uncategorized_share": shares["other"],
        "fused_gemm_ms": math.fsum(fused_us) / 1000.0,
    }
