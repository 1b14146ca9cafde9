"""The `edgebench` command line: parse, then call one library function.

Each subcommand lives in `edgebench.commands.<name>` and exposes `HELP`, `add_arguments(parser)` and
`main(args) -> int`. Those modules import only the standard library at module level, so `--help` and
argument errors are instant; heavy imports (torch, transformers, matplotlib) happen inside `main`.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from edgebench import __version__
from edgebench.errors import UserError

# Order is the order shown in --help.
COMMANDS = ("run", "maxctx", "models", "env", "compare", "claims", "report", "validate", "kernels")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgebench",
        description="Benchmark Transformer, SSM and hybrid LLMs for long-context inference.",
    )
    parser.add_argument("--version", action="version", version=f"edgebench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"edgebench.commands.{name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_main=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    from edgebench.execution import timeline
    timeline.begin()  # the origin of a run's start-up timeline (its header's startup_s)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_main", None):
        parser.print_help()
        return 0
    try:
        return int(args._main(args) or 0)
    except UserError as exc:
        print(f"edgebench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"edgebench {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
