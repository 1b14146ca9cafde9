"""Read one log file into runs, case rows, maxctx and ops records, and its problems.

`FileReader(name).read(path)` handles an edgebench JSONL file (plain or gzip; llama-bench JSONL
lines inside it go to `edgebench.importers`) or a foreign CSV / JSON file (all to the importers).
Each line is checked against the schema of `edgebench.records`: a line that cannot be used is
skipped and reported as a `Problem`; a usable line with an unusable field (a known quantity in an
unknown unit, a Stats object that is not one) keeps the rest and is reported with `skipped=False`;
a line of a newer schema version empties the reader and sets `newer` (the file is skipped whole).
Case rows are flat dicts with the keys `CASE_FIELDS`, absent fields None (`edgebench.logcases`
makes them); merging files and attaching devices is `edgebench.logs`'s job.

A file is parsed by orjson in one call where it can be (`_fast_objects`); where orjson refuses a
line (NaN, ints past 64 bits, lone surrogates, invalid UTF-8, bad JSON) or a line is blank, the
stdlib parser reads the file as before, line by line where a line is bad, so the result is the same.
"""
from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

from edgebench import importers

try:  # a dependency, about twice as fast on valid files; the stdlib parser decides the rest
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - installed without its dependencies
    _fast_loads = None
from edgebench.logcases import CASE_FIELDS, case_row
from edgebench.records import RECORD_TYPES, SCHEMA_VERSION

__all__ = ["CASE_FIELDS", "FileReader", "Problem"]


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

    def __init__(self, name: str):
        self.name = name
        self.runs: dict[str, dict[str, Any]] = {}
        self.cases: list[dict[str, Any]] = []
        self.maxctx: list[dict[str, Any]] = []
        self.ops: list[dict[str, Any]] = []
        self.problems: list[Problem] = []
        self.n_used = 0
        self.n_imported = 0  # case rows from other tools' logs (edgebench.importers)
        self.newer = False

    def problem(self, line: int | None, reason: str, skipped: bool = True) -> None:
        self.problems.append(Problem(self.name, line, reason, skipped))

    def read(self, path: Path) -> None:
        if not path.name.endswith((".jsonl", ".jsonl.gz")):
            rows, problems = importers.import_file(path)
            self.problems.extend(Problem(self.name, ln, why, skip) for ln, why, skip in problems)
            self.cases.extend(rows)
            self.n_used = self.n_imported = len(rows)
            return
        data = self._bytes(path)
        objs = _fast_objects(data)
        if objs is None:  # the careful path: decoded text, line by line where a line is bad
            text = data.decode("utf-8", errors="replace")
            lines = text.split("\n")
            ends_clean = text.endswith("\n")
            numbered = _parsed(lines)
        else:
            numbered = zip(range(1, len(objs) + 1), objs, _NO_ERRORS)
        foreign: list[tuple[int, dict[str, Any]]] = []
        record = self._record
        for n, obj, error in numbered:
            if type(obj) is dict and obj.get("type") == "case" and type(obj.get("v")) is int \
                    and 1 <= obj["v"] <= SCHEMA_VERSION:  # the bulk of a log: straight to case_row
                self.n_used += case_row(self, n, obj)
                continue
            if error is not None:
                last = n == len(lines) and not ends_clean
                self.problem(n, "truncated last line (the writer stopped mid-line)" if last
                             else f"not JSON ({error})")
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
        if foreign:
            rows, problems = importers.llama_bench_rows(foreign, self.name)
            self.problems.extend(Problem(self.name, ln, why, skip) for ln, why, skip in problems)
            self.cases.extend(rows)
            self.n_used += len(rows)
            self.n_imported += len(rows)

    def _bytes(self, path: Path) -> bytes:
        if not path.name.endswith(".gz"):
            return path.read_bytes()
        chunks: list[bytes] = []
        try:
            with gzip.open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    chunks.append(chunk)
        except (EOFError, OSError, zlib.error) as exc:
            self.problem(None, f"gzip stream damaged or cut short ({exc}); the lines before it "
                               "are read", skipped=False)
        return b"".join(chunks)

    def _record(self, n: int, obj: dict[str, Any]) -> bool:
        v, kind = obj.get("v"), obj.get("type")
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            self.problem(n, f"'v' must be a positive integer schema version, got {v!r}")
            return False
        if v > SCHEMA_VERSION:
            self.problem(n, f"written by a newer edgebench (schema v{v}; this one reads up to "
                            f"v{SCHEMA_VERSION}); upgrade with pip install -U edgebench. "
                            "All lines of this file skipped")
            self.newer = True
            self.runs.clear(), self.cases.clear(), self.maxctx.clear(), self.ops.clear()
            return False
        if kind not in RECORD_TYPES:
            self.problem(n, f"unknown record type {kind!r}; expected one of {', '.join(RECORD_TYPES)}")
            return False
        if kind == "case":
            return case_row(self, n, obj)
        run = obj.get("run")
        if not isinstance(run, str) or not run:
            self.problem(n, f"{kind} record without a 'run' id string")
            return False
        if kind == "run":
            self.runs.setdefault(run, obj)
        elif kind == "maxctx":
            return self._maxctx(n, obj)
        elif kind == "ops":
            return self._ops(n, obj)
        return True  # "interrupted": a note for readers of the file; no table shows it

    def _maxctx(self, n: int, obj: dict[str, Any]) -> bool:
        model = obj.get("model")
        if not isinstance(model, str) or not model:
            self.problem(n, "maxctx record without a 'model' string")
            return False
        for k in ("max_ok_ctx", "min_fail_ctx"):
            if obj.get(k) is not None and not _is_int(obj[k]):
                self.problem(n, f"maxctx '{k}' must be an integer or null, got {obj[k]!r}")
                return False
        self.maxctx.append(dict(obj, file=self.name))
        return True

    def _ops(self, n: int, obj: dict[str, Any]) -> bool:
        shares = obj.get("shares")
        if not isinstance(shares, dict) or not all(_is_num(x) for x in shares.values()):
            self.problem(n, "ops record needs 'shares': an object of category -> fraction")
            return False
        if obj.get("phase") not in ("prefill", "decode"):
            self.problem(n, f"ops 'phase' must be prefill or decode, got {obj.get('phase')!r}")
            return False
        self.ops.append(dict(obj, file=self.name))
        return True



def _fast_objects(data: bytes) -> list[Any] | None:
    """Every line of a JSONL file parsed by orjson in one call (the lines joined into one array),
    or None, sending the file down the careful path of `_parsed`: no orjson, a line orjson refuses
    (bad JSON, invalid UTF-8, NaN, >64-bit ints, lone surrogates), a blank line, a line that is not
    one value."""
    if _fast_loads is None or not data:
        return None
    body = data[:-1] if data.endswith(b"\n") else data
    try:
        objs = _fast_loads(b"[" + body.replace(b"\n", b",") + b"]")
    except ValueError:
        return None
    return objs if len(objs) == body.count(b"\n") + 1 else None


_NO_ERRORS = repeat(None)


def _parsed(lines: list[str]) -> list[tuple[int, Any, str | None]]:
    """(line number, parsed object, None) or (line number, None, JSON error) per non-blank line.
    A file parses as one JSON array first (about a quarter faster than line by line); a bad line
    sends the file down the line-by-line path so that each bad line is found and named."""
    kept = [(n, line) for n, line in enumerate(lines, 1) if line and not line.isspace()]
    text = "[" + ",".join(line for _, line in kept) + "]"
    objs = None
    if _fast_loads is not None:
        try:  # orjson refuses what the stdlib takes (NaN, huge ints, lone surrogates): then stdlib
            objs = _fast_loads(text)
        except ValueError:
            pass
    try:
        objs = json.loads(text) if objs is None else objs
        if len(objs) == len(kept):  # a line like `1,2` would add items: then go line by line
            return [(n, obj, None) for (n, _), obj in zip(kept, objs)]
    except ValueError:
        pass
    out: list[tuple[int, Any, str | None]] = []
    for n, line in kept:
        try:
            out.append((n, json.loads(line), None))
        except ValueError as exc:
            out.append((n, None, f"{getattr(exc, 'msg', exc)} at column {getattr(exc, 'colno', '?')}"))
    return out


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


