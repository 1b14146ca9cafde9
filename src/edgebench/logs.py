"""Read logs from many files and devices into one validated, deduplicated set.

`load(paths) -> Logs` takes files and folders (searched recursively) holding edgebench JSONL logs
(`*.jsonl`, `*.jsonl.gz`) and the foreign logs `edgebench.importers` understands (`*.csv`, `*.json`,
and llama-bench JSONL lines met inside a `*.jsonl`). Every line is checked against the schema in
`edgebench.records`; a line that cannot be used is skipped and reported as a `Problem`
(`file:line: reason`), a usable line with an unusable field is kept without that field and reported
too (`skipped=False`). A file written by a newer schema is skipped whole with a message saying how to
upgrade. Nothing in a log's content raises; only unusable arguments (a missing path, no logs at all)
raise `UserError`.

Runs are merged across files and deduplicated by run id; within a run a case key seen twice keeps
the last line. Cases come out as flat rows (`CASE_FIELDS`) with the device attached: the case's
`device` plus the run header's `env.host.hostname` when present, so equal GPUs on two hosts are two
devices. Absent fields are None.
"""
from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from edgebench import importers
from edgebench.errors import UserError
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
LOG_SUFFIXES = (".jsonl", ".jsonl.gz", ".csv", ".json")


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


@dataclass
class Logs:
    """Everything read: run headers by id, flat case rows, maxctx and ops records (each with
    `device` attached), the problems found, notes (deduplication), and per-file line counts."""

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    cases: list[dict[str, Any]] = field(default_factory=list)
    maxctx: list[dict[str, Any]] = field(default_factory=list)
    ops: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    lines_read: dict[str, int] = field(default_factory=dict)

    def problems_by_file(self) -> dict[str, int]:
        counts = {f: 0 for f in self.lines_read}
        for p in self.problems:
            counts[p.file] = counts.get(p.file, 0) + 1
        return counts

    @property
    def has_invalid_lines(self) -> bool:
        return bool(self.problems)


def find_log_files(paths: Iterable[str | os.PathLike]) -> tuple[list[Path], list[str]]:
    """Log files under the given paths (sorted, each once) and a note per folder holding none."""
    files: dict[Path, None] = {}
    empty: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(LOG_SUFFIXES))
            if not found:
                empty.append(f"{p}: folder holds no logs (*.jsonl, *.jsonl.gz, *.csv, *.json)")
            files.update(dict.fromkeys(found))
        elif p.is_file():
            files[p] = None
        else:
            raise UserError(f"{p}: no such file or folder; pass log files or folders holding them")
    return list(files), empty


def load(paths: Iterable[str | os.PathLike]) -> Logs:
    """Read, validate, merge and deduplicate every log under `paths` (see the module docstring)."""
    paths = list(paths)
    if not paths:
        raise UserError("no logs given; pass log files or folders (e.g. edgebench compare results/)")
    files, empty = find_log_files(paths)
    if not files:
        raise UserError("; ".join(empty) or "no logs found")
    logs = Logs(notes=list(empty))
    cases: dict[tuple[str, str], dict[str, Any]] = {}
    run_files: dict[str, str] = {}
    dup_keys = 0
    for path in files:
        reader = _Reader(str(path))
        reader.read(path)
        logs.problems.extend(reader.problems)
        logs.lines_read[reader.name] = reader.n_used
        if reader.newer:
            continue
        for run_id, header in reader.runs.items():
            if run_id in run_files and run_files[run_id] != reader.name:
                logs.notes.append(f"run {run_id} appears in {run_files[run_id]} and {reader.name}: "
                                  "read once (deduplicated by run id)")
            run_files.setdefault(run_id, reader.name)
            logs.runs.setdefault(run_id, header)
        for row in reader.cases:
            k = (row["run"], row["key"])
            if k in cases:
                dup_keys += 1
                del cases[k]  # re-insert so the last line wins and keeps its file order
            cases[k] = row
        logs.maxctx.extend(reader.maxctx)
        logs.ops.extend(reader.ops)
    if dup_keys:
        logs.notes.append(f"{dup_keys} case lines repeated a (run, key) already read: the last kept")
    logs.cases = importers.merge_memory_rows(list(cases.values()))
    _attach_devices(logs)
    return logs


def _attach_devices(logs: Logs) -> None:
    def host_of(run_id: str | None) -> str | None:
        env = (logs.runs.get(run_id) or {}).get("env")
        host = env.get("host") if isinstance(env, dict) else None
        name = host.get("hostname") if isinstance(host, dict) else None
        return name if isinstance(name, str) and name else None

    def run_device(run_id: str | None) -> str | None:
        env = (logs.runs.get(run_id) or {}).get("env")
        dev = env.get("device") if isinstance(env, dict) else None
        name = dev.get("name") if isinstance(dev, dict) else None
        return name if isinstance(name, str) and name else None

    hosts = {r: host_of(r) for r in logs.runs}
    by_case: dict[tuple[str, str], dict[str, Any]] = {}
    for row in logs.cases:
        if row["source"] == "edgebench":
            row["host"] = hosts.get(row["run"])
            row["device_name"] = row["device_name"] or run_device(row["run"])
        row["device"] = device_label(row["device_name"], row["host"])
        by_case[(row["run"], row["key"])] = row
    for rec in logs.maxctx:
        rec["device"] = device_label(rec.get("device") or run_device(rec.get("run")),
                                     hosts.get(rec.get("run")))
    for rec in logs.ops:
        case = by_case.get((rec.get("run"), rec.get("key")))
        rec["device"] = case["device"] if case else device_label(
            run_device(rec.get("run")), hosts.get(rec.get("run")))
        rec["model"] = case["model"] if case else str(rec.get("key", "?")).split("|")[0]
        rec["ctx"] = case["ctx"] if case else None


def device_label(name: str | None, host: str | None) -> str:
    name = name or "unknown device"
    return f"{name} @ {host}" if host else name


class _Reader:
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
        for n, line in enumerate(lines, 1):
            if not line or line.isspace():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                last = n == len(lines) and not ends_clean
                self.problem(n, "truncated last line (the writer stopped mid-line)" if last
                             else f"not JSON ({getattr(exc, 'msg', exc)})")
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
        if type(get("key")) is not str:
            row["key"] = f"{model}|ctx={ctx}"
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



def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _samples(x: Any) -> list[float] | None:
    if isinstance(x, list) and x and all(_is_num(s) for s in x):
        return x
    return None
