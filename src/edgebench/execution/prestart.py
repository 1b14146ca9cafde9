"""The fork server started first thing, so that the workers' imports (torch, transformers, mamba_ssm:
11-16 s of CPU on a fresh H200 machine, more on a Jetson) are under way while the command plans, and
are done once: the environment snapshot's worker forks from it too.

`prestart(count=N)` starts N `forkserver.Zygote`s (one per GPU of --devices) importing
`forkserver.BASE_MODULES` (what every case worker imports) and the SSM kernel packages installed here
(`installed_kernel_modules`) and returns at once; `name_early(presets, backends)` then names the
modules of the models the command's arguments name, while those imports run; `snapshot_server()` waits for the first one's READY and gives it to the
environment snapshot, which forks its worker from it (none named early: None, and the snapshot spawns
its own worker beside the imports). `open_all(presets, backends, outputs)` (what the
executor calls) gives each device of the run one: a prestarted one, adopted (its models' modules
named unless `name_early` did, its second preload stage, then READY waited for; one named early
without a model of the plan is killed and replaced), or a new one as `forkserver.open_for` starts it,
every one named or started before any is waited for.
A prestarted zygote's own output goes to a
temporary file, moved to `output` when adopted (so what it writes later, e.g. a crash of its serve
loop, lands there too), or to the terminal with `prestart(stream=True)` (--verbose); one never
adopted (the run failed or was interrupted before its first point, even while being adopted) is
killed by `drop_prestarted()` or at exit.

Within `keeping_servers(presets, backends)` (a suite's run: one executor per grid group and per
max-context group, one after another), fork servers outlive an executor: they preload the modules of
every model of the suite, `release(z)` (an executor's end) keeps a serving one, and the next
executor's `open_all` takes it before starting new ones; one that lacks a module the new
plan's workers import is closed and replaced (no worker imports its model inside the timed load). On
leaving, the kept servers are closed and their output files removed where nothing was written.
Outside it (a plain run, the maxctx command, tests), `release` closes the server. The parent stays
CUDA-free: the zygote is a process of its own, and checks before READY that its imports initialised
no CUDA.
"""
from __future__ import annotations

import contextlib
import os
import sys

from edgebench.execution import forkserver
from edgebench.execution.forkserver import BASE_MODULES, Zygote

_early: list[Zygote] = []  # prestart()'s zygotes until open_all adopts them
_kept: list[Zygote] = []  # serving fork servers an earlier executor of the suite released
_suite: list = []  # [presets, backends] inside keeping_servers(): what every server preloads


def prestart(stream: bool = False, count: int = 1) -> None:
    """Start `count` zygotes (one per GPU a --devices run will use: `plan.devices_count`) importing
    BASE_MODULES now, for the next `open_all` to adopt (see the module doc); `stream`:
    their output to the terminal (as the executor's --verbose wants). Nothing when preloading is off
    or some are waiting already."""
    if not forkserver.preload_enabled() or _early:
        return
    import atexit
    import tempfile
    from edgebench.execution.isolate import worker_env
    modules, env = [*BASE_MODULES, *installed_kernel_modules()], worker_env()
    for _ in range(max(1, count)):
        path = None
        if not stream:
            fd, path = tempfile.mkstemp(prefix="edgebench-preload-", suffix=".txt")
            os.close(fd)
        z = forkserver.Zygote(modules, env=env, output=path, wait=False)
        _early.append(z)
        atexit.register(_drop_early, z)


def prestarted() -> bool:
    """Whether prestarted zygotes wait for adoption (none with preloading off)."""
    return bool(_early)


def name_early(presets, backends) -> None:
    """Name the prestarted zygotes the modules of the models the command will most likely run (from
    its arguments, before the environment is known), so they reach READY without waiting for the plan
    and the environment snapshot forks from the first (`snapshot_server`)."""
    more = _more(presets, backends)
    for z in _early:
        z.name(more)


def snapshot_server() -> Zygote | None:
    """The prestarted zygote the environment snapshot's worker forks from, READY: named its modules
    at its start (`name_early`), so the imports are done once for the snapshot and the
    points instead of twice side by side (on a fresh H200 machine each took 15-19 s beside the other).
    None when no zygote was named early or its preload failed: then the snapshot spawns its worker."""
    z = next((z for z in _early if z.named_at is not None), None)
    if z is None:
        return None
    try:
        z.complete([])
    except BaseException:
        _drop_early(z)
        raise
    return z if z.ok else None


def snapshot_done(z: Zygote | None) -> None:
    """After the snapshot's worker: a server lost while serving it (`isolate` retired it, and the
    snapshot spawned its worker instead) is forgotten, so that `open_all` starts a new one rather
    than adopting a dead one (every point would then spawn)."""
    if z is not None and not z.serving:
        _drop_early(z)


def installed_kernel_modules() -> list[str]:
    """The SSM kernel packages installed here ("?" optional), found without importing them. A
    prestarted zygote imports them beside the environment snapshot: the run's models are not known
    yet, and an SSM model's modeling module imports them (mamba_ssm pulls triton in: ~10 s of a
    fresh H200 machine's start-up when it waited until the models were named)."""
    import importlib.util
    from edgebench.toolchain.packages import PACKAGES
    return [f"?{p.module}" for p in PACKAGES.values() if importlib.util.find_spec(p.module) is not None]


def drop_prestarted() -> None:
    """Kill a prestarted zygote that no `open_all` adopted (the run ended before its first point)."""
    for z in list(_early):
        _drop_early(z)


@contextlib.contextmanager
def keeping_servers(presets, backends):
    """Executors within hand their fork servers on, each server preloading all of `presets` (see the
    module doc); the servers are closed on leaving."""
    _suite[:] = [list(presets), tuple(backends)]
    try:
        yield
    finally:
        _suite.clear()
        while _kept:
            _close_kept(_kept.pop())


def release(z: Zygote | None) -> bool:
    """An executor is done with `z`: kept for the next executor inside `keeping_servers` while it
    serves, else closed. True when kept."""
    if z is None:
        return False
    if _suite and z.serving:
        _kept.append(z)
        return True
    z.close()
    return False


def _widen(presets, backends) -> tuple[list, tuple]:
    """These presets and backends, with the suite's inside `keeping_servers`."""
    if not _suite:
        return list(presets), tuple(backends)
    return list(dict.fromkeys([*presets, *_suite[0]])), tuple(dict.fromkeys([*backends, *_suite[1]]))


def _take_kept(modules: list[str]) -> Zygote | None:
    """A kept server that preloaded all of `modules`; the others are closed (see the module doc)."""
    while _kept:
        z = _kept.pop()
        if z.serving and set(modules) <= set(z.modules):
            return z
        _close_kept(z)
    return None


def _close_kept(z: Zygote) -> None:
    """End a kept server; its output file goes when nothing was written to it (the executor that
    opened it left it in place while the server could still write)."""
    z.close()
    if z.output is not None:
        with contextlib.suppress(OSError):
            if os.path.getsize(z.output) == 0:
                os.unlink(z.output)
                os.rmdir(os.path.dirname(z.output))  # the workers' folder, when nothing else is there


def _drop_early(z: Zygote) -> None:
    """Kill `z` and remove its temporary output, unless it was adopted (then it is the run's)."""
    if z not in _early:
        return
    _early.remove(z)
    z.close(kill=True)
    if z.output is not None:
        with contextlib.suppress(OSError):
            os.unlink(z.output)


def open_all(presets, backends, outputs: dict) -> dict:
    """A zygote per device (`outputs`: device -> its output; the first devices adopt the prestarted
    ones, `prestart(count=...)`), all started or named before any is waited for, so that their imports
    run at once instead of one after another (--devices)."""
    devices = list(outputs)
    if not forkserver.preload_enabled():
        return dict.fromkeys(devices)
    started: dict = {}
    needed = forkserver.preload_modules(presets, backends)
    presets, backends = _widen(presets, backends)  # what new servers preload
    for d in devices:  # servers kept from the command's earlier executor first
        kept = _take_kept(needed)
        if kept is None:
            break
        started[d] = kept
    reused = set(started)
    # the prestarted zygotes go to the first devices left, each told its models' modules at once;
    # one named early on a hint that missed a model of the plan is closed and replaced
    more = _more(presets, backends)
    for z in [z for z in _early if z.named_at is not None and not set(more) <= set(z.modules)]:
        _drop_early(z)
    adopt = dict(zip([d for d in devices if d not in reused], list(_early)))
    try:
        for z in adopt.values():
            z.name(more)
        for d in devices:  # the others start now; each imports while the adopted ones finish
            if d not in reused and d not in adopt:
                started[d] = forkserver.open_for(presets, backends, outputs[d], wait=False)
        for d, z in adopt.items():
            started[d] = _adopt(z, more, outputs[d])
        for d, z in started.items():
            if d not in adopt and d not in reused:
                z.complete([])
    except BaseException:
        for z in [*started.values(), *adopt.values()]:
            z.close(kill=True)
        for z in adopt.values():
            _drop_early(z)
        raise
    return {d: started[d] for d in devices}


def _more(presets, backends) -> list[str]:
    """The modules a prestarted zygote imports once adopted: the models' (its BASE_MODULES it has)."""
    return [m for m in forkserver.preload_modules(presets, backends) if m not in BASE_MODULES]


def _adopt(z: Zygote, more: list[str], output) -> Zygote:
    """A prestarted zygote made the run's: its models' modules imported (named now unless `name` did),
    READY waited for, its output moved to `output`. Still prestart's until READY: a failure or Ctrl-C
    here kills it."""
    try:
        z.complete(more)
    except BaseException:
        _drop_early(z)
        raise
    _early.remove(z)
    _adopt_output(z, output)
    return z


def _adopt_output(z: Zygote, output: str | os.PathLike | None) -> None:
    """The prestarted zygote's output file becomes `output` (it keeps writing there); with `output`
    None (the terminal) what it wrote so far is printed. Streamed zygotes (no file) need nothing."""
    if z.output is None:
        return
    if output is not None:
        with contextlib.suppress(OSError):
            os.replace(z.output, output)  # same inode: later writes follow
            z.output = output
            return
    with contextlib.suppress(OSError):  # the terminal, or another filesystem: copy what is there
        with open(z.output, "rb") as fh:
            text = fh.read()
        if output is not None:
            with open(output, "ab") as out:
                out.write(text)
        elif text:
            sys.stderr.write(text.decode(errors="replace"))
