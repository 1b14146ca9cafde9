"""Power, energy and device provenance around one measurement point (`measure/point_run.py`):
`PointTelemetry(req, index)` starts the power sampler and takes the idle baseline at `begin()` (or uses
the one an earlier point of the run lent it, `PointRequest.known_idle`, while the GPU is within
`IDLE_REUSE_C` of the temperature it was measured at; the line then names that point in `idle_from`), and at
`end(...)` returns the point's provenance (clocks, temperature, throttling before and after) and its
prefill energy, writing each decode mode's energy into that mode's entry. Whatever the device cannot
give is recorded as null with its reason; telemetry never fails a point.
"""
from __future__ import annotations

import time
from typing import Any

from edgebench.analysis.stats import round_sig
from edgebench.logs.contracts import IDLE_REUSE_C, PointRequest
from edgebench.probe import now_ns


def _rnd(x, digits: int = 3):
    return round(x, digits) if isinstance(x, (int, float)) else None


def _div(x, n: int):
    return round_sig(x / n, 3) if isinstance(x, (int, float)) and n else None


def idle_temp_c(snap: dict) -> float | None:
    """The GPU temperature an idle baseline is tied to: NVML's, else a Jetson thermal zone named for
    the GPU (gpu-thermal, GPU-therm); None where neither is read (then every point measures its own)."""
    t = snap.get("gpu_temp_c")
    if isinstance(t, (int, float)):
        return float(t)
    zones = snap.get("temps_c") or {}
    return next((float(v) for k, v in sorted(zones.items()) if "gpu" in k.lower()
                 and isinstance(v, (int, float))), None)


def _prov(before: dict, after: dict) -> dict:
    """Clocks, temperature and throttle reasons: one value if unchanged, else [before, after]."""
    out: dict[str, Any] = {}
    for k in sorted(set(before) | set(after)):
        b, a = before.get(k), after.get(k)
        if k in ("t_ns", "kind", "throttle_names", "throttle_reasons") or k.endswith("_why") \
                or (b is None and a is None):
            continue
        out[k] = b if b == a else [b, a]
    if not out:
        whys = [v for k, v in before.items() if k.endswith("_why") and v]
        out["why"] = whys[0] if whys else "no clock or temperature readings on this device"
    return out


class PointTelemetry:
    """Power sampling, per-phase energy and device provenance around one point. Every part that the
    device cannot give is recorded as null with its reason; it never fails the point."""

    def __init__(self, req: PointRequest, index: int):
        """`index`: the CUDA index of the point's device (NVML's own index is found from it)."""
        from edgebench.telemetry import jetson
        from edgebench.telemetry import power
        from edgebench.telemetry import provenance
        self.index = index
        self.kind = "jetson" if jetson.is_jetson() else ("nvml" if req.device.startswith("cuda") else None)
        if self.kind == "nvml":  # NVML numbers GPUs by PCI order, whatever CUDA_VISIBLE_DEVICES says
            from edgebench.telemetry import nvml
            self.index, _ = nvml.index_for_torch_device(self.index)
        self.rate_hz = req.power_rate_hz
        self.idle_s = req.idle_s
        self.known_idle, self.known_from = req.known_idle, req.idle_from
        self.idle_from: str | None = None  # set when the lent baseline is used
        self.provenance = provenance
        self.sampler = None
        self.why = "CPU run: no power source" if self.kind is None else ""
        if self.kind:
            chans, why = power.channels_for_device(self.kind, self.index)
            if chans:
                self.rate_hz, self.rate_warning = power.clamp_rate(self.rate_hz, self.kind)
                self.channels = chans
                self.sampler, self.sampler_kind = power.make_sampler(chans, self.rate_hz)
            else:
                self.why = why

    def begin(self) -> None:
        from edgebench.telemetry import power
        self.before = self.provenance.snapshot(self.index) if self.kind else {}
        temp = idle_temp_c(self.before)
        if self.sampler:
            self.sampler.start()
            known = self.known_idle
            if known and temp is not None and abs(temp - known["temp_c"]) <= IDLE_REUSE_C \
                    and time.monotonic() <= known["expires_s"]:
                self.idle_w, self.idle_temp, self.idle_from = known["idle_w"], known["temp_c"], self.known_from
                time.sleep(2.0 / self.rate_hz)  # samples before the first phase, as a measured baseline leaves
            else:
                idle = power.idle_baseline(self.sampler, self.idle_s)
                self.idle_temp = temp
                mw = idle["idle_mw"][self._total()]
                self.idle_w = mw / 1e3 if mw is not None else None
        self.span = [self._counter_mj(), None]
        self.span_ns = [now_ns(), None]

    def _total(self) -> int:
        """The channel whose power is the device's total (the one energy is computed on)."""
        return next((i for i, ch in enumerate(self.channels) if ch.is_total), 0)

    def _counter_mj(self):
        if self.kind != "nvml":
            return None
        from edgebench.telemetry import nvml
        return nvml.energy_mj(self.index)

    def end(self, pre, windows: dict[str, tuple[int, int]], decode: dict[str, dict], c: dict,
            reps: int) -> dict:
        """The point's provenance and prefill energy; each decode mode's energy goes into its
        entry of `decode` (`windows`: each measured mode's timed window)."""
        from edgebench.telemetry import energy
        self.span[1], self.span_ns[1] = self._counter_mj(), now_ns()
        after = self.provenance.snapshot(self.index) if self.kind else {}
        out: dict[str, Any] = {}
        if self.kind:
            out["prov"] = _prov(self.before, after)
            thr = self.provenance.compare(self.before, after)
            known = "why" not in out["prov"]
            out["prov"]["throttled"] = thr.get("throttled") if known else None
            if thr.get("reasons"):
                out["prov"]["throttle_reasons"] = thr["reasons"]
        if not self.sampler:
            out["energy"] = None
            out["energy_why"] = self.why
            for entry in decode.values():
                if entry.get("status") == "ok":
                    entry["energy"], entry["energy_why"] = None, self.why
            return out
        time.sleep(2.0 / self.rate_hz)  # one more sample after the last phase ends, so it is covered
        self.sampler.stop()
        t_ns, per_channel = self.sampler.samples()
        total = self._total()
        phases = {"prefill": pre.extra["window_ns"], "case": tuple(self.span_ns),
                  **{f"decode:{m}": w for m, w in windows.items()}}
        idle_mw = self.idle_w * 1e3 if self.idle_w is not None else None
        # The NVML energy counter is read around the whole measured region ("case") and compared
        # there with the integrated samples; per-phase energy comes from the samples.
        e = energy.phase_energy(t_ns, per_channel[total], phases, idle_mw,
                                counter_mj={"case": tuple(self.span)} if self.kind == "nvml" else None)
        pe = e.get("prefill") or {}
        result: dict[str, Any] = {
            "channel": None if self.kind == "nvml" else self.channels[total].name,
            "idle_w": round(idle_mw / 1e3, 1) if idle_mw is not None else None,
            "idle_temp_c": self.idle_temp if idle_mw is not None else None,
            "prefill_j": _div(pe.get("energy_j"), reps), "prefill_net_j": _div(pe.get("net_energy_j"), reps),
            "prefill_mean_w": _rnd(pe.get("mean_w"), 1), "prefill_peak_w": _rnd(pe.get("peak_w"), 0),
            "counter_vs_samples_pct": _rnd((e.get("case") or {}).get("counter_vs_samples_pct"), 2),
        }
        if pe.get("energy_j_why"):
            result["energy_why"] = f"prefill: {pe['energy_j_why']}"
        if self.sampler.dropped:
            result["dropped_samples"] = self.sampler.dropped
        out["energy"] = {k: v for k, v in result.items() if v is not None}
        if self.idle_from:
            out["idle_from"] = self.idle_from
        tokens = c["gen"] * c["batch"]
        for mode in windows:
            de = e.get(f"decode:{mode}") or {}
            got = {"decode_j_per_token": _div(de.get("energy_j"), tokens),
                   "decode_net_j_per_token": _div(de.get("net_energy_j"), tokens),
                   "decode_mean_w": _rnd(de.get("mean_w"), 1), "decode_peak_w": _rnd(de.get("peak_w"), 0),
                   "energy_why": f"decode: {de['energy_j_why']}" if de.get("energy_j_why") else None}
            decode[mode]["energy"] = {k: v for k, v in got.items() if v is not None}
        return out
