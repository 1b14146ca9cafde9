"""Where a `Spec` comes from: TOML spec files and command-line flags, flags winning.

A spec file has an optional top-level `description` string and one `[sweep]` table whose keys are the
`Spec` field names (`SPEC_FILE_KEYS`), except that the memory budget is written `memory_budget =
"24GiB"` (a size string or a number of bytes). Lists may be TOML arrays or list/range strings
(`ctx = "1k-64k*2"`). A relative `output` is relative to the working directory, not to the file.
`allow_long_ctx` (`LEGACY_KEYS`) is still accepted and has no effect: running past a model's trained
length became the default; `strict_ctx = true` refuses it. A file may also hold `[[grid]]` and
`[[maxctx]]` tables; it is then a `Suite` (`edgebench.sweep.suite`), and flags apply to it as
`Suite.with_overrides` says.

`add_sweep_arguments(parser)` adds llama-bench style flags (`-m`, `-c`, `-n`, `-r`, ...) whose
defaults are `argparse.SUPPRESS`, so only flags the user typed appear in the namespace;
`spec_from_args(args, base)` starts from `--spec FILE`, else `--suite NAME`, else `base`, else the
`Spec` defaults, and lets each typed flag replace that field. `load_suite(name)` and `list_suites()` read
the suites shipped in `edgebench.sweep.suites`. `add_shard_argument` and `add_devices_argument` add the
flags that say how a plan is spread, not what it holds: `--shard I/N|auto` (`edgebench.sweep.shards`)
and `--devices all|cuda:N,...` (`edgebench.execution.scheduler.parse_devices`).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from edgebench.choices import ATTN_KINDS, BACKENDS, DECODE_MODES, LOGITS_MODES
from edgebench.errors import UserError
from edgebench.sweep.spec import DTYPES, Spec
from edgebench.sweep.suite import Suite, parse_suite
from edgebench.sweep.suites import suite_file, suite_files

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_FIELDS = [f.name for f in dataclasses.fields(Spec)]
SPEC_FILE_KEYS = tuple("memory_budget" if n == "memory_budget_bytes" else n for n in _FIELDS)
# Keys older spec files may hold, accepted and ignored (with why).
LEGACY_KEYS = {"allow_long_ctx": "contexts past the trained length run by default now"}


def spec_from_mapping(table: dict[str, Any], where: str) -> Spec:
    """A Spec from a `[sweep]`-style mapping; unknown keys are an error listing the valid ones."""
    unknown = sorted(set(table) - set(SPEC_FILE_KEYS) - set(LEGACY_KEYS))
    if unknown:
        raise UserError(f"unknown key(s) {', '.join(unknown)} in {where}; "
                        f"valid keys: {', '.join(SPEC_FILE_KEYS)}")
    values = dict(table)
    if not isinstance(values.pop("allow_long_ctx", False), bool):
        raise UserError(f"allow_long_ctx in {where} must be true or false (it has no effect: "
                        f"{LEGACY_KEYS['allow_long_ctx']}; strict_ctx = true refuses them)")
    if table.get("allow_long_ctx") and table.get("strict_ctx"):
        raise UserError(f"{where} sets both allow_long_ctx and strict_ctx; keep strict_ctx = true "
                        "to refuse contexts past the trained length, or drop it to run them")
    if "memory_budget" in values:
        values["memory_budget_bytes"] = values.pop("memory_budget")
    try:
        return Spec(**values)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None


def parse_spec_text(text: str, where: str) -> tuple[Spec, str]:
    """(spec, description) from the text of a spec file: a `Suite` when it has [[grid]] or
    [[maxctx]] tables (`edgebench.sweep.suite`), else a `Spec`."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{where} is not valid TOML ({exc}); fix the file") from None
    extra = sorted(set(doc) - {"sweep", "description", "grid", "maxctx"})
    if extra:
        raise UserError(f"unexpected top-level key(s) {', '.join(extra)} in {where}; a spec file "
                        "holds an optional description, one [sweep] table, and optionally [[grid]] "
                        "and [[maxctx]] tables")
    if not isinstance(doc.get("sweep"), dict):
        raise UserError(f"{where} has no [sweep] table; put the sweep keys under [sweep]")
    description = str(doc.get("description", ""))
    if "grid" in doc or "maxctx" in doc:
        return parse_suite(doc, doc["sweep"], where, spec_from_mapping), description
    return spec_from_mapping(doc["sweep"], f"[sweep] of {where}"), description


def load_suite(name: str) -> Spec:
    """The named suite shipped with edgebench (`edgebench.sweep.suites`)."""
    name, file = suite_file(name)
    return parse_spec_text(file.read_text(encoding="utf-8"), f"suite {name!r}")[0]


def list_suites() -> dict[str, str]:
    """{suite name: description}, sorted by name."""
    return {name: parse_spec_text(f.read_text(encoding="utf-8"), f"suite {name!r}")[1]
            for name, f in suite_files().items()}


def read_spec_file(path: str | Path) -> Spec:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UserError(f"cannot read spec file {str(p)!r} ({exc.strerror}); check the path") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"spec file {str(p)!r} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                        f"offset {exc.start}); save it as UTF-8") from None
    return parse_spec_text(text, str(p))[0]


# (flags, Spec field, help) for every swept or per-run setting; argparse dest is the field name.
_FLAGS = (
    (("-m", "--model"), "models", "model presets, hub ids or local dirs, comma-separated"),
    (("--backend",), "backends", f"backends: {', '.join(BACKENDS)}"),
    (("-t", "--dtype"), "dtypes", f"dtypes: {', '.join(DTYPES)} (auto: float32 on CPU)"),
    (("-c", "--ctx"), "ctx", "prompt lengths in tokens, lists and ranges: 1k,4k or 1k-64k*2"),
    (("-n", "--gen"), "gen", "tokens to decode per case, lists and ranges"),
    (("-b", "--batch"), "batch", "batch sizes, lists and ranges"),
    (("--decode-mode",), "decode_modes", f"decode modes: {', '.join(DECODE_MODES)}"),
    (("--logits",), "logits", f"logits kept at prefill: {', '.join(LOGITS_MODES)}"),
    (("--attn",), "attn", f"attention kinds: {', '.join(ATTN_KINDS)}"),
    (("-r", "--reps"), "reps", "timed repetitions per case"),
    (("--warmup",), "warmup", "untimed warm-up repetitions per case"),
    (("--runs",), "runs", "worker processes per point, each giving its own medians; the spread "
     "between them is what intervals use (1 to 100)"),
    (("-o", "--output"), "output", "log path, *.jsonl or *.jsonl.gz (appends; a rerun resumes)"),
    (("--device",), "device", "auto, cpu, cuda or cuda:N"),
    (("--memory-budget",), "memory_budget_bytes", "cap on device memory, e.g. 24GiB or 8GB"),
    (("--timeout",), "timeout_s", "seconds a log line may take (1 to 604800): a point's worker, "
     "which measures its prefill and each decode mode, is killed after that many per line"),
    (("--max-cases",), "max_cases", "refuse a sweep that plans more cases than this"),
)
_INT_FIELDS = {"reps", "warmup", "max_cases", "runs"}
_METAVARS = {"reps": "N", "warmup": "N", "runs": "N", "output": "PATH", "device": "DEVICE",
             "memory_budget_bytes": "SIZE", "timeout_s": "SECONDS", "max_cases": "N"}


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the sweep flags, plus --spec, --suite, --raw, --strict-ctx and --allow-long-ctx."""
    defaults = Spec()
    group = parser.add_argument_group("what to sweep (lists and ranges accepted)")
    group.add_argument("--spec", default=argparse.SUPPRESS, metavar="FILE",
                       help="TOML spec file; flags given here override its values")
    group.add_argument("--suite", default=argparse.SUPPRESS, metavar="NAME",
                       help="named suite shipped with edgebench (see edgebench.sweep.suites)")
    for flags, name, text in _FLAGS:
        default = getattr(defaults, name)
        shown = ",".join(map(str, default)) if isinstance(default, list) else default
        kind = int if name in _INT_FIELDS else float if name == "timeout_s" else str
        metavar = "LIST" if isinstance(default, list) else _METAVARS[name]
        group.add_argument(*flags, dest=name, type=kind, default=argparse.SUPPRESS, metavar=metavar,
                           help=f"{text} (default: {shown if shown not in ('', None) else 'none'})")
    group.add_argument("--raw", dest="raw", action="store_true", default=argparse.SUPPRESS,
                       help="keep raw per-repetition samples in the log")
    group.add_argument("--strict-ctx", dest="strict_ctx", action="store_true", default=argparse.SUPPRESS,
                       help="refuse contexts (+ generated tokens) past a model's trained length; by "
                            "default they run with a warning and `beyond_trained_ctx` in the record")
    group.add_argument("--allow-long-ctx", dest="allow_long_ctx", action="store_true",
                       default=argparse.SUPPRESS,
                       help="run contexts past a model's trained length: now the default, accepted "
                            "for old scripts")


def spec_from_args(args: Any, base: Spec | None = None) -> Spec:
    """The spec named by --spec/--suite (or `base`), with every flag present in `args` applied."""
    spec_path = getattr(args, "spec", None)
    suite_name = getattr(args, "suite", None)
    if spec_path and suite_name:
        raise UserError("give either --spec FILE or --suite NAME, not both")
    if getattr(args, "allow_long_ctx", False) and getattr(args, "strict_ctx", False):
        raise UserError("--allow-long-ctx and --strict-ctx contradict each other; give --strict-ctx "
                        "to refuse contexts past the trained length, or neither to run them")
    if spec_path:
        base = read_spec_file(spec_path)
    elif suite_name:
        base = load_suite(suite_name)
    overrides = {name: getattr(args, name) for name in _FIELDS
                 if getattr(args, name, None) is not None}
    try:
        if isinstance(base, Suite):
            return base.with_overrides(overrides)
        return Spec(**{**(base or Spec()).to_dict(), **overrides})
    except UserError as exc:
        raise UserError(f"command line: {exc}") from None


def add_shard_argument(group: Any) -> None:
    """`--shard I/N|auto` (dest `shard`, default None): this process's share of the plan."""
    group.add_argument("--shard", metavar="I/N|auto", default=None,
                       help="run only the I-th of N shards of the plan (1-based; whole series of "
                            "contexts, balanced by expected work), or auto: I and N from the job "
                            "array's environment (Slurm, Grid Engine, LSF; see the README)")


def add_devices_argument(group: Any) -> None:
    """`--devices all|cuda:N,...` (dest `devices`, default None): several GPUs of this host at once."""
    group.add_argument("--devices", metavar="all|cuda:N,...", default=None,
                       help="measure on several GPUs of this host at once, one worker per GPU, the "
                            "longest work first: all, or a list such as cuda:0,cuda:2 (not with --device)")
