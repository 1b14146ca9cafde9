"""`Field`: how `edgebench.logs.schema` declares one field of a log line (type, unit, default,
when the compact writer leaves it out, the bounds readers check), and the bounds themselves.

The bounds are wide enough for any real log (a context of 10^12 tokens, a petabyte, a time of 30
years) and narrow enough that every product and ratio of them stays a finite float, so every
table, format and plot made from what the readers accept renders.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

# Bounds of the quantities the tables and plots compute with.
MAX_TOKENS = 1 << 40  # contexts, generated tokens, probe counts, search resolution
MAX_BATCH = 1 << 20
MAX_COUNT = 1 << 53  # a Stats object's sample count
MAX_BYTES = 1 << 60
MIN_MS, MAX_MS = 1e-6, 1e12  # a positive median time (1 ns .. 30 years), in ms
MAX_JOULES = 1e15
MAX_SECONDS = 1e9
MAX_WORK = 10 ** 24  # FLOPs or bytes a phase must process: a yotta-FLOP prefill is past any real case
MAX_SHARE = 1.0 + 1e-6  # a fraction of GPU time (rounded shares may sum a hair over 1)

_NUM = (int, float)
_TYPES: dict[type, tuple[type, ...]] = {float: _NUM, int: (int,), str: (str,), bool: (bool,),
                                        dict: (dict,), list: (list,)}
_WHAT = {"tokens": "an integer from {lo:,} to {hi:,}", "count": "an integer from {lo:,} to {hi:,}",
         "s": "seconds from {lo:g} to {hi:g}", "bytes": "bytes from {lo:,} to {hi:,}",
         "ms": "a time in ms from {lo:g} to {hi:g}", "j": "joules from {lo:g} to {hi:g}",
         "share": "a fraction from {lo:g} to {hi:g}"}


@dataclass(frozen=True)
class Field:
    """One field of a log line: JSON type (float = any number), unit (its name carries it where
    it is a number with a physical unit), default, when the compact writer leaves it out, whether
    the readers check it and the bounds they hold it to (`lo`..`hi`, both inclusive)."""

    name: str
    type: type
    doc: str
    unit: str = ""
    default: Any = None
    omit: str = ""  # "" never | "default" | "derived" | "null-when-ok"
    checked: bool = False
    lo: float | None = None
    hi: float | None = None
    check: Callable[[Any], bool] | None = None  # a structural check beyond type and bounds
    what: str = ""  # what a valid value is, for messages ("" = from type, unit and bounds)
    derive: tuple[str, str] = ()  # (joules field, phase time field) of a derived mean power

    def ok(self, v: Any) -> bool:
        """Whether a present, non-null value is valid (type, bounds, structure)."""
        if type(v) not in _TYPES[self.type]:
            return False
        if self.lo is not None and not self.lo <= v <= self.hi:
            return False
        return self.check is None or self.check(v)

    def describe(self) -> str:
        if self.what:
            return self.what
        if self.type is str:
            return "a string"
        form = _WHAT.get(self.unit)
        return form.format(lo=self.lo, hi=self.hi) if form and self.lo is not None else \
            f"a {self.type.__name__}"

    @property
    def stem(self) -> str | None:
        """The quantity without its unit (`prefill_ms` -> prefill, `decode_j_per_token` ->
        decode_per_token), for naming a known quantity written in another unit; None when the name
        carries no unit."""
        token = f"_{self.unit}"
        if not self.unit or self.unit in ("tokens", "count", "share"):
            return None
        if self.name.endswith(token):
            return self.name[:-len(token)]
        return self.name.replace(token + "_", "_", 1) if token + "_" in self.name else None


def fields(*fields: Field) -> dict[str, Field]:
    return {f.name: f for f in fields}


def count_ok(x: Any) -> bool:
    return type(x) is int and 0 <= x <= MAX_TOKENS


def trail_ok(x: Any) -> bool:
    return all(type(p) is list and len(p) == 2 and count_ok(p[0]) and type(p[1]) is str for p in x)


def text(name: str, doc: str, **kw: Any) -> Field:
    return Field(name, str, doc, **kw)


def byte_count(name: str, doc: str, checked: bool = False) -> Field:
    return Field(name, float, doc, "bytes", checked=checked, lo=0, hi=MAX_BYTES)


def tokens(name: str, doc: str, checked: bool = False, lo: int = 0) -> Field:
    return Field(name, int, doc, "tokens", checked=checked, lo=lo, hi=MAX_TOKENS)
