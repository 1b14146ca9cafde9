"""The one executor behind `run` and `maxctx`: one device resolution and label for both, from the
environment snapshot alone; maxctx labels the GPU it ran on by its index."""
from __future__ import annotations

import json
import os
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


SAME_GPUS = {"edgebench": "test", "host": {"machine": "x86_64"},
             "gpus": [{"index": i, "name": "GPU H", "total_bytes": 80 * GiB, "pci_bus_id": f"0000:0{i}:00.0"}
                      for i in range(2)]}


def _ok(payload: dict) -> dict:
    """A fake point worker's result: every line ok, nothing measured."""
    return {"status": "ok", "prefill_ms": None, "decode": {m: {"status": "ok"} for m in payload["decode_modes"]}}


def _fake_gpus(monkeypatch, run_isolated) -> None:
    """Two fake GPUs (SAME_GPUS), spawned workers, each point handed to `run_isolated`."""
    monkeypatch.setenv("EDGEBENCH_PRELOAD", "0")
    monkeypatch.setattr(executor, "snapshot_env", lambda: dict(SAME_GPUS))
    monkeypatch.setattr(isolate, "run_isolated", run_isolated)


def test_devices_run_the_contexts_of_a_series_that_fits_side_by_side(monkeypatch, tmp_path):
    """A series the memory model says fits with room to spare (tiny models on 80 GiB GPUs) is dealt
    point by point: its contexts run on both GPUs at once, and every line is written."""
    import threading
    import time
    spans, lock = {}, threading.Lock()

    def run_isolated(target, payload, stop=None, **kw):
        t0 = time.monotonic()
        time.sleep(0.4)
        with lock:
            spans[payload["point"]["ctx"]] = (t0, time.monotonic())
        return _ok(payload)

    _fake_gpus(monkeypatch, run_isolated)
    path = tmp_path / "run.jsonl"
    assert main(["run", "-m", "tiny-llama", "-c", "32,64", "-n", "1", "-r", "1", "--warmup", "0",
                 "--devices", "all", "-q", "-o", str(path)]) == 0
    (a0, a1), (b0, b1) = spans[32], spans[64]
    assert max(a0, b0) < min(a1, b1)  # overlapped
    assert sum(x["type"] == "case" for x in _lines(path)) == 4


def test_devices_a_longer_context_that_fails_first_skips_only_longer_ones(monkeypatch, tmp_path):
    """Dealt point by point, a series' longest context may run (and fail) first: the shorter contexts
    still run, and only longer ones not yet started are skipped, as on one GPU."""
    def run_isolated(target, payload, stop=None, **kw):
        ctx = payload["point"]["ctx"]
        if ctx == 128:
            return {"status": "killed", "reason": "out of host memory"}
        return _ok(payload)

    _fake_gpus(monkeypatch, run_isolated)
    path = tmp_path / "run.jsonl"
    main(["run", "-m", "tiny-llama", "-c", "32,64,128,256", "-n", "1", "-r", "1", "--warmup", "0",
          "--devices", "all", "-q", "-o", str(path)])
    pre = {x["ctx"]: x for x in _lines(path) if x["type"] == "case" and "decode_mode" not in x}
    assert pre[32]["status"] == pre[64]["status"] == "ok" and pre[128]["status"] == "killed"
    assert pre[256]["status"] in ("skipped", "ok")  # skipped unless it started before 128 ended
    if pre[256]["status"] == "skipped":
        assert "at 128 tokens" in pre[256]["reason"]


def test_devices_all_deals_points_to_both_gpus_at_once_and_names_each(monkeypatch, tmp_path):
    """Fake workers that take 0.4 s: four points on two GPUs take about two points' time, each
    point's line names the GPU it ran on, and an OOM on one GPU still skips that series' longer
    contexts (a series that may run out of memory runs in order wherever it is dealt)."""
    import threading
    import time

    from edgebench.execution import grid_planner
    seen, lock = [], threading.Lock()
    monkeypatch.setattr(grid_planner, "ordered_series", lambda points, presets, room: {p.series() for p in points})

    def run_isolated(target, payload, stop=None, **kw):
        time.sleep(0.4)
        with lock:
            seen.append((payload["device"], payload["point"]["model"], payload["point"]["ctx"]))
        if payload["point"]["model"] == "tiny-mamba" and payload["point"]["ctx"] > 32:
            return {"status": "oom", "reason": "out of memory"}
        return _ok(payload)

    _fake_gpus(monkeypatch, run_isolated)
    path = tmp_path / "run.jsonl"
    t0 = time.monotonic()
    assert main(["run", "-m", "tiny-llama,tiny-mamba", "-c", "32,64,128", "-n", "1", "-r", "1",
                 "--warmup", "0", "--devices", "all", "-q", "-o", str(path)]) == 0
    wall = time.monotonic() - t0
    lines = _lines(path)
    assert lines[0]["devices"] == ["GPU H", "GPU H"]
    pre = [x for x in lines if x["type"] == "case" and "decode_mode" not in x]
    assert {x["device_index"] for x in pre if x["status"] == "ok"} == {0, 1}
    assert all(x["pci_bus_id"] == f"0000:0{x['device_index']}:00.0" for x in pre if x["status"] != "skipped")
    by_ctx = {(x["model"], x["ctx"]): x["status"] for x in pre}
    assert by_ctx[("tiny-mamba", 64)] == "oom" and by_ctx[("tiny-mamba", 128)] == "skipped"
    assert len(seen) == 5 and {d for d, _, _ in seen} == {"cuda:0", "cuda:1"}
    assert wall < 5 * 0.4 + 4.0  # overlapped: five workers serially would take 2 s of sleep alone
    # resume: whichever GPU ran a point, the same command finds it done
    assert main(["run", "-m", "tiny-llama,tiny-mamba", "-c", "32,64,128", "-n", "1", "-r", "1",
                 "--warmup", "0", "--devices", "cuda:1,cuda:0", "-q", "-o", str(path)]) == 0
    assert len(seen) == 5


@pytest.mark.parametrize("argv, message", [
    (["--devices", "cuda:0,cuda:0"], "names cuda:0 twice"),
    (["--devices", "cuda:7"], "cuda:7"),
    (["--devices", "all", "--device", "cuda:0"], "--devices and a single device"),
])
def test_bad_devices_are_refused_before_any_worker(monkeypatch, tmp_path, capsys, argv, message):
    monkeypatch.setattr(executor, "snapshot_env", lambda: dict(SAME_GPUS))
    monkeypatch.setattr(isolate, "run_isolated", lambda *a, **k: pytest.fail("a worker started"))
    path = tmp_path / "run.jsonl"
    assert main(["run", "-m", "tiny-llama", "-c", "32", "-n", "1", *argv, "-q", "-o", str(path)]) == 2
    assert message in capsys.readouterr().err
    assert not path.exists() or not path.read_text().strip()  # nothing recorded


def test_maxctx_devices_runs_searches_on_both_gpus_and_names_each(monkeypatch, tmp_path):
    def run_isolated(target, payload, stop=None, **kw):
        fits = payload["point"]["ctx"] <= 2048
        return ({"status": "ok", "prefill_ms": None, "decode": {}} if fits
                else {"status": "oom", "reason": "out of memory"})

    _fake_gpus(monkeypatch, run_isolated)
    path = tmp_path / "max.jsonl"
    assert main(["maxctx", "-m", "tiny-llama,tiny-mamba", "--limit", "4k", "--resolution", "1k",
                 "--devices", "all", "-o", str(path)]) == 0
    recs = [x for x in _lines(path) if x["type"] == "maxctx"]
    assert sorted(r["model"] for r in recs) == ["tiny-llama", "tiny-mamba"]
    assert all(r["max_ok_ctx"] == 2048 and r["min_fail_ctx"] == 3072 for r in recs)
    assert {r["device_index"] for r in recs} == {0, 1}  # the two searches ran side by side
    assert all(r["pci_bus_id"] == f"0000:0{r['device_index']}:00.0" for r in recs)


def test_an_interrupted_devices_run_leaves_a_valid_log_that_resumes(monkeypatch, tmp_path):
    """Ctrl-C while two GPUs measure: every finished point is in the log with an `interrupted`
    line, the others are stopped, and the same command measures only what is missing."""
    import threading
    import time
    calls, lock = [], threading.Lock()

    def run_isolated(target, payload, stop=None, **kw):
        point = (payload["point"]["model"], payload["point"]["ctx"])
        with lock:
            calls.append(point)
        if point == ("tiny-mamba", 64) and not kw.get("resumed"):
            raise KeyboardInterrupt("received SIGINT (Ctrl-C)")
        time.sleep(0.2)
        return _ok(payload)

    _fake_gpus(monkeypatch, run_isolated)
    path = tmp_path / "run.jsonl"
    argv = ["run", "-m", "tiny-llama,tiny-mamba", "-c", "32,64", "-n", "1", "-r", "1", "--warmup", "0",
            "--devices", "all", "-q", "-o", str(path)]
    assert main(argv) == 130
    lines = _lines(path)
    assert lines[-1]["type"] == "interrupted"
    done = {(x["model"], x["ctx"]) for x in lines if x["type"] == "case"}
    assert ("tiny-mamba", 64) not in done and done  # what finished is kept
    assert main(["validate", str(path)]) == 0
    monkeypatch.setattr(isolate, "run_isolated", lambda t, p, stop=None, **kw: run_isolated(t, p, stop, resumed=True))
    calls.clear()
    assert main(argv) == 0
    assert set(calls) == {("tiny-llama", 32), ("tiny-llama", 64), ("tiny-mamba", 32), ("tiny-mamba", 64)} - done
    cases = [x for x in _lines(path) if x["type"] == "case"]
    assert len({(x["model"], x["ctx"], x.get("decode_mode")) for x in cases}) == 8


def test_adding_a_decode_mode_writes_only_its_lines_and_timeouts_are_per_line(monkeypatch, tmp_path):
    """A log measured with eager, rerun with eager,graph: only the graph lines are added (the
    recorded prefill and eager lines stand). The worker's timeout is --timeout once per line it
    measures, and a mode killed by it does not skip that mode at longer contexts."""
    seen = []

    def run_isolated(target, payload, timeout_s=None, **kw):
        seen.append((payload["point"]["ctx"], tuple(payload["decode_modes"]), timeout_s))
        if "graph" in payload["decode_modes"] and payload["point"]["ctx"] == 32:
            return {"status": "killed", "reason": f"timed out after {timeout_s:g} s", "prefill_ms": None,
                    "decode": {}, "decoding": "graph"}
        return {"status": "ok", "prefill_ms": None,
                "decode": {m: {"status": "ok"} for m in payload["decode_modes"]}}

    _fake_gpus(monkeypatch, run_isolated)
    path = tmp_path / "run.jsonl"
    base = ["run", "-m", "tiny-llama", "-c", "32,64", "-n", "1", "-r", "1", "--warmup", "0",
            "--device", "cuda:0", "--timeout", "10", "-q", "-o", str(path)]
    assert main(base + ["--decode-mode", "eager"]) == 0
    assert main(base + ["--decode-mode", "eager,graph"]) == 0
    assert [s[2] for s in seen] == [20.0] * 4  # (prefill + the one mode it measures) x 10 s
    assert [s[1] for s in seen] == [("eager",), ("eager",), ("graph",), ("graph",)]
    kinds = [(x["ctx"], x.get("decode_mode"), x["status"]) for x in _lines(path) if x["type"] == "case"]
    assert kinds == [(32, None, "ok"), (32, "eager", "ok"), (64, None, "ok"), (64, "eager", "ok"),
                     (32, "graph", "killed"), (64, "graph", "ok")]


def _fake_detecting_workers(monkeypatch) -> list[dict]:
    """Workers that 'detect' kernels named after their point's key unless sent known ones (then they
    repeat them and their source, as point_run does); returns the requests, as they are sent."""
    sent: list[dict] = []

    def run_isolated(target, payload, **kw):
        sent.append(payload)
        known = payload.get("known_kernels")
        rec = {"status": "ok", "prefill_ms": None, "decode": {m: {"status": "ok"} for m in payload["decode_modes"]},
               "kernels": known or {"attention": f"found-by-{payload['key']}"}}
        if known is not None:
            rec["kernels_from"] = payload["kernels_from"]
        return rec

    monkeypatch.setenv("EDGEBENCH_PRELOAD", "0")
    monkeypatch.setattr(executor, "snapshot_env", lambda: dict(NO_GPU))
    monkeypatch.setattr(isolate, "run_isolated", run_isolated)
    return sent


def test_kernels_are_detected_once_per_model_and_reused_by_its_later_points(monkeypatch, tmp_path):
    """Kernel detection's answer depends on (model, backend, dtype, attn, batch, probe length,
    device), not on the context: the first point of a model detects, the later ones (and later
    --runs) are sent what it found and the key of its line, which their prefill lines name."""
    sent = _fake_detecting_workers(monkeypatch)
    path = tmp_path / "run.jsonl"
    assert main(["run", "-m", "tiny-llama,tiny-mamba", "-c", "64,128", "-n", "1", "-r", "1", "--runs", "2",
                 "--warmup", "0", "--device", "cpu", "-q", "-o", str(path)]) == 0
    pre = {(x["model"], x["ctx"]): x for x in _lines(path) if x["type"] == "case" and "decode_mode" not in x}
    first = {p["point"]["model"]: p["key"] for p in sent if p["point"]["ctx"] == 64}  # their lines' keys
    by_point = [(p["point"]["model"], p["point"]["ctx"], p.get("kernels_from")) for p in sent]
    assert by_point == [("tiny-llama", 64, None), ("tiny-llama", 64, first["tiny-llama"]),
                        ("tiny-llama", 128, first["tiny-llama"]), ("tiny-llama", 128, first["tiny-llama"]),
                        ("tiny-mamba", 64, None), ("tiny-mamba", 64, first["tiny-mamba"]),
                        ("tiny-mamba", 128, first["tiny-mamba"]), ("tiny-mamba", 128, first["tiny-mamba"])]
    from edgebench.logs.loader import load
    keys = {(c["model"], c["ctx"]): c["key"] for c in load([str(path)]).cases if c.get("decode_mode") is None}
    for m in first:
        assert keys[(m, 64)] == first[m]  # kernels_from names a line of the log
        assert "kernels_from" not in pre[(m, 64)]  # its first run detected them
        assert pre[(m, 128)]["kernels_from"] == first[m]
        assert pre[(m, 128)]["kernels"] == {"attention": f"found-by-{first[m]}"}


def test_kernels_from_names_a_line_of_this_run_when_a_resumed_point_adds_a_mode(monkeypatch, tmp_path):
    """A point resumed only for a new decode mode does not write its prefill line again, so its
    kernels are not lent to later points: `kernels_from` never names an earlier run's line."""
    _fake_detecting_workers(monkeypatch)
    path = tmp_path / "run.jsonl"
    common = ["-m", "tiny-llama", "-n", "1", "-r", "1", "--warmup", "0", "--device", "cpu", "-q", "-o", str(path)]
    assert main(["run", "-c", "64", "--decode-mode", "eager", *common]) == 0
    assert main(["run", "-c", "64,128", "--decode-mode", "eager,graph", *common]) == 0
    from edgebench.logs.loader import load
    lines = load([str(path)]).cases
    prefill_run = {x["key"]: x["run"] for x in lines if x.get("decode_mode") is None}
    borrowed = [x for x in lines if x.get("kernels_from")]
    for x in borrowed:
        assert prefill_run.get(x["kernels_from"]) == x["run"], (x["ctx"], x["kernels_from"])
    (ctx128,) = [x for x in lines if x["ctx"] == 128 and x.get("decode_mode") is None]
    assert not ctx128.get("kernels_from")  # it detected its own: ctx 64's prefill line is the first run's

THREE_GPUS = {**SAME_GPUS, "gpus": [{"index": i, "name": "GPU H", "total_bytes": 80 * GiB,
                                     "pci_bus_id": f"0000:0{i}:00.0"} for i in range(3)]}


def test_devices_start_their_fork_servers_at_once_and_the_header_says_when(monkeypatch, tmp_path):
    """--devices: each GPU's fork server imports at the same time as the others (their imports,
    timed by the preload itself, overlap), not one after another; the header's startup_s and
    preload_s say when each moment came, in order; `validate` accepts the log with its end record."""
    from edgebench.execution import forkserver, prestart
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent),
                                                      *filter(None, [os.environ.get("PYTHONPATH")])]))
    stamps = tmp_path / "preloads.txt"
    monkeypatch.setenv("EDGEBENCH_TEST_PRELOAD_LOG", str(stamps))
    monkeypatch.setenv("EDGEBENCH_PRELOAD", "1")
    monkeypatch.setattr(prestart, "BASE_MODULES", ("slow_preload_module",))
    monkeypatch.setattr(forkserver, "preload_modules", lambda presets, backends=(): ["slow_preload_module"])
    monkeypatch.setattr(executor, "snapshot_env", lambda: dict(THREE_GPUS))
    monkeypatch.setattr(isolate, "run_isolated", lambda target, payload, stop=None, **kw: {
        "status": "ok", "prefill_ms": None, "decode": {m: {"status": "ok"} for m in payload["decode_modes"]}})
    path = tmp_path / "run.jsonl"
    assert main(["run", "-m", "tiny-llama", "-c", "32,64,128", "-n", "1", "-r", "1", "--warmup", "0",
                 "--devices", "all", "-q", "-o", str(path)]) == 0
    spans = [tuple(map(float, x.split())) for x in stamps.read_text().splitlines()]
    assert len(spans) == 3  # one preload per GPU
    assert max(s for s, _ in spans) < min(e for _, e in spans)  # all three importing at once
    lines = _lines(path)
    head, end = lines[0], lines[-1]
    order = ["main", "prestart", "log_open", "preload_ready", "header"]
    assert [k for k in head["startup_s"] if k in order] == order
    times = [head["startup_s"][k] for k in order]
    assert times == sorted(times) and times[0] >= 0
    assert head["startup_s"]["preload_ready"] - head["startup_s"]["log_open"] < 2 * 1.5
    started, named, ready = zip(*head["preload_s"].values())
    assert list(head["preload_s"]) == ["cuda:0", "cuda:1", "cuda:2"]
    assert all(s <= n <= r <= head["startup_s"]["preload_ready"] for s, n, r in zip(started, named, ready))
    assert max(started) < min(ready)  # the last started before the first was ready
    assert end["type"] == "end" and end["run"] == head["run"]
    tear = end["teardown_s"]
    assert list(tear) == ["first_point", "points_done", "servers_closed"]
    assert head["startup_s"]["header"] <= tear["first_point"] <= tear["points_done"] <= tear["servers_closed"]
    assert main(["validate", str(path)]) == 0


def test_each_gpus_idle_baseline_is_measured_once_and_lent_to_its_later_points(monkeypatch, tmp_path):
    """--devices: each GPU's first point measures its idle power (and the temperature), the later
    points of that GPU are sent it with the lender's key (never another GPU's); once it is older than
    IDLE_REUSE_S a point measures again. A borrowing worker names the lender in `idle_from`."""
    import threading
    import time

    from edgebench.execution import lent
    sent, lock = [], threading.Lock()

    def run_isolated(target, payload, stop=None, **kw):
        with lock:
            sent.append(payload)
        rec = _ok(payload)
        known = payload.get("known_idle")
        gpu = int(payload["device"][-1])
        rec["energy"] = {"idle_w": 100.0 + gpu, "idle_temp_c": 40.0 + gpu}  # as measured on that GPU
        if known:
            rec["energy"] = {"idle_w": known["idle_w"], "idle_temp_c": known["temp_c"]}
            rec["idle_from"] = payload["idle_from"]
            assert known["expires_s"] > time.monotonic()
        return rec

    _fake_gpus(monkeypatch, run_isolated)
    path = tmp_path / "run.jsonl"
    argv = ["run", "-m", "tiny-llama,tiny-mamba", "-c", "32,64,128", "-n", "1", "-r", "1", "--warmup", "0",
            "--devices", "all", "-q", "-o", str(path)]
    assert main(argv) == 0
    from edgebench.logs.loader import load
    pre = {x["key"]: x for x in load([str(path)]).cases if x.get("decode_mode") is None}
    own = [(x["device_index"], k) for k, x in pre.items() if not x.get("idle_from")]
    assert sorted(d for d, _ in own) == [0, 1]  # exactly one measurement per GPU
    lenders = dict(own)
    for x in pre.values():
        if x.get("idle_from"):
            assert x["idle_from"] == lenders[x["device_index"]]  # the same GPU's, a line of this log
    borrowed = [p for p in sent if p.get("known_idle")]
    assert len(borrowed) == 4 and {p["device"] for p in borrowed} == {"cuda:0", "cuda:1"}
    for p in borrowed:
        gpu = int(p["device"][-1])
        assert {k: p["known_idle"][k] for k in ("idle_w", "temp_c")} == {"idle_w": 100.0 + gpu, "temp_c": 40.0 + gpu}
    # stale: every point measures its own
    sent.clear()
    monkeypatch.setattr(lent, "IDLE_REUSE_S", -1.0)
    assert main(argv[:-1] + [str(tmp_path / "stale.jsonl")]) == 0
    assert len(sent) == 6 and not any(p.get("known_idle") for p in sent)


def test_only_a_points_first_run_lends_its_idle_baseline(monkeypatch, tmp_path):
    """--runs 2: the line records the first run's energy, so only that run lends. The first point's
    second run, sent the first run's baseline on a GPU that warmed meanwhile, measures its own (102 W
    at 43 C): the later point is still sent 101 W at 40 C, what the line it names records."""
    sent = []

    def run_isolated(target, payload, **kw):
        sent.append(payload)
        rec = _ok(payload)
        known, first_point = payload.get("known_idle"), payload["point"]["ctx"] == 32
        if known and not first_point:
            rec["energy"] = {"idle_w": known["idle_w"], "idle_temp_c": known["temp_c"]}
            rec["idle_from"] = payload["idle_from"]
        else:  # run 1 of the first point, and its run 2 (warmer): their own measurements
            rec["energy"] = {"idle_w": 102.0, "idle_temp_c": 43.0} if known else {"idle_w": 101.0, "idle_temp_c": 40.0}
        return rec

    _fake_gpus(monkeypatch, run_isolated)
    path = tmp_path / "run.jsonl"
    assert main(["run", "-m", "tiny-llama", "-c", "32,64", "-n", "1", "-r", "1", "--warmup", "0", "--runs", "2",
                 "--device", "cuda:0", "-q", "-o", str(path)]) == 0
    later = [p for p in sent if p["point"]["ctx"] == 64]
    assert len(later) == 2 and all(p["known_idle"]["idle_w"] == 101.0 and p["known_idle"]["temp_c"] == 40.0
                                   for p in later)
    from edgebench.logs.loader import load
    pre = {x["ctx"]: x for x in load([str(path)]).cases if x.get("decode_mode") is None}
    assert pre[64]["idle_from"] == pre[32]["key"] and "idle_from" not in pre[32]
