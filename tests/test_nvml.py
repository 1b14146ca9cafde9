"""The NVML facade with pynvml mocked: a desktop GPU, a Jetson (NOT_SUPPORTED), no library at all."""
import sys
import types

import pytest

from edgebench import probe
from edgebench.telemetry import nvml
from edgebench.telemetry import power
from edgebench.telemetry import provenance


class FakeNVMLError(Exception):
    pass


def fake_pynvml(devices, init_error=None, unsupported=()):
    """A pynvml stand-in. `devices`: list of dicts (bus, power_mw, ...); `unsupported`: names of
    functions that answer "Not Supported" (what NVML does on a Jetson)."""
    m = types.ModuleType("pynvml")
    m.NVMLError = FakeNVMLError
    m.NVML_CLOCK_SM, m.NVML_CLOCK_MEM, m.NVML_TEMPERATURE_GPU = 1, 2, 0

    def init():
        if init_error:
            raise FakeNVMLError(init_error)
    m.nvmlInit = init
    m.nvmlDeviceGetCount = lambda: len(devices)
    m.nvmlDeviceGetHandleByIndex = lambda i: devices[i]

    def fn(name, getter):
        def call(h, *args):
            if name in unsupported:
                raise FakeNVMLError("Not Supported")
            return getter(h, *args)
        setattr(m, name, call)
    fn("nvmlDeviceGetName", lambda h: h["name"].encode())
    fn("nvmlDeviceGetPciInfo", lambda h: types.SimpleNamespace(busId=h["bus"].encode()))
    fn("nvmlDeviceGetPowerUsage", lambda h: h["power_mw"])
    fn("nvmlDeviceGetTotalEnergyConsumption", lambda h: h["energy_mj"])
    fn("nvmlDeviceGetMemoryInfo", lambda h: types.SimpleNamespace(total=h["total"], used=h["used"]))
    fn("nvmlDeviceGetClockInfo", lambda h, clk: {1: h["sm"], 2: h["mem"]}[clk])
    fn("nvmlDeviceGetTemperature", lambda h, sensor: h["temp"])
    fn("nvmlDeviceGetCurrentClocksEventReasons", lambda h: h["reasons"])
    return m


def device(bus, **kw):
    return dict(name="NVIDIA H100 80GB HBM3", bus=bus, power_mw=71_000, energy_mj=5_000_000,
                total=80 << 30, used=1 << 30, sm=1980, mem=2619, temp=34, reasons=0x1) | kw


@pytest.fixture
def use(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEBENCH_SYSFS_ROOT", str(tmp_path))  # not a Jetson, whatever the host
    def install(module):
        monkeypatch.setattr(probe, "_native", None)  # no native probe
        monkeypatch.setitem(sys.modules, "pynvml", module)
        nvml._backend.cache_clear()
        nvml._NO_INSTANT.clear()
    yield install
    nvml._backend.cache_clear()


def test_desktop_query_has_every_field(use):
    use(fake_pynvml([device("00000000:3B:00.0")]))
    assert nvml.status() == (True, "pynvml")
    q = nvml.query(0)
    assert set(nvml.QUERY_KEYS) <= set(q) and not any(k.endswith("_why") for k in q)
    assert (q["name"], q["pci_bus_id"], q["power_mw"], q["sm_clock_mhz"]) == \
        ("NVIDIA H100 80GB HBM3", "00000000:3B:00.0", 71_000, 1980)
    assert nvml.energy_mj(0) == 5_000_000 and nvml.power_mw(0) == 71_000
    chans, why = power.channels_for_device("nvml", 0)
    assert why == "" and chans[0].tuple == ("nvml", 0, "", "", 1.0)


def test_jetson_nvml_answers_not_supported_and_says_so(use):
    unsupported = ("nvmlDeviceGetPowerUsage", "nvmlDeviceGetTotalEnergyConsumption",
                   "nvmlDeviceGetMemoryInfo", "nvmlDeviceGetPciInfo")
    use(fake_pynvml([device("", name="Orin (nvgpu)")], unsupported=unsupported))
    assert nvml.status()[0] is True
    q = nvml.query(0)
    for key in ("power_mw", "energy_mj", "mem_total_bytes", "mem_used_bytes", "pci_bus_id"):
        assert q[key] is None and q[f"{key}_why"] == "NVML: Not Supported"
    assert q["name"] == "Orin (nvgpu)" and q["gpu_temp_c"] == 34
    assert nvml.power_mw(0) is None and nvml.energy_mj(0) is None
    chans, why = power.channels_for_device("nvml", 0)
    assert chans == [] and "Not Supported" in why


@pytest.mark.parametrize("module, fragment", [
    (None, "pynvml not installed"),
    (fake_pynvml([], init_error="NVML Shared Library Not Found"), "NVML Shared Library Not Found"),
])
def test_unavailable_nvml_gives_none_with_the_reason(use, module, fragment):
    use(module)
    ok, why = nvml.status()
    assert ok is False and fragment in why and "native probe absent" in why
    q = nvml.query(0)
    assert q["power_mw"] is None and fragment in q["power_mw_why"]
    assert nvml.device_count() == 0 and nvml.energy_mj(0) is None
    snap = provenance.snapshot(0)
    assert snap["kind"] == "nvml" and snap["sm_clock_mhz"] is None and fragment in snap["nvml_why"]


def test_native_probe_is_preferred_when_it_initialises(use, monkeypatch):
    use(fake_pynvml([device("0000:01:00.0")]))
    native = types.SimpleNamespace(nvml_init=lambda: "", nvml_device_count=lambda: 1,
                                   nvml_query=lambda i: {"power_mw": 5, "energy_mj": 9},
                                   nvml_energy_mj=lambda i: 9, nvml_power_mw=lambda i: 5)
    monkeypatch.setattr(probe, "_native", native)
    nvml._backend.cache_clear()
    assert nvml.status() == (True, "native")
    assert nvml.power_mw(0) == 5 and nvml.energy_mj(0) == 9


def test_torch_index_is_mapped_by_pci_bus_id(use, monkeypatch):
    use(fake_pynvml([device("00000000:1A:00.0"), device("00000000:3B:00.0")]))
    props = types.SimpleNamespace(pci_domain_id=0, pci_bus_id=0x3B, pci_device_id=0)
    fake_torch = types.SimpleNamespace(cuda=types.SimpleNamespace(get_device_properties=lambda i: props))
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    assert nvml.index_for_torch_device(0) == (1, "")
    props.pci_bus_id = 0x99
    idx, note = nvml.index_for_torch_device(0)
    assert idx == 0 and "no NVML device matched" in note


def test_throttle_reasons_decode_and_idle_is_not_throttling():
    assert nvml.decode_throttle_reasons(0x1 | 0x20 | 0x400) == ["GpuIdle", "SwThermalSlowdown", "0x400"]
    assert nvml.decode_throttle_reasons(None) == []
    assert not nvml.is_throttling(0x1 | 0x2)
    assert nvml.is_throttling(0x4) and nvml.is_throttling(0x80)
    assert nvml.parse_pci_bus_id("0000:3b:00.0") == (0, 0x3B, 0)
    before = {"throttle_reasons": 0x1, "sm_clock_mhz": 1980}
    after = {"throttle_reasons": 0x1 | 0x20, "sm_clock_mhz": 1755}
    c = provenance.compare(before, after)
    assert c["throttled"] and c["reasons"] == ["after: SwThermalSlowdown"]
    assert c["sm_clock_mhz_delta"] == -225
    assert provenance.compare(before, before)["throttled"] is False


def test_instant_power_is_preferred_and_the_average_is_the_fallback(use):
    """NVML's 1 s average outruns sub-second phases: the instant field is read where it answers."""
    m = fake_pynvml([device("00000000:00:06.0", power_mw=71_000, instant_mw=250_000), device("00000000:00:07.0")])

    def field_values(h, ids):
        assert ids == [186]  # NVML_FI_DEV_POWER_INSTANT
        ok = "instant_mw" in h
        return [types.SimpleNamespace(nvmlReturn=0 if ok else 3, valueType=1,
                                      value=types.SimpleNamespace(uiVal=h.get("instant_mw", 0), ullVal=0))]
    m.nvmlDeviceGetFieldValues = field_values
    use(m)
    assert nvml.power_mw(0) == 250_000 and nvml.power_source(0) == "instant"
    assert nvml.power_mw(1) == 71_000 and nvml.power_source(1) == "average"  # field not supported
    assert 1 in nvml._NO_INSTANT  # device 1 is not asked for the field again
    del m.nvmlDeviceGetFieldValues  # an old pynvml without the call
    use(m)
    assert nvml.power_mw(0) == 71_000 and nvml.power_source(0) == "average"
