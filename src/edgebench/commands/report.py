"""`edgebench report LOGS... -o DIR`: PNG plots and one self-contained HTML page."""
from __future__ import annotations

import argparse
import sys

HELP = ("Write PNG plots (prefill/TPOT/memory/energy vs context, operator shares) and one "
        "self-contained HTML page with the compare tables into a folder, led by the published "
        "study's claims checked on these logs (edgebench claims) and the plots behind them.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("logs", nargs="+", metavar="LOGS",
                        help="log files or folders (edgebench JSONL, llama-bench JSON, SSM "
                             "characterization CSV)")
    parser.add_argument("-o", "--output", metavar="DIR", required=True,
                        help="folder for the PNGs and report.html (created if missing)")
    parser.add_argument("--baseline", metavar="MODEL|MODE", default=None,
                        help="model the others are divided by in the tables")
    parser.add_argument("--title", default="edgebench report", help="page title")
    from edgebench.commands.validate import add_limit_arguments

    add_limit_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edgebench.analysis import autotune
    from edgebench.analysis.claims import evaluate
    from edgebench.commands.validate import read_limits
    from edgebench.logs.loader import load
    from edgebench.logs.values import printable
    from edgebench.report import output
    from edgebench.report.html import build_page
    from edgebench.report.claim_plots import draw_claims
    from edgebench.report.claimtable import claims_table
    from edgebench.report.plots import draw_all
    from edgebench.report.tables import build_tables

    limits = read_limits(args)
    out = Path(args.output)
    output.check_folder(out)
    logs = load(args.logs, limits)
    tables = build_tables(logs, args.baseline)
    try:
        out.mkdir(parents=True, exist_ok=True)
        claim_plots = draw_claims(logs, out)
        plots = draw_all(logs, out)
    except OSError as exc:
        raise output.os_error(exc.filename or out, exc) from None
    page = out / "report.html"
    claims = (claims_table(evaluate(logs)), claim_plots)
    notes = logs.notes + autotune.differing(logs.cases)
    output.write_file(page, [build_page(logs, tables, plots, args.title, claims=claims, notes=notes)])
    lines = [str(p.path) for p in claim_plots + plots] + [str(page)]
    if not logs.cases:
        lines.append("no measured cases in these logs")
    if logs.problems:
        lines.append(f"{len(logs.problems)} problem lines (listed in the page; edgebench validate "
                     "shows them all)")
    output.write_stdout(printable(line) + "\n" for line in lines)
    for note in notes:
        print(f"note: {printable(note)}", file=sys.stderr)
    return 0
