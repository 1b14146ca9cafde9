"""The tables `compare` prints and `report` embeds, built from loaded logs.

`build_tables(logs, baseline=None, metrics=None) -> list[Table]` gives, each only when it has rows:
- `cases`: one row per device x setting x model x context (the most recent run wins when several
  measured the same case on one device): status, prefill and TPOT medians, throughput, peak memory,
  energy; with a baseline model, the ratio model / baseline per timed metric at the same device,
  setting and context, with its 95% interval (see `edgebench.analysis.stats`);
- `crossover`: for each device, setting, metric and pair of models, every context where one
  overtakes the other, with the bracketing measured points;
- `maxctx`: the max-context search results;
- `ops`: the operator breakdown (share of GPU time per category, per phase).
Cells hold raw values (None = not available); `Ratio` cells hold a `RatioCI`. Renderers format them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from edgebench.analysis.crossover import candidate_pairs, curve, find_crossovers
from edgebench.analysis.stats import (RatioCI, median_rel_se_columns, ratio_ci,
                                      ratio_cis_from_arrays)
from edgebench.errors import UserError
from edgebench.logs import Logs

_GIB = float(1 << 30)


def _median(stats: dict[str, Any] | None) -> float | None:
    m = stats.get("median") if stats else None
    return float(m) if isinstance(m, (int, float)) and m > 0 else None


def _prefill_tok_s(r: dict[str, Any]) -> float | None:
    ms = _median(r["prefill_ms"])
    return r["ctx"] * (r["batch"] or 1) * 1000.0 / ms if ms and r["ctx"] else None


def _decode_tok_s(r: dict[str, Any]) -> float | None:
    ms = _median(r["tpot_ms"])
    return (r["batch"] or 1) * 1000.0 / ms if ms else None


def _mem_gib(r: dict[str, Any]) -> float | None:
    b = r["peak_allocated_bytes"]
    return b / _GIB if b is not None else None


# name -> (getter, lower is better, format); names carry their unit.
METRICS: dict[str, tuple[Callable[[dict[str, Any]], float | None], bool, str]] = {
    "prefill_ms": (lambda r: _median(r["prefill_ms"]), True, ".4g"),
    "tpot_ms": (lambda r: _median(r["tpot_ms"]), True, ".4g"),
    "prefill_tok_s": (_prefill_tok_s, False, ",.0f"),
    "decode_tok_s": (_decode_tok_s, False, ",.1f"),
    "peak_mem_gib": (_mem_gib, True, ".3f"),
    "prefill_j": (lambda r: r["prefill_j"], True, ".3g"),
    "decode_j_per_token": (lambda r: r["decode_j_per_token"], True, ".3g"),
}
_NUM = (int, float)


def metric_values(r: dict[str, Any]) -> tuple[float | None, ...]:
    """All METRICS of one ok row at once, in METRICS order (the per-metric getters, fused: this
    runs for every row of a 10^5-row comparison)."""
    pre, tp = r["prefill_ms"], r["tpot_ms"]
    pre = pre.get("median") if pre else None
    tp = tp.get("median") if tp else None
    pre = pre if type(pre) in _NUM and pre > 0 else None
    tp = tp if type(tp) in _NUM and tp > 0 else None
    batch = r["batch"] or 1
    mem = r["peak_allocated_bytes"]
    return (pre, tp, r["ctx"] * batch * 1000.0 / pre if pre and r["ctx"] else None,
            batch * 1000.0 / tp if tp else None, mem / _GIB if mem is not None else None,
            r["prefill_j"], r["decode_j_per_token"])


RATIO_METRICS = ("prefill_ms", "tpot_ms")
CROSSOVER_METRICS = ("prefill_ms", "tpot_ms", "peak_mem_gib", "prefill_j", "decode_j_per_token")
OPS_ORDER = ("gemm", "attention", "ssm_scan", "conv1d", "norm", "elementwise", "memory",
             "embedding_logits", "other")


@dataclass(frozen=True)
class Column:
    name: str
    fmt: str = ""  # format spec for numbers; "ratio" for RatioCI cells, "pct" for shares


@dataclass
class Table:
    name: str
    title: str
    columns: list[Column]
    rows: list[list[Any]]
    notes: list[str] = field(default_factory=list)


def parse_metrics(text: str | None) -> list[str]:
    if not text:
        return list(METRICS)
    names = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in METRICS]
    if bad:
        raise UserError(f"unknown metric {', '.join(bad)}; choose from {','.join(METRICS)}")
    return names


def setting_of(r: dict[str, Any]) -> str:
    parts = [r["dtype"], f"b={r['batch']}" if r["batch"] else None, r["decode_mode"],
             f"logits={r['logits']}" if r["logits"] and r["logits"] != "last" else None]
    return " ".join(p for p in parts if p) or "-"


def latest_cases(logs: Logs) -> tuple[list[dict[str, Any]], int]:
    """One row per (device, source, key): the most recent run's; and how many were superseded."""
    when = {rid: str(h.get("t") or "") for rid, h in logs.runs.items()}
    order = sorted(range(len(logs.cases)), key=lambda i: when.get(logs.cases[i]["run"], ""))
    latest: dict[tuple, dict[str, Any]] = {}
    for i in order:
        r = logs.cases[i]
        latest[(r["device"], r["source"], r["key"])] = r
    return list(latest.values()), len(logs.cases) - len(latest)


def series_labels(rows: list[dict[str, Any]]) -> dict[int, str]:
    """Series label per row: the model, plus [backend] where one model ran on several backends;
    rows imported from other tools carry [source] so they are never mistaken for edgebench's."""
    backends: dict[str, set] = {}
    for r in rows:
        backends.setdefault(r["model"], set()).add(r["backend"])
    labels = {}
    for r in rows:
        if r["source"] != "edgebench":
            labels[id(r)] = f"{r['model']} [{r['source']}]"
        elif len(backends[r["model"]]) > 1:
            labels[id(r)] = f"{r['model']} [{r['backend']}]"
        else:
            labels[id(r)] = r["model"]
    return labels


def _settings(rows: list[dict[str, Any]]) -> dict[int, str]:
    """`setting_of` per row id, computed once per distinct (dtype, batch, mode, logits)."""
    memo: dict[tuple, str] = {}
    out = {}
    for r in rows:
        d, b, m, lg = r["dtype"], r["batch"], r["decode_mode"], r["logits"]
        k = (d, b, m, lg, type(d), type(b), type(m), type(lg))  # 1, 1.0 and True are equal keys
        s = memo.get(k)
        if s is None:
            s = memo[k] = setting_of(r)
        out[id(r)] = s
    return out


def build_tables(logs: Logs, baseline: str | None = None,
                 metrics: list[str] | None = None) -> list[Table]:
    metrics = metrics or list(METRICS)
    rows, superseded = latest_cases(logs)
    if baseline is not None and not any(r["model"] == baseline for r in rows):
        models = sorted({r["model"] for r in rows})
        raise UserError(f"baseline model {baseline!r} is not in the logs; models there: "
                        f"{', '.join(models[:20])}")
    labels = series_labels(rows)
    settings = _settings(rows)
    values = {id(r): metric_values(r) for r in rows if r["status"] == "ok"}
    tables = [_cases_table(rows, labels, settings, values, baseline, metrics, superseded),
              _crossover_table(rows, labels, settings, values, metrics),
              _maxctx_table(logs), _ops_table(logs)]
    # An empty crossover table still says how many pairs were compared and that none crossed.
    return [t for t in tables if t is not None and (t.rows or t.name == "crossover")]


def _cases_table(rows, labels, settings, values, baseline, metrics, superseded) -> Table:
    ratio_metrics = [m for m in RATIO_METRICS if m in metrics] if baseline else []
    sources = len({r["source"] for r in rows}) > 1
    cols = [Column("device"), Column("model")] + ([Column("source")] if sources else [])
    cols += [Column("backend"), Column("setting"), Column("ctx", "d"), Column("status")]
    cols += [Column(m, METRICS[m][2]) for m in metrics]
    cols += [Column(f"{m}_ratio", "ratio") for m in ratio_metrics]
    cols.append(Column("reason"))
    base: dict[tuple, dict[str, Any]] = {}
    if baseline:
        for r in rows:
            if r["model"] == baseline and r["status"] == "ok":
                k = (r["device"], settings[id(r)], r["ctx"])
                base.setdefault(k + (r["backend"],), r)
                base.setdefault(k, r)
    ordered = sorted(rows, key=lambda r: (r["device"], settings[id(r)], labels[id(r)], r["ctx"]))
    at = [list(METRICS).index(m) for m in metrics]
    blank = [None] * len(at)
    pos = {id(b): -1 for b in base.values()}
    for n, r in enumerate(ordered):
        if id(r) in pos:
            pos[id(r)] = n
    out, b_at = [], []
    for n, r in enumerate(ordered):
        setting, v = settings[id(r)], values.get(id(r))
        line = ([r["device"], labels[id(r)], r["source"]] if sources else
                [r["device"], labels[id(r)]])
        line += [r["backend"], setting, r["ctx"], r["status"]]
        line += [v[i] for i in at] if v else blank
        if ratio_metrics:
            k = (r["device"], setting, r["ctx"])
            b = base.get(k + (r["backend"],)) or base.get(k) if v else None
            b_at.append(pos[id(b)] if b is not None and b is not r else -1)
        out.append(line)
    if ratio_metrics:
        columns = [_ratio_column(ordered, b_at, m) for m in ratio_metrics]
        for line, *cells in zip(out, *columns):
            line += cells
    for line, r in zip(out, ordered):
        line.append(r["reason"])
    notes = []
    if ratio_metrics:
        notes.append(f"*_ratio columns are model / {baseline} (the baseline) at the same device, "
                     "setting and context; ~ marks a ratio whose 95% interval includes 1, a "
                     "difference within the measurement spread")
    if superseded:
        notes.append(f"{superseded} case rows superseded by a later run of the same case on the "
                     "same device")
    return Table("cases", "Cases: device x model x context", cols, out, notes)


def _ratio_column(rows: list[dict[str, Any]], b_at: list[int], metric: str) -> list[RatioCI | None]:
    """Ratio row / baseline row (at position b_at, -1 = none) for one metric over the whole table:
    bootstrap where both sides kept raw samples, the normal approximation (vectorised) from the
    Stats objects elsewhere; each row's (median, rel_se) is computed once."""
    import numpy as np

    raw = metric.replace("_ms", "_raw_ms")
    med, se = median_rel_se_columns([r[metric] for r in rows])
    bi = np.array(b_at, dtype=np.intp)
    has_b = bi >= 0
    bi = np.where(has_b, bi, 0)
    out = ratio_cis_from_arrays(np.where(has_b, med, np.nan), np.where(has_b, se, np.nan),
                                np.where(has_b, med[bi], np.nan), np.where(has_b, se[bi], np.nan))
    for n in [n for n, r in enumerate(rows) if r[raw]]:
        b = rows[b_at[n]] if b_at[n] >= 0 else None
        if b and b[raw]:
            out[n] = ratio_ci(rows[n][metric], b[metric], rows[n][raw], b[raw])
    return out


def _crossover_table(rows, labels, settings, values, metrics) -> Table | None:
    cols = [Column("device"), Column("setting"), Column("metric"), Column("model_a"),
            Column("model_b"), Column("crossover_ctx", ",.0f"), Column("better_after"),
            Column("below_ctx", "d"), Column("a_below", ".4g"), Column("b_below", ".4g"),
            Column("above_ctx", "d"), Column("a_above", ".4g"), Column("b_above", ".4g")]
    chosen = [(m, list(METRICS).index(m)) for m in CROSSOVER_METRICS if m in metrics]
    groups: dict[tuple, list[tuple[str, int, tuple]]] = {}
    for r in rows:
        vals = values.get(id(r))
        if vals is not None and r["ctx"]:
            groups.setdefault((r["device"], settings[id(r)]), []).append(
                (labels[id(r)], r["ctx"], vals))
    out, pairs = [], 0
    for (device, setting), items in sorted(groups.items()):
        n_pairs, candidates, names, ctxs, grid = candidate_pairs(items, [i for _, i in chosen])
        pairs += n_pairs
        for k, i, j in candidates:
            m = chosen[k][0]
            a, b = curve(grid[k, i], ctxs), curve(grid[k, j], ctxs)
            for x in find_crossovers(a, b, lower_is_better=METRICS[m][1]):
                na, nb = names[i], names[j]
                out.append([device, setting, m, na, nb, x.ctx, na if x.better_after == "a" else nb,
                            x.before.ctx, x.before.a, x.before.b, x.after.ctx, x.after.a, x.after.b])
    if not pairs:
        return None
    notes = [f"{pairs} model pairs compared over context (interpolated log-log between the "
             f"bracketing measured contexts); {len(out)} crossings found"]
    return Table("crossover", "Crossover: where one model overtakes another", cols, out, notes)


def _maxctx_table(logs: Logs) -> Table:
    cols = [Column("device"), Column("model"), Column("mode"), Column("max_ok_ctx", ",d"),
            Column("min_fail_ctx", ",d"), Column("resolution", ",d"), Column("probes", "d"),
            Column("budget_gib", ".2f"), Column("wall_s", ".1f")]
    out = []
    for rec in sorted(logs.maxctx, key=lambda r: (r["device"], r["model"], str(r.get("mode")))):
        budget = rec.get("budget_bytes")
        out.append([rec["device"], rec["model"], rec.get("mode"), rec.get("max_ok_ctx"),
                    rec.get("min_fail_ctx"), _num(rec.get("resolution")), _num(rec.get("probes")),
                    budget / _GIB if isinstance(budget, (int, float)) else None,
                    _num(rec.get("wall_s"))])
    return Table("maxctx", "Max context: largest context that ran, smallest that failed", cols, out)


def _ops_table(logs: Logs) -> Table:
    cats = {c for rec in logs.ops for c in rec["shares"]}
    ordered = [c for c in OPS_ORDER if c in cats] + sorted(cats - set(OPS_ORDER))
    cols = [Column("device"), Column("model"), Column("ctx", "d"), Column("phase")]
    cols += [Column(c, "pct") for c in ordered]
    cols += [Column("kernel_ms", ".4g"), Column("wall_ms", ".4g"), Column("gpu_idle_share", "pct")]
    out = []
    for rec in sorted(logs.ops, key=lambda r: (r["device"], r["model"], r["ctx"] or 0, r["phase"])):
        k, w = _num(rec.get("kernel_ms")), _num(rec.get("wall_ms"))
        idle = max(0.0, 1.0 - k / w) if k is not None and w else None
        out.append([rec["device"], rec["model"], rec["ctx"], rec["phase"]]
                   + [rec["shares"].get(c) for c in ordered] + [k, w, idle])
    notes = ["shares of GPU kernel time per category; gpu_idle_share = 1 - kernel_ms / wall_ms "
             "(high means launch-bound)"]
    return Table("ops", "Operator breakdown (share of GPU time)", cols, out, notes)


def _num(x: Any) -> Any:
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) else None
