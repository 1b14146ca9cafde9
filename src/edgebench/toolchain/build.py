"""Build mamba-ssm and causal-conv1d wheels from their sdists for one GPU architecture, offline.

Contract (everything a `edgebench kernels build` run needs, each piece testable without a GPU):
- `parse_packages("mamba-ssm,causal-conv1d==1.7.0")` -> `Package`s; `resolve_archs("8.7")` -> ["87"]
  (nvcc digits); with no `--arch` the arch of the visible GPU, else a `UserError` naming the choices.
- `inspect_toolchain()` reads torch, nvcc, ninja and the build modules; `check_toolchain(tc, archs)`
  raises `UserError` for the first thing that would break the build, naming the fix.
- `patch_setup_py(text, archs)` replaces the hard-coded `-gencode` block of the upstream setup.py with
  the target archs only, or raises `UserError` when the block is not exactly as expected (never a
  silent all-arch build).
- `build_env`, `wheel_command` give the environment and the pip command; `build_package` unpacks a copy
  of the sdist, patches it, runs pip and returns the wheel path and the seconds it took.
Sdists are found by `edgebench.toolchain.sources`. torch is imported only inside functions.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from edgebench.errors import UserError
from edgebench.toolchain.packages import PACKAGES, Package
from edgebench.toolchain.sources import unpack


BUILD_MODULES = ("setuptools", "wheel", "packaging")  # imported by both setup.py; ninja is a binary
KNOWN_ARCHS = {"72": "Jetson Xavier", "75": "T4/RTX 20", "80": "A100", "86": "RTX 30/A10",
               "87": "Jetson Orin", "89": "RTX 40/L4", "90": "H100/H200", "100": "B200",
               "110": "Jetson Thor", "120": "RTX 50", "121": "DGX Spark"}
ARCH_HINT = ("pass --arch, e.g. 8.7 (Jetson Orin), 11.0 (Jetson Thor; 10.1 before CUDA 13), "
             "7.2 (Jetson Xavier), 9.0 (H100), 8.9 (RTX 40), 8.6 (RTX 30)")
MIN_FREE_BYTES = 3 * 2**30
GIB = 2**30


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_packages(text: str) -> list[Package]:
    out = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, version = item.partition("==")
        pkg = PACKAGES.get(canonical(name))
        if pkg is None:
            raise UserError(f"--package {name!r} is not one edgebench builds; choose from "
                            f"{', '.join(PACKAGES)} (comma separated, optionally name==version)")
        out.append(Package(**{**pkg.__dict__, "version": version.strip() or None}))
    if not out:
        raise UserError("--package is empty; name at least one of " + ", ".join(PACKAGES))
    return out


def parse_arch(text: str) -> str:
    """'9.0', '90', 'sm_90', 'compute_90' -> '90'; '11.0' -> '110'."""
    t = re.sub(r"^(sm_?|compute_?)", "", text.strip().lower())
    if m := re.fullmatch(r"(\d{1,2})\.(\d)", t):
        return m[1] + m[2]
    if re.fullmatch(r"\d{2,3}", t):
        return t
    raise UserError(f"--arch {text!r} is not a compute capability; write it like 9.0, 8.7 or sm_90")


def dotted(arch: str) -> str:
    return f"{arch[:-1]}.{arch[-1]}"


def detect_arch() -> str | None:
    """The compute capability of GPU 0 as nvcc digits, or None when torch sees no GPU."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability(0)
    return f"{major}{minor}"


def resolve_archs(requested: str | None, detect=detect_arch) -> list[str]:
    if requested:
        archs = [parse_arch(a) for a in requested.split(",") if a.strip()]
        return list(dict.fromkeys(archs))
    found = detect()
    if found is None:
        raise UserError(f"no CUDA GPU is visible to torch, so the target architecture is unknown; {ARCH_HINT}")
    return [found]


@dataclass
class Toolchain:
    python: str
    torch_version: str | None = None  # None: torch does not import
    torch_cuda: str | None = None     # None: a CPU-only torch
    cuda_home: str | None = None
    nvcc_release: str | None = None   # "13.0"
    nvcc_archs: tuple[str, ...] = ()  # from `nvcc --list-gpu-arch`; empty when it cannot tell
    compress_mode: bool = False       # nvcc knows --compress-mode (CUDA 12.8+)
    ninja: str | None = None
    missing_build: tuple[str, ...] = ()
    jetson: bool = False


def find_cuda_home(env) -> str | None:
    """Where torch's cpp_extension will look: CUDA_HOME, CUDA_PATH, nvcc on PATH, /usr/local/cuda."""
    candidates = [env.get("CUDA_HOME"), env.get("CUDA_PATH")]
    nvcc = shutil.which("nvcc", path=env.get("PATH"))
    candidates += [str(Path(nvcc).resolve().parent.parent) if nvcc else None, "/usr/local/cuda"]
    for home in filter(None, candidates):
        if Path(home, "bin", "nvcc").is_file():
            return home
    return None


def _run_text(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def inspect_toolchain(env=None, python: str = sys.executable) -> Toolchain:
    import importlib.util
    env = dict(os.environ if env is None else env)
    tc = Toolchain(python=python, jetson=Path("/etc/nv_tegra_release").exists())
    try:
        import torch
        tc.torch_version, tc.torch_cuda = torch.__version__, torch.version.cuda
    except ImportError:
        pass
    tc.cuda_home = find_cuda_home(env)
    if tc.cuda_home:
        nvcc = str(Path(tc.cuda_home, "bin", "nvcc"))
        m = re.search(r"release (\d+\.\d+)", _run_text([nvcc, "--version"]))
        tc.nvcc_release = m[1] if m else None
        tc.nvcc_archs = tuple(re.findall(r"compute_(\d+)", _run_text([nvcc, "--list-gpu-arch"])))
        tc.compress_mode = "--compress-mode" in _run_text([nvcc, "--help"])
    tc.ninja = shutil.which("ninja", path=os.pathsep.join([str(Path(python).parent), env.get("PATH", "")]))
    tc.missing_build = tuple(m for m in BUILD_MODULES if importlib.util.find_spec(m) is None)
    return tc


def check_toolchain(tc: Toolchain, archs: list[str]) -> None:
    """Raise UserError for the first thing that would make the build fail, with its fix."""
    if tc.torch_version is None:
        raise UserError(f"torch does not import in {tc.python}; these extensions build against the "
                        "installed torch (--no-build-isolation), so install a CUDA build of torch first")
    if tc.torch_cuda is None:
        raise UserError(f"torch {tc.torch_version} is built without CUDA; install a CUDA build of torch "
                        "(on Jetson: NVIDIA's torch wheel for your JetPack) and run again")
    if tc.cuda_home is None:
        jetpack = "sudo apt install nvidia-jetpack (or cuda-nvcc-<ver>)" if tc.jetson else \
            f"install the CUDA {tc.torch_cuda.split('.')[0]} toolkit"
        raise UserError("nvcc (the CUDA compiler) was not found in CUDA_HOME, CUDA_PATH, PATH or "
                        f"/usr/local/cuda; {jetpack} and set CUDA_HOME=/usr/local/cuda")
    if tc.nvcc_release is None:
        raise UserError(f"{tc.cuda_home}/bin/nvcc --version did not say its release; check the CUDA install")
    if tc.nvcc_release.split(".")[0] != tc.torch_cuda.split(".")[0]:
        raise UserError(f"nvcc in {tc.cuda_home} is CUDA {tc.nvcc_release} but torch {tc.torch_version} was "
                        f"built with CUDA {tc.torch_cuda}; the majors must match: set CUDA_HOME to a "
                        f"CUDA {tc.torch_cuda.split('.')[0]}.x toolkit or install the matching torch")
    for arch in archs:
        if tc.nvcc_archs and arch not in tc.nvcc_archs:
            hint = {"101": "; CUDA 13 renamed Jetson Thor to sm_110: use --arch 11.0",
                    "72": "; CUDA 13 dropped Xavier (sm_72): build with JetPack 5's CUDA 11.4"}.get(arch, "")
            raise UserError(f"nvcc {tc.nvcc_release} cannot compile for sm_{arch}; it knows "
                            f"{', '.join('sm_' + a for a in tc.nvcc_archs)}{hint}")
    missing = list(tc.missing_build) + ([] if tc.ninja else ["ninja"])
    if missing:
        raise UserError(f"build dependencies missing: {', '.join(missing)}; --no-build-isolation builds "
                        f"with what is installed, so run: {tc.python} -m pip install {' '.join(missing)}")


def check_disk(path: Path, need: int = MIN_FREE_BYTES) -> None:
    probe = Path(path).absolute()
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < need:
        raise UserError(f"only {free / GIB:.1f} GiB free under {probe}; the build needs about "
                        f"{need / GIB:.0f} GiB: free some space or pass --out/--work-dir on another disk")


def mem_available(meminfo: str = "/proc/meminfo") -> int | None:
    try:
        m = re.search(r"^MemAvailable:\s+(\d+) kB", Path(meminfo).read_text(), re.M)
    except OSError:
        return None
    return int(m[1]) * 1024 if m else None


def default_jobs(cpus: int, available: int | None, jetson: bool) -> int:
    """One nvcc job per core, but no more than memory allows: ~3 GiB each (4 GiB on a Jetson, whose
    memory the GPU and the desktop share)."""
    per_job = (4 if jetson else 3) * GIB
    by_memory = max(1, available // per_job) if available else cpus
    return max(1, min(cpus, by_memory))


GENCODE_LINE = re.compile(r'^\s*cc_flag\.append\("(-gencode|arch=compute_\w+,code=\w+)"\)\s*$')
GUARD_LINE = re.compile(r'^\s*if bare_metal_version >= Version\("[\d.]+"\):\s*$')


def gencode_flags(archs: list[str], ptx: bool = False) -> list[str]:
    flags = [f for a in archs for f in ("-gencode", f"arch=compute_{a},code=sm_{a}")]
    if ptx:  # PTX of the newest arch, for GPUs newer than the targets
        flags += ["-gencode", f"arch=compute_{archs[-1]},code=compute_{archs[-1]}"]
    return flags


def patch_setup_py(text: str, archs: list[str], ptx: bool = False, source: str = "setup.py") -> str:
    """Replace the upstream block of `cc_flag.append("-gencode")` lines (and their CUDA version
    guards) with one line holding only the target archs."""
    lines = text.splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if GENCODE_LINE.match(line)]
    unsupported = (f"{source} does not have the hard-coded -gencode block edgebench knows how to restrict "
                   f"(checked against mamba-ssm {PACKAGES['mamba-ssm'].pinned} and causal-conv1d "
                   f"{PACKAGES['causal-conv1d'].pinned}); use those versions")
    if not hits:
        raise UserError(unsupported)
    first, last = hits[0], hits[-1]
    for i in range(first, last + 1):
        line = lines[i]
        if not (GENCODE_LINE.match(line) or GUARD_LINE.match(line) or not line.strip()
                or line.strip().startswith("#")):
            raise UserError(f"{unsupported} (unexpected line {i + 1} inside it: {line.strip()!r})")
    indent = re.match(r"\s*", lines[first])[0]
    new = (f"{indent}# edgebench kernels build: target archs only (upstream hard-codes many)\n"
           f"{indent}cc_flag += {gencode_flags(archs, ptx)!r}\n")
    patched = "".join(lines[:first]) + new + "".join(lines[last + 1:])
    if len(re.findall(r"arch=compute_", patched)) != len(archs) + ptx:
        raise UserError(f"{unsupported} (arch flags remain outside the block)")
    return patched


def build_env(pkg: Package, archs: list[str], jobs: int, tc: Toolchain, base=None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    bin_dirs = [str(Path(tc.python).parent), str(Path(tc.cuda_home, "bin"))]  # venv ninja, nvcc
    env["PATH"] = os.pathsep.join(bin_dirs + [env.get("PATH", "")])
    env["CUDA_HOME"] = tc.cuda_home
    env["MAX_JOBS"] = str(jobs)
    env[f"{pkg.env_prefix}_FORCE_BUILD"] = "TRUE"  # else setup.py tries to download a wheel
    env[f"{pkg.env_prefix}_SKIP_CUDA_BUILD"] = "FALSE"
    env.setdefault(f"{pkg.env_prefix}_LOCAL_VERSION", "sm" + ".sm".join(archs))
    env["TORCH_CUDA_ARCH_LIST"] = ";".join(dotted(a) for a in archs)
    if tc.compress_mode and "--compress-mode" not in env.get("NVCC_APPEND_FLAGS", ""):
        env["NVCC_APPEND_FLAGS"] = (env.get("NVCC_APPEND_FLAGS", "") + " --compress-mode=size").strip()
    return env


def wheel_command(python: str, src: Path, out: Path) -> list[str]:
    return [python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-v",
            "-w", str(out), str(src)]


@dataclass
class BuildResult:
    package: str
    wheel: Path
    seconds: float
    log: Path


def build_package(pkg: Package, sdist: Path, archs: list[str], out: Path, work: Path, jobs: int,
                  tc: Toolchain, ptx: bool = False, run=subprocess.run) -> BuildResult:
    src = unpack(sdist, work)
    setup = src / "setup.py"
    setup.write_text(patch_setup_py(setup.read_text(), archs, ptx, source=f"{sdist.name}:setup.py"))
    out.mkdir(parents=True, exist_ok=True)
    log = out / f"{pkg.name}-build.log"
    start = time.time()
    with open(log, "w") as fh:
        rc = run(wheel_command(tc.python, src, out), env=build_env(pkg, archs, jobs, tc), cwd=src,
                 stdout=fh, stderr=subprocess.STDOUT).returncode
    seconds = time.time() - start
    if rc != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-25:])
        raise UserError(f"building {pkg.name} failed after {seconds:.0f} s (exit {rc}); full log: {log}\n{tail}")
    wheels = [w for w in out.glob(f"{pkg.module}-*.whl") if w.stat().st_mtime >= start - 1]
    if not wheels:
        raise UserError(f"pip said {pkg.name} was built but no {pkg.module}-*.whl appeared in {out}; see {log}")
    return BuildResult(pkg.name, max(wheels, key=lambda w: w.stat().st_mtime), seconds, log)
