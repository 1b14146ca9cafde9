"""The Python stack under edgebench: which transformers it supports, whether that transformers accepts
the installed torch, and the command that installs torch on this kind of machine.

edgebench never names torch as a dependency, so pip never replaces the torch a user has (NVIDIA's
JetPack build, a CUDA build, a CPU build). Instead this module checks at run time:
- the supported transformers range is declared once, in pyproject's `hf` extra, and read back here from
  the installed edgebench's metadata (`importlib.metadata.requires`), markers evaluated for this Python;
- the torch a transformers release accepts comes from that release's own metadata (its `torch` extra),
  the same number below which its `is_torch_available()` answers False and transformers runs without
  torch. A pre-release sorts below its release: NVIDIA's JetPack 6.1 build `2.5.0a0+...nv24.08` is below
  2.5.0, so no supported transformers accepts it and the fix is a newer torch (Jetson AI Lab's index).
Nothing here imports torch or transformers: versions come from installed metadata.
"""
from __future__ import annotations

import importlib.metadata as md
import sys

from edgebench.telemetry import jetson
from edgebench.telemetry import sysroot

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CUDA13_INDEX = "https://download.pytorch.org/whl/cu130"  # JetPack 7 (Thor): SBSA aarch64 CUDA 13 builds
# NVIDIA's Jetson AI Lab index: torch builds for JetPack 6.1/6.2 (CUDA 12.6, aarch64, Python 3.10),
# newer than NVIDIA's 2.5.0a0 wheel; it mirrors PyPI for everything else.
JETPACK6_INDEX = "https://pypi.jetson-ai-lab.io/jp6/cu126"
JETSON_DOC = "README, section Install: Jetson"

# From each transformers release on, the torch it needs (its `torch` extra; checked on the releases'
# metadata: 5.15-5.19 need >=2.5.0, 5.20-5.24 >=2.6; releases below 5.15 are below the supported floor).
# Used only to say which transformers keeps a given torch working; the check itself reads the installed
# release's metadata.
TORCH_FLOORS = (("5.15", "2.5"), ("5.20", "2.6"))


def version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _requires(dist: str) -> list[str] | None:
    try:
        return md.requires(dist) or []
    except md.PackageNotFoundError:
        return None


def _specifier(dist: str, name: str, extra: str):
    """The combined version specifier `dist` puts on `name` when installed with `extra`, markers
    evaluated for this interpreter; None when dist is not installed or does not name it."""
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    reqs = _requires(dist)
    if reqs is None:
        return None
    spec, found = SpecifierSet(), False
    for line in reqs:
        req = Requirement(line)
        if req.name.lower() == name and (req.marker is None or req.marker.evaluate({"extra": extra})):
            spec, found = spec & req.specifier, True
    return spec if found else None


def supported_transformers():
    """The transformers range this edgebench supports on this Python (a SpecifierSet), or None."""
    return _specifier("edgebench", "transformers", "hf")


def torch_needed_by_transformers():
    """The torch the installed transformers accepts (a SpecifierSet), or None if it does not say."""
    return _specifier("transformers", "torch", "torch")


def _accepts(spec, ver: str) -> bool:
    """Whether `ver` meets `spec`, pre-releases included; a version packaging cannot parse is not
    judged (True)."""
    from packaging.version import InvalidVersion, Version
    try:
        return spec.contains(Version(ver), prereleases=True)
    except InvalidVersion:
        return True


def _requirement(name: str, spec) -> str:
    """'transformers>=5.17,<5.20': lower bounds first, as people write a range, each bound once
    (a combined SpecifierSet may repeat one)."""
    parts = sorted({str(s): s for s in spec}.values(), key=lambda s: (not s.operator.startswith(">"), s.version))
    return name + ",".join(str(p) for p in parts)


def transformers_for_torch(torch_version: str) -> str | None:
    """A transformers requirement in the supported range whose releases all accept this torch, e.g.
    'transformers>=5.17,<5.20' for torch 2.5.1; None when no supported release accepts it (NVIDIA's
    JetPack 6.1 torch 2.5.0a0)."""
    from packaging.specifiers import SpecifierSet
    declared = supported_transformers() or SpecifierSet()
    upper = next((rel for rel, floor in TORCH_FLOORS if not _accepts(SpecifierSet(f">={floor}"), torch_version)),
                 None)
    spec = declared & SpecifierSet(f"<{upper}") if upper else declared
    # empty when no release boundary or range bound below `upper` lies in the range
    candidates = {rel for rel, _ in TORCH_FLOORS} | {s.version for s in declared}
    if upper and not any(_accepts(spec, c) for c in candidates):
        return None
    return _requirement("transformers", spec)


def torch_install(upgrade: bool = False) -> tuple[str, list[str] | None]:
    """What installs torch on this machine: (the command to show, pip arguments or None where pip
    alone cannot do it, i.e. JetPack 6.0, whose CUDA 12.2 the JetPack 6 builds do not run on).
    upgrade: replace an installed torch (pip keeps an installed one that meets the requirement)."""
    up = ["--upgrade"] if upgrade else []
    if jetson.is_jetson():
        l4t = jetson.parse_l4t_release(sysroot.read_text("/etc/nv_tegra_release") or "") or ""
        release = tuple(int(x) for x in l4t.split(".")[:2]) if l4t else (0, 0)
        if release >= (38, 0):  # JetPack 7 (Thor): SBSA userspace, PyTorch's CUDA 13 aarch64 wheels
            args = [*up, "torch", "--index-url", CUDA13_INDEX]
            return "pip install " + " ".join(args), args
        args = [*up, "torch", "--index-url", JETPACK6_INDEX]
        shown = "pip install " + " ".join(args)
        if (36, 0) <= release < (36, 4):  # JetPack 6.0 (L4T R36.2/36.3): CUDA 12.2
            return (f"upgrade to JetPack 6.1 or later (L4T R36.4, CUDA 12.6), then {shown}  "
                    f"(see the {JETSON_DOC})"), None
        return shown + "  (Jetson AI Lab's torch for JetPack 6.1/6.2, CUDA 12.6)", args
    if sys.platform == "darwin" or sysroot.path("/proc/driver/nvidia/version").is_file():
        # PyPI's Linux torch is a CUDA build; macOS has only the CPU/MPS build.
        args = [*up, "torch"]
        return "pip install " + " ".join(args), args
    args = [*up, "torch", "--index-url", CPU_INDEX]
    return "pip install " + " ".join(args) + "  (the CPU build: no CUDA libraries)", args


def torch_install_command(upgrade: bool = False) -> str:
    return torch_install(upgrade)[0]


def check() -> dict:
    """Whether the installed transformers is in the supported range and accepts the installed torch.
    {"ok", "transformers", "torch", "supported", "problems": [str], "fix": str | None}."""
    tf, torch = version("transformers"), version("torch")
    declared = supported_transformers()
    supported = _requirement("", declared) if declared is not None else None
    in_range = f"transformers{supported}" if supported is not None else None
    out = {"ok": True, "transformers": tf, "torch": torch, "supported": supported, "problems": [], "fix": None}
    if tf is None:
        return out
    keep = transformers_for_torch(torch) if torch else in_range
    fix = f"pip install '{keep}'" if keep else None
    outside = declared is not None and not _accepts(declared, tf)
    if outside:
        from packaging.markers import default_environment
        out["problems"].append(f"transformers {tf} is outside the range edgebench supports on Python "
                               f"{default_environment()['python_version']} ({supported})")
    needs = torch_needed_by_transformers()
    if torch and needs is not None and not _accepts(needs, torch):
        out["problems"].append(f"transformers {tf} needs torch{needs} and disables the installed torch "
                               f"{torch} (it then runs without torch)")
    if out["problems"]:
        out["ok"] = False
        out["fix"] = fix or (f"no supported transformers accepts torch {torch}; install a newer torch: "
                             f"{torch_install_command(upgrade=True)}"
                             + (f"; then pip install '{in_range}'" if outside else ""))
    return out


def require_runnable() -> None:
    """Before any case runs: torch is installed and the transformers/torch pair works, else a
    UserError naming the problem and the command that fixes it."""
    from edgebench.errors import MissingDependency, UserError
    if version("torch") is None:
        raise MissingDependency("torch", torch_install_command(),
                                "edgebench never installs torch, so pip keeps the one you have")
    c = check()
    if not c["ok"]:
        raise UserError("; ".join(c["problems"]) + f"; fix: {c['fix']}  (edgebench env shows the stack)")


def main(argv: list[str] | None = None) -> int:
    """`python -m edgebench.telemetry.stack --install-torch`: install torch for this machine unless one is
    installed (what `make run` calls). Exit 1 where it must be done by hand (Jetson JetPack 6.0)."""
    import subprocess
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["--install-torch"]:
        print("usage: python -m edgebench.telemetry.stack --install-torch", file=sys.stderr)
        return 2
    if version("torch") is not None:
        print(f"torch {version('torch')} is installed: kept")
        return 0
    shown, args = torch_install()
    if args is None:
        print(f"install torch first: {shown}", file=sys.stderr)
        return 1
    print(f"installing torch for this machine: {shown}")
    return subprocess.call([sys.executable, "-m", "pip", "install", "-q", *args])


if __name__ == "__main__":
    sys.exit(main())
