"""`edgebench report LOGS... -o DIR`: PNG plots and one self-contained HTML page."""
from __future__ import annotations

import argparse

HELP = ("Write PNG plots (prefill/TPOT/memory/energy vs context, operator shares) and one "
        "self-contained HTML page with the compare tables into a folder.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("logs", nargs="+", metavar="LOGS",
                        help="log files or folders (edgebench JSONL, llama-bench JSON, SSM "
                             "characterization CSV)")
    parser.add_argument("-o", "--output", metavar="DIR", required=True,
                        help="folder for the PNGs and report.html (created if missing)")
    parser.add_argument("--baseline", metavar="MODEL", default=None,
                        help="model the others are divided by in the tables")
    parser.add_argument("--title", default="edgebench report", help="page title")


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edgebench.logs import load
    from edgebench.report.html import build_page
    from edgebench.report.plots import draw_all
    from edgebench.report.tables import build_tables

    logs = load(args.logs)
    tables = build_tables(logs, args.baseline)
    out = Path(args.output)
    plots = draw_all(logs, out)
    page = out / "report.html"
    page.write_text(build_page(logs, tables, plots, args.title), encoding="utf-8")
    for p in plots:
        print(p.path)
    print(page)
    if logs.problems:
        print(f"{len(logs.problems)} problem lines (listed in the page; edgebench validate "
              "shows them all)")
    return 0
