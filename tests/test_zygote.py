"""edgebench.execution.forkserver: case workers forked from a preloaded process behave like spawned ones."""
import json
import os
import signal
import sys
import time

import pytest

from edgebench.execution import isolate
from edgebench.execution import forkserver as zygote
from edgebench.execution.isolate import run_isolated

T = "isolate_targets:"


pytestmark = pytest.mark.usefixtures("targets_importable")


@pytest.fixture
def zyg():
    with zygote.Zygote(["isolate_targets"], env=isolate.worker_env()) as z:
        assert z.ok, z.why
        yield z


def test_every_outcome_matches_a_spawned_worker(zyg):
    ok = run_isolated(T + "returns", {"x": 21}, zygote=zyg)
    assert ok["status"] == "ok" and ok["doubled"] == 42
    assert ok["pid"] not in (os.getpid(), zyg.pid)
    assert run_isolated(T + "raises_runtime_oom_text", {}, zygote=zyg)["status"] == "oom"
    err = run_isolated(T + "raises_value_error", {}, zygote=zyg)
    assert err["status"] == "error" and err["reason"].startswith("ValueError: bad shape (1, 2)")
    assert run_isolated(T + "kills_itself", {}, zygote=zyg) == run_isolated(T + "kills_itself", {})
    assert run_isolated(T + "exits_nonzero", {}, zygote=zyg) == {
        "status": "error", "exit_code": 3, "reason": "worker exited with code 3 without a result"}
    part = run_isolated(T + "partial_then_dies", {}, zygote=zyg)
    assert part["status"] == "killed" and part["prefill_ms"] == 12.5
    assert zyg.ok  # none of that broke the zygote


def test_timeout_kills_the_forked_worker_and_the_zygote_goes_on(zyg):
    start = time.monotonic()
    record = run_isolated(T + "sleeps", {"sleep_s": 30}, timeout_s=1.0, zygote=zyg)
    assert time.monotonic() - start < 10
    assert record["status"] == "killed" and record["reason"] == "timed out after 1 s"
    assert record["exit_code"] == -signal.SIGTERM
    assert run_isolated(T + "sleeps", {"sleep_s": 0}, timeout_s=30, zygote=zyg)["status"] == "ok"


def test_a_zygote_that_dies_mid_case_gives_a_killed_record_then_spawning(zyg):
    import threading
    threading.Timer(1.0, lambda: os.kill(zyg.pid, signal.SIGKILL)).start()
    record = run_isolated(T + "sleeps", {"sleep_s": 20}, timeout_s=30, zygote=zyg)
    assert record["status"] == "killed" and "preloaded" in record["reason"]
    assert not zyg.ok and "died" in zyg.why and "OOM killer" in record["reason"]
    assert run_isolated(T + "returns", {"x": 1}, zygote=zyg)["doubled"] == 2  # spawned now


def _bounded(call, limit_s: float, zyg):
    """call() in a thread; fails (and frees it by killing the zygote) if it has not returned in limit_s."""
    import threading
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("r", call()), daemon=True)
    t0 = time.monotonic()
    thread.start()
    thread.join(limit_s)
    if thread.is_alive():
        os.kill(zyg.pid, signal.SIGKILL)
        thread.join(30)
        pytest.fail(f"still waiting after {limit_s} s: the wait on the stopped zygote has no bound")
    return out["r"], time.monotonic() - t0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads process states from /proc")
def test_a_zygote_stopped_mid_case_gives_a_killed_record_then_spawning(zyg, tmp_path):
    """SIGSTOP on the fork server while its child runs: the child's exit is never reported. The case
    ends as killed within its timeout (not never), the zygote is replaced by spawning, nothing is left."""
    import threading
    pid = zyg.pid
    threading.Timer(1.0, lambda: os.kill(pid, signal.SIGSTOP)).start()
    record, elapsed = _bounded(
        lambda: run_isolated(T + "sleeps", {"sleep_s": 3}, timeout_s=8, zygote=zyg), 60, zyg)
    assert record["status"] == "killed" and "stopped" in record["reason"], record
    assert "preloaded" in record["reason"] and elapsed < 20
    assert not zyg.ok and "stopped" in zyg.why
    assert not _alive(pid)  # the stopped zygote was killed, not left behind
    assert run_isolated(T + "returns", {"x": 3}, zygote=zyg)["doubled"] == 6  # spawned now


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads process states from /proc")
def test_a_zygote_stopped_between_cases_is_replaced_at_once(zyg):
    pid = zyg.pid
    os.kill(pid, signal.SIGSTOP)
    record, elapsed = _bounded(lambda: run_isolated(T + "returns", {"x": 4}, zygote=zyg), 60, zyg)
    assert record["status"] == "ok" and record["doubled"] == 8
    assert elapsed < 15  # not the 60 s answer timeout
    assert not zyg.ok and "stopped" in zyg.why and not _alive(pid)


def test_a_zygote_stopped_during_its_preload_is_given_up(monkeypatch):
    """A preload that never answers because the zygote was stopped: detected, not READY_TIMEOUT_S later."""
    original, stopped = zygote.Zygote._line, []

    def stop_first(self, timeout):  # the first read waits for READY: stop the zygote just before
        if not stopped:
            stopped.append(self.pid)
            os.kill(self.pid, signal.SIGSTOP)
        return original(self, timeout)

    monkeypatch.setattr(zygote.Zygote, "_line", stop_first)
    t0 = time.monotonic()
    z = zygote.Zygote(["isolate_targets"], env=isolate.worker_env())
    assert time.monotonic() - t0 < 30 and not _alive(stopped[0])
    assert not z.ok and "stopped" in z.why and z.pid is None


def test_unsafe_or_failed_preload_falls_back_to_spawn():
    with zygote.Zygote(["zygote_thread_module"], env=isolate.worker_env()) as z:
        assert not z.ok and "Python threads (leftover)" in z.why
        assert run_isolated(T + "returns", {"x": 2}, zygote=z)["doubled"] == 4
    with zygote.Zygote(["no_such_module_xyz"], env=isolate.worker_env()) as z:
        assert not z.ok and "ModuleNotFoundError" in z.why
    with zygote.Zygote(["?no_such_module_xyz", "isolate_targets"], env=isolate.worker_env()) as z:
        assert z.ok, z.why  # "?" marks an optional module


def test_preload_list_and_header(monkeypatch):
    from edgebench.models import catalog
    mods = zygote.preload_modules([catalog.resolve("tiny-llama"), catalog.resolve("tiny-mamba")],
                                  ("hf", "mamba_ssm"))
    assert mods[:2] == ["torch", "transformers"]
    assert "?transformers.models.llama.modeling_llama" in mods
    assert "?mamba_ssm.models.mixer_seq_simple" in mods
    monkeypatch.setenv("EDGEBENCH_PRELOAD", "0")
    assert zygote.open_for([]) is None
    assert zygote.describe(None) == {"start": "spawn", "why": "EDGEBENCH_PRELOAD=0"}


def test_run_uses_preloaded_workers(tmp_path):
    """A real sweep: the header says how workers started, and cases skip the import cost."""
    import subprocess
    out = tmp_path / "run.jsonl"
    proc = subprocess.run([sys.executable, "-m", "edgebench", "run", "-m", "tiny-llama", "-c", "64", "-n", "2",
                           "-r", "1", "--warmup", "0", "--quiet", "-o", str(out)],
                          capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["workers"] == {"start": "fork-preloaded"}
    case = lines[1]
    assert case["status"] == "ok" and case["cold_ms"]["load"] < 2000, case["cold_ms"]
    # the start-up timeline, seconds since the process started, each moment after the one before
    startup, order = lines[0]["startup_s"], ["main", "prestart", "env_start", "env_server", "env", "log_open",
                                             "preload_ready", "header"]
    assert list(startup) == order and list(startup.values()) == sorted(startup.values())
    assert 0 < startup["main"] < startup["header"]
    # the models were named while the fork server imported (read from the arguments, before the
    # environment snapshot started), and the snapshot forked from it once it was READY
    started, named, ready = lines[0]["preload_s"]["cpu"]
    assert started <= startup["prestart"] <= named < startup["env_start"] <= ready <= startup["env_server"] \
        <= startup["env"]
    assert set(lines[0]["env"]["snapshot_s"]) >= {"packages", "gpus_power"}
    assert lines[-1]["type"] == "end" and lines[-1]["teardown_s"]["first_point"] >= startup["header"]


@pytest.mark.gpu  # skipped without a CUDA GPU (conftest)
def test_forked_worker_uses_cuda_after_the_real_preload():
    from edgebench.models import catalog
    presets = [catalog.resolve(n) for n in ("qwen2.5-0.5b", "mamba2-780m", "zamba2-1.2b", "falcon-h1-0.5b")]
    with zygote.Zygote(zygote.preload_modules(presets, ("hf", "mamba_ssm")) + ["isolate_targets"],
                       env=isolate.worker_env()) as z:
        assert z.ok, z.why
        for _ in range(2):
            r = run_isolated(T + "uses_cuda", {}, timeout_s=120, zygote=z)
            assert r["status"] == "ok" and r["sum"] == 1024.0, r


def test_paths_with_spaces_reach_the_forked_worker(zyg, tmp_path, monkeypatch):
    import tempfile
    spaced = tmp_path / "dir with spaces"
    spaced.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spaced))
    assert run_isolated(T + "returns", {"x": 5}, zygote=zyg)["doubled"] == 10


def _open_one(prestart, catalog, output):
    """The fork server of a one-device run of tiny-llama (what the executor asks `open_all` for)."""
    return prestart.open_all([catalog.resolve("tiny-llama")], ("hf",), {"cpu": output})["cpu"]


def test_a_prestarted_zygote_is_adopted_once_with_its_models_modules(tmp_path):
    """prestart() starts the common imports at once; the next open_all adopts that process, adds the
    models' modules before READY (a forked worker finds them imported), and moves its output."""
    from edgebench.execution import prestart
    from edgebench.models import catalog
    prestart.prestart()
    first = _open_one(prestart, catalog, tmp_path / "preload.txt")
    second = None
    try:
        assert first.ok, first.why
        got = run_isolated(T + "module_loaded", {"name": "transformers.models.llama.modeling_llama"},
                           zygote=first)
        assert got["status"] == "ok" and got["loaded"] is True and got["ppid"] == first.pid
        second = _open_one(prestart, catalog, tmp_path / "preload2.txt")
        assert second.pid != first.pid  # adopted once; later ones start their own
    finally:
        first.close()
        if second is not None:
            second.close()
        prestart.drop_prestarted()


def test_run_starts_the_workers_imports_before_the_environment_snapshot(monkeypatch, tmp_path):
    """`edgebench run`: the fork server starts (importing torch and transformers) before the
    environment snapshot's worker, so the two run side by side; the run still uses that one server."""
    from edgebench.cli import main
    from edgebench.execution import executor
    events = []

    class Recorded(zygote.Zygote):
        def __init__(self, preload, env=None, output=None, wait=True):
            events.append(("fork server", wait))
            super().__init__(preload, env=env, output=output, wait=wait)

    real = executor.snapshot_env
    monkeypatch.setattr(zygote, "Zygote", Recorded)
    monkeypatch.setattr(executor, "snapshot_env", lambda: events.append("snapshot") or real())
    out = tmp_path / "run.jsonl"
    assert main(["run", "-m", "tiny-llama", "-c", "16", "-n", "1", "-r", "1", "--warmup", "0",
                 "--device", "cpu", "-q", "-o", str(out)]) == 0
    assert events == [("fork server", False), "snapshot"]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["workers"] == {"start": "fork-preloaded"} and lines[1]["status"] == "ok"


def test_an_interrupted_adoption_kills_the_prestarted_zygote_and_its_output_follows_it(monkeypatch, tmp_path):
    """Ctrl-C while the run waits for the prestarted zygote's READY kills it (no fork server left
    behind); an adopted zygote's output file becomes the run's, so what it writes later lands there."""
    from edgebench.execution import prestart
    from edgebench.models import catalog
    prestart.prestart()
    (z,) = prestart._early

    def interrupted(self, more):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(zygote.Zygote, "complete", interrupted)
        with pytest.raises(KeyboardInterrupt):
            _open_one(prestart, catalog, tmp_path / "preload.txt")
    assert z._proc is None and not prestart._early  # killed and forgotten
    assert not os.path.exists(z.output)  # its temporary output removed

    prestart.prestart()
    (z,) = prestart._early
    tmp = z.output
    adopted = _open_one(prestart, catalog, tmp_path / "preload.txt")
    try:
        assert adopted is z and z.output == tmp_path / "preload.txt" and not os.path.exists(tmp)
        pid = z.pid
        os.kill(pid, 0)
        assert os.path.samefile(f"/proc/{pid}/fd/1", tmp_path / "preload.txt")  # its stdout: the run's file
    finally:
        z.close()
        prestart.drop_prestarted()


def test_a_suites_groups_share_one_fork_server_and_it_ends_with_the_command(monkeypatch, tmp_path):
    """A spec with two grid groups runs two executors in one command: the second takes the first's
    fork server (no second preload of torch and transformers) and the server ends with the command."""
    from edgebench.cli import main
    from edgebench.execution import prestart
    made = []

    class Recorded(zygote.Zygote):
        def __init__(self, preload, env=None, output=None, wait=True):
            super().__init__(preload, env=env, output=output, wait=wait)
            made.append(self)

    monkeypatch.setattr(zygote, "Zygote", Recorded)
    spec = tmp_path / "two.toml"
    spec.write_text('[sweep]\nctx = "16"\ngen = [1]\nreps = 1\nwarmup = 0\ndevice = "cpu"\ndtypes = ["float32"]\n'
                    '[[grid]]\nname = "a"\nmodels = ["tiny-llama"]\n'
                    '[[grid]]\nname = "b"\nprofile = "ops"\nmodels = ["tiny-mamba2"]\n')
    out = tmp_path / "run.jsonl"
    assert main(["run", "--spec", str(spec), "-q", "-o", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    heads = [x for x in lines if x["type"] == "run"]
    assert len(heads) == 2 and all(h["workers"] == {"start": "fork-preloaded"} for h in heads)
    assert len(made) == 1  # one preload (both groups' models) for both groups
    ends = [x["teardown_s"] for x in lines if x["type"] == "end"]
    assert [("servers_kept" in e, "servers_closed" in e) for e in ends] == [(True, False)] * 2
    assert heads[1]["startup_s"]["preload_ready"] - heads[1]["startup_s"]["log_open"] < 0.5
    assert [x["status"] for x in lines if x["type"] == "case"] == ["ok"] * 4
    assert not prestart._kept and made[0].pid is None  # closed when the command ended


def test_a_prestarted_zygote_imports_the_installed_ssm_kernels_before_the_models_are_named(monkeypatch):
    """The SSM kernel packages (mamba_ssm pulls triton in) are imported beside the environment
    snapshot, where installed, not after the models are named; found without importing them."""
    import importlib.util
    from edgebench.execution import prestart
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "mamba_ssm" else
                        None if name == "causal_conv1d" else real(name, *a))
    assert prestart.installed_kernel_modules() == ["?mamba_ssm"]
    started = []
    monkeypatch.setattr(zygote, "Zygote", lambda preload, **kw: started.append(preload) or object())
    monkeypatch.setattr(prestart, "_early", [])
    monkeypatch.setattr("atexit.register", lambda *a: None)
    prestart.prestart()
    assert started == [[*zygote.BASE_MODULES, "?mamba_ssm"]]


def test_devices_adopt_one_prestarted_zygote_each_named_before_any_is_waited_for(tmp_path):
    """--devices: `prestart(count=N)` starts a zygote per GPU beside the environment snapshot, and
    `open_all` gives each device one of them (no server starts after the snapshot), each with its
    models' modules, and its output moved to that device's file. A device past the prestarted count
    gets a server of its own."""
    from edgebench.execution import prestart
    from edgebench.models import catalog
    prestart.prestart(count=2)
    early = {z.pid for z in prestart._early}
    assert len(early) == 2
    outs = {d: tmp_path / f"preload-{d}.txt" for d in ("cuda:0", "cuda:1", "cuda:2")}
    got = prestart.open_all([catalog.resolve("tiny-llama")], ("hf",), outs)
    try:
        assert not prestart._early and {got["cuda:0"].pid, got["cuda:1"].pid} == early
        assert got["cuda:2"].pid not in early
        for d, z in got.items():
            assert z.ok, z.why
            assert "?transformers.models.llama.modeling_llama" in z.modules
            loaded = run_isolated(T + "module_loaded", {"name": "transformers.models.llama.modeling_llama"},
                                  zygote=z)
            assert loaded["loaded"] is True and loaded["ppid"] == z.pid
            assert z.output == outs[d] and os.path.exists(outs[d])
        named = [got[d].named_at for d in ("cuda:0", "cuda:1")]
        ready = [got[d].ready_at for d in ("cuda:0", "cuda:1")]
        assert max(named) <= min(ready)  # both named before either was waited for
    finally:
        for z in got.values():
            z.close()
        prestart.drop_prestarted()


def test_an_interrupted_devices_adoption_kills_every_prestarted_zygote(monkeypatch, tmp_path):
    """Ctrl-C while `open_all` waits for the second of two prestarted zygotes: both are killed, none is
    left waiting and their temporary outputs are gone (the run leaves no fork server behind)."""
    from edgebench.execution import prestart
    from edgebench.models import catalog
    prestart.prestart(count=2)
    early = list(prestart._early)
    temps = [z.output for z in early]
    real, calls = zygote.Zygote.complete, []

    def second_interrupted(self, more):
        calls.append(self.pid)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(self, more)

    monkeypatch.setattr(zygote.Zygote, "complete", second_interrupted)
    with pytest.raises(KeyboardInterrupt):
        prestart.open_all([catalog.resolve("tiny-llama")], ("hf",),
                          {d: tmp_path / f"preload-{d}.txt" for d in ("cuda:0", "cuda:1")})
    assert len(calls) == 2  # the first adopted, the second interrupted while being adopted
    assert all(z._proc is None for z in early) and not prestart._early
    assert not any(os.path.exists(t) for t in temps)


def test_the_environment_snapshot_forks_from_the_fork_server_the_points_use(monkeypatch, tmp_path):
    """`edgebench run -m MODEL`: the fork server is told the model's modules at its start, the
    environment snapshot's worker is forked from it once READY (one import of torch and
    transformers, not two side by side), and the points are forked from the same server."""
    from edgebench.cli import main
    parents = []
    real = isolate.run_isolated

    def recorded(target, payload, **kw):
        z = kw.get("zygote")
        parents.append((target.rsplit(":", 1)[1], z.pid if z is not None else None))
        return real(target, payload, **kw)

    monkeypatch.setattr(isolate, "run_isolated", recorded)
    out = tmp_path / "run.jsonl"
    assert main(["run", "-m", "tiny-llama", "-c", "16,32", "-n", "1", "-r", "1", "--warmup", "0",
                 "--device", "cpu", "-q", "-o", str(out)]) == 0
    (snap, server), *points = parents
    assert snap == "snapshot_for_run" and server is not None
    assert [p for p in points] == [("run_point", server)] * 2


def test_a_fork_server_named_early_on_a_hint_the_plan_outgrew_is_replaced(tmp_path):
    """The early naming is a guess from the arguments: where the plan needs a model module the
    prestarted zygote was not told, `open_all` kills it and starts one that imports everything."""
    from edgebench.execution import prestart
    from edgebench.models import catalog
    llama, mamba = catalog.resolve("tiny-llama"), catalog.resolve("tiny-mamba")
    prestart.prestart()
    prestart.name_early([llama], ("hf",))
    (early,) = prestart._early
    got = prestart.open_all([llama, mamba], ("hf",), {"cpu": tmp_path / "preload.txt"})["cpu"]
    try:
        assert got.ok, got.why
        assert got.pid != early.pid and not prestart._early and early.pid is None
        assert "?transformers.models.mamba.modeling_mamba" in got.modules
    finally:
        got.close()
        prestart.drop_prestarted()


def test_a_fork_server_lost_while_serving_the_snapshot_is_replaced_not_adopted(tmp_path):
    """The snapshot's worker found the server gone (isolate retires it and spawns): `open_all` then
    starts a new server for the points instead of adopting the dead one."""
    from edgebench.execution import prestart
    from edgebench.models import catalog
    llama = catalog.resolve("tiny-llama")
    prestart.prestart()
    prestart.name_early([llama], ("hf",))
    z = prestart.snapshot_server()
    assert z is not None and z.serving
    z.retire("the preloaded process died (test)")
    prestart.snapshot_done(z)
    assert not prestart._early
    got = prestart.open_all([llama], ("hf",), {"cpu": tmp_path / "preload.txt"})["cpu"]
    try:
        assert got.serving and got is not z
    finally:
        got.close()
        prestart.drop_prestarted()
