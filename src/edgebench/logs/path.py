"""Where a log may be written: path and content checks, the one-writer lock, and cut-off ends.

`check_path(path)` refuses, before any work, what edgebench could not append to and read back: a name
not ending in `.jsonl` or `.jsonl.gz`, a folder, pipe, socket or device (except /dev/null, which is
written and never resumed), an existing file that is not an edgebench log (or is one of a newer
schema), a gzip log damaged before its end, and a log another process is writing.

`kind(path)` is "jsonl", "gz" or "null"; `open_append(path)` opens a log for appending; `lock(fd,
path, wait)` takes an exclusive `flock` (held until the fd closes): held by another process, it refuses
naming that process (from /proc/locks) or, with `wait`, waits. `whole_end(path, kind)` checks the
content and returns where its whole records end: the size, less a line or gzip member cut short by
a process killed or out of disk mid-write, which the writer then cuts off.
"""
from __future__ import annotations

import fcntl
import json
import os
import stat
import sys
import zlib
from pathlib import Path
from typing import Any

from edgebench.logs import schema as records
from edgebench.errors import UserError

LOG_SUFFIXES = (".jsonl", ".jsonl.gz")
FIRST_LINE_MAX = 16 << 20  # a run header is tens of KB; a longer first line is no edgebench header
_HEADER_START = b'{"type":"run",'  # how every header line begins (`records.dumps` keeps key order)
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 16


def check_path(path: str | os.PathLike, wait: bool = False) -> str:
    """Refuse a log path edgebench could not append to and read back (see the module doc), creating
    the file and its folder as a run would; returns its kind. With `wait`, a log that another process
    holds is not refused (the writer waits for it)."""
    what = kind(path)
    if what != "null":
        fd = open_append(path)
        try:
            if not wait:
                lock(fd, path, wait=False)
            whole_end(path, what)
        finally:
            os.close(fd)
    return what


def cannot(path: Any, exc: OSError) -> UserError:
    return UserError(f"cannot write the log {path}: {exc.strerror}; choose another path with -o")


def kind(path: str | os.PathLike) -> str:
    """"jsonl", "gz" (`*.jsonl.gz`) or "null" (/dev/null); anything else is refused with the fix."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise cannot(path, exc) from None
    p = Path(path)
    special = st is not None and not stat.S_ISREG(st.st_mode)
    if special and stat.S_ISCHR(st.st_mode) and st.st_rdev == os.stat(os.devnull).st_rdev:
        return "null"
    if special or (p.parts[:2] == ("/", "dev") and not p.name.endswith(LOG_SUFFIXES)):  # /dev/stdout
        what = _what(st.st_mode) if special else "a special file"
        raise UserError(f"the log {path} is {what}, not a log file: edgebench appends its log to a "
                        "file and reads it back to resume; give a file path ending in .jsonl (or "
                        "-o /dev/null to keep nothing)")
    if p.name.endswith(".jsonl.gz"):
        return "gz"
    if p.name.endswith(".jsonl"):
        return "jsonl"
    gz = p.name.endswith(".gz")
    stem = Path(p.name[:-3] if gz else p.name)
    better = (stem.stem if stem.suffix else stem.name) + (".jsonl.gz" if gz else ".jsonl")
    raise UserError(f"the log {path} is not named *.jsonl: edgebench writes JSONL logs and reads back only "
                    f"*.jsonl and *.jsonl.gz (gzip) files; use -o {p.with_name(better)}")


def _what(mode: int) -> str:
    for test, what in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a pipe (FIFO)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return what
    return "a special file"


def open_append(path: str | os.PathLike) -> int:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        raise cannot(path, exc) from None


def lock(fd: int, path: Any, wait: bool) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        who = _holder(fd)
    except OSError as exc:  # a filesystem without locks (some network mounts): write unguarded
        print(f"warning: cannot lock the log {path} ({exc.strerror}); a second run writing it at the same "
              "time would not be stopped", file=sys.stderr, flush=True)
        return
    if not wait:
        raise UserError(f"another process{who} is writing the log {path}; wait for it to end (--wait-lock "
                        "starts when it does), or write to another log with -o NEW.jsonl")
    print(f"waiting for the process{who} writing the log {path} to end", file=sys.stderr, flush=True)
    fcntl.flock(fd, fcntl.LOCK_EX)


def _holder(fd: int) -> str:
    """" (pid N: its command line)" for the process holding a flock on fd's file, from /proc/locks
    (Linux); "" where that cannot be told."""
    st = os.fstat(fd)
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            pids = [p[4] for p in (line.split() for line in fh)
                    if len(p) > 5 and p[1] == "FLOCK" and p[5] == where and p[4].isdigit()]
    except OSError:
        return ""
    if not pids:
        return ""
    try:
        with open(f"/proc/{pids[0]}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        cmd = ""
    cmd = cmd if len(cmd) <= 160 else cmd[:157] + "..."
    return f" (pid {pids[0]}{': ' + cmd if cmd else ''})"


def whole_end(path: str | os.PathLike, what: str) -> int:
    """Refuse an existing file that is not an edgebench log; returns where its whole records end
    (its size, less a cut-off last line or gzip member)."""
    with open(path, "rb") as fh:
        if what == "gz":
            end, first = _scan_gzip(fh, path)
        else:
            first = fh.readline(FIRST_LINE_MAX)
            end = _plain_end(fh)
    if not first:
        return end
    if first.endswith(b"\n"):
        try:
            obj = json.loads(first)
        except (ValueError, RecursionError):
            obj = None
        if isinstance(obj, dict) and obj.get("type") in records.RECORD_TYPES and type(obj.get("v")) is int:
            if obj["v"] > records.SCHEMA_VERSION:
                raise UserError(f"the log {path} was written by a newer edgebench (schema v{obj['v']}); "
                                "upgrade with pip install -U edgebench, or write to a new log with -o NEW.jsonl")
            return end
    if first.startswith(_HEADER_START) or (not first.endswith(b"\n") and _HEADER_START.startswith(first)):
        return end  # a header cut short (killed or out of disk while writing it)
    raise UserError(f"{path} exists and is not an edgebench log (its first line is not an edgebench "
                    "record); edgebench appends only to its own logs: write to a new file with -o NEW.jsonl")


def ends_line(path: str | os.PathLike) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def _plain_end(fh) -> int:
    """Where the last whole line of a plain log ends: after its last newline, or at the end where
    the unterminated last line is a whole JSON object (a line edited by hand)."""
    size = fh.seek(0, os.SEEK_END)
    pos, last = size, 0
    while pos > 0:
        step = min(_CHUNK, pos)
        fh.seek(pos - step)
        nl = fh.read(step).rfind(b"\n")
        if nl >= 0:
            last = pos - step + nl + 1
            break
        pos -= step
    if last == size:
        return size
    if size - last <= FIRST_LINE_MAX:
        fh.seek(last)
        try:
            if isinstance(json.loads(fh.read()), dict):
                return size
        except (ValueError, RecursionError):
            pass
    return last


def _scan_gzip(fh, path: Any) -> tuple[int, bytes]:
    """(where the last whole gzip member ends, the decompressed first line), reading every member.
    Data that is not gzip before the end of the file is refused: appending after it would hide the
    new lines from every reader."""
    if not _GZIP_MAGIC.startswith(fh.read(2)):
        raise UserError(f"the log {path} is not gzip data, though its name ends in .gz; name a plain "
                        "log *.jsonl, or write to a new log with -o NEW.jsonl.gz")
    fh.seek(0)
    d = zlib.decompressobj(31)
    base = end = 0
    first = b""
    while chunk := fh.read(_CHUNK):
        data = chunk
        while data:
            try:
                out = d.decompress(data, 1 << 20)
            except zlib.error:
                raise UserError(f"the log {path} is damaged: the bytes from {end} on are not gzip data; "
                                "edgebench will not append after them (the lines before are still read): "
                                "write to a new log with -o NEW.jsonl.gz") from None
            if b"\n" not in first and len(first) < FIRST_LINE_MAX:
                first += out
            if d.eof:
                rest = d.unused_data
                base += len(data) - len(rest)
                end = base
                d = zlib.decompressobj(31)
                data = rest
            else:
                tail = d.unconsumed_tail
                base += len(data) - len(tail)
                data = tail
    nl = first.find(b"\n")
    return end, (first[:nl + 1] if nl >= 0 else first)
