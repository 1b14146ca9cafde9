"""Jetson INA3221 power rails found in sysfs, ready for the power sampler.

Two driver layouts exist (names checked against jetson_stats, jtop/core/power.py):

- hwmon (L4T 34+, JetPack 5/6): `/sys/bus/i2c/drivers/ina3221/<addr>/hwmon/hwmon*/` with
  `in{N}_label` (rail name), `in{N}_input` (bus voltage, mV) and `curr{N}_input` (mA), N = 1..3.
  Channels 4..7 (shunt voltages, the summation channel, `in7` "sum of shunt voltages") are not rails,
  and rails labelled "NC" are unconnected; both are left out without complaint. Power = mV * mA * 1e-3 mW (sampler kind "vi", scale 1e-3).
- iio (L4T 32 and older: Nano, TX2, Xavier): `/sys/bus/i2c/drivers/ina3221x/<addr>/iio:device*/` with
  `rail_name_{N}`, `in_voltage{N}_input` (mV), `in_current{N}_input` (mA) and `in_power{N}_input`
  (mW), N = 0..2. The power file is used directly (kind "p", scale 1); without it, "vi".

`VDD_IN` (Orin NX/Nano, Xavier NX, TX2) and `POM_5V_IN` (Nano) measure the whole module input and are
flagged `is_total`. AGX Orin and AGX Xavier have no such rail: their rails do not add up to the board
draw, so `board_total()` says so instead of summing.

Every rail is read once at discovery; a missing label, a non-numeric value, an unreadable file or a
directory where a file should be skips that sensor and appends the reason to `problems`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgebench.telemetry import sysroot

HWMON_GLOB = ("/sys/bus/i2c/drivers/ina3221", "*/hwmon/hwmon*")
IIO_GLOB = ("/sys/bus/i2c/drivers/ina3221x", "*/iio:device*")
TOTAL_RAIL_NAMES = ("VDD_IN", "POM_5V_IN")
HWMON_RAIL_CHANNELS = (1, 2, 3)

# (kind, device_index, path_a, path_b, scale): the native sampler's channel tuple.
Channel = tuple[str, int, str, str, float]


@dataclass(frozen=True)
class Rail:
    name: str
    kind: str  # "vi": path_a (mV) * path_b (mA) * scale; "p": path_a (mW) * scale
    path_a: str
    path_b: str
    scale: float
    is_total: bool
    layout: str  # "hwmon" | "iio"

    @property
    def channel(self) -> Channel:
        return (self.kind, -1, self.path_a, self.path_b, self.scale)

    def read_mw(self) -> float | None:
        """Present power in mW, or None when a read fails (see `read_mw_why`)."""
        return self.read_mw_why()[0]

    def read_mw_why(self) -> tuple[float | None, str]:
        a, why = read_int_file(self.path_a)
        if a is None:
            return None, why
        if self.kind == "p":
            return a * self.scale, ""
        b, why = read_int_file(self.path_b)
        if b is None:
            return None, why
        return a * b * self.scale, ""


def read_int_file(p: str | Path) -> tuple[int | None, str]:
    """An integer sysfs value (first token, so "32760 ma" reads as 32760), or None and why."""
    try:
        text = Path(p).read_text(errors="replace").strip()
    except IsADirectoryError:
        return None, f"{p}: is a directory, not a sensor file"
    except PermissionError:
        return None, f"{p}: permission denied"
    except OSError as e:
        return None, f"{p}: {e.strerror or e}"
    token = text.split()[0] if text else ""
    try:
        return int(token), ""
    except ValueError:
        return None, f"{p}: not an integer: {text[:40]!r}"


def _read_label(p: Path) -> tuple[str | None, str]:
    try:
        label = p.read_text(errors="replace").strip().strip("\x00")
    except OSError as e:
        return None, f"{p}: {e.strerror or e}"
    return (label, "") if label else (None, f"{p}: empty label")


def _hwmon_rails(folder: Path, problems: list[str]) -> list[Rail]:
    # Only channels 1..3 are rails: in4-in6 are the shunt voltages, curr4/in7 the summation channel.
    rails = []
    for n in HWMON_RAIL_CHANNELS:
        label_path = folder / f"in{n}_label"
        if not label_path.exists():
            if (folder / f"curr{n}_input").exists():
                problems.append(f"{folder}: channel {n} has curr{n}_input but no in{n}_label; skipped")
            continue
        name, why = _read_label(label_path)
        if name is None:
            problems.append(why + "; skipped")
            continue
        if name == "NC" or name.startswith("NC "):
            continue
        rails.append(Rail(name, "vi", str(folder / f"in{n}_input"), str(folder / f"curr{n}_input"),
                          1e-3, name in TOTAL_RAIL_NAMES, "hwmon"))
    return rails


def _iio_rails(folder: Path, problems: list[str]) -> list[Rail]:
    rails = []
    for label_path in sorted(folder.glob("rail_name_*")):
        n = label_path.name[len("rail_name_"):]
        if not n.isdigit():
            continue
        name, why = _read_label(label_path)
        if name is None:
            problems.append(why + "; skipped")
            continue
        if name == "NC":
            continue
        power = folder / f"in_power{n}_input"
        if power.exists():
            rails.append(Rail(name, "p", str(power), "", 1.0, name in TOTAL_RAIL_NAMES, "iio"))
        else:
            rails.append(Rail(name, "vi", str(folder / f"in_voltage{n}_input"),
                              str(folder / f"in_current{n}_input"), 1e-3,
                              name in TOTAL_RAIL_NAMES, "iio"))
    return rails


def discover_rails(problems: list[str] | None = None) -> list[Rail]:
    """Every readable INA3221 rail under the system root, hwmon layout first, then iio.

    Sensors that cannot be used are skipped; why goes into `problems` when a list is given.
    """
    problems = problems if problems is not None else []
    found: list[Rail] = []
    for (base, pattern), reader in ((HWMON_GLOB, _hwmon_rails), (IIO_GLOB, _iio_rails)):
        for folder in sorted(sysroot.path(base).glob(pattern)):
            if folder.is_dir():
                found.extend(reader(folder, problems))
    usable: list[Rail] = []
    seen: set[str] = set()
    for rail in found:
        if rail.name in seen:
            problems.append(f"rail {rail.name} appears twice; kept the first ({rail.path_a} ignored)")
            continue
        mw, why = rail.read_mw_why()
        if mw is None:
            problems.append(f"rail {rail.name}: {why}; skipped")
            continue
        seen.add(rail.name)
        usable.append(rail)
    return usable


def board_total(rails: list[Rail]) -> tuple[Rail | None, str]:
    """The rail measuring the whole module input, or None and why (rails are not summed: on AGX
    boards they cover only part of the board, and a sum would be presented as a total it is not)."""
    for rail in rails:
        if rail.is_total:
            return rail, ""
    if not rails:
        return None, "no INA3221 rails found"
    names = ", ".join(r.name for r in rails)
    return None, f"no board-input rail ({'/'.join(TOTAL_RAIL_NAMES)}) on this board; rails: {names}"


def rails_present_mw(rails: list[Rail]) -> list[dict]:
    """One dict per rail for `edgebench env`: name, power_mw (or None with power_mw_why), is_total."""
    out = []
    for rail in rails:
        mw, why = rail.read_mw_why()
        entry = {"name": rail.name, "power_mw": mw, "is_total": rail.is_total, "layout": rail.layout}
        if mw is None:
            entry["power_mw_why"] = why
        out.append(entry)
    return out
