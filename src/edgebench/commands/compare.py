"""`edgebench compare LOGS...`: tables across devices, models and contexts from many logs."""
from __future__ import annotations

import argparse
import sys

HELP = ("Compare logs of many devices: prefill, TPOT, throughput, memory, energy per device x "
        "model x context; ratios to a baseline; crossover contexts; max context; operator shares.")
TABLES = ("cases", "crossover", "maxctx", "ops")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("logs", nargs="+", metavar="LOGS",
                        help="log files or folders; llama-bench JSON and SSM characterization "
                             "CSV logs are read beside edgebench JSONL")
    parser.add_argument("--baseline", metavar="MODEL", default=None,
                        help="model the others are divided by (ratio columns, with a ~ mark when "
                             "the difference is within the measurement spread)")
    parser.add_argument("--metric", default=None, metavar="LIST",
                        help="comma list of prefill_ms,tpot_ms,prefill_tok_s,decode_tok_s,"
                             "peak_mem_gib,prefill_j,decode_j_per_token; None means all")
    parser.add_argument("--table", default="all", metavar="LIST",
                        help=f"comma list of {','.join(TABLES)}, or all")
    parser.add_argument("--format", choices=("table", "md", "csv", "json"), default="table")
    parser.add_argument("-o", "--output", metavar="FILE", default=None,
                        help="write here instead of standard output")


def selected_tables(text: str) -> tuple[str, ...]:
    from edgebench.errors import UserError

    if text == "all":
        return TABLES
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    bad = [t for t in names if t not in TABLES]
    if bad:
        raise UserError(f"unknown table {', '.join(bad)}; choose from {','.join(TABLES)} or all")
    return names


def main(args: argparse.Namespace) -> int:
    import gc

    # Every object built here lives until the end and none is cyclic: collector passes over the
    # growing heap would only rescan it (about a fifth of the time of a 100k-case compare).
    gc.disable()
    try:
        return _compare(args)
    finally:
        gc.enable()


def _compare(args: argparse.Namespace) -> int:
    from edgebench.logs import load
    from edgebench.report import render
    from edgebench.report.tables import build_tables, parse_metrics

    metrics = parse_metrics(args.metric)
    wanted = selected_tables(args.table)
    logs = load(args.logs)
    tables = [t for t in build_tables(logs, args.baseline, metrics) if t.name in wanted]
    # Rendered in pieces (a long table in blocks of rows), all before anything is written.
    if args.format == "json":
        parts = list(render.iter_json(tables, {"problems": [str(p) for p in logs.problems],
                                               "notes": logs.notes}))
    elif args.format == "csv":
        parts = list(render.iter_csv(tables))
    elif args.format == "md":
        parts = list(render.iter_markdown(tables))
    else:
        import shutil

        width = None if args.output or not sys.stdout.isatty() else shutil.get_terminal_size().columns
        parts = list(render.iter_text(tables, width)) if tables else [
            "no measured cases in these logs\n"]
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.writelines(parts)
    else:
        sys.stdout.writelines(parts)
    # Problems go to stderr so csv/json on stdout stays machine-readable.
    if logs.problems:
        shown = logs.problems[:20]
        for p in shown:
            print(f"skipped: {p}" if p.skipped else f"warning: {p}", file=sys.stderr)
        if len(logs.problems) > len(shown):
            print(f"... and {len(logs.problems) - len(shown)} more problems (edgebench validate "
                  "lists them all)", file=sys.stderr)
    for note in logs.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0
