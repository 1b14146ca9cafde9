"""The `cases` and `crossover` tables of `edgebench.report.tables.build_tables`, a column at a time.

A comparison reaches 10^5 rows, and each row's objects lie scattered in memory (a cache miss per
visit), so: the latest rows are read out chunk by chunk (`CHUNK_ROWS`), every pass over a chunk's
values made while they are still in cache; repeated strings are replaced by one object each;
settings and series labels are made once per distinct value; the table is ordered through integer
codes and the sorted number columns are made from numpy arrays (new objects, in table order); the
ratio intervals are numpy columns. Cell for cell the same as a build row by row with
`tables.setting_of`, `tables.series_labels` and `tables.metric_values`.
"""
from __future__ import annotations

from operator import itemgetter
from typing import Any, Callable, Sequence

import numpy as np

from edgebench.analysis.stats import (median_rel_se_columns, ratio_ci, ratio_cis_from_arrays,
                                      stats_fields)

CHUNK_ROWS = 4096
MAX_REL_SE = 100.0
_FIELDS = ("device", "source", "model", "backend", "dtype", "batch", "decode_mode", "logits", "ctx",
           "status", "reason", "prefill_ms", "tpot_ms", "prefill_raw_ms", "tpot_raw_ms",
           "peak_allocated_bytes", "prefill_j", "decode_j_per_token", "host_bound", "unstable", "gen",
           "attn")
_GET = itemgetter(*_FIELDS)
_NUM = (int, float)
_GIB = float(1 << 30)
_NONE = type(None)
_PLAIN = frozenset((str, int, _NONE))  # types whose equal values format alike (not 1 / 1.0 / True)
_FLOAT_OR_NONE = frozenset((float, _NONE))
_RATIO = ("prefill_ms", "tpot_ms")
# The values CaseColumns makes, in the order of tables.METRICS.
METRIC_NAMES = ("prefill_ms", "tpot_ms", "prefill_tok_s", "decode_tok_s", "peak_mem_gib",
                "prefill_j", "decode_j_per_token")


def per_distinct(fn: Callable[..., Any], *cols: Sequence[Any], plain: bool = False,
                 memo: dict | None = None) -> list[Any]:
    """[fn(*k) for k in zip(*cols)], with fn called once per distinct k where that is the same:
    the columns hold only str, int and None (`plain`: the caller knows they do). `memo` may carry
    the results over from earlier calls with the same fn."""
    keys = list(zip(*cols))
    if plain or all(set(map(type, c)) <= _PLAIN for c in cols):
        memo = {} if memo is None else memo
        for k in set(keys).difference(memo):
            memo[k] = fn(*k)
        return list(map(memo.__getitem__, keys))
    return [fn(*k) for k in keys]


def setting_text(dtype: Any, batch: Any, mode: Any, logits: Any) -> str:
    parts = [dtype, f"b={batch}" if batch else None, mode,
             f"logits={logits}" if logits and logits != "last" else None]
    return " ".join(p for p in parts if p) or "-"


def series_label_column(models: Sequence[Any], sources: Sequence[Any], backends: Sequence[Any],
                        plain: bool = False) -> list[Any]:
    """Series label per row: the model, plus [backend] where one model ran on several backends;
    rows imported from other tools carry [source] so they are never mistaken for edgebench's."""
    seen, several = set(), set()
    for model, _ in set(zip(models, backends)):  # each distinct (model, backend) once
        (several if model in seen else seen).add(model)

    def label(model: Any, source: Any, backend: Any) -> Any:
        if source != "edgebench":
            return f"{model} [{source}]"
        return f"{model} [{backend}]" if model in several else model

    return per_distinct(label, models, sources, backends, plain=plain)


class CaseColumns:
    """The latest case rows as columns in row order: the fields, each row's setting and series
    label, whether it is ok, the METRICS values (None where not ok), and numpy copies: ctx (when
    every ctx is an int), the values (NaN for None), (median, rel_se) of the timed metrics."""

    def __init__(self, rows: list[dict[str, Any]]):
        self.n = len(rows)
        names = ("device", "source", "model", "backend", "batch", "ctx", "status", "reason",
                 "setting", "ok", "flags", "host", "spread.prefill_ms", "spread.tpot_ms", "mode",
                 "point_setting") + tuple(f"stats.{m}" for m in _RATIO) + tuple(
                 f"raw.{m}" for m in _RATIO) + tuple(f"values.{m}" for m in METRIC_NAMES)
        parts: dict[str, list[Any]] = {k: [] for k in names}
        arrays: dict[str, list[Any]] = {}
        self._plain, canon, memo = True, {}, {}
        for start in range(0, self.n, CHUNK_ROWS):
            for k, v in self._chunk(rows[start:start + CHUNK_ROWS], canon, memo, arrays).items():
                parts[k] += v
        (self.device, self.source, self.model, self.backend, self.batch, self.ctx, self.status,
         self.reason, self.setting, self.ok, self.flags, self.host) = (parts[k] for k in names[:12])
        self.spread = {m: parts[f"spread.{m}"] for m in _RATIO}
        self.mode, self.point_setting = parts["mode"], parts["point_setting"]
        self.stats = {m: parts[f"stats.{m}"] for m in _RATIO}
        self.raw = {m: parts[f"raw.{m}"] for m in _RATIO}
        self.values = {m: parts[f"values.{m}"] for m in METRIC_NAMES}
        self.label = series_label_column(self.model, self.source, self.backend, plain=self._plain)
        self.arrays = {k: _joined(v, self.n) for k, v in arrays.items()}

    def _chunk(self, rows: list[dict[str, Any]], canon: dict, memo: dict,
               arrays: dict[str, list[Any]]) -> dict[str, list[Any]]:
        (device, source, model, backend, dtype, batch, mode, logits, ctx, status, reason, pre_st,
         tp_st, pre_raw, tp_raw, mem, pj, dj, host, unsteady, gen, attn) = zip(*map(_GET, rows))
        # Edgebench log rows hold str or None in these fields and an int or None in batch
        # (edgebench.logs.file_reader makes them so): each distinct string then becomes one object.
        plain = set(source) <= {"edgebench"}
        self._plain &= plain
        if plain:
            put = canon.setdefault
            model, backend, dtype, mode, logits, status, reason = (
                list(map(put, c, c)) for c in (model, backend, dtype, mode, logits, status, reason))
        ok = [s == "ok" for s in status]
        fields = {m: stats_fields(st) for m, st in zip(_RATIO, (pre_st, tp_st))}
        pre, tp = (self._medians(ok, fields[m], st) for m, st in zip(_RATIO, (pre_st, tp_st)))
        values = (pre, tp,
                  [c * (b or 1) * 1000.0 / p if p and c else None
                   for p, c, b in zip(pre, ctx, batch)],
                  [(b or 1) * 1000.0 / t if t else None for t, b in zip(tp, batch)],
                  [m / _GIB if o and m is not None else None for o, m in zip(ok, mem)],
                  [v if o else None for o, v in zip(ok, pj)],
                  [v if o else None for o, v in zip(ok, dj)])
        out = {"device": device, "source": source, "model": model, "backend": backend,
               "batch": batch, "ctx": ctx, "status": status, "reason": reason, "ok": ok,
               "flags": [_FLAG_TEXT[(h is True, u is True)] for h, u in zip(host, unsteady)],
               "host": [h is True for h in host],
               "mode": mode, "point_setting": list(zip(
                   per_distinct(setting_text, dtype, batch, [None] * len(mode), logits, plain=plain),
                   gen, attn)),
               "setting": per_distinct(setting_text, dtype, batch, mode, logits, plain=plain,
                                       memo=memo if plain else None)}
        for m, st, raw in zip(_RATIO, (pre_st, tp_st), (pre_raw, tp_raw)):
            out[f"stats.{m}"], out[f"raw.{m}"] = st, raw
            out[f"spread.{m}"] = _spreads(ok, fields[m], st)
            med, se = median_rel_se_columns(st, fields[m])
            arrays.setdefault(f"med.{m}", []).append(med)
            arrays.setdefault(f"se.{m}", []).append(se)
        for m, vals in zip(METRIC_NAMES, values):
            out[f"values.{m}"] = vals
            arrays.setdefault(f"float.{m}", []).append(_floats(vals))
            exact = set(map(type, vals)) <= _FLOAT_OR_NONE
            arrays.setdefault(f"none.{m}", []).append(
                np.array([v is None for v in vals], dtype=bool) if exact else None)
        arrays.setdefault("ctx", []).append(_floats(ctx, np.int64) if set(map(type, ctx)) == {int}
                                           else None)
        return out

    @staticmethod
    def _medians(ok: list[bool], fields: list | None, stats: Sequence[Any]) -> list[Any]:
        """The median per ok row when a positive number, else None."""
        meds = fields[0] if fields else [s.get("median") if o and s else None
                                         for o, s in zip(ok, stats)]
        return [m if o and type(m) in _NUM and m > 0 else None for o, m in zip(ok, meds)]

    def order(self) -> np.ndarray:
        """Row positions sorted by (device, setting, label, ctx), stable: through integer codes
        where every key is a str (ctx an int), else Python's sort of the key tuples."""
        keys = (self.device, self.setting, self.label)
        ctx, n = self.arrays["ctx"], self.n
        if n and ctx is not None and all(set(map(type, c)) == {str} for c in keys):
            uniq_ctx, ctx_code = np.unique(ctx, return_inverse=True)
            uniqs = [sorted(set(col)) for col in keys]
            if len(uniq_ctx) * np.prod([len(u) for u in uniqs], dtype=object) < 1 << 62:
                codes = np.zeros(n, dtype=np.int64)
                for col, uniq in zip(keys, uniqs):
                    codes = codes * len(uniq) + _codes(col, uniq)
                return np.argsort(codes * len(uniq_ctx) + ctx_code, kind="stable")
        return np.array(sorted(range(n), key=list(zip(*keys, self.ctx)).__getitem__), dtype=np.intp)

    def sorted_column(self, name: str, order: np.ndarray, order_list: list[int]) -> list[Any]:
        """A column (a field or values.METRIC) in table order: from its numpy copy where that
        gives the same values (floats and None; ints), else the row objects themselves."""
        if name == "ctx" and self.arrays["ctx"] is not None:
            return self.arrays["ctx"][order].tolist()
        if name.startswith("values."):
            m = name[len("values."):]
            arr, none = self.arrays[f"float.{m}"], self.arrays[f"none.{m}"]
            if arr is not None and none is not None:
                out = arr[order].tolist()
                for i in np.flatnonzero(none[order]).tolist():
                    out[i] = None
                return out
            col = self.values[m]
        else:
            col = getattr(self, name)
        return list(map(col.__getitem__, order_list))

    def baseline_rows(self, baseline: str) -> list[int]:
        """Per row, the position of its baseline row (same device, setting and context; the same
        backend first): -1 where the row is not ok, has none, or is the baseline row itself."""
        base: dict[tuple, int] = {}
        ctx = self.arrays["ctx"].tolist() if self.arrays["ctx"] is not None else self.ctx
        dev, setting, backend, ok = self.device, self.setting, self.backend, self.ok
        for i in [i for i, m in enumerate(self.model) if m == baseline]:
            if ok[i]:
                k = (dev[i], setting[i], ctx[i])
                base.setdefault(k + (backend[i],), i)
                base.setdefault(k, i)
        out = []
        for i, (o, d, s, c, b) in enumerate(zip(ok, dev, setting, ctx, backend)):
            j = base.get((d, s, c, b)) if o else None
            if j is None and o:
                j = base.get((d, s, c))
            out.append(-1 if j is None or j == i else j)
        return out

    def tier_baseline_rows(self, mode: str) -> list[int]:
        """Per row, the position of the same model's row decoded in `mode` (same device, backend,
        dtype, batch, logits, gen, attention and context: one point's decode lines): -1 where the row is not ok,
        has none, or is that row itself. `--baseline graph` compares a model's tiers."""
        base: dict[tuple, int] = {}
        keys = list(zip(self.device, self.model, self.backend, self.point_setting, self.ctx))
        for i, (k, m, o) in enumerate(zip(keys, self.mode, self.ok)):
            if o and m == mode:
                base.setdefault(k, i)
        return [-1 if not o or base.get(k, i) == i else base[k] for i, (k, o) in enumerate(zip(keys, self.ok))]

    def ratio_column(self, metric: str, b_at: list[int], order: np.ndarray) -> list[Any]:
        """RatioCI of each row / its baseline row (b_at, -1 = none), in table order: bootstrap
        where both kept raw samples, else the normal approximation from the Stats objects."""
        med, se = self.arrays[f"med.{metric}"], self.arrays[f"se.{metric}"]
        # A spread past MAX_REL_SE times the median gives no interval (its bounds would overflow).
        se = np.where(se <= MAX_REL_SE, se, np.nan)
        bi = np.array(b_at, dtype=np.intp)
        has_b = bi >= 0
        bi = np.where(has_b, bi, 0)
        out = ratio_cis_from_arrays(*(np.where(has_b, x, np.nan)[order]
                                      for x in (med, se, med[bi], se[bi])))
        stats, raw = self.stats[metric], self.raw[metric]
        pos = np.empty(self.n, dtype=np.intp)
        pos[order] = np.arange(self.n)
        for i in [i for i, x in enumerate(raw) if x]:
            j = b_at[i]
            if j >= 0 and raw[j]:
                out[pos[i]] = ratio_ci(stats[i], stats[j], raw[i], raw[j])
        return out


_FLAG_TEXT = {(False, False): None, (True, False): "H", (False, True): "U", (True, True): "HU"}


def _spreads(ok: list[bool], fields: list | None, stats: Sequence[Any]) -> list[str | None]:
    """"p10-p90" of each ok row's Stats (of the run medians with --runs), None where absent."""
    if fields:
        lo_hi = zip(fields[2], fields[3])
    else:
        lo_hi = ((s.get("p10"), s.get("p90")) if type(s) is dict else (None, None) for s in stats)
    return [f"{lo:.4g}-{hi:.4g}" if o and type(lo) in _NUM and type(hi) in _NUM else None
            for o, (lo, hi) in zip(ok, lo_hi)]


def _floats(values: Sequence[Any], dtype: type = float) -> np.ndarray | None:
    """np.array(values, dtype) (None -> NaN for floats), None where numpy refuses."""
    try:
        return np.array(values, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        return None


def _joined(chunks: list[Any], n: int) -> np.ndarray | None:
    if any(c is None for c in chunks):
        return None
    return np.concatenate(chunks) if chunks else np.zeros(n)


def _codes(values: Sequence[Any], ordered: list[Any]) -> np.ndarray:
    """Each value's position in `ordered` (its sorted distinct values)."""
    at = dict(zip(ordered, range(len(ordered))))
    return np.fromiter(map(at.__getitem__, values), dtype=np.intp, count=len(values))


def cases_columns(c: CaseColumns, metrics: list[str], ratio_metrics: list[str],
                  baseline: str | None, sources: bool,
                  extra: Sequence[Sequence[Any]] = (), tier: bool = False) -> list[list[Any]]:
    """The cases table's columns: device, label, [source], backend, setting, ctx, status, flags,
    metrics (each timed one followed by its p10-p90 spread), `extra` (columns in row order: the
    floors), ratios (to the baseline model, or with `tier` to the same model's `baseline` decode
    mode), reason; rows sorted by device,
    setting, label, context."""
    order = c.order()
    order_list = order.tolist()
    names = ["device", "label"] + (["source"] if sources else []) + ["backend", "setting", "ctx",
                                                                      "status", "flags"]
    columns = [c.sorted_column(k, order, order_list) for k in names]
    for m in metrics:
        columns.append(c.sorted_column(f"values.{m}", order, order_list))
        if m in _RATIO:
            columns.append(list(map(c.spread[m].__getitem__, order_list)))
    columns += [list(map(col.__getitem__, order_list)) for col in extra]
    if ratio_metrics and baseline is not None:
        b_at = c.tier_baseline_rows(baseline) if tier else c.baseline_rows(baseline)
        columns += [c.ratio_column(m, b_at, order) for m in ratio_metrics]
    columns.append(c.sorted_column("reason", order, order_list))
    return columns
