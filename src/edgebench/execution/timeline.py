"""Where a run's seconds outside its points go: named moments of its start-up and tear-down, on this
process's monotonic clock, in seconds since the process started.

`begin()` (the CLI's `main`) sets the origin and forgets earlier marks; `mark(name)` records a moment
of the process (the first mark of a name wins); `since_start(t)` converts a
`time.monotonic()` reading (a fork server's start and READY) to the same scale. The origin is the
process's start as the kernel records it (/proc/self/stat, 10 ms ticks), so the interpreter's own
start and the CLI's imports are counted too; where /proc is absent, and for a second `begin()` in one
process (tests calling the CLI in-process), it is `begin()`'s call, and `main` reads 0. The run header's `startup_s` and the closing `end` record's `teardown_s` hold these
(see `edgebench.logs.schema`); `bench/run_overhead.py` splits "outside the points" by them.
"""
from __future__ import annotations

import os
import time

_origin: float | None = None  # time.monotonic() at the process's start
_marks: dict[str, float] = {}
_begun = False


def _process_age_s() -> float | None:
    """Seconds since this process started (Linux: /proc/self/stat's starttime against
    CLOCK_BOOTTIME, the clock it is counted on), or None where that is unknown."""
    try:
        with open("/proc/self/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rpartition(")")[2].split()
        start_s = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat, 20 after the name
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - start_s
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return age if 0 <= age < 3600 else None


def begin() -> None:
    """Set the origin, forget earlier marks, and mark `main`: the CLI's entry."""
    global _origin, _begun
    now = time.monotonic()
    age = None if _begun else _process_age_s()
    _origin, _begun = now - (age or 0.0), True
    _marks.clear()
    _marks["main"] = round(now - _origin, 3)


def since_start(t: float | None = None) -> float:
    """A `time.monotonic()` reading (default: now) in seconds since the process started."""
    if _origin is None:  # called outside the CLI (a library user, a test): from now on
        begin()
    return round((time.monotonic() if t is None else t) - _origin, 3)


def mark(name: str, t: float | None = None) -> None:
    """Record moment `name` (now, or monotonic `t`), unless it is recorded already."""
    _marks.setdefault(name, since_start(t))


def marks() -> dict[str, float]:
    """The moments recorded so far, in the order they were first recorded."""
    return dict(_marks)
