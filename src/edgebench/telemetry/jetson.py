"""Jetson board facts that make a result reproducible: board, L4T, power mode, clocks, temperatures.

All reads go through `sysroot`, so a recorded fixture tree (EDGEBENCH_SYSFS_ROOT) stands in for a
board. Paths follow jetson_stats (jtop/core/gpu.py, memory.py, jetson_variables.py):

- board model: `/proc/device-tree/model` (NUL-terminated); Jetson when `/etc/nv_tegra_release` exists
  or `/proc/device-tree/compatible` names `nvidia,tegra*`.
- L4T: `/etc/nv_tegra_release`, `# R36 (release), REVISION: 4.3, ...` -> "36.4.3".
- nvpmodel: `nvpmodel -q` ("NV Power Mode: MAXN" then the id) through `nvpmodel_query`, a module
  function tests replace; else `/var/lib/nvpmodel/status` (`pmode:0002 ...`) with the names from
  `/etc/nvpmodel.conf` (`< POWER_MODEL ID=2 NAME=15W >`).
- GPU clock: devfreq `cur_freq`/`min_freq`/`max_freq` in Hz under `/sys/class/devfreq/` for
  17000000.gpu (Orin, L4T 36), 17000000.ga10b (Orin, L4T 35), 17000000.gv11b (Xavier),
  57000000.gpu (Nano/TX1), 17000000.gp10b (TX2).
- EMC clock: `/sys/kernel/debug/bpmp/debug/clk/emc/rate` (Hz, debugfs: root only), Thor's devfreq
  `bwmgr`, older `/sys/kernel/debug/clk/override.emc/clk_rate`. Unreadable -> None with the reason.
- jetson_clocks, without root: jetson_clocks pins each DVFS clock by raising its minimum to its
  maximum. Rule (jetson_stats' jetson_clocks_alive): "on" when the GPU devfreq min_freq == max_freq,
  every online CPU's cpufreq scaling_min_freq == scaling_max_freq (offline CPUs, `cpuN/online` 0,
  are skipped: jetson_clocks leaves them alone and the kernel answers EBUSY for their policy) and,
  where readable, the EMC runs at its max (`emc/rate` == `emc/max_rate`, debugfs: root only; Thor's
  devfreq `bwmgr`); "off" when any of them is free; None (with why) when none can be read.
  `jetson_clocks_detail` lists each clock's cur/min/max.
- temperatures: `/sys/class/thermal/thermal_zone*/{type,temp}` in millidegrees C; unreadable zones
  (Orin's cv* zones answer EAGAIN) and the -256 C "no sensor" value are skipped with a reason.
- unified memory: `/proc/meminfo` MemTotal, MemAvailable, NvMapMemUsed (kB) -> bytes.
- rails: `jetson_rails.discover_rails` with each rail's present mW and the board-total rail.
- jtop: when `jtop` imports and `/run/jtop.sock` exists, `jtop_snapshot()` gives nvpmodel and
  jetson_clocks from its root service; board_facts prefers it for those two fields.
"""
from __future__ import annotations

import re
import shutil
import subprocess

from edgebench.telemetry import sysroot
from edgebench.telemetry.jetson_rails import board_total, discover_rails, rails_present_mw, read_int_file

GPU_DEVFREQ_NAMES = ("17000000.gpu", "17000000.ga10b", "17000000.gv11b", "57000000.gpu",
                     "17000000.gp10b")
EMC_RATE_FILES = ("/sys/kernel/debug/bpmp/debug/clk/emc/rate", "/sys/class/devfreq/bwmgr/cur_freq",
                  "/sys/kernel/debug/clk/override.emc/clk_rate")
JTOP_SOCKET = "/run/jtop.sock"


def is_jetson() -> bool:
    if sysroot.path("/etc/nv_tegra_release").is_file():
        return True
    compat = sysroot.read_text("/proc/device-tree/compatible") or ""
    return any(c.startswith("nvidia,tegra") for c in compat.split("\x00"))


def parse_l4t_release(text: str) -> str | None:
    m = re.search(r"R(\d+)\s*\(\w+\),\s*REVISION:\s*([\d.]+)", text)
    return f"{m.group(1)}.{m.group(2)}" if m else None


def nvpmodel_query() -> str | None:
    """Output of `nvpmodel -q`, or None when it cannot run. Replaced in tests. Not run when the
    system root is re-rooted: the host's nvpmodel would describe another machine."""
    if str(sysroot.root()) != "/" or shutil.which("nvpmodel") is None:
        return None
    try:
        res = subprocess.run(["nvpmodel", "-q"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout if res.returncode == 0 else None


def parse_nvpmodel_q(text: str) -> tuple[str | None, int | None]:
    name = mode_id = None
    for line in text.splitlines():
        line = line.strip()
        if line.lower().startswith("nv power mode:"):
            name = line.split(":", 1)[1].strip() or None
        elif name is not None and mode_id is None and line.isdigit():
            mode_id = int(line)
    return name, mode_id


def parse_nvpmodel_conf(text: str) -> tuple[dict[int, str], int | None]:
    """Mode names by id, and the default id, from nvpmodel.conf."""
    names = {int(i): n for i, n in re.findall(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=(\S+)\s*>", text)}
    m = re.search(r"<\s*PM_CONFIG\s+DEFAULT=(\d+)\s*>", text)
    return names, (int(m.group(1)) if m else None)


def nvpmodel_facts() -> dict:
    conf = sysroot.read_text("/etc/nvpmodel.conf")
    names, default_id = parse_nvpmodel_conf(conf) if conf else ({}, None)
    out = {"nvpmodel_modes": names or None, "nvpmodel_default_id": default_id}
    q = nvpmodel_query()
    if q:
        name, mode_id = parse_nvpmodel_q(q)
        if name is not None:
            return out | {"nvpmodel": name, "nvpmodel_id": mode_id, "nvpmodel_source": "nvpmodel -q"}
    status = sysroot.read_text("/var/lib/nvpmodel/status")
    m = re.search(r"pmode:(\d+)", status or "")
    if m:
        mode_id = int(m.group(1))
        return out | {"nvpmodel": names.get(mode_id), "nvpmodel_id": mode_id,
                      "nvpmodel_source": "/var/lib/nvpmodel/status"}
    return out | {"nvpmodel": None, "nvpmodel_id": None,
                  "nvpmodel_why": "nvpmodel -q unavailable and no /var/lib/nvpmodel/status"}


def _freq_triplet(folder: str, cur: str, lo: str, hi: str) -> dict | None:
    vals = {}
    for key, name in (("cur", cur), ("min", lo), ("max", hi)):
        v, _ = read_int_file(sysroot.path(f"{folder}/{name}"))
        vals[key] = v
    return vals if any(v is not None for v in vals.values()) else None


def gpu_devfreq() -> tuple[str | None, dict | None]:
    """(devfreq name, {cur,min,max} in Hz) of the integrated GPU, or (None, None)."""
    for name in GPU_DEVFREQ_NAMES:
        folder = f"/sys/class/devfreq/{name}"
        if sysroot.path(folder).is_dir():
            return name, _freq_triplet(folder, "cur_freq", "min_freq", "max_freq")
    return None, None


def cpu_freqs_khz() -> dict[str, dict]:
    """{cur,min,max} in kHz of each online CPU (an offline CPU runs nothing and is not pinned)."""
    out = {}
    for d in sorted(sysroot.path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq")):
        rel = "/" + str(d.relative_to(sysroot.root()))
        if sysroot.read_text(f"/sys/devices/system/cpu/{d.parent.name}/online") == "0":
            continue
        trip = _freq_triplet(rel, "scaling_cur_freq", "scaling_min_freq", "scaling_max_freq")
        if trip:
            out[d.parent.name] = trip
    return out


EMC_LIMIT_FOLDERS = (("/sys/kernel/debug/bpmp/debug/clk/emc", ("rate", "min_rate", "max_rate")),
                     ("/sys/class/devfreq/bwmgr", ("cur_freq", "min_freq", "max_freq")))


def emc_freqs() -> dict | None:
    """The EMC's {cur,min,max} in Hz where readable (Orin's debugfs needs root), else None."""
    for folder, names in EMC_LIMIT_FOLDERS:
        if sysroot.path(folder).is_dir():
            trip = _freq_triplet(folder, *names)
            if trip:
                return trip
    return None


def emc_rate() -> tuple[int | None, str]:
    whys = []
    for p in EMC_RATE_FILES:
        v, why = read_int_file(sysroot.path(p))
        if v is not None:
            return v, ""
        whys.append(why)
    return None, "EMC rate unreadable (debugfs needs root): " + "; ".join(whys)


def jetson_clocks_state(gpu: dict | None, cpus: dict[str, dict],
                        emc: dict | None = None) -> tuple[bool | None, str]:
    pinned = []
    for what, f in [("gpu", gpu)] + sorted(cpus.items()):
        if f and f.get("min") is not None and f.get("max") is not None:
            pinned.append((what, f["min"] >= f["max"]))
    if emc and emc.get("cur") is not None and emc.get("max") is not None:
        pinned.append(("emc", emc["cur"] >= emc["max"]))  # jetson_clocks runs the EMC at its max
    if not pinned:
        return None, "no GPU devfreq or CPU cpufreq min/max readable"
    loose = [w for w, p in pinned if not p]
    if loose:
        return False, "DVFS free on " + ", ".join(loose) + " (min < max, emc below max_rate)"
    return True, "pinned on " + ", ".join(w for w, _ in pinned) + " (min == max, emc at max_rate)"


def temperatures_c(problems: list[str] | None = None) -> dict[str, float]:
    problems = problems if problems is not None else []
    out: dict[str, float] = {}
    for zone in sorted(sysroot.path("/sys/class/thermal").glob("thermal_zone*")):
        try:
            kind = (zone / "type").read_text(errors="replace").strip()
        except OSError as e:
            problems.append(f"{zone.name}/type: {e.strerror or e}; skipped")
            continue
        milli_c, why = read_int_file(zone / "temp")
        if milli_c is None:
            problems.append(f"{zone.name} ({kind}): {why}; skipped")
        elif milli_c <= -256000:  # -256 C is Tegra's "sensor not present"
            problems.append(f"{zone.name} ({kind}): {milli_c / 1000} C means no sensor; skipped")
        else:
            out[kind] = milli_c / 1000.0
    return out


def meminfo_bytes() -> dict:
    text = sysroot.read_text("/proc/meminfo") or ""
    vals = {k: int(v) * 1024 for k, v in re.findall(r"^(\w+):\s+(\d+)\s*kB", text, re.M)}
    out = {}
    for key, name in (("MemTotal", "mem_total_bytes"), ("MemAvailable", "mem_available_bytes"),
                      ("NvMapMemUsed", "nvmap_used_bytes")):
        out[name] = vals.get(key)
        if out[name] is None:
            out[name + "_why"] = f"/proc/meminfo has no {key}"
    return out


def jtop_snapshot() -> tuple[dict | None, str]:
    """nvpmodel and jetson_clocks from the jtop service, or None and why it is not used."""
    if not sysroot.path(JTOP_SOCKET).exists():
        return None, f"jtop service socket {JTOP_SOCKET} absent"
    try:
        from jtop import jtop  # optional: jetson-stats
    except ImportError as e:
        return None, f"jtop not importable: {e}"
    try:
        with jtop() as j:
            if not j.ok():
                return None, "jtop service answered not ok"
            return {"nvpmodel": str(j.nvpmodel.name), "nvpmodel_id": int(j.nvpmodel.id),
                    "jetson_clocks": bool(j.jetson_clocks.status == "running")}, ""
    except Exception as e:  # jtop raises its own JtopException and socket errors
        return None, f"jtop failed: {type(e).__name__}: {e}"


def board_facts(problems: list[str] | None = None, use_jtop: bool = True) -> dict:
    """Everything above in one flat dict; unavailable values are None beside a `<key>_why`."""
    problems = problems if problems is not None else []
    model = sysroot.read_text("/proc/device-tree/model")
    facts: dict = {"is_jetson": is_jetson(), "board": model.strip("\x00").strip() if model else None}
    if model is None:
        facts["board_why"] = "/proc/device-tree/model absent"
    rel = sysroot.read_text("/etc/nv_tegra_release")
    facts["l4t"] = parse_l4t_release(rel) if rel else None
    if facts["l4t"] is None:
        facts["l4t_why"] = "/etc/nv_tegra_release absent" if rel is None else "unrecognised format"
    facts |= nvpmodel_facts()
    gpu_name, gpu = gpu_devfreq()
    cpus = cpu_freqs_khz()
    facts["gpu_devfreq"] = gpu_name
    facts["gpu_freq_mhz"] = gpu["cur"] / 1e6 if gpu and gpu["cur"] is not None else None
    if facts["gpu_freq_mhz"] is None:
        facts["gpu_freq_mhz_why"] = "no readable GPU devfreq cur_freq"
    emc_hz, emc_why = emc_rate()
    facts["emc_freq_mhz"] = emc_hz / 1e6 if emc_hz is not None else None
    if emc_hz is None:
        facts["emc_freq_mhz_why"] = emc_why
    emc = emc_freqs()
    state, why = jetson_clocks_state(gpu, cpus, emc)
    facts["jetson_clocks"], facts["jetson_clocks_rule"] = state, why
    facts["jetson_clocks_detail"] = {"gpu_hz": gpu, "cpu_khz": cpus, "emc_hz": emc}
    if use_jtop:
        snap, why = jtop_snapshot()
        if snap:
            facts |= snap | {"nvpmodel_source": "jtop", "jetson_clocks_rule": "jtop service"}
        facts["jtop_why"] = why or None
    facts["temps_c"] = temperatures_c(problems)
    facts |= meminfo_bytes()
    rails = discover_rails(problems)
    facts["rails"] = rails_present_mw(rails)
    total, why = board_total(rails)
    facts["total_rail"] = total.name if total else None
    if total is None:
        facts["total_rail_why"] = why
    return facts
