"""Floors per measurement (analysis/floors.py): bytes per decode step and FLOPs per prefill against
hand counts, the micro-benchmarks read from run headers (desktop, older env files, a Jetson), and
the achieved-rate and x-floor columns of `compare`, the report's tables and the run summary."""
from __future__ import annotations

import argparse
import copy
import csv
import io
import json
from pathlib import Path

import pytest

from edgebench.analysis import floors
from edgebench.logs.loader import load
from edgebench.models import catalog
from edgebench.report.tables import build_tables

JETSON = Path(__file__).parent / "fixtures" / "micro" / "orin_nano_run_header.json"
BW, MM = 2.0e12, 5.0e14  # the synthetic desktop GPU: copy bytes/s, bf16 FLOP/s

# tiny-llama: hidden 64, 2 layers, 4 query heads and 2 KV heads of 16, MLP 128, vocab 512, untied.
# Per layer: q 64x64 + k, v 2 x 64x32 + o 64x64 + MLP 3 x 64x128 + 2 norms x 64 = 36,992.
LLAMA_PARAMS = 2 * 36_992 + 64 + 2 * 512 * 64  # layers, final norm, embedding and LM head
# tiny-mamba: hidden 64, d_inner 128, state 16, conv 4, dt rank 4, 2 layers, vocab 512, tied.
# Per layer: in_proj 64x256, conv 128x4 + 128, x_proj 128x36, dt_proj 4x128 + 128, A_log 128x16,
# D 128, out_proj 128x64, norm 64 = 32,704.
MAMBA_PARAMS = 2 * 32_704 + 64 + 512 * 64


def test_param_counts_behind_the_hand_counts():
    assert catalog.param_count(catalog.get("tiny-llama")) == LLAMA_PARAMS == 139_584
    assert catalog.param_count(catalog.get("tiny-mamba")) == MAMBA_PARAMS == 98_240


def test_decode_step_bytes_by_hand():
    llama, mamba = catalog.get("tiny-llama"), catalog.get("tiny-mamba")
    kv_per_token = 2 * 2 * 2 * 16 * 2  # K and V, 2 layers, 2 KV heads x 16, bf16
    assert floors.decode_step_bytes(llama, 1024) == LLAMA_PARAMS * 2 + 1024 * kv_per_token == 541_312
    # batch 3: the weights once, the cache per sequence
    assert floors.decode_step_bytes(llama, 1024, batch=3) == LLAMA_PARAMS * 2 + 3 * 1024 * kv_per_token
    state = 2 * (128 * 4 * 2 + 128 * 16 * 4)  # per layer: conv state in bf16, recurrent state in fp32
    for ctx in (1024, 65536):  # constant in context
        assert floors.decode_step_bytes(mamba, ctx) == MAMBA_PARAMS * 2 + state == 214_912
    assert floors.decode_step_bytes(mamba, 1024, dtype="float32") == MAMBA_PARAMS * 4 + 2 * (
        128 * 4 * 4 + 128 * 16 * 4)


def test_prefill_flops_by_hand():
    llama, mamba = catalog.get("tiny-llama"), catalog.get("tiny-mamba")
    head = 512 * 64
    llama_body = LLAMA_PARAMS - 2 * head  # untied: embedding and LM head both left out of the body
    attn = 2 * 4 * 16  # attention layers x query heads x head_dim
    ctx = 1024
    want = 2 * ctx * llama_body + 2 * head + 2 * ctx * (ctx + 1) * attn
    assert floors.prefill_flops(llama, ctx) == want == 420_413_440
    assert floors.prefill_flops(llama, ctx, logits="all") == want - 2 * head + 2 * ctx * head
    assert floors.prefill_flops(llama, ctx, batch=2) == 2 * want
    mamba_body = MAMBA_PARAMS - head  # tied: one table, the LM head only at the kept positions
    assert floors.prefill_flops(mamba, ctx) == 2 * ctx * mamba_body + 2 * head == 134_152_192


def test_mixture_of_experts_and_unknown_models_get_no_floor_and_say_why():
    step, flops, why = floors.case_work("tiny-jamba", "hf", "bfloat16", 1, 1024, "last")
    assert step is None and flops is None and "mixture of experts" in why
    step, flops, why = floors.case_work("my-own-model", "hf", "bfloat16", 1, 1024, "last")
    assert step is None and "not in the catalog" in why


def env_with(micro, gpus=("GPU A",)):
    return {"gpus": [{"index": i, "name": n} for i, n in enumerate(gpus)], "micro": micro}


def test_rates_from_run_headers_old_env_files_and_broken_entries():
    micro = {"ok": True, "why": None, "gpus": [
        {"index": 0, "copy_bw_bytes_per_s": 1e12, "matmul_bf16_flop_s": 1e14},
        {"index": 1, "copy_bw_bytes_per_s": 2e12, "matmul_bf16_flop_s": 3e14}]}
    env = env_with(micro, ("GPU A", "GPU B"))
    assert floors.rates_from_env(env, 1) == floors.Rates(2e12, 3e14, None)
    assert floors.rates_from_env(env, None, "GPU B").copy_bytes_per_s == 2e12
    assert floors.run_gpu({"spec": {"device": "cuda:1"}, "device": "GPU B"}) == (1, "GPU B")
    assert floors.run_gpu({"spec": {"device": "auto"}})[0] == 0
    # `edgebench env --micro --json` of earlier versions: a list, one entry per GPU, no matmul rate
    old = floors.rates_from_env({"micro": [{"copy_bw_bytes_per_s": 3.0e12}]}, 0)
    assert old.copy_bytes_per_s == 3.0e12 and old.matmul_flop_s is None and "matmul" in old.why
    assert floors.rates_from_env({}, 0).why == floors.NO_MICRO
    skipped = floors.rates_from_env({"micro": {"ok": False, "why": "no CUDA GPU visible", "gpus": []}})
    assert skipped.copy_bytes_per_s is None and "no CUDA GPU visible" in skipped.why
    failed = floors.rates_from_env(env_with({"gpus": [{"index": 0, "why": "cudaMalloc: out of memory"}]}), 0)
    assert failed.copy_bytes_per_s is None and "out of memory" in failed.why
    for bad in (float("nan"), -1.0, "3e12", True, None):
        r = floors.rates_from_env(env_with({"gpus": [{"index": 0, "copy_bw_bytes_per_s": bad,
                                                      "matmul_bf16_flop_s": 1e14}]}), 0)
        assert r.copy_bytes_per_s is None and r.matmul_flop_s == 1e14 and r.why


def test_jetson_header_parses_and_unified_memory_changes_nothing():
    header = json.loads(JETSON.read_text())
    assert header["env"]["gpus"][0]["integrated"] is True
    index, name = floors.run_gpu(header)
    rates = floors.rates_from_env(header["env"], index, name)
    assert rates == floors.Rates(88.0e9, 13.1e12, None)
    discrete = copy.deepcopy(header)
    discrete["env"]["gpus"][0]["integrated"] = False
    assert floors.rates_from_env(discrete["env"], index, name) == rates
    row = {"model": "tiny-llama", "backend": "hf", "dtype": "bfloat16", "batch": 1, "ctx": 1024,
           "logits": "last", "status": "ok", "prefill_ms": {"median": 0.5}, "tpot_ms": {"median": 0.05}}
    got = floors.case_floors(row, header)
    assert got["decode_floor_ms"] == pytest.approx(541_312 / 88.0e9 * 1e3)
    assert got["tpot_x_floor"] == pytest.approx(0.05 / (541_312 / 88.0e9 * 1e3))
    assert got["prefill_x_floor"] == pytest.approx(0.5 / (420_413_440 / 13.1e12 * 1e3))
    assert got["why"] is None


def header(run, t, micro=None, device="cuda:0"):
    env = {"host": {"hostname": "h1"}, "gpus": [{"index": 0, "name": "GPU"}]}
    if micro is not None:
        env["micro"] = micro
    return {"v": 1, "type": "run", "run": run, "t": t, "device": "GPU", "spec": {"device": device},
            "env": env}


def case(run, model, ctx, prefill, tpot, **extra):
    rec = {"v": 1, "type": "case", "run": run, "key": f"{model}|{ctx}|{extra.get('dtype', 'bf16')}",
           "model": model, "family": "transformer", "backend": "hf", "dtype": "bfloat16", "ctx": ctx,
           "gen": 32, "batch": 1, "decode_mode": "graph", "logits": "last", "status": "ok", "device": "GPU",
           "prefill_ms": {"median": prefill, "p10": prefill, "p90": prefill, "stdev": 0.0, "n": 3},
           "tpot_ms": {"median": tpot, "p10": tpot, "p90": tpot, "stdev": 0.0, "n": 32}}
    return rec | extra


MICRO = {"ok": True, "why": None, "fix": None,
         "gpus": [{"index": 0, "copy_bw_bytes_per_s": BW, "matmul_bf16_flop_s": MM}]}


def write_log(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def compare_csv(tmp_path: Path, *args: str) -> tuple[list[dict], str]:
    from edgebench.commands import compare
    parser = argparse.ArgumentParser()
    compare.add_arguments(parser)
    out = tmp_path / "out.csv"
    assert compare.main(parser.parse_args([str(tmp_path / "logs"), "--table", "cases", "--format", "csv",
                                           "-o", str(out), *args])) == 0
    text = out.read_text()
    return list(csv.DictReader(io.StringIO(text))), text


def test_compare_shows_achieved_rates_and_x_floor_from_the_run_header(tmp_path, capsys):
    (tmp_path / "logs").mkdir()
    write_log(tmp_path / "logs" / "a.jsonl", [
        header("r1", "2026-12-01T00:00:00+00:00", MICRO),
        case("r1", "tiny-llama", 1024, 0.25, 0.02),
        case("r1", "tiny-mamba", 1024, 0.125, 0.01),
        case("r1", "tiny-llama", 2048, 0.5, 0.02, dtype="float32"),
        case("r1", "tiny-llama", 4096, None, None, status="oom", prefill_ms=None, tpot_ms=None,
             reason="CUDA out of memory")])
    rows, _ = compare_csv(tmp_path)
    by = {(r["model"], int(r["ctx"])): r for r in rows}
    llama, mamba = by[("tiny-llama", 1024)], by[("tiny-mamba", 1024)]
    assert float(llama["decode_gb_s"]) == pytest.approx(541_312 / 0.02e-3 / 1e9)
    assert float(llama["tpot_x_floor"]) == pytest.approx(0.02 / (541_312 / BW * 1e3))
    assert float(llama["prefill_tflop_s"]) == pytest.approx(420_413_440 / 0.25e-3 / 1e12)
    assert float(llama["prefill_x_floor"]) == pytest.approx(0.25 / (420_413_440 / MM * 1e3))
    assert float(mamba["tpot_x_floor"]) == pytest.approx(0.01 / (214_912 / BW * 1e3))
    assert float(mamba["prefill_x_floor"]) == pytest.approx(0.125 / (134_152_192 / MM * 1e3))
    fp32 = by[("tiny-llama", 2048)]  # a bf16 rate is no floor for a float32 prefill; decode still has one
    assert fp32["prefill_x_floor"] == "" and fp32["prefill_tflop_s"] != "" and fp32["tpot_x_floor"] != ""
    oom = by[("tiny-llama", 4096)]
    assert all(oom[k] == "" for k in floors.FLOOR_COLUMNS)
    # only the decode columns beside TPOT when only TPOT is asked for
    rows, _ = compare_csv(tmp_path, "--metric", "tpot_ms")
    assert {"decode_gb_s", "tpot_x_floor"} <= set(rows[0]) and "prefill_x_floor" not in rows[0]
    logs = load([tmp_path / "logs"])
    notes = next(t for t in build_tables(logs) if t.name == "cases").notes
    assert any("float32 prefill" in n for n in notes) and any(n.startswith("decode_gb_s:") for n in notes)


def test_missing_micro_leaves_the_floor_cells_empty_with_a_note(tmp_path):
    (tmp_path / "logs").mkdir()
    write_log(tmp_path / "logs" / "a.jsonl", [
        header("old", "2026-11-01T00:00:00+00:00"), case("old", "tiny-llama", 1024, 0.25, 0.02),
        header("new", "2026-12-01T00:00:00+00:00", MICRO), case("new", "tiny-mamba", 1024, 0.1, 0.01)])
    rows, _ = compare_csv(tmp_path)
    by = {r["model"]: r for r in rows}
    assert all(by["tiny-llama"][k] == "" for k in floors.FLOOR_COLUMNS)
    assert all(by["tiny-mamba"][k] != "" for k in floors.FLOOR_COLUMNS)
    cases = next(t for t in build_tables(load([tmp_path / "logs"])) if t.name == "cases")
    assert f"no floor for 1 measured rows: {floors.NO_MICRO}" in cases.notes
    # no run with micro-benchmarks at all: no floor columns, the note says why, and torch is not needed
    write_log(tmp_path / "logs" / "a.jsonl", [header("old", "2026-11-01T00:00:00+00:00"),
                                               case("old", "tiny-llama", 1024, 0.25, 0.02)])
    cases = next(t for t in build_tables(load([tmp_path / "logs"])) if t.name == "cases")
    assert not set(floors.FLOOR_COLUMNS) & {c.name for c in cases.columns}
    assert f"no floor for 1 measured rows: {floors.NO_MICRO}" in cases.notes
    for fmt in ("md", "json"):  # the other formats render it too
        from edgebench.report import render
        assert "tiny-llama" in (render.render_markdown if fmt == "md" else render.render_json)([cases])


def test_report_tables_carry_the_same_columns(tmp_path):
    pytest.importorskip("matplotlib")
    from edgebench.commands import report
    (tmp_path / "logs").mkdir()
    write_log(tmp_path / "logs" / "a.jsonl", [header("r1", "2026-12-01T00:00:00+00:00", MICRO),
                                              case("r1", "tiny-llama", 1024, 0.25, 0.02)])
    parser = argparse.ArgumentParser()
    report.add_arguments(parser)
    assert report.main(parser.parse_args([str(tmp_path / "logs"), "-o", str(tmp_path / "rep")])) == 0
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "tpot_x_floor" in html and "prefill_x_floor" in html
    x = 0.02 / (541_312 / BW * 1e3)
    assert format(x, ".3g") in html


def test_run_summary_shows_x_floor_per_phase_and_decode_mode(capsys):
    from edgebench.report.run_summary import print_summary
    pre = case("r1", "tiny-llama", 1024, 0.25, None, decode_mode=None, tpot_ms=None)
    eager = case("r1", "tiny-llama", 1024, None, 0.05, decode_mode="eager", prefill_ms=None)
    graph = case("r1", "tiny-llama", 1024, None, 0.02, decode_mode="graph", prefill_ms=None)
    print_summary([pre, eager, graph], header("r1", "t", MICRO))
    out = " ".join(capsys.readouterr().out.split())
    for x in (0.25 / (420_413_440 / MM * 1e3), 0.05 / (541_312 / BW * 1e3), 0.02 / (541_312 / BW * 1e3)):
        assert f" {x:.3g}x" in out  # beside the median it divides (rates: edgebench compare)
    assert "x floor: the time / the device's floor" in out
    print_summary([pre, graph], header("r1", "t"))  # no micro-benchmarks: no x floor, the reason
    out = " ".join(capsys.readouterr().out.split())
    assert "no floors; none where: the run header has no device micro-benchmarks" in out


def test_env_snapshot_micro_is_skipped_with_why_without_a_gpu_or_native_probe(monkeypatch):
    from edgebench import probe
    from edgebench.commands import env as env_cmd
    from edgebench.telemetry import environment
    assert environment.micro([]) == {"ok": False, "why": "no CUDA GPU visible", "fix": None, "gpus": []}
    monkeypatch.setattr(probe, "cuda_ready", lambda: False)
    m = environment.micro([{"index": 0}])
    assert not m["ok"] and "native CUDA probe" in m["why"] and "nvcc" in m["fix"]
    assert env_cmd.micro_lines(m)[0].startswith("micro: skipped: needs the native CUDA probe")
    assert floors.rates_from_env({"micro": m}).why.startswith("the device micro-benchmarks were skipped")
    # one GPU failing a benchmark: the others still measured, the failure named
    monkeypatch.setattr(probe, "cuda_ready", lambda: True)

    def bench(index, budget_s):
        assert budget_s == pytest.approx(0.5)  # one second shared by the GPUs
        if index == 1:
            raise RuntimeError("cudaMalloc (copy benchmark): out of memory")
        return json.loads(JETSON.read_text())["env"]["micro"]["gpus"][0]
    monkeypatch.setattr(probe, "microbench", bench)
    m = environment.micro([{"index": 0}, {"index": 1}])
    assert not m["ok"] and m["why"] == "GPU 1: cudaMalloc (copy benchmark): out of memory"
    lines = env_cmd.micro_lines(m)
    assert "copy 88 GB/s, bf16 matmul 13.1 TFLOP/s (n=8192)" in lines[0] and "failed" in lines[1]


def test_worker_snapshot_on_this_cpu_machine_records_why_micro_is_missing():
    from edgebench import probe
    from edgebench.telemetry import environment
    if probe.cuda_ready():
        pytest.skip("a CUDA GPU is here: the GPU tests cover the measured micro-benchmarks")
    snap = environment.snapshot_for_run({"deep": True})
    assert snap["micro"]["ok"] is False and snap["micro"]["why"] and snap["micro"]["gpus"] == []
    assert "micro" not in environment.snapshot_for_run({"deep": True, "micro": False})
    with pytest.raises(RuntimeError, match="native CUDA probe"):
        probe.microbench(0)


def test_point_lines_get_the_prefill_floor_and_each_decode_tier_its_own(tmp_path):
    """Schema v2: a point is a prefill line and one line per decode mode; each gets its own floor."""
    (tmp_path / "logs").mkdir()
    point = {"v": 2, "type": "case", "run": "r1", "model": "tiny-llama", "ctx": 1024, "gen": 32,
             "family": "transformer", "device": "GPU", "status": "ok"}
    stats = lambda m: {"median": m, "p10": m, "p90": m, "stdev": 0.0, "n": 8}  # noqa: E731
    write_log(tmp_path / "logs" / "a.jsonl", [
        header("r1", "2026-12-01T00:00:00+00:00", MICRO) | {"v": 2},
        point | {"prefill_ms": stats(0.25)},
        point | {"decode_mode": "eager", "tpot_ms": stats(0.05)},
        point | {"decode_mode": "graph", "tpot_ms": stats(0.02)}])
    rows, _ = compare_csv(tmp_path)
    by = {r["setting"].split()[-1]: r for r in rows}
    assert float(by["b=1"]["prefill_x_floor"]) == pytest.approx(0.25 / (420_413_440 / MM * 1e3))
    assert by["b=1"]["tpot_x_floor"] == ""
    for mode, tpot in (("eager", 0.05), ("graph", 0.02)):
        assert float(by[mode]["tpot_x_floor"]) == pytest.approx(tpot / (541_312 / BW * 1e3))
        assert by[mode]["prefill_x_floor"] == ""


def test_a_workers_recorded_work_equals_the_catalog_count_and_readers_use_it(tmp_path):
    """A CPU run records each line's `work` (counted in the worker); it equals what the readers count
    from the catalog for a line without it, and a summary or compare of such lines needs neither
    transformers nor torch (a parameter count imported both: 18 s after a GPU run in session 7)."""
    import subprocess
    import sys
    log = tmp_path / "logs" / "run.jsonl"
    subprocess.run([sys.executable, "-m", "edgebench", "run", "-m", "tiny-llama,tiny-mamba2", "-c", "64",
                    "-n", "2", "-r", "1", "--warmup", "0", "--decode-mode", "eager", "-q", "--no-telemetry",
                    "-o", str(log)], check=True, capture_output=True, timeout=300)
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    cases = [x for x in lines if x["type"] == "case"]
    assert len(cases) == 4 and all(x["status"] == "ok" for x in cases)
    for x in cases:  # prefill and decode lines alike
        step, flops, why = floors.case_work(x["model"], "hf", "bfloat16", 1, x["ctx"], "last")
        assert why is None and x["work"] == {"decode_step_bytes": step, "prefill_flops": flops}
    # with micro-benchmarks in the header, the floors come from the recorded work alone
    lines[0]["env"]["micro"] = MICRO
    write_log(log, lines)
    code = ("import sys, json; from edgebench.report.run_summary import print_summary; "
            "from edgebench.logs.loader import load; from edgebench.report.tables import build_tables; "
            f"lines = [json.loads(x) for x in open({str(log)!r})]; "
            "print_summary([x for x in lines if x['type'] == 'case'], lines[0]); "
            f"t = next(t for t in build_tables(load([{str(log)!r}])) if t.name == 'cases'); "
            "at = [i for i, c in enumerate(t.columns) if c.name in ('tpot_x_floor', 'prefill_x_floor')]; "
            "print('floor cells', sum(1 for r in t.rows for i in at if r[i] is not None)); "
            "print('heavy', sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    assert "heavy []" in out and "floor cells 4" in out, out[-600:]
    x = next(c for c in cases if c.get("decode_mode") == "eager" and c["model"] == "tiny-llama")
    assert f"{x['tpot_ms']['median'] / (x['work']['decode_step_bytes'] / BW * 1e3):.3g}x" in out


@pytest.mark.parametrize("bad", [{"decode_step_bytes": -1, "prefill_flops": 10}, {"prefill_flops": 10},
                                 {"decode_step_bytes": 1.5, "prefill_flops": 10}, "x"])
def test_a_bad_work_object_is_reported_and_the_catalog_count_used(tmp_path, bad):
    (tmp_path / "logs").mkdir()
    write_log(tmp_path / "logs" / "a.jsonl", [header("r1", "2026-12-01T00:00:00+00:00", MICRO),
                                              case("r1", "tiny-llama", 1024, 0.25, 0.02, work=bad)])
    logs = load([tmp_path / "logs"])
    assert any("'work' must be an object of decode_step_bytes and prefill_flops" in p.reason
               for p in logs.problems)
    rows, _ = compare_csv(tmp_path)
    assert float(rows[0]["tpot_x_floor"]) == pytest.approx(0.02 / (541_312 / BW * 1e3))
