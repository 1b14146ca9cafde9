"""`edgebench claims LOGS...`: the published study's four claims checked on each device's logs."""
from __future__ import annotations

import argparse
import sys

HELP = ("Check the published SSM-vs-Transformer study's four claims (arXiv 2507.12442) on the logs of "
        "each device, in its method and edgebench's: measured vs published ratio, length or share, "
        "holds / does not hold / not measured")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("logs", nargs="+", metavar="LOGS",
                        help="log files or folders (e.g. what `edgebench run --suite paper-desktop` wrote)")
    parser.add_argument("--format", choices=("table", "md", "csv", "json"), default="table")
    parser.add_argument("-o", "--output", metavar="FILE", default=None,
                        help="write here instead of standard output")
    from edgebench.commands.validate import add_limit_arguments

    add_limit_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from edgebench.analysis.claims import evaluate
    from edgebench.commands.validate import read_limits
    from edgebench.logs.loader import load
    from edgebench.logs.values import printable
    from edgebench.report import output, render
    from edgebench.report.claimtable import claims_table

    if args.output:
        output.check_file(args.output)
    logs = load(args.logs, read_limits(args))
    results = evaluate(logs)
    table = claims_table(results, numbers=args.format in ("csv", "json"))
    absent = [] if results else ["no measured cases, max-context searches or operator profiles in these logs"]
    if args.format == "json":
        parts = list(render.iter_json([table], {"claims": [r.as_dict() for r in results],
                                                "problems": [str(p) for p in logs.problems],
                                                "notes": logs.notes + absent}))
    elif args.format == "csv":
        parts = list(render.iter_csv([table]))
    elif args.format == "md":
        parts = list(render.iter_markdown([table])) + [f"{a}\n" for a in absent]
    else:
        import shutil

        width = None if args.output or not sys.stdout.isatty() else shutil.get_terminal_size().columns
        parts = list(render.iter_text([table], width)) + [f"{a}\n" for a in absent]
    if args.output:
        output.write_file(args.output, parts)
    else:
        output.write_stdout(parts)
    for p in logs.problems[:20]:
        print(printable(f"skipped: {p}" if p.skipped else f"warning: {p}"), file=sys.stderr)
    if len(logs.problems) > 20:
        print(f"... and {len(logs.problems) - 20} more problems (edgebench validate lists them all)",
              file=sys.stderr)
    return 0
