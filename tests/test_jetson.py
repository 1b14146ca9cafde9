"""Jetson board facts and INA3221 rails from recorded sysfs trees (tests/fixtures/sysfs/)."""
from pathlib import Path

import pytest

from edgebench.telemetry import jetson
from edgebench.telemetry import jetson_rails
from edgebench.telemetry import power
from edgebench.telemetry import provenance

FIXTURES = Path(__file__).parent / "fixtures" / "sysfs"


@pytest.fixture
def root(monkeypatch):
    def use(name: str) -> Path:
        monkeypatch.setenv("EDGEBENCH_SYSFS_ROOT", str(FIXTURES / name))
        return FIXTURES / name
    monkeypatch.setattr(jetson, "nvpmodel_query", lambda: None)
    return use


def rails_by_name(problems=None):
    return {r.name: r for r in jetson_rails.discover_rails(problems)}


@pytest.mark.parametrize("tree, expected_mw, total", [
    ("orin", {"VDD_GPU_SOC": 5980.8, "VDD_CPU_CV": 1993.6, "VIN_SYS_5V0": 3980.8,
              "VDDQ_VDD2_1V8AO": 499.2}, None),
    ("orin_nano", {"VDD_IN": 7620.0, "VDD_CPU_GPU_CV": 2540.0, "VDD_SOC": 1524.0}, "VDD_IN"),
    ("xavier_iio", {"GPU": 3056, "CPU": 5922, "SOC": 2865, "CV": 0, "VDDRQ": 1146, "SYS5V": 1488},
     None),
    ("nano_iio", {"POM_5V_IN": 2629, "POM_5V_GPU": 201, "POM_5V_CPU": 602}, "POM_5V_IN"),
])
def test_every_rail_found_with_its_power(root, tree, expected_mw, total):
    root(tree)
    problems = []
    rails = rails_by_name(problems)
    assert problems == []
    assert set(rails) == set(expected_mw)  # NC channels and "sum of shunt voltages" left out
    for name, mw in expected_mw.items():
        assert rails[name].read_mw() == pytest.approx(mw)
    got_total, why = jetson_rails.board_total(list(rails.values()))
    assert (got_total.name if got_total else None) == total
    if total is None:
        assert "no board-input rail" in why


def test_channel_tuples_match_the_native_contract(root):
    base = root("orin_nano")
    rails = rails_by_name()
    kind, index, a, b, scale = rails["VDD_IN"].channel
    assert (kind, index, scale) == ("vi", -1, 1e-3)
    assert Path(a).read_text().strip() == "5080" and Path(b).read_text().strip() == "1500"
    assert a.startswith(str(base))
    root("nano_iio")
    assert rails_by_name()["POM_5V_IN"].channel[0::4] == ("p", 1.0)


def test_iio_without_power_file_falls_back_to_volts_times_amps(tmp_path, monkeypatch):
    dev = tmp_path / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    dev.mkdir(parents=True)
    for name, text in {"rail_name_0": "POM_5V_IN", "in_voltage0_input": "5000",
                       "in_current0_input": "400"}.items():
        (dev / name).write_text(text + "\n")
    monkeypatch.setenv("EDGEBENCH_SYSFS_ROOT", str(tmp_path))
    (rail,) = jetson_rails.discover_rails()
    assert rail.kind == "vi" and rail.read_mw() == pytest.approx(2000.0) and rail.is_total


def test_garbled_tree_skips_each_broken_sensor_with_a_reason(root):
    root("garbled")
    problems = []
    rails = rails_by_name(problems)
    assert set(rails) == {"VDD_CPU_GPU_CV", "POM_5V_GPU"}
    text = "\n".join(problems)
    assert "VDD_IN" in text and "not an integer" in text          # non-numeric in1_input
    assert "no in2_label" in text                                  # channel without label
    assert "VDD_SOC" in text and "is a directory" in text          # stands in for EACCES
    assert "empty label" in text
    assert "POM_5V_CPU" in text and "'N/A'" in text
    assert len(problems) == 5
    chans, why = power.channels_for_device("jetson")
    assert [c.name for c in chans] == ["VDD_CPU_GPU_CV", "POM_5V_GPU"] and "VDD_SOC" in why


def test_board_facts_agx_orin(root):
    root("orin")
    assert jetson.is_jetson()
    problems = []
    f = jetson.board_facts(problems, use_jtop=False)
    assert f["board"] == "NVIDIA Jetson AGX Orin Developer Kit"
    assert f["l4t"] == "36.4.3"
    assert (f["nvpmodel"], f["nvpmodel_id"], f["nvpmodel_default_id"]) == ("MAXN", 0, 3)
    assert f["nvpmodel_source"] == "/var/lib/nvpmodel/status"
    assert f["gpu_devfreq"] == "17000000.gpu" and f["gpu_freq_mhz"] == pytest.approx(306.0)
    assert f["emc_freq_mhz"] == pytest.approx(3199.0)
    assert f["jetson_clocks"] is False and "gpu" in f["jetson_clocks_rule"]
    assert f["temps_c"] == {"cpu-thermal": 45.5, "gpu-thermal": 44.25}
    assert any("cv0-thermal" in p for p in problems)
    assert f["mem_available_bytes"] == 60000000 * 1024 and f["nvmap_used_bytes"] == 123456 * 1024
    assert {r["name"]: r["power_mw"] for r in f["rails"]}["VDD_GPU_SOC"] == pytest.approx(5980.8)
    assert f["total_rail"] is None and "no board-input rail" in f["total_rail_why"]


def test_board_facts_orin_nano_clocks_pinned_and_emc_needs_root(root):
    root("orin_nano")
    f = jetson.board_facts(use_jtop=False)
    assert f["l4t"] == "36.4.0" and f["nvpmodel"] == "MAXN_SUPER"
    assert f["jetson_clocks"] is True and f["total_rail"] == "VDD_IN"
    assert f["emc_freq_mhz"] is None and "root" in f["emc_freq_mhz_why"]


def test_board_facts_older_boards(root):
    root("xavier_iio")
    f = jetson.board_facts(use_jtop=False)
    assert (f["board"], f["l4t"], f["gpu_devfreq"]) == ("Jetson-AGX", "32.7.1", "17000000.gv11b")
    assert f["nvpmodel_id"] == 7 and f["nvpmodel"] is None        # no nvpmodel.conf to name it
    root("nano_iio")
    f = jetson.board_facts(use_jtop=False)
    assert (f["l4t"], f["nvpmodel"], f["gpu_devfreq"]) == ("32.7.4", "5W", "57000000.gpu")
    assert f["nvmap_used_bytes"] is None and "NvMapMemUsed" in f["nvmap_used_bytes_why"]


def test_garbled_board_facts_are_none_with_reasons(root):
    root("garbled")
    problems = []
    f = jetson.board_facts(problems, use_jtop=False)
    assert f["l4t"] is None and f["l4t_why"] == "unrecognised format"
    assert f["board"] is None and f["board_why"]
    assert f["gpu_freq_mhz"] is None and f["gpu_freq_mhz_why"]
    assert f["temps_c"] == {"gpu-thermal": 47.0} and any("not an integer" in p for p in problems)


def test_nvpmodel_query_output_wins_over_status_file(root, monkeypatch):
    root("orin")
    monkeypatch.setattr(jetson, "nvpmodel_query", lambda: "NV Power Mode: MODE_30W\n2\n")
    f = jetson.nvpmodel_facts()
    assert (f["nvpmodel"], f["nvpmodel_id"], f["nvpmodel_source"]) == ("MODE_30W", 2, "nvpmodel -q")


def test_jtop_is_skipped_without_its_socket(root):
    root("orin")
    snap, why = jetson.jtop_snapshot()
    assert snap is None and "/run/jtop.sock" in why


def test_not_a_jetson(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_SYSFS_ROOT", str(tmp_path))
    assert not jetson.is_jetson()
    assert jetson_rails.discover_rails() == []
    assert jetson_rails.board_total([]) == (None, "no INA3221 rails found")


def test_provenance_flags_a_capped_gpu_and_a_mode_change(root, monkeypatch):
    root("orin")
    before = provenance.snapshot(0)
    assert before["kind"] == "jetson" and before["l4t"] == "36.4.3"
    after = dict(before, nvpmodel="MODE_15W",
                 jetson_clocks_detail={"gpu_hz": {"cur": 1, "min": 1, "max": 918000000}})
    c = provenance.compare(before, after)
    assert c["throttled"] is True
    assert any("nvpmodel changed" in r for r in c["reasons"])
    assert any("GPU max_freq capped" in r for r in c["reasons"])
    assert provenance.compare(before, before)["throttled"] is False
