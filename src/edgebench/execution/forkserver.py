"""A preloaded process that forks case workers, so each case skips importing torch and transformers.

Importing torch + transformers + a model's modeling module takes seconds (~9 s on a 2-core VM, more on
a Jetson's CPU) and every case used to pay it in its fresh worker. `Zygote(preload)` starts
`python -m edgebench.execution.zygote_process FD MODULES` (that process's side of the protocol), which imports MODULES once, checks that nothing initialised
CUDA or started a thread (either makes fork unsafe), and then, per request, forks a child that runs
`edgebench.execution.worker.main` exactly as a spawned worker would: own session, stdin closed, SIGKILL if
its parent dies, results through the channel file. Isolation is unchanged: every case is still its
own process with its own CUDA context; only the imports are shared, copy-on-write.

Two-stage preload: the zygote imports MODULES as soon as it starts, then reads one JSON line
`["PRELOAD", [more modules]]` from stdin, imports those and only then checks and answers READY. So a
run can start the zygote on what every worker imports (BASE_MODULES) before the environment
snapshot, in parallel with it, and name its models' modules once the plan is known
(`edgebench.execution.prestart`); `Zygote(preload)` sends the line itself.

Protocol: after the PRELOAD line, requests go to the zygote's stdin as a JSON line
`["REQUEST", "CHANNEL", "OUTPUT" or null]`;
it answers on the pipe FD with "READY ok" or "READY no <why>" once, then "PID n" per request and
"EXIT n rc" when that child ends (rc as in Popen: negative for a signal). One request at a time. The
child's stdout and stderr go to OUTPUT when given; the zygote's own go to `Zygote(output=...)`.
`Zygote.ok` is False (with `why`) when the preload was unsafe or failed, or after `retire()`; callers
then spawn workers as before. Every read of the pipe checks, twice a second, that the zygote still runs
and is not stopped (SIGSTOP): a lost zygote raises `ZygoteLost` instead of hanging its caller.
"""
from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time

READY_TIMEOUT_S = 300.0
ANSWER_TIMEOUT_S = 60.0  # for the "PID n" answer to a request
HEALTH_CHECK_S = 0.5  # how often a wait for the zygote checks that it still runs
KILL_WAIT_S = 10.0


class ZygoteLost(EOFError):
    """The zygote exited, was killed or was stopped while a caller waited for it."""


class _Child:
    """A forked worker, with the subset of Popen's interface that `isolate` uses (pid, returncode,
    wait: TimeoutExpired, or ZygoteLost when the zygote cannot report the exit)."""

    def __init__(self, zygote: "Zygote", pid: int):
        self._zygote, self.pid, self.returncode = zygote, pid, None

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self._zygote._await_exit(self.pid, timeout)
        return self.returncode


def _stopped(pid: int) -> bool:
    """True when the process is stopped by a signal (state T in /proc; False where /proc is absent)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rpartition(")")[2].split()[:1] == ["T"]
    except OSError:
        return False


class Zygote:
    def __init__(self, preload: list[str], env: dict[str, str] | None = None,
                 output: str | os.PathLike | None = None, wait: bool = True):
        """Start the zygote and wait for its preload; `output`: a file for its stdout and stderr
        (None: the caller's). `wait=False`: return once it is started, importing `preload`; then
        `complete(more)` names the rest and waits (see the module doc)."""
        self.ok, self.why, self._proc, self._buf = False, None, None, b""
        self.output = output
        self.modules = list(preload)  # what it imports before READY (`complete` adds the rest)
        # time.monotonic() at its start, when its models' modules were named, and at its READY
        self.started_at, self.named_at, self.ready_at = time.monotonic(), None, None
        read_fd, write_fd = os.pipe()
        out = None
        try:
            out = None if output is None else open(output, "wb")
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "edgebench.execution.zygote_process", str(write_fd), ",".join(preload)],
                stdin=subprocess.PIPE, stdout=out, stderr=None if out is None else subprocess.STDOUT,
                pass_fds=(write_fd,), env=env, start_new_session=True)
        except OSError as exc:
            os.close(read_fd)
            self.why = f"could not start the preloaded process: {exc}"
            return
        finally:
            os.close(write_fd)
            if out is not None:
                out.close()
        self._fd = read_fd
        if wait:
            self.complete([])

    def name(self, more: list[str]) -> None:
        """Name the modules to import after the first ones, without waiting (several zygotes then
        import at once; `complete` waits). Once only: later calls do nothing."""
        if self._proc is None or self.named_at is not None:
            return
        self.modules += [m for m in more if m not in self.modules]
        self.named_at = time.monotonic()
        with contextlib.suppress(OSError):  # one that failed already answered READY no: read it
            self._proc.stdin.write((json.dumps(["PRELOAD", more]) + "\n").encode())
            self._proc.stdin.flush()

    def complete(self, more: list[str]) -> None:
        """Name the modules to import after the first ones (unless `name` did), and wait for READY
        (sets `ok`, `why`). Once: a zygote that answered READY already returns at once."""
        if self._proc is None or self.ready_at is not None:
            return
        self.name(more)
        try:
            line = self._line(READY_TIMEOUT_S)
        except (subprocess.TimeoutExpired, EOFError) as exc:
            self.retire(f"the preloaded process did not start ({exc or type(exc).__name__})")
            return
        self.ready_at = time.monotonic()
        self.ok = line == "READY ok"
        if not self.ok:
            self.why = line.removeprefix("READY no ").strip() or "unknown"
            self.close()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self, request: str, channel: str, output: str | None = None) -> _Child:
        """Fork a worker for this request; ZygoteLost when the zygote is gone or stopped."""
        lost = self._lost()
        if lost:
            raise ZygoteLost(lost)
        self._proc.stdin.write((json.dumps([request, channel, output]) + "\n").encode())
        self._proc.stdin.flush()
        parts = self._line(ANSWER_TIMEOUT_S).split()
        if len(parts) != 2 or parts[0] != "PID":
            raise ValueError(f"unexpected answer from the preloaded process: {parts}")
        return _Child(self, int(parts[1]))

    @property
    def serving(self) -> bool:
        """READY and still running (neither retired, closed, lost nor stopped): can fork workers."""
        return self.ok and self._proc is not None and not self._lost()

    def retire(self, why: str) -> None:
        """Stop using this zygote (callers spawn from now on) and kill it: it may be stopped or hung."""
        self.ok, self.why = False, why
        self.close(kill=True)

    def _await_exit(self, pid: int, timeout: float | None) -> int:
        parts = self._line(timeout).split()
        if len(parts) != 3 or parts[0] != "EXIT" or parts[1] != str(pid):
            raise ZygoteLost(f"the preloaded process answered {parts} while worker {pid} ran")
        return int(parts[2])

    def _lost(self) -> str | None:
        """Why the zygote can no longer serve (exited, killed, stopped), or None."""
        if self._proc is None:
            return "the preloaded process was closed"
        rc = self._proc.poll()
        if rc is not None:
            how = "SIGKILL: the kernel's OOM killer?" if rc == -9 else f"return code {rc}"
            return f"the preloaded process died ({how})"
        if _stopped(self._proc.pid):
            return "the preloaded process was stopped (SIGSTOP)"
        return None

    def _line(self, timeout: float | None) -> str:
        """The zygote's next line; TimeoutExpired after `timeout` s, ZygoteLost as soon as it is gone."""
        if self._proc is None:
            raise ZygoteLost("the preloaded process was closed")
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = HEALTH_CHECK_S if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._fd], [], [], min(left, HEALTH_CHECK_S))
            if not ready:
                lost = self._lost()
                if lost:
                    raise ZygoteLost(lost)
                if deadline is not None and time.monotonic() >= deadline:
                    raise subprocess.TimeoutExpired("edgebench.execution.zygote_process", timeout)
                continue
            chunk = os.read(self._fd, 4096)
            if not chunk:  # the pipe closed: the zygote is gone (its exit status follows at once)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=1.0)
                raise ZygoteLost(self._lost() or "the preloaded process exited")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()

    def close(self, kill: bool = False) -> None:
        """End the zygote: EOF on its stdin, then SIGKILL (at once with `kill`, or when it has not
        ended within KILL_WAIT_S). Every wait is bounded."""
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        with contextlib.suppress(OSError):
            proc.stdin.close()  # EOF ends the zygote's loop
        if not kill:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=KILL_WAIT_S)
        if proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=KILL_WAIT_S)
        os.close(self._fd)

    def __enter__(self) -> "Zygote":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def preload_modules(presets, backends=("hf",)) -> list[str]:
    """What case workers of these presets import: torch, transformers, each model's modeling module
    (optional: "?"), mamba_ssm's model for that backend, and edgebench's case code."""
    mods = list(BASE_MODULES)
    for pre in presets:
        if not pre.remote_code:
            mods.append(f"?transformers.models.{pre.model_type}.modeling_{pre.model_type}")
    if "mamba_ssm" in backends:
        mods.append("?mamba_ssm.models.mixer_seq_simple")
    return list(dict.fromkeys(mods))


BASE_MODULES = ("torch", "transformers", "edgebench.measure.point_run", "edgebench.measure.phases",
                "edgebench.models.loaders")  # what every case worker imports, whatever its model
def preload_enabled() -> bool:
    """Workers fork from a preloaded process unless EDGEBENCH_PRELOAD=0 (then each is spawned)."""
    return os.environ.get("EDGEBENCH_PRELOAD", "1") != "0"


def open_for(presets, backends=("hf",), output: str | os.PathLike | None = None,
             wait: bool = True) -> Zygote | None:
    """A zygote for a sweep of these presets (its own output to `output`), or None when
    EDGEBENCH_PRELOAD=0 turns it off; `wait=False`: started, importing, and `complete([])` waits for
    it (how several start at once). (`prestart.open_all` adopts prestarted ones first.)"""
    if not preload_enabled():
        return None
    from edgebench.execution.isolate import worker_env
    return Zygote(preload_modules(presets, backends), env=worker_env(), output=output, wait=wait)


def timeline(zygote: Zygote | None, since_start) -> list[float] | None:
    """For the run header: [started, modules named, READY] of a zygote, each `since_start(t)`
    (seconds since the run's process started); None for none, null for a moment it never reached."""
    if zygote is None:
        return None
    return [None if t is None else since_start(t)
            for t in (zygote.started_at, zygote.named_at, zygote.ready_at)]


def describe(zygote: Zygote | None) -> dict:
    """For the run header: how workers were started."""
    if zygote is None:
        return {"start": "spawn", "why": "EDGEBENCH_PRELOAD=0"}
    return {"start": "fork-preloaded"} if zygote.ok else {"start": "spawn", "why": zygote.why}
