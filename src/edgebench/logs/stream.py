"""A log file's bytes as blocks of whole lines, streamed, within a line cap and a file cap.

`blocks(path, limits, problem)` reads a plain or gzip file a few MiB at a time (decompressed as it
goes) and yields `(first line number, block, unterminated)`: each block holds whole lines ending in
a newline, except the file's last line when the file does not end in one (`unterminated`). Memory
stays within about two blocks whatever the file holds. Over the caps of `ReadLimits`:
- a line longer than `max_line_bytes` is passed over (never held whole) and reported as
  `file:line` with its length and the flag that raises the cap; an empty line stands in for it in
  the block, so the lines after it keep their numbers;
- past `max_log_bytes` read from one file (after decompression: a small .gz can inflate to
  gigabytes) the rest of the file is not read, and that is reported with the flag.
A damaged gzip stream or an unreadable file is reported too; the lines before it are yielded.
`problem(line, reason, skipped)` receives each report; nothing here raises on content.
"""
from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from edgebench.sweep.units import format_bytes

MAX_LINE_BYTES = 4 << 20  # real lines are ~1-3 KB; --raw samples add ~8 B per decoded token
MAX_LOG_BYTES = 2 << 30
LINE_FLAG, LOG_FLAG = "--max-line-bytes", "--max-log-bytes"
_BLOCK = 8 << 20
_MIN_BLOCK = 1 << 20

Report = Callable[[int | None, str, bool], None]


@dataclass(frozen=True)
class ReadLimits:
    """The caps a reader holds to: bytes in one line, bytes read from one file (decompressed)."""

    max_line_bytes: int = MAX_LINE_BYTES
    max_log_bytes: int = MAX_LOG_BYTES


def _too_long(length: int, limits: ReadLimits, ended: bool = True) -> str:
    size = f"{length:,} bytes" if ended else f"at least {length:,} bytes, not ended"
    return (f"line of {size}, over the {format_bytes(limits.max_line_bytes)} line limit: "
            f"skipped; raise the limit with {LINE_FLAG} to read it")


def blocks(path: Path, limits: ReadLimits, problem: Report) -> Iterator[tuple[int, bytes, bool]]:
    """Blocks of whole lines of `path` (see the module docstring)."""
    max_line = limits.max_line_bytes
    size = min(_BLOCK, max_line) if max_line >= _MIN_BLOCK else _BLOCK
    scan = size > max_line  # a line inside one read may pass the cap: each line is measured
    n, carry, skipping, total, cut = 1, b"", 0, 0, False
    try:
        fh = gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")
    except OSError as exc:
        problem(None, f"cannot read the file ({exc.strerror or exc}): skipped", True)
        return
    with fh:
        while not cut:
            try:
                chunk = fh.read(size)
            except (EOFError, OSError, zlib.error) as exc:
                what = "gzip stream damaged or cut short" if path.name.endswith(".gz") else \
                    "read error"
                problem(None, f"{what} ({exc}); the lines before it are read", False)
                break
            if not chunk:
                break
            total += len(chunk)
            if total > limits.max_log_bytes:
                chunk, cut = chunk[:len(chunk) - (total - limits.max_log_bytes)], True
            if skipping:  # the rest of a line over the cap: passed over up to its newline
                end = chunk.find(b"\n")
                if end < 0:
                    skipping += len(chunk)
                    continue
                problem(n, _too_long(skipping + end, limits), True)
                n, skipping, chunk = n + 1, 0, chunk[end + 1:]
            data = carry + chunk if carry else chunk
            end = data.rfind(b"\n") + 1
            block, carry = data[:end], data[end:]
            if len(carry) > max_line:
                skipping, carry = len(carry), b""
            if block:
                block = _drop_long_lines(block, n, scan, limits, problem)
                yield n, block, False
                n += block.count(b"\n")
    if cut:
        problem(None, f"more than {format_bytes(limits.max_log_bytes)} (read after "
                      f"decompression): lines from {n} on not read; raise the limit with "
                      f"{LOG_FLAG} to read them", False)
    elif skipping:
        problem(n, _too_long(skipping, limits, ended=False), True)
    elif carry:
        yield n, carry, True


def _drop_long_lines(block: bytes, n: int, scan: bool, limits: ReadLimits,
                     problem: Report) -> bytes:
    """The block with each line over the cap reported and left empty. Without `scan` only the
    first line can be over (the others lie within one read, no longer than the cap)."""
    max_line = limits.max_line_bytes
    if not scan:
        first = block.find(b"\n")
        if first <= max_line:
            return block
        problem(n, _too_long(first, limits), True)
        return block[first:]
    lines = block.split(b"\n")
    if max(map(len, lines)) <= max_line:
        return block
    for k, line in enumerate(lines):
        if len(line) > max_line:
            problem(n + k, _too_long(len(line), limits), True)
            lines[k] = b""
    return b"\n".join(lines)


def text_lines(path: Path, limits: ReadLimits, problem: Report) -> Iterator[str]:
    """The lines of a text file (decoded as UTF-8, bad bytes replaced), each ending in a newline
    except perhaps the last; a line over the cap comes as an empty line (reported)."""
    for _, block, _ in blocks(path, limits, problem):
        lines = block.decode("utf-8", errors="replace").split("\n")
        last = lines.pop()  # "" after a block's final newline
        yield from (line + "\n" for line in lines)
        if last:
            yield last
