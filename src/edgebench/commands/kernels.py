"""`edgebench kernels build|status`: build the SSM kernels for this GPU, or show what is installed.

`build` makes mamba-ssm and causal-conv1d wheels for one GPU architecture from their sdists (offline
with --sdist-dir), the packages side by side sharing --jobs, prints each build's time and wheel path, writes `kernels-build.json` beside the
wheels, and with --install pip-installs them (--no-deps). `status` says which versions are installed
and whether their compiled modules (`selective_scan_cuda`, `causal_conv1d_cuda`) import, and for which
GPU archs they were built. Exit status of `status`: 0 when both import, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HELP = "Build mamba-ssm / causal-conv1d wheels for this GPU (offline-capable), or show their status."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="kernels_command", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="build wheels from sdists for one GPU arch")
    b.add_argument("--sdist-dir", type=Path, help="folder with mamba_ssm-*.tar.gz / causal_conv1d-*.tar.gz "
                   "(offline); default: pip's cache, then pip download")
    b.add_argument("--out", type=Path, default=Path("dist/kernels"), help="where the wheels, logs and kernels-build.json go (default: dist/kernels)")
    b.add_argument("--work-dir", type=Path, help="where sources unpack and compile (default: OUT/build)")
    b.add_argument("--arch", help="compute capability, e.g. 8.7 (Orin), 11.0 (Thor), 9.0; default: this GPU's")
    b.add_argument("--ptx", action="store_true", help="also embed PTX, for GPUs newer than --arch")
    b.add_argument("--jobs", type=int, help="parallel nvcc jobs (MAX_JOBS); default: cores, capped by memory")
    b.add_argument("--package", default="causal-conv1d,mamba-ssm", help="comma list, optionally name==version (default: causal-conv1d,mamba-ssm)")
    b.add_argument("--install", action="store_true", help="pip install the built wheels (--no-deps)")
    b.add_argument("--keep-build", action="store_true", help="keep OUT/build (the compile folder) after a success")
    sub.add_parser("status", help="what is installed and whether the compiled modules import")


def main(args: argparse.Namespace) -> int:
    return build(args) if args.kernels_command == "build" else status()


def build(args: argparse.Namespace) -> int:
    from edgebench.toolchain import build as kb
    from edgebench.errors import UserError
    from edgebench.toolchain.sources import locate_sdists

    packages = kb.parse_packages(args.package)
    archs = kb.resolve_archs(args.arch)
    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs {args.jobs} must be at least 1")
    tc = kb.inspect_toolchain()
    kb.check_toolchain(tc, archs)
    work = args.work_dir or args.out / "build"
    for path in {args.out, work}:
        kb.check_disk(path)
    jobs = args.jobs or kb.default_jobs(os.cpu_count() or 1, kb.mem_available(), tc.jetson)
    names = ", ".join(f"sm_{a} ({kb.KNOWN_ARCHS.get(a, 'other')})" for a in archs)
    print(f"target {names}; torch {tc.torch_version} (CUDA {tc.torch_cuda}); nvcc {tc.nvcc_release} in "
          f"{tc.cuda_home}; MAX_JOBS={jobs}; compress-mode={'size' if tc.compress_mode else 'n/a'}")
    if not tc.compress_mode:
        print("note: this nvcc has no --compress-mode (CUDA < 12.8): the wheels will be larger")
    sdists = locate_sdists(packages, args.sdist_dir, args.out, tc.python)
    results = _build_all(kb, packages, sdists, archs, args, work, jobs, tc)
    report = {"archs": archs, "ptx": args.ptx, "jobs": jobs, "concurrent": len(packages),
              "wall_seconds": round(max(r.seconds for r in results), 1), "torch": tc.torch_version,
              "torch_cuda": tc.torch_cuda, "nvcc": tc.nvcc_release, "compress_mode": tc.compress_mode,
              "builds": [{"package": r.package, "wheel": str(r.wheel), "seconds": round(r.seconds, 1),
                          "bytes": r.wheel.stat().st_size, "log": str(r.log)} for r in results]}
    (args.out / "kernels-build.json").write_text(json.dumps(report, indent=1) + "\n")
    if not args.keep_build and args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    if args.install:
        cmd = [tc.python, "-m", "pip", "install", "--no-deps", "--force-reinstall", "--no-index",
               *[str(r.wheel) for r in results]]
        print("installing:", " ".join(cmd), flush=True)
        if subprocess.run(cmd).returncode != 0:
            raise UserError("pip install of the built wheels failed (see above); the wheels are in " + str(args.out))
    _warn_runtime(packages)
    if not args.install:
        print(f"install with: {tc.python} -m pip install --no-deps " + " ".join(str(r.wheel) for r in results))
    return 0


def _build_all(kb, packages, sdists, archs, args, work, jobs, tc):
    """Build the packages at the same time, splitting MAX_JOBS between them: each build ends in one
    long compile (causal-conv1d's backward kernel: ~7 min on an H100 host), so running them side by
    side takes about as long as the slowest alone, with the same memory as one build of `jobs`."""
    from concurrent.futures import ThreadPoolExecutor

    each = max(1, jobs // len(packages))
    for pkg in packages:
        print(f"building {pkg.name} from {sdists[pkg.name]} (MAX_JOBS={each}) ...", flush=True)

    def one(pkg):
        r = kb.build_package(pkg, sdists[pkg.name], archs, args.out, work, each, tc, ptx=args.ptx)
        print(f"  {pkg.name}: {r.seconds:.0f} s, {r.wheel.stat().st_size / 2**20:.1f} MiB -> {r.wheel}",
              flush=True)
        return r

    with ThreadPoolExecutor(len(packages)) as pool:
        futures = [pool.submit(one, pkg) for pkg in packages]
    return [f.result() for f in futures]  # re-raises the first failure, after every build has ended


def _warn_runtime(packages) -> None:
    import importlib.util
    missing = sorted({m for p in packages for m in p.runtime if importlib.util.find_spec(m) is None})
    if missing:
        print(f"warning: {', '.join(missing)} not installed; mamba_ssm / causal_conv1d need them at run time "
              f"(pip install {' '.join(missing)}); the wheels are installed --no-deps", file=sys.stderr)


def _built_archs(so_path: str) -> str:
    """The sm_XX cubins inside a compiled module, read with cuobjdump when it is there."""
    tool = shutil.which("cuobjdump")
    if not tool:
        return "archs unknown (no cuobjdump)"
    out = subprocess.run([tool, "--list-elf", so_path], capture_output=True, text=True).stdout
    archs = sorted(set(re.findall(r"\.(sm_\d+a?)\.", out)), key=lambda a: int(re.sub(r"\D", "", a)))
    return "built for " + (", ".join(archs) if archs else "no cubins found")


def status() -> int:
    import importlib
    from importlib.metadata import PackageNotFoundError, version

    from edgebench.toolchain.packages import PACKAGES

    try:
        import torch
    except ImportError as exc:
        print(f"torch: does not import ({exc}); the kernels cannot load without it")
        return 1
    gpu = "no GPU visible"
    if torch.cuda.is_available():
        gpu = "{} sm_{}{}".format(torch.cuda.get_device_name(0), *torch.cuda.get_device_capability(0))
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}); {gpu}")
    ok = True
    for dist, module, ext in ((p.name, p.module, p.extension) for p in PACKAGES.values()):
        try:
            ver = version(dist)
        except PackageNotFoundError:
            ver = "not installed"
        try:
            so = importlib.import_module(ext).__file__
            line = f"{ext} imports ({_built_archs(so)})"
        except Exception as exc:  # an ImportError or an undefined-symbol OSError both mean "no kernels"
            ok, line = False, f"{ext} does not import: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        try:
            importlib.import_module(module)
            pkg_line = f"{module} imports"
        except Exception as exc:
            pkg_line = f"{module} does not import: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        print(f"{dist} {ver}: {line}; {pkg_line}")
    if not ok:
        print("build them for this GPU with: edgebench kernels build (offline: --sdist-dir DIR)")
    return 0 if ok else 1


if __name__ == "__main__":  # lets tools/lent-gpu/kernels_build.sh run before every other command module exists
    from edgebench.errors import UserError

    _parser = argparse.ArgumentParser(prog="edgebench kernels", description=HELP)
    add_arguments(_parser)
    try:
        sys.exit(main(_parser.parse_args()))
    except UserError as _exc:
        print(f"edgebench kernels: error: {_exc}", file=sys.stderr)
        sys.exit(2)
