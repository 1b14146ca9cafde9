"""Read one log file into runs, case rows, maxctx and ops records, and its problems.

`FileReader(name, limits).read(path)` handles an edgebench JSONL file (plain or gzip; llama-bench
JSONL lines inside it go to `edgebench.logs.importers`) or a foreign CSV / JSON file (all to the
importers). The file is streamed in blocks of whole lines within the caps of `ReadLimits`
(`edgebench.logs.stream`). Each line is checked against the schema of `edgebench.logs.schema`, every
field a table or plot reads included (type, finite, in range: `edgebench.logs.values`; case lines
in `edgebench.logs.case_lines`, the others in `edgebench.logs.other_lines`): a line that cannot be used is
skipped and reported as a `Problem`; a usable line with an unusable field (a known quantity in an
unknown unit, a Stats object that is not one, a number out of range) keeps the rest without that
field and is reported with `skipped=False`; a line of a newer schema version empties the reader
and sets `newer` (the file is skipped whole). Case rows are flat dicts with the keys
`CASE_FIELDS`, absent fields None (`edgebench.logs.case_lines` makes them), one per (run, key) as they
are read (the last line wins: `n_repeated` counts the others); merging files and attaching
devices is `edgebench.logs.loader`'s job.

A block is parsed by orjson in one call where it can be (`_fast_objects`); where orjson refuses a
line (NaN, ints past 64 bits, lone surrogates, invalid UTF-8, bad JSON, nesting past 1024) or a
line is blank, the stdlib parser reads the block as before, line by line where a line is bad, so
the result is the same (`logvalues.loads`: NaN and infinities read as null and reported).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from typing import Any, Callable

from edgebench.logs import importers

try:  # a dependency, about twice as fast on valid files; the stdlib parser decides the rest
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - installed without its dependencies
    _fast_loads = None
from edgebench.logs.case_lines import case_row
from edgebench.logs.other_lines import maxctx_record, ops_record, run_header
from edgebench.logs.stream import ReadLimits, blocks
from edgebench.logs.values import NON_FINITE, brief, json_error, loads
from edgebench.logs.schema import CASE_FIELDS, RECORD_TYPES, SCHEMA_VERSION

__all__ = ["CASE_FIELDS", "FileReader", "Problem", "ReadLimits", "merge_rows"]
_RUN, _KEY = itemgetter("run"), itemgetter("key")


@dataclass(frozen=True)
class Problem:
    """One line (or file, when `line` is None) that could not be used as written."""

    file: str
    line: int | None
    reason: str
    skipped: bool = True

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.reason}"


class FileReader:
    """Reads one file into runs, case rows, maxctx and ops records plus its problems."""

    def __init__(self, name: str, limits: ReadLimits = ReadLimits()):
        self.name = name
        self.limits = limits
        self.runs: dict[str, dict[str, Any]] = {}
        self.cases: list[dict[str, Any]] = []
        self.maxctx: list[dict[str, Any]] = []
        self.ops: list[dict[str, Any]] = []
        self.problems: list[Problem] = []
        self.n_used = 0
        self.n_imported = 0  # case rows from other tools' logs (edgebench.logs.importers)
        self.n_repeated = 0  # case lines whose (run, key) came again later in the file
        self.newer = False
        self._keyed: dict[tuple[str, str], dict[str, Any]] = {}

    def problem(self, line: int | None, reason: str, skipped: bool = True) -> None:
        self.problems.append(Problem(self.name, line, reason, skipped))

    def read(self, path: Path) -> None:
        if not path.name.endswith((".jsonl", ".jsonl.gz")):
            rows, problems = importers.import_file(path, self.limits)
            self.problems.extend(Problem(self.name, ln, why, skip) for ln, why, skip in problems)
            self.cases.extend(rows)
            self.n_used = self.n_imported = len(rows)
            return
        foreign: list[tuple[int, dict[str, Any]]] = []
        for first, block, unterminated in blocks(path, self.limits, self.problem):
            self._block(first, block, unterminated, foreign)
            if self.newer:
                self._keyed.clear()
                return
            self._fold()
        if foreign:
            rows, problems = importers.llama_bench_rows(foreign, self.name)
            self.problems.extend(Problem(self.name, ln, why, skip) for ln, why, skip in problems)
            self.cases.extend(rows)
            self.n_used += len(rows)
            self.n_imported += len(rows)
        self._fold()
        self.cases = list(self._keyed.values())

    def _fold(self) -> None:
        """The rows read since the last fold into one row per (run, key) (`merge_rows`): memory
        grows with the distinct cases, not the lines (one line repeated a million times is one
        row)."""
        self.n_repeated += merge_rows(self._keyed, self.cases)
        self.cases.clear()

    def _block(self, first: int, data: bytes, unterminated: bool,
               foreign: list[tuple[int, dict[str, Any]]]) -> None:
        """The lines of one block (whole lines; the last one unended when `unterminated`)."""
        n_lines = data.count(b"\n") + unterminated
        objs = _fast_objects(data, n_lines)
        last = first + n_lines - 1
        if objs is None:  # the careful path: decoded text, line by line where a line is bad
            lines = data.decode("utf-8", errors="replace").split("\n")
            numbered = _parsed(lines, first, self.problem)
        else:
            numbered = zip(range(first, first + len(objs)), objs, _NO_ERRORS)
        record = self._record
        for n, obj, error in numbered:
            if type(obj) is dict and obj.get("type") == "case" and type(obj.get("v")) is int \
                    and 1 <= obj["v"] <= SCHEMA_VERSION:  # the bulk of a log: straight to case_row
                self.n_used += case_row(self, n, obj)
                continue
            if error is not None:
                self.problem(n, "truncated last line (the writer stopped mid-line)"
                             if unterminated and n == last else f"not JSON ({error})")
                continue
            if not isinstance(obj, dict):
                self.problem(n, "not a JSON object")
                continue
            if "type" not in obj and "v" not in obj:
                if importers.is_llama_bench(obj):
                    foreign.append((n, obj))
                else:
                    self.problem(n, "foreign line: not an edgebench record (no 'v' or 'type')")
                continue
            if record(n, obj):
                self.n_used += 1
            if self.newer:
                return

    def _record(self, n: int, obj: dict[str, Any]) -> bool:
        v, kind = obj.get("v"), obj.get("type")
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            self.problem(n, f"'v' must be a positive integer schema version, got {brief(v)}")
            return False
        if v > SCHEMA_VERSION:
            self.problem(n, f"written by a newer edgebench (schema v{brief(v)}; this one reads up "
                            f"to v{SCHEMA_VERSION}); upgrade with pip install -U edgebench. "
                            "All lines of this file skipped")
            self.newer = True
            self.runs.clear(), self.cases.clear(), self.maxctx.clear(), self.ops.clear()
            return False
        if kind not in RECORD_TYPES:
            self.problem(n, f"unknown record type {brief(kind)}; expected one of "
                            f"{', '.join(RECORD_TYPES)}")
            return False
        if kind == "case":
            return case_row(self, n, obj)
        run = obj.get("run")
        if not isinstance(run, str) or not run:
            self.problem(n, f"{kind} record without a 'run' id string")
            return False
        if kind == "run":
            run_header(self, n, obj)
            self.runs.setdefault(run, obj)
            return True
        if kind in ("interrupted", "end"):  # notes for readers of the file: no table shows them
            return True
        record = maxctx_record(self, n, obj) if kind == "maxctx" else ops_record(self, n, obj)
        if record is not None:
            (self.maxctx if kind == "maxctx" else self.ops).append(dict(record, file=self.name))
        return record is not None


def merge_rows(keyed: dict[tuple[str, str], dict[str, Any]], rows: list[dict[str, Any]]) -> int:
    """Case rows into `keyed` by (run, key), in order: a key already there is replaced by the later
    row, which takes its place at the end (the last line wins and keeps its file order). Returns
    how many rows replaced one."""
    new = dict(zip(zip(map(_RUN, rows), map(_KEY, rows)), rows))
    if len(new) == len(rows) and keyed.keys().isdisjoint(new):
        keyed.update(new)  # no key repeated: the same as the loop below, at C speed
        return 0
    repeated = 0
    for row in rows:
        k = (row["run"], row["key"])
        if k in keyed:
            repeated += 1
            del keyed[k]
        keyed[k] = row
    return repeated


def _fast_objects(data: bytes, n_lines: int) -> list[Any] | None:
    """Every line of a block of `n_lines` lines parsed by orjson in one call (the lines joined into
    one array), or None, sending the block down the careful path of `_parsed`: no orjson, a line
    orjson refuses (bad JSON, invalid UTF-8, NaN, >64-bit ints, lone surrogates, nesting past
    1024), a blank line, a line that is not one value."""
    if _fast_loads is None or not data:
        return None
    body = data[:-1] if data.endswith(b"\n") else data
    try:
        objs = _fast_loads(b"[" + body.replace(b"\n", b",") + b"]")
    except ValueError:
        return None
    return objs if len(objs) == n_lines else None


_NO_ERRORS = repeat(None)


def _parsed(lines: list[str], first: int,
            problem: Callable[..., None]) -> list[tuple[int, Any, str | None]]:
    """(line number, parsed object, None) or (line number, None, JSON error) per non-blank line,
    numbered from `first`. A block parses as one JSON array first (about a quarter faster than
    line by line); a bad line, or a NaN or infinity anywhere, sends it down the line-by-line path
    so that each such line is found and named (a NaN or infinity is read as null: `problem`)."""
    kept = [(n, line) for n, line in enumerate(lines, first) if line and not line.isspace()]
    text = "[" + ",".join(line for _, line in kept) + "]"
    objs = None
    if _fast_loads is not None:
        try:  # orjson refuses what the stdlib takes (NaN, huge ints, lone surrogates): then stdlib
            objs = _fast_loads(text)
        except ValueError:
            pass
    try:
        if objs is None:
            objs, non_finite = loads(text)
            objs = None if non_finite else objs
        if objs is not None and len(objs) == len(kept):  # `1,2` on a line would add items
            return [(n, obj, None) for (n, _), obj in zip(kept, objs)]
    except ValueError:
        pass
    out: list[tuple[int, Any, str | None]] = []
    for n, line in kept:
        try:
            obj, non_finite = loads(line)
        except ValueError as exc:
            out.append((n, None, json_error(exc)))
            continue
        if non_finite:
            problem(n, NON_FINITE, False)
        out.append((n, obj, None))
    return out
