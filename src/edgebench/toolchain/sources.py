"""Find the source packages (sdists) of the kernels to build, offline where possible.

Contract: `locate_sdists(packages, sdist_dir, out, python)` returns {package name: path of a .tar.gz}.
With `sdist_dir` every package must be there (the offline path: copy the sdists onto the device).
Without it, each package comes from pip's HTTP cache when an earlier download left it there, else
from `pip download --no-binary :all: --no-deps` (network); when that fails the `UserError` says how to
bring the sdists over. `unpack` extracts a fresh copy of one sdist, refusing odd archives.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

from edgebench.errors import UserError

SDIST_NAME = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+?)-(?P<version>\d[A-Za-z0-9_.+!]*)$")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _version_key(version: str):
    try:
        from packaging.version import InvalidVersion, Version
        try:
            return (1, Version(version), version)
        except InvalidVersion:
            pass
    except ImportError:
        pass
    return (0, tuple(int(p) for p in re.findall(r"\d+", version)), version)


def _matches(pkg, stem: str) -> str | None:
    """The version if `stem` ('mamba_ssm-2.3.2.post1') is an sdist of pkg (of its pinned version
    when the user asked for one), else None."""
    m = SDIST_NAME.match(stem)
    if not m or _canonical(m["name"]) != pkg.name:
        return None
    if pkg.version and m["version"] != pkg.version:
        return None
    return m["version"]


def find_sdist(pkg, directory: Path) -> Path | None:
    """The newest sdist of pkg in directory (mamba_ssm-*.tar.gz or mamba-ssm-*.tar.gz)."""
    found = [(v, p) for p in Path(directory).glob("*.tar.gz")
             if (v := _matches(pkg, p.name[: -len(".tar.gz")]))]
    return max(found, key=lambda vp: _version_key(vp[0]))[1] if found else None


def pip_cache_dir(env=None) -> Path:
    env = os.environ if env is None else env
    if env.get("PIP_CACHE_DIR"):
        return Path(env["PIP_CACHE_DIR"])
    return Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pip"


def find_in_pip_cache(pkg, cache: Path, dest: Path) -> Path | None:
    """pip (>= 23.3) keeps downloaded files as raw `*.body` files under http-v2/; an sdist there is a
    gzip tarball whose top folder names it. Copy the newest match to dest/<name>-<version>.tar.gz."""
    found = []
    for body in (Path(cache) / "http-v2").rglob("*.body"):
        try:
            with open(body, "rb") as fh:
                if fh.read(2) != b"\x1f\x8b":
                    continue
            with tarfile.open(body, "r:gz") as tf:
                first = tf.next()
        except (OSError, tarfile.TarError, EOFError):
            continue
        top = first.name.split("/")[0] if first else ""
        if version := _matches(pkg, top):
            found.append((version, top, body))
    if not found:
        return None
    _, top, body = max(found, key=lambda f: _version_key(f[0]))
    dest.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(body, dest / f"{top}.tar.gz"))


def download_command(python: str, packages, dest: Path) -> list[str]:
    # --no-build-isolation and the SKIP switches below: pip prepares metadata by running setup.py,
    # which otherwise wants torch in an isolated env (a GB download) or a CUDA torch.
    specs = [f"{p.name}=={p.version or p.pinned}" for p in packages]
    return [python, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            "--no-build-isolation", "-d", str(dest), *specs]


def download_env(packages, base=None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env.update({f"{p.env_prefix}_SKIP_CUDA_BUILD": "TRUE" for p in packages})
    return env


def offline_help(packages) -> str:
    specs = " ".join(f"{p.name}=={p.version or p.pinned}" for p in packages)
    return (f"on a machine with network run: MAMBA_SKIP_CUDA_BUILD=TRUE CAUSAL_CONV1D_SKIP_CUDA_BUILD=TRUE "
            f"pip download --no-deps --no-binary :all: --no-build-isolation {specs} -d sdists/ ; "
            f"copy sdists/ to this device and pass --sdist-dir sdists")


def locate_sdists(packages, sdist_dir: Path | None, out: Path, python: str,
                  run=subprocess.run, cache: Path | None = None) -> dict[str, Path]:
    if sdist_dir is not None:
        if not Path(sdist_dir).is_dir():
            raise UserError(f"--sdist-dir {sdist_dir} is not a directory")
        missing = [p for p in packages if find_sdist(p, sdist_dir) is None]
        if missing:
            want = ", ".join(f"{p.module}-{p.version or '*'}.tar.gz" for p in missing)
            raise UserError(f"no {want} in {sdist_dir}; {offline_help(missing)}")
        return {p.name: find_sdist(p, sdist_dir) for p in packages}
    dest = Path(out) / "sdists"  # kept, so the next build (or another device) can reuse them
    found = {}
    for p in packages:
        hit = find_sdist(p, dest) if dest.is_dir() else None
        found[p.name] = hit or find_in_pip_cache(p, cache or pip_cache_dir(), dest)
    todo = [p for p in packages if found[p.name] is None]
    if todo:
        dest.mkdir(parents=True, exist_ok=True)
        proc = run(download_command(python, todo, dest), env=download_env(todo),
                   capture_output=True, text=True)
        for p in todo:
            found[p.name] = find_sdist(p, dest)
        if proc.returncode != 0 or any(found[p.name] is None for p in todo):
            last = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:] or ["no output"]
            raise UserError(f"could not download the sdists (pip download: {last[0]}); {offline_help(todo)}")
    return found


def unpack(sdist: Path, dest: Path) -> Path:
    """Unpack a fresh copy of the sdist under dest and return its top folder."""
    with tarfile.open(sdist, "r:gz") as tf:
        names = tf.getnames()
        tops = {n.split("/")[0] for n in names}
        if len(tops) != 1 or any(n.startswith("/") or ".." in n.split("/") for n in names):
            raise UserError(f"{sdist} is not a plain sdist (one top folder, relative paths)")
        target = Path(dest) / tops.pop()
        shutil.rmtree(target, ignore_errors=True)
        if hasattr(tarfile, "data_filter"):
            tf.extractall(dest, filter="data")
        else:
            tf.extractall(dest)
    return target
