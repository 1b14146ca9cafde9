"""Where `compare` and `report` write: checked before any work, errors as one line with the fix.

`check_file(path)` and `check_folder(path)` refuse an output path that cannot work (a folder where
a file is wanted, a file where a folder is, a missing parent) before the logs are read.
`write_file(path, parts)` writes text to a file and `write_stdout(parts)` to standard output; an
OS error on the way (read-only place, full disk, no permission) becomes a `UserError` naming the
path, the reason and what to do, and a file this call created is removed rather than left cut
short. `os_error(path, exc)` makes that message for other writes (plots, the page). A closed pipe
on standard output (`| head`) ends the output quietly.
"""
from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Iterable

from edgebench.errors import UserError
from edgebench.logs.values import printable

_FIXES = {
    errno.ENOSPC: "free space on that disk or write elsewhere",
    errno.EDQUOT: "free space in your quota or write elsewhere",
    errno.EROFS: "that file system is read-only: write elsewhere",
    errno.EACCES: "you may not write there: choose a writable place",
    errno.EPERM: "you may not write there: choose a writable place",
    errno.EISDIR: "that is a folder: give a file name",
    errno.ENOTDIR: "a part of that path is a file, not a folder: choose another path",
    errno.ENOENT: "its folder does not exist: create it or choose another path",
    errno.ENAMETOOLONG: "the name is too long: choose a shorter path",
}


def os_error(path: str | os.PathLike, exc: OSError, flag: str = "-o") -> UserError:
    """The one-line error for an OS error writing `path`."""
    fix = _FIXES.get(exc.errno, "choose another path")
    reason = exc.strerror or str(exc)
    return UserError(f"cannot write {printable(str(path))}: {reason}; {fix} ({flag} PATH)")


def check_file(path: str | os.PathLike) -> None:
    """Refuse an output file path that cannot be written, before any work."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"-o {printable(str(p))} is a folder; give a file name, e.g. "
                        f"{printable(str(p / 'compare.txt'))}")
    parent = p.parent
    if not parent.is_dir():
        raise UserError(f"-o {printable(str(p))}: folder {printable(str(parent))} does not exist "
                        "(or is a file); create it or choose another path")


def check_folder(path: str | os.PathLike) -> None:
    """Refuse an output folder path that names a file, before any work."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UserError(f"-o {printable(str(p))} is a file, not a folder; this command writes "
                        "several files (PNGs and report.html): give a folder path")


def write_file(path: str | os.PathLike, parts: Iterable[str]) -> None:
    p = Path(path)
    existed = p.exists()
    try:
        with open(p, "w", encoding="utf-8") as fh:
            fh.writelines(parts)
    except OSError as exc:
        if not existed and p.is_file():
            try:
                p.unlink()  # no cut-short file left behind
            except OSError:
                pass
        raise os_error(p, exc) from None


def write_stdout(parts: Iterable[str]) -> None:
    try:
        sys.stdout.writelines(parts)
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_closed_stdout()
    except OSError as exc:
        _quiet_closed_stdout()
        raise UserError(f"cannot write to standard output: {exc.strerror or exc}; "
                        f"{_FIXES.get(exc.errno, 'write to a file instead')} (or use -o FILE)"
                        ) from None


def _quiet_closed_stdout() -> None:
    """Point stdout at /dev/null so that the flush at exit does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
