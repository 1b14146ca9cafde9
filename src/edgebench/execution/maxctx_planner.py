"""The maxctx planner: per model and logits mode, growth then bisection (`maxctx_search.search`), one
probe point at a time through the executor, the next chosen from the last result.

Each probe is one isolated prefill (optionally prefill + N decode tokens); an out-of-memory error or
a SIGKILL from the OOM killer is a failing probe, never a crash. The search starts near half the
analytic model's prediction, so it usually needs log2(range / resolution) + a few probes.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from edgebench.errors import UserError
from edgebench.execution import executor as ex_mod
from edgebench.execution import maxctx_search as search_mod
from edgebench.models import memory_model
from edgebench.sweep import plan
from edgebench.execution.point_lines import point_lines
from edgebench.sweep.spec import Point, Spec
from edgebench.sweep.units import format_bytes, parse_count

# The default longest context a search tries: past every model's trained length (flagged).
SEARCH_LIMIT = 1 << 20


@dataclass
class MaxctxOptions:
    models: list[str]
    modes: list[str]  # logits modes: last, all
    resolution: int
    backend: str = "hf"
    dtype: str = "auto"
    gen: int = 0
    limit: str | None = None  # as given (--limit), parsed per model by `limit_for`
    strict_ctx: bool = False
    budget: int | None = None
    device: str = "auto"
    devices: str | None = None  # --devices: searches dealt to several GPUs of this host
    timeout_s: float = 900
    header_spec: dict[str, Any] = field(default_factory=dict)  # the run header's `spec`


def limit_for(name: str, pre, gen: int, limit: str | None, strict_ctx: bool) -> int:
    """The longest context to try: --limit, else 1M; under --strict-ctx the trained length - gen."""
    if not strict_ctx:
        return parse_count(limit) if limit else SEARCH_LIMIT
    trained = pre.max_ctx - gen
    if trained < 1:
        raise UserError(f"{name}: -n {gen} leaves no context within its {pre.max_ctx}-token "
                        "trained length (--strict-ctx); lower -n or drop --strict-ctx")
    if limit and parse_count(limit) > trained:
        raise UserError(f"{name}: --limit {limit} + {gen} generated tokens exceeds its "
                        f"{pre.max_ctx}-token limit (its trained length; --strict-ctx refuses it): "
                        f"lower --limit to {trained} or less, or drop --strict-ctx")
    return parse_count(limit) if limit else trained


def start_ctx(pre, mode, dtype, backend, cap, limit, resolution) -> int:
    """Half the analytic prediction of the longest fitting context (never below the resolution)."""
    if not cap:
        return min(resolution, limit)
    fit = memory_model.longest_fit(pre, cap, dtype=dtype, logits=mode, lo=resolution, hi=limit,
                                   resolution=resolution, backend=backend)
    if fit is None:
        return min(resolution, limit)
    return max(resolution, min(limit, (fit // 2) // resolution * resolution))


def mem_note(mem: dict | None) -> str:
    """`; at max: peak 19.3 GiB allocated, 22.9 GiB reserved (model: 17.0 GiB)` where measured."""
    if not mem or mem.get("peak_allocated_bytes") is None:
        return ""
    parts = [f"peak {format_bytes(mem['peak_allocated_bytes'])} allocated"]
    if mem.get("peak_reserved_bytes") is not None:
        parts.append(f"{format_bytes(mem['peak_reserved_bytes'])} reserved")
    model = f" (model: {format_bytes(mem['predicted_bytes'])})" if mem.get("predicted_bytes") else ""
    return "; at max: " + ", ".join(parts) + model


class MaxctxPlanner:
    """One search per model and logits mode; see the module docstring."""
    counting = "maxctx"
    total = 0  # no progress bar: each probe prints its line

    def __init__(self, opts: MaxctxOptions):
        from edgebench.models import catalog
        self.opts = o = opts
        self.presets = {m: catalog.resolve(m) for m in o.models}
        for name, pre in self.presets.items():  # before any probe: the start and budget predict per backend
            if o.backend not in pre.backends:
                raise UserError(f"{name} has no {o.backend} backend (it has: {', '.join(pre.backends)})")
        self.limits = {name: limit_for(name, pre, o.gen, o.limit, o.strict_ctx)
                       for name, pre in self.presets.items()}
        self.spec = Spec(models=o.models, backends=o.backend, dtypes=o.dtype, ctx=o.resolution, gen=o.gen,
                         logits=o.modes, device=o.device, memory_budget_bytes=o.budget)
        self.preload, self.backends = list(self.presets.values()), (o.backend,)
        self.dtype = o.dtype

    def warnings(self) -> list[str]:
        """One line per model whose search may run past its trained length."""
        return [f"{name}: the search may run past its trained length of {pre.max_ctx} tokens (up to "
                f"{self.limits[name]}; random weights: timing and memory stay meaningful, outputs do "
                f"not; --strict-ctx stops it there)"
                for name, pre in self.presets.items() if plan.beyond_trained(self.limits[name], self.opts.gen, pre)]

    def check(self, device: str | None) -> None:
        plan.check(self.spec, self.spec.plan(), device)

    def check_device(self, device: str, env: dict) -> None:
        if self.opts.device == "auto":
            self.check(device)
        self.dtype = ex_mod.resolve_dtype(self.opts.dtype, device)
        for line in self.warnings():
            print(f"warning: {line}", file=sys.stderr, flush=True)
        ex_mod.check_budget(self.opts.budget, self.presets, env, device, self.dtype, self.opts.backend)

    def begin(self, ex: ex_mod.Executor, finished: set[str]) -> bool:
        return True

    def header(self) -> dict[str, Any]:
        return {"spec": self.opts.header_spec}

    def searches(self) -> list[tuple]:
        """(this planner, model, logits mode) of each search it makes."""
        return [(self, name, mode) for name in self.presets for mode in self.opts.modes]

    def drive(self, ex: ex_mod.Executor) -> None:
        drive_searches(ex, self.searches())

    def _cap(self, ex: ex_mod.Executor, device: str) -> int | None:
        """The memory a search on `device` may use: the budget, else that GPU's memory."""
        gpu = ex.env["gpus"][int(device.split(":")[1])] if device.startswith("cuda") else None
        return self.opts.budget or (gpu["total_bytes"] if gpu else None)

    def _search(self, ex: ex_mod.Executor, name: str, mode: str, device: str, stop: Any = None):
        """One search on `device`: (its maxctx record, the interruption that ended it or None). Run
        in the main thread, or with --devices in the device's thread (`stop` set to end it)."""
        o, limit, pre = self.opts, self.limits[name], self.presets[name]
        # reps 0: the cold prefill alone; whether it fits is all a probe asks
        settings = ex_mod.Settings(reps=0, warmup=0, timeout_s=o.timeout_s, budget_bytes=o.budget,
                                   telemetry=False)
        start = start_ctx(pre, mode, self.dtype, o.backend, self._cap(ex, device), limit, o.resolution)
        mems: dict[int, dict] = {}  # ctx -> the passing probe's measured memory
        trail: list[tuple[int, str]] = []
        finished: list[tuple[int, str]] = []  # = trail, plus a probe printed but not yet in it

        def probe(ctx: int) -> str:
            point = Point(model=name, backend=o.backend, dtype=self.dtype, ctx=ctx, gen=o.gen,
                          batch=1, logits=mode, attn="sdpa", decode_modes=("eager",) if o.gen else ())
            done = ex.measure(point, settings, ex.key(point.cases()[0], device), "maxctx", name, mode,
                              f"ctx{ctx}", device=device, stop=stop)
            r = _probe_result(done.result, point.decode_modes)
            if r["status"] == "ok" and r.get("mem"):
                mems[ctx] = r["mem"]
            # too slow is not "does not fit": a timeout stops the search
            too_slow = r["status"] == "killed" and "timed out" in str(r.get("reason"))
            finished.append((ctx, "timeout" if too_slow else r["status"]))
            ex.say(f"  {name} [{mode}] ctx={ctx}: {r['status']}"
                   + (f" ({r.get('reason')})" if r["status"] != "ok" else ""))
            ex.wlogs.show_tail(done.output, r["status"])
            return finished[-1][1]

        t0 = time.monotonic()
        interrupted = None
        try:
            res = search_mod.search(probe, start, limit, o.resolution, trail)
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM (isolate.Terminated): keep the probes
            trail.extend(finished[len(trail):])
            res = search_mod.partial(trail, o.resolution, f"interrupted ({str(exc) or 'Ctrl-C'})")
            interrupted = exc
        rec = {"type": "maxctx", "run": ex.run_id, "model": name, "family": pre.family, "mode": mode,
               "device": ex.label_of(device), **ex.device_fields(device), "backend": o.backend,
               "dtype": self.dtype,
               "gen": o.gen, "budget_bytes": o.budget, "start_ctx": start, "limit_ctx": limit,
               "wall_s": round(time.monotonic() - t0, 1), **res.to_record()}
        if res.max_ok in mems:  # where the memory went at the longest context that ran
            rec["mem_at_max_ok"] = mems[res.max_ok]
        if res.max_ok and plan.beyond_trained(res.max_ok, o.gen, pre):
            rec["beyond_trained_ctx"] = True
        return rec, interrupted

    def _write(self, ex: ex_mod.Executor, rec: dict[str, Any], interrupted: BaseException | None) -> None:
        """A search's record into the log, its line on the terminal; its interruption raised again."""
        ex.log.write(rec)
        o = self.opts
        budget = f", budget {format_bytes(o.budget)}" if o.budget else ""
        print(f"{rec['model']} [{rec['mode']}{budget}]: max context {rec['max_ok_ctx']} (first failing "
              f"{rec['min_fail_ctx']}{': ' + rec['limited_by'] if rec.get('limited_by') else ''}) after "
              f"{rec['probes']} probes, {rec['wall_s']} s"
              + (f"; stopped: {rec['stopped']}" if rec.get("stopped") else "")
              + mem_note(rec.get("mem_at_max_ok")))
        if interrupted is not None:
            raise interrupted

    def on_interrupt(self, ex: ex_mod.Executor, why: str) -> None:
        return None  # the interrupted search's own record says so (`stopped`)

    def dry_run(self, out: str) -> str:
        """The searches a run would make, without loading anything or starting a worker."""
        o = self.opts
        device, how = plan.device_class(o.device)
        if o.device.startswith("cuda"):
            device = o.device
        self.check(device)
        if o.budget:
            start = "near half the memory model's fit under the budget"
        elif device.startswith("cuda"):
            start = "near half the memory model's fit in the device's memory (read when the search runs)"
        else:
            start = f"{o.resolution} tokens"
        lines = [f"dry run: maxctx on {device} ({how}); nothing is loaded or measured"]
        for name in self.presets:
            limit = self.limits[name]
            first = min(o.resolution, limit)  # the worst case: the search starts at the resolution
            bound = math.ceil(math.log2(max(limit / first, 1))) + 1 + \
                math.ceil(math.log2(max(limit / o.resolution, 1)))
            for mode in o.modes:
                lines.append(f"  {name} [{mode}]: contexts up to {limit} at {o.resolution}-token "
                             f"resolution, prefill + {o.gen} decode tokens per probe, at most {bound} "
                             f"probes; start: {start}")
        lines += [f"warning: {x}" for x in self.warnings()]
        lines.append(f"log: {out}")
        return "\n".join(lines)


def drive_searches(ex: ex_mod.Executor, searches: list[tuple]) -> None:
    """Run `searches` ((planner, model, mode) each): in order on one device; with --devices one per GPU
    at a time, the biggest models first (a search's probes are sequential)."""
    if len(ex.devices) == 1:
        for planner, name, mode in searches:
            planner._write(ex, *planner._search(ex, name, mode, ex.device))
        return
    from edgebench.execution.scheduler import run_on_devices
    from edgebench.sweep import cost
    run_on_devices(searches, ex.devices, lambda s, device, stop: s[0]._search(ex, *s[1:], device, stop),
                   cost=lambda s: float(cost.params(s[0].presets[s[1]])),
                   on_result=lambda d: d.item[0]._write(ex, *d.result))


class TablesPlanner:
    """Several max-context tables (a suite's `[[maxctx]]`: each its own backend, dtype, budget ...) as
    one executor run: their searches dealt together, so that with --devices no GPU waits for the last
    search of one table before the next table starts. Each record names its backend and dtype; the
    run header's spec lists every table (`maxctx_tables`)."""
    counting = "maxctx"
    total = 0

    def __init__(self, planners: list[MaxctxPlanner], header: dict[str, Any]):
        self.planners = planners
        self.preload = list(dict.fromkeys(p for pl in planners for p in pl.preload))
        self.backends = tuple(dict.fromkeys(b for pl in planners for b in pl.backends))
        self._header = header

    def check_device(self, device: str, env: dict) -> None:
        for planner in self.planners:
            planner.check_device(device, env)

    def begin(self, ex: ex_mod.Executor, finished: set[str]) -> bool:
        return True

    def header(self) -> dict[str, Any]:
        return {"spec": {"maxctx_tables": [pl.opts.header_spec.get("maxctx") for pl in self.planners],
                         **self._header}}

    def drive(self, ex: ex_mod.Executor) -> None:
        drive_searches(ex, [s for planner in self.planners for s in planner.searches()])

    def on_interrupt(self, ex: ex_mod.Executor, why: str) -> None:
        return None  # each interrupted search's own record says so (`stopped`)


def _probe_result(result: dict[str, Any], modes: tuple[str, ...]) -> dict[str, Any]:
    """A probe's status, reason and memory: the first of its prefill and decode that did not end
    ok (a decode that ran out of memory fails the probe though the worker ended cleanly)."""
    prefill, decodes = point_lines([result], modes)
    worst = next((d for d in (prefill, *decodes.values()) if d["status"] != "ok"), prefill)
    mem = dict(prefill.get("mem") or {})
    for d in decodes.values():
        peak = (d.get("mem") or {}).get("decode_peak_bytes")
        if peak is not None:
            mem["decode_peak_bytes"] = max(peak, mem.get("decode_peak_bytes", 0))
    return {"status": worst["status"], "reason": worst.get("reason"), "mem": mem or None}
