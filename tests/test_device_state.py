"""Device state checked before a run: Jetson power mode and jetson_clocks, a desktop GPU's other
processes / persistence / clock locks through NVML, CPU governors and steal; a bare host gives nulls."""
import json
import os
import shutil
import sys
import types
from pathlib import Path

import pytest

from edgebench import probe
from edgebench.telemetry import device_state
from edgebench.telemetry import jetson
from edgebench.telemetry import nvml

FIXTURES = Path(__file__).parent / "fixtures" / "sysfs"
# `sudo nvpmodel -q` on JetPack 6 (the fan line comes first; jetson-stats' tests/nvpmodel emulates it)
NVPMODEL_Q = "NV Fan Mode:quiet\nNV Power Mode: MODE_30W\n2\n"
CPU = "sys/devices/system/cpu"


@pytest.fixture
def orin(tmp_path, monkeypatch):
    """A copy of the AGX Orin tree in MODE_30W (jetson_clocks off), `nvpmodel -q` answering."""
    root = tmp_path / "orin"
    shutil.copytree(FIXTURES / "orin_30w", root, symlinks=True)
    monkeypatch.setenv("EDGEBENCH_SYSFS_ROOT", str(root))
    monkeypatch.setattr(jetson, "nvpmodel_query", lambda: NVPMODEL_Q)
    return root


def write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text + "\n")


def run_jetson_clocks(root: Path, emc: bool = True) -> None:
    """What `jetson_clocks` writes: each online cluster's and the GPU's minimum raised to its
    maximum (within the nvpmodel caps), and the EMC locked at its max_rate."""
    for pol in ("policy0", "policy4"):  # policy8's CPUs are offline: left alone
        d = root / CPU / "cpufreq" / pol
        (d / "scaling_min_freq").write_text((d / "scaling_max_freq").read_text())
    gpu = root / "sys/class/devfreq/17000000.gpu"
    (gpu / "min_freq").write_text((gpu / "max_freq").read_text())
    if emc:
        e = root / "sys/kernel/debug/bpmp/debug/clk/emc"
        (e / "rate").write_text((e / "max_rate").read_text())


def test_orin_with_jetson_clocks_off_warns_naming_the_fix(orin):
    state, warnings = device_state.check("cuda:0", {})
    j = state["jetson"]
    assert (j["nvpmodel"], j["nvpmodel_id"], j["nvpmodel_source"]) == ("MODE_30W", 2, "nvpmodel -q")
    assert j["nvpmodel_default_id"] == 3
    assert j["jetson_clocks"] is False
    assert "gpu" in j["jetson_clocks_rule"] and "emc" in j["jetson_clocks_rule"]
    assert "cpu7" in j["jetson_clocks_rule"] and "cpu8" not in j["jetson_clocks_rule"]  # offline: skipped
    assert j["clocks"]["gpu_hz"] == {"cur": 306000000, "min": 306000000, "max": 612000000}
    assert j["clocks"]["emc_hz"] == {"cur": 2133000000, "min": 204000000, "max": 3199000000}
    assert sorted(j["clocks"]["cpu_khz"]) == [f"cpu{i}" for i in range(8)]
    jc = [w for w in warnings if w.startswith("jetson_clocks is off")]
    assert len(jc) == 1 and "sudo jetson_clocks" in jc[0] and "NVIDIA's benchmarking guidance" in jc[0]
    assert "MODE_30W" in jc[0]
    # the governor: schedutil on the two online clusters; policy8 (all offline) recorded, not warned
    cpufreq = state["host"]["cpufreq"]
    assert cpufreq["policy0"]["governor"] == "schedutil" and cpufreq["policy0"]["cpus"] == [0, 1, 2, 3]
    assert cpufreq["policy8"] == {"governor": None, "cpus": [8, 9, 10, 11], "governor_why": "its CPUs are offline"}
    assert cpufreq["policy4"] == {"governor": "schedutil", "cpus": [4, 5, 6, 7], "min_khz": 115200,
                                  "max_khz": 1728000}
    # not a VM: no hypervisor flag on arm64, no steal; the GPU is the Jetson's
    assert state["host"]["steal_share_since_boot"] == 0.0
    assert state["host"]["hypervisor"] is None and "x86" in state["host"]["hypervisor_why"]
    assert state["gpu"] is None and "Jetson" in state["gpu_why"]
    assert len(warnings) == 1  # the governor too is jetson_clocks' to pin: one warning, one fix
    json.dumps(state)  # the run header takes it as is


def test_orin_with_jetson_clocks_on_is_quiet(orin):
    run_jetson_clocks(orin)
    state, warnings = device_state.check("cuda:0", {})
    assert state["jetson"]["jetson_clocks"] is True
    assert "emc" in state["jetson"]["jetson_clocks_rule"]
    assert warnings == []  # pinned policies: the governor does not matter


def test_orin_emc_left_free_is_not_jetson_clocks(orin):
    run_jetson_clocks(orin, emc=False)  # CPUs and GPU pinned, the memory clock still scaling
    state, warnings = device_state.check("cpu", {})
    assert state["jetson"]["jetson_clocks"] is False
    assert state["jetson"]["jetson_clocks_rule"].startswith("DVFS free on emc (")
    assert any(w.startswith("jetson_clocks is off") for w in warnings)


def test_orin_status_file_when_nvpmodel_cannot_run(orin, monkeypatch):
    monkeypatch.setattr(jetson, "nvpmodel_query", lambda: None)
    j = device_state.check("cuda:0", {})[0]["jetson"]
    assert (j["nvpmodel"], j["nvpmodel_id"], j["nvpmodel_source"]) == ("MODE_30W", 2, "/var/lib/nvpmodel/status")


# A desktop GPU through a fake pynvml (the native probe off), in a cloud VM without cpufreq.

class FakeNVMLError(Exception):
    pass


def fake_pynvml(devices):
    m = types.ModuleType("pynvml")
    m.NVMLError = FakeNVMLError
    m.NVML_CLOCK_GRAPHICS, m.NVML_CLOCK_SM, m.NVML_CLOCK_MEM, m.NVML_TEMPERATURE_GPU = 0, 1, 2, 0
    m.NVML_FEATURE_ENABLED = 1
    m.nvmlInit = lambda: None
    m.nvmlDeviceGetCount = lambda: len(devices)
    m.nvmlDeviceGetHandleByIndex = lambda i: devices[i]

    def fn(name, getter):
        def call(h, *args):
            value = getter(h, *args)
            if value is None:
                raise FakeNVMLError("Not Supported")
            return value
        setattr(m, name, call)
    fn("nvmlDeviceGetName", lambda h: b"NVIDIA H200")
    fn("nvmlDeviceGetPciInfo", lambda h: types.SimpleNamespace(busId=h["bus"].encode()))
    fn("nvmlDeviceGetPowerUsage", lambda h: 118_000)
    fn("nvmlDeviceGetTotalEnergyConsumption", lambda h: 9_000_000)
    fn("nvmlDeviceGetMemoryInfo", lambda h: types.SimpleNamespace(total=141 << 30, used=12 << 30))
    fn("nvmlDeviceGetClockInfo", lambda h, clk: {1: 1980, 2: 3201}[clk])
    fn("nvmlDeviceGetTemperature", lambda h, sensor: 31)
    fn("nvmlDeviceGetCurrentClocksEventReasons", lambda h: h["reasons"])
    fn("nvmlDeviceGetPersistenceMode", lambda h: h["pm"])
    fn("nvmlDeviceGetComputeRunningProcesses",
       lambda h: [types.SimpleNamespace(pid=pid, usedGpuMemory=mem) for pid, mem in h["procs"]])
    fn("nvmlDeviceGetApplicationsClock", lambda h, clk: h["app"][clk])
    fn("nvmlDeviceGetDefaultApplicationsClock", lambda h, clk: h["default_app"][clk])
    return m


def gpu(bus, **kw):
    return dict(bus=bus, reasons=0x1, pm=0, procs=[], app={0: 1980, 2: 3201}, default_app={0: 1980, 2: 3201}) | kw


@pytest.fixture
def vm(tmp_path, monkeypatch):
    """A cloud GPU VM: hypervisor flag, steal in /proc/stat, no cpufreq; pynvml stands in for NVML."""
    write(tmp_path, "proc/cpuinfo", "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9654 "
          "96-Core Processor\nflags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov "
          "pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext lm constant_tsc rep_good nopl "
          "xtopology cpuid pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 x2apic movbe popcnt aes xsave "
          "avx f16c rdrand hypervisor lahf_lm cmp_legacy avx2 avx512f")
    write(tmp_path, "proc/stat", "cpu  2254891 1520 512077 40115342 20017 0 30561 1297445 0 0\n"
          "cpu0 141093 95 31989 2507061 1250 0 8021 81090 0 0\nintr 98122 0\nctxt 4411290\nbtime 1764400000")
    write(tmp_path, "proc/4242/comm", "vllm")
    monkeypatch.setenv("EDGEBENCH_SYSFS_ROOT", str(tmp_path))

    def install(*devices):
        monkeypatch.setattr(probe, "_native", None)
        monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(list(devices)))
        nvml._backend.cache_clear()
    yield install
    nvml._backend.cache_clear()


ENV = {"gpus": [{"index": 0, "nvml": {"pci_bus_id": "00000000:3B:00.0"}}]}  # torch's cuda:0


def test_gpu_with_another_process_and_unlocked_clocks_warns(vm):
    ours = os.getpid()
    vm(gpu("00000000:18:00.0"),  # NVML index 0 is another GPU: torch's cuda:0 is NVML's 1
       gpu("00000000:3B:00.0", procs=[(4242, 10 << 30), (ours, 1 << 20), (5151, None)]))
    state, warnings = device_state.check("cuda:0", ENV)
    g = state["gpu"]
    assert g["nvml_index"] == 1 and "nvml_index_note" not in g
    assert g["other_processes"] == [{"pid": 4242, "used_bytes": 10 << 30, "name": "vllm"},
                                    {"pid": 5151, "used_bytes": None, "name": None}]
    assert g["persistence_mode"] is False
    assert g["clocks_locked"] is False and g["clocks_event_reasons"] == ["GpuIdle"]
    assert (g["app_graphics_mhz"], g["default_app_graphics_mhz"]) == (1980, 1980)
    text = "\n".join(warnings)
    assert "2 other process(es): pid 4242 (vllm, 10.0 GiB), pid 5151 (name unknown, memory unknown)" in text
    assert f"pid {ours}" not in text
    assert "sudo nvidia-smi -pm 1" in text and "sudo nvidia-smi -lgc" in text
    # the VM: hypervisor flag, no cpufreq (not warned), steal since boot 1297445 of 44231853 ticks
    h = state["host"]
    assert h["hypervisor"] is True and h["cpufreq"] is None and "VM" in h["cpufreq_why"]
    assert h["steal_share_since_boot"] == pytest.approx(0.02933, abs=1e-5)
    assert any("2.9% of this VM's CPU time" in w for w in warnings)
    assert len(warnings) == 4
    json.dumps(state)


def test_gpu_with_application_clocks_set_and_persistence_on_is_quiet(vm):
    vm(gpu("00000000:3B:00.0", pm=1, app={0: 1755, 2: 3201}))
    state, warnings = device_state.check("cuda:0", ENV)
    g = state["gpu"]
    assert g["clocks_locked"] is True and "graphics 1755 MHz (default 1980)" in g["clocks_locked_rule"]
    assert g["persistence_mode"] is True and g["other_processes"] == []
    assert not [w for w in warnings if w.startswith("GPU")]


def test_applications_clocks_event_reason_counts_as_locked(vm):
    vm(gpu("00000000:3B:00.0", pm=1, reasons=0x2, app={0: None, 2: None}, default_app={0: None, 2: None}))
    g = device_state.check("cuda:0", ENV)[0]["gpu"]
    assert g["clocks_locked"] is True and "ApplicationsClocksSetting" in g["clocks_locked_rule"]
    assert g["app_graphics_mhz"] is None and g["app_graphics_mhz_why"] == "NVML: Not Supported"


def test_cpu_governor_not_performance_is_warned(tmp_path, monkeypatch):
    for pol, gov in (("policy0", "powersave"), ("policy1", "powersave"), ("policy2", "performance")):
        write(tmp_path, f"{CPU}/cpufreq/{pol}/scaling_governor", gov)
        write(tmp_path, f"{CPU}/cpufreq/{pol}/related_cpus", pol[-1])
        write(tmp_path, f"{CPU}/cpufreq/{pol}/scaling_min_freq", "800000")
        write(tmp_path, f"{CPU}/cpufreq/{pol}/scaling_max_freq", "5200000")
    monkeypatch.setenv("EDGEBENCH_SYSFS_ROOT", str(tmp_path))
    state, warnings = device_state.check("cpu", {})
    assert state["host"]["cpufreq"]["policy2"]["governor"] == "performance"
    assert state["gpu"] is None and state["gpu_why"] == "the run is on the CPU"
    assert len(warnings) == 1 and "'powersave' on policy0, policy1" in warnings[0]
    assert "cpupower frequency-set -g performance" in warnings[0]


def test_steal_share_between_two_readings(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_SYSFS_ROOT", str(tmp_path))
    write(tmp_path, "proc/stat", "cpu  2254891 1520 512077 40115342 20017 0 30561 1297445 3000 0\ncpu0 1 2 3")
    before = device_state.cpu_times()
    assert before == {"user": 2254891, "nice": 1520, "system": 512077, "idle": 40115342, "iowait": 20017,
                      "irq": 0, "softirq": 30561, "steal": 1297445, "guest": 3000, "guest_nice": 0}
    # one second on 16 vCPUs (1600 ticks): 1000 user (of which 200 guest), 200 system, 150 idle, 250 stolen
    write(tmp_path, "proc/stat", "cpu  2255891 1520 512277 40115492 20017 0 30561 1297695 3200 0")
    after = device_state.cpu_times()
    assert device_state.steal_share(before, after) == (pytest.approx(250 / 1600), "")
    assert device_state.steal_share(after, after) == (None, "no CPU time elapsed between the two /proc/stat readings")
    write(tmp_path, "proc/stat", "cpu  4705 150 1120 16150 94 0 25")  # a 2.6.10 kernel: no steal column
    assert device_state.steal_share(device_state.cpu_times(), device_state.cpu_times())[1] == \
        "/proc/stat has no steal column"


def test_bare_host_gives_nulls_with_reasons(tmp_path, monkeypatch):
    """macOS, or a container with nothing mounted: no /proc, no /sys, no NVML."""
    monkeypatch.setenv("EDGEBENCH_SYSFS_ROOT", str(tmp_path))
    monkeypatch.setattr(probe, "_native", None)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    nvml._backend.cache_clear()
    try:
        assert device_state.cpu_times() is None
        assert device_state.steal_share(None, None) == (None, "/proc/stat unreadable (not Linux?)")
        state, warnings = device_state.check("cuda:0", {})
    finally:
        nvml._backend.cache_clear()
    h = state["host"]
    assert h["cpufreq"] is None and h["cpufreq_why"]
    assert h["hypervisor"] is None and h["hypervisor_why"] == "/proc/cpuinfo unreadable"
    assert h["steal_share_since_boot"] is None and "unreadable" in h["steal_share_since_boot_why"]
    assert state["jetson"] is None and state["jetson_why"] == "not a Jetson"
    g = state["gpu"]
    for key in ("persistence_mode", "other_processes", "clocks_locked"):
        assert g[key] is None and "pip install 'edgebench[nvml]'" in g[f"{key}_why"]
    assert g["nvml_index"] == 0 and "assumed" in g["nvml_index_note"]
    assert len(warnings) == 1 and "NVML is unavailable" in warnings[0]
    json.dumps(state)
