"""The table `edgebench run` prints when it ends: one row per point, its prefill once and each decode
mode's time per token beside it, every median with its spread and its flags.

Floors: beside the prefill, its matmul TFLOP/s and how many times its floor it took; beside each
decode mode, the GB/s its steps read and how many times their floor (`edgebench.analysis.floors`,
from the run header's device micro-benchmarks); a line under the table says why where there is none.

Spread: p10-p90 of the samples (with `--runs N`, of the N run medians). Flags: `H` host-bound (the GPU
finished within `HOST_BOUND_LAG_SHARE` of the phase time after the timed call returned: the number
measures the host's launch speed, and moves with CPU load and clocks), `U` unstable (the p10-p90 spread
at least 20% of the median: the robust form of pyperf's stdev >= 10% of the mean). A legend under the table says so.
"""
from __future__ import annotations

import shutil
from typing import Any

from edgebench.logs import schema as records


def _flags(rec: dict[str, Any]) -> str:
    return ("H" if rec.get("host_bound") else "") + ("U" if rec.get("unstable") else "")


def timed_cell(rec: dict[str, Any] | None, key: str, digits: int, x_floor: str = "") -> str:
    """"median (p10-p90) [x floor] FLAGS" of a line's Stats, or its status when not ok, or "-"."""
    if rec is None:
        return "-"
    if rec.get("status") != "ok":
        return f"[red]{rec.get('status')}[/]"
    st = rec.get(key) or {}
    med = st.get("median")
    if med is None:
        return "-"
    cell = f"{med:.{digits}f}"
    lo, hi = st.get("p10"), st.get("p90")
    if lo is not None and hi is not None and st.get("n", 1) > 1:
        cell += f" ({lo:.{digits}f}-{hi:.{digits}f})"
    cell += f" {x_floor}" if x_floor else ""
    flags = _flags(rec)
    return f"{cell} [yellow]{flags}[/]" if flags else cell


def points(recs: list[dict[str, Any]]) -> list[dict[Any, dict[str, Any]]]:
    """The lines grouped by point, in order: {decode mode or None (the prefill): line}."""
    out: dict[tuple, dict] = {}
    for r in recs:
        k = (r["model"], r.get("backend"), r.get("dtype"), r["ctx"], r.get("gen"), r.get("batch"),
             r.get("logits"), r.get("attn"))
        out.setdefault(k, {})[r.get("decode_mode")] = r
    return list(out.values())


def x_floor(rec: dict[str, Any] | None, header: dict | None, x_key: str, why: list[str]) -> str:
    """"N.Nx": a line's time as a multiple of the device's floor for it, "" where there is none (the
    reason appended to `why`). Achieved GB/s and TFLOP/s are in `compare`."""
    if rec is None or rec.get("status") != "ok":
        return ""
    from edgebench.analysis import floors
    fl = floors.case_floors(records.expand_case(rec), header)  # a compact line: defaults back
    if fl["why"] and fl["why"] not in why:
        why.append(fl["why"])
    return f"{fl[x_key]:.3g}x" if fl[x_key] is not None else ""


def print_summary(recs: list[dict[str, Any]], header: dict | None = None) -> None:
    """The table of the lines `recs` of one run whose header (for the floors) is `header`. The
    floor columns are left out where no line has a floor, and a line says why."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    groups = points(recs)
    modes = list(dict.fromkeys(m for g in groups for m in g if m is not None))
    why: list[str] = []
    t = Table(title="edgebench run", header_style="bold")
    for col in ("model", "family", "ctx", "status", "prefill ms (p10-p90) x floor",
                *(f"{m} TPOT ms (p10-p90) x floor" for m in modes), "peak GiB", "prefill J",
                "throttled"):
        t.add_column(col, justify="left" if col in ("model", "family", "status") else "right")
    flagged = with_floors = False
    for g in groups:
        pre = g.get(None) or next(iter(g.values()))
        peak = max((p for p in map(records.peak_bytes, g.values()) if p), default=None)
        ej = (pre.get("energy") or {}).get("prefill_j")
        thr = (pre.get("prov") or {}).get("throttled")
        flagged |= any(_flags(r) for r in g.values())
        cells = []
        for mode, key, digits, x_key in ((None, "prefill_ms", 2, "prefill_x_floor"),
                                         *((m, "tpot_ms", 3, "tpot_x_floor") for m in modes)):
            x = x_floor(g.get(mode), header, x_key, why)
            with_floors |= bool(x)
            cells.append(timed_cell(g.get(mode), key, digits, x))
        t.add_row(pre["model"], pre.get("family", ""), str(pre["ctx"]),
                  pre["status"] if pre["status"] == "ok" else f"[red]{pre['status']}[/]", *cells,
                  f"{peak / 2**30:.2f}" if peak else "-", f"{ej:.3f}" if ej is not None else "-",
                  "[yellow]yes[/]" if thr else ("no" if thr is not None else "-"))
    con = Console(width=max(shutil.get_terminal_size((150, 24)).columns, 150))
    con.print(t)
    con.print(escape(("x floor: the time / the device's floor (prefill: matmul FLOPs / measured bf16 matmul "
                      "rate; decode: bytes a step reads / measured copy bandwidth; README: Floors)"
                      if with_floors else "no floors")
                     + (f"; none where: {'; '.join(why)}" if why else "")))
    if flagged:
        con.print("H: host-bound (the GPU waited on the host's launches: this number follows the "
                  "CPU, not the GPU); U: unstable (p10-p90 spread >= 20% of the median, the robust "
                  "form of pyperf's stdev >= 10% of the mean); see README, 'How numbers are flagged'")
