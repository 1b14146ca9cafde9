"""The log schema: record types, case keys, compact case lines and the JSON line format
(`edgebench.logs.writer` writes them).

One self-describing JSON object per line, no whitespace. Every line has `v` (schema version) and
`type`, one of:

- `run`    header: `run` (run id), `t` (UTC ISO time), `edgebench` (version), `env` (environment
           snapshot), `spec` (the sweep spec as given), `argv`.
- `case`   one measured case: `run`, `key` (`case_key()`: stable id, for resume), `model`, `family`
           (transformer | ssm | hybrid), `backend`, `dtype`, `ctx` (prompt tokens), `gen` (decode
           tokens), `batch`, `decode_mode` (eager | graph), `logits` (last | all), `status` (ok | oom
           | error | killed | skipped), `reason` (null when ok), `device` (name), and when ok:
           `prefill_ms` and `tpot_ms` as Stats objects, `cold_ms`, `kernels`, `mem`, optional
           `energy`, `throttle`, `raw` (only with --raw). `beyond_trained_ctx` (default false,
           written only when true): ctx + gen passed the model's trained length (random weights:
           timing and memory stay meaningful, outputs do not). When not ok, `worker_log`: the file
           holding the worker's stdout and stderr, relative to the log's folder (see workerlog.py).
- `maxctx` a max-context search result: `model`, `mode`, `max_ok_ctx`, `min_fail_ctx`, `probes`,
           `resolution`, `wall_s`, `budget_bytes`, `trail` (ctx, status pairs), `limited_by`,
           `stopped` (why it ended early, e.g. "interrupted (received SIGTERM)"), where measured
           `mem_at_max_ok` (the passing probe's `mem` object at `max_ok_ctx`), and
           `beyond_trained_ctx: true` where `max_ok_ctx` + gen passed the model's trained length.
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
import uuid
from typing import Any

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
CASE_DEFAULTS = {"backend": "hf", "dtype": "bfloat16", "batch": 1, "logits": "last", "attn": "sdpa",
                 "beyond_trained_ctx": False}
# Fields a case line leaves out because a reader derives them (see `expand_case`).
# mean W = J per prompt (or token) / the phase's median time per prompt (or token).
_DERIVED_ENERGY = {"prefill_mean_w": ("prefill_j", "prefill_ms"), "decode_mean_w": ("decode_j_per_token", "tpot_ms")}


def compact_case(rec: dict[str, Any]) -> dict[str, Any]:
    """The case line as written: derivable fields dropped so a line stays under ~1 KB.

    Dropped: `key` (= case_key of the fields and device), `reason` when ok, mean power (= energy /
    phase time), NVML per-process memory when within 1% of device-level use, and the case fields
    that hold their schema default (`CASE_DEFAULTS`: backend hf, dtype bfloat16, batch 1, logits
    last, attn sdpa, beyond_trained_ctx false)."""
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
