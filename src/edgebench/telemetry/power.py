"""Power sources, sampling rates and samplers (energy math lives in `energy.py`).

A channel is the native sampler's tuple `(kind, device_index, path_a, path_b, scale)`:
"nvml" reads nvmlDeviceGetPowerUsage(device_index) mW * scale; "vi" reads two integer files and gives
path_a * path_b * scale mW (INA3221 mV * mA * 1e-3); "p" reads one integer file * scale (iio mW).
`channels_for_device` wraps each in a `PowerChannel` that also carries its name and whether it is the
board total; pass `.tuple` to a sampler.

Fastest useful rates (`max_rate_hz`), sampling faster only repeats values:
- NVML: the driver refreshes the power reading every ~20-100 ms depending on GPU (and on Ampere and
  newer it is a 1 s running average), so 50 Hz (20 ms) is the ceiling; use the energy counter, not
  faster sampling, for short phases.
- INA3221 (Jetson): a full update measures 3 channels x (shunt + bus) x conversion time x averaging;
  with the power-on defaults (1.1 ms conversions, no averaging) that is 6.6 ms -> ~150 Hz. The hwmon
  driver exposes the real figure as `update_interval` (ms), which is used when readable. Each read
  is also an I2C transaction on a weak CPU, so the default stays 50 Hz.

Samplers share one interface: `start()`, `stop()`, `samples() -> (t_ns list, per-channel mW lists)`
(NaN for a failed read), `dropped` (samples lost when the ring buffer was full), `running`, `thread_cpu_ns`. `make_sampler` uses
the native thread (no GIL, wrapped by `NativeSampler`) when `probe.native_module()` has one, else
`PythonPowerSampler`.
"""
from __future__ import annotations

import collections
import math
import os
import threading
import time
from dataclasses import dataclass

from edgebench import probe
from edgebench.telemetry import energy
from edgebench.telemetry import jetson
from edgebench.telemetry import jetson_rails
from edgebench.telemetry import nvml
from edgebench.telemetry import sysroot
from edgebench.errors import UserError

DEFAULT_RATE_HZ = 50.0
NVML_MAX_RATE_HZ = 50.0
INA3221_DEFAULT_MAX_RATE_HZ = 150.0
Channel = jetson_rails.Channel


@dataclass(frozen=True)
class PowerChannel:
    name: str
    tuple: Channel
    is_total: bool


def channels_for_device(kind: str | None, device_index: int = 0) -> tuple[list[PowerChannel], str]:
    """Power channels for a device: "nvml" (desktop GPU), "jetson" (INA3221 rails) or None (pick:
    Jetson rails on a Jetson, else NVML). Returns ([], why) when none can be read; on Jetson the
    reason lists the sensors skipped even when others were found."""
    if kind is None:
        kind = "jetson" if jetson.is_jetson() else "nvml"
    if kind == "jetson":
        problems: list[str] = []
        rails = jetson_rails.discover_rails(problems)
        chans = [PowerChannel(r.name, r.channel, r.is_total) for r in rails]
        why = "; ".join(problems) if problems else ""
        return chans, why or ("" if chans else "no INA3221 rails found under " + str(sysroot.root()))
    if kind == "nvml":
        ok, why = nvml.status()
        if not ok:
            return [], why
        if nvml.power_mw(device_index) is None:
            return [], nvml.query(device_index).get("power_mw_why") or "NVML power unsupported"
        return [PowerChannel(f"gpu{device_index}", ("nvml", device_index, "", "", 1.0), True)], ""
    raise UserError(f"unknown power source {kind!r}; use 'nvml', 'jetson' or leave it unset")


def _ina3221_update_interval_ms() -> float | None:
    for f in sorted(sysroot.path(jetson_rails.HWMON_GLOB[0]).glob("*/hwmon/hwmon*/update_interval")):
        v, _ = jetson_rails.read_int_file(f)
        if v and v > 0:
            return float(v)
    return None


def max_rate_hz(source: str) -> float:
    """The fastest rate at which `source` ("nvml" | "jetson") gives new values (see module doc)."""
    if source == "nvml":
        return NVML_MAX_RATE_HZ
    if source == "jetson":
        ms = _ina3221_update_interval_ms()
        return 1e3 / ms if ms else INA3221_DEFAULT_MAX_RATE_HZ
    raise UserError(f"unknown power source {source!r}; use 'nvml' or 'jetson'")


def clamp_rate(requested_hz: float, source: str) -> tuple[float, str | None]:
    """(rate to use, warning or None). Above the source's ceiling: clamped, with a warning."""
    if not requested_hz > 0 or math.isinf(requested_hz):
        raise UserError(f"power sampling rate must be a positive number of Hz, got {requested_hz}")
    ceiling = max_rate_hz(source)
    if requested_hz > ceiling:
        return ceiling, (f"power sampling rate {requested_hz:g} Hz exceeds what {source} updates "
                         f"({ceiling:g} Hz); clamped to {ceiling:g} Hz")
    return float(requested_hz), None


class PythonPowerSampler:
    """A daemon thread reading the channels every 1/rate_hz s on time.monotonic_ns, into a ring of
    `capacity` samples. Used when the native sampler is absent; it holds the GIL while reading."""

    def __init__(self, channels: list[Channel], rate_hz: float, capacity: int):
        if capacity < 1 or not rate_hz > 0:
            raise UserError(f"sampler needs capacity >= 1 and rate > 0 (got {capacity}, {rate_hz})")
        self.channels, self.rate_hz, self.capacity = list(channels), float(rate_hz), int(capacity)
        self.dropped = 0
        self._ring: collections.deque = collections.deque(maxlen=self.capacity)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fds: dict[str, int] = {}
        self.thread_cpu_ns = 0  # CPU time the sampling thread has used, for its overhead

    @property
    def running(self) -> bool:
        return self._thread is not None

    def _read_file(self, path: str) -> float:
        try:
            fd = self._fds.get(path)
            if fd is None:
                fd = self._fds[path] = os.open(path, os.O_RDONLY)
            return float(int(os.pread(fd, 64, 0).split()[0]))
        except (OSError, ValueError, IndexError):
            return math.nan

    def _read(self, ch: Channel) -> float:
        kind, index, a, b, scale = ch
        if kind == "nvml":
            mw = nvml.power_mw(index)
            return math.nan if mw is None else mw * scale
        if kind == "p":
            return self._read_file(a) * scale
        return self._read_file(a) * self._read_file(b) * scale

    def _run(self) -> None:
        period_ns = int(1e9 / self.rate_hz)
        next_ns = time.monotonic_ns()
        while not self._stop.is_set():
            t = time.monotonic_ns()
            row = (t, [self._read(ch) for ch in self.channels])
            with self._lock:
                if len(self._ring) == self.capacity:
                    self.dropped += 1
                self._ring.append(row)
            next_ns += period_ns
            if next_ns < time.monotonic_ns():  # fell behind: skip missed ticks rather than burst
                next_ns = time.monotonic_ns() + period_ns
            self.thread_cpu_ns = time.thread_time_ns()
            self._stop.wait((next_ns - time.monotonic_ns()) / 1e9)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="edgebench-power", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def samples(self) -> tuple[list[int], list[list[float]]]:
        with self._lock:
            rows = list(self._ring)
        return [t for t, _ in rows], [[r[1][c] for r in rows] for c in range(len(self.channels))]


def make_sampler(channels: list[Channel | PowerChannel], rate_hz: float = DEFAULT_RATE_HZ,
                 capacity: int | None = None) -> tuple[object, str]:
    """(sampler, "native" | "python"). Capacity defaults to one hour at rate_hz."""
    tuples = [c.tuple if isinstance(c, PowerChannel) else tuple(c) for c in channels]
    capacity = capacity or int(rate_hz * 3600) + 1
    native = probe.native_module()
    if native is not None and hasattr(native, "PowerSampler"):
        try:
            return NativeSampler(native.PowerSampler(tuples, float(rate_hz), int(capacity))), "native"
        except RuntimeError as e:  # e.g. "cannot open power sensor file ..."
            raise UserError(f"power sampler: {e}") from e
    return PythonPowerSampler(tuples, rate_hz, capacity), "python"


class NativeSampler:
    """The native sampler with `samples()` per channel: `_probe.PowerSampler.samples()` returns one
    row per sample; everything else (start, stop, dropped, running, thread_cpu_ns) passes through."""

    def __init__(self, native):
        self._native = native

    def samples(self) -> tuple[list[int], list[list[float]]]:
        t, rows = self._native.samples()
        n = len(rows[0]) if rows else 0
        return list(t), [[r[c] for r in rows] for c in range(n)]

    def __getattr__(self, name):
        return getattr(self._native, name)


def idle_baseline(sampler, seconds: float) -> dict:
    """Time-weighted mean power per channel over the next `seconds` of a running sampler.

    Returns {"idle_mw": [per channel, None where no valid samples], "seconds", "n_samples"}."""
    t0 = time.monotonic_ns()
    time.sleep(seconds)
    t1 = time.monotonic_ns()
    t_ns, per_channel = sampler.samples()
    inside = [t for t in t_ns if t0 <= t <= t1]
    means: list[float | None] = []
    for mw in per_channel:
        pts = [(t, p) for t, p in zip(t_ns, mw) if math.isfinite(p)]
        if len(pts) < 2:
            means.append(None)
            continue
        a, b = max(t0, pts[0][0]), min(t1, pts[-1][0])
        if b <= a:
            means.append(None)
            continue
        ts, ps = zip(*pts)
        means.append(energy.integrate_j(ts, ps, a, b) / ((b - a) * 1e-9) * 1e3)
    return {"idle_mw": means, "seconds": seconds, "n_samples": len(inside)}
