"""Where case workers' output goes: one file per case beside the log, its tail when a case fails, a
live copy for -v, and the environment that keeps library chatter out of it.

A sweep writing `results.jsonl` puts each worker's stdout and stderr (file descriptors 1 and 2, so
C-level lines such as Kineto's reach it too) in `results.jsonl.workers/<model>-ctx<N>-<mode>-<key>.txt`
(key: the case's `key`, see `records.case_key`), and the preloaded parent's own in `preload.txt` there.
A file the worker left empty is removed, and the folder too when it ends empty. A failed case's record names its file (`worker_log`, relative
to the log's folder), and an error or a kill prints its last `TAIL_LINES` lines.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Callable

TAIL_LINES = 20
# Set in every worker unless the user set them (edgebench.execution.isolate.worker_env). Kineto's levels are
# VERBOSE 0, INFO 1, WARNING 2, STAGE 3, ERROR 4, USDT 5: 6 silences its "USDT ... profiler_start"
# and "ERROR ... gpuGetDeviceCount failed with code 35" lines (measured with torch 2.13).
QUIET_ENV = {"TRANSFORMERS_VERBOSITY": "error", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
             "KINETO_LOG_LEVEL": "6", "TORCH_CPP_LOG_LEVEL": "ERROR", "TF_CPP_MIN_LOG_LEVEL": "2",
             "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def tail(path: str | os.PathLike, lines: int = TAIL_LINES) -> list[str]:
    """The last non-blank lines of a worker's output file ([] when it is missing or empty). When it
    ends in a stack dump (a worker stopped for its timeout prints one), the dump's innermost frames:
    the current thread's first lines."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    found = [line.rstrip("\r") for line in text.splitlines() if line.strip()]
    dumps = [i for i, line in enumerate(found) if line.endswith("(most recent call first):")]
    if dumps:
        current = [i for i in dumps if found[i].startswith("Current thread")]
        start = current[-1] if current else dumps[0]
        return found[start:start + lines]
    return found[-lines:]


class Follower:
    """Passes each complete line a worker adds to its output file to `echo`, as it comes."""

    def __init__(self, path: Path, echo: Callable[[str], None]):
        self.path, self.echo, self.pos, self.rest = path, echo, 0, b""

    def pump(self, final: bool = False) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.pos)
                data = fh.read()
        except OSError:
            return
        self.pos += len(data)
        *lines, self.rest = (self.rest + data).split(b"\n")
        if final and self.rest:
            lines, self.rest = lines + [self.rest], b""
        for line in lines:
            self.echo(line.decode("utf-8", errors="replace").rstrip("\r"))


class WorkerLogs:
    """The per-case output files of one log. `say` prints a line for the user (None: print nothing);
    with `verbose`, `echo` copies worker output to it live."""

    def __init__(self, log_path: str | os.PathLike, say: Callable[[str], None] | None,
                 verbose: bool = False):
        self.log_dir = Path(log_path).parent
        self.dir = Path(f"{log_path}.workers")
        self.say, self.verbose = say, verbose
        self.echo = (lambda line: say(f"  | {line}")) if verbose and say else None

    def path(self, *parts: object) -> Path:
        """The file for a worker named by `parts` (e.g. model, "ctx512", mode, key); the folder is made
        on first use (a temporary one where the log's folder takes none)."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            tmp = Path(tempfile.mkdtemp(prefix="edgebench-workers-"))
            if self.say:
                self.say(f"note: worker output goes to {tmp} ({self.dir}: {exc.strerror})")
            self.dir = tmp
        name = "-".join(_UNSAFE.sub("_", str(p)).strip("_") for p in parts)
        return self.dir / f"{name[-120:]}.txt"

    def keep(self, path: Path) -> str | None:
        """After the worker ended: its file as a record names it (relative to the log's folder), or
        None when the worker wrote nothing (the file is then removed)."""
        try:
            if path.stat().st_size == 0:
                path.unlink()
                return None
        except OSError:
            return None
        return os.path.relpath(path, self.log_dir) if path.parent == self.log_dir / self.dir.name \
            else str(path)

    def finish(self, *paths: Path | None) -> None:
        """At the end of a sweep: these files (e.g. the preloaded process's) kept only when written
        to, and the folder removed when no worker wrote anything."""
        for path in paths:
            if path is not None:
                self.keep(path)
        try:
            self.dir.rmdir()
        except OSError:  # not empty (or never made): kept
            pass

    def show_tail(self, path: Path, status: str) -> None:
        """For an error or a kill, the last lines of the worker's output (unless -v streamed them)."""
        if status not in ("error", "killed") or not self.say or self.verbose:
            return
        lines = tail(path)
        if lines:
            self.say(f"  the worker's output, {len(lines)} lines ({path}):")
            for line in lines:
                self.say(f"  | {line}")
