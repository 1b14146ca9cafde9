"""The fast paths of a large `edgebench compare` give what the plain paths give: orjson parsing
(and the stdlib where orjson refuses a line), column-wise tables, block-wise CSV / JSON / text."""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from edgebench.logs import file_reader as logfile
from edgebench.analysis import floors
from edgebench.analysis.crossover import candidate_pairs, candidate_pairs_coded
from edgebench.analysis.stats import (RatioCI, median_and_rel_se, median_rel_se_columns, ratio_ci,
                                      stats_fields)
from edgebench.logs.loader import load
from edgebench.report import render, render_data
from edgebench.report.tables import (METRICS, RATIO_METRICS, Column, Table, build_tables,
                                     latest_cases, metric_values, series_labels, setting_of)

FOREIGN = Path(__file__).parent / "fixtures" / "foreign"


def stats(median, rel=0.02, n=5, **kw):
    return {"median": median, "p10": median * (1 - rel), "p90": median * (1 + rel),
            "stdev": median * rel, "n": n, **kw}


def case(run, model, ctx, **extra):
    rec = {"v": 1, "type": "case", "run": run, "key": f"{model}|{ctx}|{extra.get('backend', 'hf')}"
           f"|{extra.get('batch', 1)}", "model": model, "family": "ssm", "backend": "hf",
           "dtype": "bfloat16", "ctx": ctx, "gen": 64, "batch": 1, "decode_mode": "graph",
           "logits": "last", "status": "ok", "reason": None, "device": "GPU",
           "prefill_ms": stats(0.01 * ctx * ctx / 3000 if model == "base" else 0.02 * ctx),
           "tpot_ms": stats(20.0 + ctx / 1000, rel=0.05, n=64),
           "mem": {"peak_allocated_bytes": 2**30 + ctx * 1000}, "energy": {"prefill_j": 1.5}}
    rec.update(extra)
    return rec


def header(run, t, host="h1", micro=None):
    env = {"device": {"name": "GPU"}, "host": {"hostname": host}}
    return {"v": 1, "type": "run", "run": run, "t": t, "env": env | ({"micro": micro} if micro else {})}


MICRO = {"ok": True, "why": None, "gpus": [{"index": 0, "copy_bw_bytes_per_s": 2e12,
                                            "matmul_bf16_flop_s": 5e14}]}


def write_edge_logs(folder: Path) -> None:
    """Two runs (one superseding part of the other), two backends of one model, int medians,
    OOM rows, raw samples (bootstrap), a crossing, a batch that is None, tiny energies; the second
    run's header holds micro-benchmarks, and a catalog model gets floors in it."""
    lines = [header("r1", "2026-11-01T00:00:00+00:00"), header("r2", "2026-11-02T00:00:00+00:00", micro=MICRO)]
    for run in ("r1", "r2"):
        for model in ("base", "mamba", "zeta"):
            for ctx in (1024, 2048, 4096, 8192):
                rec = case(run, model, ctx)
                if model == "zeta":
                    rec.update(backend="vllm", key=f"zeta|{ctx}|vllm", energy={
                        "prefill_j": 3e-05, "decode_j_per_token": 1e-7})
                if model == "mamba" and ctx == 2048:
                    rec["prefill_ms"] = stats(7, n=5, p10=6, p90=8, stdev=1)  # int median
                if ctx == 8192 and model == "zeta":
                    rec.update(status="oom", reason="OOM, tried | 2 GiB", prefill_ms=None,
                               tpot_ms=None, mem=None)
                if ctx == 4096:
                    rec["raw"] = {"prefill_ms": [1.0 + i / 10 for i in range(7)],
                                  "tpot_ms": [20.0, 21.0, 19.5]}
                if run == "r2" and ctx == 1024:
                    continue
                lines.append(rec)
    lines.append(case("r2", "mamba", 1024, batch=None, key="mamba|nobatch"))
    lines.append(case("r2", "base", 1024, backend="sglang", key="base|sglang"))
    lines += [case("r2", "tiny-mamba", ctx, key=f"tiny|{ctx}") for ctx in (1024, 2048)]
    lines.append(case("r2", "tiny-mamba", 512, key="tiny|512|fp32", dtype="float32"))
    (folder / "a.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def reference_cases(logs, baseline):
    """The cases table built row by row (the plain definition of what the columns give)."""
    rows, _ = latest_cases(logs)
    labels = series_labels(rows)
    base = {}
    for r in rows:
        if r["model"] == baseline and r["status"] == "ok":
            k = (r["device"], setting_of(r), r["ctx"])
            base.setdefault(k + (r["backend"],), r)
            base.setdefault(k, r)
    out, optional = [], set()  # the flags and spread columns: left out where empty in every row
    for r in sorted(rows, key=lambda r: (r["device"], setting_of(r), labels[id(r)], r["ctx"])):
        ok = r["status"] == "ok"
        line = [r["device"], labels[id(r)]] + ([r["source"]] if len({x["source"] for x in rows}) > 1
                                               else [])
        line += [r["backend"], setting_of(r), r["ctx"], r["status"]]
        optional.add(len(line))
        line.append(("H" if r["host_bound"] is True else "") + ("U" if r["unstable"] is True else "") or None)
        for m, v in zip(METRICS, metric_values(r) if ok else [None] * len(METRICS)):
            line.append(v)
            if m in RATIO_METRICS:  # each timed metric followed by its p10-p90 spread
                optional.add(len(line))
                st = r[m] if ok and isinstance(r[m], dict) else {}
                lo, hi = st.get("p10"), st.get("p90")
                line.append(f"{lo:.4g}-{hi:.4g}" if isinstance(lo, (int, float)) and isinstance(hi, (int, float))
                            else None)
        fl = floors.case_floors(r, logs.runs.get(r["run"]))
        line += [fl[k] for k in floors.FLOOR_COLUMNS]
        k = (r["device"], setting_of(r), r["ctx"])
        b = (base.get(k + (r["backend"],)) or base.get(k)) if ok else None
        for m in RATIO_METRICS:
            raw = m.replace("_ms", "_raw_ms")
            line.append(ratio_ci(r[m], b[m], r[raw], b[raw]) if b is not None and b is not r
                        else None)
        out.append(line + [r["reason"]])
    empty = {i for i in optional if all(line[i] is None for line in out)}
    return [[v for i, v in enumerate(line) if i not in empty] for line in out]


def same_cell(a, b):
    if isinstance(a, RatioCI) or isinstance(b, RatioCI):
        return (a is None) == (b is None) and (a is None or (
            a.method == b.method and a.ratio == pytest.approx(b.ratio, rel=1e-12)
            and (a.lo is None) == (b.lo is None)
            and (a.lo is None or (a.lo, a.hi) == pytest.approx((b.lo, b.hi), rel=1e-12))))
    return type(a) is type(b) and (a == b or (a != a and b != b))


@pytest.mark.parametrize("foreign", [False, True])
def test_cases_columns_match_the_row_by_row_table(tmp_path, foreign):
    write_edge_logs(tmp_path)
    paths = [tmp_path] + ([FOREIGN] if foreign else [])
    logs = load(paths)
    cases = build_tables(logs, "base")[0]
    expect = reference_cases(load(paths), "base")
    assert cases.n_rows == len(expect) and len(cases.rows[0]) == len(expect[0])
    for got, want in zip(cases.rows, expect):
        assert all(same_cell(a, b) for a, b in zip(got, want)), (got, want)
    assert any(isinstance(c, RatioCI) and c.method == "bootstrap" for row in cases.rows for c in row)
    x = [c.name for c in cases.columns].index("tpot_x_floor")
    assert sum(row[x] is not None for row in cases.rows) == 3  # the catalog model's rows of run r2


def test_crossover_table_found_and_candidate_search_batched_as_per_group(tmp_path):
    write_edge_logs(tmp_path)
    tables = {t.name: t for t in build_tables(load([tmp_path]))}
    found = {(r[2], r[3], r[4]) for r in tables["crossover"].rows}
    assert ("prefill_ms", "base [hf]", "mamba") in found
    rng = np.random.default_rng(3)
    groups, items_of = [], []
    series, ctx, values = [], [], []
    for _group in range(7):
        items = []
        for _ in range(rng.integers(3, 30)):
            label, c = f"m{rng.integers(0, 5)}", int(2 ** rng.integers(8, 13))
            vals = tuple(float(x) if x > 0.1 else None for x in rng.random(3))
            items.append((label, c, vals))
        at = []
        for label, c, vals in items:
            at.append(len(series))
            series.append(int(label[1:])), ctx.append(c), values.append(vals)
        groups.append(np.array(at)), items_of.append(items)
    codes = sorted(set(ctx))
    batched = candidate_pairs_coded(groups, np.array(series), np.array([codes.index(c) for c in ctx]),
                                    np.array(values, dtype=float), chunk_cells=500)
    for items, (n_pairs, cand, s_codes, c_codes, grid) in zip(items_of, batched):
        one = candidate_pairs(items, [0, 1, 2])
        assert n_pairs == one[0] and [tuple(map(int, x)) for x in cand] == [
            tuple(map(int, x)) for x in one[1]]
        assert [f"m{i}" for i in s_codes] == one[2] and [codes[i] for i in c_codes] == one[3]
        assert np.array_equal(grid, one[4], equal_nan=True)


def test_orjson_refused_lines_read_as_the_stdlib_reads_them(tmp_path, monkeypatch):
    pytest.importorskip("orjson")
    good = json.dumps(case("r1", "a", 1024))

    def variant(key: str, old: str, new: str) -> str:
        assert old in good
        return good.replace(old, new).replace('"key": "a', f'"key": "{key}')

    text = "\n".join([
        json.dumps(header("r1", "2026-11-01")), good,
        variant("nan", '"prefill_j": 1.5', '"prefill_j": NaN'),
        variant("big", '"n": 64', '"n": 123456789012345678901234567890'),
        variant("sur", '"reason": null', '"reason": "\\ud800 lone"'),
        variant("inf", '"peak_allocated_bytes": 1074765824', '"peak_allocated_bytes": 1e400'),
    ]) + "\n"

    def read(content: str, fast: bool):
        (tmp_path / "x.jsonl").write_text(content)
        if not fast:
            monkeypatch.setattr(logfile, "_fast_loads", None)
        reader = logfile.FileReader("x")
        reader.read(tmp_path / "x.jsonl")
        monkeypatch.undo()
        return json.dumps([reader.cases, [str(p) for p in reader.problems]], sort_keys=True,
                          default=str)

    # orjson refuses: the stdlib decides
    assert logfile._fast_objects(text.encode(), text.count("\n")) is None
    assert read(text, True) == read(text, False)
    assert len(json.loads(read(text, True))[0]) == 5
    clean = "\n".join([json.dumps(header("r1", "t")), good, good.replace('|1024', '|x')]) + "\n"
    assert logfile._fast_objects(clean.encode(), clean.count("\n")) is not None
    assert read(clean, True) == read(clean, False)
    # Blank lines, CRLF, a bad line and a cut last line take the careful path, numbered alike.
    messy = "\r\n".join([good, "", "  ", good.replace('|1024', '|y'), "{bad", good[:40]])
    assert read(messy, True) == read(messy, False)
    assert "x:6: truncated last line" in read(messy, True)


def test_number_texts_are_what_json_dumps_writes():
    values = [0.0, -0.0, 1.5, 1e-05, 3e-05, 1e-07, 5e-324, 0.0001, 1e16, 1.5e300, 2 ** 63 - 1,
              2 ** 64, 7, True, False, None, 123456.789, 1 / 3]
    for chunk in (values, [v for v in values if not isinstance(v, int) or v < 2 ** 63],
                  [1.5, 2.25, None], [1, 2, 3]):
        want = json.dumps(chunk, separators=(",", ":"))[1:-1].split(",")
        assert render_data._json_column(list(chunk)) == want
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            render_data._json_column([1.0, bad])


def edge_table(rows: int, data: bool) -> Table:
    cis = [RatioCI(1.25, 1.1, 1.4, "normal-approx"), RatioCI(0.5, None, None, None),
           RatioCI(1.01, 0.9, 1.2, "bootstrap"), None]
    strings = ["a,b", 'say "hi"', "line\nbreak", "pipe | x", "ü-é", "", None, "plain"]
    numbers = [1.5, 3e-05, 1e-07, None, 12345678901234567890, 7, 0.1, 2.5e16]
    cols = [Column("name"), Column("ctx", "d"), Column("value", ".4g"), Column("ok"),
            Column("share", "pct"), Column("ratio", "ratio")]
    cells = [[strings[i % 8], 1024 * (i % 5), numbers[i % 8], [True, False, None][i % 3],
              (i % 7) / 7, cis[i % 4]] for i in range(rows)]
    if data:
        return Table("t", "T", cols, notes=["n1"], data=[list(c) for c in zip(*cells)])
    return Table("t", "T", cols, cells, ["n1"])


def reference_csv(tables):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for i, t in enumerate(tables):
        if len(tables) > 1:
            buf.write(("\n" if i else "") + f"# table: {t.name}\n")
        w.writerow(render_data._csv_header(t))
        for row in t.rows:
            out = []
            for c, v in zip(t.columns, row):
                out += ([v.ratio, v.lo, v.hi, v.within_spread] if v is not None else [None] * 4) \
                    if c.fmt == "ratio" else [v]
            w.writerow(out)
    return buf.getvalue()


@pytest.mark.parametrize("data", [False, True])
def test_csv_json_markdown_text_in_blocks_match_the_plain_writers(monkeypatch, data):
    whole = {"csv": render.render_csv, "json": render.render_json, "md": render.render_markdown,
             "text": render.render_text}
    tables = [edge_table(2500, data), edge_table(3, False)]
    first = {k: f([edge_table(2500, data), edge_table(3, False)]) for k, f in whole.items()}
    assert first["csv"] == reference_csv(tables)
    assert first["json"] == json.dumps({"tables": render.tables_as_json(tables)},
                                       separators=(",", ":"), allow_nan=False) + "\n"
    monkeypatch.setattr(render_data, "BLOCK_ROWS", 7)
    monkeypatch.setattr(render, "BLOCK_ROWS", 7)
    for k, f in whole.items():
        assert f([edge_table(2500, data), edge_table(3, False)]) == first[k], k
    assert "pipe \\| x" in first["md"] and '"a,b"' in first["csv"]


def test_table_from_columns_gives_rows_once_and_then_keeps_them():
    t = Table("t", "T", [Column("a"), Column("b", "d")], data=[["x", "y"], [1, 2]])
    assert t.n_rows == 2 and t.row_length() == 2 and t.column_data() == [["x", "y"], [1, 2]]
    rows = t.rows
    assert rows == [["x", 1], ["y", 2]] and t.rows is rows
    rows.append(["z", 3])
    assert t.n_rows == 3 and list(t.column_data()[0]) == ["x", "y", "z"]
    assert Table("t", "T", [Column("a")], []).row_length() is None


def test_stats_columns_match_the_per_object_helper():
    objs = [stats(10.0), None, {}, stats(7, p10=6, p90=8, stdev=1), {"median": 5.0, "n": 3},
            {"median": 5.0, "stdev": 0.5, "n": 10}, {"median": -1.0, "n": 5}, stats(3.0, n=1),
            {"median": 4.0, "p10": 5.0, "p90": 3.0, "stdev": 0.2, "n": 9}]
    for column in (objs, [o for o in objs if o and len(o) == 5 and type(o["median"]) is float]):
        med, se = median_rel_se_columns(column)
        for o, m, s in zip(column, med, se):
            a, e = median_and_rel_se(o)
            assert (m if m == m else None) == a
            assert (s if s == s else None) == (pytest.approx(e, rel=1e-15) if e else e)
    assert stats_fields([stats(1.0), None])[0] == (1.0, None)
    assert stats_fields([1.0]) is None and math.isnan(median_rel_se_columns([None])[0][0])
