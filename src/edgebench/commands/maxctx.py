"""`edgebench maxctx`: the longest context each model can take on this device (or under a budget).

An argparse adapter: the search is `edgebench.execution.maxctx_planner`, run by the executor.
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
    from edgebench.sweep.specfile import add_devices_argument
    add_devices_argument(p)
    p.add_argument("--timeout", type=float, default=900, help="seconds after which a probe is killed")
    p.add_argument("-o", "--output", default=None, help="log to append the results to (*.jsonl or *.jsonl.gz)")
    p.add_argument("--wait-lock", action="store_true",
                   help="if another process is writing the log, wait for it instead of refusing")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="stream each probe's worker output live; by default it goes to LOG.workers/ "
                        "beside the log and a failed probe prints its last lines")


def main(args: argparse.Namespace) -> int:
    from edgebench.choices import LOGITS_MODES
    from edgebench.errors import UserError
    from edgebench.execution import executor
    from edgebench.execution.maxctx_planner import MaxctxOptions, MaxctxPlanner
    from edgebench.sweep.spec import check_timeout
    from edgebench.sweep.units import parse_count, parse_size

    modes = [x.strip() for x in args.logits.split(",")]
    if not modes or any(x not in LOGITS_MODES for x in modes):
        raise UserError(f"--logits takes a comma-separated list of {', '.join(LOGITS_MODES)}, "
                        f"not {args.logits!r}")
    opts = MaxctxOptions(models=[m.strip() for m in args.models.split(",") if m.strip()], modes=modes,
                         resolution=parse_count(args.resolution), backend=args.backend, dtype=args.dtype,
                         gen=args.gen, limit=args.limit, strict_ctx=args.strict_ctx,
                         budget=parse_size(args.memory_budget) if args.memory_budget else None,
                         device=args.device, devices=args.devices,
                         timeout_s=check_timeout(args.timeout, "--timeout"),
                         header_spec={"maxctx": vars(args) | {"_main": None}})
    planner = MaxctxPlanner(opts)
    out = args.output or executor.default_output("maxctx")
    if args.dry_run:
        print(planner.dry_run(out))
        return 0
    planner.check(None if args.device == "auto" else args.device)
    ex = executor.Executor(out, args.wait_lock, args.verbose)
    ex.prepare(args.device, None, planner.check_device, devices=args.devices)
    ex.execute(planner)
    print(f"log: {out}")
    return 0
