"""`edgebench validate LOGS...`: check logs against the schema; list every problem line."""
from __future__ import annotations

import argparse

HELP = "Check logs against the schema: list every unusable line as file:line, count per file."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("logs", nargs="+", metavar="LOGS",
                        help="log files or folders (*.jsonl, *.jsonl.gz, foreign *.csv / *.json)")
    add_limit_arguments(parser)


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """The reader's caps, shared by validate, compare and report."""
    from edgebench.logs.stream import MAX_LINE_BYTES, MAX_LOG_BYTES  # light: no numpy

    parser.add_argument("--max-line-bytes", metavar="SIZE", default=f"{MAX_LINE_BYTES >> 20}MiB",
                        help="longest log line read; a longer one is skipped and reported")
    parser.add_argument("--max-log-bytes", metavar="SIZE", default=f"{MAX_LOG_BYTES >> 30}GiB",
                        help="most bytes read from one log file, after decompression; the rest "
                             "is reported and not read")


def read_limits(args: argparse.Namespace):
    """`ReadLimits` from the flags of `add_limit_arguments` (UserError on a bad size)."""
    from edgebench.errors import UserError
    from edgebench.logs.stream import ReadLimits
    from edgebench.sweep.units import parse_size

    sizes = {}
    for flag in ("max_line_bytes", "max_log_bytes"):
        try:
            sizes[flag] = parse_size(getattr(args, flag))
        except UserError as exc:
            raise UserError(f"--{flag.replace('_', '-')}: {exc}") from None
    return ReadLimits(**sizes)


def main(args: argparse.Namespace) -> int:
    from edgebench.logs.loader import load
    from edgebench.logs.values import printable

    logs = load(args.logs, read_limits(args))
    out = [f"{p}{'' if p.skipped or p.line is None else ' (line kept)'}" for p in logs.problems]
    out += [f"note: {note}" for note in logs.notes]
    per_file = {printable(f): n for f, n in logs.problems_by_file().items()}
    read = {printable(f): n for f, n in logs.lines_read.items()}
    width = max((len(f) for f in per_file), default=0)
    for f, n_bad in sorted(per_file.items()):
        out.append(f"{f.ljust(width)}  {read.get(f, 0):>7} records read  {n_bad:>5} problems")
    out.append(f"{len(logs.cases)} cases, {len(logs.runs)} runs, {len(logs.maxctx)} maxctx, "
               f"{len(logs.ops)} ops records; {len(logs.problems)} problems")
    from edgebench.report.output import write_stdout

    write_stdout(printable(line) + "\n" for line in out)
    return 1 if logs.has_invalid_lines else 0
