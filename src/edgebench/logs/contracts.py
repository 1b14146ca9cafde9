"""What crosses the process boundary to a case worker and back, typed.

`CaseRequest`: what the parent sends a case worker (`edgebench.measure.case_run.run_case`): the
case (its `schema.KEY_FIELDS`) and the options of the measurement. The parent builds one and sends
`to_payload()` (JSON); the worker reads it back with `CaseRequest.parse(payload)`, which names
what is missing or malformed instead of failing with a KeyError deep in a measurement.

`CaseResult`: what the worker returns, each field a field of the case line (`schema.CASE`), plus
`ops` (the operator profiles, written as `ops` lines) and `warnings` (printed by the parent, never
written). Fields not measured stay `MISSING` and are not sent, so the case line has exactly the
fields measured; `energy: null` beside `energy_why` is sent as null.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any

from edgebench.logs.schema import CASE, KEY_FIELDS


class MalformedRequest(ValueError):
    """A worker was sent a request it cannot read (a bug in the caller, not the user's input)."""


@dataclass(frozen=True)
class MeasureOptions:
    """How a point is measured: `reps` timed prefills after `warmup`, `raw` samples kept, a
    `budget_bytes` memory cap, power `telemetry` at `power_rate_hz`, operator profiles (`profile_ops`,
    Chrome traces into `trace_dir`), `idle_s` of idle power measured first."""

    reps: int
    warmup: int
    raw: bool = False
    budget_bytes: int | None = None
    telemetry: bool = True
    power_rate_hz: float = 50.0
    profile_ops: bool = False
    trace_dir: str | None = None
    idle_s: float = 0.5  # idle power measured before the case


@dataclass(frozen=True, kw_only=True)
class CaseRequest(MeasureOptions):
    """A case to measure on `device`, with the options it is measured with, labelled with the case's
    record `key`."""

    case: dict[str, Any]
    device: str
    key: str | None = None

    @classmethod
    def of(cls, options: MeasureOptions, **point: Any) -> "CaseRequest":
        """The request for one point (`case`, `device`, `key`) under `options`."""
        return cls(**{f.name: getattr(options, f.name) for f in fields(MeasureOptions)}, **point)

    def to_payload(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def parse(cls, payload: Any) -> "CaseRequest":
        """The request in a worker's payload; MalformedRequest naming each problem."""
        if not isinstance(payload, dict):
            raise MalformedRequest(f"a case request is a JSON object, got {type(payload).__name__}")
        known = {f.name: f for f in fields(cls)}
        problems = [f"unknown field {k!r}" for k in payload if k not in known]
        problems += [f"missing {k!r}" for k, f in known.items() if k not in payload
                     and f.default is dataclasses.MISSING]
        case = payload.get("case")
        if isinstance(case, dict):
            problems += [f"case without {k!r}" for k in KEY_FIELDS if k not in case]
            problems += [f"case {k!r} must be {CASE[k].describe()}, got {case[k]!r}"
                         for k in KEY_FIELDS if k in case and not CASE[k].ok(case[k])]
        elif "case" in payload:
            problems.append(f"'case' must be an object, got {type(case).__name__}")
        for k, want in (("device", str), ("reps", int), ("warmup", int)):
            if k in payload and type(payload[k]) is not want:
                problems.append(f"{k!r} must be {want.__name__}, got {payload[k]!r}")
        if problems:
            raise MalformedRequest("malformed case request: " + "; ".join(problems))
        return cls(**{**payload, "case": case})


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def _unset() -> Any:
    return field(default=MISSING)


@dataclass
class CaseResult:
    """What a case worker measured (see the module doc); the parent adds status and reason."""

    kernels: dict | None = _unset()
    fallback: bool = _unset()
    prefill_ms: dict | None = _unset()
    tpot_ms: dict | None = _unset()
    cold_ms: dict = _unset()
    compile: dict = _unset()
    mem: dict = _unset()
    raw: dict = _unset()
    prov: dict = _unset()
    energy: dict | None = _unset()
    energy_why: str = _unset()
    ops: list = _unset()
    warnings: list = _unset()

    def to_dict(self) -> dict[str, Any]:
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not MISSING}

    @classmethod
    def from_dict(cls, rec: dict[str, Any]) -> "CaseResult":
        """A worker's returned dict as a CaseResult (TypeError on a field not declared here)."""
        return cls(**rec)

