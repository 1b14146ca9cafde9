"""What each method of `edgebench.analysis.claims` reads from loaded logs, device by device.

A method (`METHODS`) is a filter on how a point was measured:
- `study`, the published study's: full logits at prefill (`logits == "all"`), eager decode; models
  that have a mamba_ssm backend (the Mamba and Mamba-2 presets) through mamba_ssm in float16, every
  other model through transformers (`hf`) in bfloat16 (`STUDY_RUNS`);
- `edgebench`, its defaults: last-token logits, any decode mode but eager (CUDA graphs, or a faster
  mode `choices.DECODE_MODES` adds), any backend, dtype and attention.
Where several rows of one method measured one model at one context (two backends, two attention
kinds, a repeated run), the lowest median is used: the fastest kernels that ran.

`Measured(logs)` indexes the logs once: `devices()`; per device and method `prefill` and `tpot`
({model: {ctx: (median ms, row)}}, from ok batch-1 rows whose `prefill_ms` / `tpot_ms` is set: a
prefill and its decode modes may sit on one row or on separate ones), `prefill_j` ({model: {ctx: J}}),
`maxctx` ({budget bytes or None: {model: record}}: the study keeps the latest record, edgebench the
longest) and `ssm_share` ({model: {ctx: share}}: the prefill GPU kernel time in `SSM_CATEGORIES`, an
ops record joined to its case by run and key). A maxctx record's backend is its own `backend` field
where it has one, else the run header's (`spec.maxctx.backend`), else `hf`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from edgebench.choices import DECODE_MODES
from edgebench.errors import UserError
from edgebench.logs.loader import Logs

SSM_CATEGORIES = ("ssm_scan", "causal_conv1d")  # the study's SSM_Scan: the fused scan and conv1d functions
STUDY_RUNS = {"mamba_ssm": ("mamba_ssm", "float16"), "hf": ("hf", "bfloat16")}


@dataclass(frozen=True)
class Method:
    name: str
    logits: str
    decode_modes: tuple[str, ...]
    title: str


METHODS = (
    Method("study", "all", ("eager",), "the study's: full logits, eager decode, Mamba models through "
           "mamba_ssm in float16, the rest through transformers in bfloat16"),
    Method("edgebench", "last", tuple(m for m in DECODE_MODES if m != "eager"),
           "edgebench's defaults: last-token logits, graph decode, the fastest kernels that ran"),
)


@functools.lru_cache(maxsize=None)
def has_mamba_ssm(model: str) -> bool:
    """Whether the preset named `model` has a mamba_ssm backend (False for a model not in the catalog)."""
    from edgebench.models import catalog
    try:
        return "mamba_ssm" in catalog.get(model).backends
    except UserError:
        return False


def accepts(method: Method, model: str, backend: str | None, dtype: str | None, logits: str | None) -> bool:
    """Whether a point measured so belongs to `method` (see the module doc)."""
    if logits != method.logits:
        return False
    if method.name != "study":
        return True
    return (backend, dtype) == STUDY_RUNS["mamba_ssm" if has_mamba_ssm(model) else "hf"]


def _median(stats: Any) -> float | None:
    m = stats.get("median") if isinstance(stats, dict) else None
    return float(m) if isinstance(m, (int, float)) and m > 0 else None


def _keep_min(table: dict, model: str, ctx: int, value: float, row: dict) -> None:
    old = table.setdefault(model, {}).get(ctx)
    if old is None or value < old[0]:
        table[model][ctx] = (value, row)


class Measured:
    """The logs indexed by device and method (see the module doc)."""

    def __init__(self, logs: Logs):
        self.logs = logs
        self._cases = {(r["run"], r["key"]): r for r in logs.cases}

    def devices(self) -> list[str]:
        found = {r["device"] for r in self.logs.cases} | {r["device"] for r in self.logs.maxctx} | \
            {r["device"] for r in self.logs.ops}
        return sorted(d for d in found if isinstance(d, str))

    def _rows(self, device: str, method: Method):
        for r in self.logs.cases:
            if r["device"] == device and r["status"] == "ok" and (r["batch"] or 1) == 1 and r["ctx"] \
                    and accepts(method, r["model"], r["backend"], r["dtype"], r["logits"]):
                yield r

    def prefill(self, device: str, method: Method) -> dict[str, dict[int, tuple[float, dict]]]:
        out: dict = {}
        for r in self._rows(device, method):
            ms = _median(r["prefill_ms"])
            if ms is not None:
                _keep_min(out, r["model"], r["ctx"], ms, r)
        return out

    def tpot(self, device: str, method: Method) -> dict[str, dict[int, tuple[float, dict]]]:
        out: dict = {}
        for r in self._rows(device, method):
            ms = _median(r["tpot_ms"])
            if ms is not None and r["decode_mode"] in method.decode_modes:
                _keep_min(out, r["model"], r["ctx"], ms, r)
        return out

    def prefill_j(self, device: str, method: Method) -> dict[str, dict[int, float]]:
        out: dict = {}
        for r in self._rows(device, method):
            j = r["prefill_j"]
            if isinstance(j, (int, float)) and j > 0 and _median(r["prefill_ms"]) is not None:
                _keep_min(out, r["model"], r["ctx"], float(j), r)
        return {m: {c: v for c, (v, _) in per.items()} for m, per in out.items()}

    def backend_of(self, rec: dict[str, Any]) -> str:
        if isinstance(rec.get("backend"), str):
            return rec["backend"]
        spec = (self.logs.runs.get(rec.get("run")) or {}).get("spec")
        found = (spec.get("maxctx") or {}).get("backend") if isinstance(spec, dict) else None
        return found if isinstance(found, str) else "hf"

    def maxctx(self, device: str, method: Method) -> dict[int | None, dict[str, dict[str, Any]]]:
        out: dict = {}
        for rec in self.logs.maxctx:
            if rec.get("device") != device or not accepts(method, rec["model"], self.backend_of(rec),
                                                          rec.get("dtype"), rec.get("mode")):
                continue
            per = out.setdefault(rec.get("budget_bytes"), {})
            old = per.get(rec["model"])
            if old is None or method.name == "study" or (rec.get("max_ok_ctx") or 0) > (old.get("max_ok_ctx") or 0):
                per[rec["model"]] = rec
        return out

    def ssm_share(self, device: str, method: Method, family: str = "ssm") -> dict[str, dict[int, float]]:
        """{model: {ctx: share}} of the prefill profiles of `family` models (the mean where a point
        was profiled more than once)."""
        sums: dict = {}
        for rec in self.logs.ops:
            case = self._cases.get((rec.get("run"), rec.get("key")))
            if rec.get("device") != device or rec.get("phase") != "prefill" or case is None \
                    or case["family"] != family or not case["ctx"] \
                    or not accepts(method, case["model"], case["backend"], case["dtype"], case["logits"]):
                continue
            share = sum(float(rec["shares"].get(c) or 0.0) for c in SSM_CATEGORIES)
            sums.setdefault(case["model"], {}).setdefault(case["ctx"], []).append(share)
        return {m: {c: sum(v) / len(v) for c, v in per.items()} for m, per in sums.items()}
