"""Every read of /sys, /proc and /etc for device facts goes through here.

`EDGEBENCH_SYSFS_ROOT` (default `/`) re-roots those reads, so tests use recorded fixture trees, and a
container can point at a bind-mounted host tree.
"""
from __future__ import annotations

import os
from pathlib import Path


def root() -> Path:
    return Path(os.environ.get("EDGEBENCH_SYSFS_ROOT", "/"))


def path(p: str | os.PathLike) -> Path:
    """Map an absolute system path (e.g. `/proc/meminfo`) under the configured root."""
    return root() / str(p).lstrip("/")


def read_text(p: str | os.PathLike) -> str | None:
    """The file's text with trailing whitespace stripped, or None if it is absent or unreadable."""
    try:
        return path(p).read_text(errors="replace").rstrip()
    except OSError:
        return None
