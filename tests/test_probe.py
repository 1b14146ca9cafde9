"""The probe on a machine without a GPU: clocks, fallback selection, NVML absent, CPU timer."""
from __future__ import annotations

import importlib
import subprocess
import sys
import time

import pytest

import edgebench.probe as probe


def test_clock_is_monotonic_and_matches_python_monotonic():
    a = [probe.now_ns() for _ in range(10000)]
    assert all(x <= y for x, y in zip(a, a[1:]))
    # Same clock as time.monotonic_ns, so native and Python timestamps can be mixed.
    t_py, t_nat = time.monotonic_ns(), probe.now_ns()
    assert 0 <= t_nat - t_py < 50_000_000


def test_process_cpu_time_advances_with_work():
    t0 = probe.process_cpu_ns()
    sum(i * i for i in range(300_000))
    assert probe.process_cpu_ns() > t0


def test_backend_is_named_and_explained():
    assert probe.backend in ("native-cuda", "native-host", "python")
    if probe.backend != "native-cuda":
        assert probe.why  # a degraded backend always says why


def test_python_fallback_when_native_module_is_missing(monkeypatch):
    import edgebench
    monkeypatch.setitem(sys.modules, "edgebench._probe", None)  # makes the import fail
    monkeypatch.delattr(edgebench, "_probe", raising=False)
    fallback = importlib.reload(probe)
    try:
        assert fallback.backend == "python"
        assert "not importable" in fallback.why
        assert fallback.now_ns is time.monotonic_ns
        t = fallback.Timer("cpu")
        t.mark()
        t.mark()
        assert len(t.intervals_ms()) == 1
    finally:
        monkeypatch.undo()
        importlib.reload(probe)


def test_cpu_timer_pairs_and_intervals():
    t = probe.Timer("cpu", capacity=8)
    for _ in range(3):
        t.mark()
        time.sleep(0.002)
        t.mark()
    pairs = t.pairs_ms()
    assert len(pairs) == 3 and all(1.5 < p < 200 for p in pairs)
    assert len(t.intervals_ms()) == 5
    t.reset()
    assert t.count == 0


def test_module_imports_without_gpu_or_driver_in_a_fresh_process():
    code = ("import edgebench.probe as p, json; "
            "print(json.dumps([p.backend, p.summary()['built_with_cuda']]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


@pytest.mark.skipif(probe.native_module() is None, reason="native probe not built")
def test_nvml_absent_is_a_reason_not_a_crash():
    native = probe.native_module()
    why = native.nvml_init()
    if why:  # no driver here: every query explains itself
        q = native.nvml_query(0)
        assert q["power_mw"] is None and q["power_mw_why"]
        assert native.nvml_energy_mj(0) is None
        assert native.nvml_device_count() == 0


@pytest.mark.skipif(probe.native_module() is None, reason="native probe not built")
def test_power_sampler_reads_files_at_rate(tmp_path):
    v, i = tmp_path / "in1_input", tmp_path / "curr1_input"
    v.write_text("5000\n"), i.write_text("1200\n")
    s = probe.native_module().PowerSampler([("vi", -1, str(v), str(i), 1e-3)], 200.0, 1024)
    s.start()
    time.sleep(0.25)
    s.stop()
    t, rows = s.samples()
    assert 20 <= len(t) <= 80
    assert all(r[0] == pytest.approx(6000.0) for r in rows)  # 5000 mV * 1200 mA = 6 W
    assert all(b > a for a, b in zip(t, t[1:]))


@pytest.mark.skipif(probe.native_module() is None, reason="native probe not built")
def test_power_sampler_rejects_bad_channels(tmp_path):
    native = probe.native_module()
    with pytest.raises(RuntimeError, match="cannot open"):
        native.PowerSampler([("p", -1, str(tmp_path / "missing"), "", 1.0)], 50.0, 16)
    with pytest.raises(ValueError, match="unknown channel kind"):
        native.PowerSampler([("volts", -1, "", "", 1.0)], 50.0, 16)
