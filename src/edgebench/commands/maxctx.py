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
    p.add_argument("--limit", default=None, help="largest context to try (default: the model's own "
                   "limit, or 1M tokens for SSMs)")
    p.add_argument("--memory-budget", default=None, metavar="SIZE", help="cap device memory, e.g. 24GiB")
    p.add_argument("-t", "--dtype", default="auto", help="dtype (auto: bfloat16 on GPU, float32 on CPU)")
    p.add_argument("--backend", default="hf", help="hf or mamba_ssm")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--timeout", type=float, default=900, help="seconds after which a probe is killed")
    p.add_argument("-o", "--output", default=None, help="JSONL log to append the results to")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="stream each probe's worker output live; by default it goes to LOG.workers/ "
                        "beside the log and a failed probe prints its last lines")


def main(args: argparse.Namespace) -> int:
    import contextlib
    import sys
    import time

    from edgebench import isolate, maxctx, records, runner
    from edgebench.analysis import memory_model
    from edgebench.errors import UserError
    from edgebench.models import catalog
    from edgebench.sizes import format_bytes, parse_count, parse_size

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    presets = {m: catalog.resolve(m) for m in models}
    modes = [x.strip() for x in args.logits.split(",")]
    if any(x not in ("last", "all") for x in modes):
        raise UserError(f"--logits takes last, all or last,all, not {args.logits!r}")
    resolution = parse_count(args.resolution)
    budget = parse_size(args.memory_budget) if args.memory_budget else None
    out = args.output or runner.default_output("maxctx")
    runner.check_output(out)
    env = runner.snapshot_env()
    device = runner.resolve_device(args.device, env)
    dtype = runner.resolve_dtype(args.dtype, device)
    total = env["gpus"][int(device.split(":")[1])]["total_bytes"] if device.startswith("cuda") else None
    if budget and not device.startswith("cuda"):
        raise UserError("--memory-budget caps a CUDA device's memory; this search runs on the CPU "
                        "(drop --memory-budget, or run where `edgebench env` shows a GPU)")
    if budget:
        from edgebench.budget import check_budget
        for name, pre in presets.items():
            try:
                check_budget(budget, total, memory_model.predict(pre, 1, dtype=dtype)["weights_bytes"])
            except UserError as exc:
                raise UserError(f"{name}: {exc}") from None
    cap = budget or total
    run_id = records.new_run_id()
    from edgebench import zygote as zygotes
    from edgebench.workerlog import WorkerLogs
    say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    wlogs = WorkerLogs(out, say, args.verbose)
    zyg = zygotes.open_for(list(presets.values()), (args.backend,),
                           output=None if args.verbose else wlogs.path("preload"))
    with isolate.sigterm_as_interrupt(), records.LogWriter(out) as log, (zyg or contextlib.nullcontext()):
        log.write({"type": "run", "run": run_id, "t": records.utc_now(), "edgebench": env["edgebench"],
                   "argv": sys.argv[1:], "env": env, "spec": {"maxctx": vars(args) | {"_main": None}},
                   "workers": zygotes.describe(zyg)})
        for name, pre in presets.items():
            limit = parse_count(args.limit) if args.limit else (pre.position_limit or 1 << 20)
            for mode in modes:
                start = _start(pre, mode, dtype, cap, limit, resolution, memory_model)
                mems: dict[int, dict] = {}  # ctx -> the passing probe's measured memory

                def probe(ctx: int) -> str:
                    payload = {"case": {"model": name, "backend": args.backend, "dtype": dtype, "ctx": ctx,
                                        "gen": args.gen, "batch": 1, "decode_mode": "eager", "logits": mode,
                                        "attn": "sdpa"},
                               # reps 0: the cold prefill alone; whether it fits is all a probe asks
                               "device": device, "reps": 0, "warmup": 0, "budget_bytes": budget,
                               "telemetry": False}
                    worker_out = wlogs.path("maxctx", name, mode, f"ctx{ctx}")
                    r = isolate.run_isolated(runner.CASE_TARGET, payload, timeout_s=args.timeout, zygote=zyg,
                                             output=worker_out, echo=wlogs.echo)
                    wlogs.keep(worker_out)
                    if r["status"] == "ok" and r.get("mem"):
                        mems[ctx] = r["mem"]
                    # too slow is not "does not fit": a timeout stops the search
                    timeout = r["status"] == "killed" and "timed out" in str(r.get("reason"))
                    finished.append((ctx, "timeout" if timeout else r["status"]))
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
                log.write(rec)
                print(f"{name} [{mode}{', budget ' + format_bytes(budget) if budget else ''}]: max context "
                      f"{res.max_ok} (first failing {res.min_fail}"
                      f"{': ' + res.limited_by if res.limited_by else ''}) after {res.probes} probes, "
                      f"{rec['wall_s']} s" + (f"; stopped: {res.stopped}" if res.stopped else "")
                      + _mem_note(rec.get("mem_at_max_ok"), format_bytes))
                if interrupted is not None:
                    raise interrupted
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


def _start(pre, mode, dtype, cap, limit, resolution, memory_model) -> int:
    """Half the analytic prediction of the longest fitting context (never below the resolution)."""
    if not cap:
        return min(resolution, limit)
    fit = memory_model.longest_fit(pre, cap, dtype=dtype, logits=mode, lo=resolution, hi=limit,
                                   resolution=resolution)
    if fit is None:
        return min(resolution, limit)
    return max(resolution, min(limit, (fit // 2) // resolution * resolution))
