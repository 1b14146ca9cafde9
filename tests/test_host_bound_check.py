"""bench/host_bound_check.py: each timed phase is paired with the profile of the same phase, and the
summary says whether the host-bound flag separates high GPU idle shares from low ones."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("bench_host_bound_check", ROOT / "bench" / "host_bound_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def profiled_log(tmp_path_factory) -> Path:
    """A real CPU run with --profile ops; its case lines then get the GPU lag a CUDA run records."""
    out = tmp_path_factory.mktemp("hb") / "run.jsonl"
    subprocess.run([sys.executable, "-m", "edgebench", "run", "-m", "tiny-llama", "-c", "32,64", "-n", "2", "-r", "2",
                    "--warmup", "1", "--decode-mode", "eager", "--profile", "ops", "--device", "cpu",
                    "-t", "float32", "--no-telemetry", "-q", "-o", str(out)], check=True, capture_output=True)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    for r in lines:
        if r["type"] == "case":  # 32: host-bound (tiny lag), 64: GPU-bound (lag near the phase)
            median = (r.get("tpot_ms") or r.get("prefill_ms"))["median"]
            r["host_bound"] = r["ctx"] == 32
            r["gpu_lag_ms"] = 0.001 if r["ctx"] == 32 else median * 0.9
    out.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return out


def test_each_phase_pairs_with_the_profile_of_the_same_point_and_phase(profiled_log):
    mod = _module()
    rows = mod.rows(profiled_log)
    ops = [json.loads(x) for x in profiled_log.read_text().splitlines() if '"type": "ops"' in x]
    assert {(r["ctx"], r["phase"]) for r in rows} == {(32, "prefill"), (32, "eager"), (64, "prefill"), (64, "eager")}
    for r in rows:
        phase = "prefill" if r["phase"] == "prefill" else "decode"
        (o,) = [o for o in ops if o["ctx"] == r["ctx"] and o["phase"] == phase]
        assert r["gpu_idle_share"] == o["gpu_idle_share"] and r["kernel_ms"] == o["kernel_ms"]
        assert r["host_bound"] is (r["ctx"] == 32)


def test_the_summary_says_whether_the_flag_separates_idle_shares():
    mod = _module()
    row = lambda hb, idle: {"host_bound": hb, "gpu_idle_share": idle}  # noqa: E731
    s = mod.summary([row(True, 0.6), row(True, 0.35), row(False, 0.02), row(False, 0.1)])
    assert s == {"phases": 4, "flagged": 2, "unflagged": 2, "min_idle_share_flagged": 0.35,
                 "max_idle_share_unflagged": 0.1, "separated": True}
    assert mod.summary([row(True, 0.05), row(False, 0.3)])["separated"] is False
    assert mod.summary([row(False, 0.3)])["separated"] is None  # nothing flagged: it cannot tell


def test_a_log_that_is_not_there_is_an_error_not_an_empty_table(tmp_path, capsys):
    assert _module().main(["--log", str(tmp_path / "missing.jsonl")]) == 1
    assert "no log at" in capsys.readouterr().err
