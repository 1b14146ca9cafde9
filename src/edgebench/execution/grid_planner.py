"""The grid sweep of `edgebench run`: spec -> points in order -> per point, one worker (or `--runs`
of them) and its lines: a prefill line and one line per decode mode (`point_lines`).

Everything that can be checked without loading a model is checked first (model names, context
limits, the log path, the memory budget), so bad input fails in seconds and loses nothing. Points run
in the spec's order (contexts ascending within a series; with --devices, a series that the memory
model says cannot run out of memory is dealt point by point); after an oom or a kill, the longer contexts
of that series not yet started are recorded as skipped (a prefill that failed skips the longer points; a decode mode
that failed skips that mode at longer contexts). A rerun with the same output resumes: lines already
in the log are not measured again, and a point missing some of its lines is measured again for those.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any

from edgebench.execution import executor as ex_mod
from edgebench.execution.lent import Lent
from edgebench.execution.point_lines import point_lines
from edgebench.logs import schema as records
from edgebench.logs.contracts import detection_key
from edgebench.sweep import plan
from edgebench.sweep.spec import Case, Point, Spec, group_points


@dataclass
class RunOptions:
    shard: str | None = None
    telemetry: bool = True
    power_rate_hz: float = 50.0
    profile_ops: bool = False
    ops_trace: bool = False  # Chrome traces of the profiles in <log>.traces/
    quiet: bool = False
    verbose: bool = False  # stream worker output live instead of keeping it to <log>.workers/
    extra_header: dict[str, Any] = field(default_factory=dict)
    wait_lock: bool = False  # wait for another process writing the same log instead of refusing
    devices: str | None = None  # --devices all | cuda:N,...: several GPUs of this host at once

    def __post_init__(self) -> None:
        from edgebench.sweep.spec import check_number
        self.power_rate_hz = check_number(self.power_rate_hz, "--power-rate", 0.1, 10_000, "Hz")


def validate(spec: Spec, cases: list[Case], device: str | None = None) -> dict[str, Any]:
    """The presets, every model resolved and case checked before anything loads (`plan.check`)."""
    return plan.check(spec, cases, device)


def _cases(spec: Spec, shard: str | None) -> tuple[list[Case], Any]:
    """The plan's lines, or one shard's (`edgebench.sweep.shards`: whole series balanced by expected
    work), and the shard (None without --shard)."""
    cases = spec.plan()
    if not shard:
        return cases, None
    from edgebench.sweep import shards
    return shards.select(cases, shard, reps=spec.reps, warmup=spec.warmup)


def dry_run(spec: Spec, shard: str | None = None, suite: str | None = None) -> str:
    """The plan as text (`edgebench.sweep.plan.describe`), checked as a run checks it, without loading a
    model, importing torch or starting a worker: the device class is the forced --device, else
    `plan.device_class`'s look at the system."""
    cases, _ = _cases(spec, shard)
    device, how = plan.device_class(spec.device)
    device = spec.device if spec.device.startswith("cuda") else device
    presets = validate(spec, cases, device)
    cases = [replace(c, dtype=ex_mod.resolve_dtype(c.dtype, device)) for c in cases]
    out = spec.output or ex_mod.default_output(suite)
    return plan.describe(spec, cases, presets, device, how, suite, out)


def run(spec: Spec, opts: RunOptions, suite: str | None = None,
        env: dict | None = None) -> tuple[str, list[dict]]:
    """Run the sweep; returns (log path, the case records written by this invocation)."""
    planner = GridPlanner(spec, opts)
    ex = ex_mod.Executor(spec.output or ex_mod.default_output(suite), opts.wait_lock, opts.verbose,
                         opts.quiet)
    ex.prepare(spec.device, env, planner.check_device, devices=opts.devices)
    ex.execute(planner)
    return ex.out, planner.written


class GridPlanner:
    """The cases of a spec, in order; see the module docstring."""
    counting = "case"

    def __init__(self, spec: Spec, opts: RunOptions):
        self.spec, self.opts = spec, opts
        self.cases, self.shard = _cases(spec, opts.shard)
        self.presets = validate(spec, self.cases, None if spec.device == "auto" else spec.device)
        self.preload: list = []
        self.backends: tuple[str, ...] = ()
        self.todo: list[Case] = []
        self.points: list[Point] = []
        self.written: list[dict] = []

    def check_device(self, device: str, env: dict) -> None:
        spec = self.spec
        if spec.device == "auto":
            validate(spec, self.cases, device)  # what the device found here can run
        ex_mod.check_budget(spec.memory_budget_bytes, self.presets, env, device,
                            ex_mod.resolve_dtype(spec.dtypes[0], device))
        self.cases = [replace(c, dtype=ex_mod.resolve_dtype(c.dtype, device)) for c in self.cases]

    @property
    def total(self) -> int:
        return len(self.points)

    def begin(self, ex: ex_mod.Executor, finished: set[str]) -> bool:
        # a line is done whichever of this run's GPUs measured it before
        self.todo = [c for c in self.cases if not any(ex.key(c, d) in finished for d in ex.devices)]
        self.todo_keys = {(c, d) for c in self.todo for d in ex.devices}
        if finished and len(self.todo) < len(self.cases):
            ex.say(f"resuming {ex.out}: {len(self.cases) - len(self.todo)} of {len(self.cases)} "
                   "lines already recorded (a point missing any of its lines is measured again)")
        if not self.todo:
            print(f"nothing to do: all {len(self.cases)} cases are in {ex.out} (use -o NEW.jsonl to "
                  "measure again)", file=sys.stderr)
            return False
        self.points = group_points(self.todo)
        for line in plan.warnings(self.todo, self.presets, ex.device):  # shown under -q too
            print(f"warning: {line}", file=sys.stderr, flush=True)
        self.preload = [self.presets[m] for m in dict.fromkeys(p.model for p in self.points)]
        self.backends = tuple({p.backend for p in self.points})
        return True

    def header(self) -> dict[str, Any]:
        shard = f"{self.shard.label} ({self.shard.how})" if self.shard else None
        return {"spec": self.spec.to_dict(), "shard": shard, **self.opts.extra_header}

    def drive(self, ex: ex_mod.Executor) -> None:
        spec, opts = self.spec, self.opts
        self.settings = ex_mod.Settings(reps=spec.reps, warmup=spec.warmup, timeout_s=spec.timeout_s,
                                        raw=spec.raw, budget_bytes=spec.memory_budget_bytes,
                                        telemetry=opts.telemetry, power_rate_hz=opts.power_rate_hz,
                                        profile_ops=opts.profile_ops,
                                        trace_dir=f"{ex.out}.traces" if opts.ops_trace else None)
        # the shortest context at which a series' prefill ended oom / killed, and why; the same per
        # (series, mode) for a decode: the longer contexts not yet started are skipped (not the
        # shorter ones, which --devices may deal after a longer one)
        self.failed: dict[tuple, tuple[int, str]] = {}
        self.failed_mode: dict[tuple, tuple[int, str]] = {}
        self.warned: set[tuple[str, str]] = set()
        self.lent = Lent()  # kernels and idle baselines found by earlier points, for later ones
        if len(ex.devices) > 1:
            return self._drive_devices(ex)
        for point in self.points:
            if self._failed_below(self.failed, point.series(), point):
                self._record(ex, point, ex.device, None)
            else:
                self._record(ex, point, ex.device, self._measure(ex, point, ex.device))

    def _drive_devices(self, ex: ex_mod.Executor) -> None:
        """--devices: points dealt to whichever GPU is free, the longest expected work first; a
        series' contexts in order where its longest may run out of memory (`ordered_series`: so an
        OOM still skips the longer ones), else side by side; one point at a time per autotune group
        until its first has ended (`kernel_detect.autotune_group`); lines written here, in the main
        thread, as points end."""
        from edgebench.execution.scheduler import run_on_devices
        from edgebench.models import kernel_detect
        from edgebench.sweep import estimate
        pre = self.presets

        def cost(p: Point) -> float:
            return sum(estimate.case_s(c, pre[p.model], self.spec.reps, self.spec.warmup)
                       for c in p.cases())

        def done(d) -> None:
            self._record(ex, d.item, d.device or ex.device, d.result)

        room = self.spec.memory_budget_bytes or min(
            (g.get("total_bytes") or 0 for g in ex.env.get("gpus") or []), default=0)
        ordered = ordered_series(self.points, pre, room)

        def series(p: Point) -> tuple:  # a series that cannot run out of memory: each point its own
            return p.series() if p.series() in ordered else (*p.series(), p.ctx)

        run_on_devices(self.points, ex.devices, lambda p, device, stop: self._measure(ex, p, device, stop),
                       cost=cost, series=series, on_result=done,
                       skip=lambda p: "skipped" if self._failed_below(self.failed, p.series(), p) else None,
                       warms=lambda p: kernel_detect.autotune_group(pre[p.model], p.backend, p.dtype))

    def _measure(self, ex: ex_mod.Executor, point: Point, device: str, stop: Any = None):
        """The point's worker runs on `device`: (decode modes asked, outcomes, wall seconds)."""
        modes = [m for m in point.decode_modes
                 if not self._failed_below(self.failed_mode, (point.series(), m), point)]
        measured = replace(point, decode_modes=tuple(modes))
        key = ex.key(point.cases()[0], device)
        # --timeout is per line: the point's worker gets it once for its prefill and once per mode
        first = replace(self.settings, timeout_s=self.settings.timeout_s and
                        self.settings.timeout_s * (1 + len(modes)))
        later = replace(first, profile_ops=False, trace_dir=None)  # run 1's profiles are the ones kept
        # kernels and idle baseline found once, reused by later points and runs (execution/lent.py)
        found = detection_key(point.to_dict(), ex.label_of(device))
        t0, outcomes = time.monotonic(), []
        for run in range(1, self.spec.runs + 1):
            name = [point.model, f"ctx{point.ctx}"] + ([f"run{run}"] if self.spec.runs > 1 else [])
            outcomes.append(ex.measure(measured, first if run == 1 else later, key, *name, key,
                                       device=device, stop=stop, kernels=self.lent.kernels(found),
                                       idle=self.lent.idle(device)))
            if run == 1 and (point.cases()[0], device) in self.todo_keys:
                self.lent.keep(outcomes[-1].result, key, found, device, started=t0)
            if _prefill_failed(outcomes[-1].result):
                break  # another run would end the same way
        return modes, outcomes, time.monotonic() - t0

    def _record(self, ex: ex_mod.Executor, point: Point, device: str, measured) -> None:
        """The point's lines (skipped when `measured` is not a `_measure` result), written."""
        series, pre, label = point.series(), self.presets[point.model], ex.label_of(device)
        cases = {c.decode_mode: c for c in point.cases()}
        recs = {c.decode_mode: {"type": "case", "run": ex.run_id, "key": ex.key(c, device), **c.to_dict(),
                                "family": pre.family, "device": label,
                                "beyond_trained_ctx": plan.beyond_trained(c.ctx, c.gen, pre)}
                for c in point.cases()}
        outcomes = []
        if not isinstance(measured, tuple):
            for rec in recs.values():
                rec.update(status="skipped",
                           reason=f"a shorter context ended {self._failed_below(self.failed, series, point)}")
        else:
            modes, outcomes, wall = measured
            prefill, decodes = point_lines([o.result for o in outcomes], modes)
            recs[None].update(prefill, wall_s=round(wall, 1), **ex.device_fields(device))
            for m in point.decode_modes:
                recs[m].update(decodes.get(m) or {"status": "skipped", "reason": "a shorter context "
                                                  f"ended {self._failed_below(self.failed_mode, (series, m), point)}"})
            kept = next((o.kept for o in outcomes if o.kept and o.result.get("status") != "ok"), None)
            for rec in recs.values():
                if kept and rec["status"] not in ("ok", "skipped"):
                    rec["worker_log"] = kept
            if recs[None]["status"] in ("oom", "killed"):  # a longer context would end the same way
                _note(self.failed, series, point.ctx, f"{recs[None]['status']} at {point.ctx} tokens "
                                                      f"({recs[None].get('reason')})")
            for m in modes:  # too slow is not "does not fit": a timed-out mode runs again longer
                if recs[m]["status"] in ("oom", "killed") and "timed out" not in str(recs[m].get("reason")):
                    _note(self.failed_mode, (series, m), point.ctx, f"{recs[m]['status']} at {point.ctx} "
                                                                   f"tokens ({recs[m].get('reason')})")
            for w in (w for o in outcomes for w in o.result.get("warnings") or []):
                if (point.model, w) not in self.warned:
                    self.warned.add((point.model, w))
                    ex.say(f"warning: {point.model}: {w}")
            for prof in (outcomes[0].result.get("ops") or []) if outcomes else []:  # the first run's
                mode = prof.get("decode_mode")
                ex.log.write({**prof, "key": recs[mode]["key"] if mode in recs else prof.get("key"),
                              "run": ex.run_id, "model": point.model, "ctx": point.ctx, "device": label})
        for mode, rec in recs.items():  # only the lines still to do (a resumed point's others stand)
            if (cases[mode], device) in self.todo_keys:
                ex.log.write(records.compact_case(rec))
                self.written.append(rec)
        ex.bar.advance(recs)
        for o in outcomes:
            ex.wlogs.show_tail(o.output, o.result.get("status"))

    @staticmethod
    def _failed_below(table: dict, key: tuple, point: Point) -> str | None:
        """Why `point` is skipped: a shorter context of its series (or mode: `key`) failed."""
        failed = table.get(key)
        return failed[1] if failed is not None and point.ctx > failed[0] else None

    def on_interrupt(self, ex: ex_mod.Executor, why: str) -> dict[str, Any]:
        n, left = len(self.written), len(self.todo) - len(self.written)
        ex.say(f"interrupted ({why}) after {n} of {len(self.todo)} lines; the log holds every "
               "finished point: rerun the same command to resume")
        return {"cases_recorded": n, "cases_left": left}


def _prefill_failed(result: dict[str, Any]) -> bool:
    return "prefill_ms" not in result and result.get("status") in ("oom", "killed")


def _note(table: dict, key: tuple, ctx: int, why: str) -> None:
    """Keep the shortest context at which `key` failed (with --devices a longer one may end first)."""
    if key not in table or ctx < table[key][0]:
        table[key] = (ctx, why)


def ordered_series(points: list[Point], presets: dict, room_bytes: int) -> set[tuple]:
    """The series whose contexts must run one after another on several GPUs (an OOM skips the longer
    ones): those whose longest point the memory model predicts above half of `room_bytes` (the
    memory budget, else the smallest GPU's memory), or cannot predict. The others cannot run out
    of memory: their points are dealt like independent ones (a 9-point default suite on two GPUs
    otherwise waits on its longest series)."""
    from edgebench.errors import UserError
    from edgebench.models import memory_model
    longest: dict[tuple, Point] = {}
    for p in points:
        if p.series() not in longest or p.ctx > longest[p.series()].ctx:
            longest[p.series()] = p
    out = set()
    for key, p in longest.items():
        try:
            need = memory_model.predict(presets[p.model], p.ctx, batch=p.batch, dtype=p.dtype, logits=p.logits,
                                        gen=p.gen, backend=p.backend)["total_bytes"]
        except (UserError, KeyError, ValueError):
            need = None
        if need is None or not room_bytes or need > room_bytes / 2:
            out.add(key)
    return out
