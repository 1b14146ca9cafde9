"""Installing edgebench never replaces the torch a user has, and picks a transformers that accepts it;
where none can (JetPack 6.1's NVIDIA torch 2.5.0a0), edgebench's own check says to upgrade torch.

pip itself resolves edgebench's real dependency lists (read from pyproject.toml) against an environment
that already holds a torch, and `pip install --dry-run --report` says what it would install. Offline and
fast: a bare venv with a fake installed torch (only its metadata), tiny fake wheels for everything
pyproject names, `--no-index --find-links`. The fake transformers releases carry the facts of the real
ones: Python >= 3.11 from 5.21, and the torch each needs (edgebench.telemetry.stack.TORCH_FLOORS). Then
edgebench.telemetry.stack.check() runs on what pip picked, as `edgebench env` / `run` would on that machine.
"""
from __future__ import annotations

import importlib.metadata as md
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import packaging.markers
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from edgebench.telemetry import stack
from edgebench.telemetry.stack import TORCH_FLOORS

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
# PyPI as the resolver sees it: torch's newest build (on Linux x86-64 a multi-GB CUDA build) and the
# transformers releases around edgebench's floor (5.17) and each change of the torch or Python they need.
INDEX_TORCH = ("2.4.0", "2.13.0")
TRANSFORMERS = ("5.16.1", "5.17.0", "5.19.1", "5.20.2", "5.21.0", "5.24.0")


def _torch_floor(transformers_version: str) -> str:
    v = Version(transformers_version)
    return [floor for rel, floor in TORCH_FLOORS if v >= Version(rel)][-1]


def _transformers_python(transformers_version: str) -> Version:
    return Version("3.11") if Version(transformers_version) >= Version("5.21") else Version("3.10")


def _write_wheel(folder: Path, name: str, version: str, requires=(), extras=(), python: str | None = None):
    dist = re.sub(r"[-.]+", "_", name)
    info = f"{dist}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Python: >={python}"] if python else []
    meta += [f"Provides-Extra: {e}" for e in extras] + [f"Requires-Dist: {r}" for r in requires]
    files = {f"{info}/METADATA": "\n".join(meta) + "\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{k},,\n" for k in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(folder / f"{dist}-{version}-py3-none-any.whl", "w") as z:
        for path, text in files.items():
            z.writestr(path, text)


def _pyproject() -> dict:
    return tomllib.loads(PYPROJECT.read_text())["project"]


def _requirements(extras: list[str], python: str) -> list[str]:
    """edgebench's requirements with these extras on this Python, markers evaluated as pip would."""
    proj = _pyproject()
    lines = [(r, "") for r in proj["dependencies"]]
    lines += [(r, e) for e in extras for r in proj.get("optional-dependencies", {}).get(e, [])]
    env = {"python_version": python, "python_full_version": f"{python}.0"}
    out = []
    for line, extra in lines:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(env | {"extra": extra}):
            out.append(f"{req.name}{req.specifier}")
    return out


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    """index(python): fake wheels for every distribution pyproject names, plus torch and the
    transformers releases as PyPI offers them to that Python (a release whose Requires-Python excludes
    it is left out, as pip would; pip's --python-version needs a newer pip than some venvs have)."""
    proj = _pyproject()
    every = list(proj["dependencies"]) + [r for rs in proj.get("optional-dependencies", {}).values() for r in rs]
    versions: dict[str, set[str]] = {}
    for line in every:
        req = Requirement(line)
        versions.setdefault(req.name.lower(), {"0.0.1", "99.0"}).update(s.version for s in req.specifier)
    versions.pop("transformers", None)
    versions["torch"] = set(INDEX_TORCH)
    made: dict[str, Path] = {}

    def for_python(python: str) -> Path:
        if python not in made:
            made[python] = folder = tmp_path_factory.mktemp(f"index-py{python}")
            for name, vs in versions.items():
                for v in vs:
                    _write_wheel(folder, name, v)
            for v in TRANSFORMERS:
                if Version(python) >= _transformers_python(v):
                    _write_wheel(folder, "transformers", v, extras=["torch"], python=str(_transformers_python(v)),
                                 requires=["numpy>=1.17", f'torch>={_torch_floor(v)}; extra == "torch"'])
        return made[python]
    return for_python


def _dry_run(index, tmp: Path, python: str, installed_torch: str | None, extras: list[str],
             flags: tuple[str, ...] = (), also: tuple[str, ...] = ()) -> dict[str, dict] | str:
    """What pip would install for edgebench[extras] (and the requirements `also`) into a venv holding
    `installed_torch`; pip's error text when it cannot resolve."""
    own = tmp / "edgebench-wheel"
    own.mkdir()
    _write_wheel(own, "edgebench", "0.1.0", requires=_requirements(extras, python))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    if installed_torch:
        site = next(venv.glob("lib/python3*/site-packages"))
        info = site / f"torch-{installed_torch}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: torch\nVersion: {installed_torch}\n")
        (info / "INSTALLER").write_text("pip\n")
        (info / "RECORD").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    report = tmp / "report.json"
    cmd = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--dry-run",
           "-q", "--report", str(report), "--no-index", "--find-links", str(index(python)), "--find-links",
           str(own), *flags, "edgebench", *also]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        return res.stderr
    return {i["metadata"]["name"].lower(): i["metadata"] for i in json.loads(report.read_text())["install"]}


def _torch_accepted_by(meta: dict, torch_version: str) -> bool:
    for line in meta.get("requires_dist") or []:
        req = Requirement(line)
        if req.name == "torch" and req.marker is not None and req.marker.evaluate({"extra": "torch"}):
            return req.specifier.contains(torch_version, prereleases=True)
    return True


def _installed_metadata(extras: list[str]) -> list[str]:
    """edgebench's Requires-Dist as a wheel built from pyproject carries it (extras as markers)."""
    proj = _pyproject()
    out = list(proj["dependencies"])
    for extra in extras:
        for line in proj.get("optional-dependencies", {}).get(extra, []):
            req = Requirement(line)
            marker = f'({req.marker}) and extra == "{extra}"' if req.marker else f'extra == "{extra}"'
            out.append(f"{req.name}{req.specifier}; {marker}")
    return out


def _check_after_install(monkeypatch, root: Path, python: str, torch: str | None, tf: dict,
                         extras: list[str], board: dict[str, str]) -> dict:
    """edgebench.telemetry.stack.check() on the machine the install leaves: this Python, the torch that was there,
    the transformers pip picked, the board's files (for the torch install command)."""
    dists = {"edgebench": ("0.1.0", _installed_metadata(extras)),
             "transformers": (tf["version"], tf.get("requires_dist") or [])}
    if torch:
        dists["torch"] = (torch, [])

    def lookup(i):
        def get(name):
            if name not in dists:
                raise md.PackageNotFoundError(name)
            return dists[name][i]
        return get
    monkeypatch.setattr(md, "version", lookup(0))
    monkeypatch.setattr(md, "requires", lookup(1))
    real = packaging.markers.default_environment()
    monkeypatch.setattr(packaging.markers, "default_environment",
                        lambda: real | {"python_version": python, "python_full_version": f"{python}.0"})
    monkeypatch.setenv("EDGEBENCH_SYSFS_ROOT", str(root))
    for rel, text in board.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text + "\n")
    return stack.check()


NVIDIA_JP61_TORCH = "2.5.0a0+872d972e41.nv24.08"
JP6_TORCH_UPGRADE = "pip install --upgrade torch --index-url https://pypi.jetson-ai-lab.io/jp6/cu126"
ORIN_JP62 = {"etc/nv_tegra_release": "# R36 (release), REVISION: 4.3, GCID: 1, BOARD: generic"}
ORIN_JP60 = {"etc/nv_tegra_release": "# R36 (release), REVISION: 3.0, GCID: 1, BOARD: generic"}
THOR_JP7 = {"etc/nv_tegra_release": "# R38 (release), REVISION: 2.0, GCID: 1, BOARD: generic"}
DESKTOP = {"proc/driver/nvidia/version": "NVRM version: 580.65"}

# python, torch already installed, extras as in the README's commands, pip flags, the board, the
# transformers pip must pick, and what edgebench's check then says (None: the stack works).
STACKS = {
    # NVIDIA's JetPack 6.1 torch: below every supported transformers' floor (2.5.0): pip keeps it, and
    # edgebench says to take a newer torch from the Jetson AI Lab index
    "jetpack6-nvidia-torch": ("3.10", NVIDIA_JP61_TORCH, ["hf", "jetson", "report"], (), ORIN_JP62,
                              "5.19.1", f"no supported transformers accepts torch {NVIDIA_JP61_TORCH}; "
                                        f"install a newer torch: {JP6_TORCH_UPGRADE}"),
    "jetpack6-upgrade-eager": ("3.10", NVIDIA_JP61_TORCH, ["hf", "jetson", "report"],
                               ("--upgrade", "--upgrade-strategy", "eager"), ORIN_JP62, "5.19.1", JP6_TORCH_UPGRADE),
    "jetpack6.0-nvidia-torch": ("3.10", "2.4.0a0+07cecf4168.nv24.05", ["hf", "jetson"], (), ORIN_JP60,
                                "5.19.1", "install a newer torch: upgrade to JetPack 6.1 or later"),
    # the Jetson AI Lab's torch on JetPack 6 (Python 3.10): the newest transformers for 3.10 that accepts it
    "jetpack6-ai-lab-torch": ("3.10", "2.8.0", ["hf", "jetson", "report"], (), ORIN_JP62, "5.19.1", None),
    # torch 2.5.x final on Python 3.10: 5.20.x (the newest for 3.10) would disable it; pyproject caps 3.10
    "python3.10-torch-2.5": ("3.10", "2.5.1+cu124", ["hf", "nvml", "report"], (), DESKTOP, "5.19.1", None),
    "thor-cuda13-torch": ("3.12", "2.9.1+cu130", ["hf", "jetson", "report"], (), THOR_JP7, "5.24.0", None),
    "desktop-cuda-torch": ("3.12", "2.9.1+cu128", ["hf", "nvml", "report"], (), DESKTOP, "5.24.0", None),
    "cpu-laptop-make-test": ("3.11", "2.13.0+cpu", ["hf", "nvml", "report", "test"], (), {}, "5.24.0", None),
    "no-torch-yet": ("3.11", None, ["hf", "nvml", "report"], (), {}, "5.24.0", None),
}


@pytest.mark.parametrize("stack_name", list(STACKS))
def test_install_keeps_the_installed_torch(stack_name, index, tmp_path, monkeypatch):
    python, torch, extras, flags, board, expect_tf, expect_fix = STACKS[stack_name]
    plan = _dry_run(index, tmp_path, python, torch, extras, flags)
    assert isinstance(plan, dict), plan
    assert "edgebench" in plan
    assert "torch" not in plan, (f"pip would install torch {plan.get('torch', {}).get('version')} "
                                 + (f"over {torch}" if torch else "where the user has none yet"))
    tf = plan.get("transformers")
    assert tf is not None and tf["version"] == expect_tf
    if torch and expect_fix is None:
        # the transformers pip picks accepts this torch (else it disables torch and runs without it)
        assert _torch_accepted_by(tf, torch), f"transformers {tf['version']} disables torch {torch}"
    c = _check_after_install(monkeypatch, tmp_path / "root", python, torch, tf, extras, board)
    if expect_fix is None:
        assert c["ok"], c
    else:
        assert not c["ok"] and expect_fix in c["fix"], c
        assert c["problems"] == [f"transformers {expect_tf} needs torch>=2.5 and disables the installed "
                                 f"torch {torch} (it then runs without torch)"]


@pytest.mark.parametrize("python", ["3.10", "3.12"])
def test_the_floor_is_never_undercut(python, index, tmp_path):
    """5.16.1 is in the index but below the floor (zamba2-2.7b does not build on it): asking for it
    with edgebench[hf] cannot resolve, on every Python."""
    err = _dry_run(index, tmp_path, python, "2.13.0+cpu", ["hf"], also=("transformers<5.17",))
    assert isinstance(err, str) and "conflict" in err.lower(), err


def test_no_extra_builds_against_torch():
    """mamba-ssm / causal-conv1d compile against the installed torch and cannot be an extra:
    `edgebench kernels build --install` builds them."""
    names = {Requirement(r).name.lower() for rs in _pyproject().get("optional-dependencies", {}).values()
             for r in rs}
    assert not names & {"torch", "mamba-ssm", "causal-conv1d"}
