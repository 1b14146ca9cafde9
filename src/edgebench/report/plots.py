"""PNG plots of loaded logs (matplotlib, Agg backend, imported only when a plot is drawn).

`draw_all(logs, out_dir) -> list[Plot]` draws, one figure per device and only where data exists:
prefill vs context and TPOT vs context (log-log, one line per model), peak memory vs context with
out-of-memory cases marked, energy per token vs context (decode J/token, prefill J per prompt
token), and operator shares as stacked bars (prefill and decode, per model and context).
Text from the logs (devices, models, categories) is drawn as plain text: control characters
escaped (`logvalues.printable`), no math parsing of `$`, cut to `LABEL_CHARS`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgebench.errors import MissingDependency
from edgebench.logs.loader import Logs
from edgebench.logs.values import printable, shorten
from edgebench.report.tables import OPS_ORDER, METRICS, series_labels, latest_cases, setting_of

_MARKERS = "osD^v<>ph*"
LABEL_CHARS = 80


@dataclass(frozen=True)
class Plot:
    kind: str  # prefill | tpot | memory | energy | ops
    device: str
    path: Path
    title: str


def pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingDependency("matplotlib (for edgebench report plots)",
                                "pip install 'edgebench[report]'", str(exc)) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:LABEL_CHARS] or "device"


def plot_text(text: str) -> str:
    """Log text as a plot shows it: escaped, and cut short when long."""
    return shorten(printable(text), LABEL_CHARS)


def _series(rows: list[dict[str, Any]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """device -> series label -> rows sorted by ctx; the setting joins the label where a device
    ran several settings."""
    labels = series_labels(rows)
    settings_per_device: dict[str, set] = {}
    for r in rows:
        settings_per_device.setdefault(r["device"], set()).add(setting_of(r))
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in rows:
        label = labels[id(r)]
        if len(settings_per_device[r["device"]]) > 1:
            label = f"{label} ({setting_of(r)})"
        out.setdefault(plot_text(r["device"]), {}).setdefault(plot_text(label), []).append(r)
    for per in out.values():
        for rs in per.values():
            rs.sort(key=lambda r: r["ctx"])
    return out


def draw_all(logs: Logs, out_dir: str | Path) -> list[Plot]:
    plt = pyplot()
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with plt.rc_context({"text.parse_math": False}):  # a `$` in a model name is just a `$`
        return _draw_all(plt, logs, out_dir)


def _draw_all(plt, logs: Logs, out_dir: str | Path) -> list[Plot]:
    out = Namer(Path(out_dir))
    rows, _ = latest_cases(logs)
    plots: list[Plot] = []
    for device, series in sorted(_series(rows).items()):
        for kind, metric, ylabel in (("prefill", "prefill_ms", "prefill time (ms)"),
                                     ("tpot", "tpot_ms", "time per output token (ms)")):
            p = _line_plot(plt, out, device, series, kind, metric, ylabel)
            if p:
                plots.append(p)
        for p in (_memory_plot(plt, out, device, series), _energy_plot(plt, out, device, series)):
            if p:
                plots.append(p)
    plots += _ops_plots(plt, out, logs)
    return plots


def _points(rs: list[dict[str, Any]], metric: str) -> tuple[list[int], list[float]]:
    get = METRICS[metric][0]
    pts = [(r["ctx"], get(r)) for r in rs if r["status"] == "ok" and r["ctx"]]
    pts = [(c, v) for c, v in pts if v is not None and v > 0]
    return [c for c, _ in pts], [v for _, v in pts]


_LINESTYLES = ("-", "--", ":", "-.")


def _styles(labels) -> dict[str, dict[str, Any]]:
    """One colour and marker per model (the label before " (setting)"), one line style per setting,
    so a plot of many models x settings stays readable (matplotlib's cycle repeats after 10)."""
    import matplotlib
    cmap = matplotlib.colormaps["tab20"] if len(labels) > 10 else matplotlib.colormaps["tab10"]
    models = list(dict.fromkeys(label.split(" (")[0] for label in labels))
    settings = list(dict.fromkeys(label.partition(" (")[2] for label in labels))
    out = {}
    for label in labels:
        m, setting = models.index(label.split(" (")[0]), settings.index(label.partition(" (")[2])
        out[label] = {"color": cmap(m % cmap.N), "marker": _MARKERS[m % len(_MARKERS)],
                      "linestyle": _LINESTYLES[setting % len(_LINESTYLES)]}
    return out


def ctx_ticks(ax) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(
        lambda x, _: f"{x / 1024:g}K" if x >= 1024 else f"{x:g}"))
    if ax.get_yscale() == "log":  # plain numbers, not 4x10^1, also on the minor ticks
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.tick_params(axis="y", which="minor", labelsize=7)


class Namer:
    """One PNG per kind and device; devices whose names slug alike get -2, -3 appended."""

    def __init__(self, out: Path):
        self.out, self.taken = out, {}

    def path(self, kind: str, device: str) -> Path:
        path, n = self.out / f"{kind}_{slug(device)}.png", 2
        while self.taken.get(path, device) != device:
            path, n = self.out / f"{kind}_{slug(device)}-{n}.png", n + 1
        self.taken[path] = device
        return path


def _finish(plt, fig, ax, out: Namer, kind: str, device: str, title: str) -> Plot:
    ctx_ticks(ax)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("context (prompt tokens)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the data, not over it
    fig.tight_layout()
    path = out.path(kind, device)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Plot(kind, device, path, title)


def _line_plot(plt, out, device, series, kind, metric, ylabel) -> Plot | None:
    drawn = {label: _points(rs, metric) for label, rs in sorted(series.items())}
    drawn = {k: v for k, v in drawn.items() if v[0]}
    if not drawn:
        return None
    fig, ax = plt.subplots(figsize=(10, 4.8))
    styles = _styles(list(drawn))
    hollow = False
    for label, (xs, ys) in drawn.items():
        ax.plot(xs, ys, label=label, **styles[label])
        lo, hi, host = _spread(series[label], metric)
        if lo:  # p10-p90 of each point (of the run medians with --runs) as a band
            ax.fill_between(lo[0], lo[1], hi[1], color=styles[label]["color"], alpha=0.15, linewidth=0)
        if host:  # host-bound points: hollow markers over the line
            hollow = True
            ax.plot(*host, linestyle="none", marker=styles[label]["marker"], markersize=10,
                    markerfacecolor="white", markeredgecolor=styles[label]["color"])
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    note = "; band: p10-p90" + ("; hollow: host-bound (follows the CPU)" if hollow else "")
    return _finish(plt, fig, ax, out, kind, device, f"{ylabel} vs context - {device}{note}")


def _spread(rs: list[dict[str, Any]], metric: str):
    """((ctxs, p10s), (ctxs, p90s), (ctxs, medians) of host-bound points) of a timed metric's ok
    rows; empty for a metric without Stats."""
    if metric not in ("prefill_ms", "tpot_ms"):
        return (), (), ()
    rows = [r for r in rs if r["status"] == "ok" and r["ctx"] and isinstance(r.get(metric), dict)]
    band = [(r["ctx"], r[metric].get("p10"), r[metric].get("p90")) for r in rows]
    band = [b for b in band if isinstance(b[1], (int, float)) and isinstance(b[2], (int, float))
            and b[1] > 0 and b[2] > 0]
    host = [(r["ctx"], r[metric]["median"]) for r in rows if r.get("host_bound")
            and isinstance(r[metric].get("median"), (int, float))]
    lo = ([c for c, _, _ in band], [v for _, v, _ in band]) if len(band) > 1 else ()
    hi = ([c for c, _, _ in band], [v for _, _, v in band]) if len(band) > 1 else ()
    return lo, hi, ([c for c, _ in host], [v for _, v in host]) if host else ()


def _memory_plot(plt, out, device, series) -> Plot | None:
    drawn = {label: _points(rs, "peak_mem_gib") for label, rs in sorted(series.items())}
    ooms = {label: [r["ctx"] for r in rs if r["status"] == "oom" and r["ctx"]]
            for label, rs in sorted(series.items())}
    if not any(xs for xs, _ in drawn.values()) and not any(ooms.values()):
        return None
    fig, ax = plt.subplots(figsize=(10, 4.8))
    top = max((max(ys) for _, ys in drawn.values() if ys), default=1.0)
    styles = _styles(list(drawn))
    for label in drawn:
        xs, ys = drawn[label]
        line = ax.plot(xs, ys, label=label, **styles[label])[0] if xs else None
        if ooms[label]:
            color = line.get_color() if line else None
            # OOM cases have no memory reading: drawn as X at the top of the axis.
            ax.scatter(ooms[label], [top * 1.08] * len(ooms[label]), marker="X", s=90,
                       color=color or "red", edgecolors="black", zorder=5,
                       label=f"{label}: out of memory")
    ax.set_xscale("log", base=2)
    ax.set_ylabel("peak allocated memory (GiB)")
    ax.set_ylim(bottom=0, top=top * 1.18)
    return _finish(plt, fig, ax, out, "memory", device, f"peak memory vs context - {device}")


def _energy_plot(plt, out, device, series) -> Plot | None:
    decode = {label: _points(rs, "decode_j_per_token") for label, rs in sorted(series.items())}
    prefill = {}
    for label, rs in sorted(series.items()):
        pts = [(r["ctx"], r["prefill_j"] / r["ctx"]) for r in rs
               if r["status"] == "ok" and r["ctx"] and r["prefill_j"]]
        prefill[label] = ([c for c, _ in pts], [v for _, v in pts])
    if not any(xs for xs, _ in decode.values()) and not any(xs for xs, _ in prefill.values()):
        return None
    fig, ax = plt.subplots(figsize=(10, 4.8))
    styles = _styles(list(decode))
    for label in decode:
        st = styles[label]
        if decode[label][0]:
            ax.plot(*decode[label], marker=st["marker"], color=st["color"], linestyle="-",
                    label=f"{label}: decode J/token")
        if prefill[label][0]:
            ax.plot(*prefill[label], marker=st["marker"], color=st["color"], linestyle="--",
                    label=f"{label}: prefill J/prompt token")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_ylabel("energy per token (J)")
    return _finish(plt, fig, ax, out, "energy", device, f"energy per token vs context - {device}")


def _ops_plots(plt, out: Namer, logs: Logs) -> list[Plot]:
    plots = []
    by_device: dict[str, list[dict[str, Any]]] = {}
    for rec in logs.ops:
        by_device.setdefault(plot_text(rec["device"]), []).append(rec)
    for device, recs in sorted(by_device.items()):
        recs.sort(key=lambda r: (r["phase"] != "prefill", r["model"], r["ctx"] or 0, str(r.get("decode_mode"))))
        cats = {c for r in recs for c in r["shares"]}
        cats = [c for c in OPS_ORDER if c in cats] + sorted(cats - set(OPS_ORDER))
        # matplotlib refuses images past 2^16 pixels a side: many bars are drawn narrower
        fig, ax = plt.subplots(figsize=(min(max(6.0, 0.9 * len(recs) + 2.5), 500.0), 4.8))
        names = [f"{plot_text(r['model'])}\n{r['phase']}" + (f" {r['ctx']}" if r["ctx"] else "")
                 + (f"\n{plot_text(r['decode_mode'])}" if r.get("decode_mode") else "") for r in recs]
        bottom = [0.0] * len(recs)
        cmap = plt.get_cmap("tab10")
        for i, c in enumerate(cats):
            vals = [100.0 * float(r["shares"].get(c) or 0.0) for r in recs]
            ax.bar(range(len(recs)), vals, bottom=bottom, label=plot_text(c), color=cmap(i % 10))
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_xticks(range(len(recs)), names, fontsize=7)
        ax.set_ylabel("share of GPU kernel time (%)")
        ax.set_ylim(0, max(100.0, max(bottom) * 1.02))
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.set_title(f"operator shares - {device}", fontsize=10)
        fig.tight_layout()
        path = out.path("ops", device)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        plots.append(Plot("ops", device, path, f"operator shares - {device}"))
    return plots
