"""The log reader and validator: bad input is reported as file:line and never stops the rest."""
from __future__ import annotations

import argparse
import gzip
import json

import pytest

from edgebench.commands import validate
from edgebench.errors import UserError
from edgebench.logs.loader import ReadLimits, load

HEADER = {"v": 1, "type": "run", "run": "r1", "t": "2026-11-22T16:00:00+00:00", "edgebench": "0.1.0",
          "env": {"device": {"name": "NVIDIA H100 80GB HBM3"}, "host": {"hostname": "hostA"}},
          "spec": {}}


def case(run: str = "r1", model: str = "qwen2.5-0.5b", ctx: int = 4096, **extra) -> dict:
    rec = {"v": 1, "type": "case", "run": run, "model": model, "family": "transformer",
           "backend": "hf", "dtype": "bfloat16", "ctx": ctx, "gen": 128, "batch": 1,
           "decode_mode": "graph", "logits": "last", "attn": "sdpa", "status": "ok", "reason": None,
           "device": "NVIDIA H100 80GB HBM3",
           "key": f"{model}|hf|bfloat16|ctx={ctx}|gen=128|b=1|graph|last|sdpa",
           "prefill_ms": {"median": 31.2, "p10": 31.0, "p90": 31.5, "stdev": 0.2, "n": 5},
           "tpot_ms": {"median": 4.1, "p10": 4.0, "p90": 4.3, "stdev": 0.1, "n": 640},
           "mem": {"peak_allocated_bytes": 123, "peak_reserved_bytes": 456, "predicted_bytes": 120},
           "energy": {"prefill_j": 1.2, "decode_j_per_token": 0.05, "energy_why": None}}
    rec.update(extra)
    return rec


def write(path, records, tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


def run_validate(*paths) -> int:
    parser = argparse.ArgumentParser()
    validate.add_arguments(parser)
    return validate.main(parser.parse_args([str(p) for p in paths]))


def test_reads_a_clean_log_with_device_and_host(tmp_path):
    write(tmp_path / "a.jsonl", [HEADER, case(ctx=1024), case(ctx=4096)])
    logs = load([tmp_path])
    assert logs.problems == []
    assert [r["ctx"] for r in logs.cases] == [1024, 4096]
    assert logs.cases[0]["device"] == "NVIDIA H100 80GB HBM3 @ hostA"
    assert logs.cases[0]["prefill_ms"]["median"] == 31.2
    assert logs.cases[0]["peak_allocated_bytes"] == 123
    assert run_validate(tmp_path) == 0


def test_same_gpu_on_two_hosts_is_two_devices(tmp_path):
    other = dict(HEADER, run="r2", env={"device": {"name": "NVIDIA H100 80GB HBM3"},
                                        "host": {"hostname": "hostB"}})
    write(tmp_path / "a.jsonl", [HEADER, case()])
    write(tmp_path / "b.jsonl", [other, case(run="r2")])
    assert {r["device"] for r in load([tmp_path]).cases} == {
        "NVIDIA H100 80GB HBM3 @ hostA", "NVIDIA H100 80GB HBM3 @ hostB"}


def test_empty_folder_and_missing_path_are_clear(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="folder holds no logs"):
        load([tmp_path / "empty"])
    with pytest.raises(UserError, match="no such file or folder"):
        load([tmp_path / "nope"])
    write(tmp_path / "a.jsonl", [HEADER, case()])
    logs = load([tmp_path / "empty", tmp_path / "a.jsonl"])
    assert len(logs.cases) == 1 and any("folder holds no logs" in n for n in logs.notes)


def test_newer_schema_file_is_skipped_whole_with_upgrade_message(tmp_path, capsys):
    write(tmp_path / "new.jsonl", [dict(HEADER, v=3), case(v=3)])
    write(tmp_path / "old.jsonl", [HEADER, case()])
    logs = load([tmp_path])
    assert len(logs.cases) == 1 and logs.cases[0]["file"].endswith("old.jsonl")
    (problem,) = logs.problems
    assert problem.file.endswith("new.jsonl") and problem.line == 1
    assert "newer edgebench (schema v3" in problem.reason
    assert "pip install -U edgebench" in problem.reason
    assert run_validate(tmp_path) == 1
    assert "new.jsonl:1: written by a newer edgebench" in capsys.readouterr().out


def test_duplicate_runs_are_read_once_and_last_case_line_wins(tmp_path):
    records = [HEADER, case(ctx=1024), case(ctx=4096)]
    write(tmp_path / "a.jsonl", records)
    write(tmp_path / "copy_of_a.jsonl", records)
    newer = case(ctx=1024, prefill_ms={"median": 99.0, "p10": 98, "p90": 100, "stdev": 1, "n": 5})
    write(tmp_path / "resumed.jsonl", [newer])
    logs = load([tmp_path])
    assert len(logs.runs) == 1 and len(logs.cases) == 2
    by_ctx = {r["ctx"]: r for r in logs.cases}
    assert by_ctx[1024]["prefill_ms"]["median"] == 99.0
    assert any("run r1 appears in" in n for n in logs.notes)
    assert logs.problems == []


def test_truncated_last_line_and_corrupt_lines_are_reported_by_line(tmp_path):
    text = (json.dumps(HEADER) + "\n" + json.dumps(case(ctx=1024)) + "\n" + "{not json\n"
            + json.dumps({"hello": "world"}) + "\n"
            + json.dumps({"v": 1, "type": "banana", "run": "r1"}) + "\n"
            + json.dumps(case(ctx=2048, status="exploded")) + "\n"
            + json.dumps(case(ctx=4096))[:70])
    (tmp_path / "a.jsonl").write_text(text)
    logs = load([tmp_path / "a.jsonl"])
    assert [r["ctx"] for r in logs.cases] == [1024]
    reasons = {p.line: p.reason for p in logs.problems}
    assert reasons[3].startswith("not JSON")
    assert reasons[4].startswith("foreign line")
    assert "unknown record type 'banana'" in reasons[5]
    assert "status 'exploded'" in reasons[6]
    assert reasons[7].startswith("truncated last line")
    assert str(logs.problems[-1]).endswith("a.jsonl:7: truncated last line (the writer stopped "
                                           "mid-line)")


def test_unknown_units_are_reported_and_the_rest_is_used(tmp_path):
    bad = case(ctx=1024, prefill_us={"median": 31200.0}, mem={"peak_allocated_mb": 512.0,
                                                              "peak_reserved_bytes": 600})
    write(tmp_path / "a.jsonl", [HEADER, bad, case(ctx=2048, tpot_ms=4.1)])
    logs = load([tmp_path])
    assert len(logs.cases) == 2
    first, second = sorted(logs.cases, key=lambda r: r["ctx"])
    assert first["prefill_ms"]["median"] == 31.2 and first["peak_reserved_bytes"] == 600
    assert first["peak_allocated_bytes"] is None
    assert second["tpot_ms"] is None and second["prefill_ms"]["median"] == 31.2
    text = "\n".join(str(p) for p in logs.problems)
    assert "unknown unit in field 'prefill_us'" in text and "'prefill_ms'" in text
    assert "unknown unit in field 'mem.peak_allocated_mb'" in text
    assert "'tpot_ms' must be a Stats object" in text
    assert all(not p.skipped for p in logs.problems)


def test_gzip_logs_and_a_cut_gzip_stream(tmp_path):
    body = "".join(json.dumps(r) + "\n" for r in [HEADER, case(ctx=1024), case(ctx=2048)])
    with gzip.open(tmp_path / "a.jsonl.gz", "wt") as fh:
        fh.write(body)
    assert [r["ctx"] for r in load([tmp_path]).cases] == [1024, 2048]
    blob = (tmp_path / "a.jsonl.gz").read_bytes()
    (tmp_path / "a.jsonl.gz").write_bytes(blob[: len(blob) - 12])
    logs = load([tmp_path])
    assert any("gzip stream damaged or cut short" in p.reason for p in logs.problems)


def test_absent_optional_fields_are_none_not_crashes(tmp_path):
    minimal = {"v": 1, "type": "case", "run": "r9", "model": "m", "ctx": 512, "status": "oom",
               "reason": "CUDA out of memory"}
    write(tmp_path / "a.jsonl", [minimal])
    (row,) = load([tmp_path]).cases
    assert row["device"] == "unknown device" and row["prefill_ms"] is None
    assert row["gen"] is None and row["key"] == "m|ctx=512"
    assert row["batch"] == 1  # absent = the schema default (compact lines leave defaults out)


def test_validate_counts_per_file(tmp_path, capsys):
    write(tmp_path / "good.jsonl", [HEADER, case()])
    write(tmp_path / "bad.jsonl", [HEADER], tail="garbage\n")
    assert run_validate(tmp_path) == 1
    out = capsys.readouterr().out
    assert "bad.jsonl:2: not JSON" in out
    assert any(line.startswith(str(tmp_path / "good.jsonl")) and line.rstrip().endswith("0 problems")
               for line in out.splitlines())


def test_compact_case_lines_read_back_with_their_defaults_and_key(tmp_path):
    """Lines as the runner writes them (records.compact_case) read back like full lines."""
    from edgebench.logs import schema as records
    full = case(ctx=2048)
    full["key"] = records.case_key(full, full["device"])
    write(tmp_path / "a.jsonl", [HEADER, records.compact_case(full)])
    logs = load([tmp_path])
    assert logs.problems == []
    row = logs.cases[0]
    assert (row["backend"], row["dtype"], row["batch"], row["logits"], row["attn"]) == \
        ("hf", "bfloat16", 1, "last", "sdpa")
    assert row["key"] == full["key"]


def run_validate_args(*argv) -> int:
    parser = argparse.ArgumentParser()
    validate.add_arguments(parser)
    return validate.main(parser.parse_args([str(a) for a in argv]))


def test_deeply_nested_line_is_one_reported_line_not_a_recursion_error(tmp_path, capsys):
    text = (json.dumps(HEADER) + "\n" + "[" * 100_000 + "]" * 100_000 + "\n"
            + '{"v":1,"type":"case","x":' + "[" * 3000 + "]" * 3000 + "}\n"
            + json.dumps(case()) + "\n")
    (tmp_path / "a.jsonl").write_text(text)
    logs = load([tmp_path])
    assert len(logs.cases) == 1
    assert {p.line: p.reason for p in logs.problems} == {
        2: "not JSON (nested too deeply to read)", 3: "not JSON (nested too deeply to read)"}
    assert run_validate(tmp_path) == 1
    assert "a.jsonl:2: not JSON (nested too deeply" in capsys.readouterr().out


def test_non_finite_and_out_of_range_numbers_are_reported_per_line(tmp_path):
    good = json.dumps(case(ctx=1024))
    lines = [json.dumps(HEADER), good,
             good.replace('"prefill_j": 1.2', '"prefill_j": NaN'),           # 3: not JSON
             good.replace('"peak_allocated_bytes": 123', '"peak_allocated_bytes": 1e400'),
             good.replace('"n": 5', '"n": 1' + "0" * 400),                   # 5: past float range
             good.replace('"median": 31.2', '"median": 5e-324'),              # 6: 1000/x = inf
             good.replace('"ctx": 1024', '"ctx": 1125899906842624'),          # 7: ctx 2^50
             good.replace('"batch": 1', '"batch": 1000000000000000000000000'),  # 8
             good.replace('"prefill_j": 1.2', '"prefill_j": -3'),             # 9: negative J
             json.dumps(case(ctx=2048, raw={"prefill_ms": [0.0, 1.0], "tpot_ms": [1, "x"]}))]
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n")
    logs = load([tmp_path])
    by_line: dict[int, list[str]] = {}
    for p in logs.problems:
        by_line.setdefault(p.line, []).append(p.reason)
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert "NaN, Infinity or a number past the float range" in by_line[3][0]
    assert any("'prefill_ms' must be a Stats object" in r for r in by_line[5] + by_line[6])
    assert "past the largest token count" in by_line[7][0]
    assert "'batch' must be an integer from 1" in by_line[8][0]
    assert "'energy.prefill_j' must be a number from 0" in by_line[9][0]
    assert "'raw.prefill_ms' must be a list of times" in " ".join(by_line[10])
    kept = {r["ctx"]: r for r in logs.cases}
    assert 1125899906842624 not in kept and len(logs.cases) == 2  # one key per ctx: 1024, 2048
    for p in logs.problems:
        assert p.skipped == (p.line == 7)
    # Everything kept renders in strict JSON (no NaN / Infinity).
    from edgebench.report.render import render_json
    from edgebench.report.tables import build_tables
    json.loads(render_json(build_tables(logs, "qwen2.5-0.5b")),
               parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))


def test_wrong_types_in_less_common_fields_are_reported_not_crashes(tmp_path):
    header = dict(HEADER, t=["not", "a", "time"])
    maxctx = {"v": 1, "type": "maxctx", "run": "r1", "model": "m", "mode": ["x"],
              "max_ok_ctx": 4096, "min_fail_ctx": 8192, "trail": [[4096], "oom", 5],
              "probes": "many", "wall_s": float("inf"), "mem_at_max_ok": [1],
              "device": {"name": "x"}, "limited_by": 7}
    ops = {"v": 1, "type": "ops", "run": "r1", "key": ["unhashable"], "phase": "decode",
           "shares": {"gemm": 0.5}, "kernel_ms": "1", "wall_ms": -2.0, "decode_mode": {}}
    bad_shares = dict(ops, shares={"gemm": 1e300})
    write(tmp_path / "a.jsonl", [header, case(backend=5, gen="128", device=[1], decode_mode=2,
                                              reason={"a": 1}), maxctx, ops, bad_shares])
    logs = load([tmp_path])
    reasons = "\n".join(str(p) for p in logs.problems)
    for field in ("'backend' must be a string", "'gen' must be a token count",
                  "'device' must be a string", "'decode_mode' must be a string",
                  "'reason' must be a string", "run 't' must be an ISO time string",
                  "maxctx 'mode' must be a string", "maxctx 'trail' must be a list of",
                  "maxctx 'probes' must be an integer", "maxctx 'mem_at_max_ok' must be",
                  "maxctx 'device' must be a string", "maxctx 'limited_by' must be a string",
                  "ops 'key' must be a string", "ops 'kernel_ms' must be a time",
                  "ops 'wall_ms' must be a time", "ops 'decode_mode' must be a string",
                  "a.jsonl:5: ops record needs 'shares'"):
        assert field in reasons, field
    assert "a.jsonl:3: maxctx 'wall_s'" not in reasons  # json.dumps wrote Infinity: the parser
    assert "a.jsonl:3: NaN, Infinity" in reasons       # reads it as null and says so
    assert len(logs.cases) == 1 and len(logs.maxctx) == 1 and len(logs.ops) == 1
    from edgebench.report.render import render_csv, render_json, render_markdown, render_text
    from edgebench.report.tables import build_tables
    tables = build_tables(logs)
    assert {t.name for t in tables} >= {"cases", "maxctx", "ops"}
    for render in (render_csv, render_json, render_markdown, render_text):
        assert render(tables)


def test_a_line_over_the_line_cap_is_skipped_by_name_and_the_flag_reads_it(tmp_path, capsys):
    big = case(ctx=2048, raw={"prefill_ms": [31.2] * 5, "tpot_ms": [4.123456] * 300_000})
    write(tmp_path / "a.jsonl", [HEADER, case(ctx=1024), big, case(ctx=4096)])
    size = len(json.dumps(big))
    assert run_validate_args(tmp_path, "--max-line-bytes", "1MiB") == 1
    out = capsys.readouterr().out
    assert f"a.jsonl:3: line of {size:,} bytes, over the 1.00 MiB line limit: skipped; raise " \
           "the limit with --max-line-bytes to read it" in out
    assert "3 cases" not in out and "2 cases" in out
    assert run_validate_args(tmp_path, "--max-line-bytes", "8MiB") == 0
    assert "3 cases" in capsys.readouterr().out
    # Lines over the cap anywhere in a read (a small cap reads in larger blocks), numbered right.
    logs = load([tmp_path], ReadLimits(max_line_bytes=600))
    assert [p.line for p in logs.problems] == [2, 3, 4]  # each case line is over 600 bytes
    with pytest.raises(UserError, match="--max-line-bytes: cannot read memory size"):
        run_validate_args(tmp_path, "--max-line-bytes", "lots")


def test_a_file_past_the_log_cap_is_read_up_to_it_and_says_so(tmp_path):
    body = "".join(json.dumps(r) + "\n" for r in [HEADER] + [case(ctx=c) for c in range(1, 400)])
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(body.encode()))
    logs = load([tmp_path], ReadLimits(max_log_bytes=100_000))
    (p,) = logs.problems
    assert p.line is None and "more than 97.7 KiB (read after decompression)" in p.reason
    assert "raise the limit with --max-log-bytes" in p.reason
    assert 0 < len(logs.cases) < 399 and f"lines from {len(logs.cases) + 2} on" in p.reason
    assert len(load([tmp_path]).cases) == 399


@pytest.mark.parametrize("kind", ["one endless line", "one line repeated"])
def test_a_gzip_bomb_streams_in_bounded_memory(tmp_path, kind):
    """A .jsonl.gz of under 0.5 MB that inflates to ~100-200 MiB: one endless line (passed over
    without being held), or one case line repeated 80,000 times (one row kept, not 80,000). The
    old reader held the file, decoded, and a row per line: its memory grew by 340-950 MiB."""
    import subprocess
    import sys
    import zlib

    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [comp.compress((json.dumps(HEADER) + "\n").encode())]
    if kind == "one endless line":
        parts.append(comp.compress(b'{"v":1,"x":"'))
        parts += [comp.compress(b"a" * (1 << 20)) for _ in range(192)]
        parts.append(comp.compress(('"}\n' + json.dumps(case()) + "\n").encode()))
    else:
        parts += [comp.compress((json.dumps(case()) + "\n").encode() * 1000) for _ in range(80)]
    parts.append(comp.flush())
    (tmp_path / "bomb.jsonl.gz").write_bytes(b"".join(parts))
    code = ("import resource\nfrom edgebench.logs.loader import load\n"
            "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            f"logs = load([{str(tmp_path)!r}])\n"
            "grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base\n"
            "print(grew // 1024, len(logs.cases), [str(p) for p in logs.problems], logs.notes)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    grew_mib, cases, rest = out.split(" ", 2)
    assert int(grew_mib) < 80, f"RSS grew by {grew_mib} MiB"
    assert cases == "1"
    if kind == "one endless line":
        assert "bomb.jsonl.gz:2: line of 201,326,606 bytes, over the 4.00 MiB" in rest
    else:
        assert "79999 case lines repeated a (run, key) already read: the last kept" in rest
