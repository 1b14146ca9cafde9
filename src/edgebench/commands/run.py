"""`edgebench run`: time prefill and decode across models and context lengths into a JSONL log.

With no arguments it runs the embedded default for whatever is here (a GPU: one model of each family
at a few lengths; CPU only: the tiny presets of all three families) and says how to run the full
characterization. A forced --device picks that default without asking a worker. `--dry-run` prints
the plan, its estimated work (`edgebench.sweep.plan`) and time (`edgebench.sweep.suite_plan`) and
exits without loading anything.

A suite of several grids and max-context searches (`edgebench.sweep.suite`) runs as one executor run
per group of grids (the operator-profiled grids apart), then one per `[[maxctx]]` table, all into one
log; `--shard i/N` divides the cases and the searches round-robin; a rerun resumes both (a search
already in the log for this device, backend, dtype and budget is not made again).
"""
from __future__ import annotations

import argparse

HELP = "measure prefill (TTFT) and decode (TPOT), memory and energy over a sweep; writes a JSONL log"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from edgebench.sweep.specfile import add_sweep_arguments
    add_sweep_arguments(p)
    how = p.add_argument_group("how to run")
    how.add_argument("--shard", metavar="I/N", help="run only the I-th of N round-robin shards (1-based)")
    how.add_argument("--no-telemetry", action="store_true",
                     help="skip power sampling, per-phase energy and clock/throttle provenance")
    how.add_argument("--power-rate", type=float, default=50.0, metavar="HZ",
                     help="power sampling rate (clamped to what the sensor supports)")
    how.add_argument("--profile", choices=["ops"], default=None,
                     help="also profile each case once under torch.profiler (outside the timed "
                          "repetitions) and log per-kernel GPU time by category as `ops` lines")
    how.add_argument("--ops-trace", action="store_true",
                     help="with --profile ops: also write each profile as a gzip'd Chrome trace "
                          "(every kernel by name) in LOG.traces/ beside the log")
    say = how.add_mutually_exclusive_group()
    say.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    say.add_argument("-v", "--verbose", action="store_true",
                     help="stream each worker's output (library messages, warnings) live; by default "
                          "it goes to LOG.workers/ beside the log and a failed case prints its last lines")
    how.add_argument("--dry-run", action="store_true",
                     help="print the plan (cases, a suite's max-context searches, estimated work and "
                          "time, cases past a model's trained length) and exit: nothing is loaded, no "
                          "worker starts")
    how.add_argument("--wait-lock", action="store_true",
                     help="if another process is writing the log, wait for it instead of refusing")


def main(args: argparse.Namespace) -> int:
    import sys
    from edgebench.errors import UserError
    if args.ops_trace and args.profile != "ops":
        raise UserError("--ops-trace writes the traces of --profile ops; add --profile ops")

    from edgebench.sweep import plan
    from edgebench.execution import executor, grid_planner
    from edgebench.sweep.spec import Spec
    from edgebench.sweep.specfile import spec_from_args

    suite = getattr(args, "suite", None)
    env = None
    if not (getattr(args, "spec", None) or suite or getattr(args, "models", None)):
        requested = getattr(args, "device", "auto")
        if args.dry_run or requested != "auto":  # no worker needed to know the device class
            device_class, how = plan.device_class(requested)
        else:
            env = executor.snapshot_env()
            device_class, how = ("cuda" if env.get("gpus") else "cpu"), "what a worker found"
        suite = plan.DEFAULT_SUITES[device_class]
        print(f"No models given: {'planning' if args.dry_run else 'running'} the embedded default "
              f"suite '{suite}' (device {device_class}: {how}). For the full characterization run: "
              "edgebench run --suite paper-desktop (paper-jetson on a Jetson); list models with: "
              "edgebench models", file=sys.stderr)
        args.suite = suite
    from edgebench.sweep.suite import Suite
    spec: Spec = spec_from_args(args)
    if args.dry_run:
        print(_dry_run(spec, args.shard, suite))
        return 0
    opts = grid_planner.RunOptions(shard=args.shard, telemetry=not args.no_telemetry,
                                   power_rate_hz=args.power_rate, quiet=args.quiet,
                                   verbose=args.verbose, profile_ops=args.profile == "ops",
                                   ops_trace=args.ops_trace, wait_lock=args.wait_lock)
    if isinstance(spec, Suite):
        out, recs = _run_suite(spec, opts, suite, env)
    else:
        out, recs = grid_planner.run(spec, opts, suite=suite, env=env)
    if recs:
        _summary(recs)
    print(f"log: {out}")
    if suite and suite.startswith("paper"):
        print(f"the published study's claims on these logs: edgebench claims {out}")
    return 1 if any(r.get("status") == "error" for r in recs) else 0


def _dry_run(spec, shard: str | None, suite: str | None) -> str:
    """The grid plan (`grid_planner.dry_run`), then a suite's grids and searches and the estimated
    time (`edgebench.sweep.suite_plan`). A suite that cannot run on this machine's CPU (mamba_ssm,
    say) is planned for CUDA, with a note, when no --device was forced: its size is what was asked."""
    import dataclasses

    from edgebench.errors import UserError
    from edgebench.execution import grid_planner
    from edgebench.sweep import plan, suite_plan
    from edgebench.sweep.spec import shard as shard_cases
    from edgebench.sweep.suite import Suite
    units = suite_plan.shard_units(spec, shard)
    cases = spec.plan()
    cases = shard_cases(cases, shard) if shard else cases
    device, how = (spec.device, f"--device {spec.device}") if spec.device != "auto" else \
        plan.device_class(spec.device)
    notes = []
    if isinstance(spec, Suite) and spec.device == "auto" and device == "cpu":
        try:
            plan.check(spec, cases, "cpu")
        except UserError as exc:
            notes.append(f"note: planned for CUDA: no GPU here ({how}), and on the CPU: "
                         f"{str(exc).splitlines()[-1].strip()}")
            spec, device = dataclasses.replace(spec, device="cuda"), "cuda"
    if cases:
        text = grid_planner.dry_run(spec, shard=shard, suite=suite)
    else:
        from edgebench.execution import executor
        text = (f"dry run: {'suite ' + suite + ', ' if suite else ''}0 cases on {device}; nothing is "
                f"loaded or measured\nlog: {spec.output or executor.default_output(suite)}")
    first, _, rest = text.partition("\n")
    head, _, log = rest.rpartition("log: ")
    return "\n".join([first, *notes, *filter(None, head.split("\n")),
                      *suite_plan.describe(spec, cases, units, device), f"log: {log}"])


def _run_suite(spec, opts, suite: str | None, env: dict | None) -> tuple[str, list[dict]]:
    """A suite's grids (one executor run per profile setting), then its max-context searches (one
    run per table), into one log; see the module doc."""
    import dataclasses
    import sys

    from edgebench.execution import executor, grid_planner
    from edgebench.execution.maxctx_planner import MaxctxPlanner
    from edgebench.sweep import suite_plan
    from edgebench.sweep.spec import shard as shard_cases
    cases = spec.plan()
    cases = shard_cases(cases, opts.shard) if opts.shard else cases
    units = suite_plan.shard_units(spec, opts.shard)
    header = {"suite": suite, "suite_shard": opts.shard}
    for s, models, modes in spec.searches_for(units):  # every search checked before anything runs
        MaxctxPlanner(s.options(spec.device, None, header, models, modes)).check(
            None if spec.device == "auto" else spec.device)
    out = spec.output or executor.default_output(suite)
    env = env or executor.snapshot_env()
    recs: list[dict] = []
    for profile, sub in spec.groups(cases):
        run_opts = dataclasses.replace(opts, shard=None, profile_ops=opts.profile_ops or profile == "ops",
                                       extra_header={**opts.extra_header, **header})
        recs += grid_planner.run(dataclasses.replace(sub, output=out), run_opts, suite=suite, env=env)[1]
    device = executor.resolve_device(spec.device, env)
    total = env["gpus"][int(device.split(":")[1])]["total_bytes"] if device.startswith("cuda") else None
    done = _searched(out, executor.device_label(device, env), env)
    for s, models, modes in spec.searches_for(units):
        dtype = executor.resolve_dtype(s.dtype, device)
        budget = s.options(spec.device, total).budget
        left = [m for m in models if (m, modes[0], s.backend, dtype, budget) not in done]
        if not left:
            continue
        if s.budget_note(total):
            print(f"note: {s.budget_note(total)}", file=sys.stderr)
        planner = MaxctxPlanner(s.options(spec.device, total, header, left, modes))
        ex = executor.Executor(out, opts.wait_lock, opts.verbose, opts.quiet)
        ex.prepare(spec.device, env, planner.check_device)
        ex.execute(planner)
    return out, recs


def _searched(out: str, label: str, env: dict) -> set[tuple]:
    """(model, logits mode, backend, dtype, budget) of the max-context results already in the log
    for this device."""
    import os

    from edgebench.logs.loader import device_label, load
    if not os.path.exists(out):
        return set()
    logs = load([out])
    here = device_label(label, (env.get("host") or {}).get("hostname"))
    found = set()
    for r in logs.maxctx:
        spec = ((logs.runs.get(r.get("run")) or {}).get("spec") or {}).get("maxctx") or {}
        if r.get("device") == here:
            found.add((r.get("model"), r.get("mode"), r.get("backend") or spec.get("backend") or "hf",
                       r.get("dtype"), r.get("budget_bytes")))
    return found


def _summary(recs: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    from edgebench.logs import schema as records
    t = Table(title="edgebench run", header_style="bold")
    for col in ("model", "family", "ctx", "decode", "status", "prefill ms", "TPOT ms", "decode tok/s",
                "peak GiB", "prefill J", "throttled"):
        t.add_column(col, justify="right" if col not in ("model", "family", "decode", "status") else "left")
    for r in recs:
        pre = (r.get("prefill_ms") or {}).get("median")
        tp = (r.get("tpot_ms") or {}).get("median")
        peak = records.peak_bytes(r)
        ej = (r.get("energy") or {}).get("prefill_j")
        thr = (r.get("prov") or {}).get("throttled")
        t.add_row(r["model"], r.get("family", ""), str(r["ctx"]), r["decode_mode"],
                  r["status"] if r["status"] == "ok" else f"[red]{r['status']}[/]",
                  f"{pre:.2f}" if pre is not None else "-", f"{tp:.3f}" if tp is not None else "-",
                  f"{r['batch'] * 1e3 / tp:.1f}" if tp else "-",
                  f"{peak / 2**30:.2f}" if peak else "-", f"{ej:.3f}" if ej is not None else "-",
                  "[yellow]yes[/]" if thr else ("no" if thr is not None else "-"))
    import shutil
    Console(width=max(shutil.get_terminal_size((150, 24)).columns, 150)).print(t)
