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
    from edgebench.sweep.specfile import add_shard_argument, add_sweep_arguments
    add_sweep_arguments(p)
    how = p.add_argument_group("how to run")
    add_shard_argument(how)
    from edgebench.sweep.specfile import add_devices_argument
    add_devices_argument(how)
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
    from edgebench.errors import UserError
    if args.ops_trace and args.profile != "ops":
        raise UserError("--ops-trace writes the traces of --profile ops; add --profile ops")
    from edgebench.execution import prestart, timeline
    if not args.dry_run:  # the workers' imports start now, beside the environment snapshot
        from edgebench.sweep.plan import devices_count  # one fork server per GPU of --devices
        prestart.prestart(stream=args.verbose, count=devices_count(args.devices))
        timeline.mark("prestart")
        hint = _preload_hint(args) if prestart.prestarted() else None  # parsed while it imports
        if hint is not None:
            prestart.name_early(*hint)
    try:
        return _main(args)
    finally:
        prestart.drop_prestarted()


def _preload_hint(args: argparse.Namespace) -> tuple[list, tuple] | None:
    """(presets, backends) of the models this command will most likely run, from its arguments alone
    (no environment yet: with no models given, both default suites'), for the fork server to import
    at once (`prestart.name_early`); None where the arguments do not tell (an error the plan will
    report): then the models are named once planned."""
    from edgebench.execution.suite_runner import loaded_models
    from edgebench.sweep import plan
    from edgebench.sweep.specfile import load_suite, spec_from_args
    try:
        if getattr(args, "spec", None) or getattr(args, "suite", None) or getattr(args, "models", None):
            specs = [spec_from_args(args)]
        else:
            specs = [load_suite(name) for name in plan.DEFAULT_SUITES.values()]
        found = [loaded_models(spec) for spec in specs]
    except Exception:  # noqa: BLE001 - any problem is the plan's to report, with its own message
        return None
    presets = list({p.name: p for ps, _ in found for p in ps}.values())
    return presets, tuple(dict.fromkeys(b for _, bs in found for b in bs))


def _main(args: argparse.Namespace) -> int:
    import sys

    from edgebench.sweep import plan
    from edgebench.execution import executor, grid_planner, suite_runner
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
        print(suite_runner.dry_run(spec, args.shard, suite, args.devices))
        return 0
    opts = grid_planner.RunOptions(shard=args.shard, telemetry=not args.no_telemetry,
                                   power_rate_hz=args.power_rate, quiet=args.quiet,
                                   verbose=args.verbose, profile_ops=args.profile == "ops",
                                   ops_trace=args.ops_trace, wait_lock=args.wait_lock,
                                   devices=args.devices)
    if isinstance(spec, Suite):
        out, recs = suite_runner.run(spec, opts, suite, env)
    else:
        out, recs = grid_planner.run(spec, opts, suite=suite, env=env)
    if recs:
        from edgebench.report.run_summary import print_summary
        print_summary(recs, _run_header(out, recs[0].get("run")))
    print(f"log: {out}")
    if suite and suite.startswith("paper"):
        print(f"the published study's claims on these logs: edgebench claims {out}")
    return 1 if any(r.get("status") == "error" for r in recs) else 0


def _run_header(out: str, run_id: str | None) -> dict | None:
    """The header of this run as the log holds it (its env has the device micro-benchmarks)."""
    from edgebench.logs.loader import load
    return load([out]).runs.get(run_id) if run_id else None
