"""`edgebench env` and `edgebench run` catch a transformers outside the supported range, or one that
disables the installed torch, and give the command that fixes it; a missing torch gets this machine's
install command. Installed versions are faked through importlib.metadata."""
from __future__ import annotations

import importlib.metadata as md
import json
import subprocess

import packaging.markers
import pytest

from edgebench import env, stack
from edgebench.cli import main

# What scikit-build-core writes for pyproject's hf extra.
EDGEBENCH_REQUIRES = ["numpy>=1.24", "packaging>=23", 'transformers>=5.5; extra == "hf"',
                      'transformers<5.15; python_version < "3.11" and extra == "hf"']
NVIDIA_JP6_TORCH = "2.5.0a0+872d972e41.nv24.08"


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


def test_a_working_stack_passes(installed):
    installed(torch="2.13.0+cpu", transformers=("5.24.0", "2.6"))
    c = stack.check()
    assert c["ok"] and not c["problems"] and c["supported"] == ">=5.5"
    stack.require_runnable()


def test_transformers_below_the_range_is_reported_with_the_fix(installed):
    installed(torch="2.13.0+cpu", transformers=("5.3.0", "2.4"))
    c = stack.check()
    assert not c["ok"]
    assert "transformers 5.3.0 is outside the range edgebench supports" in c["problems"][0]
    assert c["fix"] == "pip install 'transformers>=5.5'"


def test_the_range_is_read_for_this_python(installed, monkeypatch):
    installed(torch=NVIDIA_JP6_TORCH, transformers=("5.14.1", "2.4"))
    _python(monkeypatch, "3.10.12")
    assert str(stack.supported_transformers()) == "<5.15,>=5.5"
    assert stack.check()["ok"]
    _python(monkeypatch, "3.12.3")
    assert str(stack.supported_transformers()) == ">=5.5"


def test_jetson_transformers_that_disables_nvidia_torch(installed, monkeypatch):
    # JetPack 6: 5.19 needs torch >= 2.5.0, and 2.5.0a0 sorts below it: transformers runs without torch
    installed(torch=NVIDIA_JP6_TORCH, transformers=("5.19.0", "2.5"))
    _python(monkeypatch, "3.10.12")
    c = stack.check()
    assert not c["ok"]
    assert any("outside the range edgebench supports on Python 3.10 (<5.15,>=5.5)" in p for p in c["problems"])
    assert any(f"disables the installed torch {NVIDIA_JP6_TORCH}" in p for p in c["problems"])
    assert c["fix"] == "pip install 'transformers<5.15,>=5.5'"  # keeps NVIDIA's torch


def test_disabled_torch_is_caught_inside_the_range_too(installed):
    # a Python 3.11+ machine with NVIDIA's torch 2.5.0a0 and transformers 5.20 (needs torch 2.6)
    installed(torch=NVIDIA_JP6_TORCH, transformers=("5.20.2", "2.6"))
    c = stack.check()
    assert c["problems"] == [f"transformers 5.20.2 needs torch>=2.6 and disables the installed torch "
                             f"{NVIDIA_JP6_TORCH} (it then runs without torch)"]
    assert c["fix"] == "pip install 'transformers<5.15,>=5.5'"


def test_a_torch_no_supported_transformers_accepts(installed):
    # JetPack 6.0's torch 2.4.0a0 is below every supported release's floor (5.5 needs 2.4.0)
    installed(torch="2.4.0a0+07cecf4168.nv24.05", transformers=("5.5.0", "2.4"))
    c = stack.check()
    assert not c["ok"]
    assert c["fix"].startswith("no supported transformers accepts torch 2.4.0a0+07cecf4168.nv24.05; "
                               "install a newer torch:")


def test_a_torch_version_that_does_not_parse_is_not_judged(installed):
    installed(torch="2.5.0-nv-custom build", transformers=("5.24.0", "2.6"))
    assert stack.check()["ok"]


def test_from_a_source_tree_only_the_torch_pair_is_checked(installed):
    installed(torch="2.13.0", transformers=("5.3.0", "2.4"), edgebench=None)
    assert stack.check()["ok"] and stack.check()["supported"] is None


@pytest.mark.parametrize("tree,expect,automatic", [
    ({}, "pip install torch --index-url https://download.pytorch.org/whl/cpu", True),
    ({"proc/driver/nvidia/version": "NVRM version: 580.65"}, "pip install torch", True),
    ({"etc/nv_tegra_release": "# R36 (release), REVISION: 4.3, GCID: 1, BOARD: generic"},
     stack.JETPACK6_TORCH, False),
    ({"etc/nv_tegra_release": "# R38 (release), REVISION: 2.0, GCID: 1, BOARD: generic"},
     "pip install torch --index-url https://download.pytorch.org/whl/cu130", True),
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


def test_install_torch_entry_point(installed, monkeypatch, tmp_path, capsys):
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    installed(torch="2.5.0a0+nv24.08")
    assert stack.main(["--install-torch"]) == 0 and not calls  # a torch is here: kept
    installed()
    assert stack.main(["--install-torch"]) == 0
    assert calls[-1][-3:] == ["torch", "--index-url", stack.CPU_INDEX]
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nv_tegra_release").write_text("# R36 (release), REVISION: 4.3, GCID: 1\n")
    assert stack.main(["--install-torch"]) == 1 and len(calls) == 1  # JetPack 6: by hand
    assert stack.JETPACK6_TORCH in capsys.readouterr().err


def test_env_shows_the_problem_and_fix(installed, capsys):
    installed(torch=NVIDIA_JP6_TORCH, transformers=("5.20.2", "2.6"))
    pk = env.packages(deep=False)
    tf = pk["transformers"]
    assert tf["ok"] is False and "disables the installed torch" in tf["why"]
    assert tf["fix"] == "pip install 'transformers<5.15,>=5.5'" and tf["supported"] == ">=5.5"
    assert pk["mamba_ssm"]["fix"].startswith("edgebench kernels build --install")
    assert main(["env", "--json"]) == 0
    snap = json.loads(capsys.readouterr().out)
    assert snap["packages"]["transformers"]["fix"] == "pip install 'transformers<5.15,>=5.5'"


def test_env_without_torch_gives_this_machines_command(installed):
    installed(transformers=("5.24.0", "2.6"))
    pk = env.packages(deep=False)
    assert pk["torch"]["fix"].startswith("pip install torch --index-url https://download.pytorch.org/whl/cpu")


def test_run_refuses_before_any_case(installed, tmp_path, capsys):
    installed(torch=NVIDIA_JP6_TORCH, transformers=("5.20.2", "2.6"))
    log = tmp_path / "out.jsonl"
    assert main(["run", "-m", "tiny-llama", "-c", "32", "-n", "2", "-r", "1", "-o", str(log)]) == 2
    err = capsys.readouterr().err
    assert "disables the installed torch" in err and "pip install 'transformers<5.15,>=5.5'" in err
    assert not log.exists() or not log.read_text().strip()


def test_run_without_torch_names_the_install_command(installed, tmp_path, capsys):
    installed(transformers=("5.24.0", "2.6"))
    assert main(["run", "-m", "tiny-llama", "-c", "32", "-n", "2", "-o", str(tmp_path / "o.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "torch is not available" in err and stack.CPU_INDEX in err
