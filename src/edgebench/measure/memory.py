"""Measured memory of a case: allocator peaks, device-level use, NVML per-process memory, host RSS,
and on unified-memory boards (Jetson) /proc/meminfo (via edgebench.telemetry.jetson). Each reading that cannot
be had is None with a `<name>_why` reason beside it.
"""
from __future__ import annotations

import os
import resource


def rss_bytes() -> int | None:
    """This process's resident set. Read directly, not through EDGEBENCH_SYSFS_ROOT: it is a fact
    about this process, not about the device."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


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
        from edgebench.telemetry import jetson
        if jetson.is_jetson():  # unified memory: the GPU allocates out of host RAM
            info = jetson.meminfo_bytes()
            out.update({k: info.get(k) for k in ("mem_available_bytes", "nvmap_used_bytes")})
        return out


def _nvml_process_bytes(index: int) -> dict:
    from edgebench.telemetry import nvml
    ok, why = nvml.status()
    if not ok:
        return {"nvml_process_bytes": None, "nvml_process_bytes_why": why}
    nv_index, _ = nvml.index_for_torch_device(index)
    value = nvml.process_memory_bytes(nv_index, os.getpid())
    if value is None:
        return {"nvml_process_bytes": None,
                "nvml_process_bytes_why": "NVML does not attribute memory to this process here"}
    return {"nvml_process_bytes": value}
