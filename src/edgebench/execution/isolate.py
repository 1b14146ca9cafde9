"""Run one case in a fresh worker process, so that an OOM or a crash becomes a record, not a lost sweep.

`run_isolated("package.module:function", payload, timeout_s)` starts `python -m edgebench.execution.worker` (a
new interpreter, same `sys.executable` and environment), which imports the target, calls
`target(payload)` and expects a JSON-able dict back. The parent returns one of:

- `{"status": "ok", **partials, **result}`
- `{"status": "oom", "reason": "<ExcType>: message", **partials}`: torch.OutOfMemoryError,
  MemoryError, or any exception whose text says "out of memory"
- `{"status": "error", "reason": "<ExcType>: message (at file:line in function)", **partials}`
- `{"status": "killed", "reason": "killed by signal SIGKILL (...)" | "timed out after N s",
  "exit_code": N, **partials}`; a worker that exits with a nonzero code and no result gives
  `{"status": "error", "reason": "worker exited with code N without a result", "exit_code": N}`

`report_partial(dict)`, called by the target inside the worker, records results obtained so far (e.g.
prefill timings before decode runs out of memory); later reports update earlier ones and all are
merged into the returned record. Outside a worker it does nothing.

Why a subprocess and not multiprocessing: the worker is an ordinary `python -m` command (visible in
`ps`, no re-import of the parent's `__main__`), it runs in its own session so a timeout or Ctrl-C can
kill it together with anything it started (compiler workers), and results travel through a file that
survives a SIGKILL. stdin is closed. With `output=PATH` the worker's stdout and stderr (file
descriptors 1 and 2, so C libraries' lines too) go to that file, and `echo` (for -v) gets each line as
it is written (`edgebench.execution.worker_output`); without it the worker shares the parent's terminal. Library
chatter is turned down in every worker (`workerlog.QUIET_ENV`; the user's own settings win). The
parent imports nothing heavy and never touches CUDA.

Every wait is bounded: a worker that outlives its timeout gets SIGTERM (it prints where each thread
was), then SIGKILL; one that survives even that is left behind with the case recorded as killed. A
preloaded parent (`edgebench.execution.forkserver`) that dies or is stopped is retired: the case it ran is recorded
as killed, later cases are spawned. On SIGINT (Ctrl-C) or SIGTERM while waiting, the worker is stopped
quietly (SIGINT, which a worker does not catch: no stack dump) and the exception (KeyboardInterrupt, or
`Terminated` for SIGTERM) propagates so the caller can record the interruption and close its log.
A caller running workers from several threads passes each a `stop` event instead (signals reach
the main thread only): setting it stops that worker the same way and raises `Stopped` in its thread.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from edgebench.execution.worker_output import QUIET_ENV, Follower

TERMINATE_GRACE_S = 5.0
KILL_WAIT_S = 10.0  # after SIGKILL: a process stuck in the kernel longer than this is left behind
ECHO_INTERVAL_S = 0.2  # how often -v copies new worker output to the terminal
_SIGNAL_NOTES = {"SIGKILL": " (the kernel's OOM killer on Jetson, or the user)"}
_channel_path: str | None = None  # inside a worker process: see bind_channel


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived while a worker ran; the worker was stopped. Subclasses KeyboardInterrupt so
    callers that clean up on Ctrl-C clean up on SIGTERM too."""


class Stopped(KeyboardInterrupt):
    """The caller's `stop` event was set while a worker ran (another thread asked: Ctrl-C in a
    multi-device run); the worker was stopped as on Ctrl-C."""


def bind_channel(path: str) -> None:
    """Inside a worker (`edgebench.execution.worker`): the channel file that report_partial appends to."""
    global _channel_path
    _channel_path = path


def report_partial(result: dict[str, Any]) -> None:
    """Inside a worker: record partial results, kept even if the process dies afterwards."""
    if _channel_path is not None:
        append_message(_channel_path, {"kind": "partial", "data": result})


def append_message(path: str, message: dict[str, Any]) -> None:
    """One channel message, flushed to disk (a SIGKILL right after loses nothing)."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(message, separators=(",", ":")) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _read_messages(path: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(merged partials, final message or None); a torn last line from a killed worker is skipped."""
    partials: dict[str, Any] = {}
    final = None
    if not path.exists():
        return partials, final
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if message.get("kind") == "partial" and isinstance(message.get("data"), dict):
            partials.update(message["data"])
        elif message.get("kind") == "final":
            final = message
    return partials, final


def _wait(proc, timeout_s: float | None, follow: Follower | None,
          stop: threading.Event | None = None) -> int:
    """Wait for the worker (TimeoutExpired after timeout_s); with a follower, copy its output meanwhile;
    with a `stop` event, raise `Stopped` once it is set (checked every ECHO_INTERVAL_S)."""
    if follow is None and stop is None:
        return proc.wait(timeout=timeout_s)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        if stop is not None and stop.is_set():
            raise Stopped("stopped by the caller")
        left = None if deadline is None else deadline - time.monotonic()
        try:
            return proc.wait(timeout=ECHO_INTERVAL_S if left is None else min(ECHO_INTERVAL_S, max(0.0, left)))
        except subprocess.TimeoutExpired:
            if follow is not None:
                follow.pump()
            if left is not None and left <= ECHO_INTERVAL_S:
                raise subprocess.TimeoutExpired("edgebench.execution.worker", timeout_s) from None


def _stop(proc, first: int = signal.SIGTERM) -> None:
    """`first` to the worker's process group, SIGKILL after a grace period, then a bounded wait: a
    process that SIGKILL does not end within KILL_WAIT_S (stuck in a driver) is left behind."""
    for sig, wait_s in ((first, TERMINATE_GRACE_S), (signal.SIGKILL, KILL_WAIT_S)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue
        except EOFError:  # a forked worker whose preloaded parent is gone: nothing left to wait for
            return


def _death_reason(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by signal {name}{_SIGNAL_NOTES.get(name, '')}"
    return f"worker exited with code {returncode} without a result"


def worker_env() -> dict[str, str]:
    """The parent's environment; when edgebench runs from a source tree rather than site-packages,
    that tree goes on PYTHONPATH so the worker imports the same edgebench."""
    env = os.environ.copy()
    for name, value in QUIET_ENV.items():  # the user's own settings win
        env.setdefault(name, value)
    # Each case is a fresh process: let Triton keep autotuning results on disk (mamba_ssm's Mamba-2
    # kernels autotune for minutes otherwise, in every worker). Cold-start cost is still reported.
    env.setdefault("TRITON_CACHE_AUTOTUNING", "1")
    package_root = str(Path(__file__).resolve().parent.parent)
    if Path(package_root).name not in ("site-packages", "dist-packages"):
        paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        if package_root not in paths:
            env["PYTHONPATH"] = os.pathsep.join(paths + [package_root])
    return env


def _start(zygote, request: Path, channel: Path, output: Path | None):
    if zygote is not None and zygote.ok:
        try:
            return zygote.start(str(request), str(channel), None if output is None else str(output))
        except EOFError as exc:
            zygote.retire(str(exc))
        except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
            zygote.retire(f"the preloaded process stopped answering ({type(exc).__name__})")
    out = None if output is None else open(output, "ab")
    try:
        return subprocess.Popen([sys.executable, "-m", "edgebench.execution.worker", str(request), str(channel)],
                                stdin=subprocess.DEVNULL, stdout=out,
                                stderr=None if out is None else subprocess.STDOUT,
                                start_new_session=True, env=worker_env())
    finally:
        if out is not None:
            out.close()


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(f"received {signal.Signals(signum).name}")


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While the block runs, SIGTERM raises `Terminated` (a KeyboardInterrupt) in the main thread rather
    than killing the process, so a command can write what it has before exiting. A handler someone
    else installed is left alone."""
    restore = None
    if threading.current_thread() is threading.main_thread() \
            and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        restore = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        if restore is not None:
            signal.signal(signal.SIGTERM, restore)


def run_isolated(target: str, payload: dict[str, Any], timeout_s: float | None = None,
                 zygote=None, output: str | os.PathLike | None = None,
                 echo: Callable[[str], None] | None = None,
                 stop: threading.Event | None = None) -> dict[str, Any]:
    """Call `target(payload)` in a fresh worker process and return its outcome record. With a working
    `edgebench.execution.forkserver.Zygote`, the worker is forked from it (imports already done) instead of spawned.
    `output`: a file (truncated) that receives the worker's stdout and stderr; `echo`: called with
    each line of it while the worker runs; `stop`: an event that, once set (by another thread), stops
    the worker as Ctrl-C does and raises `Stopped`. A zygote serves one worker at a time: threads
    running workers at once each need their own."""
    if ":" not in target:
        raise ValueError(f"target {target!r} must be 'package.module:function'")
    workdir = Path(tempfile.mkdtemp(prefix="edgebench-worker-"))
    request, channel = workdir / "request.json", workdir / "channel.jsonl"
    request.write_text(json.dumps({"target": target, "payload": payload}), encoding="utf-8")
    if output is not None:
        output = Path(output)
        output.write_bytes(b"")
    follow = Follower(output, echo) if output is not None and echo is not None else None
    proc = None
    with sigterm_as_interrupt():
        try:
            proc = _start(zygote, request, channel, output)
            try:
                returncode = _wait(proc, timeout_s, follow, stop)
                timed_out = False
            except subprocess.TimeoutExpired:
                _stop(proc)
                returncode, timed_out = proc.returncode, True
            except EOFError as exc:  # the zygote died or was stopped: its child cannot be waited for
                _kill_group(proc.pid)
                zygote.retire(str(exc))
                return {**_read_messages(channel)[0], "status": "killed", "exit_code": None,
                        "reason": f"killed with the preloaded worker parent: {exc}"}
            partials, final = _read_messages(channel)
            if final is not None and not timed_out:
                outcome = final["data"] if final["status"] == "ok" else {"reason": final["reason"]}
                return {**partials, **outcome, "status": final["status"]}
            if timed_out:
                status, reason = "killed", f"timed out after {timeout_s:g} s"
            else:
                status = "killed" if returncode < 0 else "error"
                reason = _death_reason(returncode)
            return {**partials, "status": status, "reason": reason, "exit_code": returncode}
        except BaseException:  # Ctrl-C, SIGTERM: stop the worker without its stack dump
            if proc is not None and proc.returncode is None:
                _stop(proc, signal.SIGINT)
            raise
        finally:
            if follow is not None:
                follow.pump(final=True)
            shutil.rmtree(workdir, ignore_errors=True)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
