"""Fuzz of the readers: random and mutated lines never crash validate, compare or report.

Real lines (bench/results logs, the foreign fixtures) and the test helpers' lines are mutated by
hypothesis: a field set to a hostile value (NaN / Infinity / 1e400 tokens, huge or negative
numbers, wrong types, nesting 5000 deep, control characters, rich markup, `$` math), a field
removed, the line cut short or made of junk bytes. Each example is a log file; the asserts:
- no exception from `validate`, from `compare` in every format (table, md, csv, json) with every
  --table, from `report`;
- every line is accounted for: used, or named by `validate` as `file:line` (skipped);
- what is printed holds no control character from the logs, JSON output is strict JSON.
Examples are derandomized (the same every run) and the whole file runs in under a minute; for a
longer hunt with fresh random examples, set EDGEBENCH_FUZZ_SCALE=N (N times as many examples).
"""
from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgebench.commands import compare, report, validate
from edgebench.logs.loader import load

ROOT = Path(__file__).resolve().parents[1]
FOREIGN = Path(__file__).parent / "fixtures" / "foreign"
SCALE = int(os.environ.get("EDGEBENCH_FUZZ_SCALE", "1"))
SETTINGS = dict(deadline=None, database=None, derandomize=SCALE == 1,
                suppress_health_check=list(HealthCheck))


def _seed_lines() -> list[dict]:
    """A few real lines of each record type, plus hand-made ones covering every field read."""
    found: dict[str, list[dict]] = {}
    for path in sorted((ROOT / "bench" / "results").glob("*/logs/*.jsonl")):
        for line in path.read_text(errors="replace").splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            kind = obj.get("type") if isinstance(obj, dict) else None
            if kind in ("case", "maxctx", "ops") and len(found.setdefault(kind, [])) < 6:
                found[kind].append(obj)
    made = [
        {"v": 1, "type": "case", "run": "r1", "model": "m-a", "family": "hybrid", "ctx": 2048,
         "gen": 16, "batch": 2, "decode_mode": "graph", "status": "ok", "device": "GPU",
         "prefill_ms": {"median": 10.0, "p10": 9.0, "p90": 11.0, "stdev": 0.5, "n": 5},
         "tpot_ms": {"median": 2.0, "p10": 1.9, "p90": 2.2, "stdev": 0.1, "n": 16},
         "mem": {"peak_allocated_bytes": 2 ** 30, "peak_reserved_bytes": 2 ** 31,
                 "predicted_bytes": 2 ** 30},
         "energy": {"prefill_j": 1.0, "decode_j_per_token": 0.1, "energy_why": None},
         "raw": {"prefill_ms": [9.0, 10.0, 11.0], "tpot_ms": [1.9, 2.0, 2.2]},
         "work": {"decode_step_bytes": 2 ** 30, "prefill_flops": 10 ** 12}},
        {"v": 1, "type": "case", "run": "r1", "model": "m-c", "family": "ssm", "ctx": 2048,
         "gen": 16, "batch": 2, "decode_mode": "graph", "status": "ok", "device": "GPU",
         "prefill_ms": {"median": 5.0, "p10": 4.0, "p90": 6.0, "stdev": 0.5, "n": 5},
         "tpot_ms": {"median": 3.0, "n": 1}, "raw": {"prefill_ms": [4.0, 5.0, 6.0]}},
        {"v": 1, "type": "case", "run": "r1", "model": "m-b", "ctx": 1024, "status": "oom",
         "reason": "CUDA out of memory"},
        {"v": 1, "type": "maxctx", "run": "r1", "model": "m-a", "mode": "last", "device": "GPU",
         "max_ok_ctx": 4096, "min_fail_ctx": 8192, "probes": 3, "resolution": 1024,
         "wall_s": 1.5, "budget_bytes": 2 ** 33, "trail": [[4096, "ok"], [8192, "oom"]],
         "mem_at_max_ok": {"peak_allocated_bytes": 2 ** 32}},
        {"v": 1, "type": "ops", "run": "r1", "key": "m-a|x", "phase": "decode",
         "shares": {"gemm": 0.6, "other": 0.4}, "kernel_ms": 1.0, "wall_ms": 2.0,
         "decode_mode": "eager"},
    ]
    return [x for kind in ("case", "maxctx", "ops") for x in found.get(kind, [])] + made


HEADER = {"v": 1, "type": "run", "run": "r1", "t": "2026-11-22T10:00:00+00:00",
          "env": {"device": {"name": "GPU"}, "host": {"hostname": "h"}}}
SEEDS = _seed_lines() + [dict(HEADER, run="r2")]
# Raw JSON text put in place of a value (not what json.dumps would write).
TOKENS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e999", "1e-400", "5e-324", "1" + "0" * 400,
          "-" + "9" * 30, "18446744073709551616", "[" * 5000 + "]" * 5000,
          "[" * 900 + "]" * 900, '"\\ud800"', '"\\u001b[2J\\u001b[31mred"', '"a\\u0000b"',
          '"' + "x" * 200_000 + '"', "[[1]]", '[[1,"ok"],[2]]', '{"median":"fast"}', "{}", "[]"]
TEXTS = ["[red]x[/]", "[/]", "[bold", "$\\frac$", "a$b", "|pipe|", "\x1b]0;title\x07",
         "\u202eevil", "line\nbreak\r", ":smile:", "", " ", "ok", "oom", "prefill", "decode",
         "transformer", "x" * 3000]
# The fields the tables read, tried on every record type.
FIELDS = ["run", "model", "ctx", "gen", "batch", "status", "family", "backend", "dtype",
          "decode_mode", "logits", "attn", "reason", "device", "key", "v", "type", "prefill_ms",
          "tpot_ms", "mem", "energy", "raw", "max_ok_ctx", "min_fail_ctx", "mode", "limited_by",
          "trail", "resolution", "probes", "wall_s", "budget_bytes", "mem_at_max_ok", "phase",
          "shares", "kernel_ms", "wall_ms", "t", "median", "p10", "p90", "stdev", "n",
          "peak_allocated_bytes", "prefill_j", "decode_j_per_token", "prefill_ms.0", "work",
          "decode_step_bytes", "prefill_flops"]

values = st.one_of(
    st.sampled_from(TOKENS).map(lambda t: ("token", t)),
    st.sampled_from(TEXTS).map(lambda t: ("value", t)),
    st.text(st.characters(codec="utf-8"), max_size=12).map(lambda t: ("value", t)),
    st.integers(min_value=-(2 ** 70), max_value=2 ** 70).map(lambda i: ("value", i)),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: ("value", f)),
    st.sampled_from([None, True, False, 0, -1, 1, 0.0, 1e-7, 1e308, 1e-6, 1e12, 1.0000001e12,
                     2 ** 40, 2 ** 40 + 1, 2 ** 53, 2 ** 60, 1e15, 1e9, 2 ** 20, 1e-300]
                    ).map(lambda v: ("value", v)),
    st.lists(st.integers(-5, 5), max_size=3).map(lambda v: ("value", v)),
)


def _paths(obj, prefix=()):
    """Every path into the object's dicts and lists."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


@st.composite
def mutated_line(draw) -> str:
    obj = json.loads(json.dumps(draw(st.sampled_from(SEEDS))))
    tokens: dict[str, str] = {}
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(obj))
        action = draw(st.sampled_from(["set", "set", "set", "add", "delete"]))
        if action == "add" or not paths:
            where = obj
            key = draw(st.sampled_from(FIELDS))
        else:
            path = draw(st.sampled_from(paths))
            where = obj
            for k in path[:-1]:
                where = where[k]
            key = path[-1]
        if action == "delete" and paths:
            del where[key]
            continue
        kind, value = draw(values)
        if kind == "token":
            mark = f"@@tok{len(tokens)}@@"
            tokens[mark] = value
            value = mark
        if isinstance(where, dict) or (isinstance(where, list) and key < len(where)):
            where[key] = value
    text = json.dumps(obj)
    for mark, token in tokens.items():
        text = text.replace(f'"{mark}"', token)
    cut = draw(st.sampled_from(["none"] * 6 + ["truncate", "junk", "blank", "utf8"]))
    if cut == "truncate":
        text = text[:draw(st.integers(0, max(0, len(text) - 1)))]
    elif cut == "junk":
        text = draw(st.sampled_from(["{", "}", "[1,2]", '"s"', "1,2", "null", "{}{}", "\x1b[2J"]))
    elif cut == "blank":
        text = "   "
    return text


def _write(path: Path, lines: list[str], gz: bool, utf8_junk: bool = False) -> Path:
    data = ("\n".join(lines) + "\n").encode("utf-8", errors="surrogatepass")
    if utf8_junk:
        data += b"\xff\xfe{\"v\":1}\n"
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def _run(module, argv: list) -> int:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return module.main(parser.parse_args([str(a) for a in argv]))


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\ud800-\udfff]")


def _check_printed(text: str, where: str) -> None:
    found = _CONTROL.search(text)
    assert not found, f"{where} printed a raw control character {found.group()!r}"


def _check_file(path: Path, n_lines: int, capsys) -> None:
    logs = load([path])
    name = str(path)
    skipped = [p.line for p in logs.problems if p.skipped and p.line is not None]
    whole_file = any(p.skipped and p.line is None or "newer edgebench" in p.reason
                     for p in logs.problems)
    assert len(skipped) == len(set(skipped)), "a line skipped twice"
    if not whole_file:  # every non-blank line used or named
        assert logs.lines_read[name] + len(skipped) == n_lines
    assert _run(validate, [path]) == (1 if logs.problems else 0)
    out = capsys.readouterr()
    _check_printed(out.out + out.err, "validate")
    for line in skipped:
        assert f"{name}:{line}: " in out.out
    for fmt in ("table", "md", "csv", "json"):
        for table in ("all", "cases", "crossover", "maxctx", "ops"):
            extra = ["--baseline", "m-a"] if any(r["model"] == "m-a" for r in logs.cases) \
                else []
            assert _run(compare, [path, "--format", fmt, "--table", table] + extra) == 0
            out = capsys.readouterr()
            _check_printed(out.err, f"compare --format {fmt} (stderr)")
            assert ("no measured cases" in out.out + out.err) == (
                not logs.cases and table in ("all", "cases", "crossover"))
            if fmt == "json":
                json.loads(out.out, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
            elif fmt == "csv":
                limit = csv.field_size_limit(2**31 - 1)  # a fuzzed model name can pass csv's 128 KiB
                try:
                    list(csv.reader(io.StringIO(out.out)))
                finally:
                    csv.field_size_limit(limit)
                _check_printed(out.out.replace("\r", ""), "compare --format csv")
            else:
                _check_printed(out.out, f"compare --format {fmt}")


@settings(max_examples=150 * SCALE, **SETTINGS)
@given(lines=st.lists(mutated_line(), min_size=1, max_size=10), gz=st.booleans(),
       clean=st.sampled_from(SEEDS), junk=st.booleans())
def test_mutated_lines_never_crash_and_every_bad_line_is_named(tmp_path_factory, capsys, lines,
                                                               gz, clean, junk):
    folder = tmp_path_factory.mktemp("fuzz")
    body = [json.dumps(HEADER), json.dumps(clean)] + lines
    path = _write(folder / "f.jsonl", body, gz, utf8_junk=junk)
    n_lines = sum(1 for x in body if x.strip()) + junk
    _check_file(path, n_lines, capsys)


@settings(max_examples=4 * SCALE, **SETTINGS)
@given(lines=st.lists(mutated_line(), min_size=20, max_size=40))
def test_report_draws_whatever_validate_reads(tmp_path_factory, capsys, lines):
    folder = tmp_path_factory.mktemp("report")
    (folder / "logs").mkdir()
    body = [json.dumps(HEADER)] + [json.dumps(x) for x in SEEDS] + lines
    _write(folder / "logs" / "a.jsonl", body, gz=False)
    assert _run(report, [folder / "logs", "-o", folder / "out"]) == 0
    out = capsys.readouterr()
    _check_printed(out.out + out.err, "report")
    assert (folder / "out" / "report.html").stat().st_size > 0


CSV_CELLS = ["inf", "-inf", "nan", "1e999", "-5", "0", "1e30", "x" * 300_000, "\x1b[31m", '"',
             "1" * 5000, "", "3.5", "gen_m_cuda_" + "9" * 40 + "_1"]


@settings(max_examples=60 * SCALE, **SETTINGS)
@given(which=st.sampled_from(["ssm_char_generation.csv", "ssm_char_memory.csv"]),
       edits=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 12),
                                st.sampled_from(CSV_CELLS)), min_size=1, max_size=4))
def test_foreign_csv_cells_never_crash_the_importer(tmp_path_factory, capsys, which, edits):
    rows = list(csv.reader(io.StringIO((FOREIGN / which).read_text())))
    for r, c, cell in edits:
        row = rows[r % len(rows)]
        row[c % len(row)] = cell
    folder = tmp_path_factory.mktemp("csv")
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path = folder / which
    path.write_text(buf.getvalue())
    load([path])
    assert _run(validate, [path]) in (0, 1)
    for fmt in ("table", "json"):
        assert _run(compare, [path, "--format", fmt]) == 0
    out = capsys.readouterr()
    _check_printed(out.err, "compare on a CSV")
