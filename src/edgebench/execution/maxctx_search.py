"""The longest context that fits: exponential growth, then bisection, as a pure function.

`search(probe, start, limit, resolution)` calls `probe(ctx) -> status` at chosen context lengths:

1. Growth: `start` rounded up to a multiple of `resolution`, then doubling, the last step clipped to
   `limit`, until a probe fails or `limit` passes.
2. Bisection between the last passing and the first failing length, at multiples of `resolution`,
   until they are at most `resolution` apart.

Statuses: "ok" passes; "oom" and "killed" fail (the context does not fit). "error" fails too once a
shorter length has passed (the model runs, but not at this length: e.g. a kernel's 32-bit indexing
overflows), so the search bisects below it; `limited_by` then says "error" rather than "oom". An error
before any pass, and anything else (e.g. "timeout" if the caller maps timeouts apart from kills),
stops the search, with `stopped` naming the status and length. Each length is probed at most once.
If `start` fails, `max_ok` is None; if `limit` passes, `min_fail` is None.

Cost: growth takes at most ceil(log2(limit / start)) + 1 probes and bisection at most
ceil(log2(max_ok / resolution)), so with start = resolution the count is up to about twice
log2(range / resolution) (16 probes for 1k..256k at 1k, against 8 for blind bisection). In wall time
the growth probes, each half as long as the next, add up to less than about one probe at the final
length, and they never start with a huge context that could wake a Jetson's OOM killer. Passing a
`start` near half an analytic prediction cuts growth to one or two probes, bringing the count to
log2(range / resolution) + 2.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from edgebench.errors import UserError

PASS_STATUSES = ("ok",)
FAIL_STATUSES = ("oom", "killed")


@dataclass
class Result:
    max_ok: int | None
    min_fail: int | None
    probes: int
    trail: list[tuple[int, str]] = field(default_factory=list)
    resolution: int = 1024
    stopped: str | None = None

    @property
    def limited_by(self) -> str | None:
        """The status of the smallest failing length ("oom", "killed" or "error"), None if none."""
        return next((st for ctx, st in self.trail if ctx == self.min_fail), None)

    def to_record(self) -> dict[str, Any]:
        """The fields of a `maxctx` log record that come from the search."""
        return {"max_ok_ctx": self.max_ok, "min_fail_ctx": self.min_fail, "probes": self.probes,
                "resolution": self.resolution, "trail": [list(t) for t in self.trail],
                "stopped": self.stopped, "limited_by": self.limited_by}


def partial(trail: list[tuple[int, str]], resolution: int, stopped: str) -> Result:
    """What an unfinished search (interrupted, or its process killed) has shown so far: the longest
    passing length probed, and the shortest failing length above it."""
    ok = [c for c, st in trail if st in PASS_STATUSES]
    max_ok = max(ok) if ok else None
    fails = [c for c, st in trail if (st in FAIL_STATUSES or (st == "error" and ok))
             and (max_ok is None or c > max_ok)]
    return Result(max_ok, min(fails) if fails else None, len(trail), list(trail), resolution, stopped)


def _round_up(value: int, resolution: int) -> int:
    return -(-value // resolution) * resolution


def search(probe: Callable[[int], str], start: int, limit: int, resolution: int = 1024,
           trail: list[tuple[int, str]] | None = None) -> Result:
    """Find the largest passing context in [start, limit] to within `resolution` tokens. Pass `trail`
    (a list, appended to as probes finish) to keep the probes made if the search is interrupted."""
    if resolution < 1:
        raise UserError(f"resolution must be at least 1 token, got {resolution}")
    if start < 1 or limit < 1:
        raise UserError(f"start and limit must be positive token counts, got {start} and {limit}")
    first = min(_round_up(start, resolution), limit)
    if start > limit:
        raise UserError(f"start {start} is above the limit {limit}; lower the start or raise the limit")
    trail = [] if trail is None else trail

    def run(ctx: int) -> str:
        status = str(probe(ctx))
        trail.append((ctx, status))
        return status

    def done(max_ok: int | None, min_fail: int | None, stopped: str | None = None) -> Result:
        return Result(max_ok, min_fail, len(trail), trail, resolution, stopped)

    last_ok: int | None = None
    ctx = first
    while True:
        status = run(ctx)
        if status in FAIL_STATUSES or (status == "error" and last_ok is not None):
            first_fail = ctx
            break
        if status not in PASS_STATUSES:
            return done(last_ok, None, f"{status} at ctx={ctx}")
        last_ok = ctx
        if ctx >= limit:
            return done(last_ok, None)
        ctx = min(ctx * 2, limit)
    if last_ok is None:
        return done(None, first_fail)

    lo, hi = last_ok, first_fail
    while hi - lo > resolution:
        mid = lo + max(resolution, (hi - lo) // 2 // resolution * resolution)
        if mid >= hi:
            break
        status = run(mid)
        if status in PASS_STATUSES:
            lo = mid
        elif status in FAIL_STATUSES or status == "error":
            hi = mid
        else:
            return done(lo, hi, f"{status} at ctx={mid}")
    return done(lo, hi)
