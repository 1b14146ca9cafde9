"""Scale-out: job-array shards (`--shard i/N|auto`, balanced by expected work) and the device scheduler
behind `--devices` (one worker per GPU, longest work first, Ctrl-C stops every worker)."""
from __future__ import annotations

import dataclasses

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from edgebench.cli import main
from edgebench.errors import UserError
from edgebench.execution import isolate
from edgebench.execution.scheduler import parse_devices, run_on_devices
from edgebench.models import catalog
from edgebench.sweep import cost, estimate, shards
from edgebench.sweep.spec import Spec
from edgebench.sweep.specfile import list_suites, load_suite

SLURM = "SLURM_ARRAY_TASK_ID SLURM_ARRAY_TASK_MIN SLURM_ARRAY_TASK_MAX SLURM_ARRAY_TASK_COUNT".split()


def slurm(task, first, last, count, step=None):
    env = dict(zip(SLURM, map(str, (task, first, last, count))))
    return env if step is None else {**env, "SLURM_ARRAY_TASK_STEP": str(step)}


# --- the array environment -------------------------------------------------------------------------

@pytest.mark.parametrize("ids, step", [(range(0, 4), None), (range(1, 9), 1), (range(1, 16, 2), 2),
                                       (range(100, 103), None), (range(7, 8), 1)])
def test_slurm_array_tasks_each_get_one_shard(ids, step):
    ids = list(ids)
    got = [shards.parse("auto", slurm(t, ids[0], ids[-1], len(ids), step)) for t in ids]
    assert [(s.index, s.count) for s in got] == [(i + 1, len(ids)) for i in range(len(ids))]
    assert "SLURM_ARRAY_TASK_ID" in got[0].how


@pytest.mark.parametrize("env, says", [
    (slurm(6, 0, 32, 19), "evenly spaced.*SLURM_ARRAY_TASK_COUNT=19"),  # --array=0,6,16-32
    (slurm(3, 1, 7, 4, step=3), "SLURM_ARRAY_TASK_STEP=3"),
    (slurm(4, 1, 7, 4), "ids from 1 by 2"),  # an id off the grid
    ({**slurm(1, 1, 4, 4), "SLURM_ARRAY_TASK_ID": "x1"}, "SLURM_ARRAY_TASK_ID='x1' is not a whole number"),
    ({k: v for k, v in slurm(1, 1, 4, 4).items() if k != "SLURM_ARRAY_TASK_COUNT"},
     "SLURM_ARRAY_TASK_COUNT is not set"),
    (slurm(1, 1, 4, 0), "SLURM_ARRAY_TASK_COUNT='0' is not a whole number >= 1"),
])
def test_malformed_slurm_environment_is_refused_naming_it(env, says):
    with pytest.raises(UserError, match=says):
        shards.parse("auto", env)


def test_grid_engine_lsf_and_pbs():
    sge = {"SGE_TASK_FIRST": "2", "SGE_TASK_LAST": "10", "SGE_TASK_STEPSIZE": "2"}  # qsub -t 2-10:2
    assert [shards.parse("auto", {**sge, "SGE_TASK_ID": str(t)}).label for t in (2, 6, 10)] == \
        ["1/5", "3/5", "5/5"]
    with pytest.raises(UserError, match="SGE_TASK_STEPSIZE='0'"):
        shards.parse("auto", {**sge, "SGE_TASK_ID": "2", "SGE_TASK_STEPSIZE": "0"})
    lsf = {"LSB_JOBINDEX_END": "7", "LSB_JOBINDEX_STEP": "2"}  # bsub -J "eb[1-7:2]"
    assert [shards.parse("auto", {**lsf, "LSB_JOBINDEX": str(t)}).label for t in (1, 3, 7)] == \
        ["1/4", "2/4", "4/4"]
    assert shards.parse("auto", {"LSB_JOBINDEX": "3", "LSB_JOBINDEX_END": "4"}).label == "3/4"
    with pytest.raises(UserError, match="first index 1"):
        shards.parse("auto", {**lsf, "LSB_JOBINDEX": "4"})
    for var, flag in (("PBS_ARRAY_INDEX", "-J"), ("PBS_ARRAYID", "-t")):
        with pytest.raises(UserError, match=rf'{var}=3.*--shard "\${var}/N" with qsub {flag} 1-N'):
            shards.parse("auto", {var: "3"})


def test_auto_outside_an_array_or_with_two_schedulers_is_refused():
    outside = {"SGE_TASK_ID": "undefined", "LSB_JOBINDEX": "0", "SLURM_JOB_ID": "42"}  # plain jobs
    with pytest.raises(UserError, match="not an array task.*SLURM_ARRAY_TASK_ID.*--shard i/N"):
        shards.parse("auto", outside)
    with pytest.raises(UserError, match="Slurm and LSF at once"):
        shards.parse("auto", {**slurm(1, 1, 2, 2), "LSB_JOBINDEX": "1", "LSB_JOBINDEX_END": "2"})


@pytest.mark.parametrize("text", ["0/4", "5/4", "1/0", "1-4", "a/b", "", "1/4/2"])
def test_bad_shard_text(text):
    with pytest.raises(UserError, match="1-based"):
        shards.parse(text, {})


# --- balanced shards -------------------------------------------------------------------------------

def _split(spec, count, **kw):
    cases = spec.plan()
    parts = [shards.select(cases, f"{i}/{count}", reps=spec.reps, warmup=spec.warmup, **kw)[0]
             for i in range(1, count + 1)]
    return cases, parts


def test_shards_cover_the_plan_once_in_order_with_whole_series():
    spec = Spec(models="qwen2.5-0.5b,mamba2-780m,zamba2-1.2b,tiny-llama", ctx="1k-16k*2",
                decode_modes="eager,graph")
    cases, parts = _split(spec, 3)
    assert sorted(c.label() for p in parts for c in p) == sorted(c.label() for c in cases)
    for part in parts:
        assert part == [c for c in cases if c in part]  # plan order: contexts ascend in a series
    owner = {shards.series_key(c): i for i, p in enumerate(parts) for c in p}
    assert all(owner[shards.series_key(c)] == i for i, p in enumerate(parts) for c in p)
    assert _split(spec, 3)[1] == parts  # every task computes the same split


def test_auto_and_i_over_n_pick_the_same_cases():
    spec = load_suite("default-gpu")
    cases = spec.plan()
    for task in (1, 2, 3):
        by_hand = shards.select(cases, f"{task}/3", reps=spec.reps, warmup=spec.warmup)[0]
        auto, shard = shards.select(cases, "auto", reps=spec.reps, warmup=spec.warmup,
                                    environ=slurm(task + 9, 10, 12, 3))
        assert auto == by_hand and shard.label == f"{task}/3"


@pytest.mark.parametrize("suite", sorted(list_suites()))
def test_shards_of_the_shipped_suites_are_balanced(suite):
    """The largest shard is at most the mean plus the costliest series (the greedy bound); the paper
    suites split 2, 4 or 8 ways come within 10% (paper-desktop) / 20% (paper-jetson, fewer series)
    of the mean (series are coarse: all of a model's points at one setting, every decode mode)."""
    spec = load_suite(suite)
    presets = {m: catalog.resolve(m) for m in spec.models}

    def seconds(c):
        return estimate.case_s(c, presets[c.model], spec.reps, spec.warmup)
    cases = spec.plan()
    per_series: dict = {}
    for c in cases:
        per_series[shards.series_key(c)] = per_series.get(shards.series_key(c), 0.0) + seconds(c)
    for count in (2, 4, 8):
        if count > len(per_series):
            with pytest.raises(UserError, match=f"only {len(per_series)} series"):
                _split(spec, count, presets=presets)
            continue
        loads = [sum(map(seconds, part)) for part in _split(spec, count, presets=presets)[1]]
        mean = sum(loads) / count
        assert max(loads) <= mean + max(per_series.values()) + 1e-9
        if suite.startswith("paper"):
            assert max(loads) <= (1.10 if suite == "paper-desktop" else 1.20) * mean, (count, loads)


def test_lpt_assignment():
    assert shards.assign([5, 4, 3, 3, 3], 2) == [[0, 3], [1, 2, 4]]  # 8 vs 10; round-robin: 11 vs 7
    assert shards.assign([1, 1, 1, 1], 2) == [[0, 2], [1, 3]]  # equal costs: round-robin
    assert shards.select_items(["a", "b", "c"], shards.parse("2/2", {})) == ["b"]


def test_run_dry_run_with_shard_auto_lists_this_tasks_share(monkeypatch, capsys):
    listed = []
    for task in (1, 2):
        for var, value in slurm(task, 1, 2, 2).items():
            monkeypatch.setenv(var, value)
        assert main(["run", "--suite", "default-cpu", "--shard", "auto", "--dry-run"]) == 0
        listed.append([line.strip() for line in capsys.readouterr().out.splitlines() if "|ctx=" in line])
    planned = [c.label().replace("|auto|", "|float32|") for c in load_suite("default-cpu").plan()]
    assert sorted(listed[0] + listed[1]) == sorted(planned)  # dtype auto: float32 on the CPU
    assert listed[0] and listed[1]


def test_example_sbatch_runs_this_tasks_shard_into_its_own_log(tmp_path):
    """examples/slurm-array.sbatch as Slurm runs it, with an `edgebench` on PATH that records its
    arguments and checks that they pick a shard of the suite."""
    fake = tmp_path / "bin" / "edgebench"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\n')
    fake.chmod(0o755)
    script = Path(__file__).parent.parent / "examples" / "slurm-array.sbatch"
    env = {"PATH": f"{fake.parent}:/usr/bin:/bin", "SLURM_SUBMIT_DIR": str(tmp_path), "SUITE": "default-gpu",
           **slurm(2, 1, 3, 3)}
    subprocess.run(["bash", str(script)], env=env, check=True, timeout=30)
    args = (tmp_path / "args").read_text().split()
    assert args[:5] == ["run", "--suite", "default-gpu", "--shard", "auto"]
    assert args[-1] == f"{tmp_path}/edgebench-logs/default-gpu/task-2.jsonl"
    assert (tmp_path / "edgebench-logs" / "default-gpu").is_dir()
    assert shards.parse(args[4], env).label == "2/3"


def test_cost_model():
    tiny = catalog.get("tiny-llama")  # no published count
    assert cost.params(tiny) == tiny.params  # the catalog's count; a config's estimate without one:
    assert cost.params(dataclasses.replace(tiny, params=None)) == 12 * 2 * 64 * 64 + 512 * 64
    pre_small, eager_small, pre_big = [c for c in Spec(models="qwen2.5-0.5b", ctx="1k,16k").plan()
                                       if c.ctx == 1024 or c.decode_mode is None][:3]
    qwen = catalog.get("qwen2.5-0.5b")
    # the point's fixed cost is charged to its prefill line, once; longer contexts cost more
    assert estimate.STARTUP_S < estimate.case_s(pre_small, qwen, 5, 2) < estimate.case_s(pre_big, qwen, 5, 2)
    assert estimate.case_s(eager_small, qwen, 5, 2) < estimate.case_s(pre_small, qwen, 5, 2) + 10
    compile_line = dataclasses.replace(eager_small, decode_mode="compile")
    assert estimate.case_s(compile_line, qwen, 5, 2) > estimate.COMPILE_S


# --- the device scheduler --------------------------------------------------------------------------

def test_devices_run_one_item_at_a_time_and_in_parallel():
    spans: dict[str, list] = {}
    lock = threading.Lock()

    def work(item, device, stop):
        t0 = time.monotonic()
        time.sleep(0.4)
        with lock:
            spans.setdefault(device, []).append((t0, time.monotonic(), item))
        return item * 10

    t0 = time.monotonic()
    done = run_on_devices(list(range(6)), ["cuda:0", "cuda:1", "cuda:2"], work)
    wall = time.monotonic() - t0
    assert wall < 1.6, f"6 x 0.4 s on 3 devices took {wall:.2f} s (sum 2.4 s, ideal 0.8 s)"
    assert [(d.index, d.result) for d in done] == [(i, i * 10) for i in range(6)]  # item order
    for device, runs in spans.items():
        runs.sort()
        assert all(a[1] <= b[0] for a, b in zip(runs, runs[1:])), f"{device} ran two items at once"
    assert len(spans) == 3


def test_longest_expected_work_first():
    started = []

    def work(item, device, stop):
        started.append(item)
        return item
    run_on_devices([1, 4, 2, 3], ["cuda:0"], work, cost=float)
    assert started == [4, 3, 2, 1]


def test_one_cold_item_per_autotune_group_at_a_time():
    """`warms`: the second item of a group is dealt only once the first has ended (its autotune cache
    is filled); a device takes other work meanwhile, else waits. Without it both start at once."""
    items = [("mamba2", 5.0, "ssd"), ("zamba2", 4.0, "ssd"), ("qwen", 1.0, None)]

    def spans(warms):
        lock, out = threading.Lock(), {}

        def work(item, device, stop):
            t0 = time.monotonic()
            time.sleep(0.3 if item[2] else 0.05)
            with lock:
                out[item[0]] = (t0, time.monotonic(), device)
            return item[0]
        done = run_on_devices(items, ["cuda:0", "cuda:1"], work, cost=lambda it: it[1], warms=warms)
        assert [d.result for d in done] == ["mamba2", "zamba2", "qwen"]
        return out

    got = spans(lambda it: it[2])
    assert got["zamba2"][0] >= got["mamba2"][1]  # after the first of its group ended
    assert got["qwen"][0] < got["mamba2"][1]  # the other device took the ungrouped item meanwhile
    free = spans(None)
    assert free["zamba2"][0] < free["mamba2"][1]  # the control: both cold items at once


def test_series_run_in_order_and_a_failure_skips_the_rest_of_its_series():
    items = [("a", 1), ("a", 2), ("a", 3), ("b", 1)]
    failed, ends, callers = set(), [], set()
    running: set[str] = set()

    def work(item, device, stop):
        assert item[0] not in running, "two items of one series at once"
        running.add(item[0])
        time.sleep(0.05)
        running.discard(item[0])
        return "oom" if item == ("a", 2) else "ok"

    def on_result(d):
        callers.add(threading.current_thread() is threading.main_thread())
        ends.append(d.item)
        if d.result == "oom":
            failed.add(d.item[0])

    done = run_on_devices(items, ["cuda:0", "cuda:1"], work, cost=lambda it: 5.0 if it[0] == "b" else 1.0,
                          series=lambda it: it[0], on_result=on_result,
                          skip=lambda it: "skipped" if it[0] in failed else None)
    assert [d.result for d in done] == ["ok", "oom", "skipped", "ok"]
    assert done[2].device is None and callers == {True}
    assert [e for e in ends if e[0] == "a"] == [("a", 1), ("a", 2), ("a", 3)]


def test_ctrl_c_stops_every_running_item_and_keeps_what_finished():
    stopped, got = [], []

    def work(item, device, stop):
        if item == "quick":
            return "done"
        stop.wait(30)
        stopped.append(item)
        raise isolate.Stopped("stopped by the caller")

    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_on_devices(["quick", "slow1", "slow2"], ["cuda:0", "cuda:1", "cuda:2"], work,
                       cost=lambda it: 0.0 if it == "quick" else 1.0, on_result=got.append)
    assert time.monotonic() - t0 < 5
    assert sorted(stopped) == ["slow1", "slow2"] and [d.result for d in got] == ["done"]


def test_an_error_in_one_worker_stops_the_others_and_is_raised():
    stopped = threading.Event()

    def work(item, device, stop):
        if item == "bad":
            time.sleep(0.1)
            raise ValueError("broken")
        if stop.wait(30):
            stopped.set()
        raise isolate.Stopped("stopped")

    with pytest.raises(ValueError, match="broken"):
        run_on_devices(["slow", "bad"], ["cuda:0", "cuda:1"], work)
    assert stopped.is_set()


@pytest.mark.usefixtures("targets_importable")
def test_ctrl_c_stops_real_isolated_workers_on_every_device(tmp_path):
    pid_files = [tmp_path / f"{i}.pid" for i in range(2)]

    def work(item, device, stop):
        return isolate.run_isolated("isolate_targets:writes_pid_then_sleeps",
                                    {"pid_file": str(pid_files[item]), "sleep_s": 60}, stop=stop)

    def interrupt_once_both_run():
        deadline = time.monotonic() + 60
        while not all(p.exists() and p.read_text() for p in pid_files) and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_once_both_run, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run_on_devices([0, 1], ["cuda:0", "cuda:1"], work)
    for p in pid_files:
        with pytest.raises(ProcessLookupError):
            os.kill(int(Path(p).read_text()), 0)


GPUS = [{"name": "NVIDIA H200"}, {"name": "NVIDIA H200"}, {"name": "NVIDIA A100"}]


def test_parse_devices():
    assert parse_devices("all", GPUS) == ["cuda:0", "cuda:1", "cuda:2"]
    assert parse_devices(" cuda:2, cuda:0 ", GPUS) == ["cuda:2", "cuda:0"]
    assert parse_devices("cuda:1", GPUS, device="auto") == ["cuda:1"]


@pytest.mark.parametrize("text, gpus, device, says", [
    ("cuda:0,cuda:00", GPUS, None, "names cuda:0 twice"),
    ("cuda:0,cuda:3", GPUS, None, r"cuda:3 is not here; visible GPUs: cuda:0 NVIDIA H200, .*cuda:2 NVIDIA A100"),
    ("all", [], None, "no CUDA GPU is visible"),
    ("cpu", GPUS, None, "bad device 'cpu'"),
    ("cuda:0,", GPUS, None, "bad device ''"),
    ("0,1", GPUS, None, "bad device '0'"),
    ("all", GPUS, "cuda:1", r"--devices and a single device \(cuda:1\)"),
])
def test_bad_devices_are_refused_before_any_worker(text, gpus, device, says):
    with pytest.raises(UserError, match=says):
        parse_devices(text, gpus, device)


def test_makespan_deals_longest_first_to_the_least_loaded_gpu():
    assert estimate.makespan([5, 4, 3, 3, 3], 2) == 10  # 5+3 / 4+3+3: longest first, as the scheduler
    assert estimate.makespan([1, 1, 1, 1], 4) == 1 and estimate.makespan([2, 7, 1], 1) == 10
    assert estimate.makespan([9, 1, 1], 3) == 9  # one long item sets the pace whatever the GPUs


def test_devices_count_as_a_dry_run_can_tell_it(monkeypatch):
    from edgebench.sweep import plan
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(plan, "driver_gpu_count", lambda: 4)
    assert plan.devices_count(None) == 1 and plan.devices_count("cuda:0,cuda:2") == 2
    assert plan.devices_count("cuda:1, CUDA:1") == 1 and plan.devices_count("all") == 4
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,3")
    assert plan.devices_count("all") == 2
    monkeypatch.setattr(plan, "driver_gpu_count", lambda: 0)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert plan.devices_count("all") == 1  # unknown: the one-GPU estimate only


def test_a_devices_dry_run_estimates_the_time_on_that_many_gpus(capsys):
    """On two H200s the paper suite's claims core (these five models) ran in 452 s; its one-GPU
    estimate is 12 min (bench/results/h200-2026-11-30c)."""
    core = "qwen2.5-0.5b,mamba2-780m,mamba2-130m,llama-3.2-1b,mamba-790m"
    assert main(["run", "--suite", "paper-desktop", "-m", core, "--device", "cuda", "--dry-run"]) == 0
    one = capsys.readouterr().out
    assert "GPUs (--devices)" not in one
    assert main(["run", "--suite", "paper-desktop", "-m", core, "--device", "cuda", "--devices", "cuda:0,cuda:1",
                 "--dry-run"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("on 2 GPUs (--devices): about "))
    minutes_two = float(line.split("about ")[1].split(" min")[0])
    faster = float(line.split(", ")[1].split("x faster")[0])
    assert 6 <= minutes_two <= 9 and 1.5 < faster <= 2.0  # measured: 7.5 min


def test_a_devices_dry_run_on_a_machine_without_gpus_plans_for_them(capsys):
    """--devices names GPUs: planned on a login node without any, the default GPU suite is planned
    for CUDA (not the CPU, which warned that its graph cases would fail and gave no estimate), with the
    estimate on two GPUs: 1.4x, measured 1.43x and 1.46x (bench/results/h200-2026-11-30e)."""
    assert main(["run", "--suite", "default-gpu", "--devices", "cuda:0,cuda:1", "--dry-run"]) == 0
    out = capsys.readouterr()
    assert "graph decode needs CUDA" not in out.err + out.out
    line = next(x for x in out.out.splitlines() if x.startswith("on 2 GPUs (--devices): about "))
    assert 1.2 <= float(line.split(", ")[1].split("x faster")[0]) <= 1.6


def test_every_shard_of_a_gpu_suite_plans_for_the_same_device(capsys):
    """Planned on a CPU-only machine, a shard without mamba_ssm points used to plan for the CPU (no
    estimate) while its sibling planned for CUDA: the array's tasks must agree."""
    core = "qwen2.5-0.5b,mamba2-780m,mamba2-130m,llama-3.2-1b,mamba-790m"
    outs = []
    for shard in ("1/2", "2/2"):
        assert main(["run", "--suite", "paper-desktop", "--shard", shard, "-m", core, "--dry-run"]) == 0
        outs.append(capsys.readouterr().out)
    assert all(" on cuda " in o and "estimated time on an H100/H200-class GPU" in o for o in outs)


def test_autotune_groups_join_the_mamba2_mixers_that_share_mamba_ssm_triton_shapes(monkeypatch):
    """mamba2-780m and zamba2-1.2b autotune the same kernels (chunk 256, state 128: zamba2 1K took 2.6 s
    after mamba2-780m on the H200); Falcon-H1 (chunk 128) and another dtype do not share them; models
    without Mamba-2 mixers, or a host without mamba_ssm (the PyTorch fallback), autotune nothing."""
    import importlib.util
    from edgebench.models import catalog
    from edgebench.models.kernel_detect import autotune_group
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: object() if n == "mamba_ssm" else real(n, *a))
    g = {m: autotune_group(catalog.get(m), "hf", "bfloat16")
         for m in ("mamba2-780m", "zamba2-1.2b", "falcon-h1-0.5b", "qwen2.5-0.5b", "mamba-790m")}
    assert g["mamba2-780m"] == g["zamba2-1.2b"] == ("mamba_ssm-triton", "bfloat16", 256, 128)
    assert g["falcon-h1-0.5b"] not in (None, g["mamba2-780m"])
    assert g["qwen2.5-0.5b"] is None and g["mamba-790m"] is None
    assert autotune_group(catalog.get("mamba2-780m"), "mamba_ssm", "float16") != g["mamba2-780m"]
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "mamba_ssm" else real(n, *a))
    assert autotune_group(catalog.get("mamba2-780m"), "hf", "bfloat16") is None
    # logs read on a machine without mamba_ssm: the group their GPU machine formed
    assert autotune_group(catalog.get("mamba2-780m"), "hf", "bfloat16", installed=True) == g["mamba2-780m"]
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: object() if n == "mamba_ssm" else real(n, *a))
    lfm2 = dataclasses.replace(catalog.get("tiny-mamba2"), model_type="lfm2", family="hybrid")
    assert autotune_group(lfm2, "hf", "bfloat16") is None  # a layout the memory model does not know


def test_only_a_series_that_may_run_out_of_memory_keeps_its_contexts_in_order():
    """On several GPUs a series runs one context after another only where its longest point may not
    fit (the memory model above half the room: the budget, else the smallest GPU); the others are
    dealt point by point. No room known, or a model it cannot predict: in order."""
    from edgebench.execution.grid_planner import ordered_series
    from edgebench.models import catalog, memory_model
    from edgebench.sweep.spec import Spec
    spec = Spec(models=["tiny-llama", "tiny-mamba2"], ctx=[64, 4096], gen=[4], decode_modes=["eager"])
    points = spec.points()
    pre = {m: catalog.get(m) for m in spec.models}
    need = {p.series(): memory_model.predict(pre[p.model], 4096, gen=4)["total_bytes"]
            for p in points if p.ctx == 4096}
    llama = next(k for k in need if k[0] == "tiny-llama")
    assert ordered_series(points, pre, 10 * max(need.values())) == set()
    assert ordered_series(points, pre, 2 * need[llama] - 1) >= {llama}
    assert ordered_series(points, pre, 0) == set(need)
    unknown = {**pre, "tiny-mamba2": dataclasses.replace(pre["tiny-mamba2"], model_type="lfm2")}
    assert {k[0] for k in ordered_series(points, unknown, 10 * max(need.values()))} == {"tiny-mamba2"}
