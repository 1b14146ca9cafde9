"""The one executor behind `run` and `maxctx`: one device resolution and label for both, from the
environment snapshot alone; maxctx labels the GPU it ran on by its index."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgebench.cli import main
from edgebench.errors import UserError
from edgebench.execution import executor, isolate

GiB = 2**30
TWO_GPUS = {"edgebench": "test", "host": {"machine": "x86_64"},
            "gpus": [{"name": "GPU Zero", "total_bytes": 80 * GiB},
                     {"name": "GPU One", "total_bytes": 24 * GiB}]}
NO_GPU = {"edgebench": "test", "host": {"machine": "riscv64"}, "gpus": []}


def _lines(path) -> list[dict]:
    return [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]


def test_device_resolution_and_label_are_a_function_of_the_snapshot():
    assert executor.resolve_device("cuda:1", TWO_GPUS) == "cuda:1"
    assert executor.resolve_device("cuda", TWO_GPUS) == "cuda:0"
    assert executor.resolve_device("auto", TWO_GPUS) == "cuda:0"
    assert executor.resolve_device("auto", NO_GPU) == "cpu"
    assert executor.device_label("cuda:1", TWO_GPUS) == "GPU One"
    assert executor.device_label("cuda:0", TWO_GPUS) == "GPU Zero"
    assert executor.device_label("cpu", TWO_GPUS) == "CPU (x86_64)"
    with pytest.raises(UserError, match="cuda:2 is not here .2 CUDA GPUs visible"):
        executor.resolve_device("cuda:2", TWO_GPUS)


@pytest.fixture
def fake_workers(monkeypatch):
    """Workers that answer at once: the environment is `env`, each point fits up to 2048 tokens."""
    state = {"env": NO_GPU, "payloads": []}

    def run_isolated(target, payload, **kw):
        state["payloads"].append(payload)
        ctx = payload["point"]["ctx"]
        if ctx > 2048:
            return {"status": "oom", "reason": "out of memory"}
        return {"status": "ok", "prefill_ms": None,
                "decode": {m: {"status": "ok"} for m in payload["decode_modes"]}}

    monkeypatch.setenv("EDGEBENCH_PRELOAD", "0")
    monkeypatch.setattr(executor, "snapshot_env", lambda: dict(state["env"]))
    monkeypatch.setattr(isolate, "run_isolated", run_isolated)
    return state


def test_run_and_maxctx_label_the_cpu_the_same_way(fake_workers, tmp_path):
    run_log, max_log = tmp_path / "run.jsonl", tmp_path / "max.jsonl"
    assert main(["run", "-m", "tiny-llama", "-c", "4096", "-n", "1", "-r", "1", "--warmup", "0",
                 "--device", "cpu", "-q", "-o", str(run_log)]) == 0
    assert main(["maxctx", "-m", "tiny-llama", "--device", "cpu", "--limit", "4k", "--resolution", "1k",
                 "-o", str(max_log)]) == 0
    labels = {(x["type"], x["device"]) for x in _lines(run_log) + _lines(max_log)
              if x["type"] in ("run", "case", "maxctx")}
    assert labels == {("run", "CPU (riscv64)"), ("case", "CPU (riscv64)"), ("maxctx", "CPU (riscv64)")}


def test_maxctx_on_the_second_gpu_labels_that_gpu(fake_workers, tmp_path):
    fake_workers["env"] = TWO_GPUS
    path = tmp_path / "max.jsonl"
    assert main(["maxctx", "-m", "tiny-llama", "--device", "cuda:1", "--limit", "4k", "--resolution", "1k",
                 "-o", str(path)]) == 0
    lines = _lines(path)
    assert lines[0]["type"] == "run" and lines[0]["device"] == "GPU One"
    rec = [x for x in lines if x["type"] == "maxctx"][0]
    assert rec["device"] == "GPU One" and rec["dtype"] == "bfloat16"
    assert rec["max_ok_ctx"] == 2048 and rec["min_fail_ctx"] == 3072
    assert {p["device"] for p in fake_workers["payloads"]} == {"cuda:1"}
    assert all(p["reps"] == 0 and p["telemetry"] is False for p in fake_workers["payloads"])


def test_a_grid_on_the_second_gpu_labels_that_gpu_and_skips_after_an_oom(fake_workers, tmp_path):
    fake_workers["env"] = TWO_GPUS
    path = tmp_path / "run.jsonl"
    assert main(["run", "-m", "tiny-llama", "-c", "1024,4096,8192", "-n", "1", "-r", "1", "--warmup", "0",
                 "--device", "cuda:1", "-q", "-o", str(path)]) == 0
    cases = [x for x in _lines(path) if x["type"] == "case"]
    assert [(c["ctx"], c.get("decode_mode"), c["status"]) for c in cases] == [
        (1024, None, "ok"), (1024, "eager", "ok"), (4096, None, "oom"), (4096, "eager", "skipped"),
        (8192, None, "skipped"), (8192, "eager", "skipped")]
    assert {c["device"] for c in cases} == {"GPU One"}
    assert [p["point"]["ctx"] for p in fake_workers["payloads"]] == [1024, 4096]
