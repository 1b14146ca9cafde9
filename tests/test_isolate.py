"""edgebench.execution.isolate: every way a case can end becomes a record, and the parent stays clean."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edgebench.execution.isolate import report_partial, run_isolated
from edgebench.execution.worker import describe, is_oom

TESTS_DIR = str(Path(__file__).parent)
T = "isolate_targets:"


pytestmark = pytest.mark.usefixtures("targets_importable")


def test_ok_result_runs_in_another_process():
    record = run_isolated(T + "returns", {"x": 21})
    assert record["status"] == "ok" and record["doubled"] == 42
    assert record["pid"] != os.getpid()


@pytest.mark.parametrize("target", ["raises_oom", "raises_runtime_oom_text"])
def test_oom(target):
    record = run_isolated(T + target, {})
    assert record["status"] == "oom"
    assert "out of memory" in record["reason"]
    assert "\n" not in record["reason"]


def test_error_names_type_message_and_place():
    record = run_isolated(T + "raises_value_error", {})
    assert record["status"] == "error"
    assert record["reason"].startswith("ValueError: bad shape (1, 2) (at isolate_targets.py:")
    assert record["reason"].endswith("in raises_value_error)")


def test_sigkill_is_killed_record():
    record = run_isolated(T + "kills_itself", {})
    assert record == {"status": "killed", "exit_code": -signal.SIGKILL,
                      "reason": "killed by signal SIGKILL (the kernel's OOM killer on Jetson, or the user)"}


def test_timeout_kills_worker():
    start = time.monotonic()
    record = run_isolated(T + "sleeps", {"sleep_s": 30}, timeout_s=1.0)
    assert time.monotonic() - start < 10
    assert record["status"] == "killed" and record["reason"] == "timed out after 1 s"
    assert record["exit_code"] == -signal.SIGTERM
    assert run_isolated(T + "sleeps", {"sleep_s": 0}, timeout_s=30)["status"] == "ok"


def test_partials_merge_into_failed_record():
    record = run_isolated(T + "partial_then_dies", {})
    assert record["status"] == "killed"
    assert record["prefill_ms"] == 12.5 and record["phase"] == "decode"
    record = run_isolated(T + "partial_then_oom", {})
    assert record["status"] == "oom" and record["prefill_ms"] == 3.0
    assert record["reason"] == "MemoryError"


def test_bad_results_and_exits_are_errors():
    record = run_isolated(T + "returns_list", {})
    assert record["status"] == "error" and "returned list, expected a dict" in record["reason"]
    record = run_isolated(T + "exits_nonzero", {})
    assert record == {"status": "error", "exit_code": 3,
                      "reason": "worker exited with code 3 without a result"}
    record = run_isolated(T + "no_such_function", {})
    assert record["status"] == "error" and record["reason"].startswith("AttributeError")
    with pytest.raises(ValueError, match="package.module:function"):
        run_isolated("isolate_targets.returns", {})


def test_report_partial_outside_worker_is_noop():
    report_partial({"x": 1})


def test_oom_classification():
    assert is_oom(MemoryError()) and is_oom(RuntimeError("CUDA out of memory."))
    assert not is_oom(ValueError("out of range"))
    assert describe(RuntimeError(""), where=False) == "RuntimeError"


def test_parent_never_imports_torch():
    """A runner process that only uses run_isolated has no torch (hence no CUDA) loaded."""
    script = textwrap.dedent("""
        import sys
        from edgebench.execution.isolate import run_isolated
        r = run_isolated("isolate_targets:raises_oom", {})
        assert r["status"] == "oom", r
        print("torch" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads worker pids from /proc")
def test_sigterm_in_parent_stops_worker_and_propagates():
    script = textwrap.dedent("""
        import sys
        from edgebench.execution.isolate import run_isolated, Terminated
        try:
            run_isolated("isolate_targets:sleeps", {"sleep_s": 60})
        except Terminated:
            print("terminated-propagated")
            sys.exit(0)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            env=os.environ.copy())
    worker_pid = None
    deadline = time.monotonic() + 20
    while worker_pid is None and time.monotonic() < deadline:
        time.sleep(0.2)
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        ids = children.read_text().split() if children.exists() else []
        worker_pid = int(ids[0]) if ids else None
    assert worker_pid is not None, "worker never started"
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert "terminated-propagated" in out and proc.returncode == 0
    with pytest.raises(ProcessLookupError):
        os.kill(worker_pid, 0)


def test_worker_imports_same_edgebench_without_pythonpath(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", TESTS_DIR)
    assert run_isolated(T + "returns", {"x": 1})["doubled"] == 2


def _has_cuda():
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _has_cuda(), reason="needs a CUDA GPU")
def test_real_cuda_oom_under_budget_and_maxctx_search():
    from edgebench.execution.maxctx_search import search

    mib = 2**20
    budget_bytes = 1024 * mib
    ok = run_isolated(T + "allocates_under_budget",
                      {"budget_bytes": budget_bytes, "alloc_bytes": 256 * mib}, timeout_s=120)
    assert ok["status"] == "ok" and ok["allocated_bytes"] == 256 * mib and 0 < ok["fraction"] < 1
    oom = run_isolated(T + "allocates_under_budget",
                       {"budget_bytes": budget_bytes, "alloc_bytes": 2048 * mib}, timeout_s=120)
    assert oom["status"] == "oom" and "out of memory" in oom["reason"].lower()
    assert oom["fraction"] == ok["fraction"]

    def probe(size_mib):
        return run_isolated(T + "allocates_under_budget",
                            {"budget_bytes": budget_bytes, "alloc_bytes": size_mib * mib},
                            timeout_s=120)["status"]

    result = search(probe, start=64, limit=4096, resolution=64)
    assert result.stopped is None
    # The allocator's cap is a little below the budget (its own rounding), so 1 GiB itself fails.
    assert 768 <= result.max_ok < result.min_fail <= 1024 + 64
    assert result.min_fail - result.max_ok <= 64 and result.probes <= 10
    print("maxctx search under a 1 GiB budget:", result.to_record())


def test_timed_out_worker_prints_where_it_hung(capfd):
    record = run_isolated(T + "sleeps", {"sleep_s": 30}, timeout_s=2.0)
    assert record["status"] == "killed"
    err = capfd.readouterr().err
    assert "isolate_targets.py" in err and "in sleeps" in err, err[-2000:]
