"""The one executor behind `run` and `maxctx`: a planner decides which points to measure, this runs them.

What both commands share lives here, once: the environment snapshot (read in a worker, so this process
never initialises CUDA), the device and its label, the budget check, the log (locked by its writer
from the header to the end), the fork server, worker output files, progress, and Ctrl-C / SIGTERM,
which stop between records and leave a valid log. The unit is a measurement point (`Point`: model,
backend, dtype, batch, ctx, gen, logits, attention), measured in one isolated worker: prefilled
once, then decoded in each decode mode asked for; its lines are `Case`s (`key(case)`).

A planner (`grid_planner.GridPlanner`, `maxctx_planner.MaxctxPlanner`) provides `counting` (what its
log lines count), `preload` and `backends` (what the fork server preloads), `total` (points for the
progress bar, 0 for none), `header()` (its fields of the run header), `begin(executor, finished)`
(after the log is open: False when nothing is left to do), `drive(executor)` (calls `measure` per
point, writes records) and `on_interrupt(executor, why)` (the fields of an `interrupted` record, or
None for none).

Where the seconds outside the points go (`edgebench.execution.timeline`, seconds since the process
started): the header's `startup_s` (the CLI's entry, the fork server's prestart, the environment
snapshot, the log opened, the fork servers READY, the header) and `preload_s` (each device's fork
server: started, modules named, READY); after the last point an `end` record's `teardown_s` (the
first point's start, the points done, the fork servers closed).
"""
from __future__ import annotations

import contextlib
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from edgebench.errors import UserError
from edgebench.execution import isolate, timeline
from edgebench.logs import schema as records
from edgebench.logs.contracts import MeasureOptions, PointRequest
from edgebench.sweep.spec import Case, Point

POINT_TARGET = "edgebench.measure.point_run:run_point"


@dataclass(frozen=True)
class Settings(MeasureOptions):
    """How each point is measured (what a worker is asked besides the point and the device), and how
    long its worker may take."""
    timeout_s: float | None = None


def _request(point: Point, device: str, s: Settings, key: str,
             kernels: tuple[dict, str] | None = None, idle: tuple[dict, str] | None = None) -> dict[str, Any]:
    """The payload of one worker: the point, its decode modes, where it runs, and how it is
    measured (the typed contract of `edgebench.logs.contracts`, which the worker parses back);
    `kernels` / `idle`: (the kernels / the idle baseline, the key of the point that found them), for
    the worker to reuse (execution/lent.py)."""
    fields = point.to_dict()
    modes = fields.pop("decode_modes")
    known, source = kernels if kernels is not None else (None, None)
    known_idle, idle_from = idle if idle is not None else (None, None)
    return PointRequest.of(s, point=fields, decode_modes=modes, device=device, key=key,
                           known_kernels=known, kernels_from=source,
                           known_idle=known_idle, idle_from=idle_from).to_payload()


def default_output(name: str | None) -> str:
    return os.path.join("edgebench-logs", f"{socket.gethostname()}-{name or 'sweep'}.jsonl")


def check_output(path: str, wait_lock: bool = False) -> None:
    """Refuse, before any work, a log path that could not be appended to and read back, or that
    another process is writing (see `edgebench.logs.path`)."""
    from edgebench.logs import path as logpath
    logpath.check_path(path, wait=wait_lock)


def snapshot_env() -> dict:
    """The environment, read in a worker so this process never initialises CUDA: forked from the
    prestarted fork server where it was named its models early (`prestart.snapshot_server`), else
    spawned."""
    import tempfile

    from edgebench.execution import prestart
    from edgebench.execution import worker_output as workerlog
    timeline.mark("env_start")
    server = prestart.snapshot_server()  # the run's fork server, once its imports are done
    if server is not None:
        timeline.mark("env_server")
    with tempfile.TemporaryDirectory(prefix="edgebench-env-") as tmp:
        output = os.path.join(tmp, "worker.txt")  # library notices stay off the terminal
        env = isolate.run_isolated("edgebench.telemetry.environment:snapshot_for_run", {"deep": True},
                                   timeout_s=300, output=output, zygote=server)
        prestart.snapshot_done(server)
        if env.pop("status", None) != "ok":
            lines = "".join(f"\n  | {line}" for line in workerlog.tail(output))
            raise UserError(f"could not read the environment in a worker: {env.get('reason')}{lines}")
    timeline.mark("env")
    return env


def resolve_device(requested: str, env: dict) -> str:
    """`auto`, `cpu`, `cuda` or `cuda:N` -> `cpu` or `cuda:N`, checked against the GPUs in `env`."""
    gpus = env.get("gpus") or []
    if requested == "auto":
        return "cuda:0" if gpus else "cpu"
    if requested.startswith("cuda"):
        idx = int(requested.split(":")[1]) if ":" in requested else 0
        if idx >= len(gpus):
            raise UserError(f"device {requested} is not here ({len(gpus)} CUDA GPUs visible); "
                            "see edgebench env")
        return f"cuda:{idx}"
    return "cpu"


def _gpu(device: str, env: dict) -> dict | None:
    return env["gpus"][int(device.split(":")[1])] if device.startswith("cuda") else None


def device_label(device: str, env: dict) -> str:
    """What the logs call a resolved device: the GPU's name by its index, else `CPU (<machine>)`."""
    gpu = _gpu(device, env)
    return gpu["name"] if gpu else f"CPU ({env['host']['machine']})"


def resolve_dtype(dtype: str, device: str) -> str:
    if dtype == "auto":
        return "bfloat16" if device.startswith("cuda") else "float32"
    return dtype


def check_budget(budget: int | None, presets: dict, env: dict, device: str, dtype: str,
                 backend: str = "hf") -> None:
    """Refuse a memory budget that cannot work here: on the CPU, above the device, below the weights."""
    if not budget:
        return
    gpu = _gpu(device, env)
    if gpu is None:
        raise UserError("--memory-budget caps a CUDA device's memory; this runs on the CPU "
                        "(drop --memory-budget, or run where `edgebench env` shows a GPU)")
    from edgebench.execution.budget import check_budget as check_fit
    from edgebench.models import memory_model
    for name, pre in presets.items():
        try:
            check_fit(budget, gpu["total_bytes"],
                      memory_model.predict(pre, 1, dtype=dtype, backend=backend)["weights_bytes"])
        except UserError as exc:
            raise UserError(f"{name}: {exc}") from None


@dataclass
class Outcome:
    """One measured point: the worker's result, its output file, and that file as the log names it."""
    result: dict[str, Any]
    output: Path | None
    kept: str | None


class Executor:
    """Run a planner's points into one log at `out`."""

    def __init__(self, out: str, wait_lock: bool = False, verbose: bool = False, quiet: bool = False):
        self.out, self.wait_lock, self.verbose, self.quiet = out, wait_lock, verbose, quiet
        self.say: Callable[..., None] = (lambda *a: None) if quiet else \
            (lambda *a: print(*a, file=sys.stderr, flush=True))
        self.env: dict = {}
        self.device = self.label = ""
        self.devices: list[str] = []  # more than one with --devices
        self.zygotes: dict[str, Any] = {}  # a fork server per device with --devices
        self.device_state: dict = {}
        self.run_id = ""
        self.log = self.wlogs = self.bar = None
        self._points: dict[str, float] = {}  # when the first point started (`end` record)

    def prepare(self, requested_device: str, env: dict | None = None,
                check: Callable[[str, dict], None] | None = None, devices: str | None = None) -> None:
        """Before any log is touched: the log path, a runnable stack, the environment, the device
        (then `check(device, env)`: what the device found here can run, the budget)."""
        check_output(self.out, self.wait_lock)
        from edgebench.telemetry import stack
        stack.require_runnable()  # torch installed, and a transformers that accepts it: else the fix
        self.env = env or snapshot_env()
        if devices:  # --devices: several GPUs of this host, checked before any worker starts
            from edgebench.execution.scheduler import parse_devices
            self.devices = parse_devices(devices, self.env.get("gpus") or [],
                                         None if requested_device == "auto" else requested_device)
        else:
            self.devices = [resolve_device(requested_device, self.env)]
        self.device = self.devices[0]
        self.label = device_label(self.device, self.env)
        from edgebench.telemetry import device_state
        states = {}
        for device in self.devices:
            states[device], warns = device_state.check(device, self.env)
            for w in warns:  # what makes numbers reproducible here, checked before the first case
                print(f"warning: {w}", file=sys.stderr, flush=True)
            if check is not None:
                check(device, self.env)
        self.device_state = states[self.device] if len(states) == 1 else {"devices": states}

    def label_of(self, device: str) -> str:
        return device_label(device, self.env)

    def key(self, case: Case, device: str | None = None) -> str:
        return records.case_key(case.to_dict(), self.label_of(device) if device else self.label)

    def device_fields(self, device: str) -> dict[str, Any]:
        """What a record says of the GPU it ran on: its index and PCI bus id (none on the CPU)."""
        gpu = _gpu(device, self.env)
        return {"device_index": int(device.split(":")[1]), "pci_bus_id": gpu.get("pci_bus_id")} if gpu else {}

    def execute(self, planner) -> None:
        """Open the log, write the header, drive the planner; an `interrupted` record on Ctrl-C."""
        from edgebench.execution import forkserver, prestart
        from edgebench.execution.progress import Progress
        from edgebench.execution.worker_output import WorkerLogs
        from edgebench.logs.writer import LogWriter
        log = LogWriter(self.out, self.wait_lock, planner.counting)  # locked from here to the end
        try:
            if not planner.begin(self, log.finished_keys()):
                log.close()
                return
            self.log, self.run_id = log, records.new_run_id()
            self.wlogs = WorkerLogs(self.out, self.say, self.verbose)
            preload_out = None if self.verbose else self.wlogs.path("preload")
            startup = {**timeline.marks(), "log_open": timeline.since_start()}
            # A fork server serves one worker at a time: one per device (--devices: several, all
            # started at once).
            self.zygotes = prestart.open_all(planner.preload, planner.backends, {
                d: preload_out if d == self.device or preload_out is None
                else self.wlogs.path("preload", d) for d in self.devices})
            startup["preload_ready"] = timeline.since_start()
        except BaseException:
            log.close()
            raise
        with isolate.sigterm_as_interrupt(), log, contextlib.ExitStack() as servers:
            kept: list[bool] = []
            for z in self.zygotes.values():  # kept for the command's next executor, or closed
                servers.callback(lambda z=z: kept.append(prestart.release(z)))
            preload = {d: forkserver.timeline(z, timeline.since_start) for d, z in self.zygotes.items()}
            log.write({"type": "run", "run": self.run_id, "t": records.utc_now(),
                       "edgebench": self.env["edgebench"], "argv": sys.argv[1:], "device": self.label,
                       **({"devices": [self.label_of(d) for d in self.devices]}
                          if len(self.devices) > 1 else {}),
                       "env": self.env, "device_state": self.device_state, **planner.header(),
                       "workers": forkserver.describe(self.zygotes[self.device]),
                       "startup_s": {**startup, "header": timeline.since_start()},
                       **({"preload_s": preload} if any(preload.values()) else {})})
            try:
                with Progress(planner.total, enabled=not self.quiet and planner.total > 0) as self.bar:
                    planner.drive(self)
            except KeyboardInterrupt as exc:
                why = str(exc) or "received SIGINT (Ctrl-C)"
                fields = planner.on_interrupt(self, why)
                if fields is not None:
                    log.write({"type": "interrupted", "run": self.run_id, "t": records.utc_now(),
                               "reason": why, **fields})
                raise
            ends = {**self._points, "points_done": timeline.since_start()}
            servers.close()  # the fork servers end (or pass to the next executor) before the record
            done = "servers_kept" if any(kept) else "servers_closed"
            log.write({"type": "end", "run": self.run_id, "t": records.utc_now(),
                       "teardown_s": {**ends, done: timeline.since_start()}})
        # a kept server still writes to its output: prestart removes it if it stays empty
        self.wlogs.finish(None if any(kept) else preload_out)

    def measure(self, point: Point, settings: Settings, key: str, *name: object,
                device: str | None = None, stop: Any = None,
                kernels: tuple[dict, str] | None = None, idle: tuple[dict, str] | None = None) -> Outcome:
        """Measure one point in an isolated worker on `device` (default: the run's); its output
        goes to LOG.workers/<name...>. With --devices each device's thread passes its `stop` event.
        `kernels`: what an earlier point of the same `contracts.detection_key` detected, and its key;
        `idle`: the device's idle baseline an earlier point measured, and its key (execution/lent.py)."""
        device = device or self.device
        self._points.setdefault("first_point", timeline.since_start())
        if stop is None:  # the main thread: the progress bar is its own
            self.bar.show(point.label())
        output = self.wlogs.path(*name)
        result = isolate.run_isolated(POINT_TARGET, _request(point, device, settings, key, kernels, idle),
                                      timeout_s=settings.timeout_s, zygote=self.zygotes.get(device),
                                      output=output, echo=self.wlogs.echo, stop=stop)
        return Outcome(result, output, self.wlogs.keep(output))
