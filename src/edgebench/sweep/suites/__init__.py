"""Named sweep suites shipped with edgebench as TOML spec files beside this module.

`suite_files()` maps each name to its file; `suite_file(name)` is the file a `--suite NAME` reads
(`paper` picks `paper-jetson` on a Jetson and `paper-desktop` elsewhere); an unknown name is a
`UserError` listing the suites. Parsing them is `edgebench.sweep.specfile`'s (`load_suite`,
`list_suites`), which imports this module, never the other way round. The files are package data:
they live inside the package directory, which the wheel ships whole.
"""
from __future__ import annotations

import difflib
from importlib import resources
from typing import TYPE_CHECKING

from edgebench.errors import UserError

if TYPE_CHECKING:  # importlib.resources.abc is Python 3.11+
    from importlib.resources.abc import Traversable


def suite_files() -> dict[str, Traversable]:
    """{suite name: resource file} for every .toml beside this module, sorted by name."""
    root = resources.files(__name__)
    return dict(sorted((f.name[:-len(".toml")], f) for f in root.iterdir() if f.name.endswith(".toml")))


def suite_file(name: str) -> tuple[str, Traversable]:
    """(resolved name, file) of the named suite."""
    if name == "paper":
        from edgebench.telemetry import jetson
        name = "paper-jetson" if jetson.is_jetson() else "paper-desktop"
    files = suite_files()
    if name not in files:
        close = difflib.get_close_matches(name, files, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError(f"unknown suite {name!r}{hint}; available suites: {', '.join(sorted(files))}")
    return name, files[name]
