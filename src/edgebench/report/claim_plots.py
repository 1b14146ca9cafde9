"""The plots that carry the claims table (`edgebench.analysis.claims`), one set per device, each with
the study's method and edgebench's side by side and the published points overlaid (hollow markers,
from `edgebench.analysis.published`) where the study has them:
- `claims-prefill`, `claims-tpot`: prefill and TPOT vs context (log-log), the crossing of each of the
  study's pairs (`claims.PAIRS`) marked with a dotted line and its context;
- `claims-maxctx`: the longest context per model and method under each budget searched, the study's
  figure for that budget as a black tick;
- `claims-energy`: prefill energy vs context;
- `claims-share`: the SSM kernels' share of prefill GPU time vs context, the published ranges as bands.
`draw_claims(logs, out_dir) -> list[Plot]`; only plots with data are drawn.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edgebench.analysis import published
from edgebench.analysis.claim_data import METHODS, Measured
from edgebench.analysis.claims import PAIRS
from edgebench.analysis.crossover import find_crossovers
from edgebench.logs.loader import Logs
from edgebench.report.plots import Namer, Plot, ctx_ticks, plot_text, pyplot

KINDS = ("claims-prefill", "claims-tpot", "claims-maxctx", "claims-energy", "claims-share")
_MARKERS = "osD^v<>ph*"


def draw_claims(logs: Logs, out_dir: str | Path) -> list[Plot]:
    plt = pyplot()
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    data, namer, plots = Measured(logs), Namer(Path(out_dir)), []
    with plt.rc_context({"text.parse_math": False}):
        for raw in data.devices():
            device = plot_text(raw)
            lines = {"claims-prefill": ("prefill (ms)", "prefill_ms", _times(data.prefill, raw)),
                     "claims-tpot": ("time per output token (ms)", "tpot_ms", _times(data.tpot, raw)),
                     "claims-energy": ("prefill energy (J)", "prefill_j",
                                       {m.name: data.prefill_j(raw, m) for m in METHODS}),
                     "claims-share": ("SSM kernels' share of prefill GPU time", "ssm_share",
                                      {m.name: {**data.ssm_share(raw, m), **data.ssm_share(raw, m, "hybrid")}
                                       for m in METHODS})}
            for kind, (ylabel, metric, per_method) in lines.items():
                if any(per_method.values()):
                    plots.append(_lines(plt, namer, kind, device, ylabel, metric, per_method))
            plots += _maxctx(plt, namer, device, {m.name: data.maxctx(raw, m) for m in METHODS})
    return plots


def _times(getter, device: str) -> dict[str, dict[str, dict[int, float]]]:
    return {m.name: {model: {c: v for c, (v, _) in per.items()} for model, per in getter(device, m).items()}
            for m in METHODS}


def _colors(plt, models) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10" if len(models) <= 10 else "tab20")
    return {m: cmap(i % cmap.N) for i, m in enumerate(sorted(models))}


def _lines(plt, namer: Namer, kind: str, device: str, ylabel: str, metric: str,
           per_method: dict[str, dict[str, dict[int, float]]]) -> Plot:
    models = {m for per in per_method.values() for m in per} | \
        {p["model"] for p in published.points(metric) + published.ranges(metric)}
    colors = _colors(plt, models)
    fig, axes = plt.subplots(1, len(METHODS), figsize=(13, 4.8), sharex=True, sharey=True)
    for ax, method in zip(axes, METHODS):
        per = per_method.get(method.name, {})
        if not per:
            ax.text(0.5, 0.5, "not measured in this method", transform=ax.transAxes, ha="center",
                    color="gray")
        for i, model in enumerate(sorted(per)):
            xs = sorted(per[model])
            ax.plot(xs, [per[model][x] for x in xs], marker=_MARKERS[i % len(_MARKERS)], color=colors[model],
                    label=plot_text(model))
        if metric in ("prefill_ms", "tpot_ms"):
            _crossings(ax, per)
        _published(ax, metric, colors)
        ax.set_xscale("log", base=2)
        if metric != "ssm_share":
            ax.set_yscale("log")
        else:
            ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda y, _: f"{100 * y:.0f}%"))
        ctx_ticks(ax)
        ax.set_title(f"{method.name} method", fontsize=10)
        ax.set_xlabel("context (prompt tokens)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel(ylabel)
    title = f"{ylabel} vs context - {device}"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = namer.path(kind, device)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Plot(kind, device, path, title)


def _crossings(ax, per: dict[str, dict[int, float]]) -> None:
    for t, s in PAIRS:
        if t in per and s in per:
            for x in find_crossovers(per[t], per[s]):
                ax.axvline(x.ctx, color="gray", linestyle=":", linewidth=1)
                ax.annotate(f"{t} / {s}\ncross near {x.ctx / 1024:.3g}K", (x.ctx, x.value), fontsize=7,
                            textcoords="offset points", xytext=(4, 8))


def _published(ax, metric: str, colors: dict[str, Any]) -> None:
    if metric == "ssm_share":
        for r in published.ranges(metric):
            ax.axhspan(r["low"], r["high"], alpha=0.12, color=colors.get(r["model"], "gray"),
                       label=f"published {r['model']}, {r['platform']} ({r['where']})")
        return
    labelled = set()
    for p in published.points(metric):
        if "ctx" in p:
            ax.scatter([p["ctx"]], [p["value"]], s=60, facecolors="none", linewidths=1.5,
                       edgecolors=colors.get(p["model"], "black"), zorder=5,
                       label=None if p["model"] in labelled else f"{plot_text(p['model'])}: published "
                       f"({p['platform']}, {p['where']})")
            labelled.add(p["model"])


def _maxctx(plt, namer: Namer, device: str, per_method: dict[str, dict]) -> list[Plot]:
    budgets = sorted({b for groups in per_method.values() for b in groups}, key=lambda b: b or 0)
    plots = []
    for budget in budgets:
        models = sorted({m for groups in per_method.values() for m in groups.get(budget, {})})
        figures = published.max_contexts(budget)
        fig, ax = plt.subplots(figsize=(10, 0.5 * len(models) + 1.8))
        height = 0.8 / len(METHODS)
        for k, method in enumerate(METHODS):
            recs = per_method[method.name].get(budget, {})
            ys = [i + k * height for i, m in enumerate(models) if m in recs]
            ax.barh(ys, [recs[m].get("max_ok_ctx") or 0 for m in models if m in recs], height=height,
                    label=f"{method.name} method")
        for i, m in enumerate(models):
            if m in figures:
                ax.plot([figures[m][0]] * 2, [i - 0.1, i + 0.8 - 0.1], color="black", linewidth=2,
                        label="published" if i == min(j for j, x in enumerate(models) if x in figures) else None)
        ax.set_yticks([i + 0.4 - height / 2 for i in range(len(models))], [plot_text(m) for m in models])
        top = max([r.get("max_ok_ctx") or 0 for g in per_method.values() for r in g.get(budget, {}).values()]
                  + [v for v, _ in figures.values()] + [1024])
        step = 1024 * 2 ** max(0, (int(top // 1024) // 6).bit_length() - 1)  # about 4-8 ticks
        ax.xaxis.set_major_locator(plt.MultipleLocator(step))
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda x, _: f"{x / 1024:.0f}K"))
        budget_text = f"{budget / 2**30:.3g} GiB" if budget else "the whole device"
        title = f"longest prefill under {budget_text} per model and method - {device}"
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("context (prompt tokens)")
        ax.grid(True, axis="x", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        path = namer.path("claims-maxctx" if budget == budgets[0] else f"claims-maxctx-{budget / 2**30:g}GiB",
                          device)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        plots.append(Plot("claims-maxctx", device, path, title))
    return plots
