"""Energy integration against synthetic traces with known integrals, rate clamping, samplers."""
import math
import time
import types
from pathlib import Path

import numpy as np
import pytest

from edgebench import probe
from edgebench.telemetry import energy
from edgebench.telemetry import power
from edgebench.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures" / "sysfs"
BASE_NS = 1_700_000_000_000_000  # a large monotonic offset: float64 seconds would lose the ns


def trace(fn, seconds: float, period_s: float):
    t_s = np.arange(0.0, seconds + period_s / 2, period_s)
    return BASE_NS + np.round(t_s * 1e9).astype(np.int64), fn(t_s)


def ns(t_s: float) -> int:
    return BASE_NS + round(t_s * 1e9)


def test_linear_trace_is_integrated_exactly_with_edges_between_samples():
    t, mw = trace(lambda s: 1000 + 500 * s, 1.0, 0.02)
    mw[10] = math.nan  # a failed read is dropped; linear interpolation over it stays exact
    t0, t1 = 0.013, 0.987
    expected_j = (1000 * (t1 - t0) + 250 * (t1**2 - t0**2)) / 1e3
    assert energy.integrate_j(t, mw, ns(t0), ns(t1)) == pytest.approx(expected_j, rel=1e-9)


def test_sinusoid_trace_matches_its_analytic_integral():
    f = 1.0
    t, mw = trace(lambda s: 2000 + 1000 * np.sin(2 * np.pi * f * s), 3.0, 0.001)
    t0, t1 = 0.1234, 2.3456
    expected_j = (2000 * (t1 - t0)
                  + 1000 / (2 * np.pi * f) * (np.cos(2 * np.pi * f * t0) - np.cos(2 * np.pi * f * t1))) / 1e3
    assert energy.integrate_j(t, mw, ns(t0), ns(t1)) == pytest.approx(expected_j, rel=1e-6)


def test_window_outside_the_samples_is_refused():
    t, mw = trace(lambda s: 1000 + 0 * s, 1.0, 0.02)
    with pytest.raises(ValueError, match="outside the sampled span"):
        energy.integrate_j(t, mw, ns(0.5), ns(1.5))


def test_phase_energy_raw_net_mean_peak_and_short_phases():
    t, mw = trace(lambda s: 1000 + 500 * s, 2.0, 0.02)
    phases = {"prefill": (ns(0.105), ns(0.5)), "decode": (ns(0.5), ns(1.9)),
              "blip": (ns(1.0), ns(1.03)), "blip_counted": (ns(1.2), ns(1.23))}
    counter = {"blip_counted": (5_000_000, 5_000_045)}
    res = energy.phase_energy(t, mw, phases, idle_mw=800.0, counter_mj=counter)
    dec = res["decode"]
    raw_j = (1000 * 1.4 + 250 * (1.9**2 - 0.5**2)) / 1e3
    assert dec["energy_j"] == pytest.approx(raw_j, rel=1e-9)
    assert dec["net_energy_j"] == pytest.approx(raw_j - 0.8 * 1.4, rel=1e-9)
    assert dec["mean_w"] == pytest.approx(raw_j / 1.4, rel=1e-9)
    assert dec["peak_w"] == pytest.approx(1.95, rel=1e-9)          # interpolated at the window end
    assert dec["n_samples"] == 69                                   # 0.52 .. 1.88 s, every 20 ms
    assert res["prefill"]["n_samples"] == 19                        # 0.12 .. 0.48 s
    blip = res["blip"]
    assert blip["energy_j"] is None and "shorter than 2 sample periods" in blip["energy_j_why"]
    assert blip["net_energy_j"] is None
    counted = res["blip_counted"]
    assert counted["energy_source"] == "nvml_counter" and counted["energy_j"] == pytest.approx(0.045)
    assert counted["net_energy_j"] == pytest.approx(0.045 - 0.8 * 0.03)
    no_idle = energy.phase_energy(t, mw, {"decode": phases["decode"]}, idle_mw=None)["decode"]
    assert no_idle["net_energy_j"] is None and no_idle["net_energy_j_why"] == "no idle baseline"
    assert energy.per_token(dec, 70)["energy_j_per_token"] == pytest.approx(raw_j / 70)


def test_counter_and_integrated_energy_are_compared():
    t, mw = trace(lambda s: 100_000 + 0 * s, 2.0, 0.02)  # 100 W for the whole trace
    res = energy.phase_energy(t, mw, {"p": (ns(0.5), ns(1.5))}, idle_mw=0.0,
                              counter_mj={"p": (1_000_000, 1_095_000)})["p"]
    assert res["energy_j"] == pytest.approx(100.0)
    assert res["counter_energy_j"] == pytest.approx(95.0)
    assert res["counter_vs_samples_pct"] == pytest.approx(100 * 5 / 95)


def test_rate_clamp_warns_above_the_source_ceiling(monkeypatch):
    rate, warning = power.clamp_rate(200, "nvml")
    assert rate == power.NVML_MAX_RATE_HZ and "clamped" in warning and "200" in warning
    assert power.clamp_rate(20, "nvml") == (20.0, None)
    with pytest.raises(UserError):
        power.clamp_rate(0, "nvml")
    with pytest.raises(UserError):
        power.max_rate_hz("bogus")
    monkeypatch.setenv("EDGEBENCH_SYSFS_ROOT", str(FIXTURES / "orin"))   # update_interval = 5 ms
    assert power.max_rate_hz("jetson") == pytest.approx(200.0)
    assert power.clamp_rate(1000, "jetson")[0] == pytest.approx(200.0)
    monkeypatch.setenv("EDGEBENCH_SYSFS_ROOT", str(FIXTURES / "orin_nano"))
    assert power.max_rate_hz("jetson") == power.INA3221_DEFAULT_MAX_RATE_HZ


HAS_NATIVE = probe.native_module() is not None and hasattr(probe.native_module(), "PowerSampler")
BACKENDS = ["python", pytest.param("native", marks=pytest.mark.skipif(
    not HAS_NATIVE, reason="edgebench._probe with PowerSampler not built"))]


def sampler(backend, chans, rate_hz, capacity):
    if backend == "python":
        return power.PythonPowerSampler(chans, rate_hz, capacity)
    s, which = power.make_sampler(chans, rate_hz, capacity)
    assert which == "native"
    return s


@pytest.mark.parametrize("backend", BACKENDS)
def test_sampler_reads_rails_at_rate_per_channel(tmp_path, backend):
    (tmp_path / "mv").write_text("5000\n")
    (tmp_path / "ma").write_text("400\n")
    (tmp_path / "mw").write_text("1234\n")
    chans = [("vi", -1, str(tmp_path / "mv"), str(tmp_path / "ma"), 1e-3),
             ("p", -1, str(tmp_path / "mw"), "", 1.0)]
    s = sampler(backend, chans, 200, 10_000)
    s.start()
    assert s.running
    time.sleep(0.25)
    s.stop()
    t, per = s.samples()
    assert 10 <= len(t) <= 60 and s.dropped == 0   # 200 Hz for 0.25 s, on a shared CPU
    assert all(b > a for a, b in zip(t, t[1:]))
    assert 4.5e6 <= np.median(np.diff(t)) <= 15e6
    assert len(per) == 2 and set(per[0]) == {2000.0} and set(per[1]) == {1234.0}
    assert s.thread_cpu_ns > 0


def test_python_sampler_marks_failed_reads_nan(tmp_path):
    (tmp_path / "garbled").write_text("N/A\n")
    chans = [("p", -1, str(tmp_path / "absent"), "", 1.0), ("p", -1, str(tmp_path / "garbled"), "", 1.0)]
    s = power.PythonPowerSampler(chans, 200, 100)
    s.start()
    time.sleep(0.05)
    s.stop()
    _, per = s.samples()
    assert per[0] and all(math.isnan(v) for v in per[0] + per[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_sampler_ring_overflow_counts_dropped(tmp_path, backend):
    (tmp_path / "mw").write_text("10\n")
    s = sampler(backend, [("p", -1, str(tmp_path / "mw"), "", 1.0)], 500, 5)
    s.start()
    time.sleep(0.2)
    s.stop()
    t, _ = s.samples()
    assert len(t) == 5 and s.dropped > 5


@pytest.mark.parametrize("backend", BACKENDS)
def test_idle_baseline_is_the_time_weighted_mean(tmp_path, backend):
    (tmp_path / "mw").write_text("750\n")
    s = sampler(backend, [("p", -1, str(tmp_path / "mw"), "", 1.0)], 200, 1000)
    s.start()
    try:
        base = power.idle_baseline(s, 0.15)
    finally:
        s.stop()
    assert base["idle_mw"] == [pytest.approx(750.0)] and base["n_samples"] >= 15


def test_make_sampler_prefers_native_and_falls_back(monkeypatch, tmp_path):
    chans = [("p", -1, str(tmp_path / "mw"), "", 1.0)]
    monkeypatch.setattr(probe, "_native", None)  # no compiled module: pure Python
    s, which = power.make_sampler(chans, 50)
    assert which == "python" and isinstance(s, power.PythonPowerSampler) and s.capacity == 180_001
    made = []
    rows = types.SimpleNamespace(samples=lambda: ([1, 2], [[10.0, 20.0], [11.0, 21.0]]), dropped=3)
    fake = types.SimpleNamespace(PowerSampler=lambda c, r, n: made.append((c, r, n)) or rows)
    monkeypatch.setattr(probe, "_native", fake)
    ch = power.PowerChannel("VDD_IN", chans[0], True)
    s, which = power.make_sampler([ch], 20, capacity=7)
    assert which == "native" and made == [([chans[0]], 20.0, 7)]
    assert s.samples() == ([1, 2], [[10.0, 11.0], [20.0, 21.0]]) and s.dropped == 3
