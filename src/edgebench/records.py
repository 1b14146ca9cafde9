"""The log schema and the crash-safe JSONL writer.

One self-describing JSON object per line, no whitespace. Every line has `v` (schema version) and
`type`, one of:

- `run`    header: `run` (run id), `t` (UTC ISO time), `edgebench` (version), `env` (environment
           snapshot), `spec` (the sweep spec as given), `argv`.
- `case`   one measured case: `run`, `key` (`case_key()`: stable id, for resume), `model`, `family`
           (transformer | ssm | hybrid), `backend`, `dtype`, `ctx` (prompt tokens), `gen` (decode
           tokens), `batch`, `decode_mode` (eager | graph), `logits` (last | all), `status` (ok | oom
           | error | killed | skipped), `reason` (null when ok), `device` (name), and when ok:
           `prefill_ms` and `tpot_ms` as Stats objects, `cold_ms`, `kernels`, `mem`, optional
           `energy`, `throttle`, `raw` (only with --raw); when not ok, `worker_log`: the file
           holding the worker's stdout and stderr, relative to the log's folder (see workerlog.py).
- `maxctx` a max-context search result: `model`, `mode`, `max_ok_ctx`, `min_fail_ctx`, `probes`,
           `resolution`, `wall_s`, `budget_bytes`, `trail` (ctx, status pairs), `limited_by`,
           `stopped` (why it ended early, e.g. "interrupted (received SIGTERM)"), and where measured
           `mem_at_max_ok` (the passing probe's `mem` object at `max_ok_ctx`).
- `ops`    an operator breakdown: `key`, `phase` (prefill | decode), `shares` (category -> fraction of
           GPU time), `top` (kernel, category, ms), `kernel_ms`, `wall_ms`, on CUDA
           `profiler_total_ms` and `categorised_vs_total_pct`, for a graph decode `replay_scopes`
           (mapped | unmatched: see opsreplay.py), with --ops-trace `trace`.
- `interrupted` a run stopped by Ctrl-C or SIGTERM: `run`, `t`, `reason` (e.g. "received SIGTERM"),
           `cases_recorded` (by this invocation), `cases_left` (not measured; a rerun resumes them).

A Stats object is `{"median", "p10", "p90", "stdev", "n"}` in the unit its key names. Unavailable
telemetry is `null` beside a `<name>_why` string, never 0.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import uuid
from pathlib import Path
from typing import Any, Iterable

SCHEMA_VERSION = 1
RECORD_TYPES = ("run", "case", "maxctx", "ops", "interrupted")
CASE_STATUSES = ("ok", "oom", "error", "killed", "skipped")
FAMILIES = ("transformer", "ssm", "hybrid")


KEY_FIELDS = ("model", "backend", "dtype", "ctx", "gen", "batch", "decode_mode", "logits", "attn")


def case_key(fields: dict[str, Any], device: str) -> str:
    """A short stable id of a case on a device (12 hex digits of a hash of its fields): the same
    case measured again gets the same key, which is how a rerun resumes and readers deduplicate."""
    import hashlib
    text = "|".join(str(fields[k]) for k in KEY_FIELDS) + "|" + device
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


# Schema v1 defaults of the case fields: a case line leaves out a field with its default value and
# every reader restores it (`expand_case`, `logfile`).
CASE_DEFAULTS = {"backend": "hf", "dtype": "bfloat16", "batch": 1, "logits": "last", "attn": "sdpa"}
# Fields a case line leaves out because a reader derives them (see `expand_case`).
# mean W = J per prompt (or token) / the phase's median time per prompt (or token).
_DERIVED_ENERGY = {"prefill_mean_w": ("prefill_j", "prefill_ms"), "decode_mean_w": ("decode_j_per_token", "tpot_ms")}


def compact_case(rec: dict[str, Any]) -> dict[str, Any]:
    """The case line as written: derivable fields dropped so a line stays under ~1 KB.

    Dropped: `key` (= case_key of the fields and device), `reason` when ok, mean power (= energy /
    phase time), NVML per-process memory when within 1% of device-level use, and the case fields
    that hold their schema default (`CASE_DEFAULTS`: backend hf, dtype bfloat16, batch 1, logits
    last, attn sdpa)."""
    out = {k: v for k, v in rec.items() if not (k == "reason" and v is None and rec.get("status") == "ok")
           and not (k in CASE_DEFAULTS and v == CASE_DEFAULTS[k] and type(v) is type(CASE_DEFAULTS[k]))}
    out.pop("key", None)
    e = out.get("energy")
    if isinstance(e, dict):
        out["energy"] = {k: v for k, v in e.items() if k not in _DERIVED_ENERGY and v is not None}
    m = out.get("mem")
    if isinstance(m, dict) and m.get("nvml_bytes") and m.get("device_used_bytes"):
        if abs(m["nvml_bytes"] - m["device_used_bytes"]) <= 0.01 * m["device_used_bytes"]:
            out["mem"] = {k: v for k, v in m.items() if k != "nvml_bytes"}
    return out


def expand_case(rec: dict[str, Any]) -> dict[str, Any]:
    """A case line with its derivable fields filled back in (the inverse of `compact_case`)."""
    out = dict(rec)
    out.setdefault("reason", None)
    if out.get("type", "case") == "case":
        for k, v in CASE_DEFAULTS.items():
            out.setdefault(k, v)
    if "key" not in out and all(k in out for k in KEY_FIELDS):
        out["key"] = case_key(out, str(out.get("device")))
    e = out.get("energy")
    if isinstance(e, dict):
        e = dict(e)
        for name, (joules, phase) in _DERIVED_ENERGY.items():
            t = (out.get(phase) or {}).get("median")
            if name not in e and isinstance(e.get(joules), (int, float)) and t:
                e[name] = round(e[joules] / (t / 1e3), 1)
        out["energy"] = e
    return out


def peak_bytes(rec: dict[str, Any]) -> int | None:
    """A case's device allocator peak over prefill and decode (`mem.peak_allocated_bytes`, or
    `mem.decode_peak_bytes` when decode peaked higher); None where the device has no allocator stats."""
    mem = rec.get("mem") or {}
    peaks = [v for v in (mem.get("peak_allocated_bytes"), mem.get("decode_peak_bytes")) if v is not None]
    return max(peaks) if peaks else None


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def dumps(obj: dict[str, Any]) -> str:
    """Compact, deterministic one-line JSON. NaN/inf are not valid JSON: they become null."""
    return json.dumps(_finite(obj), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _finite(x: Any) -> Any:
    if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


class LogWriter:
    """Append-only JSONL writer: one line per record, flushed and fsynced, so a killed process loses
    at most the record being written. Opening an existing log appends (resume)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")
        # A previous process killed mid-write can leave a partial last line: start on a fresh line.
        if self._fh.tell() > 0:
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    self._fh.write("\n")

    def write(self, record: dict[str, Any]) -> None:
        record.setdefault("v", SCHEMA_VERSION)
        self._fh.write(dumps(record) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "LogWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_lines(path: str | os.PathLike) -> Iterable[tuple[int, dict[str, Any] | None, str | None]]:
    """Yield (line number, record or None, problem or None) for each non-blank line of a JSONL file.
    Never raises on content; a corrupt line comes back as (n, None, reason)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield n, None, f"not JSON ({exc.msg} at column {exc.colno})"
                continue
            if not isinstance(obj, dict):
                yield n, None, "not a JSON object"
                continue
            yield n, obj, None


def finished_keys(path: str | os.PathLike) -> set[str]:
    """Keys of cases already recorded in a log (any terminal status), for resuming a sweep."""
    if not Path(path).exists():
        return set()
    keys = set()
    for _, obj, _ in iter_lines(path):
        if obj and obj.get("type") == "case":
            case = expand_case(obj)
            if all(k in case for k in KEY_FIELDS):
                keys.add(case["key"])
    return keys
