"""The CMake switch EDGEBENCH_CUDA: bad values and a missing toolkit fail at configure, naming the fix."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(shutil.which("cmake") is None or not (ROOT / "CMakeLists.txt").exists(),
                                reason="needs cmake and the source tree")


def configure(tmp_path, value: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    pybind11 = pytest.importorskip("pybind11")
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        ["cmake", "-S", str(ROOT), "-B", str(tmp_path / "b"), "-DSKBUILD_PROJECT_NAME=edgebench",
         "-DSKBUILD_PROJECT_VERSION=0.1.0", f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
         f"-DPython_EXECUTABLE={sys.executable}", f"-DEDGEBENCH_CUDA={value}"],
        capture_output=True, text=True, env=env, timeout=120)


def test_unknown_value_is_a_configure_error(tmp_path):
    out = configure(tmp_path, "sometimes")
    assert out.returncode != 0
    assert "use AUTO, ON or OFF" in out.stderr


def test_on_without_a_toolkit_names_what_to_install(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvcc").write_text("#!/bin/sh\nexit 1\n")
    (fake / "nvcc").chmod(0o755)
    out = configure(tmp_path, "ON", {"PATH": f"{fake}:/usr/bin:/bin", "CUDACXX": str(tmp_path / "none" / "nvcc"),
                                     "CUDA_PATH": "", "CUDAToolkit_ROOT": ""})
    assert out.returncode != 0
    assert "no CUDA toolkit" in out.stderr and "EDGEBENCH_CUDA=OFF" in out.stderr


def test_off_configures_the_host_only_probe(tmp_path):
    out = configure(tmp_path, "OFF")
    assert out.returncode == 0, out.stderr
    assert "host-only probe" in out.stdout
