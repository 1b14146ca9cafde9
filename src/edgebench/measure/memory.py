"""Measured memory of a case: allocator peaks, device-level use, NVML per-process memory, host RSS,
and on unified-memory boards (Jetson) /proc/meminfo. Each reading that cannot be had is None with a
`<name>_why` reason beside it.
"""
from __future__ import annotations

import os
import resource

from edgebench import sysroot


def rss_bytes() -> int | None:
    text = sysroot.read_text(f"/proc/{os.getpid()}/status")
    if text:
        for line in text.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def meminfo_bytes() -> dict:
    """MemAvailable and NvMapMemUsed (Jetson's GPU allocations out of shared RAM), bytes."""
    out: dict = {}
    text = sysroot.read_text("/proc/meminfo") or ""
    fields = {ln.split(":")[0]: ln.split(":")[1].split() for ln in text.splitlines() if ":" in ln}
    for key, name in (("MemAvailable", "mem_available_bytes"), ("NvMapMemUsed", "nvmap_used_bytes")):
        if key in fields:
            out[name] = int(fields[key][0]) * 1024
        else:
            out[name] = None
            out[f"{name}_why"] = f"/proc/meminfo has no {key}" + (" (not a Jetson)" if key == "NvMapMemUsed" else "")
    return out


class PhaseMemory:
    """Brackets one phase: resets the allocator peak before, reads peaks and device use after."""

    def __init__(self, device: str, device_index: int = 0):
        self.device, self.index = device, device_index
        self.cuda = device.startswith("cuda")

    def begin(self) -> None:
        if self.cuda:
            import torch
            from edgebench.probe import mem_get_info
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._free0 = mem_get_info(self.index)[0]

    def end(self) -> dict:
        out: dict = {"rss_bytes": rss_bytes(), "peak_rss_bytes": peak_rss_bytes()}
        if not self.cuda:
            out["peak_allocated_bytes"] = None
            out["peak_allocated_bytes_why"] = "CPU run: no device allocator"
            return out
        import torch
        from edgebench.probe import mem_get_info
        torch.cuda.synchronize(self.device)
        free, total = mem_get_info(self.index)
        out.update({
            "peak_allocated_bytes": torch.cuda.max_memory_allocated(self.device),
            "peak_reserved_bytes": torch.cuda.max_memory_reserved(self.device),
            "device_used_bytes": total - free,
            "device_delta_bytes": self._free0 - free,
        })
        out.update(_nvml_process_bytes(self.index))
        return out


def _nvml_process_bytes(index: int) -> dict:
    from edgebench.probe import native_module
    native = native_module()
    if native is None:
        return {"nvml_process_bytes": None, "nvml_process_bytes_why": "native probe not built"}
    why = native.nvml_init()
    if why:
        return {"nvml_process_bytes": None, "nvml_process_bytes_why": why}
    value = native.nvml_process_memory_bytes(index, os.getpid())
    if value is None:
        return {"nvml_process_bytes": None,
                "nvml_process_bytes_why": "NVML does not attribute memory to this process here"}
    return {"nvml_process_bytes": value}
