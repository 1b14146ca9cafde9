"""A point's energy end to end on the CPU: a Jetson sysfs tree whose INA3221 rails read a constant
power (tests/fixtures/sysfs/orin_nano: VDD_IN 7,620 mW) drives the real power sampler in the worker,
so the invariant is exact physics: energy = power x time, and net of the idle baseline, nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "sysfs" / "orin_nano"
VDD_IN_W = 7.620


def test_energy_per_prefill_and_per_token_is_the_rails_power_times_the_time(tmp_path):
    log = tmp_path / "run.jsonl"
    env = {**os.environ, "EDGEBENCH_SYSFS_ROOT": str(FIXTURE)}
    subprocess.run([sys.executable, "-m", "edgebench", "run", "-m", "tiny-llama", "-c", "1024", "-n", "128",
                    "-r", "30", "--decode-mode", "eager", "--device", "cpu", "-t", "float32", "--raw", "-q",
                    "-o", str(log)],
                   check=True, capture_output=True, env=env, timeout=600)
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    prefill, decode = [x for x in lines if x["type"] == "case"]
    e = prefill["energy"]
    assert e["channel"] == "VDD_IN" and e["idle_w"] == pytest.approx(VDD_IN_W, abs=0.05)
    # energy per repetition is the window's over the repetitions: power x their mean time (the window
    # holds them and the host's few microseconds between them); a median would miss a loaded host's
    # slow repetitions
    mean_s = lambda xs: sum(xs) / len(xs) / 1e3  # noqa: E731
    assert e["prefill_j"] == pytest.approx(VDD_IN_W * mean_s(prefill["raw"]["prefill_ms"]), rel=0.05)
    assert abs(e["prefill_net_j"]) <= 0.02 * e["prefill_j"]
    d = decode["energy"]
    assert d["decode_j_per_token"] == pytest.approx(VDD_IN_W * mean_s(decode["raw"]["tpot_ms"]), rel=0.05)
    assert abs(d["decode_net_j_per_token"]) <= 0.02 * d["decode_j_per_token"]


def test_a_runs_later_points_borrow_the_idle_baseline_while_the_gpu_temperature_holds(tmp_path):
    """The first point of a device measures the idle baseline and the temperature it was taken at
    (the fixture's gpu-thermal zone: 49.5 C); the later points, the temperature unchanged, borrow it
    (their lines name the lender's key in `idle_from`) and their energy is still power x time."""
    log = tmp_path / "run.jsonl"
    env = {**os.environ, "EDGEBENCH_SYSFS_ROOT": str(FIXTURE)}
    subprocess.run([sys.executable, "-m", "edgebench", "run", "-m", "tiny-llama", "-c", "1024,1536,2048", "-n", "4",
                    "-r", "30", "--decode-mode", "eager", "--device", "cpu", "-t", "float32", "--raw", "-q",
                    "-o", str(log)], check=True, capture_output=True, env=env, timeout=600)
    from edgebench.logs.loader import load
    keys = {x["ctx"]: x["key"] for x in load([str(log)]).cases if x.get("decode_mode") is None}  # derived
    first, *later = [x for x in map(json.loads, log.read_text().splitlines())
                     if x["type"] == "case" and x.get("decode_mode") is None]
    assert "idle_from" not in first and first["energy"]["idle_temp_c"] == 49.5
    assert first["energy"]["idle_w"] == pytest.approx(VDD_IN_W, abs=0.05)
    assert len(later) == 2
    for line in later:
        assert line["idle_from"] == keys[first["ctx"]]
        assert line["energy"]["idle_w"] == first["energy"]["idle_w"]
        assert line["energy"]["idle_temp_c"] == 49.5
        mean_s = sum(line["raw"]["prefill_ms"]) / len(line["raw"]["prefill_ms"]) / 1e3
        assert line["energy"]["prefill_j"] == pytest.approx(VDD_IN_W * mean_s, rel=0.05)
        assert line["setup_ms"]["telemetry"] < first["setup_ms"]["telemetry"]


@pytest.mark.parametrize("lent_at_c, expires_in_s, borrowed", [(49.5 - 1.5, 60, True), (49.5 + 2.5, 60, False),
                                                                (49.5 - 30, 60, False), (49.5, -1, False)])
def test_a_lent_idle_baseline_is_used_only_within_the_temperature_band_and_time(monkeypatch, lent_at_c,
                                                                               expires_in_s, borrowed):
    """A worker sent a baseline measured at another temperature (beyond contracts.IDLE_REUSE_C), or one
    whose time ran out while the worker loaded its model, measures its own: the fixture's rails read
    7.62 W, the lent baseline says 9.99 W."""
    import time
    from edgebench.logs.contracts import IDLE_REUSE_C, PointRequest
    from edgebench.measure.point_telemetry import PointTelemetry
    assert IDLE_REUSE_C == 2.0  # the band this test's temperatures straddle
    monkeypatch.setenv("EDGEBENCH_SYSFS_ROOT", str(FIXTURE))
    point = {"model": "tiny-llama", "backend": "hf", "dtype": "float32", "attn": "sdpa", "batch": 1,
             "ctx": 64, "gen": 4, "logits": "last"}
    req = PointRequest(reps=1, warmup=0, point=point, decode_modes=[], device="cpu", idle_s=0.3,
                       known_idle={"idle_w": 9.99, "temp_c": lent_at_c,
                                   "expires_s": time.monotonic() + expires_in_s}, idle_from="lender-key")
    t = PointTelemetry(req, 0)
    try:
        t.begin()
    finally:
        t.sampler.stop()
    assert t.idle_from == ("lender-key" if borrowed else None)
    assert t.idle_w == (9.99 if borrowed else pytest.approx(VDD_IN_W, abs=0.05))
    assert t.idle_temp == (lent_at_c if borrowed else 49.5)
