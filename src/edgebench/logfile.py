"""Read one log file into runs, case rows, maxctx and ops records, and its problems.

`FileReader(name).read(path)` handles an edgebench JSONL file (plain or gzip; llama-bench JSONL
lines inside it go to `edgebench.importers`) or a foreign CSV / JSON file (all to the importers).
Each line is checked against the schema of `edgebench.records`: a line that cannot be used is
skipped and reported as a `Problem`; a usable line with an unusable field (a known quantity in an
unknown unit, a Stats object that is not one) keeps the rest and is reported with `skipped=False`;
a line of a newer schema version empties the reader and sets `newer` (the file is skipped whole).
Case rows are flat dicts with the keys `CASE_FIELDS`, absent fields None; merging files and
attaching devices is `edgebench.logs`'s job.
"""
from __future__ import annotations

import gzip
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from edgebench import importers

try:  # optional: about three times faster on valid files; the stdlib parser decides otherwise
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - orjson is not a dependency
    _fast_loads = None
from edgebench.records import KEY_FIELDS, case_key
from edgebench.records import CASE_STATUSES, FAMILIES, RECORD_TYPES, SCHEMA_VERSION

CASE_FIELDS = ("source", "file", "run", "key", "device", "host", "device_name", "model", "family",
               "backend", "dtype", "ctx", "gen", "batch", "decode_mode", "logits", "attn", "status",
               "reason", "prefill_ms", "tpot_ms", "prefill_raw_ms", "tpot_raw_ms",
               "peak_allocated_bytes", "peak_reserved_bytes", "predicted_bytes", "prefill_j",
               "decode_j_per_token", "energy_why", "kernels", "cold_ms")
_KNOWN_CASE_KEYS = frozenset(("v", "type", "run", "key", "model", "family", "backend", "dtype",
                              "ctx", "gen", "batch", "decode_mode", "logits", "attn", "status",
                              "reason", "device", "prefill_ms", "tpot_ms", "cold_ms", "kernels",
                              "mem", "energy", "throttle", "raw", "t", "wall_s"))
# A known quantity (stem) in some unit: prefill_us, tpot_s, peak_allocated_mb, decode_mj_per_token.
_UNIT_RE = re.compile(r"(.+?)_(s|sec|seconds|us|ns|ms|j|mj|kj|wh|mwh|b|bytes|kb|mb|gb|kib|mib|gib)"
                      r"(_per_token)?")
_TOP_UNITS = {"prefill": "prefill_ms", "tpot": "tpot_ms", "cold": "cold_ms"}
_MEM_UNITS = {"peak_allocated": "peak_allocated_bytes", "peak_reserved": "peak_reserved_bytes",
              "predicted": "predicted_bytes"}
_ENERGY_UNITS = {"prefill": "prefill_j", "decode_per_token": "decode_j_per_token"}
_STR_FIELDS = ("device_name", "family", "backend", "dtype", "decode_mode", "logits", "attn",
               "reason", "energy_why")
_MEM_FIELDS = frozenset(_MEM_UNITS.values())
_ENERGY_FIELDS = frozenset(_ENERGY_UNITS.values())
_ENERGY_KEYS = _ENERGY_FIELDS | {"energy_why"}
_NUM = (int, float)
_EMPTY: dict[str, Any] = {}


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
        self.newer = False

    def problem(self, line: int | None, reason: str, skipped: bool = True) -> None:
        self.problems.append(Problem(self.name, line, reason, skipped))

    def read(self, path: Path) -> None:
        if not path.name.endswith((".jsonl", ".jsonl.gz")):
            rows, problems = importers.import_file(path)
            self.problems.extend(Problem(self.name, ln, why, skip) for ln, why, skip in problems)
            self.cases.extend(rows)
            self.n_used = len(rows)
            return
        text = self._text(path)
        lines = text.split("\n")
        ends_clean = text.endswith("\n")
        foreign: list[tuple[int, dict[str, Any]]] = []
        for n, obj, error in _parsed(lines):
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
            if self._record(n, obj):
                self.n_used += 1
            if self.newer:
                return
        if foreign:
            rows, problems = importers.llama_bench_rows(foreign, self.name)
            self.problems.extend(Problem(self.name, ln, why, skip) for ln, why, skip in problems)
            self.cases.extend(rows)
            self.n_used += len(rows)

    def _text(self, path: Path) -> str:
        if not path.name.endswith(".gz"):
            return path.read_bytes().decode("utf-8", errors="replace")
        chunks: list[bytes] = []
        try:
            with gzip.open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    chunks.append(chunk)
        except (EOFError, OSError, zlib.error) as exc:
            self.problem(None, f"gzip stream damaged or cut short ({exc}); the lines before it "
                               "are read", skipped=False)
        return b"".join(chunks).decode("utf-8", errors="replace")

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
            return self._case(n, obj)
        run = obj.get("run")
        if not isinstance(run, str) or not run:
            self.problem(n, f"{kind} record without a 'run' id string")
            return False
        if kind == "run":
            self.runs.setdefault(run, obj)
        elif kind == "maxctx":
            return self._maxctx(n, obj)
        else:
            return self._ops(n, obj)
        return True

    def _case(self, n: int, obj: dict[str, Any]) -> bool:
        run, model, ctx, status = obj.get("run"), obj.get("model"), obj.get("ctx"), obj.get("status")
        why = None
        if not isinstance(run, str) or not run:
            why = "case without a 'run' id string"
        elif not isinstance(model, str) or not model:
            why = "case without a 'model' string"
        elif not _is_int(ctx) or ctx < 0:
            why = f"'ctx' must be a non-negative integer token count, got {ctx!r}"
        elif status not in CASE_STATUSES:
            why = f"status {status!r} is not one of {', '.join(CASE_STATUSES)}"
        elif obj.get("family") is not None and obj["family"] not in FAMILIES:
            why = f"family {obj['family']!r} is not one of {', '.join(FAMILIES)}"
        if why:
            self.problem(n, why)
            return False
        # The hot path of a 100k-case compare: type checks inline, helpers only on bad input.
        if not obj.keys() <= _KNOWN_CASE_KEYS:
            self._units(n, obj.keys() - _KNOWN_CASE_KEYS, "", _TOP_UNITS)
        get = obj.get
        mem, energy, raw = get("mem"), get("energy"), get("raw")
        mem = mem if type(mem) is dict else _EMPTY
        energy = energy if type(energy) is dict else _EMPTY
        pre, tpot = get("prefill_ms"), get("tpot_ms")
        if pre is not None and (type(pre) is not dict or type(pre.get("median")) not in _NUM):
            pre = self._bad_stats(n, "prefill_ms", pre)
        if tpot is not None and (type(tpot) is not dict or type(tpot.get("median")) not in _NUM):
            tpot = self._bad_stats(n, "tpot_ms", tpot)
        # The parsed line becomes the row (no copy); the sub-objects it was read from go.
        row = obj
        row["device_name"] = get("device")
        row["source"], row["file"], row["device"], row["host"] = "edgebench", self.name, None, None
        row["energy_why"] = energy.get("energy_why")
        row["prefill_ms"], row["tpot_ms"] = pre, tpot
        row["prefill_raw_ms"] = row["tpot_raw_ms"] = None
        for f in _STR_FIELDS:
            if type(get(f)) is not str:
                row[f] = None
        if type(get("key")) is not str:  # compact lines leave the key out: it is a hash of the fields
            row["key"] = case_key(obj, str(get("device_name"))) if all(f in obj for f in KEY_FIELDS) \
                else f"{model}|ctx={ctx}"
        for f in ("gen", "batch"):
            if type(get(f)) is not int:
                row[f] = None
        for f in ("kernels", "cold_ms"):
            if type(get(f)) is not dict:
                row[f] = None
        for f in ("v", "type", "mem", "energy", "raw"):
            row.pop(f, None)
        for d, prefix, fields in ((mem, "mem.", _MEM_FIELDS), (energy, "energy.", _ENERGY_FIELDS)):
            for f in fields:
                v = d.get(f)
                if v is not None and type(v) not in _NUM:
                    self.problem(n, f"'{prefix}{f}' must be a number, got {v!r}: field ignored",
                                 False)
                    v = None
                row[f] = v
        if mem and not mem.keys() <= _MEM_FIELDS:
            self._units(n, mem.keys() - _MEM_FIELDS, "mem.", _MEM_UNITS)
        if energy and not energy.keys() <= _ENERGY_KEYS:
            self._units(n, energy.keys() - _ENERGY_KEYS, "energy.", _ENERGY_UNITS)
        if type(raw) is dict:
            row["prefill_raw_ms"] = _samples(raw.get("prefill_ms"))
            row["tpot_raw_ms"] = _samples(raw.get("tpot_ms"))
        self.cases.append(row)
        return True

    def _units(self, n: int, extra: Iterable[str], prefix: str, known: dict[str, str]) -> None:
        """Report a known quantity written in another unit (prefill_us, mem.peak_allocated_mb)."""
        for k in sorted(extra):
            m = _UNIT_RE.fullmatch(k)
            if m and (m.group(1) + (m.group(3) or "")) in known:
                want = known[m.group(1) + (m.group(3) or "")]
                self.problem(n, f"unknown unit in field '{prefix}{k}': the schema has "
                                f"'{prefix}{want}'; field ignored, rest of the line used", False)

    def _bad_stats(self, n: int, key: str, value: Any) -> None:
        self.problem(n, f"{key!r} must be a Stats object with a numeric 'median' in ms, got "
                        f"{json.dumps(value)[:60]}: field ignored, rest used", False)

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


def _samples(x: Any) -> list[float] | None:
    if isinstance(x, list) and x and all(_is_num(s) for s in x):
        return x
    return None
