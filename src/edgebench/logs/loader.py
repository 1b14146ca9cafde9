"""Read logs from many files and devices into one validated, deduplicated set.

`load(paths, limits) -> Logs` takes files and folders (searched recursively) holding edgebench JSONL logs
(`*.jsonl`, `*.jsonl.gz`) and the foreign logs `edgebench.logs.importers` understands (`*.csv`, `*.json`,
and llama-bench JSONL lines met inside a `*.jsonl`). Every line is checked against the schema in
`edgebench.logs.schema`; a line that cannot be used is skipped and reported as a `Problem`
(`file:line: reason`), a usable line with an unusable field is kept without that field and reported
too (`skipped=False`). A file written by a newer schema is skipped whole with a message saying how to
upgrade. Files are streamed within the caps of `ReadLimits` (bytes per line, bytes per file after
decompression: `edgebench.logs.stream`). Nothing in a log's content raises; only unusable arguments
(a missing path, no logs at all) raise `UserError`.

Runs are merged across files and deduplicated by run id; within a run a case key seen twice keeps
the last line. Cases come out as flat rows (`CASE_FIELDS`) with the device attached: the case's
`device` plus the run header's `env.host.hostname` when present, so equal GPUs on two hosts are two
devices. Absent fields are None.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from edgebench.logs import importers
from edgebench.errors import UserError
from edgebench.logs.file_reader import CASE_FIELDS, FileReader, Problem, merge_rows
from edgebench.logs.stream import ReadLimits

__all__ = ["CASE_FIELDS", "LOG_SUFFIXES", "Logs", "Problem", "ReadLimits", "device_label",
           "find_log_files", "load"]

LOG_SUFFIXES = (".jsonl", ".jsonl.gz", ".csv", ".json")


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


def load(paths: Iterable[str | os.PathLike], limits: ReadLimits = ReadLimits()) -> Logs:
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
    dup_keys = imported = 0
    for path in files:
        reader = FileReader(str(path), limits)
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
        imported += reader.n_imported
        dup_keys += reader.n_repeated
        dup_keys += merge_rows(cases, reader.cases)
        logs.maxctx.extend(reader.maxctx)
        logs.ops.extend(reader.ops)
    if dup_keys:
        logs.notes.append(f"{dup_keys} case lines repeated a (run, key) already read: the last kept")
    logs.cases = list(cases.values())
    if imported:  # memory-only rows of other tools' logs
        logs.cases = importers.merge_memory_rows(logs.cases)
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
    labels: dict[tuple, str] = {}  # device_label per (name, host): a few devices, 10^5 rows
    for row in logs.cases:
        if row["source"] == "edgebench":
            row["host"] = host = hosts.get(row["run"])
            name = row["device_name"] = row["device_name"] or run_device(row["run"])
        else:
            name, host = row["device_name"], row["host"]
        try:
            row["device"] = labels[(name, host, type(name))]
        except KeyError:
            row["device"] = labels[(name, host, type(name))] = device_label(name, host)
        except TypeError:  # an unhashable name in an imported row
            row["device"] = device_label(name, host)
    by_case = {(row["run"], row["key"]): row for row in logs.cases} if logs.ops else {}
    for rec in logs.maxctx:
        rec["device"] = device_label(rec.get("device") or run_device(rec.get("run")),
                                     hosts.get(rec.get("run")))
    for rec in logs.ops:
        case = by_case.get((rec.get("run"), rec.get("key")))
        rec["device"] = case["device"] if case else device_label(
            run_device(rec.get("run")), hosts.get(rec.get("run")))
        rec["model"] = case["model"] if case else str(rec.get("key", "?")).split("|")[0]
        rec["ctx"] = case["ctx"] if case else None
        rec["decode_mode"] = (case or {}).get("decode_mode") or rec.get("decode_mode")


def device_label(name: str | None, host: str | None) -> str:
    name = name or "unknown device"
    return f"{name} @ {host}" if host else name
