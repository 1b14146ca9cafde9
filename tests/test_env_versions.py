"""`edgebench env` and `edgebench run` catch a transformers outside the supported range, or one that
disables the installed torch, and give the command that fixes it; a missing torch gets this machine's
install command. Installed versions are faked through importlib.metadata."""
from __future__ import annotations

import importlib.metadata as md
import json
import subprocess
from pathlib import Path

import packaging.markers
import pytest

from edgebench.telemetry import environment as env
from edgebench.telemetry import stack
from edgebench.cli import main

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

# What scikit-build-core writes for pyproject's hf extra (test_fake_metadata_is_pyprojects checks it).
EDGEBENCH_REQUIRES = ["numpy>=1.24", "packaging>=23", 'transformers>=5.17; extra == "hf"',
                      'transformers<5.20; python_version < "3.11" and extra == "hf"']
NVIDIA_JP6_TORCH = "2.5.0a0+872d972e41.nv24.08"  # NVIDIA's wheel for JetPack 6.1: below 2.5.0
AI_LAB_TORCH = "2.8.0"  # a JetPack 6 build from the Jetson AI Lab index
JP6_INDEX_FIX = "install a newer torch: pip install --upgrade torch --index-url https://pypi.jetson-ai-lab.io/jp6/cu126"
R36_4 = "# R36 (release), REVISION: 4.3, GCID: 1, BOARD: generic"  # JetPack 6.2
R36_3 = "# R36 (release), REVISION: 3.0, GCID: 1, BOARD: generic"  # JetPack 6.0
R38 = "# R38 (release), REVISION: 2.0, GCID: 1, BOARD: generic"  # JetPack 7 (Thor)


def _tf_requires(torch_floor: str) -> list[str]:
    return ["numpy>=1.17", f'torch>={torch_floor}; extra == "torch"', 'torch>=2.0; extra == "serving"']


@pytest.fixture
def installed(monkeypatch, tmp_path):
    """installed(torch=..., transformers=(version, torch_floor), edgebench=requires): fake metadata.
    The sysfs root is an empty tree (a CPU machine) unless a test writes into it."""
    monkeypatch.setenv("EDGEBENCH_SYSFS_ROOT", str(tmp_path))

    def fake(torch=None, transformers=None, edgebench=EDGEBENCH_REQUIRES):
        dists = {}
        if torch:
            dists["torch"] = (torch, [])
        if transformers:
            dists["transformers"] = (transformers[0], _tf_requires(transformers[1]))
        if edgebench is not None:
            dists["edgebench"] = ("0.1.0", edgebench)

        def version(name):
            if name not in dists:
                raise md.PackageNotFoundError(name)
            return dists[name][0]

        def requires(name):
            if name not in dists:
                raise md.PackageNotFoundError(name)
            return dists[name][1]
        monkeypatch.setattr(md, "version", version)
        monkeypatch.setattr(md, "requires", requires)
    return fake


def _python(monkeypatch, version: str):
    """Markers see this Python (JetPack 6 has 3.10)."""
    real = packaging.markers.default_environment()
    monkeypatch.setattr(packaging.markers, "default_environment", lambda: real | {
        "python_version": ".".join(version.split(".")[:2]), "python_full_version": version})


def _board(root, release: str):
    """Make the faked sysfs root a Jetson with this /etc/nv_tegra_release."""
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc/nv_tegra_release").write_text(release + "\n")


def test_fake_metadata_is_pyprojects():
    """EDGEBENCH_REQUIRES holds what pyproject's hf extra says, on Python 3.10 and on 3.12."""
    from packaging.requirements import Requirement
    hf = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]["hf"]
    for python in ("3.10", "3.12"):
        env = {"python_version": python, "python_full_version": python + ".0", "extra": "hf"}

        def spec(lines, env=env):
            reqs = [Requirement(r) for r in lines]
            return {(r.name, str(r.specifier)) for r in reqs if r.marker is None or r.marker.evaluate(env)}
        assert spec(hf) == spec(r for r in EDGEBENCH_REQUIRES if "transformers" in r)


def test_a_working_stack_passes(installed, monkeypatch):
    installed(torch="2.13.0+cpu", transformers=("5.24.0", "2.6"))
    _python(monkeypatch, "3.12.3")
    c = stack.check()
    assert c["ok"] and not c["problems"] and c["supported"] == ">=5.17"
    stack.require_runnable()


def test_transformers_below_the_range_is_reported_with_the_fix(installed, monkeypatch):
    # 5.16.1: zamba2-2.7b does not build (pyproject's comment on the floor)
    installed(torch="2.13.0+cpu", transformers=("5.16.1", "2.5"))
    _python(monkeypatch, "3.12.3")
    c = stack.check()
    assert not c["ok"]
    assert c["problems"] == ["transformers 5.16.1 is outside the range edgebench supports on Python 3.12 (>=5.17)"]
    assert c["fix"] == "pip install 'transformers>=5.17'"


def test_the_range_is_read_for_this_python(installed, monkeypatch):
    # Python 3.10 (JetPack 6) is capped below 5.20, which would disable a torch 2.5.x
    installed(torch="2.5.1", transformers=("5.19.1", "2.5"))
    _python(monkeypatch, "3.10.12")
    assert str(stack.supported_transformers()) == "<5.20,>=5.17"
    assert stack.check()["ok"] and stack.check()["supported"] == ">=5.17,<5.20"
    _python(monkeypatch, "3.12.3")
    assert str(stack.supported_transformers()) == ">=5.17"


def test_jetpack6_nvidia_torch_gets_the_torch_upgrade(installed, monkeypatch, tmp_path):
    # JetPack 6.1's NVIDIA torch 2.5.0a0 sorts below 2.5.0, which every supported transformers (5.17+)
    # needs: pip's pick on Python 3.10 (5.19) runs without torch, and no transformers fixes that
    installed(torch=NVIDIA_JP6_TORCH, transformers=("5.19.1", "2.5"))
    _python(monkeypatch, "3.10.12")
    _board(tmp_path, R36_4)
    c = stack.check()
    assert not c["ok"]
    assert c["problems"] == [f"transformers 5.19.1 needs torch>=2.5 and disables the installed torch "
                             f"{NVIDIA_JP6_TORCH} (it then runs without torch)"]
    assert stack.transformers_for_torch(NVIDIA_JP6_TORCH) is None
    assert c["fix"].startswith(f"no supported transformers accepts torch {NVIDIA_JP6_TORCH}; {JP6_INDEX_FIX}")
    assert "then pip install" not in c["fix"]  # 5.19.1 is in range: the torch upgrade is the whole fix


def test_jetpack6_torch_upgrade_then_transformers_in_range(installed, monkeypatch, tmp_path):
    installed(torch=NVIDIA_JP6_TORCH, transformers=("5.24.0", "2.6"))
    _python(monkeypatch, "3.10.12")
    _board(tmp_path, R36_4)
    c = stack.check()
    assert len(c["problems"]) == 2 and "outside the range" in c["problems"][0]
    assert JP6_INDEX_FIX in c["fix"] and c["fix"].endswith("; then pip install 'transformers>=5.17,<5.20'")


def test_jetpack6_ai_lab_torch_works(installed, monkeypatch, tmp_path):
    installed(torch=AI_LAB_TORCH, transformers=("5.19.1", "2.5"))
    _python(monkeypatch, "3.10.12")
    _board(tmp_path, R36_4)
    assert stack.check()["ok"]
    stack.require_runnable()
    assert stack.transformers_for_torch(AI_LAB_TORCH) == "transformers>=5.17,<5.20"


def test_torch_2_5_final_on_python_3_10(installed, monkeypatch):
    # 5.20 (the newest for 3.10 without the cap) needs torch 2.6: keep 2.5.1 with 5.17-5.19
    installed(torch="2.5.1", transformers=("5.20.2", "2.6"))
    _python(monkeypatch, "3.10.12")
    c = stack.check()
    assert c["problems"] == [
        "transformers 5.20.2 is outside the range edgebench supports on Python 3.10 (>=5.17,<5.20)",
        "transformers 5.20.2 needs torch>=2.6 and disables the installed torch 2.5.1 (it then runs without torch)"]
    assert c["fix"] == "pip install 'transformers>=5.17,<5.20'"


def test_disabled_torch_is_caught_inside_the_range_too(installed, monkeypatch):
    # Python 3.11+ with torch 2.5.1 and transformers 5.24 (needs torch 2.6)
    installed(torch="2.5.1", transformers=("5.24.0", "2.6"))
    _python(monkeypatch, "3.12.3")
    c = stack.check()
    assert c["problems"] == ["transformers 5.24.0 needs torch>=2.6 and disables the installed torch "
                             "2.5.1 (it then runs without torch)"]
    assert c["fix"] == "pip install 'transformers>=5.17,<5.20'"


def test_a_torch_no_supported_transformers_accepts(installed, monkeypatch, tmp_path):
    # JetPack 6.0's torch 2.4.0a0: below every supported release's floor; its CUDA 12.2 runs no
    # JetPack 6.1+ build either, so the fix starts with a JetPack upgrade
    installed(torch="2.4.0a0+07cecf4168.nv24.05", transformers=("5.17.0", "2.5"))
    _python(monkeypatch, "3.10.12")
    _board(tmp_path, R36_3)
    c = stack.check()
    assert not c["ok"]
    assert c["fix"].startswith("no supported transformers accepts torch 2.4.0a0+07cecf4168.nv24.05; "
                               "install a newer torch: upgrade to JetPack 6.1 or later")
    assert stack.JETPACK6_INDEX in c["fix"]


def test_a_torch_version_that_does_not_parse_is_not_judged(installed):
    installed(torch="2.5.0-nv-custom build", transformers=("5.24.0", "2.6"))
    assert stack.check()["ok"]


def test_from_a_source_tree_only_the_torch_pair_is_checked(installed):
    installed(torch="2.13.0", transformers=("5.3.0", "2.4"), edgebench=None)
    assert stack.check()["ok"] and stack.check()["supported"] is None


@pytest.mark.parametrize("tree,expect,automatic", [
    ({}, "pip install torch --index-url https://download.pytorch.org/whl/cpu", True),
    ({"proc/driver/nvidia/version": "NVRM version: 580.65"}, "pip install torch", True),
    ({"etc/nv_tegra_release": R36_4}, "pip install torch --index-url https://pypi.jetson-ai-lab.io/jp6/cu126", True),
    ({"etc/nv_tegra_release": R36_3}, "upgrade to JetPack 6.1 or later", False),
    ({"etc/nv_tegra_release": R38}, "pip install torch --index-url https://download.pytorch.org/whl/cu130", True),
])
def test_torch_install_command_per_machine(tree, expect, automatic, monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEBENCH_SYSFS_ROOT", str(tmp_path))
    for rel, text in tree.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text + "\n")
    shown, args = stack.torch_install()
    assert expect in shown
    assert (args is not None) == automatic
    if args:
        assert " ".join(args) in shown
        up_shown, up_args = stack.torch_install(upgrade=True)  # what a fix runs over an installed torch
        assert up_args == ["--upgrade", *args] and " ".join(up_args) in up_shown


def test_install_torch_entry_point(installed, monkeypatch, tmp_path, capsys):
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    installed(torch=NVIDIA_JP6_TORCH)
    assert stack.main(["--install-torch"]) == 0 and not calls  # a torch is here: kept
    installed()
    assert stack.main(["--install-torch"]) == 0
    assert calls[-1][-3:] == ["torch", "--index-url", stack.CPU_INDEX]
    _board(tmp_path, R36_4)  # JetPack 6.1/6.2: Jetson AI Lab's torch
    assert stack.main(["--install-torch"]) == 0
    assert calls[-1][-3:] == ["torch", "--index-url", "https://pypi.jetson-ai-lab.io/jp6/cu126"]
    assert calls[-1][1:4] == ["-m", "pip", "install"]
    _board(tmp_path, R36_3)  # JetPack 6.0: by hand (upgrade JetPack first)
    capsys.readouterr()
    assert stack.main(["--install-torch"]) == 1 and len(calls) == 2
    assert "upgrade to JetPack 6.1 or later" in capsys.readouterr().err


def test_env_shows_the_problem_and_fix(installed, monkeypatch, capsys):
    installed(torch="2.5.1", transformers=("5.20.2", "2.6"))
    _python(monkeypatch, "3.12.3")
    pk = env.packages(deep=False)
    tf = pk["transformers"]
    assert tf["ok"] is False and "disables the installed torch" in tf["why"]
    assert tf["fix"] == "pip install 'transformers>=5.17,<5.20'" and tf["supported"] == ">=5.17"
    assert pk["mamba_ssm"]["fix"].startswith("edgebench kernels build --install")
    assert main(["env", "--json"]) == 0
    snap = json.loads(capsys.readouterr().out)
    assert snap["packages"]["transformers"]["fix"] == "pip install 'transformers>=5.17,<5.20'"


def test_env_without_torch_gives_this_machines_command(installed):
    installed(transformers=("5.24.0", "2.6"))
    pk = env.packages(deep=False)
    assert pk["torch"]["fix"].startswith("pip install torch --index-url https://download.pytorch.org/whl/cpu")


def test_run_refuses_before_any_case(installed, tmp_path, capsys):
    installed(torch="2.5.1", transformers=("5.20.2", "2.6"))
    log = tmp_path / "out.jsonl"
    assert main(["run", "-m", "tiny-llama", "-c", "32", "-n", "2", "-r", "1", "-o", str(log)]) == 2
    err = capsys.readouterr().err
    assert "disables the installed torch" in err and "pip install 'transformers>=5.17,<5.20'" in err
    assert not log.exists() or not log.read_text().strip()


def test_run_without_torch_names_the_install_command(installed, tmp_path, capsys):
    installed(transformers=("5.24.0", "2.6"))
    assert main(["run", "-m", "tiny-llama", "-c", "32", "-n", "2", "-o", str(tmp_path / "o.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "torch is not available" in err and stack.CPU_INDEX in err
