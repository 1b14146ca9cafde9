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


def timed_cell(rec: dict[str, Any] | None, key: str, digits: int) -> str:
    """"median (p10-p90) FLAGS" of a line's Stats, or its status when not ok, or "-"."""
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


def floor_cell(rec: dict[str, Any] | None, header: dict | None, rate_key: str, x_key: str,
               why: list[str]) -> str:
    """"rate (N.Nx)": a line's achieved rate and its multiple of the floor, "-" where none (the
    reason appended to `why`)."""
    if rec is None or rec.get("status") != "ok":
        return "-"
    from edgebench.analysis import floors
    fl = floors.case_floors(rec, header)
    if fl["why"] and fl["why"] not in why:
        why.append(fl["why"])
    rate, x = fl[rate_key], fl[x_key]
    if rate is None:
        return "-"
    return f"{rate:.4g}" + (f" ({x:.3g}x)" if x is not None else "")


def print_summary(recs: list[dict[str, Any]], header: dict | None = None) -> None:
    """The table of the lines `recs` of one run whose header (for the floors) is `header`. The
    floor columns are left out where no line has a floor, and a line says why."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    groups = points(recs)
    modes = list(dict.fromkeys(m for g in groups for m in g if m is not None))
    why: list[str] = []
    floor_cells = [[floor_cell(g.get(None), header, "prefill_tflop_s", "prefill_x_floor", why)]
                   + [floor_cell(g.get(m), header, "decode_gb_s", "tpot_x_floor", why) for m in modes]
                   for g in groups]
    with_floors = any(c != "-" for cells in floor_cells for c in cells)
    t = Table(title="edgebench run", header_style="bold")
    for col in ("model", "family", "ctx", "status", "prefill ms (p10-p90)",
                *(["prefill TFLOP/s (x floor)"] if with_floors else []),
                *(c for m in modes for c in (f"{m} TPOT ms (p10-p90)",
                                             *([f"{m} GB/s (x floor)"] if with_floors else []))),
                "peak GiB", "prefill J", "throttled"):
        t.add_column(col, justify="left" if col in ("model", "family", "status") else "right")
    flagged = False
    for g, cells in zip(groups, floor_cells):
        pre = g.get(None) or next(iter(g.values()))
        peak = max((p for p in map(records.peak_bytes, g.values()) if p), default=None)
        ej = (pre.get("energy") or {}).get("prefill_j")
        thr = (pre.get("prov") or {}).get("throttled")
        flagged |= any(_flags(r) for r in g.values())
        timed = [timed_cell(g.get(None), "prefill_ms", 2)] + [timed_cell(g.get(m), "tpot_ms", 3) for m in modes]
        t.add_row(pre["model"], pre.get("family", ""), str(pre["ctx"]),
                  pre["status"] if pre["status"] == "ok" else f"[red]{pre['status']}[/]",
                  *(c for pair in zip(timed, cells) for c in (pair if with_floors else pair[:1])),
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
