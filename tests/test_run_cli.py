"""`edgebench run` end to end on the CPU: the log, resume, bad input, and interruption."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from edgebench.cli import main
from edgebench.errors import UserError

TINY = ["-m", "tiny-llama,tiny-mamba2", "-c", "32", "-n", "2", "-r", "1", "--warmup", "0",
        "-t", "float32", "--device", "cpu", "-q"]


def _lines(path):
    with open(path) as fh:  # closed: an unclosed file is a ResourceWarning, and warnings are errors
        return [json.loads(x) for x in fh if x.strip()]


@pytest.fixture(scope="module")
def first_log(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "log.jsonl"
    assert main(["run", *TINY, "-o", str(path)]) == 0
    return path


def test_log_has_header_and_one_compact_line_per_case(first_log):
    lines = _lines(first_log)
    assert lines[0]["type"] == "run" and lines[0]["env"]["host"]["hostname"]
    assert "power" in lines[0]["env"]  # the full (deep) snapshot, read in a worker
    cases = [x for x in lines if x["type"] == "case"]
    # per point: its prefill line (no decode_mode), then its decode line
    assert [(c["model"], c.get("decode_mode")) for c in cases] == [
        ("tiny-llama", None), ("tiny-llama", "eager"), ("tiny-mamba2", None), ("tiny-mamba2", "eager")]
    for c in cases:
        assert c["status"] == "ok", c.get("reason")
        assert c["v"] == 2 and c["family"] in ("transformer", "ssm")
    for pre, dec in (cases[:2], cases[2:]):
        assert pre["prefill_ms"]["n"] == 1 and pre["prefill_ms"]["median"] > 0
        assert "tpot_ms" not in pre and "prefill_ms" not in dec and dec["tpot_ms"]["median"] > 0
        assert dec["tpot_ms"]["n"] == 2
        assert pre["kernels"] is not None and "kernels" not in dec  # the point's, said once
    raw_len = [len(x) for x in first_log.read_text().splitlines(keepends=True) if '"type":"case"' in x]
    assert max(raw_len) < 1024, raw_len


def test_rerun_with_same_output_resumes(first_log, capsys):
    before = first_log.read_text()
    assert main(["run", *TINY, "-o", str(first_log)]) == 0
    assert first_log.read_text() == before
    assert "nothing to do" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["-m", "qwen2.5-05b"], "qwen2.5-0.5b"),  # unknown model: suggests the close name
    (["-m", "tiny-llama", "-c", "64k-1k*2"], "64k-1k*2"),
    (["-m", "qwen2.5-0.5b", "-c", "64k", "--strict-ctx"], "exceeds its 32768-token limit"),
    (["-m", "tiny-llama", "-c", "32", "-n", "2", "-o", "/proc/edgebench/log.jsonl"], "cannot write the log"),
])
def test_bad_input_fails_fast_with_a_clear_message(argv, message, capsys):
    t0 = time.monotonic()
    assert main(["run", *argv]) == 2
    assert message in capsys.readouterr().err
    assert time.monotonic() - t0 < 10  # before any model loads


@pytest.mark.parametrize("argv, message", [
    (["run", "-m", "tiny-llama", "-c", "32", "--timeout", "nan"], "timeout_s must be a positive number"),
    (["run", "-m", "tiny-llama", "-c", "32", "--timeout", "1e10"], "from 1 to 604800"),
    (["run", "-m", "tiny-llama", "-c", "32", "--power-rate", "inf"], "--power-rate must be a positive number"),
    (["run", "-m", "tiny-llama", "-c", "1-4k+1", "-n", "1-4k+1", "-b", "1-64+1"], "--max-cases 2147483648"),
    (["maxctx", "-m", "tiny-llama", "--device", "cpu", "--timeout", "inf"], "--timeout must be a positive number"),
])
def test_bad_numbers_fail_before_the_log_is_touched(tmp_path, argv, message, capsys):
    path = tmp_path / "log.jsonl"
    t0 = time.monotonic()
    assert main([*argv, "-o", str(path)]) == 2
    assert message in capsys.readouterr().err
    assert not path.exists() and time.monotonic() - t0 < 10


def test_a_failing_case_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    path = tmp_path / "log.jsonl"
    # graph decode needs CUDA: on the CPU that case fails inside its worker, the eager one runs. A
    # "compiler" that passes the preflight (it exists) but cannot compile: the compile case fails in its
    # worker with Inductor's reason.
    monkeypatch.setenv("CXX", "/bin/false")
    rc = main(["run", "-m", "tiny-llama", "-c", "32", "-n", "2", "-r", "1", "--warmup", "0", "-t", "float32",
               "--device", "cpu", "-q", "--decode-mode", "eager,graph,compile", "-o", str(path)])
    cases = {c.get("decode_mode"): c for c in _lines(path) if c["type"] == "case"}
    assert cases["eager"]["status"] == "ok"
    assert cases["graph"]["status"] == "error" and "CUDA" in cases["graph"]["reason"]
    assert cases[None]["prefill_ms"]["n"] == 1  # the point's prefill stands beside the failed modes
    assert cases["compile"]["status"] == "error" and "/bin/false" in cases["compile"]["reason"]
    assert rc == 1


def test_compile_decode_runs_on_the_cpu_and_a_rerun_hits_inductors_cache(tmp_path, monkeypatch):
    """torch.compile without CUDA graphs on the CPU: an ok case with its compile cost in cold_ms, and
    Inductor's on-disk cache, where the record says, used by the second run of the same point."""
    cache = tmp_path / "inductor-cache"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(cache))  # workers inherit it
    recs = []
    for n in (1, 2):
        path = tmp_path / f"log{n}.jsonl"
        assert main(["run", "-m", "tiny-mamba2", "-c", "32", "-n", "4", "-r", "1", "--warmup", "0", "-t",
                     "float32", "--device", "cpu", "-q", "--decode-mode", "compile", "-o", str(path)]) == 0
        lines = [c for c in _lines(path) if c["type"] == "case"]
        assert lines[0]["status"] == "ok" and "decode_mode" not in lines[0]  # the point's prefill
        recs += lines[1:]
        assert main(["validate", str(path)]) == 0
    assert len(recs) == 2
    for rec in recs:
        assert rec["status"] == "ok" and rec["decode_mode"] == "compile", rec.get("reason")
        assert rec["tpot_ms"]["n"] == 4 and rec["tpot_ms"]["median"] > 0
        assert rec["cold_ms"]["compile"] > 0 and rec["cold_ms"]["compile_warmup"] > 0
        assert rec["compile"]["graphs"] == 1 and rec["compile"]["recompiles"] == 0
        assert rec["compile"]["cache_dir"] == str(cache)
    first, second = (r["compile"] for r in recs)
    assert (first["cache_misses"], first["cache_hits"]) == (1, 0)
    assert (second["cache_misses"], second["cache_hits"]) == (0, 1)


def test_sigterm_mid_sweep_leaves_a_valid_log(tmp_path):
    path = tmp_path / "log.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "edgebench", "run", "-m", "tiny-llama,tiny-mamba2,tiny-llama",
                             "-c", "32,64,96", "-n", "2", "-r", "1", "--warmup", "0", "-t", "float32",
                             "--device", "cpu", "-q", "-o", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and '"type":"case"' not in (path.read_text() if path.exists() else ""):
        time.sleep(0.2)
    from edgebench.logs.writer import LogWriter
    with pytest.raises(UserError, match=f"another process \\(pid {proc.pid}: .*is writing the log"):
        LogWriter(path)  # the run holds its log for as long as it runs
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    LogWriter(path).close()  # and lets go when it ends
    lines = _lines(path)  # every line parses
    done = [x for x in lines if x["type"] == "case"]
    assert 1 <= len(done) < 6
    assert proc.returncode != 0


def test_compact_case_lines_expand_back():
    from edgebench.logs import schema as records
    rec = {"type": "case", "run": "r1", "key": "x", "model": "m", "backend": "hf", "dtype": "bfloat16",
           "ctx": 1024, "gen": 16, "batch": 1, "decode_mode": "graph", "logits": "last", "attn": "sdpa",
           "device": "GPU", "status": "ok", "reason": None, "prefill_ms": {"median": 100.0},
           "tpot_ms": {"median": 4.0},
           "energy": {"prefill_j": 20.0, "prefill_mean_w": 200.0, "decode_j_per_token": 1.0, "decode_mean_w": 250.0},
           "mem": {"device_used_bytes": 1000, "nvml_bytes": 1005}}
    rec["key"] = records.case_key(rec, "GPU")
    line = records.compact_case(rec)
    assert "key" not in line and "reason" not in line and "nvml_bytes" not in line["mem"]
    assert "prefill_mean_w" not in line["energy"]
    assert not {"backend", "dtype", "batch", "logits", "attn"} & line.keys()  # schema defaults
    back = records.expand_case(line)
    assert back["key"] == rec["key"] and back["reason"] is None
    assert {k: back[k] for k in records.KEY_FIELDS} == {k: rec[k] for k in records.KEY_FIELDS}
    assert back["energy"]["prefill_mean_w"] == 200.0 and back["energy"]["decode_mean_w"] == 250.0
    other = records.compact_case({**rec, "dtype": "float16", "batch": 4, "logits": "all"})
    assert (other["dtype"], other["batch"], other["logits"]) == ("float16", 4, "all")


def test_maxctx_on_cpu_grows_to_the_limit_and_logs_the_search(tmp_path, capsys):
    path = tmp_path / "maxctx.jsonl"
    rc = main(["maxctx", "-m", "tiny-llama", "--device", "cpu", "--limit", "4k", "--resolution", "1k",
               "-t", "float32", "-o", str(path)])
    assert rc == 0
    rec = [x for x in _lines(path) if x["type"] == "maxctx"][0]
    assert rec["max_ok_ctx"] == 4096 and rec["min_fail_ctx"] is None
    assert [c for c, _ in rec["trail"]] == [1024, 2048, 4096] and rec["probes"] == 3
    assert rec["mem_at_max_ok"]["predicted_bytes"] > 0 and rec["mem_at_max_ok"]["rss_bytes"] > 0
    assert "max context 4096" in capsys.readouterr().out


def test_maxctx_budget_on_cpu_is_refused(tmp_path, capsys):
    assert main(["maxctx", "-m", "tiny-llama", "--device", "cpu", "--memory-budget", "12XB",
                 "-o", str(tmp_path / "m.jsonl")]) == 2
    assert "12XB" in capsys.readouterr().err


def test_maxctx_budget_needs_a_gpu(tmp_path, capsys):
    assert main(["maxctx", "-m", "tiny-llama", "--device", "cpu", "--memory-budget", "8GiB",
                 "-o", str(tmp_path / "m.jsonl")]) == 2
    assert "CUDA device" in capsys.readouterr().err


def test_profile_ops_writes_an_ops_record_per_phase_with_norms_named(tmp_path, capsys):
    path = tmp_path / "ops.jsonl"
    assert main(["run", "-m", "tiny-llama", "-c", "64", "--ops-trace", "-o", str(path)]) == 2
    assert "add --profile ops" in capsys.readouterr().err
    assert main(["run", "-m", "tiny-llama", "-c", "64", "-n", "4", "-r", "1", "--warmup", "1", "-t", "float32",
                 "--device", "cpu", "-q", "--profile", "ops", "--ops-trace", "-o", str(path)]) == 0
    ops = {o["phase"]: o for o in _lines(path) if o["type"] == "ops"}
    assert set(ops) == {"prefill", "decode"}
    for o in ops.values():
        assert o["model"] == "tiny-llama" and o["shares"]["other"] < 0.05
        assert o["shares"]["norm"] > 0 and o["shares"]["embedding_logits"] > 0  # the scopes work
        assert abs(sum(o["shares"].values()) - 1) < 1e-3
        trace = tmp_path / "ops.jsonl.traces" / o["trace"]  # every kernel by name, beside the log
        import gzip
        with gzip.open(trace, "rt") as fh:
            assert "traceEvents" in json.load(fh)


def test_maxctx_with_spawned_workers(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_PRELOAD", "0")  # no zygote: the search must still run
    path = tmp_path / "maxctx.jsonl"
    assert main(["maxctx", "-m", "tiny-llama", "--device", "cpu", "--limit", "2k", "--resolution", "1k",
                 "-t", "float32", "-o", str(path)]) == 0
    assert [x for x in _lines(path) if x["type"] == "maxctx"][0]["max_ok_ctx"] == 2048


def test_sigterm_mid_maxctx_keeps_the_probes_done(tmp_path):
    path = tmp_path / "maxctx.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "edgebench", "maxctx", "-m", "tiny-llama", "--device", "cpu",
                             "--limit", "1M", "--resolution", "1k", "-t", "float32", "-o", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # probe lines: "  tiny-llama [last] ctx=1024: ok"
        if "ctx=2048: ok" in line:
            break
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    rec = [x for x in _lines(path) if x["type"] == "maxctx"][0]
    assert rec["stopped"].startswith("interrupted") and "SIGTERM" in rec["stopped"]
    assert rec["max_ok_ctx"] >= 2048 and rec["min_fail_ctx"] is None
    assert rec["trail"][:2] == [[1024, "ok"], [2048, "ok"]]


def test_summary_and_progress_show_one_row_per_point_with_spread_and_flags(capsys):
    """One row per point: its prefill once, each decode mode's TPOT beside it with p10-p90 and the
    H / U flags; the peak is the point's largest (the decode line's own peak here)."""
    from edgebench.execution.progress import describe
    from edgebench.report.run_summary import print_summary
    base = {"model": "m", "family": "ssm", "ctx": 1024, "status": "ok", "batch": 1, "gen": 8}
    pre = {**base, "decode_mode": None, "prefill_ms": {"median": 30.0, "p10": 29.0, "p90": 31.0, "n": 5},
           "mem": {"peak_allocated_bytes": 3 * 2**30, "rss_bytes": 10}}
    eager = {**base, "decode_mode": "eager", "tpot_ms": {"median": 50.0, "p10": 40.0, "p90": 90.0, "n": 8},
             "host_bound": True, "unstable": True}
    graph = {**base, "decode_mode": "graph", "tpot_ms": {"median": 2.0, "p10": 1.9, "p90": 2.1, "n": 8},
             "mem": {"decode_peak_bytes": 3.5 * 2**30}}
    line = describe({None: pre, "eager": eager, "graph": graph})
    assert "peak 3.50 GiB" in line and "eager TPOT 50.000 ms [host-bound, unstable]" in line
    print_summary([pre, eager, graph])
    out = capsys.readouterr().out
    assert "3.50" in out and out.count("1024") == 1  # one row for the point
    from edgebench.report.run_summary import timed_cell
    assert timed_cell(pre, "prefill_ms", 2) == "30.00 (29.00-31.00)"
    assert timed_cell(eager, "tpot_ms", 3, "12x") == "50.000 (40.000-90.000) 12x [yellow]HU[/]"
    assert "HU" in out
    assert "H: host-bound" in out


def test_run_header_records_the_variables_that_change_results(monkeypatch):
    from edgebench.telemetry import environment as env
    monkeypatch.setenv("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
    monkeypatch.delenv("CUDA_LAUNCH_BLOCKING", raising=False)
    snap = env.snapshot(deep=False)
    assert snap["vars"]["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"
    assert "CUDA_LAUNCH_BLOCKING" not in snap["vars"]  # only what is set
