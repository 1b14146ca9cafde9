"""`edgebench maxctx`: the longest context each model can take on this device (or under a budget).

Each probe is one isolated prefill (optionally prefill + N decode tokens); an out-of-memory error or
a SIGKILL from the OOM killer is a failing probe, never a crash. The search starts near half the
analytic model's prediction, so it usually needs log2(range / resolution) + a few probes.
"""
from __future__ import annotations

import argparse

HELP = "find the longest context that completes prefill (+ optional decode) by growth then bisection"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--model", dest="models", required=True, metavar="LIST",
                   help="model presets or local dirs, comma-separated")
    p.add_argument("-n", "--gen", type=int, default=0, help="also decode this many tokens per probe")
    p.add_argument("--logits", default="last", help="logits kept at prefill: last, all, or last,all")
    p.add_argument("--resolution", default="1k", help="stop when pass and fail are this close (tokens)")
    p.add_argument("--limit", default=None, help="largest context to try (default: 1M tokens; with "
                   "--strict-ctx the model's trained length minus -n)")
    p.add_argument("--strict-ctx", action="store_true", help="stay within each model's trained length; "
                   "by default the search runs past it with a warning (random weights: timing and "
                   "memory stay meaningful)")
    p.add_argument("--dry-run", action="store_true", help="print each search's range and most "
                   "probes, and exit: nothing is loaded, no worker starts")
    p.add_argument("--memory-budget", default=None, metavar="SIZE", help="cap device memory, e.g. 24GiB")
    p.add_argument("-t", "--dtype", default="auto", help="dtype (auto: bfloat16 on GPU, float32 on CPU)")
    p.add_argument("--backend", default="hf", help="hf or mamba_ssm")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--timeout", type=float, default=900, help="seconds after which a probe is killed")
    p.add_argument("-o", "--output", default=None, help="log to append the results to (*.jsonl or *.jsonl.gz)")
    p.add_argument("--wait-lock", action="store_true",
                   help="if another process is writing the log, wait for it instead of refusing")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="stream each probe's worker output live; by default it goes to LOG.workers/ "
                        "beside the log and a failed probe prints its last lines")


def main(args: argparse.Namespace) -> int:
    import contextlib
    import sys
    import time

    from edgebench.execution import isolate
    from edgebench.execution import maxctx_search as maxctx
    from edgebench.sweep import plan
    from edgebench.logs import schema as records
    from edgebench.execution import runner
    from edgebench.models import memory_model
    from edgebench.errors import UserError
    from edgebench.models import catalog
    from edgebench.logs.writer import LogWriter
    from edgebench.sweep.units import format_bytes, parse_count, parse_size
    from edgebench.sweep.spec import Spec, check_timeout

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    presets = {m: catalog.resolve(m) for m in models}
    for name, pre in presets.items():  # before any probe: the start and the budget check predict per backend
        if args.backend not in pre.backends:
            raise UserError(f"{name} has no {args.backend} backend (it has: {', '.join(pre.backends)})")
    modes = [x.strip() for x in args.logits.split(",")]
    if any(x not in ("last", "all") for x in modes):
        raise UserError(f"--logits takes last, all or last,all, not {args.logits!r}")
    resolution = parse_count(args.resolution)
    budget = parse_size(args.memory_budget) if args.memory_budget else None
    timeout = check_timeout(args.timeout, "--timeout")
    out = args.output or runner.default_output("maxctx")
    limits = {name: _limit(name, pre, args, parse_count) for name, pre in presets.items()}
    probes_spec = Spec(models=models, backends=args.backend, dtypes=args.dtype, ctx=resolution,
                       gen=args.gen, logits=modes, device=args.device, memory_budget_bytes=budget)
    if args.dry_run:
        print(_dry_run(args, probes_spec, presets, limits, resolution, budget, out))
        return 0
    runner.validate(probes_spec, probes_spec.plan(), None if args.device == "auto" else args.device)
    runner.check_output(out, args.wait_lock)
    from edgebench.telemetry import stack
    stack.require_runnable()  # torch installed, and a transformers that accepts it: else the fix
    env = runner.snapshot_env()
    device = runner.resolve_device(args.device, env)
    if args.device == "auto":
        runner.validate(probes_spec, probes_spec.plan(), device)
    dtype = runner.resolve_dtype(args.dtype, device)
    for line in _warnings(presets, limits, args.gen):
        print(f"warning: {line}", file=sys.stderr, flush=True)
    total = env["gpus"][int(device.split(":")[1])]["total_bytes"] if device.startswith("cuda") else None
    if budget and not device.startswith("cuda"):
        raise UserError("--memory-budget caps a CUDA device's memory; this search runs on the CPU "
                        "(drop --memory-budget, or run where `edgebench env` shows a GPU)")
    if budget:
        from edgebench.execution.budget import check_budget
        for name, pre in presets.items():
            try:
                check_budget(budget, total, memory_model.predict(pre, 1, dtype=dtype,
                                                                  backend=args.backend)["weights_bytes"])
            except UserError as exc:
                raise UserError(f"{name}: {exc}") from None
    cap = budget or total
    run_id = records.new_run_id()
    from edgebench.execution import forkserver as zygotes
    from edgebench.execution.worker_output import WorkerLogs
    say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    wlogs = WorkerLogs(out, say, args.verbose)
    preload_out = None if args.verbose else wlogs.path("preload")
    log = LogWriter(out, args.wait_lock, "maxctx")  # locked from here to the end of the search
    try:
        zyg = zygotes.open_for(list(presets.values()), (args.backend,),
                               output=preload_out)
    except BaseException:
        log.close()
        raise
    with isolate.sigterm_as_interrupt(), log, (zyg or contextlib.nullcontext()):
        log.write({"type": "run", "run": run_id, "t": records.utc_now(), "edgebench": env["edgebench"],
                   "argv": sys.argv[1:], "env": env, "spec": {"maxctx": vars(args) | {"_main": None}},
                   "workers": zygotes.describe(zyg)})
        for name, pre in presets.items():
            limit = limits[name]
            for mode in modes:
                start = _start(pre, mode, dtype, args.backend, cap, limit, resolution, memory_model)
                mems: dict[int, dict] = {}  # ctx -> the passing probe's measured memory

                def probe(ctx: int) -> str:
                    payload = {"case": {"model": name, "backend": args.backend, "dtype": dtype, "ctx": ctx,
                                        "gen": args.gen, "batch": 1, "decode_mode": "eager", "logits": mode,
                                        "attn": "sdpa"},
                               # reps 0: the cold prefill alone; whether it fits is all a probe asks
                               "device": device, "reps": 0, "warmup": 0, "budget_bytes": budget,
                               "telemetry": False}
                    worker_out = wlogs.path("maxctx", name, mode, f"ctx{ctx}")
                    r = isolate.run_isolated(runner.CASE_TARGET, payload, timeout_s=timeout, zygote=zyg,
                                             output=worker_out, echo=wlogs.echo)
                    wlogs.keep(worker_out)
                    if r["status"] == "ok" and r.get("mem"):
                        mems[ctx] = r["mem"]
                    # too slow is not "does not fit": a timeout stops the search
                    too_slow = r["status"] == "killed" and "timed out" in str(r.get("reason"))
                    finished.append((ctx, "timeout" if too_slow else r["status"]))
                    say(f"  {name} [{mode}] ctx={ctx}: {r['status']}"
                        + (f" ({r.get('reason')})" if r["status"] != "ok" else ""))
                    wlogs.show_tail(worker_out, r["status"])
                    return finished[-1][1]

                t0 = time.monotonic()
                trail: list[tuple[int, str]] = []
                finished: list[tuple[int, str]] = []  # = trail, plus a probe printed but not yet in it
                try:
                    res = maxctx.search(probe, start, limit, resolution, trail)
                except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM (isolate.Terminated): keep the probes
                    trail.extend(finished[len(trail):])
                    res = maxctx.partial(trail, resolution, f"interrupted ({str(exc) or 'Ctrl-C'})")
                    interrupted = exc
                else:
                    interrupted = None
                rec = {"type": "maxctx", "run": run_id, "model": name, "family": pre.family, "mode": mode,
                       "device": env["gpus"][0]["name"] if device.startswith("cuda") else "CPU",
                       "dtype": dtype, "gen": args.gen, "budget_bytes": budget, "start_ctx": start,
                       "limit_ctx": limit, "wall_s": round(time.monotonic() - t0, 1), **res.to_record()}
                if res.max_ok in mems:  # where the memory went at the longest context that ran
                    rec["mem_at_max_ok"] = mems[res.max_ok]
                if res.max_ok and plan.beyond_trained(res.max_ok, args.gen, pre):
                    rec["beyond_trained_ctx"] = True
                log.write(rec)
                print(f"{name} [{mode}{', budget ' + format_bytes(budget) if budget else ''}]: max context "
                      f"{res.max_ok} (first failing {res.min_fail}"
                      f"{': ' + res.limited_by if res.limited_by else ''}) after {res.probes} probes, "
                      f"{rec['wall_s']} s" + (f"; stopped: {res.stopped}" if res.stopped else "")
                      + _mem_note(rec.get("mem_at_max_ok"), format_bytes))
                if interrupted is not None:
                    raise interrupted
    wlogs.finish(preload_out)
    print(f"log: {out}")
    return 0


def _mem_note(mem: dict | None, format_bytes) -> str:
    """`; at max: peak 19.3 GiB allocated, 22.9 GiB reserved (model: 17.0 GiB)` where measured."""
    if not mem or mem.get("peak_allocated_bytes") is None:
        return ""
    parts = [f"peak {format_bytes(mem['peak_allocated_bytes'])} allocated"]
    if mem.get("peak_reserved_bytes") is not None:
        parts.append(f"{format_bytes(mem['peak_reserved_bytes'])} reserved")
    model = f" (model: {format_bytes(mem['predicted_bytes'])})" if mem.get("predicted_bytes") else ""
    return "; at max: " + ", ".join(parts) + model


def _start(pre, mode, dtype, backend, cap, limit, resolution, memory_model) -> int:
    """Half the analytic prediction of the longest fitting context (never below the resolution)."""
    if not cap:
        return min(resolution, limit)
    fit = memory_model.longest_fit(pre, cap, dtype=dtype, logits=mode, lo=resolution, hi=limit,
                                   resolution=resolution, backend=backend)
    if fit is None:
        return min(resolution, limit)
    return max(resolution, min(limit, (fit // 2) // resolution * resolution))


# The default longest context a search tries: past every model's trained length (flagged).
SEARCH_LIMIT = 1 << 20


def _limit(name, pre, args, parse_count) -> int:
    """The longest context to try: --limit, else 1M; under --strict-ctx the trained length - gen."""
    from edgebench.errors import UserError
    if not args.strict_ctx:
        return parse_count(args.limit) if args.limit else SEARCH_LIMIT
    trained = pre.max_ctx - args.gen
    if trained < 1:
        raise UserError(f"{name}: -n {args.gen} leaves no context within its {pre.max_ctx}-token "
                        "trained length (--strict-ctx); lower -n or drop --strict-ctx")
    if args.limit and parse_count(args.limit) > trained:
        raise UserError(f"{name}: --limit {args.limit} + {args.gen} generated tokens exceeds its "
                        f"{pre.max_ctx}-token limit (its trained length; --strict-ctx refuses it): "
                        f"lower --limit to {trained} or less, or drop --strict-ctx")
    return parse_count(args.limit) if args.limit else trained


def _warnings(presets, limits, gen) -> list[str]:
    """One line per model whose search may run past its trained length."""
    from edgebench.sweep import plan
    return [f"{name}: the search may run past its trained length of {pre.max_ctx} tokens (up to "
            f"{limits[name]}; random weights: timing and memory stay meaningful, outputs do not; "
            f"--strict-ctx stops it there)"
            for name, pre in presets.items() if plan.beyond_trained(limits[name], gen, pre)]


def _dry_run(args, spec, presets, limits, resolution, budget, out) -> str:
    """The searches a run would make, without loading anything or starting a worker."""
    import math

    from edgebench.sweep import plan
    from edgebench.execution import runner
    device, how = plan.device_class(args.device)
    if args.device.startswith("cuda"):
        device = args.device
    runner.validate(spec, spec.plan(), device)
    if budget:
        start = "near half the memory model's fit under the budget"
    elif device.startswith("cuda"):
        start = "near half the memory model's fit in the device's memory (read when the search runs)"
    else:
        start = f"{resolution} tokens"
    lines = [f"dry run: maxctx on {device} ({how}); nothing is loaded or measured"]
    for name, pre in presets.items():
        limit = limits[name]
        first = min(resolution, limit)  # the worst case: the search starts at the resolution
        bound = math.ceil(math.log2(max(limit / first, 1))) + 1 + \
            math.ceil(math.log2(max(limit / resolution, 1)))
        for mode in spec.logits:
            lines.append(f"  {name} [{mode}]: contexts up to {limit} at {resolution}-token resolution, "
                         f"prefill + {args.gen} decode tokens per probe, at most {bound} probes; "
                         f"start: {start}")
    lines += [f"warning: {x}" for x in _warnings(presets, limits, args.gen)]
    lines.append(f"log: {out}")
    return "\n".join(lines)
