"""What this machine has and lacks for benchmarking: one dict (`snapshot`) for the run header and
`edgebench env --json`, rendered as one screen by `edgebench env`.

Every component is `{"ok": bool, "version"/"detail": ..., "why": str|None, "fix": str|None}` so a
missing piece always says how to get it. Package versions come from installed metadata without
importing them, except where importing is the test (mamba_ssm's compiled kernels).
"""
from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import platform
import socket

from edgebench import __version__, probe
from edgebench.telemetry import stack
from edgebench.toolchain.packages import KERNEL_MODULES, distribution

# Python packages that matter, with the command that gets each (torch: the one for this machine).
_KERNELS_FIX = "edgebench kernels build --install  (compiles them against the installed torch for this GPU)"
PACKAGES = {
    "torch": None,
    "transformers": "pip install 'edgebench[hf]'",
    "mamba_ssm": _KERNELS_FIX,
    "causal_conv1d": _KERNELS_FIX,
    "flash_attn": "pip install flash-attn --no-build-isolation",
    "triton": "pip install triton  (comes with CUDA torch on x86-64)",
    "pynvml": "pip install 'edgebench[nvml]'",
    "jtop": "pip install 'edgebench[jetson]'  (Jetson only; needs the jtop service)",
    "matplotlib": "pip install 'edgebench[report]'",
}


def _dist_version(module: str) -> str | None:
    try:
        return md.version(distribution(module))
    except md.PackageNotFoundError:
        return None


def _importable(module: str) -> tuple[bool, str | None]:
    try:
        importlib.import_module(module)
        return True, None
    except Exception as exc:  # noqa: BLE001 - any failure to import is the answer
        return False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def packages(deep: bool = True) -> dict:
    out = {}
    for module, fix in PACKAGES.items():
        version = _dist_version(module)
        entry = {"ok": version is not None, "version": version, "why": None, "fix": None}
        if version is None:
            entry.update(why="not installed", fix=fix or stack.torch_install_command())
        elif deep and module in KERNEL_MODULES:
            # mamba_ssm cannot be imported at all without its compiled selective_scan_cuda; then
            # transformers silently falls back to the slow PyTorch reference for every SSM model.
            ext = KERNEL_MODULES[module].extension
            # The compiled extensions link against torch's libc10: torch must be loaded first.
            ok, why = _importable("torch")
            if ok:
                ok, why = _importable(ext)
            entry["compiled_kernels"] = ok
            if ok:
                ok, why = _importable(module)
            if not ok:
                entry.update(ok=False, why=f"installed but does not import ({why})", fix=_KERNELS_FIX)
        out[module] = entry
    # transformers outside the supported range, or one that disables the installed torch: the fix
    # installs a transformers that works with the torch that is here (never another torch)
    st = stack.check()
    out["transformers"]["supported"] = st["supported"]
    if not st["ok"]:
        out["transformers"].update(ok=False, why="; ".join(st["problems"]), fix=st["fix"])
    torch_entry = out["torch"]
    if torch_entry["ok"] and deep:
        import torch
        torch_entry["cuda"] = torch.version.cuda
        torch_entry["cuda_available"] = torch.cuda.is_available()
        if not torch_entry["cuda_available"]:
            torch_entry["why"] = "this torch build sees no CUDA GPU (CPU build, or no driver)"
    return out


def host() -> dict:
    from edgebench.telemetry import jetson
    mem = jetson.meminfo_bytes()["mem_total_bytes"]
    return {"hostname": socket.gethostname(), "machine": platform.machine(),
            "os": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "mem_total_bytes": mem}


def gpus() -> list[dict]:
    """One entry per CUDA device, from the native probe, with NVML facts where NVML answers."""
    from edgebench.telemetry import nvml
    out = []
    if probe.cuda_ready():
        n = probe.native_module().cuda_device_count()
    else:
        torch = probe._torch_if_cuda()
        n = torch.cuda.device_count() if torch else 0
    for i in range(n):
        info = probe.device_info(i) or {"index": i}
        info["mem_free_bytes"], _ = probe.mem_get_info(i)
        nv_index, note = nvml.index_for_torch_device(i)
        ok, why = nvml.status()
        # power_reading: which power the sampler gets, "instant" or a 1 s "average"
        info["nvml"] = nvml.query(nv_index) | {"power_reading": nvml.power_source(nv_index)} if ok \
            else {"why": why}
        if note:
            info["nvml_index_note"] = note
        out.append(info)
    return out


# Environment variables that change what a benchmark measures (allocator behaviour, visible devices,
# synchronous launches, thread counts, worker start): recorded in every run header where set.
RESULT_VARS = ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF", "CUDA_VISIBLE_DEVICES", "CUDA_LAUNCH_BLOCKING",
               "CUDA_DEVICE_MAX_CONNECTIONS", "CUDA_MODULE_LOADING", "TORCH_CUDNN_SDPA_ENABLED",
               "OMP_NUM_THREADS", "EDGEBENCH_PRELOAD")


def result_vars() -> dict[str, str]:
    """The RESULT_VARS set in this process, e.g. {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}."""
    return {k: os.environ[k] for k in RESULT_VARS if k in os.environ}


_PROBE_FIX = ("reinstall edgebench with the CUDA toolkit's nvcc on PATH (EDGEBENCH_CUDA=ON makes a build "
              "without it fail): pip install --force-reinstall --no-deps edgebench")


def micro(gpu_list: list[dict]) -> dict:
    """The device micro-benchmarks of every GPU in `gpu_list` (`probe.microbench`: launch latency,
    device copy bandwidth, event resolution, dense bf16 matmul rate), about one second in all, as a
    component whose `gpus` holds one entry per GPU (`index`, and the numbers or a `why`). Skipped, with
    why, where there is no GPU or no native CUDA probe. The copy is device to device on whatever
    memory the GPU has, so a Jetson's shared DRAM is measured the same way as a discrete GPU's."""
    if not gpu_list:
        return {"ok": False, "why": "no CUDA GPU visible", "fix": None, "gpus": []}
    if not probe.cuda_ready():
        return {"ok": False, "why": f"needs the native CUDA probe ({probe.why})", "fix": _PROBE_FIX,
                "gpus": []}
    budget = max(0.25, probe.MICRO_BUDGET_S / len(gpu_list))
    out = []
    for g in gpu_list:
        try:
            out.append(probe.microbench(g["index"], budget_s=budget))
        except RuntimeError as exc:  # a device that fails a benchmark: the others still run
            out.append({"index": g["index"], "why": str(exc)})
    why = "; ".join(f"GPU {m['index']}: {m['why']}" for m in out if m.get("why"))
    return {"ok": not why, "why": why or None, "fix": None, "gpus": out}


def snapshot_for_run(payload: dict) -> dict:
    """Worker target (see execution/isolate.py): the full snapshot, read in a worker process, with
    the device micro-benchmarks (`micro`) unless the payload says `"micro": false`."""
    deep = bool(payload.get("deep", True))
    return snapshot(deep=deep, with_micro=deep and bool(payload.get("micro", True)))


def snapshot(deep: bool = True, with_micro: bool = False) -> dict:
    """The environment record: everything a reader needs to know what produced a number."""
    import time

    from edgebench.telemetry import jetson
    from edgebench.telemetry import nvml
    took, t0 = {}, time.monotonic()
    snap = {"edgebench": __version__, "host": host(), "probe": probe.summary()}
    took["host_probe"], t = time.monotonic() - t0, time.monotonic()
    snap.update(packages=packages(deep), vars=result_vars())
    took["packages"], t = time.monotonic() - t, time.monotonic()
    ok, why = nvml.status()
    snap["nvml"] = {"ok": ok, "why": why or None,
                    "fix": None if ok else "install the NVIDIA driver (NVML ships with it); on Jetson "
                                           "NVML answers NOT_SUPPORTED and INA3221 rails are used"}
    snap["gpus"] = gpus() if deep else []
    if jetson.is_jetson():
        snap["jetson"] = jetson.board_facts()
    if deep:
        from edgebench.telemetry import power
        rails, reason = power.channels_for_device("jetson" if jetson.is_jetson() else "nvml", 0)
        snap["power"] = {"channels": [c.name for c in rails], "why": reason or None}
    took["gpus_power"], t = time.monotonic() - t, time.monotonic()
    if with_micro:
        snap["micro"] = micro(snap["gpus"])
        took["micro"] = time.monotonic() - t
    snap["snapshot_s"] = {k: round(v, 3) for k, v in took.items()}
    return snap
