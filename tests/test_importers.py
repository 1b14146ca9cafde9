"""Importers of foreign logs: SSM characterization CSVs and llama-bench JSON / JSONL."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgebench.logs.loader import load

FOREIGN = Path(__file__).parent / "fixtures" / "foreign"


def rows_by(logs, source):
    return {(r["model"], r["ctx"]): r for r in logs.cases if r["source"] == source}


def test_ssm_char_generation_csv_seconds_become_ms_and_repeats_a_median():
    logs = load([FOREIGN / "ssm_char_generation.csv"])
    rows = rows_by(logs, "ssm-char")
    assert set(rows) == {(m, c) for m in ("qwen25-instruct", "mamba2-780m")
                         for c in (256, 1024, 4096, 16384)}
    r = rows[("qwen25-instruct", 4096)]
    assert r["prefill_ms"]["median"] == pytest.approx(902.0)
    assert r["prefill_ms"]["n"] == 3 and len(r["prefill_raw_ms"]) == 3
    assert r["tpot_ms"]["median"] == pytest.approx(34.8)
    assert r["device"] == "NVIDIA Jetson Orin Nano" and r["gen"] == 128
    assert rows[("mamba2-780m", 256)]["family"] == "ssm"
    assert rows[("qwen25-instruct", 256)]["family"] == "transformer"
    assert logs.problems == []


def test_ssm_char_memory_csv_merges_into_timing_rows_of_the_same_folder(tmp_path):
    logs = load([FOREIGN / "ssm_char_generation.csv", FOREIGN / "ssm_char_memory.csv"])
    r = rows_by(logs, "ssm-char")[("mamba2-780m", 16384)]
    assert r["peak_allocated_bytes"] == pytest.approx(2060.1 * 2**20, rel=1e-3)
    assert r["tpot_ms"] is not None and len(logs.cases) == 8
    shutil.copy(FOREIGN / "ssm_char_memory.csv", tmp_path)
    alone = load([tmp_path])
    assert len(alone.cases) == 8 and {r["device"] for r in alone.cases} == {"unknown device"}


def test_model_and_context_parsed_from_the_name_and_unknown_columns_reported(tmp_path):
    (tmp_path / "gen.csv").write_text(
        "model_name,prefill_time_seconds,tpot_seconds,device,prefill_time_ms,gpu_temp_c\n"
        "gen_qwen25-instruct_cuda_256_1024,0.05,0.03,Orin,50,61\n"
        "gen_zamba2-1.2b_cuda_2048_1024,0.4,0.035,Orin,400,62\n"
        "gen_broken_cuda,0.4,0.035,Orin,400,62\n")
    logs = load([tmp_path])
    rows = rows_by(logs, "ssm-char")
    assert rows[("qwen25-instruct", 256)]["prefill_ms"]["median"] == pytest.approx(50.0)
    assert rows[("zamba2-1.2b", 2048)]["family"] == "hybrid"
    text = "\n".join(str(p) for p in logs.problems)
    assert "gen.csv:1: unknown column 'prefill_time_ms'" in text
    assert "unknown column 'gpu_temp_c'" in text
    assert "gen.csv:4: row without a model name or context length" in text


def test_unrecognised_csv_is_reported_not_fatal(tmp_path):
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    logs = load([tmp_path])
    assert logs.cases == [] and "CSV columns not recognised" in logs.problems[0].reason


def test_llama_bench_json_pp_is_prefill_tg_at_depth_is_tpot():
    logs = load([FOREIGN / "llama_bench.json"])
    rows = rows_by(logs, "llama-bench")
    pp = rows[("qwen2-1b", 2048)]
    assert pp["prefill_ms"]["median"] == pytest.approx(489.0 * (1 + 0.01 * 0.1), rel=1e-6)
    assert pp["prefill_ms"]["n"] == 5 and pp["dtype"] == "Q8_0"
    assert pp["backend"] == "llama.cpp/CUDA" and pp["device"] == "Orin"
    # tg64 @ d2048: five samples of 64 tokens, TPOT = sample / 64
    assert pp["tpot_ms"]["median"] == pytest.approx(1905.0 * (1 + 0.004 * 0.1) / 64, rel=1e-6)
    assert rows[("qwen2-1b", 0)]["prefill_ms"] is None
    reasons = [p.reason for p in logs.problems]
    assert any("pg512,64" in r for r in reasons) and any("pp512 @ d2048" in r for r in reasons)
    assert len({r["run"] for r in logs.cases}) == 1


def test_llama_bench_jsonl_lines_inside_a_jsonl_and_unknown_units(tmp_path):
    objs = json.loads((FOREIGN / "llama_bench.json").read_text())
    bad = dict(objs[0], n_prompt=1024)
    del bad["avg_ns"], bad["samples_ns"]
    bad["avg_us"] = 200000.0
    text = "".join(json.dumps(o) + "\n" for o in objs[:3] + [bad])
    (tmp_path / "llama.jsonl").write_text(text)
    logs = load([tmp_path])
    assert sorted(r["ctx"] for r in logs.cases) == [512, 2048, 8192]
    (p,) = logs.problems
    assert p.line == 4 and "unknown unit 'avg_us'" in p.reason


def test_json_that_is_not_llama_bench(tmp_path):
    (tmp_path / "x.json").write_text('{"hello": 1}')
    (tmp_path / "y.json").write_text('[{"hello": 1}')
    logs = load([tmp_path])
    reasons = sorted(p.reason for p in logs.problems)
    assert "not a recognised log" in reasons[0] and reasons[1].startswith("not JSON")


def test_csv_cells_out_of_range_or_huge_are_reported_per_row(tmp_path):
    (tmp_path / "gen.csv").write_text(
        "model_name,input_seq_length,prefill_time_seconds,tpot_seconds,device\n"
        "gen_a_cuda_256_1,inf,0.05,0.03,Orin\n"              # 2: ctx inf: from the name instead
        "gen_b_cuda_512_1,512,1e999,0.03,Orin\n"             # 3: prefill past float range
        "c,-5,nan,0.03,Orin\n"                               # 4: negative ctx, NaN time
        f"gen_d_cuda_1,1024,0.1,0.03,{'x' * 300_000}\n"      # 5: a field past csv's limit
        "gen_e_cuda_1,2048,0.1,0.02,Orin\n")
    logs = load([tmp_path])
    rows = {r["model"]: r for r in logs.cases}
    assert rows["a"]["ctx"] == 256 and rows["e"]["ctx"] == 2048
    assert rows["b"]["prefill_ms"] is None and rows["b"]["tpot_ms"]["median"] == 30.0
    assert rows["d"]["device"] == "x" * 300_000 and "c" not in rows
    text = "\n".join(str(p) for p in logs.problems)
    assert "gen.csv:2: column input_seq_length 'inf' is not a number from 0 to" in text
    assert "gen.csv:3: column prefill_time_seconds '1e999' is not a number" in text
    assert "gen.csv:4: column input_seq_length '-5'" in text
    assert "gen.csv:4: row without a model name or context length: skipped" in text
    from edgebench.report.render import render_json
    from edgebench.report.tables import build_tables
    json.loads(render_json(build_tables(logs)), parse_constant=lambda c: pytest.fail(c))


def test_llama_bench_results_with_unusable_counts_or_times_are_skipped_by_name(tmp_path):
    objs = json.loads((FOREIGN / "llama_bench.json").read_text())
    first = objs[0]
    bad = [dict(first, n_prompt=0, n_gen=0), dict(first, n_depth="5"),
           dict(first, samples_ns=[1.0, "NaN-ish"]), dict(first, model_type=[["deep"]])]
    text = "".join(json.dumps(o) + "\n" for o in bad) + json.dumps(first).replace(
        '"avg_ns": ', '"avg_ns": NaN, "x": ') + "\n"
    (tmp_path / "llama.jsonl").write_text(text)
    (tmp_path / "deep.json").write_text("[" * 50_000 + "]" * 50_000)
    logs = load([tmp_path])
    reasons = {(p.file.rsplit("/", 1)[-1], p.line): p.reason for p in logs.problems}
    assert "nothing was timed" in reasons[("llama.jsonl", 1)]
    assert "n_depth must be token counts" in reasons[("llama.jsonl", 2)]
    assert "times must be numbers of ns" in reasons[("llama.jsonl", 3)]
    assert reasons[("deep.json", None)] == ("not JSON (nested too deeply to read); expected "
                                           "llama-bench -o json output")
    assert [r["model"] for r in logs.cases] == ["unknown", "qwen2-1b"]  # lines 4 and 5 kept
