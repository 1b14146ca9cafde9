"""Points dealt to several GPUs of one host (`--devices`): one worker per device at a time, the
longest expected work first, results handed back in the parent's main thread.

`parse_devices(text, gpus, device=None)` turns `--devices all` or `--devices cuda:0,cuda:2` into
device names, checked before any worker starts against `gpus` (the environment snapshot's GPU list:
what a worker sees, CUDA_VISIBLE_DEVICES applied): an unknown form, a GPU that is not here, a
duplicate, `all` without a GPU, or a single `device` also asked for (--device, or a spec's device
other than auto) is a `UserError` naming the problem and the fix.

`run_on_devices(items, devices, work, cost=..., series=..., on_result=..., skip=..., warms=...)` runs
`work(item, device, stop)` in a thread per running item, at most one per device; `work` returns the
item's result and must end soon after the `threading.Event` `stop` is set (for an isolated worker:
`isolate.run_isolated(..., stop=stop)`, which stops the worker as Ctrl-C does). Dealing: whenever a
device is free it takes the next item of the series with the most expected work left (`cost` per
item, summed over the series' pending items; ties: the series met first in `items`), one item of a
series at a time and in the given order (`series`: items of one key run in order, e.g. the contexts
of a grid series, so that an OOM can skip the longer ones; default: every item its own series, which
is longest-processing-time-first). `warms(item)` names the on-disk cache an item's first run fills
(None: none), e.g. Triton's autotune results for the Mamba-2 kernels at one shape: while an item of a
group runs and none of that group has ended, no other item of it is dealt (a device rather waits
than pays the same autotune at once: on two H200s mamba2-780m and zamba2-1.2b at 1K each spent 38-39 s
autotuning side by side, where one after the other the second took 2.6 s). Just before an item is dealt, `skip(item)` may return a result
that stands for it without running it (device None). `on_result(done)` is called in the calling
thread as each item ends, in the order they end; the return value is every `Done` in item order.

Ctrl-C or SIGTERM (as `isolate.Terminated`), or an exception from `work`, `skip` or `on_result`:
every running item's `stop` is set, the threads get `STOP_WAIT_S` to end (a worker's SIGINT, then
SIGKILL after isolate's grace periods), results that ended normally meanwhile still reach
`on_result`, and the exception is raised again so that the caller writes its `interrupted` record.

The parent never touches CUDA: `work` starts worker processes. A fork server (`forkserver.Zygote`)
serves one worker at a time, so concurrent devices each need their own (or spawned workers). Linux
kills a worker when the thread that started it ends (PR_SET_PDEATHSIG): `work` must wait for its
worker in the thread it was called in, as `run_isolated` does.
"""
from __future__ import annotations

import queue
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Sequence

from edgebench.errors import UserError
from edgebench.execution.isolate import KILL_WAIT_S, TERMINATE_GRACE_S

STOP_WAIT_S = TERMINATE_GRACE_S + KILL_WAIT_S + 5.0  # a stopped worker's SIGINT, SIGKILL and wait, + slack
_POLL_S = 0.5
_CUDA_RE = re.compile(r"cuda:(\d+)")


def parse_devices(text: str, gpus: Sequence[Any], device: str | None = None) -> list[str]:
    """`--devices` as `cuda:N` names in the order given (see the module docstring)."""
    if device not in (None, "auto"):
        raise UserError(f"--devices and a single device ({device}) were both given: --device runs on "
                        "one device, --devices on several; keep one (e.g. --devices cuda:0,cuda:1)")
    shown = ", ".join(f"cuda:{i} {g.get('name', '?') if isinstance(g, dict) else g}"
                      for i, g in enumerate(gpus)) or "none"
    raw = str(text).strip()
    if raw.lower() == "all":
        if not gpus:
            raise UserError("--devices all: no CUDA GPU is visible here (`edgebench env` lists what a "
                            "worker sees); drop --devices to run on the CPU")
        return [f"cuda:{i}" for i in range(len(gpus))]
    names: list[str] = []
    for item in raw.split(","):
        match = _CUDA_RE.fullmatch(item.strip().lower())
        if not match:
            raise UserError(f"bad device {item.strip()!r} in --devices {text!r}: write all, or CUDA "
                            "devices as cuda:N separated by commas (e.g. cuda:0,cuda:2); the CPU runs "
                            "one point at a time (drop --devices)")
        name = f"cuda:{int(match.group(1))}"
        if name in names:
            raise UserError(f"--devices {text!r} names {name} twice; list each GPU once")
        if int(match.group(1)) >= len(gpus):
            raise UserError(f"--devices {text!r}: {name} is not here; visible GPUs: {shown} (see "
                            "`edgebench env`; CUDA_VISIBLE_DEVICES renumbers them from 0)")
        names.append(name)
    return names


@dataclass
class Done:
    """One item's end: its position in `items`, the device that ran it (None: skipped), its result
    and the seconds it ran."""
    index: int
    item: Any
    device: str | None
    result: Any
    seconds: float


@dataclass
class _Running:
    index: int
    thread: threading.Thread
    stop: threading.Event


def run_on_devices(items: Sequence[Any], devices: Sequence[str],
                   work: Callable[[Any, str, threading.Event], Any], *,
                   cost: Callable[[Any], float] = lambda item: 1.0,
                   series: Callable[[Any], Hashable] | None = None,
                   on_result: Callable[[Done], None] | None = None,
                   skip: Callable[[Any], Any] | None = None,
                   warms: Callable[[Any], Hashable | None] | None = None,
                   stop_wait_s: float = STOP_WAIT_S) -> list[Done]:
    """Run every item on the devices; see the module docstring."""
    if not devices or len(set(devices)) != len(devices):
        raise ValueError(f"devices must be distinct and at least one, got {list(devices)}")
    costs = [float(cost(item)) for item in items]
    keys = [series(item) if series is not None else i for i, item in enumerate(items)]
    pending: dict[Hashable, deque[int]] = {}
    for i, key in enumerate(keys):
        pending.setdefault(key, deque()).append(i)
    order = {key: n for n, key in enumerate(pending)}
    left = {key: sum(costs[i] for i in q) for key, q in pending.items()}
    groups = [warms(item) if warms is not None else None for item in items]
    warm: set[Hashable] = set()  # groups an item of which has ended: their cache is filled
    running: dict[str, _Running] = {}
    ended: queue.Queue = queue.Queue()  # (device, index, result, exception, seconds)
    done: dict[int, Done] = {}

    def record(d: Done) -> None:
        done[d.index] = d
        if on_result is not None:
            on_result(d)

    def next_index() -> int | None:
        busy = {keys[r.index] for r in running.values()}
        filling = {groups[r.index] for r in running.values()} - warm - {None}
        ready = [k for k, q in pending.items() if q and k not in busy and groups[q[0]] not in filling]
        if not ready:
            return None
        key = min(ready, key=lambda k: (-left[k], order[k]))
        i = pending[key].popleft()
        left[key] -= costs[i]
        return i

    def start(i: int, device: str) -> None:
        stop = threading.Event()

        def body() -> None:
            t0 = time.monotonic()
            try:
                ended.put((device, i, work(items[i], device, stop), None, time.monotonic() - t0))
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                ended.put((device, i, None, exc, time.monotonic() - t0))

        thread = threading.Thread(target=body, name=f"edgebench-{device}", daemon=True)
        running[device] = _Running(i, thread, stop)
        thread.start()

    def deal() -> None:
        for device in devices:
            while device not in running:
                i = next_index()
                if i is None:
                    return
                stands_for = skip(items[i]) if skip is not None else None
                if stands_for is not None:
                    record(Done(i, items[i], None, stands_for, 0.0))
                    continue
                start(i, device)

    def finish(message: tuple) -> None:
        device, i, result, exc, seconds = message
        running.pop(device).thread.join()
        warm.add(groups[i])  # ended, however: an oom or kill may have cut its autotune short (time only)
        if exc is not None:
            raise exc
        record(Done(i, items[i], device, result, seconds))

    try:
        deal()
        while running:
            try:
                message = ended.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            finish(message)
            deal()
    except BaseException as exc:
        try:
            _stop_all(running, ended, stop_wait_s, lambda m: record(Done(m[1], items[m[1]], m[0], m[2], m[4])))
        except BaseException:  # a second error while stopping (its __context__) must not hide the first
            raise exc
        raise
    return [done[i] for i in sorted(done)]


def _stop_all(running: dict[str, _Running], ended: queue.Queue, wait_s: float,
              deliver: Callable[[tuple], None]) -> None:
    """Stop every running item, wait up to `wait_s` for the threads, deliver what ended normally."""
    for r in running.values():
        r.stop.set()
    deadline = time.monotonic() + wait_s
    for r in running.values():
        if r.thread.ident is not None:  # started
            r.thread.join(max(0.0, deadline - time.monotonic()))
    while True:
        try:
            message = ended.get_nowait()
        except queue.Empty:
            return
        if message[3] is None:
            deliver(message)
