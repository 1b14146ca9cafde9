"""What a value read from a log may be, and how log text is shown safely.

The readers (`edgebench.logs.file_reader`, `edgebench.logs.case_lines`, `edgebench.logs.importers`)
accept a number only when it is finite and inside the range its quantity can have (`in_range` with
the bounds the schema declares: `edgebench.logs.fields`), so that every table, format and plot made
from what they accept renders: no derived value overflows, none is NaN, every JSON writer takes it. `loads` is the stdlib JSON parser as the
readers use it: NaN, Infinity and numbers past the float range are read as null and flagged (they
are not JSON; orjson refuses them), integers past 64 bits become floats (as orjson reads them), and
nesting too deep for the parser is a ValueError, not a RecursionError.

`brief(value)` is a short repr for messages, whatever the value (a 1 MB string, a list nested a
thousand deep). `printable(text)` escapes what a terminal would act on or cannot encode: control
characters (ESC, BEL, CR, ...), bidirectional overrides and lone surrogates become visible escapes
(`\\x1b`, `\\u202e`, `\\udc80`); `printable_column` does it for a column of cells at once.
`shorten(text, limit)` cuts text for displays that cannot show it whole (terminal cells,
plot labels).
"""
from __future__ import annotations

import json
import re
import reprlib
from typing import Any, Sequence

_NUM = (int, float)


def is_int(x: Any) -> bool:
    return type(x) is int


def in_range(x: Any, lo: float, hi: float) -> bool:
    """A number (not a bool) with lo <= x <= hi: false for NaN, infinities and huge ints."""
    return type(x) in _NUM and lo <= x <= hi


def int_in(x: Any, lo: int, hi: int) -> bool:
    return type(x) is int and lo <= x <= hi


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlong = 40
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxdict = _REPR.maxtuple = 4


def brief(value: Any) -> str:
    """A repr of at most about a hundred characters, safe for any parsed JSON value."""
    return _REPR.repr(value)


# C0 and C1 controls, DEL, bidirectional marks and overrides, line/paragraph separators, and lone
# surrogates (from a JSON \\ud800 or a file name that is not UTF-8), which no encoder writes.
_OTHER = "\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE = re.compile(f"[\x00-\x1f{_OTHER}]")
_UNSAFE_IN_FIELD = re.compile(f"[\x00-\x08\x0b-\x1f{_OTHER}]")  # tab and newline kept


def _escape(m: re.Match) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def printable(text: str, field: bool = False) -> str:
    """`text` with control characters, bidi overrides and lone surrogates escaped; with `field`
    (a CSV field, quoted by the writer) tabs and newlines are kept."""
    pattern = _UNSAFE_IN_FIELD if field else _UNSAFE
    return pattern.sub(_escape, text) if pattern.search(text) else text


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, the cut marked ("...")."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def printable_column(cells: Sequence[str]) -> Sequence[str]:
    """`printable` over a column of strings (the column itself when nothing needs escaping)."""
    if not _UNSAFE.search("".join(cells)):
        return cells
    return [printable(c) for c in cells]


class _Flags:
    non_finite = False


def _constant(name: str) -> None:  # NaN, Infinity, -Infinity
    _Flags.non_finite = True
    return None


def _float(text: str) -> float | None:
    x = float(text)
    if x - x != 0.0:  # inf (1e400)
        _Flags.non_finite = True
        return None
    return x


def _int(text: str) -> int | float | None:
    x = int(text)
    if -(1 << 63) <= x < (1 << 64):
        return x
    try:
        return float(x)  # as orjson reads an integer past 64 bits
    except OverflowError:
        _Flags.non_finite = True
        return None


def loads(text: str) -> tuple[Any, bool]:
    """(parsed value, whether a non-finite number was read as null). Raises ValueError on bad JSON,
    including nesting too deep to parse."""
    _Flags.non_finite = False
    try:
        obj = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except RecursionError:
        raise ValueError("nested too deeply to read") from None
    return obj, _Flags.non_finite


NON_FINITE = ("NaN, Infinity or a number past the float range (not JSON) read as null; "
              "the rest of the line used")


def json_error(exc: ValueError) -> str:
    """A JSON parse error as one short phrase (message and column where known)."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at column {exc.colno}"
    text = str(exc)
    return text if len(text) <= 160 else text[:157] + "..."
