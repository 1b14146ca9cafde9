"""The crash-safe log writer: one writer per log, one fsynced line per record, resume and repair.

`LogWriter(path, wait=False)` checks the path (`edgebench.logs.path`), takes an exclusive lock on the
log for as long as it is open (a second writer refuses at once naming the process that holds it, or
with `wait=True` waits for it), then cuts off an end left by a process killed or out of disk
mid-write: a plain log's partial last line, a `.jsonl.gz` log's partial gzip member. Each `write`
appends one line with `os.write` and fsyncs it, so a kill loses at most the record being written; a
`.jsonl.gz` log gets one gzip member per line (gzip readers read concatenated members as one
stream). /dev/null is written, never locked, fsynced or resumed. A write that fails (ENOSPC, EROFS,
EIO) is undone, the file cut back to where the line began, and raises `LogWriteError`: "N cases
recorded, rerun to resume". `finished_keys()` gives the cases already in the log, for resuming.

Text is UTF-8; a lone surrogate (a path or argument that is not valid UTF-8, decoded with
surrogateescape) is written as its JSON escape `\\udcXX`, which reads back as the same string.
"""
from __future__ import annotations

import errno
import gzip
import json
import os
import sys
from typing import Any, Iterator

from edgebench.logs import path as logpath
from edgebench.logs import schema as records
from edgebench.errors import UserError


class LogWriteError(UserError):
    """The log could not be written (disk full, read-only, I/O error); the line was undone."""


def encode(record: dict[str, Any]) -> bytes:
    """One log line: `records.dumps` as UTF-8, lone surrogates as their JSON escapes, and a newline."""
    return records.dumps(record).encode("utf-8", "backslashreplace") + b"\n"


class LogWriter:
    """Appends records to a log it holds locked; see the module doc. `counting` names the record
    type that a write error's message counts ("case" or "maxctx")."""

    def __init__(self, path: str | os.PathLike, wait: bool = False, counting: str = "case"):
        self.path = path
        self.kind = logpath.kind(path)
        self.counting = counting
        self.recorded = 0  # records of type `counting` in the log: resumed ones and this writer's
        if self.kind == "null":
            self._fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
            return
        self._fd = logpath.open_append(path)
        try:
            logpath.lock(self._fd, path, wait)
            end = logpath.whole_end(path, self.kind)
            size = os.fstat(self._fd).st_size
            if end < size:
                os.ftruncate(self._fd, end)
                print(f"{path}: removed the cut-off end of its last record ({size - end} bytes, left by "
                      "a run that stopped mid-write)", file=sys.stderr, flush=True)
            elif self.kind == "jsonl" and size and not logpath.ends_line(path):
                os.write(self._fd, b"\n")  # a whole last line without its newline (edited by hand)
        except OSError as exc:
            os.close(self._fd)
            raise logpath.cannot(path, exc) from None
        except BaseException:
            os.close(self._fd)
            raise

    def finished_keys(self) -> set[str]:
        """Keys of the cases already in the log (any status), for resuming a sweep."""
        keys: set[str] = set()
        if self.kind != "null":
            for obj in _objects(self.path, self.kind):
                if obj.get("type") == "case":
                    case = records.expand_case(obj)
                    if all(k in case for k in records.KEY_FIELDS):
                        keys.add(case["key"])
        if self.counting == "case":
            self.recorded = len(keys)
        return keys

    def write(self, record: dict[str, Any]) -> None:
        record.setdefault("v", records.SCHEMA_VERSION)
        data = encode(record)
        if self.kind == "gz":
            data = gzip.compress(data, mtime=0)
        start = os.lseek(self._fd, 0, os.SEEK_END)
        whole = False
        try:
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                if n <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[n:]
            whole = True
            if self.kind != "null":
                _sync(self._fd)
        except OSError as exc:
            self._undo(start)
            raise LogWriteError(f"cannot write the log {self.path} ({exc.strerror or exc}): "
                                f"{self._tally()}") from None
        except BaseException:  # Ctrl-C inside the write: no partial line stays behind
            if not whole:
                self._undo(start)
            raise
        if record.get("type") == self.counting:
            self.recorded += 1

    def _tally(self) -> str:
        n = self.recorded
        if self.counting == "case":
            return f"{n} case{'' if n == 1 else 's'} recorded, rerun to resume"
        return f"{n} {self.counting} result{'' if n == 1 else 's'} recorded, rerun to measure the rest"

    def _undo(self, start: int) -> None:
        if self.kind != "null":
            try:
                os.ftruncate(self._fd, start)
            except OSError:  # left for the next writer to cut off
                pass

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # releases the lock
            self._fd = -1

    def __enter__(self) -> "LogWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sync(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError as exc:  # a file system that cannot sync (EINVAL) still has the line written
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise


def _objects(path: str | os.PathLike, kind: str) -> Iterator[dict[str, Any]]:
    """The JSON objects of a log whose end is whole, line by line; other lines are passed over."""
    opener = gzip.open if kind == "gz" else open
    with opener(path, "rb") as fh:
        for line in fh:
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(obj, dict):
                yield obj
