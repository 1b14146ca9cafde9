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
    parser.add_argument("--baseline", metavar="MODEL|MODE", default=None,
                        help="model the others are divided by, or a decode mode (e.g. graph) each "
                             "model's other decode modes are divided by (ratio columns, with a ~ "
                             "mark when the difference is within the measurement spread)")
    parser.add_argument("--metric", default=None, metavar="LIST",
                        help="comma list of prefill_ms,tpot_ms,prefill_tok_s,decode_tok_s,"
                             "peak_mem_gib,prefill_j,decode_j_per_token; None means all")
    parser.add_argument("--table", default="all", metavar="LIST",
                        help=f"comma list of {','.join(TABLES)}, or all")
    parser.add_argument("--format", choices=("table", "md", "csv", "json"), default="table")
    parser.add_argument("-o", "--output", metavar="FILE", default=None,
                        help="write here instead of standard output")
    from edgebench.commands.validate import add_limit_arguments

    add_limit_arguments(parser)


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
    from edgebench.analysis import autotune
    from edgebench.commands.validate import read_limits
    from edgebench.logs.loader import load
    from edgebench.logs.values import printable
    from edgebench.report import output, render
    from edgebench.report.tables import build_tables, parse_metrics

    metrics = parse_metrics(args.metric)
    wanted = selected_tables(args.table)
    limits = read_limits(args)
    if args.output:
        output.check_file(args.output)
    logs = load(args.logs, limits)
    built = build_tables(logs, args.baseline, metrics)
    tables = [t for t in built if t.name in wanted]
    absent = _absent(wanted, {t.name for t in built}, explicit=args.table != "all")
    found = logs.notes + autotune.differing(logs.cases)  # what the logs say about themselves
    notes = found + absent
    # Rendered in pieces (a long table in blocks of rows), all before anything is written.
    if args.format == "json":
        parts = list(render.iter_json(tables, {"problems": [str(p) for p in logs.problems],
                                               "notes": notes}))
    elif args.format == "csv":
        parts = list(render.iter_csv(tables))
    elif args.format == "md":
        parts = list(render.iter_markdown(tables)) + [f"{a}\n" for a in absent]
    else:
        import shutil

        width = None if args.output or not sys.stdout.isatty() else shutil.get_terminal_size().columns
        parts = list(render.iter_text(tables, width)) + [f"{a}\n" for a in absent]
    if args.output:
        output.write_file(args.output, parts)
    else:
        output.write_stdout(parts)
    # Problems go to stderr so csv/json on stdout stays machine-readable.
    err = []
    if logs.problems:
        shown = logs.problems[:20]
        err += [f"skipped: {p}" if p.skipped else f"warning: {p}" for p in shown]
        if len(logs.problems) > len(shown):
            err.append(f"... and {len(logs.problems) - len(shown)} more problems (edgebench "
                       "validate lists them all)")
    err += [f"note: {note}" for note in (notes if args.format == "csv" else found)]
    for line in err:
        print(printable(line), file=sys.stderr)
    return 0


def _absent(wanted: tuple[str, ...], made: set[str], explicit: bool) -> list[str]:
    """What to say for the tables asked for that the logs have nothing for: always when there are
    no cases (a log of maxctx or ops records only, or none at all); for the maxctx and ops
    tables only when named with --table."""
    out = []
    if {"cases", "crossover"} & set(wanted) and "cases" not in made:
        out.append("no measured cases in these logs")
    for name, what in (("maxctx", "max-context search"), ("ops", "operator breakdown")):
        if explicit and name in wanted and name not in made:
            out.append(f"no {what} ({name}) records in these logs")
    return out
