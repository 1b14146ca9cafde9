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
