"""The Python stack under edgebench: which transformers it supports, whether that transformers accepts
the installed torch, and the command that installs torch on this kind of machine.

edgebench never names torch as a dependency, so pip never replaces the torch a user has (NVIDIA's
JetPack build, a CUDA build, a CPU build). Instead this module checks at run time:
- the supported transformers range is declared once, in pyproject's `hf` extra, and read back here from
  the installed edgebench's metadata (`importlib.metadata.requires`), markers evaluated for this Python;
- the torch a transformers release accepts comes from that release's own metadata (its `torch` extra),
  the same number below which its `is_torch_available()` answers False and transformers runs without
  torch. A pre-release sorts below its release: NVIDIA's `2.5.0a0+...nv24.08` is below 2.5.0.
Nothing here imports torch or transformers: versions come from installed metadata.
"""
from __future__ import annotations

import importlib.metadata as md
import sys

from edgebench import jetson, sysroot

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CUDA13_INDEX = "https://download.pytorch.org/whl/cu130"
JETPACK6_TORCH = ("https://developer.download.nvidia.com/compute/redist/jp/v61/pytorch/"
                  "torch-2.5.0a0+872d972e41.nv24.08.17622132-cp310-cp310-linux_aarch64.whl")
JETSON_DOC = "README, section Install: Jetson"

# From each transformers release on, the torch it needs (its `torch` extra; checked on the releases'
# metadata: 5.5-5.14 need >=2.4, 5.15-5.19 >=2.5, 5.20-5.24 >=2.6). Used only to say which
# transformers keeps a given torch working; the check itself reads the installed release's metadata.
TORCH_FLOORS = (("5.5", "2.4"), ("5.15", "2.5"), ("5.20", "2.6"))


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


def transformers_for_torch(torch_version: str) -> str | None:
    """A transformers requirement in the supported range whose releases all accept this torch, e.g.
    'transformers<5.15,>=5.5' for 2.5.0a0; None when no supported release accepts it."""
    from packaging.specifiers import SpecifierSet
    declared = supported_transformers() or SpecifierSet()
    upper = next((rel for rel, floor in TORCH_FLOORS if not _accepts(SpecifierSet(f">={floor}"), torch_version)),
                 None)
    spec = declared & SpecifierSet(f"<{upper}") if upper else declared
    # empty when no release boundary or range bound below `upper` lies in the range
    candidates = {rel for rel, _ in TORCH_FLOORS} | {s.version for s in declared}
    if upper and not any(_accepts(spec, c) for c in candidates):
        return None
    return f"transformers{spec}"


def torch_install() -> tuple[str, list[str] | None]:
    """What installs torch on this machine: (the command to show, pip arguments or None where the
    install needs steps pip cannot do, i.e. NVIDIA's JetPack 6 wheel with its system libraries)."""
    if jetson.is_jetson():
        l4t = jetson.parse_l4t_release(sysroot.read_text("/etc/nv_tegra_release") or "") or ""
        major = int(l4t.split(".")[0]) if l4t else 0
        if major >= 38:  # JetPack 7 (Thor): SBSA userspace, PyTorch's CUDA 13 aarch64 wheels
            args = ["torch", "--index-url", CUDA13_INDEX]
            return "pip install " + " ".join(args), args
        return (f"pip install '{JETPACK6_TORCH}' 'numpy<2'  (NVIDIA's torch for JetPack 6.1/6.2, "
                f"Python 3.10; it needs cuSPARSELt: see the {JETSON_DOC})"), None
    if sys.platform == "darwin" or sysroot.path("/proc/driver/nvidia/version").is_file():
        # PyPI's Linux torch is a CUDA build; macOS has only the CPU/MPS build.
        return "pip install torch", ["torch"]
    args = ["torch", "--index-url", CPU_INDEX]
    return "pip install " + " ".join(args) + "  (the CPU build: no CUDA libraries)", args


def torch_install_command() -> str:
    return torch_install()[0]


def check() -> dict:
    """Whether the installed transformers is in the supported range and accepts the installed torch.
    {"ok", "transformers", "torch", "supported", "problems": [str], "fix": str | None}."""
    tf, torch = version("transformers"), version("torch")
    declared = supported_transformers()
    out = {"ok": True, "transformers": tf, "torch": torch,
           "supported": str(declared) if declared is not None else None, "problems": [], "fix": None}
    if tf is None:
        return out
    keep = transformers_for_torch(torch) if torch else (f"transformers{declared}" if declared else None)
    fix = f"pip install '{keep}'" if keep else None
    if declared is not None and not _accepts(declared, tf):
        from packaging.markers import default_environment
        out["problems"].append(f"transformers {tf} is outside the range edgebench supports on Python "
                               f"{default_environment()['python_version']} ({declared})")
    needs = torch_needed_by_transformers()
    if torch and needs is not None and not _accepts(needs, torch):
        out["problems"].append(f"transformers {tf} needs torch{needs} and disables the installed torch "
                               f"{torch} (it then runs without torch)")
    if out["problems"]:
        out["ok"] = False
        out["fix"] = fix or (f"no supported transformers accepts torch {torch}; install a newer torch: "
                             f"{torch_install_command()}")
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
    """`python -m edgebench.stack --install-torch`: install torch for this machine unless one is
    installed (what `make run` calls). Exit 1 where it must be done by hand (Jetson JetPack 6)."""
    import subprocess
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["--install-torch"]:
        print("usage: python -m edgebench.stack --install-torch", file=sys.stderr)
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
