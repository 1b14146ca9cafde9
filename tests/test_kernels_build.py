"""`edgebench kernels build|status` on CPU: arch choice, the setup.py patch against the real upstream
files, preflight errors, environment and command lines, sdist discovery, a build with pip faked."""
import argparse
import ast
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from edgebench.toolchain import build as kb
from edgebench.toolchain import sources as ks
from edgebench.commands import kernels as cmd
from edgebench.errors import UserError

SETUPS = Path(__file__).parent / "fixtures" / "kernels" / "setup_py"
UPSTREAM = {"mamba-ssm": SETUPS / "mamba_ssm-2.3.2.post1.setup.py",
            "causal-conv1d": SETUPS / "causal_conv1d-1.7.0.setup.py"}
MAMBA, CONV = kb.PACKAGES["mamba-ssm"], kb.PACKAGES["causal-conv1d"]


def gencodes(text):
    """Every arch flag that would reach nvcc: the string literals holding 'arch=compute_'."""
    return [node.value for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "arch=compute_" in node.value]


def good_toolchain(**kw):
    base = dict(python="/venv/bin/python", torch_version="2.11.0+cu130", torch_cuda="13.0",
                cuda_home="/usr/local/cuda", nvcc_release="13.0", compress_mode=True,
                nvcc_archs=("75", "80", "86", "87", "89", "90", "100", "110", "103", "120", "121"),
                ninja="/venv/bin/ninja")
    return kb.Toolchain(**{**base, **kw})


@pytest.mark.parametrize("text, arch", [("9.0", "90"), ("90", "90"), ("sm_90", "90"), ("SM_87", "87"),
                                        ("8.7", "87"), ("11.0", "110"), ("12.1", "121"), ("compute_72", "72")])
def test_parse_arch(text, arch):
    assert kb.parse_arch(text) == arch


@pytest.mark.parametrize("bad", ["nine", "9", "9.0.1", "sm_9x", ""])
def test_parse_arch_rejects(bad):
    with pytest.raises(UserError, match="not a compute capability"):
        kb.parse_arch(bad)


def test_resolve_archs_detects_override_and_requires_arch_without_gpu():
    assert kb.resolve_archs(None, detect=lambda: "90") == ["90"]
    assert kb.resolve_archs("8.7", detect=lambda: "90") == ["87"]
    assert kb.resolve_archs("8.6,8.9,8.6", detect=lambda: None) == ["86", "89"]
    with pytest.raises(UserError, match=r"no CUDA GPU.*pass --arch.*8\.7 \(Jetson Orin\).*11\.0 \(Jetson Thor"):
        kb.resolve_archs(None, detect=lambda: None)


def test_parse_packages():
    assert [p.name for p in kb.parse_packages("causal-conv1d,mamba-ssm")] == ["causal-conv1d", "mamba-ssm"]
    (p,) = kb.parse_packages("Mamba_SSM==2.3.3")
    assert (p.name, p.version, p.pinned) == ("mamba-ssm", "2.3.3", "2.3.2.post1")
    with pytest.raises(UserError, match="'flash-attn' is not one edgebench builds; choose from causal-conv1d, mamba-ssm"):
        kb.parse_packages("flash-attn")
    with pytest.raises(UserError, match="empty"):
        kb.parse_packages(" , ")


@pytest.mark.parametrize("package", sorted(UPSTREAM))
def test_upstream_setup_hard_codes_many_archs(package):
    flags = gencodes(UPSTREAM[package].read_text())
    assert len(flags) == 9 and "arch=compute_90,code=sm_90" in flags


@pytest.mark.parametrize("package", sorted(UPSTREAM))
@pytest.mark.parametrize("archs, ptx, expected", [
    (["90"], False, ["arch=compute_90,code=sm_90"]),
    (["87"], False, ["arch=compute_87,code=sm_87"]),
    (["110"], True, ["arch=compute_110,code=sm_110", "arch=compute_110,code=compute_110"]),
    (["86", "89"], False, ["arch=compute_86,code=sm_86", "arch=compute_89,code=sm_89"]),
])
def test_patch_leaves_only_target_archs(package, archs, ptx, expected):
    original = UPSTREAM[package].read_text()
    patched = kb.patch_setup_py(original, archs, ptx)
    assert gencodes(patched) == expected
    compile(patched, "setup.py", "exec")
    line = next(ln for ln in patched.splitlines() if "cc_flag +=" in ln)
    assert ast.literal_eval(line.split("+=", 1)[1].strip()) == kb.gencode_flags(archs, ptx)
    assert line.startswith(" " * 8)  # in the `else:` (CUDA, not HIP) branch, where the block was
    assert "bare_metal_version >= Version" not in patched
    # everything outside the block is untouched
    before = original.split('        cc_flag.append("-gencode")')[0]
    assert patched.startswith(before)
    assert patched.endswith(original.split('cc_flag.append("arch=compute_121,code=sm_121")\n', 1)[1])


def test_patch_refuses_unknown_setup():
    with pytest.raises(UserError, match="does not have the hard-coded -gencode block.*mamba-ssm 2.3.2.post1"):
        kb.patch_setup_py("from setuptools import setup\nsetup(name='x')\n", ["90"], source="x-1.0.tar.gz:setup.py")
    text = UPSTREAM["mamba-ssm"].read_text()
    odd = text.replace('        if bare_metal_version >= Version("12.8"):\n',
                       '        if bare_metal_version >= Version("12.8") and os.name:\n')
    with pytest.raises(UserError, match="unexpected line .* inside it"):
        kb.patch_setup_py(odd, ["90"])
    extra = text + '\nnvcc_flags = ["-gencode", "arch=compute_80,code=sm_80"]\n'
    with pytest.raises(UserError, match="arch flags remain outside the block"):
        kb.patch_setup_py(extra, ["90"])


@pytest.mark.parametrize("change, message", [
    (dict(torch_version=None), "torch does not import in /venv/bin/python.*install a CUDA build of torch"),
    (dict(torch_cuda=None), r"torch 2\.11\.0\+cu130 is built without CUDA"),
    (dict(cuda_home=None), r"nvcc \(the CUDA compiler\) was not found in CUDA_HOME.*CUDA 13 toolkit.*CUDA_HOME"),
    (dict(cuda_home=None, jetson=True), "sudo apt install nvidia-jetpack"),
    (dict(nvcc_release="12.6"), r"nvcc in /usr/local/cuda is CUDA 12\.6 but torch .* CUDA 13\.0; the majors must match"),
    (dict(missing_build=("wheel",), ninja=None), r"build dependencies missing: wheel, ninja; --no-build-isolation.*"
                                                 r"/venv/bin/python -m pip install wheel ninja"),
])
def test_preflight_errors(change, message):
    kb.check_toolchain(good_toolchain(), ["90"])
    with pytest.raises(UserError, match=message):
        kb.check_toolchain(good_toolchain(**change), ["90"])


def test_preflight_arch_unknown_to_nvcc():
    with pytest.raises(UserError, match="cannot compile for sm_101.*renamed Jetson Thor to sm_110"):
        kb.check_toolchain(good_toolchain(), ["101"])
    with pytest.raises(UserError, match="cannot compile for sm_72.*JetPack 5"):
        kb.check_toolchain(good_toolchain(), ["72"])
    kb.check_toolchain(good_toolchain(nvcc_archs=()), ["72"])  # nvcc could not say: let it try


def test_disk_check(monkeypatch, tmp_path):
    monkeypatch.setattr(kb.shutil, "disk_usage", lambda p: SimpleNamespace(free=2**30))
    with pytest.raises(UserError, match=r"only 1\.0 GiB free under .*needs about 3 GiB"):
        kb.check_disk(tmp_path / "not" / "yet")
    monkeypatch.setattr(kb.shutil, "disk_usage", lambda p: SimpleNamespace(free=50 * 2**30))
    kb.check_disk(tmp_path / "not" / "yet")


def test_default_jobs():
    assert kb.default_jobs(16, 128 * 2**30, jetson=False) == 16
    assert kb.default_jobs(16, 12 * 2**30, jetson=False) == 4
    assert kb.default_jobs(12, 10 * 2**30, jetson=True) == 2   # Orin NX 16 GB with a desktop open
    assert kb.default_jobs(8, 2**30, jetson=True) == 1
    assert kb.default_jobs(6, None, jetson=False) == 6


def test_mem_available(tmp_path):
    (tmp_path / "meminfo").write_text("MemTotal: 100 kB\nMemAvailable:   2048 kB\n")
    assert kb.mem_available(str(tmp_path / "meminfo")) == 2048 * 1024
    assert kb.mem_available(str(tmp_path / "none")) is None


def test_build_env_and_command():
    base = {"PATH": "/usr/bin", "NVCC_APPEND_FLAGS": "-Xptxas=-O3", "MAMBA_SKIP_CUDA_BUILD": "TRUE"}
    env = kb.build_env(MAMBA, ["90"], 12, good_toolchain(), base)
    assert env["MAMBA_FORCE_BUILD"] == "TRUE" and env["MAMBA_SKIP_CUDA_BUILD"] == "FALSE"
    assert env["MAX_JOBS"] == "12" and env["CUDA_HOME"] == "/usr/local/cuda"
    assert env["TORCH_CUDA_ARCH_LIST"] == "9.0" and env["MAMBA_LOCAL_VERSION"] == "sm90"
    assert env["NVCC_APPEND_FLAGS"] == "-Xptxas=-O3 --compress-mode=size"
    assert env["PATH"].split(":")[:3] == ["/venv/bin", "/usr/local/cuda/bin", "/usr/bin"]
    env = kb.build_env(CONV, ["87"], 2, good_toolchain(compress_mode=False), {"CAUSAL_CONV1D_LOCAL_VERSION": "mine"})
    assert env["CAUSAL_CONV1D_FORCE_BUILD"] == "TRUE" and "NVCC_APPEND_FLAGS" not in env
    assert env["CAUSAL_CONV1D_LOCAL_VERSION"] == "mine" and env["TORCH_CUDA_ARCH_LIST"] == "8.7"
    assert kb.wheel_command("/py", Path("/w/src"), Path("/o")) == [
        "/py", "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-v", "-w", "/o", "/w/src"]


@pytest.mark.skipif(shutil.which("nvcc") is None and not Path("/usr/local/cuda/bin/nvcc").exists(), reason="no nvcc")
def test_inspect_toolchain_reads_real_nvcc():
    tc = kb.inspect_toolchain()
    assert re.fullmatch(r"\d+\.\d+", tc.nvcc_release) and "90" in tc.nvcc_archs
    assert tc.compress_mode == (tuple(map(int, tc.nvcc_release.split("."))) >= (12, 8))


def make_sdist(directory, top, setup_text=None):
    path = Path(directory) / f"{top}.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for name, data in {"setup.py": setup_text or "setup()\n", "README.md": "r\n"}.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data.encode())
            tf.addfile(info, io.BytesIO(data.encode()))
    return path


def test_find_sdist_names_and_versions(tmp_path):
    make_sdist(tmp_path, "mamba_ssm-2.2.4")
    newest = make_sdist(tmp_path, "mamba_ssm-2.3.2.post1")
    make_sdist(tmp_path, "causal_conv1d-1.7.0")
    assert ks.find_sdist(MAMBA, tmp_path) == newest
    pinned = kb.parse_packages("mamba-ssm==2.2.4")[0]
    assert ks.find_sdist(pinned, tmp_path).name == "mamba_ssm-2.2.4.tar.gz"
    assert ks.find_sdist(CONV, tmp_path).name == "causal_conv1d-1.7.0.tar.gz"


def test_locate_offline_dir_errors(tmp_path):
    with pytest.raises(UserError, match="is not a directory"):
        ks.locate_sdists([MAMBA], tmp_path / "nope", tmp_path, "/py")
    make_sdist(tmp_path, "causal_conv1d-1.7.0")
    with pytest.raises(UserError, match=r"no mamba_ssm-\*\.tar\.gz in .*pip download --no-deps --no-binary :all: "
                                        r"--no-build-isolation mamba-ssm==2\.3\.2\.post1.*--sdist-dir"):
        ks.locate_sdists([CONV, MAMBA], tmp_path, tmp_path / "out", "/py")


def test_locate_from_pip_cache_then_download(tmp_path):
    cache = tmp_path / "cache"
    (cache / "http-v2" / "a" / "b").mkdir(parents=True)
    shutil.move(make_sdist(tmp_path, "causal_conv1d-1.7.0"), cache / "http-v2" / "a" / "b" / "f00d.body")
    (cache / "http-v2" / "a" / "junk.body").write_bytes(b"PK\x03\x04 a wheel")
    calls = []

    def fake_pip(cmdline, env, **kw):
        calls.append((cmdline, env))
        make_sdist(cmdline[cmdline.index("-d") + 1], "mamba_ssm-2.3.2.post1")
        return subprocess.CompletedProcess(cmdline, 0, "", "")

    found = ks.locate_sdists([CONV, MAMBA], None, tmp_path / "out", "/py", run=fake_pip, cache=cache)
    assert found["causal-conv1d"] == tmp_path / "out" / "sdists" / "causal_conv1d-1.7.0.tar.gz"
    assert found["mamba-ssm"].name == "mamba_ssm-2.3.2.post1.tar.gz"
    (cmdline, env), = calls
    assert cmdline == ["/py", "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--no-build-isolation",
                       "-d", str(tmp_path / "out" / "sdists"), "mamba-ssm==2.3.2.post1"]
    assert env["MAMBA_SKIP_CUDA_BUILD"] == "TRUE"


def test_download_failure_says_how_to_bring_sdists(tmp_path):
    def offline(cmdline, env, **kw):
        return subprocess.CompletedProcess(cmdline, 1, "", "ERROR: No matching distribution found for mamba-ssm\n")

    with pytest.raises(UserError, match=r"could not download .*No matching distribution.*copy sdists/ to this device"):
        ks.locate_sdists([MAMBA], None, tmp_path, "/py", run=offline, cache=tmp_path / "empty")


def test_unpack_refuses_odd_archives(tmp_path):
    path = tmp_path / "evil-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("../evil.py")
        tf.addfile(info, io.BytesIO(b""))
    with pytest.raises(UserError, match="not a plain sdist"):
        ks.unpack(path, tmp_path / "w")


def test_build_package_patches_a_copy_and_runs_pip(tmp_path):
    sdist = make_sdist(tmp_path, "mamba_ssm-2.3.2.post1", UPSTREAM["mamba-ssm"].read_text())
    out, work, seen = tmp_path / "out", tmp_path / "work", {}

    def fake_pip(cmdline, env, cwd, stdout, stderr):
        seen.update(cmd=cmdline, env=env, setup=(Path(cwd) / "setup.py").read_text())
        stdout.write("ptxas info : Compiling entry function for 'sm_90'\n")
        (out / "mamba_ssm-2.3.2.post1+sm90-cp312-cp312-linux_x86_64.whl").write_bytes(b"w")
        return subprocess.CompletedProcess(cmdline, 0)

    r = kb.build_package(MAMBA, sdist, ["90"], out, work, 16, good_toolchain(), run=fake_pip)
    assert r.wheel.name.startswith("mamba_ssm-2.3.2.post1+sm90") and r.seconds >= 0
    assert gencodes(seen["setup"]) == ["arch=compute_90,code=sm_90"]
    assert seen["cmd"][-1] == str(work / "mamba_ssm-2.3.2.post1") and seen["env"]["MAX_JOBS"] == "16"
    assert "sm_90" in r.log.read_text()
    assert gencodes(tarfile.open(sdist).extractfile("mamba_ssm-2.3.2.post1/setup.py").read().decode()) != \
        gencodes(seen["setup"])  # the sdist itself is left as it was


def test_build_failure_shows_log_tail(tmp_path):
    sdist = make_sdist(tmp_path, "causal_conv1d-1.7.0", UPSTREAM["causal-conv1d"].read_text())

    def failing(cmdline, env, cwd, stdout, stderr):
        stdout.write("nvcc fatal   : Unsupported gpu architecture 'compute_90'\n")
        return subprocess.CompletedProcess(cmdline, 1)

    with pytest.raises(UserError, match=r"building causal-conv1d failed after \d+ s \(exit 1\); full log: .*"
                                        r"causal-conv1d-build\.log\nnvcc fatal"):
        kb.build_package(CONV, sdist, ["90"], tmp_path / "o", tmp_path / "w", 2, good_toolchain(), run=failing)


def parse(argv):
    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_build_needs_arch_without_gpu(monkeypatch):
    args = parse(["build", "--sdist-dir", "x"])
    assert (args.package, args.out, args.jobs) == ("causal-conv1d,mamba-ssm", Path("dist/kernels"), None)
    monkeypatch.setattr(kb, "detect_arch", lambda: None)
    with pytest.raises(UserError, match="pass --arch"):
        cmd.main(args)
    with pytest.raises(UserError, match="--jobs 0 must be at least 1"):
        cmd.main(parse(["build", "--arch", "9.0", "--jobs", "0"]))


def test_cli_build_orchestrates_side_by_side(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(kb, "inspect_toolchain", lambda: good_toolchain())
    monkeypatch.setattr(kb, "check_disk", lambda path: None)
    monkeypatch.setattr(ks, "locate_sdists", lambda pkgs, d, out, py: {p.name: Path(f"{p.module}.tar.gz") for p in pkgs})
    jobs_seen = {}

    def fake_build(pkg, sdist, archs, out, work, jobs, tc, ptx=False):
        jobs_seen[pkg.name] = jobs
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{pkg.module}.whl").write_bytes(b"w")
        return kb.BuildResult(pkg.name, out / f"{pkg.module}.whl", 1.0, out / "log")

    monkeypatch.setattr(kb, "build_package", fake_build)
    assert cmd.main(parse(["build", "--arch", "9.0", "--jobs", "16", "--out", str(tmp_path)])) == 0
    assert jobs_seen == {"causal-conv1d": 8, "mamba-ssm": 8}
    report = json.loads((tmp_path / "kernels-build.json").read_text())
    assert report["archs"] == ["90"] and [b["package"] for b in report["builds"]] == ["causal-conv1d", "mamba-ssm"]
    assert "install with: /venv/bin/python -m pip install --no-deps" in capsys.readouterr().out


def test_cli_status_without_kernels(capsys, monkeypatch):
    for name in ("selective_scan_cuda", "causal_conv1d_cuda"):
        monkeypatch.setitem(sys.modules, name, None)
    assert cmd.main(parse(["status"])) == 1
    out = capsys.readouterr().out
    assert "selective_scan_cuda does not import" in out and "causal_conv1d_cuda does not import" in out
    assert "edgebench kernels build" in out
