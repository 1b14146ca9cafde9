"""The grid sweep of `edgebench run`: spec -> cases in order -> one log line per case.

Everything that can be checked without loading a model is checked first (model names, context
limits, the log path, the memory budget), so bad input fails in seconds and loses nothing. Cases run
in the spec's order (contexts ascending within a series); after an oom or a kill, the longer contexts
of that series are recorded as skipped. A rerun with the same output resumes: cases already in the log
are not measured again.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from typing import Any

from edgebench.execution import executor as ex_mod
from edgebench.logs import schema as records
from edgebench.sweep import plan
from edgebench.sweep.spec import Case, Spec


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

    def __post_init__(self) -> None:
        from edgebench.sweep.spec import check_number
        self.power_rate_hz = check_number(self.power_rate_hz, "--power-rate", 0.1, 10_000, "Hz")


def validate(spec: Spec, cases: list[Case], device: str | None = None) -> dict[str, Any]:
    """Resolve every model and check every case before anything loads (`edgebench.sweep.plan.check`:
    with a device, also what runs on CUDA only). Returns the presets."""
    return plan.check(spec, cases, device)


def _cases(spec: Spec, shard: str | None) -> list[Case]:
    from edgebench.sweep import spec as specmod
    cases = spec.plan()
    return specmod.shard(cases, shard) if shard else cases


def dry_run(spec: Spec, shard: str | None = None, suite: str | None = None) -> str:
    """The plan as text (`edgebench.sweep.plan.describe`), checked as a run checks it, without loading a
    model, importing torch or starting a worker: the device class is the forced --device, else
    `plan.device_class`'s look at the system."""
    cases = _cases(spec, shard)
    device, how = plan.device_class(spec.device)
    if spec.device.startswith("cuda"):
        device = spec.device
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
    ex.prepare(spec.device, env, planner.check_device)
    ex.execute(planner)
    return ex.out, planner.written


class GridPlanner:
    """The cases of a spec, in order; see the module docstring."""
    counting = "case"

    def __init__(self, spec: Spec, opts: RunOptions):
        self.spec, self.opts = spec, opts
        self.cases = _cases(spec, opts.shard)
        self.presets = validate(spec, self.cases, None if spec.device == "auto" else spec.device)
        self.preload: list = []
        self.backends: tuple[str, ...] = ()
        self.todo: list[Case] = []
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
        return len(self.todo)

    def begin(self, ex: ex_mod.Executor, finished: set[str]) -> bool:
        self.todo = [c for c in self.cases if ex.key(c) not in finished]
        if finished and len(self.todo) < len(self.cases):
            ex.say(f"resuming {ex.out}: {len(self.cases) - len(self.todo)} of {len(self.cases)} "
                   "cases already recorded")
        if not self.todo:
            print(f"nothing to do: all {len(self.cases)} cases are in {ex.out} (use -o NEW.jsonl to "
                  "measure again)", file=sys.stderr)
            return False
        for line in plan.warnings(self.todo, self.presets, ex.device):  # shown under -q too
            print(f"warning: {line}", file=sys.stderr, flush=True)
        self.preload = [self.presets[m] for m in dict.fromkeys(c.model for c in self.todo)]
        self.backends = tuple({c.backend for c in self.todo})
        return True

    def header(self) -> dict[str, Any]:
        return {"spec": self.spec.to_dict(), "shard": self.opts.shard, **self.opts.extra_header}

    def drive(self, ex: ex_mod.Executor) -> None:
        spec, opts = self.spec, self.opts
        settings = ex_mod.Settings(reps=spec.reps, warmup=spec.warmup, timeout_s=spec.timeout_s,
                                   raw=spec.raw, budget_bytes=spec.memory_budget_bytes,
                                   telemetry=opts.telemetry, power_rate_hz=opts.power_rate_hz,
                                   profile_ops=opts.profile_ops,
                                   trace_dir=f"{ex.out}.traces" if opts.ops_trace else None)
        failed: dict[tuple, str] = {}
        warned: set[tuple[str, str]] = set()
        for case in self.todo:
            pre = self.presets[case.model]
            series = (case.model, case.backend, case.dtype, case.decode_mode, case.logits,
                      case.attn, case.batch, case.gen)
            rec = {"type": "case", "run": ex.run_id, "key": ex.key(case), **case.to_dict(),
                   "family": pre.family, "device": ex.label,
                   "beyond_trained_ctx": plan.beyond_trained(case.ctx, case.gen, pre)}
            done = None
            if series in failed:
                rec.update(status="skipped", reason=f"a shorter context ended {failed[series]}")
            else:
                done = ex.measure(case, settings, rec["key"], case.model, f"ctx{case.ctx}",
                                  case.decode_mode, rec["key"])
                rec.update(done.result)
                rec.setdefault("reason", None)
                if done.kept and rec["status"] != "ok":
                    rec["worker_log"] = done.kept
                if rec["status"] in ("oom", "killed"):  # a longer context would end the same way
                    failed[series] = f"{rec['status']} at {case.ctx} tokens ({rec.get('reason')})"
                for w in rec.pop("warnings", None) or []:
                    if (case.model, w) not in warned:
                        warned.add((case.model, w))
                        ex.say(f"warning: {case.model}: {w}")
            for o in rec.pop("ops", None) or []:
                ex.log.write({**o, "run": ex.run_id, "model": case.model, "ctx": case.ctx,
                              "decode_mode": case.decode_mode, "device": ex.label})
            ex.log.write(records.compact_case(rec))
            self.written.append(rec)
            ex.bar.advance(rec)
            if done is not None:
                ex.wlogs.show_tail(done.output, rec["status"])

    def on_interrupt(self, ex: ex_mod.Executor, why: str) -> dict[str, Any]:
        n, left = len(self.written), len(self.todo) - len(self.written)
        ex.say(f"interrupted ({why}) after {n} of {len(self.todo)} cases; the log holds every "
               "finished case: rerun the same command to resume")
        return {"cases_recorded": n, "cases_left": left}
