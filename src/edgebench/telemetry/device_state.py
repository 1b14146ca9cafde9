"""Device state that makes numbers reproducible, read once before the first case of a run.

`check(device, env)` -> (state, warnings): a JSON-able dict for the run header and plain-language
warnings, each naming its fix. Nothing here raises for a missing file or library: an unavailable value
is None beside a `<key>_why`. Every read goes through `sysroot` (tests point it at fixture trees).

- `host` (every Linux host): the cpufreq governor of each policy (`/sys/devices/system/cpu/cpufreq/
  policy*`), warned when not `performance` unless the policy is pinned (scaling_min == scaling_max)
  or on a Jetson (where jetson_clocks pins it, and is warned about instead); a policy whose CPUs are
  all offline is skipped (the kernel answers EBUSY for it). No cpufreq (most VMs): None with why. `hypervisor` from /proc/cpuinfo's x86 flags,
  and the share of CPU time stolen since boot (/proc/stat), warned at STEAL_WARN_SHARE or more.
- `jetson`: the nvpmodel mode (`nvpmodel -q`, else /var/lib/nvpmodel/status named by
  /etc/nvpmodel.conf) and jetson_clocks (`jetson.jetson_clocks_state`: GPU devfreq and online CPUs
  at min == max, the EMC at its max where readable, jetson-stats' rule); warned when not on.
- `gpu` (a desktop GPU, device cuda:N, through `nvml`): the NVML index of torch's cuda:N (matched by
  the PCI bus id `env` recorded), persistence mode, compute processes other than this one (pid,
  memory, name from /proc/<pid>/comm; NVML gives the host's pids, so inside a container a name can
  be missing or another process's), and whether clocks are locked: application clocks away from their defaults
  (`nvidia-smi -ac`), or the ApplicationsClocksSetting clocks-event reason set now (what NVML shows
  of a `nvidia-smi -lgc` lock while it holds the clock down: NVML documents only a setter for it).
- `cpu_times()` / `steal_share(before, after)`: CPU time stolen by the hypervisor between two
  readings of /proc/stat's aggregate line, for reading around each case in the worker.
"""
from __future__ import annotations

import os

from edgebench.telemetry import jetson
from edgebench.telemetry import nvml
from edgebench.telemetry import sysroot

CPUFREQ = "/sys/devices/system/cpu/cpufreq"
STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice")
_TOTAL_FIELDS = STAT_FIELDS[:8]  # guest time is already counted in user and nice
STEAL_WARN_SHARE = 0.02


def cpu_times() -> dict[str, int] | None:
    """/proc/stat's aggregate `cpu` line in USER_HZ ticks by field name, or None where unreadable."""
    text = sysroot.read_text("/proc/stat") or ""
    parts = text.splitlines()[0].split() if text else []
    if not parts or parts[0] != "cpu":
        return None
    try:
        return dict(zip(STAT_FIELDS, (int(v) for v in parts[1:])))
    except ValueError:
        return None


def steal_share(before: dict | None, after: dict | None) -> tuple[float | None, str]:
    """The share (0-1) of all CPUs' time the hypervisor gave to others between two `cpu_times()`."""
    if before is None or after is None:
        return None, "/proc/stat unreadable (not Linux?)"
    if "steal" not in before or "steal" not in after:
        return None, "/proc/stat has no steal column"
    total = sum(after.get(k, 0) - before.get(k, 0) for k in _TOTAL_FIELDS)
    if total <= 0:
        return None, "no CPU time elapsed between the two /proc/stat readings"
    return round((after["steal"] - before["steal"]) / total, 5), ""


def _int(path: str) -> int | None:
    text = sysroot.read_text(path)
    return int(text) if text and text.isdigit() else None


def _cpu_list(text: str) -> list[int]:
    """"0 1 2 3" (related_cpus) or "0-3,8" (cpulist) -> [0, 1, 2, 3(, 8)]."""
    out: list[int] = []
    for part in text.replace(",", " ").split():
        lo, _, hi = part.partition("-")
        if lo.isdigit() and (not hi or hi.isdigit()):
            out += range(int(lo), int(hi or lo) + 1)
    return out


def governors() -> tuple[dict | None, str]:
    """{policyN: {governor, cpus, min_khz, max_khz}} of the policies with an online CPU, or None."""
    policies = sorted(sysroot.path(CPUFREQ).glob("policy[0-9]*"), key=lambda p: int(p.name[6:]))
    if not policies:
        return None, f"no {CPUFREQ}/policy* (a VM, or no cpufreq driver): the host sets the CPU clock"
    out = {}
    for p in policies:
        d = f"{CPUFREQ}/{p.name}"
        cpus = _cpu_list(sysroot.read_text(f"{d}/related_cpus") or "")
        gov = sysroot.read_text(f"{d}/scaling_governor")
        if cpus and all(sysroot.read_text(f"/sys/devices/system/cpu/cpu{c}/online") == "0" for c in cpus):
            out[p.name] = {"governor": None, "cpus": cpus, "governor_why": "its CPUs are offline"}
        elif gov is None:
            out[p.name] = {"governor": None, "cpus": cpus,
                           "governor_why": "scaling_governor unreadable (EBUSY: an inactive policy)"}
        else:
            out[p.name] = {"governor": gov, "cpus": cpus, "min_khz": _int(f"{d}/scaling_min_freq"),
                           "max_khz": _int(f"{d}/scaling_max_freq")}
    return out, ""


def hypervisor() -> tuple[bool | None, str]:
    text = sysroot.read_text("/proc/cpuinfo")
    if text is None:
        return None, "/proc/cpuinfo unreadable"
    flags = next((line for line in text.splitlines() if line.startswith("flags")), None)
    if flags is None:
        return None, "/proc/cpuinfo has no x86 flags line (the hypervisor flag is x86's)"
    return "hypervisor" in flags.split(":", 1)[-1].split(), ""


def host_state(on_jetson: bool = False) -> tuple[dict, list[str]]:
    warnings: list[str] = []
    state: dict = {}
    state["cpufreq"], why = governors()
    if why:
        state["cpufreq_why"] = why
    loose: dict[str, list[str]] = {}
    for name, p in (state["cpufreq"] or {}).items():
        pinned = p.get("min_khz") is not None and p.get("min_khz") == p.get("max_khz")
        if p["governor"] not in (None, "performance") and not pinned:
            loose.setdefault(p["governor"], []).append(name)
    for gov, names in loose.items() if not on_jetson else ():  # a Jetson's fix is jetson_clocks
        warnings.append(f"CPU frequency governor is '{gov}' on {', '.join(names)}, not 'performance': "
                        "host-bound phases (kernel launches, eager decode) run at whatever clock it picks "
                        "and vary between runs; run `sudo cpupower frequency-set -g performance` (or write "
                        f"`performance` to {CPUFREQ}/policy*/scaling_governor).")
    state["hypervisor"], why = hypervisor()
    if why:
        state["hypervisor_why"] = why
    now = cpu_times()
    zero = dict.fromkeys(now, 0) if now else None
    state["steal_share_since_boot"], why = steal_share(zero, now)
    if why:
        state["steal_share_since_boot_why"] = why
    elif state["steal_share_since_boot"] >= STEAL_WARN_SHARE:
        warnings.append(f"the hypervisor has taken {state['steal_share_since_boot']:.1%} of this VM's CPU "
                        "time since boot (steal): host-bound phases slow down whenever it serves other "
                        "guests; each case records its own `steal_share`. For host-bound numbers use a "
                        "dedicated or bare-metal host.")
    return state, warnings


def jetson_state() -> tuple[dict, list[str]]:
    facts = jetson.nvpmodel_facts()
    state = {k: facts.get(k) for k in ("nvpmodel", "nvpmodel_id", "nvpmodel_default_id")}
    state |= {k: facts[k] for k in ("nvpmodel_source", "nvpmodel_why") if k in facts}
    _, gpu = jetson.gpu_devfreq()
    cpus, emc = jetson.cpu_freqs_khz(), jetson.emc_freqs()
    state["jetson_clocks"], state["jetson_clocks_rule"] = jetson.jetson_clocks_state(gpu, cpus, emc)
    state["clocks"] = {"gpu_hz": gpu, "cpu_khz": cpus, "emc_hz": emc}
    if not emc:
        state["clocks"]["emc_hz_why"] = jetson.emc_rate()[1] or "no EMC min/max readable"
    mode = state["nvpmodel"] or (f"id {state['nvpmodel_id']}" if state["nvpmodel_id"] is not None else None)
    warnings = []
    if mode is None:
        warnings.append(f"the Jetson power mode is unknown ({facts.get('nvpmodel_why')}): set it with "
                        "`sudo nvpmodel -m <id>` and check it with `nvpmodel -q`.")
    if state["jetson_clocks"] is not True:
        found = "is off" if state["jetson_clocks"] is False else "could not be read"
        warnings.append(f"jetson_clocks {found} ({state['jetson_clocks_rule']}): DVFS moves the CPU, GPU and "
                        "memory clocks with load and temperature, so numbers vary between runs; run `sudo "
                        f"jetson_clocks` in the chosen power mode (now {mode or 'unknown'}; `sudo nvpmodel -m "
                        "<id>` first to change it), as NVIDIA's benchmarking guidance asks.")
    return state, warnings


def nvml_index(device: str, env: dict) -> tuple[int, str]:
    """NVML's index of torch's `cuda:N`, matched by the PCI bus id the environment snapshot recorded."""
    n = int(device.split(":")[1]) if ":" in device else 0
    gpus = env.get("gpus") or []
    entry = gpus[n] if n < len(gpus) else {}
    bus = (entry.get("nvml") or {}).get("pci_bus_id") or entry.get("pci_bus_id")
    key = nvml.parse_pci_bus_id(bus) if bus else None
    for i in range(nvml.device_count() if key else 0):
        found = nvml.query(i).get("pci_bus_id")
        if found and nvml.parse_pci_bus_id(found) == key:
            return i, ""
    return n, "assumed NVML index = torch index (no recorded PCI bus id matched an NVML device)"


def _clocks_locked(s: dict, reasons: int | None) -> tuple[bool | None, str]:
    app = [(s[f"app_{d}_mhz"], s[f"default_app_{d}_mhz"], d) for d in ("graphics", "mem")]
    moved = [f"{d} {a} MHz (default {b})" for a, b, d in app if a is not None and b is not None and a != b]
    if moved:
        return True, "application clocks set (nvidia-smi -ac): " + ", ".join(moved)
    if "ApplicationsClocksSetting" in nvml.decode_throttle_reasons(reasons):
        return True, "clocks-event reason ApplicationsClocksSetting: a -ac or -lgc limit holds the clock"
    if reasons is not None or any(a is not None for a, _, _ in app):
        return False, "application clocks at their defaults, no ApplicationsClocksSetting event reason"
    return None, s.get("app_graphics_mhz_why") or "NVML gave neither application clocks nor event reasons"


def _process_label(p: dict) -> str:
    used = "memory unknown" if p["used_bytes"] is None else f"{p['used_bytes'] / 2**30:.1f} GiB"
    return f"pid {p['pid']} ({p['name'] or 'name unknown'}, {used})"


def gpu_state(index: int) -> tuple[dict, list[str]]:
    ok, why = nvml.status()
    if not ok:
        keys = ("persistence_mode", "other_processes", "clocks_locked")
        return ({k: None for k in keys} | {f"{k}_why": f"NVML unavailable: {why}" for k in keys},
                [f"GPU {index}: other processes, persistence mode and clock locks were not checked: NVML "
                 f"is unavailable ({why})."])
    s, q = nvml.device_settings(index), nvml.query(index)
    state: dict = {"persistence_mode": s["persistence_mode"]}
    if s["persistence_mode"] is None:
        state["persistence_mode_why"] = s["persistence_mode_why"]
    procs = s["compute_processes"]
    state["other_processes"] = None if procs is None else [
        p | {"name": sysroot.read_text(f"/proc/{p['pid']}/comm")} for p in procs if p["pid"] != os.getpid()]
    if procs is None:
        state["other_processes_why"] = s["compute_processes_why"]
    state |= {k: v for k, v in s.items() if k.removesuffix("_why") in nvml.SETTINGS_KEYS[2:]}
    state["clocks_event_reasons"] = nvml.decode_throttle_reasons(q.get("throttle_reasons"))
    state["clocks_locked"], state["clocks_locked_rule"] = _clocks_locked(s, q.get("throttle_reasons"))
    warnings = []
    if state["other_processes"]:
        who = ", ".join(_process_label(p) for p in state["other_processes"])
        warnings.append(f"GPU {index} is in use by {len(state['other_processes'])} other process(es): {who}; "
                        "they compete for its time and memory, so numbers vary: stop them, or pick an idle "
                        "GPU with --device cuda:N.")
    if state["persistence_mode"] is False:
        warnings.append(f"GPU {index}: persistence mode is off, so the driver tears the GPU down whenever no "
                        "process holds it and sets it up again for each case's worker; run `sudo nvidia-smi "
                        "-pm 1` (or start nvidia-persistenced).")
    if state["clocks_locked"] is False:
        warnings.append(f"GPU {index}: clocks are not locked ({state['clocks_locked_rule']}): boost clocks "
                        "follow temperature and power, so numbers drift between runs; lock them with `sudo "
                        "nvidia-smi -lgc <MHz>,<MHz>` (e.g. its base clock; `-rgc` resets it). NVML shows a "
                        "-lgc lock only while it holds the clock down, so ignore this if you set one.")
    return state, warnings


def check(device: str, env: dict) -> tuple[dict, list[str]]:
    """The device state for the run header, and the warnings to print before the first case.
    `device` is "cpu" or "cuda:N"; `env` the environment snapshot (its `gpus` give PCI bus ids)."""
    on_jetson = jetson.is_jetson()
    state: dict = {"device": device}
    state["host"], warnings = host_state(on_jetson)
    if on_jetson:
        state["jetson"], more = jetson_state()
        warnings += more
    else:
        state["jetson"], state["jetson_why"] = None, "not a Jetson"
    if on_jetson or not device.startswith("cuda"):
        state["gpu"] = None
        state["gpu_why"] = "a Jetson: its clocks are checked under jetson" if on_jetson else "the run is on the CPU"
    else:
        index, note = nvml_index(device, env)
        state["gpu"], more = gpu_state(index)
        state["gpu"]["nvml_index"] = index
        if note:
            state["gpu"]["nvml_index_note"] = note
        warnings += more
    return state, warnings
