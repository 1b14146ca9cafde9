"""Sweep progress: a rich progress bar on a terminal, one plain line per case otherwise (logs, CI)."""
from __future__ import annotations

import sys

from edgebench.logs import schema as records


def describe(rec: dict) -> str:
    """One line for a finished case: the numbers a user looks at first, or the failure."""
    head = f"{rec.get('model')} ctx={rec.get('ctx')} {rec.get('decode_mode')}"
    if rec.get("status") != "ok":
        return f"{head}: {rec.get('status')} ({rec.get('reason')})"
    pre = (rec.get("prefill_ms") or {}).get("median")
    tp = (rec.get("tpot_ms") or {}).get("median")
    parts = [f"prefill {pre:.2f} ms" if pre is not None else "prefill -",
             f"TPOT {tp:.3f} ms" if tp is not None else "TPOT -"]
    peak = records.peak_bytes(rec)
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

    def advance(self, rec: dict) -> None:
        self.done += 1
        if not self.enabled:
            return
        line = f"[{self.done}/{self.total}] {describe(rec)}"
        if self._bar:
            self._bar.console.print(line, markup=False, highlight=False)
            self._bar.advance(self._task)
        else:
            print(line, file=sys.stderr, flush=True)

    def __exit__(self, *exc: object) -> None:
        if self._bar:
            self._bar.stop()
