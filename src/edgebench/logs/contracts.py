"""What crosses the process boundary to a point worker and back, typed.

`PointRequest`: what the parent sends a point worker (`edgebench.measure.point_run.run_point`): the
point (its `POINT_FIELDS`), the decode modes to measure after its prefill, and the options of the
measurement. The parent builds one and sends `to_payload()` (JSON); the worker reads it back with
`PointRequest.parse(payload)`, which names what is missing or malformed instead of failing with a
KeyError deep in a measurement.

`PointResult`: what the worker returns: the fields of the point's prefill line (`schema.CASE`), a
`decode` object with the fields of each decode mode's line, plus `ops` (the operator profiles,
written as `ops` lines) and `warnings` (printed by the parent, never written). Fields not measured
stay `MISSING` and are not sent, so each line has exactly the fields measured; `energy: null`
beside `energy_why` is sent as null.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any

from edgebench.choices import DECODE_MODES
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


POINT_FIELDS = tuple(k for k in KEY_FIELDS if k != "decode_mode")  # what a point is

PROBE_TOKENS = 64  # the first forward and kernel detection run this many tokens (fewer if ctx is)

# A run measures a device's idle power once and lends it to that device's later points while the GPU
# is within IDLE_REUSE_C of the temperature it was measured at and at most IDLE_REUSE_S seconds have
# passed since the lending point's worker started; otherwise the point measures its own. On the lent H200 the per-point baselines of
# one run spread by at most 2.7 W (2.2%) over up to 7 C (bench/results/h200-2026-11-30e/README.md).
IDLE_REUSE_C = 2.0
IDLE_REUSE_S = 600.0  # counted from the lending point's worker start
KNOWN_IDLE = ("idle_w", "temp_c", "expires_s")  # what a lent baseline is sent as (W, C, monotonic s)


def detection_key(point: dict[str, Any], device: str) -> tuple:
    """What a point worker's kernel detection depends on: the model, backend, dtype and attention,
    the probe's shape (batch, min(ctx, PROBE_TOKENS)) and the device. Points sharing it share
    kernels, so a run detects them once (`PointRequest.known_kernels`)."""
    return (point["model"], point["backend"], point["dtype"], point["attn"], point["batch"],
            min(point["ctx"], PROBE_TOKENS), device)


@dataclass(frozen=True, kw_only=True)
class PointRequest(MeasureOptions):
    """A point to measure on `device` (`point`: its `POINT_FIELDS`), prefilled once and then decoded
    in each of `decode_modes`, with the options it is measured with, labelled with its prefill
    line's record `key`."""

    point: dict[str, Any]
    decode_modes: list[str]
    device: str
    key: str | None = None
    # The kernels an earlier point of the run detected, for the same model, backend, dtype, attn,
    # batch and device (`kernels_from`: that point's key): this worker skips kernel detection.
    known_kernels: dict[str, str] | None = None
    kernels_from: str | None = None
    # The idle power baseline an earlier point of the run measured on this device (KNOWN_IDLE; its
    # `idle_from`: that point's key): this worker reuses it while the GPU is within `IDLE_REUSE_C` of
    # the temperature it was measured at and time.monotonic() has not passed `expires_s`.
    known_idle: dict[str, float] | None = None
    idle_from: str | None = None

    @classmethod
    def of(cls, options: MeasureOptions, **point: Any) -> "PointRequest":
        """The request for one point (`point`, `decode_modes`, `device`, `key`) under `options`."""
        return cls(**{f.name: getattr(options, f.name) for f in fields(MeasureOptions)}, **point)

    def to_payload(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def parse(cls, payload: Any) -> "PointRequest":
        """The request in a worker's payload; MalformedRequest naming each problem."""
        if not isinstance(payload, dict):
            raise MalformedRequest(f"a point request is a JSON object, got {type(payload).__name__}")
        known = {f.name: f for f in fields(cls)}
        problems = [f"unknown field {k!r}" for k in payload if k not in known]
        problems += [f"missing {k!r}" for k, f in known.items() if k not in payload
                     and f.default is dataclasses.MISSING]
        point = payload.get("point")
        if isinstance(point, dict):
            problems += [f"point without {k!r}" for k in POINT_FIELDS if k not in point]
            problems += [f"point {k!r} must be {CASE[k].describe()}, got {point[k]!r}"
                         for k in POINT_FIELDS if k in point and not CASE[k].ok(point[k])]
        elif "point" in payload:
            problems.append(f"'point' must be an object, got {type(point).__name__}")
        modes = payload.get("decode_modes")
        if "decode_modes" in payload and not (isinstance(modes, list)
                                              and all(m in DECODE_MODES for m in modes)):
            problems.append(f"'decode_modes' must be a list of {', '.join(DECODE_MODES)}, got "
                            f"{modes!r}")
        for k, want in (("device", str), ("reps", int), ("warmup", int)):
            if k in payload and type(payload[k]) is not want:
                problems.append(f"{k!r} must be {want.__name__}, got {payload[k]!r}")
        known = payload.get("known_kernels")
        if known is not None and not (isinstance(known, dict)
                                      and all(isinstance(v, str) for v in known.values())):
            problems.append(f"'known_kernels' must be an object of kernel names, got {known!r}")
        if (known is None) != (payload.get("kernels_from") is None):
            problems.append("'known_kernels' and 'kernels_from' come together (the kernels and the "
                            "point that detected them)")
        idle = payload.get("known_idle")
        if idle is not None and not (isinstance(idle, dict) and set(idle) == set(KNOWN_IDLE) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in idle.values())):
            problems.append(f"'known_idle' must be an object of {', '.join(KNOWN_IDLE)} (numbers), got {idle!r}")
        if (idle is None) != (payload.get("idle_from") is None):
            problems.append("'known_idle' and 'idle_from' come together (the baseline and the point that "
                            "measured it)")
        if problems:
            raise MalformedRequest("malformed point request: " + "; ".join(problems))
        return cls(**{**payload, "point": point})


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def _unset() -> Any:
    return field(default=MISSING)


DECODE_RESULT_FIELDS = ("status", "reason", "tpot_ms", "cold_ms", "compile", "mem", "energy",
                        "energy_why", "raw", "host_bound", "gpu_lag_ms", "unstable")


@dataclass
class PointResult:
    """What a point worker measured (see the module doc): the prefill line's fields, and `decode`:
    {mode: the fields of that mode's decode line (`DECODE_RESULT_FIELDS`)}. `decoding` names the
    mode being measured when the worker reported (so a worker killed there is charged to it). The
    parent adds status and reason from how the worker ended."""

    kernels: dict | None = _unset()
    fallback: bool = _unset()
    kernels_from: str = _unset()
    autotune: dict = _unset()
    idle_from: str = _unset()
    prefill_ms: dict | None = _unset()
    cold_ms: dict = _unset()
    mem: dict = _unset()
    work: dict = _unset()
    setup_ms: dict = _unset()
    raw: dict = _unset()
    prov: dict = _unset()
    energy: dict | None = _unset()
    energy_why: str = _unset()
    host_bound: bool | None = _unset()
    gpu_lag_ms: float | None = _unset()
    unstable: bool | None = _unset()
    steal_pct: float | None = _unset()
    decode: dict = _unset()
    decoding: str | None = _unset()
    ops: list = _unset()
    warnings: list = _unset()

    def to_dict(self) -> dict[str, Any]:
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not MISSING}

    @classmethod
    def from_dict(cls, rec: dict[str, Any]) -> "PointResult":
        """A worker's returned dict as a PointResult (TypeError on a field not declared here)."""
        return cls(**rec)
