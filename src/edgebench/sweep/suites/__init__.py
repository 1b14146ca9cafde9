"""Named sweep suites shipped with edgebench as TOML spec files beside this module.

`load(name) -> Spec` reads `<name>.toml` (format in `edgebench.sweep.specfile`); `list_suites()` maps each
name to its one-line description. An unknown name is a `UserError` listing the suites. The files are
package data: they live inside the package directory, which the wheel ships whole.
"""
from __future__ import annotations

import difflib
from importlib import resources

from edgebench.errors import UserError
from edgebench.sweep.spec import Spec
from edgebench.sweep.specfile import parse_spec_text


def _files() -> dict:
    """{suite name: resource file} for every .toml beside this module."""
    root = resources.files(__name__)
    return {f.name[:-len(".toml")]: f for f in root.iterdir() if f.name.endswith(".toml")}


def list_suites() -> dict[str, str]:
    """{suite name: description}, sorted by name."""
    return {name: parse_spec_text(f.read_text(encoding="utf-8"), f"suite {name!r}")[1]
            for name, f in sorted(_files().items())}


def load(name: str) -> Spec:
    """The named suite. `paper` picks `paper-jetson` on a Jetson and `paper-desktop` elsewhere."""
    if name == "paper":
        from edgebench.telemetry import jetson
        name = "paper-jetson" if jetson.is_jetson() else "paper-desktop"
    files = _files()
    if name not in files:
        close = difflib.get_close_matches(name, files, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError(f"unknown suite {name!r}{hint}; available suites: {', '.join(sorted(files))}")
    return parse_spec_text(files[name].read_text(encoding="utf-8"), f"suite {name!r}")[0]
