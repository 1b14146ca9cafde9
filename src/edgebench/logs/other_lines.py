"""The `run`, `maxctx` and `ops` lines of a log, for `edgebench.logs.file_reader`: every field the
schema marks `checked` (the ones a table or plot reads) is checked against its declaration in
`edgebench.logs.schema` (type, finite, in range). A line without what its table needs is reported
and skipped (None); a field the tables can do without that is unusable (a `mode` that is a list,
a malformed `trail`, a negative `wall_ms`) is reported, dropped from the record, and the rest kept.
Each problem goes to `reader.problem(line, reason, skipped)`.
"""
from __future__ import annotations

from typing import Any

from edgebench.logs.fields import Field
from edgebench.logs.schema import MAXCTX, OPS, PHASES, RUN
from edgebench.logs.values import brief

_REQUIRED_CTX = ("max_ok_ctx", "min_fail_ctx")  # a maxctx line is its result: bad ones skip it
_RUN_CHECKED = tuple(f for f in RUN.values() if f.checked)
_MAXCTX_CHECKED = tuple(f for f in MAXCTX.values() if f.checked and f.name not in _REQUIRED_CTX)
_OPS_CHECKED = tuple(f for f in OPS.values() if f.checked)
_SHARE = OPS["shares"]


def run_header(reader: Any, n: int, obj: dict[str, Any]) -> None:
    """A run header's fields the readers use (its time orders runs: the latest wins)."""
    _optional(reader, n, obj, _RUN_CHECKED)


def maxctx_record(reader: Any, n: int, obj: dict[str, Any]) -> dict[str, Any] | None:
    """A maxctx line as the table reads it (None when it cannot be used)."""
    model = obj.get("model")
    if not isinstance(model, str) or not model:
        reader.problem(n, "maxctx record without a 'model' string")
        return None
    for k in _REQUIRED_CTX:
        f = MAXCTX[k]
        if obj.get(k) is not None and not f.ok(obj[k]):
            reader.problem(n, f"maxctx '{k}' must be an integer token count ({f.lo} to "
                              f"{f.hi:,}) or null, got {brief(obj[k])}")
            return None
    _optional(reader, n, obj, _MAXCTX_CHECKED)
    return obj


def ops_record(reader: Any, n: int, obj: dict[str, Any]) -> dict[str, Any] | None:
    """An ops line as the table and plot read it (None when it cannot be used)."""
    shares = obj.get("shares")
    if not isinstance(shares, dict) or not all(_share(x) for x in shares.values()):
        reader.problem(n, "ops record needs 'shares': an object of category -> fraction "
                          f"({_SHARE.lo:g} to 1), got {brief(shares)}")
        return None
    if obj.get("phase") not in PHASES:
        reader.problem(n, f"ops 'phase' must be {' or '.join(PHASES)}, got "
                          f"{brief(obj.get('phase'))}")
        return None
    _optional(reader, n, obj, _OPS_CHECKED)
    return obj


def _optional(reader: Any, n: int, obj: dict[str, Any], fields: tuple[Field, ...]) -> None:
    """Fields the tables read that may be absent or null: another value than the declaration
    allows is reported and dropped (the rest of the line used)."""
    for f in fields:
        v = obj.get(f.name)
        if v is not None and not f.ok(v):
            reader.problem(n, f"{obj.get('type')} '{f.name}' must be {f.describe()}, got "
                              f"{brief(v)}: field ignored, rest of the line used", False)
            del obj[f.name]


def _share(x: Any) -> bool:
    return type(x) in (int, float) and _SHARE.lo <= x <= _SHARE.hi
