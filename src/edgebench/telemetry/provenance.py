"""Device state before and after a case, and whether the case throttled.

`snapshot(device_index)` on a desktop GPU: NVML SM/memory clocks, temperature, throttle-reason mask
and its names (`nvml.query`). On a Jetson: `jetson.board_facts()` (board, L4T, nvpmodel,
jetson_clocks, GPU/EMC MHz, temperatures) plus NVML's clock and throttle fields when it answers them.
`compare(before, after)` gives `{"throttled": bool, "reasons": [...], ...}`. A case is flagged when:
- NVML reported a throttling reason (anything but GpuIdle / ApplicationsClocksSetting) before or
  after;
- on Jetson the nvpmodel mode or jetson_clocks state changed during the case, or the GPU devfreq
  maximum dropped (thermal capping lowers max_freq).
Clock and temperature deltas are reported beside it as evidence, never as the test: clocks fall
normally when the GPU goes idle between the end of a case and the snapshot.
"""
from __future__ import annotations

import time

from edgebench.telemetry import jetson
from edgebench.telemetry import nvml

_NVML_FIELDS = ("sm_clock_mhz", "mem_clock_mhz", "gpu_temp_c", "throttle_reasons")


def _nvml_part(device_index: int) -> dict:
    ok, why = nvml.status()
    if not ok:
        return {f: None for f in _NVML_FIELDS} | {"nvml_why": why}
    q = nvml.query(device_index)
    out = {f: q.get(f) for f in _NVML_FIELDS}
    out |= {f"{f}_why": q[f"{f}_why"] for f in _NVML_FIELDS if q.get(f) is None and f"{f}_why" in q}
    out["throttle_names"] = nvml.decode_throttle_reasons(out["throttle_reasons"])
    return out


def snapshot(device_index: int = 0) -> dict:
    """Device state now; `t_ns` on the monotonic clock. Unavailable values are None with a why."""
    snap: dict = {"t_ns": time.monotonic_ns()}
    if jetson.is_jetson():
        problems: list[str] = []
        snap["kind"] = "jetson"
        snap |= jetson.board_facts(problems)
        if problems:
            snap["problems"] = problems
        nv = _nvml_part(device_index)
        snap |= {k: v for k, v in nv.items() if v is not None and v != []}
    else:
        snap["kind"] = "nvml"
        snap |= _nvml_part(device_index)
    return snap


def compare(before: dict, after: dict) -> dict:
    """Whether the device throttled or changed state between two snapshots, and why."""
    reasons: list[str] = []
    for label, snap in (("before", before), ("after", after)):
        mask = snap.get("throttle_reasons")
        if nvml.is_throttling(mask):
            names = [n for n in nvml.decode_throttle_reasons(mask) if n not in nvml.NOT_THROTTLING]
            reasons.append(f"{label}: {', '.join(names)}")  # NVML throttle reasons before/after
    for key in ("nvpmodel", "jetson_clocks"):
        if key in before and before.get(key) != after.get(key):
            reasons.append(f"{key} changed: {before.get(key)} -> {after.get(key)}")
    gmax = [((s.get("jetson_clocks_detail") or {}).get("gpu_hz") or {}).get("max")
            for s in (before, after)]
    if None not in gmax and gmax[1] < gmax[0]:
        reasons.append(f"GPU max_freq capped: {gmax[0] / 1e6:g} -> {gmax[1] / 1e6:g} MHz")
    out: dict = {"throttled": bool(reasons), "reasons": reasons}
    for key in ("sm_clock_mhz", "gpu_freq_mhz", "emc_freq_mhz", "gpu_temp_c"):
        if before.get(key) is not None and after.get(key) is not None:
            out[f"{key}_delta"] = after[key] - before[key]
    tb, ta = before.get("temps_c") or {}, after.get("temps_c") or {}
    if tb and ta:
        out["temp_c_max_delta"] = max((ta[k] - tb[k] for k in tb if k in ta), default=None)
    return out
