"""Token counts and byte sizes as people type them, and byte counts as people read them.

- `parse_count("32k") -> 32768`: token counts use binary suffixes, k/K = 1024 and m/M = 1024**2, as in
  "a 32k context". A decimal is accepted when the result is a whole number ("1.5k" -> 1536); "1.3k"
  (1331.2 tokens) is refused. Plain integers pass through; negative or empty input is refused.
- `parse_size("24GiB") -> 25769803776`: binary units KiB/MiB/GiB/TiB (2**10 ...) and decimal units
  KB/MB/GB/TB (10**3 ...), B or no unit for bytes; units are case-insensitive ("24gib"). A bare "24G"
  is refused because it is ambiguous (GiB for PyTorch and Docker, GB for disk makers); the message
  says to write 24GiB or 24GB. Fractions of a byte are rounded down.
- `format_bytes(n)` -> "1.50 GiB" (binary units, three significant figures).

Every failure raises `UserError` naming the bad text and the accepted forms.
"""
from __future__ import annotations

import re

from edgebench.errors import UserError

COUNT_SUFFIXES = {"": 1, "k": 1024, "m": 1024**2}
SIZE_UNITS = {
    "b": 1,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
}
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_COUNT_RE = re.compile(_NUMBER + r"\s*([kKmM]?)")
_SIZE_RE = re.compile(_NUMBER + r"\s*([A-Za-z]*)")

COUNT_FORMS = "an integer, optionally with k (x1024) or m (x1024**2), e.g. 512, 4k, 32K, 1.5k, 1m"
SIZE_FORMS = "a number with a unit: B, KiB, MiB, GiB, TiB (powers of 2) or KB, MB, GB, TB (powers of 10), e.g. 24GiB, 8GB, 512MiB"


def parse_count(text: str | int) -> int:
    """A non-negative token count from text like "32k", "4096", "1.5k"."""
    if isinstance(text, bool):
        raise UserError(f"expected a token count, got {text!r}; write {COUNT_FORMS}")
    if isinstance(text, int):
        if text < 0:
            raise UserError(f"token count {text} is negative; write {COUNT_FORMS}")
        return text
    raw = str(text).strip()
    match = _COUNT_RE.fullmatch(raw)
    if not match:
        raise UserError(f"cannot read token count {str(text)!r}; write {COUNT_FORMS}")
    number, suffix = match.groups()
    multiplier = COUNT_SUFFIXES[suffix.lower()]
    if "." not in number:
        return int(number) * multiplier
    scaled = float(number) * multiplier
    if scaled != int(scaled):
        raise UserError(f"token count {raw!r} is {scaled:g} tokens, not a whole number; "
                        f"write {COUNT_FORMS}")
    return int(scaled)


def parse_size(text: str | int) -> int:
    """A positive number of bytes from text like "24GiB", "8GB", "512MiB", "1.5GiB" (or an int)."""
    if isinstance(text, bool):
        raise UserError(f"expected a memory size, got {text!r}; write {SIZE_FORMS}")
    if isinstance(text, int):
        if text <= 0:
            raise UserError(f"memory size {text} must be positive; write {SIZE_FORMS}")
        return text
    raw = str(text).strip()
    match = _SIZE_RE.fullmatch(raw)
    if not match:
        raise UserError(f"cannot read memory size {str(text)!r}; write {SIZE_FORMS}")
    number, unit = match.groups()
    unit_key = unit.lower() or "b"
    if unit_key in ("k", "m", "g", "t"):
        big = unit.upper()
        raise UserError(f"memory size {raw!r} is ambiguous: write {number}{big}iB "
                        f"(powers of 2) or {number}{big}B (powers of 10)")
    if unit_key not in SIZE_UNITS:
        raise UserError(f"unknown unit {unit!r} in memory size {raw!r}; write {SIZE_FORMS}")
    if "." in number:
        size_bytes = int(float(number) * SIZE_UNITS[unit_key])
    else:
        size_bytes = int(number) * SIZE_UNITS[unit_key]
    if size_bytes <= 0:
        raise UserError(f"memory size {raw!r} must be positive; write {SIZE_FORMS}")
    return size_bytes


def format_bytes(n_bytes: int | float) -> str:
    """Human-readable binary size: 512 -> "512 B", 1536 -> "1.50 KiB", 1.4e9 -> "1.30 GiB"."""
    value = float(n_bytes)
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value < 1024:
        return f"{sign}{value:.0f} B"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1024 or unit == "PiB":
            digits = 2 if value < 10 else 1 if value < 100 else 0
            return f"{sign}{value:.{digits}f} {unit}"
    raise AssertionError("unreachable")
