"""NVML facade: the native probe's dlopen'd NVML when built, else pynvml, else a reason.

`status()` probes once (cached) and says which backend is live or why none is. `query(index)` returns
`name, pci_bus_id, power_mw, energy_mj, mem_total_bytes, mem_used_bytes, sm_clock_mhz, mem_clock_mhz,
gpu_temp_c, throttle_reasons`; each value is None when NVML refuses it, with `<key>_why` giving NVML's
error string (on Jetson NVML initialises but answers "Not Supported" for power, energy and memory).
`pynvml` is imported only on the first call; the native module comes through `probe.py`.
`device_settings(index)`: persistence mode, compute processes, application clocks against their
defaults, through pynvml even when the native probe is live (it binds none of these).

Torch and NVML number GPUs differently unless CUDA_DEVICE_ORDER=PCI_BUS_ID (and CUDA_VISIBLE_DEVICES
renumbers torch's view): `index_for_torch_device` matches them by PCI domain/bus/device.
"""
from __future__ import annotations

import functools
import os

from edgebench import probe

QUERY_KEYS = ("name", "pci_bus_id", "power_mw", "energy_mj", "mem_total_bytes", "mem_used_bytes",
              "sm_clock_mhz", "mem_clock_mhz", "gpu_temp_c", "throttle_reasons")

# nvmlClocksEventReason* bits (nvml.h); "throttle reasons" in older NVML.
THROTTLE_BITS = (
    (0x001, "GpuIdle"), (0x002, "ApplicationsClocksSetting"), (0x004, "SwPowerCap"),
    (0x008, "HwSlowdown"), (0x010, "SyncBoost"), (0x020, "SwThermalSlowdown"),
    (0x040, "HwThermalSlowdown"), (0x080, "HwPowerBrakeSlowdown"), (0x100, "DisplayClockSetting"),
)
NOT_THROTTLING = frozenset({"GpuIdle", "ApplicationsClocksSetting"})


@functools.lru_cache(maxsize=1)
def _backend() -> tuple[str | None, object, str]:
    whys = []
    native = probe.native_module()
    if native is None:
        whys.append("native probe absent")
    elif hasattr(native, "nvml_init"):
        why = native.nvml_init()
        if not why:
            return "native", native, ""
        whys.append(f"native NVML: {why}")
    try:
        import pynvml
    except ImportError as e:
        whys.append(f"pynvml not installed ({e}); pip install 'edgebench[nvml]'")
        return None, None, "; ".join(whys)
    try:
        pynvml.nvmlInit()
    except Exception as e:  # pynvml.NVMLError, or OSError-like when libnvidia-ml is missing
        whys.append(f"pynvml: {e}")
        return None, None, "; ".join(whys)
    return "pynvml", pynvml, ""


def status() -> tuple[bool, str]:
    """(True, "native" | "pynvml") when NVML works, else (False, why)."""
    name, _, why = _backend()
    return (True, name) if name else (False, why)


def device_count() -> int:
    name, mod, _ = _backend()
    if name == "native":
        return int(mod.nvml_device_count())
    if name == "pynvml":
        return int(mod.nvmlDeviceGetCount())
    return 0


def _call(fn, *args):
    import pynvml
    try:
        return fn(*args), ""
    except pynvml.NVMLError as e:
        return None, f"NVML: {e}"


def _text(v):
    return v.decode() if isinstance(v, bytes) else v


def _with_whys(raw: dict[str, tuple]) -> dict:
    """{key: (value, why)} -> {key: value}, plus `<key>_why` beside each None."""
    out = {}
    for key, (value, why) in raw.items():
        out[key] = value
        if value is None:
            out[f"{key}_why"] = why
    return out


def _pynvml_query(nv, index: int) -> dict:
    h, why = _call(nv.nvmlDeviceGetHandleByIndex, index)
    if h is None:
        return {k: None for k in QUERY_KEYS} | {f"{k}_why": why for k in QUERY_KEYS}
    reasons = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
        nv.nvmlDeviceGetCurrentClocksThrottleReasons
    mem, mem_why = _call(nv.nvmlDeviceGetMemoryInfo, h)
    pci, pci_why = _call(nv.nvmlDeviceGetPciInfo, h)
    raw = {
        "name": _call(lambda: _text(nv.nvmlDeviceGetName(h))),
        "pci_bus_id": (_text(pci.busId) if pci is not None else None, pci_why),
        "power_mw": _call(nv.nvmlDeviceGetPowerUsage, h),
        "energy_mj": _call(nv.nvmlDeviceGetTotalEnergyConsumption, h),
        "mem_total_bytes": (mem.total if mem is not None else None, mem_why),
        "mem_used_bytes": (mem.used if mem is not None else None, mem_why),
        "sm_clock_mhz": _call(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_SM),
        "mem_clock_mhz": _call(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_MEM),
        "gpu_temp_c": _call(nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU),
        "throttle_reasons": _call(reasons, h),
    }
    return _with_whys(raw)


def query(index: int) -> dict:
    """One device's telemetry; every key None with the same reason when NVML is unusable."""
    name, mod, why = _backend()
    if name == "native":
        return dict(mod.nvml_query(index))
    if name == "pynvml":
        return _pynvml_query(mod, index)
    return {k: None for k in QUERY_KEYS} | {f"{k}_why": why for k in QUERY_KEYS}


_FI_DEV_POWER_INSTANT = 186  # NVML_FI_DEV_POWER_INSTANT


_NO_INSTANT: set[int] = set()  # devices whose driver refused the instant field: not asked again


def _pynvml_instant_mw(mod, index: int) -> float | None:
    if index in _NO_INSTANT:
        return None
    value = _pynvml_field_mw(mod, index)
    if value is None:
        _NO_INSTANT.add(index)
    return value


def _pynvml_field_mw(mod, index: int) -> float | None:
    try:
        (fv,) = mod.nvmlDeviceGetFieldValues(mod.nvmlDeviceGetHandleByIndex(index), [_FI_DEV_POWER_INSTANT])
    except Exception:  # noqa: BLE001 - an old driver or pynvml without the call: use the average
        return None
    if fv.nvmlReturn != 0:
        return None
    value = fv.value.uiVal if fv.valueType == 1 else fv.value.ullVal if fv.valueType == 3 else None
    return float(value) if value is not None else None


def power_mw(index: int) -> float | None:
    """GPU power in mW: NVML's instant reading where the driver has it (Ampere and later average
    nvmlDeviceGetPowerUsage over 1 s, too slow for sub-second phases), else that average."""
    name, mod, _ = _backend()
    if name == "native":
        return mod.nvml_power_mw(index)
    if name == "pynvml":
        instant = _pynvml_instant_mw(mod, index)
        if instant is not None:
            return instant
        return _call(mod.nvmlDeviceGetPowerUsage, mod.nvmlDeviceGetHandleByIndex(index))[0]
    return None


def power_source(index: int) -> str | None:
    """Which power reading `power_mw` gives: "instant" or "average" (1 s window); None without NVML."""
    name, mod, _ = _backend()
    if name == "native":
        return mod.nvml_power_source(index) if hasattr(mod, "nvml_power_source") else "average"
    if name == "pynvml":
        return "instant" if _pynvml_instant_mw(mod, index) is not None else "average"
    return None


def energy_mj(index: int) -> int | None:
    """The total-energy counter (mJ since driver load, Volta+), or None."""
    name, mod, _ = _backend()
    if name == "native":
        return mod.nvml_energy_mj(index)
    if name == "pynvml":
        return _call(mod.nvmlDeviceGetTotalEnergyConsumption, mod.nvmlDeviceGetHandleByIndex(index))[0]
    return None


def process_memory_bytes(index: int, pid: int) -> int | None:
    """GPU memory NVML attributes to `pid` on the device (None when unsupported, e.g. Jetson)."""
    name, mod, _ = _backend()
    if name == "native":
        return mod.nvml_process_memory_bytes(index, pid)
    if name == "pynvml":
        procs, _ = _call(mod.nvmlDeviceGetComputeRunningProcesses, mod.nvmlDeviceGetHandleByIndex(index))
        for p in procs or []:
            if p.pid == pid:
                return p.usedGpuMemory
    return None


SETTINGS_KEYS = ("persistence_mode", "compute_processes", "app_graphics_mhz", "default_app_graphics_mhz",
                 "app_mem_mhz", "default_app_mem_mhz")


def _settings_pynvml() -> tuple[object, str]:
    name, mod, why = _backend()
    if name == "pynvml":
        return mod, ""
    if name is None:
        return None, why
    try:
        import pynvml
        pynvml.nvmlInit()  # reference-counted: the native probe's own init is untouched
    except ImportError as e:
        return None, f"pynvml not installed ({e}); pip install 'edgebench[nvml]'"
    except Exception as e:  # pynvml.NVMLError
        return None, f"pynvml: {e}"
    return pynvml, ""


def device_settings(index: int) -> dict:
    """What makes a GPU's numbers repeatable: `persistence_mode` (bool), `compute_processes`
    ([{pid, used_bytes}], used_bytes None where NVML cannot attribute memory), and the application
    clocks (`nvidia-smi -ac`) with their defaults, in MHz. Each None with `<key>_why` when refused."""
    nv, why = _settings_pynvml()
    h, hwhy = _call(nv.nvmlDeviceGetHandleByIndex, index) if nv is not None else (None, why)
    if h is None:
        return {k: None for k in SETTINGS_KEYS} | {f"{k}_why": hwhy for k in SETTINGS_KEYS}
    pm, pm_why = _call(nv.nvmlDeviceGetPersistenceMode, h)
    procs, procs_why = _call(nv.nvmlDeviceGetComputeRunningProcesses, h)
    raw = {
        "persistence_mode": (None if pm is None else pm == nv.NVML_FEATURE_ENABLED, pm_why),
        "compute_processes": (None if procs is None else
                              [{"pid": int(p.pid), "used_bytes": p.usedGpuMemory} for p in procs], procs_why),
        "app_graphics_mhz": _call(nv.nvmlDeviceGetApplicationsClock, h, nv.NVML_CLOCK_GRAPHICS),
        "default_app_graphics_mhz": _call(nv.nvmlDeviceGetDefaultApplicationsClock, h, nv.NVML_CLOCK_GRAPHICS),
        "app_mem_mhz": _call(nv.nvmlDeviceGetApplicationsClock, h, nv.NVML_CLOCK_MEM),
        "default_app_mem_mhz": _call(nv.nvmlDeviceGetDefaultApplicationsClock, h, nv.NVML_CLOCK_MEM),
    }
    return _with_whys(raw)


def decode_throttle_reasons(mask: int | None) -> list[str]:
    if mask is None:
        return []
    names = [n for bit, n in THROTTLE_BITS if mask & bit]
    unknown = mask & ~sum(bit for bit, _ in THROTTLE_BITS)
    return names + ([f"0x{unknown:x}"] if unknown else [])


def is_throttling(mask: int | None) -> bool:
    """True when any reason other than GpuIdle / ApplicationsClocksSetting is set."""
    return any(n not in NOT_THROTTLING for n in decode_throttle_reasons(mask))


def parse_pci_bus_id(bus_id: str) -> tuple[int, int, int] | None:
    """'00000000:3B:00.0' or '0000:3b:00.0' -> (domain, bus, device)."""
    try:
        dom, bus, rest = bus_id.strip().split(":")
        return int(dom, 16), int(bus, 16), int(rest.split(".")[0], 16)
    except ValueError:
        return None


def index_for_torch_device(torch_index: int) -> tuple[int, str]:
    """The NVML index of torch's `cuda:<torch_index>`, and a note when it had to be assumed."""
    try:
        import torch
        props = torch.cuda.get_device_properties(torch_index)
        key = (props.pci_domain_id, props.pci_bus_id, props.pci_device_id)
    except Exception as e:  # no torch, no CUDA, or an older torch without the pci_* fields
        return torch_index, f"assumed NVML index = torch index ({type(e).__name__}: {e})"
    for i in range(device_count()):
        bus = query(i).get("pci_bus_id")
        if bus and parse_pci_bus_id(bus) == key:
            return i, ""
    same_order = os.environ.get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID" and \
        "CUDA_VISIBLE_DEVICES" not in os.environ
    note = "CUDA_DEVICE_ORDER=PCI_BUS_ID" if same_order else "no NVML device matched torch's PCI id"
    return torch_index, f"assumed NVML index = torch index ({note})"
