"""Run a sweep: spec -> plan -> one isolated worker per case -> one log line per case.

Everything that can be checked without loading a model is checked first (model names, context
limits, the log path, the memory budget), so bad input fails in seconds and loses nothing. The
parent process never initialises CUDA: the environment snapshot and every case run in workers. Each
record is appended and flushed as soon as its case ends; Ctrl-C or SIGTERM stops the sweep between
records, leaving a valid log that a rerun with the same output resumes.
"""
from __future__ import annotations

import contextlib
import os
import socket
import sys
from dataclasses import dataclass, field, replace
from typing import Any

from edgebench.logs import schema as records
from edgebench.logs.contracts import CaseRequest
from edgebench.errors import UserError
from edgebench.sweep.spec import Case, Spec

CASE_TARGET = "edgebench.measure.case_run:run_case"


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


def default_output(suite: str | None) -> str:
    return os.path.join("edgebench-logs", f"{socket.gethostname()}-{suite or 'sweep'}.jsonl")


def validate(spec: Spec, cases: list[Case], device: str | None = None) -> dict[str, Any]:
    """Resolve every model and check every case before anything loads (`edgebench.sweep.plan.check`: with a
    device, also what runs on CUDA only). Returns the presets."""
    from edgebench.sweep import plan
    return plan.check(spec, cases, device)


def dry_run(spec: Spec, shard: str | None = None, suite: str | None = None) -> str:
    """The plan as text (`edgebench.sweep.plan.describe`), checked as a run checks it, without loading a
    model, importing torch or starting a worker: the device class is the forced --device, else
    `plan.device_class`'s look at the system."""
    from edgebench.sweep import plan
    from edgebench.sweep import spec as specmod
    cases = spec.plan()
    if shard:
        cases = specmod.shard(cases, shard)
    device, how = plan.device_class(spec.device)
    if spec.device.startswith("cuda"):
        device = spec.device
    presets = validate(spec, cases, device)
    cases = [replace(c, dtype=resolve_dtype(c.dtype, device)) for c in cases]
    return plan.describe(spec, cases, presets, device, how, suite, spec.output or default_output(suite))


def check_output(path: str, wait_lock: bool = False) -> None:
    """Refuse, before any work, a log path that could not be appended to and read back, or that
    another process is writing (see `edgebench.logs.path`)."""
    from edgebench.logs import path as logpath
    logpath.check_path(path, wait=wait_lock)


def resolve_device(spec_device: str, env: dict) -> str:
    gpus = env.get("gpus") or []
    if spec_device == "auto":
        return "cuda:0" if gpus else "cpu"
    if spec_device.startswith("cuda"):
        idx = int(spec_device.split(":")[1]) if ":" in spec_device else 0
        if idx >= len(gpus):
            raise UserError(f"device {spec_device} is not here ({len(gpus)} CUDA GPUs visible); "
                            "see edgebench env")
        return f"cuda:{idx}"
    return "cpu"


def resolve_dtype(dtype: str, device: str) -> str:
    if dtype == "auto":
        return "bfloat16" if device.startswith("cuda") else "float32"
    return dtype


def run(spec: Spec, opts: RunOptions, suite: str | None = None,
        env: dict | None = None) -> tuple[str, list[dict]]:
    """Run the sweep; returns (log path, the case records written by this invocation)."""
    from edgebench.execution import isolate
    from edgebench.sweep import spec as specmod
    cases = spec.plan()
    if opts.shard:
        cases = specmod.shard(cases, opts.shard)
    presets = validate(spec, cases, None if spec.device == "auto" else spec.device)
    out = spec.output or default_output(suite)
    check_output(out, opts.wait_lock)
    say = (lambda *a: None) if opts.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))

    env = env or snapshot_env()
    device = resolve_device(spec.device, env)
    device_name = env["gpus"][int(device.split(":")[1])]["name"] if device.startswith("cuda") \
        else f"CPU ({env['host']['machine']})"
    if spec.device == "auto":
        validate(spec, cases, device)  # what the device found here can run
    if spec.memory_budget_bytes:
        _check_budget(spec, presets, env, device)

    from edgebench.execution import forkserver as zygotes
    from edgebench.logs.writer import LogWriter
    log = LogWriter(out, wait=opts.wait_lock)  # locked from here to the end of the sweep
    try:
        done = log.finished_keys()
        cases = [replace(c, dtype=resolve_dtype(c.dtype, device)) for c in cases]
        todo = [c for c in cases if _key(c, device_name) not in done]
        if done and len(todo) < len(cases):
            say(f"resuming {out}: {len(cases) - len(todo)} of {len(cases)} cases already recorded")
        if not todo:
            print(f"nothing to do: all {len(cases)} cases are in {out} (use -o NEW.jsonl to measure again)",
                  file=sys.stderr)
            log.close()
            return out, []

        from edgebench.sweep import plan
        for line in plan.warnings(todo, presets, device):  # shown under -q too: they say what records mean
            print(f"warning: {line}", file=sys.stderr, flush=True)
        run_id = records.new_run_id()
        written: list[dict] = []
        from edgebench.execution.worker_output import WorkerLogs
        wlogs = WorkerLogs(out, say, opts.verbose)
        preload_out = None if opts.verbose else wlogs.path("preload")
        zyg = zygotes.open_for([presets[m] for m in dict.fromkeys(c.model for c in todo)],
                               tuple({c.backend for c in todo}), output=preload_out)
    except BaseException:
        log.close()
        raise
    with isolate.sigterm_as_interrupt(), log, (zyg or contextlib.nullcontext()):
        log.write({"type": "run", "run": run_id, "t": records.utc_now(), "edgebench": env["edgebench"],
                   "argv": sys.argv[1:], "device": device_name, "env": env, "spec": spec.to_dict(),
                   "shard": opts.shard, "workers": zygotes.describe(zyg), **opts.extra_header})
        failed: dict[tuple, str] = {}
        warned: set[tuple[str, str]] = set()
        from edgebench.execution.progress import Progress
        with Progress(len(todo), enabled=not opts.quiet) as bar, \
                _interrupt_record(log, run_id, written, todo, say):
            for case in todo:
                pre = presets[case.model]
                series = (case.model, case.backend, case.dtype, case.decode_mode, case.logits,
                          case.attn, case.batch, case.gen)
                rec = {"type": "case", "run": run_id, "key": _key(case, device_name), **case.to_dict(),
                       "family": pre.family, "device": device_name,
                       "beyond_trained_ctx": plan.beyond_trained(case.ctx, case.gen, pre)}
                worker_out = None
                if series in failed:
                    rec.update(status="skipped", reason=f"a shorter context ended {failed[series]}")
                else:
                    bar.show(case.label())
                    worker_out = wlogs.path(case.model, f"ctx{case.ctx}", case.decode_mode, rec["key"])
                    payload = CaseRequest(
                        case=case.to_dict(), device=device, reps=spec.reps, warmup=spec.warmup,
                        raw=spec.raw, budget_bytes=spec.memory_budget_bytes,
                        telemetry=opts.telemetry, power_rate_hz=opts.power_rate_hz,
                        profile_ops=opts.profile_ops,
                        trace_dir=f"{out}.traces" if opts.ops_trace else None,
                        key=rec["key"]).to_payload()
                    result = isolate.run_isolated(CASE_TARGET, payload, timeout_s=spec.timeout_s,
                                                  zygote=zyg, output=worker_out, echo=wlogs.echo)
                    rec.update(result)
                    rec.setdefault("reason", None)
                    worker_log = wlogs.keep(worker_out)
                    if worker_log and rec["status"] != "ok":
                        rec["worker_log"] = worker_log
                    if rec["status"] in ("oom", "killed"):  # a longer context would end the same way
                        failed[series] = f"{rec['status']} at {case.ctx} tokens ({rec.get('reason')})"
                    for w in rec.pop("warnings", None) or []:
                        if (case.model, w) not in warned:
                            warned.add((case.model, w))
                            say(f"warning: {case.model}: {w}")
                for o in rec.pop("ops", None) or []:
                    log.write({**o, "run": run_id, "model": case.model, "ctx": case.ctx,
                               "decode_mode": case.decode_mode, "device": device_name})
                log.write(records.compact_case(rec))
                written.append(rec)
                bar.advance(rec)
                if worker_out is not None:
                    wlogs.show_tail(worker_out, rec["status"])
    wlogs.finish(preload_out)
    return out, written


@contextlib.contextmanager
def _interrupt_record(log, run_id: str, written: list[dict], todo: list[Case], say):
    """On Ctrl-C or SIGTERM: an `interrupted` record in the log and a line saying how to resume."""
    try:
        yield
    except KeyboardInterrupt as exc:
        why = str(exc) or "received SIGINT (Ctrl-C)"
        log.write({"type": "interrupted", "run": run_id, "t": records.utc_now(), "reason": why,
                   "cases_recorded": len(written), "cases_left": len(todo) - len(written)})
        say(f"interrupted ({why}) after {len(written)} of {len(todo)} cases; the log holds every "
            "finished case: rerun the same command to resume")
        raise


def snapshot_env() -> dict:
    """The environment, read in a worker so this process never initialises CUDA."""
    import tempfile

    from edgebench.execution import isolate
    from edgebench.execution import worker_output as workerlog
    with tempfile.TemporaryDirectory(prefix="edgebench-env-") as tmp:
        output = os.path.join(tmp, "worker.txt")  # library notices stay off the terminal
        env = isolate.run_isolated("edgebench.telemetry.environment:snapshot_for_run", {"deep": True}, timeout_s=300,
                                   output=output)
        if env.pop("status", None) != "ok":
            lines = "".join(f"\n  | {line}" for line in workerlog.tail(output))
            raise UserError(f"could not read the environment in a worker: {env.get('reason')}{lines}")
    return env


def _key(case: Case, device: str) -> str:
    return records.case_key(case.to_dict(), device)


def _check_budget(spec: Spec, presets: dict, env: dict, device: str) -> None:
    from edgebench.models import memory_model
    from edgebench.execution.budget import check_budget
    total = env["gpus"][int(device.split(":")[1])]["total_bytes"] if device.startswith("cuda") else None
    if total is None:
        raise UserError("--memory-budget applies to CUDA devices; this run is on the CPU")
    for name, pre in presets.items():
        weights = memory_model.predict(pre, 1, dtype=resolve_dtype(spec.dtypes[0], device))["weights_bytes"]
        try:
            check_budget(spec.memory_budget_bytes, total, weights)
        except UserError as exc:
            raise UserError(f"{name}: {exc}") from None
