"""The tables `compare` prints and `report` embeds, built from loaded logs.

`build_tables(logs, baseline=None, metrics=None) -> list[Table]` gives, each only when it has rows:
- `cases`: one row per device x setting x model x context (the most recent run wins when several
  measured the same case on one device): status, prefill and TPOT medians, throughput, peak memory,
  energy, the achieved rates and how far each is above its floor (`FLOOR_COLUMNS`, from the run
  header's device micro-benchmarks: `edgebench.analysis.floors`); with a baseline model, the ratio model / baseline per timed metric at the same device,
  setting and context, with its 95% interval (see `edgebench.analysis.stats`);
- `crossover`: for each device, setting, metric and pair of models, every context where one
  overtakes the other, with the bracketing measured points;
- `maxctx`: the max-context search results;
- `ops`: the operator breakdown (share of GPU time per category, per phase).
With no case rows (a log of maxctx or ops records only) there are no cases and crossover tables.
Cells hold raw values (None = not available); `Ratio` cells hold a `RatioCI`. Renderers format them.
The cases and crossover tables are built a column at a time (`edgebench.report.casetable`,
`edgebench.report.crosstable`): a comparison reaches 10^5 rows; the cases table keeps its cells
as columns (`Table(..., data=...)`), which the renderers read without a list per row.
"""
from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Callable, Sequence

from edgebench.analysis import floors
from edgebench.analysis.floor_columns import floor_columns
from edgebench.analysis.ops_categories import categories
from edgebench.choices import DECODE_MODES
from edgebench.errors import UserError
from edgebench.logs.loader import Logs
from edgebench.logs.schema import MEM
from edgebench.logs.values import brief
from edgebench.report.casetable import (METRIC_NAMES, CaseColumns, cases_columns,
                                        series_label_column, setting_text)
from edgebench.report.crosstable import crossover_rows

_GIB = float(1 << 30)
_MEM_COLUMNS = tuple(k for k, f in MEM.items() if f.checked)  # the mem fields readers check


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


assert tuple(METRICS) == METRIC_NAMES  # the columns casetable.CaseColumns makes
FLOOR_FORMATS = dict(zip(floors.FLOOR_COLUMNS, (".4g", ".3g", ".4g", ".3g")))
RATIO_METRICS = ("prefill_ms", "tpot_ms")
FLAGS_NOTE = ("flags: H = host-bound (the GPU waited on the host's launches: the number follows the "
              "CPU, not the GPU), U = unstable (p10-p90 spread >= 20% of the median, the robust "
              "form of pyperf's stdev >= 10% of the mean); *_p10_p90_ms is the spread (over the run medians with "
              "--runs)")
CROSSOVER_METRICS = ("prefill_ms", "tpot_ms", "peak_mem_gib", "prefill_j", "decode_j_per_token")
OPS_ORDER = categories()  # the categories of analysis/ops_rules.json, in report order


@dataclass(frozen=True)
class Column:
    name: str
    fmt: str = ""  # format spec for numbers; "ratio" for RatioCI cells, "pct" for shares


class Table:
    """A titled table of `columns` (name and format each) and notes. Its cells come row by row
    (`rows`) or, for long tables, column by column (`data`: one sequence per column, all as long),
    which the renderers read as it is, without a list per row; `rows` makes the rows from `data`
    on first use, and from then on the rows are the table (they may be changed in place)."""

    def __init__(self, name: str, title: str, columns: list[Column],
                 rows: list[list[Any]] | None = None, notes: list[str] | None = None, *,
                 data: list[Sequence[Any]] | None = None):
        self.name, self.title, self.columns = name, title, columns
        self.notes = notes if notes is not None else []
        self._rows = rows if rows is not None or data is not None else []
        self._data = data if rows is None else None

    @property
    def rows(self) -> list[list[Any]]:
        if self._rows is None:
            self._rows = list(map(list, zip(*self._data))) if self._data else []
        self._data = None
        return self._rows

    @rows.setter
    def rows(self, rows: list[list[Any]]) -> None:
        self._rows, self._data = rows, None

    @property
    def n_rows(self) -> int:
        if self._data is not None:
            return len(self._data[0]) if self._data else 0
        return len(self._rows)

    def column_data(self) -> list[Sequence[Any]]:
        """The cells column by column (rows of unequal length cut to the shortest, as zip does)."""
        return list(self._data) if self._data is not None else list(zip(*self._rows))

    def row_length(self) -> int | None:
        """The number of cells every row has, None when rows differ (or there are none)."""
        if self._data is not None:
            return len(self._data) if self.n_rows else None
        lengths = set(map(len, self._rows))
        return lengths.pop() if len(lengths) == 1 else None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Table):
            return NotImplemented
        return (self.name, self.title, self.columns, self.rows, self.notes) == (
            other.name, other.title, other.columns, other.rows, other.notes)

    def __repr__(self) -> str:
        return f"Table(name={self.name!r}, title={self.title!r}, {len(self.columns)} columns, " \
               f"{self.n_rows} rows)"


def parse_metrics(text: str | None) -> list[str]:
    if not text:
        return list(METRICS)
    names = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in METRICS]
    if bad:
        raise UserError(f"unknown metric {', '.join(bad)}; choose from {','.join(METRICS)}")
    return names


def setting_of(r: dict[str, Any]) -> str:
    return setting_text(r["dtype"], r["batch"], r["decode_mode"], r["logits"])


def latest_cases(logs: Logs) -> tuple[list[dict[str, Any]], int]:
    """One row per (device, source, key): the most recent run's; and how many were superseded."""
    when = {rid: str(h.get("t") or "") for rid, h in logs.runs.items()}
    cases = logs.cases
    times = [when.get(run, "") for run in map(itemgetter("run"), cases)]
    ordered = list(map(cases.__getitem__, sorted(range(len(cases)), key=times.__getitem__)))
    keys = zip(*(map(itemgetter(f), ordered) for f in ("device", "source", "key")))
    latest = dict(zip(keys, ordered))  # a repeated key keeps its first place and its last row
    return list(latest.values()), len(cases) - len(latest)


def series_labels(rows: list[dict[str, Any]]) -> dict[int, str]:
    """Series label per row id (see `casetable.series_label_column`)."""
    get = [list(map(itemgetter(f), rows)) for f in ("model", "source", "backend")]
    return dict(zip(map(id, rows), series_label_column(*get)))


def build_tables(logs: Logs, baseline: str | None = None,
                 metrics: list[str] | None = None) -> list[Table]:
    metrics = metrics or list(METRICS)
    rows, superseded = latest_cases(logs)
    tier = baseline in DECODE_MODES and not any(r["model"] == baseline for r in rows)
    if tier and not any(r["decode_mode"] == baseline for r in rows):
        raise UserError(f"baseline decode mode {baseline!r} is in no log line; decode modes there: "
                        f"{', '.join(sorted({str(r['decode_mode']) for r in rows if r['decode_mode']}))}")
    if baseline is not None and not tier and not any(r["model"] == baseline for r in rows):
        models = sorted({r["model"] for r in rows})
        raise UserError(f"baseline model {baseline!r} is not in the logs; models there: "
                        f"{', '.join(map(brief, models[:20]))} (or a decode mode, "
                        f"{' | '.join(DECODE_MODES)}, to compare each model's tiers)")
    tables = [_maxctx_table(logs), _ops_table(logs)]
    if rows:  # a log of maxctx or ops records only (or none) has no case tables
        cases = CaseColumns(rows)
        tables[:0] = [_cases_table(cases, baseline, metrics, superseded, rows, logs.runs, tier),
                      _crossover_table(cases, metrics)]
    # An empty crossover table still says how many pairs were compared and that none crossed.
    return [t for t in tables if t is not None and (t.n_rows or t.name == "crossover")]


def _cases_table(cases: CaseColumns, baseline: str | None, metrics: list[str],
                 superseded: int, rows: list[dict[str, Any]], runs: dict[str, dict],
                 tier: bool = False) -> Table:
    ratio_metrics = ([m for m in RATIO_METRICS if m in metrics] if baseline else [])
    if tier:  # tiers differ in decode only: a prefill ratio would be a point against itself
        ratio_metrics = [m for m in ratio_metrics if m != "prefill_ms"]
    sources = len(set(cases.source)) > 1
    cols = [Column("device"), Column("model")] + ([Column("source")] if sources else [])
    cols += [Column("backend"), Column("setting"), Column("ctx", "d"), Column("status"),
             Column("flags")]
    for m in metrics:
        cols.append(Column(m, METRICS[m][2]))
        if m in RATIO_METRICS:
            cols.append(Column(f"{m.removesuffix('_ms')}_p10_p90_ms"))
    shown = [i for i, m in enumerate(floors.FLOOR_COLUMNS.values()) if m in metrics]
    notes, extra = [], []
    if shown:  # each floor column beside the metric it divides; one empty in every row is left out
        values, why = floor_columns(rows, runs, cases.values["prefill_ms"], cases.values["tpot_ms"])
        shown = [i for i in shown if any(v is not None for v in values[i])]
        extra = [values[i] for i in shown]
        cols += [Column(name, FLOOR_FORMATS[name]) for i, name in enumerate(floors.FLOOR_COLUMNS) if i in shown]
        notes += ([floors.NOTE] if shown else []) + why
    cols += [Column(f"{m}_ratio", "ratio") for m in ratio_metrics]
    cols.append(Column("reason"))
    data = cases_columns(cases, metrics, ratio_metrics, baseline, sources, extra, tier)
    # flags and spreads only where some row has one (a log of failures keeps its width)
    keep = [i for i, col in enumerate(cols) if not (col.name == "flags" or col.name.endswith("_p10_p90_ms"))
            or any(v is not None for v in data[i])]
    cols, data = [cols[i] for i in keep], [data[i] for i in keep]
    if ratio_metrics and tier:
        notes.append(f"*_ratio columns are each decode mode / {baseline} decode of the same model "
                     "at the same device, setting and context; ~ marks a ratio whose 95% interval "
                     "includes 1, a difference within the measurement spread")
    elif ratio_metrics:
        notes.append(f"*_ratio columns are model / {baseline} (the baseline) at the same device, "
                     "setting and context; ~ marks a ratio whose 95% interval includes 1, a "
                     "difference within the measurement spread")
    if any(cases.flags):
        notes.append(FLAGS_NOTE)
    if superseded:
        notes.append(f"{superseded} case rows superseded by a later run of the same case on the "
                     "same device")
    return Table("cases", "Cases: device x model x context", cols, notes=notes, data=data)


def _crossover_table(cases: CaseColumns, metrics: list[str]) -> Table | None:
    cols = [Column("device"), Column("setting"), Column("metric"), Column("model_a"),
            Column("model_b"), Column("crossover_ctx", ",.0f"), Column("better_after"),
            Column("resolved"),
            Column("below_ctx", "d"), Column("a_below", ".4g"), Column("b_below", ".4g"),
            Column("above_ctx", "d"), Column("a_above", ".4g"), Column("b_above", ".4g")]
    chosen = [(m, list(METRICS).index(m)) for m in CROSSOVER_METRICS if m in metrics]
    pairs, out = crossover_rows(cases, chosen, {m: lower for m, (_, lower, _) in METRICS.items()})
    if not pairs:
        return None
    real = sum(r[7] == "yes" for r in out)
    notes = [f"{pairs} model pairs compared over context (interpolated log-log between the "
             f"bracketing measured contexts); {len(out)} crossings found, {real} resolved: a "
             "crossing is claimed only where, at both bracketing contexts, the models differ by "
             "more than their combined 95% uncertainty and neither point is host-bound"]
    return Table("crossover", "Crossover: where one model overtakes another", cols, out, notes)


def _limited_by(rec: dict) -> str | None:
    """What stopped the context growing: the record's `limited_by`, or (older logs) the status of
    the smallest failing probe in its trail."""
    if isinstance(rec.get("limited_by"), str):
        return rec["limited_by"]
    fail = rec.get("min_fail_ctx")
    return next((st for ctx, st in (rec.get("trail") or []) if ctx == fail and isinstance(st, str)), None)


def _maxctx_table(logs: Logs) -> Table:
    cols = [Column("device"), Column("model"), Column("mode"), Column("max_ok_ctx", ",d"),
            Column("min_fail_ctx", ",d"), Column("limited_by"), Column("resolution", ",d"),
            Column("probes", "d"), Column("budget_gib", ".2f"), Column("wall_s", ".1f"),
            Column("peak_gib_at_max", ".2f"), Column("reserved_gib_at_max", ".2f"),
            Column("model_gib_at_max", ".2f")]
    out = []
    for rec in sorted(logs.maxctx, key=lambda r: (r["device"], r["model"], str(r.get("mode")))):
        budget = rec.get("budget_bytes")
        out.append([rec["device"], rec["model"], rec.get("mode"), rec.get("max_ok_ctx"),
                    rec.get("min_fail_ctx"), _limited_by(rec), _num(rec.get("resolution")),
                    _num(rec.get("probes")),
                    budget / _GIB if isinstance(budget, (int, float)) else None,
                    _num(rec.get("wall_s"))] + _mem_at_max(rec))
    notes = ["*_at_max: at the longest context that ran, the allocator's peak (allocated, reserved) and "
             "the analytic model's total; between reserved and the budget are the CUDA context and "
             "what the allocator could not place"]
    return Table("maxctx", "Max context: largest context that ran, smallest that failed", cols, out, notes)


def _mem_at_max(rec: dict) -> list:
    mem = rec.get("mem_at_max_ok") if isinstance(rec.get("mem_at_max_ok"), dict) else {}
    return [v / _GIB if isinstance(v := _num(mem.get(k)), (int, float)) else None
            for k in _MEM_COLUMNS]


def _ops_table(logs: Logs) -> Table:
    cats = {c for rec in logs.ops for c in rec["shares"]}
    ordered = [c for c in OPS_ORDER if c in cats] + sorted(cats - set(OPS_ORDER))
    cols = [Column("device"), Column("model"), Column("ctx", "d"), Column("decode"), Column("phase")]
    cols += [Column(c, "pct") for c in ordered]
    cols += [Column("kernel_ms", ".4g"), Column("wall_ms", ".4g"), Column("gpu_idle_share", "pct")]
    out = []
    for rec in sorted(logs.ops, key=lambda r: (r["device"], r["model"], r["ctx"] or 0,
                                               str(r.get("decode_mode")), r["phase"])):
        k, w = _num(rec.get("kernel_ms")), _num(rec.get("wall_ms"))
        idle = max(0.0, 1.0 - k / w) if k is not None and w else None
        out.append([rec["device"], rec["model"], rec["ctx"], rec.get("decode_mode"), rec["phase"]]
                   + [rec["shares"].get(c) for c in ordered] + [k, w, idle])
    notes = ["shares of GPU kernel time per category; gpu_idle_share = 1 - kernel_ms / wall_ms "
             "(high means launch-bound); decode: the case's decode mode. A graph decode's kernels "
             "take their module scopes (norms) from one eager step of the same code, by position "
             "(`replay_scopes: mapped`); where the kernel sequences differ (`unmatched`), its norms "
             "count as elementwise/reduce"]
    return Table("ops", "Operator breakdown (share of GPU time)", cols, out, notes)


def _num(x: Any) -> Any:
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) else None
