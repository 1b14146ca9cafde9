"""The log reader and validator: bad input is reported as file:line and never stops the rest."""
from __future__ import annotations

import argparse
import gzip
import json

import pytest

from edgebench.commands import validate
from edgebench.errors import UserError
from edgebench.logs import load

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
    write(tmp_path / "new.jsonl", [dict(HEADER, v=2), case(v=2)])
    write(tmp_path / "old.jsonl", [HEADER, case()])
    logs = load([tmp_path])
    assert len(logs.cases) == 1 and logs.cases[0]["file"].endswith("old.jsonl")
    (problem,) = logs.problems
    assert problem.file.endswith("new.jsonl") and problem.line == 1
    assert "newer edgebench (schema v2" in problem.reason
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
    from edgebench import records
    full = case(ctx=2048)
    full["key"] = records.case_key(full, full["device"])
    write(tmp_path / "a.jsonl", [HEADER, records.compact_case(full)])
    logs = load([tmp_path])
    assert logs.problems == []
    row = logs.cases[0]
    assert (row["backend"], row["dtype"], row["batch"], row["logits"], row["attn"]) == \
        ("hf", "bfloat16", 1, "last", "sdpa")
    assert row["key"] == full["key"]
