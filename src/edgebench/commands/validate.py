"""`edgebench validate LOGS...`: check logs against the schema; list every problem line."""
from __future__ import annotations

import argparse

HELP = "Check logs against the schema: list every unusable line as file:line, count per file."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("logs", nargs="+", metavar="LOGS",
                        help="log files or folders (*.jsonl, *.jsonl.gz, foreign *.csv / *.json)")


def main(args: argparse.Namespace) -> int:
    from edgebench.logs import load

    logs = load(args.logs)
    for p in logs.problems:
        print(f"{p}{'' if p.skipped else ' (line kept)'}")
    for note in logs.notes:
        print(f"note: {note}")
    per_file = logs.problems_by_file()
    width = max((len(f) for f in per_file), default=0)
    for f, n_bad in sorted(per_file.items()):
        print(f"{f.ljust(width)}  {logs.lines_read.get(f, 0):>7} records read  {n_bad:>5} problems")
    print(f"{len(logs.cases)} cases, {len(logs.runs)} runs, {len(logs.maxctx)} maxctx, "
          f"{len(logs.ops)} ops records; {len(logs.problems)} problems")
    return 1 if logs.has_invalid_lines else 0
