"""The `run`, `maxctx` and `ops` lines of a log, for `edgebench.logs.file_reader`: every field a table or
plot reads is checked (type, finite, in range: `edgebench.logs.values`). A line without what its
table needs is reported and skipped (None); a field the tables can do without that is unusable
(a `mode` that is a list, a malformed `trail`, a negative `wall_ms`) is reported, dropped from the
record, and the rest kept. Each problem goes to `reader.problem(line, reason, skipped)`.
"""
from __future__ import annotations

from typing import Any, Callable

from edgebench.logs.values import (MAX_BYTES, MAX_MS, MAX_SECONDS, MAX_SHARE, MAX_TOKENS, brief,
                                 in_range, int_in)


def run_header(reader: Any, n: int, obj: dict[str, Any]) -> None:
    """A run header's fields the readers use (its time orders runs: the latest wins)."""
    _optional(reader, n, obj, "t", str, "an ISO time string")


def maxctx_record(reader: Any, n: int, obj: dict[str, Any]) -> dict[str, Any] | None:
    """A maxctx line as the table reads it (None when it cannot be used)."""
    model = obj.get("model")
    if not isinstance(model, str) or not model:
        reader.problem(n, "maxctx record without a 'model' string")
        return None
    for k in ("max_ok_ctx", "min_fail_ctx"):
        if obj.get(k) is not None and not int_in(obj[k], 0, MAX_TOKENS):
            reader.problem(n, f"maxctx '{k}' must be an integer token count (0 to "
                              f"{MAX_TOKENS:,}) or null, got {brief(obj[k])}")
            return None
    for k in ("device", "mode", "limited_by"):
        _optional(reader, n, obj, k, str, "a string")
    for k in ("resolution", "probes"):
        _optional(reader, n, obj, k, _count, f"an integer from 0 to {MAX_TOKENS:,}")
    _optional(reader, n, obj, "wall_s", _seconds, f"seconds from 0 to {MAX_SECONDS:g}")
    _optional(reader, n, obj, "budget_bytes", _bytes, f"bytes from 0 to {MAX_BYTES:,}")
    _optional(reader, n, obj, "trail", _trail, "a list of [context, status] pairs")
    _optional(reader, n, obj, "mem_at_max_ok", _mem,
              f"a mem object of byte counts from 0 to {MAX_BYTES:,}")
    return obj


def ops_record(reader: Any, n: int, obj: dict[str, Any]) -> dict[str, Any] | None:
    """An ops line as the table and plot read it (None when it cannot be used)."""
    shares = obj.get("shares")
    if not isinstance(shares, dict) or not all(_share(x) for x in shares.values()):
        reader.problem(n, "ops record needs 'shares': an object of category -> fraction "
                          f"(0 to 1), got {brief(shares)}")
        return None
    if obj.get("phase") not in ("prefill", "decode"):
        reader.problem(n, f"ops 'phase' must be prefill or decode, got {brief(obj.get('phase'))}")
        return None
    for k in ("key", "decode_mode"):
        _optional(reader, n, obj, k, str, "a string")
    for k in ("kernel_ms", "wall_ms"):
        _optional(reader, n, obj, k, _ms, f"a time in ms from 0 to {MAX_MS:g}")
    return obj


def _optional(reader: Any, n: int, obj: dict[str, Any], key: str,
              ok: type | Callable[[Any], bool], what: str) -> None:
    """A field the tables read that may be absent or null: another value is reported and
    dropped (the rest of the line used)."""
    v = obj.get(key)
    if v is not None and not (type(v) is ok if isinstance(ok, type) else ok(v)):
        reader.problem(n, f"{obj.get('type')} '{key}' must be {what}, got {brief(v)}: field "
                          "ignored, rest of the line used", False)
        del obj[key]


def _count(x: Any) -> bool:
    return int_in(x, 0, MAX_TOKENS)


def _seconds(x: Any) -> bool:
    return in_range(x, 0, MAX_SECONDS)


def _bytes(x: Any) -> bool:
    return in_range(x, 0, MAX_BYTES)


def _ms(x: Any) -> bool:
    return in_range(x, 0, MAX_MS)


def _share(x: Any) -> bool:
    return in_range(x, 0, MAX_SHARE)


def _trail(x: Any) -> bool:
    return type(x) is list and all(type(p) is list and len(p) == 2 and _count(p[0])
                                   and type(p[1]) is str for p in x)


def _mem(x: Any) -> bool:
    return type(x) is dict and all(x.get(k) is None or _bytes(x[k]) for k in (
        "peak_allocated_bytes", "peak_reserved_bytes", "predicted_bytes"))
