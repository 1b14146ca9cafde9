"""A quiet terminal: worker output goes to a file per case beside the log (its tail shown when a case
fails, streamed live with -v), library chatter is turned down in workers, and a run prints only
edgebench's own lines."""
import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgebench.execution import isolate
from edgebench.execution import executor
from edgebench.execution import worker_output as workerlog
from edgebench.execution import forkserver as zygote
from edgebench.execution.isolate import run_isolated

T = "isolate_targets:"
pytestmark = pytest.mark.usefixtures("targets_importable")

# Every line edgebench itself prints on stderr during a run that succeeds.
EDGEBENCH_LINE = re.compile(r"No models given: .*|resuming .*|note: .*|warning: [^:]+: .*"
                            r"|\[\d+/\d+\] \S+ ctx=\d+: .*")
# Lines libraries printed into the terminal before workers' output went to files.
LIBRARY_NOISE = ("[transformers]", "FutureWarning", "USDT:", "ERROR:", "Warning:", "profiler_start",
                 "gpuGetDeviceCount", "Traceback")


def _cli_env(**extra):
    """The user's environment without any of the settings edgebench sets for quiet workers."""
    env = {k: v for k, v in os.environ.items() if k not in workerlog.QUIET_ENV}
    return {**env, **extra}


def _edgebench(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "edgebench", *args], capture_output=True, text=True,
                          timeout=timeout, env=env or _cli_env())


@pytest.fixture(params=["spawn", "fork"])
def zyg(request):
    if request.param == "spawn":
        yield None
        return
    with zygote.Zygote(["isolate_targets"], env=isolate.worker_env()) as z:
        assert z.ok, z.why
        yield z


def test_worker_output_goes_to_its_file_with_c_level_lines(zyg, tmp_path, capfd):
    out = tmp_path / "case.txt"
    record = run_isolated(T + "prints_then_raises", {}, zygote=zyg, output=out)
    assert record["status"] == "error"
    text = out.read_text()
    for line in ("python stdout line", "python stderr line", "fd1 line from C", "fd2 line from C",
                 "noise 29", "ValueError: failed after printing"):
        assert line in text, text
    assert capfd.readouterr() == ("", "")  # nothing reached the terminal
    tail = workerlog.tail(out)
    assert len(tail) == workerlog.TAIL_LINES and tail[-1] == "ValueError: failed after printing"


def test_echo_streams_lines_while_the_worker_runs(zyg, tmp_path):
    seen = []
    t0 = time.monotonic()
    record = run_isolated(T + "prints_slowly", {"sleep_s": 2.0}, zygote=zyg, output=tmp_path / "w.txt",
                          echo=lambda line: seen.append((line, time.monotonic() - t0)))
    elapsed = time.monotonic() - t0
    assert record["status"] == "ok"
    assert [line for line, _ in seen] == ["first line", "second line"]
    assert seen[0][1] < elapsed - 1.0  # the first line came while the worker still slept


def test_quiet_settings_in_workers_and_the_users_win(monkeypatch):
    names = list(workerlog.QUIET_ENV)
    for name in names:
        monkeypatch.delenv(name, raising=False)
    got = run_isolated(T + "reports_env", {"names": names})
    assert {k: got[k] for k in names} == workerlog.QUIET_ENV
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "info")
    monkeypatch.setenv("KINETO_LOG_LEVEL", "0")
    got = run_isolated(T + "reports_env", {"names": names})
    assert got["TRANSFORMERS_VERBOSITY"] == "info" and got["KINETO_LOG_LEVEL"] == "0"


def test_kineto_lines_are_silenced_in_workers(tmp_path, monkeypatch):
    """The value in QUIET_ENV really silences Kineto's profiler_start lines (and a user's 0 does not)."""
    pytest.importorskip("torch")
    monkeypatch.delenv("KINETO_LOG_LEVEL", raising=False)
    quiet, loud = tmp_path / "quiet.txt", tmp_path / "loud.txt"
    assert run_isolated(T + "runs_profiler", {}, output=quiet)["status"] == "ok"
    monkeypatch.setenv("KINETO_LOG_LEVEL", "0")
    assert run_isolated(T + "runs_profiler", {}, output=loud)["status"] == "ok"
    assert "profiler_start" in loud.read_text()  # the check can fail
    assert "profiler_start" not in quiet.read_text() and "USDT" not in quiet.read_text()


def test_zygote_output_goes_to_its_file(tmp_path, capfd):
    out = tmp_path / "preload.txt"
    with zygote.Zygote(["this", "isolate_targets"], env=isolate.worker_env(), output=out) as z:
        assert z.ok, z.why  # `import this` prints the Zen of Python
        assert run_isolated(T + "returns", {"x": 1}, zygote=z, output=tmp_path / "c.txt")["doubled"] == 2
    assert "Beautiful is better than ugly" in out.read_text()
    assert capfd.readouterr() == ("", "")


def test_env_snapshot_prints_nothing(capfd):
    env = executor.snapshot_env()
    assert env["host"] and capfd.readouterr() == ("", "")


def test_worker_logs_naming_keep_and_tail(tmp_path, capsys):
    said = []
    logs = workerlog.WorkerLogs(tmp_path / "r.jsonl", said.append)
    path = logs.path("org/model x", "ctx512", "eager", "abc123")
    assert path == tmp_path / "r.jsonl.workers" / "org_model_x-ctx512-eager-abc123.txt"
    path.write_text("")
    assert logs.keep(path) is None and not path.exists()  # a worker that printed nothing leaves no file
    path.write_text("".join(f"line {i}\n" for i in range(30)))
    assert logs.keep(path) == os.path.join("r.jsonl.workers", path.name)
    logs.show_tail(path, "ok")
    assert said == []
    logs.show_tail(path, "error")
    logs.finish(None)
    assert path.exists()  # a folder with output is kept
    path.unlink()
    logs.finish(None)
    assert not logs.dir.exists()
    assert said[0].startswith("  the worker's output, 20 lines")
    assert said[1:] == [f"  | line {i}" for i in range(10, 30)]


def test_default_cpu_like_run_prints_only_edgebench_lines(tmp_path):
    log = tmp_path / "q.jsonl"
    proc = _edgebench("run", "-m", "tiny-llama,tiny-mamba2", "-c", "32,64", "-n", "2", "-r", "1",
                      "--warmup", "0", "-o", str(log))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    foreign = [line for line in lines if not EDGEBENCH_LINE.fullmatch(line)]
    assert foreign == [], "\n".join(foreign)
    assert not [line for line in lines if any(noise in line for noise in LIBRARY_NOISE)]
    progress = [line for line in lines if line.startswith("[")]
    assert [line.split("]")[0] for line in progress] == ["[1/4", "[2/4", "[3/4", "[4/4"]
    cases = [json.loads(x) for x in log.read_text().splitlines() if '"type":"case"' in x]
    assert [c["status"] for c in cases] == ["ok"] * 8 and not any("worker_log" in c for c in cases)
    workers = Path(f"{log}.workers")  # only what some worker wrote is kept
    assert not workers.exists() or all(f.stat().st_size for f in workers.iterdir())


@pytest.mark.parametrize("verbose", [False, True])
def test_a_killed_case_shows_its_tail_and_names_its_file(tmp_path, verbose):
    log = tmp_path / "k.jsonl"
    proc = _edgebench("run", "-m", "tiny-mamba2", "-c", "32", "-n", "100000", "-r", "1",
                      "--warmup", "0", "--timeout", "3", "-o", str(log), *(["-v"] if verbose else []))
    assert proc.returncode == 0, proc.stderr[-3000:]
    pre, case = [json.loads(x) for x in log.read_text().splitlines() if '"type":"case"' in x]
    assert pre["status"] == "ok" and "worker_log" not in pre  # its prefill was measured before
    assert case["decode_mode"] == "eager"
    assert case["status"] == "killed" and case["reason"] == "timed out after 6 s"  # 3 s per line, 2 lines
    assert case["worker_log"].startswith("k.jsonl.workers/tiny-mamba2-ctx32-")
    dump = (tmp_path / case["worker_log"]).read_text()
    assert "most recent call first" in dump  # where the worker was when its timeout came
    err = proc.stderr
    shown = [line for line in err.splitlines() if line.startswith("  | ")]
    if verbose:  # -v: the whole output streamed as it came, no tail repeated after
        assert "the worker's output, " not in err
        assert [line[4:] for line in shown][-len(dump.splitlines()):] == dump.splitlines()
    else:
        assert "the worker's output, " in err and case["worker_log"] in err, err
        assert shown[0].startswith("  | Current thread") and "most recent call first" in shown[0]
        assert 2 <= len(shown) <= workerlog.TAIL_LINES and shown[1].startswith('  |   File "'), shown


def test_progress_bar_on_a_terminal_is_not_torn(tmp_path):
    """On a terminal (rich's progress bar), no worker line lands in the middle of the bar."""
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "edgebench", "run", "-m", "tiny-llama", "-c", "32",
                             "-n", "2", "-r", "1", "--warmup", "0", "-o", str(tmp_path / "t.jsonl")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave,
                            env=_cli_env(COLUMNS="200"))
    os.close(slave)
    chunks, deadline = [], time.monotonic() + 600
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    assert proc.wait(timeout=60) == 0
    screen = b"".join(chunks).decode("utf-8", errors="replace")
    assert "[1/1] tiny-llama ctx=32: prefill" in screen
    assert not [noise for noise in LIBRARY_NOISE if noise in screen], screen[-3000:]
