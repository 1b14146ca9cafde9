"""The log writer's edges: the names, files and content it refuses, /dev/null, gzip logs written in
members and resumed, a full disk, cut-off last lines, one writer per log, paths that are not UTF-8."""
from __future__ import annotations

import errno
import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from edgebench.logs import schema as records
from edgebench.cli import main
from edgebench.errors import UserError
from edgebench.logs.writer import LogWriteError, LogWriter
from edgebench.execution.executor import check_output

TINY = ["-m", "tiny-llama", "-c", "32", "-n", "2", "-r", "1", "--warmup", "0", "-t", "float32",
        "--device", "cpu", "-q"]
SRC = os.path.join(os.path.dirname(__file__), os.pardir, "src")


def header(run="r1"):
    return {"type": "run", "run": run, "t": "2026-11-22T16:00:00+00:00", "edgebench": "0.1.0",
            "argv": [], "env": {"host": {"hostname": "h"}}, "spec": {}}


def case(ctx, run="r1"):
    rec = {"type": "case", "run": run, "model": "tiny-llama", "family": "transformer", "backend": "hf",
           "dtype": "float32", "ctx": ctx, "gen": 2, "batch": 1, "decode_mode": "eager", "logits": "last",
           "attn": "sdpa", "status": "oom", "reason": "out of memory", "device": "CPU (x86_64)"}
    rec["key"] = records.case_key(rec, rec["device"])
    return records.compact_case(rec)


def valid(path) -> bool:
    return main(["validate", str(path)]) == 0


def lines(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        return [json.loads(x) for x in fh if x.strip()]


# --- names and content ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, better", [("results.log", "results.jsonl"), ("user.csv", "user.jsonl"),
                                          ("old.json.gz", "old.jsonl.gz")])
def test_a_log_name_edgebench_cannot_read_back_is_refused_before_any_work(tmp_path, capsys, name, better):
    path = tmp_path / name
    if name.endswith(".csv"):
        path.write_text("model,ctx\nm,1\n")
    before = path.read_bytes() if path.exists() else None
    t0 = time.monotonic()
    assert main(["run", *TINY, "-o", str(path)]) == 2
    err = capsys.readouterr().err
    assert "*.jsonl" in err and f"-o {tmp_path / better}" in err and err.count("\n") == 1
    assert time.monotonic() - t0 < 10
    assert (path.read_bytes() if path.exists() else None) == before  # the user's CSV untouched


@pytest.mark.parametrize("content, message", [
    (b"model,ctx\nm,1\n", "is not an edgebench log"),
    (b'{"name": "my own results"}\n', "is not an edgebench log"),
    (b'{"v":99,"type":"run","run":"r"}\n', "newer edgebench (schema v99)"),
])
def test_an_existing_file_that_is_not_an_edgebench_log_is_refused(tmp_path, content, message):
    path = tmp_path / "x.jsonl"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_output(str(path))
    assert path.read_bytes() == content


def test_a_gzip_name_with_plain_or_damaged_content_is_refused(tmp_path):
    plain = tmp_path / "p.jsonl.gz"
    plain.write_bytes(records.dumps(header()).encode() + b"\n")
    with pytest.raises(UserError, match="not gzip data"):
        check_output(str(plain))
    # what the old writer made of `-o old.jsonl.gz`: plain lines after the gzip stream
    damaged = tmp_path / "d.jsonl.gz"
    damaged.write_bytes(gzip.compress(records.dumps(header()).encode() + b"\n") + b'{"type":"case"}\n')
    with pytest.raises(UserError, match="damaged: the bytes from"):
        check_output(str(damaged))


# --- special files ---------------------------------------------------------------------------------

def test_special_files_are_refused_at_once_and_dev_null_is_written(tmp_path):
    fifo = tmp_path / "f.jsonl"
    os.mkfifo(fifo)
    old = signal.signal(signal.SIGALRM, lambda *a: pytest.fail("blocked on the FIFO"))
    signal.alarm(10)
    try:
        with pytest.raises(UserError, match=r"is a pipe \(FIFO\), not a log file"):
            check_output(str(fifo))
        with pytest.raises(UserError, match="is a folder"):
            check_output(str(tmp_path))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    check_output(os.devnull)
    with LogWriter(os.devnull) as log:  # no fsync (EINVAL on /dev/null), no lock, nothing to resume
        assert log.finished_keys() == set()
        log.write(header())
        log.write(case(32))


def test_dev_stdout_through_a_pipe_is_refused_not_hung(tmp_path):
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.run(f"{sys.executable} -m edgebench run -m tiny-llama -c 32 -o /dev/stdout | cat",
                          shell=True, capture_output=True, text=True, timeout=60, env=env)
    assert "not a log file" in proc.stderr and "Traceback" not in proc.stderr


# --- gzip logs ---------------------------------------------------------------------------------------

def test_a_gzip_log_is_appended_in_members_resumed_and_its_cut_member_repaired(tmp_path, capsys):
    path = tmp_path / "log.jsonl.gz"
    with LogWriter(path) as log:
        log.write(header("r1"))
        log.write(case(32))
        log.write(case(64))
    size = path.stat().st_size
    with LogWriter(path) as log:  # resume: keys read back from the members
        assert len(log.finished_keys()) == 2
        log.write(header("r2"))
        log.write(case(128, "r2"))
    assert [x["type"] for x in lines(path)] == ["run", "case", "case", "run", "case"]
    assert path.stat().st_size > size and valid(path)
    with open(path, "r+b") as fh:  # killed while writing the last member
        fh.truncate(path.stat().st_size - 7)
    with LogWriter(path) as log:
        assert len(log.finished_keys()) == 2
        log.write(case(256, "r2"))
    assert "removed the cut-off end" in capsys.readouterr().err
    assert [x.get("ctx") for x in lines(path)] == [None, 32, 64, None, 256]
    assert valid(path)


def test_run_writes_and_resumes_a_gzip_log(tmp_path, capsys):
    path = tmp_path / "log.jsonl.gz"
    assert main(["run", *TINY, "-o", str(path)]) == 0
    assert [x["type"] for x in lines(path)] == ["run", "case", "case", "end"]  # a point: prefill, decode
    capsys.readouterr()
    assert main(["run", *TINY, "-o", str(path)]) == 0
    assert "nothing to do" in capsys.readouterr().err


# --- cut-off lines and write errors ---------------------------------------------------------------

def test_resume_cuts_off_a_partial_last_line_so_the_log_validates(tmp_path, capsys):
    path = tmp_path / "log.jsonl"
    with LogWriter(path) as log:
        log.write(header())
        log.write(case(32))
    with open(path, "ab") as fh:
        fh.write(b'{"type":"case","run":"r1","model":"tiny-ll')  # the disk filled mid-line
    with LogWriter(path) as log:
        assert len(log.finished_keys()) == 1
        log.write(case(64))
    assert "removed the cut-off end" in capsys.readouterr().err
    assert [x.get("ctx") for x in lines(path)] == [None, 32, 64] and valid(path)


def test_a_whole_last_line_without_its_newline_is_kept(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"\n".join(records.dumps(r).encode() for r in (header(), case(32))))
    with LogWriter(path) as log:
        log.write(case(64))
    assert [x.get("ctx") for x in lines(path)] == [None, 32, 64]


def test_a_cut_header_alone_is_resumed_as_an_empty_log(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(records.dumps(header()).encode()[:40])
    check_output(str(path))
    with LogWriter(path) as log:
        log.write(header())
    assert len(lines(path)) == 1


def _fail_writes_to(monkeypatch, path, after: int, error=errno.ENOSPC):
    """os.write to `path` succeeds `after` times, then writes half its bytes and fails."""
    real, calls = os.write, []

    def write(fd, data):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:
            target = False
        if not target:
            return real(fd, data)
        calls.append(len(data))
        if len(calls) <= after:
            return real(fd, data)
        if len(calls) == after + 1:
            return real(fd, bytes(data)[: len(data) // 2])
        raise OSError(error, os.strerror(error))
    monkeypatch.setattr(os, "write", write)
    return calls


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EIO, errno.EROFS])
def test_a_failed_write_is_undone_and_says_what_was_recorded(tmp_path, monkeypatch, error):
    path = tmp_path / "log.jsonl"
    with LogWriter(path) as log:
        log.finished_keys()
        log.write(header())
        log.write(case(32))
        size = path.stat().st_size
        _fail_writes_to(monkeypatch, path, after=0, error=error)
        with pytest.raises(LogWriteError) as info:
            log.write(case(64))
    assert f"({os.strerror(error)}): 1 case recorded, rerun to resume" in str(info.value)
    assert path.stat().st_size == size  # no half line left behind
    monkeypatch.undo()
    assert valid(path)


def test_disk_full_mid_run_ends_with_one_line_exit_2_and_a_log_that_resumes(tmp_path, monkeypatch, capsys):
    path = tmp_path / "log.jsonl"
    _fail_writes_to(monkeypatch, path, after=2)  # header and first case written, the second fails
    assert main(["run", *TINY, "-c", "32,48", "-o", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (f"edgebench run: error: cannot write the log {path} (No space "
                                            "left on device): 1 case recorded, rerun to resume")
    assert "Traceback" not in err
    monkeypatch.undo()
    assert [x["type"] for x in lines(path)] == ["run", "case"] and valid(path)
    with LogWriter(path) as log:  # what a rerun resumes from
        assert len(log.finished_keys()) == 1


@pytest.fixture
def full_tmpfs(tmp_path):
    """A 64 KiB tmpfs filled to the last byte (needs root; skipped elsewhere)."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                                           capture_output=True).returncode:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        filler = mnt / "filler"
        with open(filler, "wb", buffering=0) as fh:
            try:
                while fh.write(b"x" * 4096):
                    pass
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        yield mnt, filler
    finally:
        subprocess.run(["umount", str(mnt)])


def test_a_disk_full_at_the_start_says_so_in_one_line_and_loses_nothing(full_tmpfs, capsys, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_PRELOAD", "0")  # no case runs: skip starting the fork server
    mnt, filler = full_tmpfs
    path = mnt / "log.jsonl"
    assert main(["run", *TINY, "-o", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (f"edgebench run: error: cannot write the log {path} (No space "
                                            "left on device): 0 cases recorded, rerun to resume")
    assert path.stat().st_size == 0
    filler.unlink()
    with LogWriter(path) as log:  # what the rerun does once there is space
        log.write(header())
    assert valid(path)


# --- one writer per log ----------------------------------------------------------------------------

HOLD = textwrap.dedent("""
    import sys, time
    from edgebench.logs.writer import LogWriter
    log = LogWriter(sys.argv[1])
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
""")


def _holder(path, seconds):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": SRC})
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_is_refused_at_once_naming_the_first(tmp_path, capsys):
    path = tmp_path / "log.jsonl"
    proc = _holder(path, 60)
    try:
        for argv in (["run", *TINY, "-o", str(path)],
                     ["maxctx", "-m", "tiny-llama", "--device", "cpu", "-o", str(path)]):
            t0 = time.monotonic()
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert f"another process (pid {proc.pid}: " in err and "--wait-lock" in err, err
            assert time.monotonic() - t0 < 10
        with pytest.raises(UserError, match=f"pid {proc.pid}"):
            LogWriter(path)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert path.read_bytes() == b""
    LogWriter(path).close()  # the lock went with the process


def test_a_writer_in_this_process_is_seen_too(tmp_path):
    path = tmp_path / "log.jsonl"
    with LogWriter(path):
        with pytest.raises(UserError, match=f"pid {os.getpid()}"):
            LogWriter(path)
    LogWriter(path).close()


def test_wait_lock_waits_for_the_other_writer(tmp_path, capsys):
    path = tmp_path / "log.jsonl"
    proc = _holder(path, 1.5)
    t0 = time.monotonic()
    check_output(str(path), wait_lock=True)  # not refused
    with LogWriter(path, wait=True) as log:
        assert time.monotonic() - t0 > 0.5
        log.write(header())
    proc.wait()
    proc.stdout.close()
    assert "waiting for the process (pid" in capsys.readouterr().err


# --- paths that are not UTF-8 ----------------------------------------------------------------------

def test_a_path_that_is_not_utf8_is_written_and_read_back(tmp_path):
    path = tmp_path / os.fsdecode(b"r\xe9sultats-\xff.jsonl")
    with LogWriter(path) as log:
        log.write({**header(), "argv": ["run", "-o", str(path)]})
        log.write(case(32))
    with open(os.fsencode(path), "rb") as fh:
        raw = fh.read()
    raw.decode("utf-8")  # valid UTF-8: the surrogates went out as JSON escapes
    assert lines(path)[0]["argv"][-1] == str(path)  # and read back as the same string
    with LogWriter(path) as log:
        assert len(log.finished_keys()) == 1


def test_run_under_the_c_locale_writes_a_non_ascii_log_path(tmp_path):
    out = os.path.join(os.fsencode(tmp_path), "résultats".encode(), b"x\xff.jsonl")
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONPATH": SRC}
    proc = subprocess.run([sys.executable, "-m", "edgebench", "run", *TINY, "-o", out], env=env,
                          capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    with open(out, "rb") as fh:
        head, *recs, end = (json.loads(x) for x in fh.read().splitlines())
    assert end["type"] == "end" and end["run"] == head["run"]
    assert os.fsencode(head["argv"][-1]) == out and os.fsencode(head["spec"]["output"]) == out
    assert [r["status"] for r in recs] == ["ok", "ok"]
