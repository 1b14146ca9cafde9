"""Sweep progress: a rich progress bar on a terminal, one plain line per point otherwise (logs, CI)."""
from __future__ import annotations

import sys

from edgebench.logs import schema as records


def flags(rec: dict) -> str:
    """" [host-bound, unstable]" for a line so flagged, else ""."""
    got = [name for name, key in (("host-bound", "host_bound"), ("unstable", "unstable")) if rec.get(key)]
    return f" [{', '.join(got)}]" if got else ""


def describe(recs: dict) -> str:
    """One line for a finished point ({decode mode or None: its line}): the numbers a user looks at
    first, or the failures."""
    pre = recs[None]
    head = f"{pre.get('model')} ctx={pre.get('ctx')}"
    if pre.get("status") != "ok":
        return f"{head}: {pre.get('status')} ({pre.get('reason')})"
    med = (pre.get("prefill_ms") or {}).get("median")
    parts = [f"prefill {med:.2f} ms{flags(pre)}" if med is not None else "prefill -"]
    for mode, rec in recs.items():
        if mode is None:
            continue
        tp = (rec.get("tpot_ms") or {}).get("median")
        parts.append(f"{mode} TPOT {tp:.3f} ms{flags(rec)}" if rec.get("status") == "ok" and tp
                     else f"{mode} {rec.get('status')} ({rec.get('reason')})")
    peak = max((p for p in map(records.peak_bytes, recs.values()) if p), default=None)
    if peak:
        parts.append(f"peak {peak / 2**30:.2f} GiB")
    return f"{head}: " + ", ".join(parts)


class Progress:
    def __init__(self, total: int, enabled: bool = True):
        self.total, self.enabled, self.done = total, enabled, 0
        self.tty = enabled and sys.stderr.isatty()
        self._bar = None

    def __enter__(self) -> "Progress":
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, \
                TextColumn, TimeElapsedColumn
            # On stderr, where the plain lines go too: stdout keeps the summary and the log's path.
            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), transient=False, console=Console(stderr=True))
            self._bar.start()
            self._task = self._bar.add_task("starting", total=self.total)
        return self

    def show(self, what: str) -> None:
        if self._bar:
            self._bar.update(self._task, description=what)

    def advance(self, recs: dict) -> None:
        self.done += 1
        if not self.enabled:
            return
        line = f"[{self.done}/{self.total}] {describe(recs)}"
        if self._bar:
            self._bar.console.print(line, markup=False, highlight=False)
            self._bar.advance(self._task)
        else:
            print(line, file=sys.stderr, flush=True)

    def __exit__(self, *exc: object) -> None:
        if self._bar:
            self._bar.stop()
