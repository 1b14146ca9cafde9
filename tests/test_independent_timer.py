"""bench/independent_timer.py: edgebench beside a plain timer that shares no code with it.

The plain timer (bench/plain_timer.py) must import no edgebench module, must time on the CPU, and
must decode from the cache it was handed; the agreement table must pair the right numbers, divide
them the right way round and mark what edgebench flagged host-bound."""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
PLAIN_ALLOWED = {"__future__", "argparse", "inspect", "json", "statistics", "sys", "time", "pathlib", "torch",
                 "transformers"}


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_plain_timer_source_imports_only_torch_transformers_and_the_standard_library():
    tree = ast.parse((BENCH / "plain_timer.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "a relative import would reach into the repository"
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
                "__import__", "import_module"):
            pytest.fail("the plain timer imports a module by name at run time")
    assert "transformers" in imported and "torch" in imported
    assert imported <= PLAIN_ALLOWED, imported - PLAIN_ALLOWED


def _synthetic_log(path: Path) -> None:
    stats = lambda m: {"median": m, "p10": m * 0.9, "p90": m * 1.1, "stdev": 0.1, "n": 5}  # noqa: E731
    base = {"v": 1, "type": "case", "family": "transformer", "gen": 64, "status": "ok", "device": "H200"}
    lines = [
        {"v": 1, "type": "run", "run": "r1"},
        # new logs: the point's prefill line (no decode_mode), then one line per decode mode
        {**base, "model": "qwen", "ctx": 1024, "prefill_ms": stats(10.0), "host_bound": True, "gpu_lag_ms": 0.05},
        {**base, "model": "qwen", "ctx": 1024, "decode_mode": "eager", "tpot_ms": stats(60.0), "host_bound": True,
         "gpu_lag_ms": 0.04},
        {**base, "model": "qwen", "ctx": 1024, "decode_mode": "graph", "tpot_ms": stats(2.0), "gpu_lag_ms": 1.9,
         "unstable": True},
        {**base, "model": "qwen", "ctx": 16384, "prefill_ms": stats(99.0), "gpu_lag_ms": 90.0},
        {**base, "model": "qwen", "ctx": 16384, "prefill_ms": stats(100.0), "gpu_lag_ms": 95.0},  # a rerun wins
        {**base, "model": "qwen", "ctx": 16384, "decode_mode": "eager", "status": "oom", "reason": "CUDA OOM"},
        # an old log: each decode line carries its own prefill; the first one serves
        {**base, "model": "mamba", "ctx": 1024, "decode_mode": "eager", "prefill_ms": stats(40.0),
         "tpot_ms": stats(30.0)},
        {**base, "model": "mamba", "ctx": 1024, "decode_mode": "graph", "prefill_ms": stats(80.0),
         "tpot_ms": stats(3.0)},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n{\"type\": \"case\", \"mod\n")


def _plain(model, ctx, phase, ms=None, skipped=None):
    row = {"model": model, "ctx": ctx, "phase": phase}
    row.update({"skipped": skipped} if skipped else {"median_ms": ms, "p10_ms": ms, "p90_ms": ms, "n": 5})
    return row


def test_agreement_pairs_each_phase_divides_edgebench_by_independent_and_marks_host_bound(tmp_path, capsys):
    bench = _module("independent_timer")
    log = tmp_path / "eb.jsonl"
    _synthetic_log(log)
    plain = [_plain("qwen", 1024, "prefill", 8.0), _plain("qwen", 1024, "eager", 40.0),
             _plain("qwen", 1024, "graph", 2.5), _plain("qwen", 16384, "prefill", 100.0),
             _plain("qwen", 16384, "eager", 50.0), _plain("qwen", 16384, "graph", skipped="capture failed: X"),
             _plain("mamba", 1024, "prefill", 40.0), _plain("mamba", 1024, "eager", 30.0),
             _plain("mamba", 1024, "graph", 3.0)]
    rows = bench.agreement(bench.read_edgebench(log), plain)
    assert "1 line(s) skipped" in capsys.readouterr().err  # the cut last line
    got = {(r["model"], r["ctx"], r["phase"]): r for r in rows}
    assert [k for k in got][:6] == [("qwen", 1024, "prefill"), ("qwen", 1024, "eager"), ("qwen", 1024, "graph"),
                                    ("qwen", 16384, "prefill"), ("qwen", 16384, "eager"), ("qwen", 16384, "graph")]
    assert got[("qwen", 1024, "prefill")]["ratio"] == 1.25
    assert got[("qwen", 1024, "eager")]["ratio"] == 1.5
    assert got[("qwen", 1024, "graph")]["ratio"] == 0.8
    assert got[("qwen", 16384, "prefill")]["ratio"] == 1.0 and got[("qwen", 16384, "prefill")]["gpu_lag_ms"] == 95.0
    assert {k for k, r in got.items() if r["host_bound"]} == {("qwen", 1024, "prefill"), ("qwen", 1024, "eager")}
    oom = got[("qwen", 16384, "eager")]
    assert oom["ratio"] is None and oom["edgebench_ms"] is None and "oom CUDA OOM" in oom["note"]
    skipped = got[("qwen", 16384, "graph")]
    assert skipped["ratio"] is None and "edgebench: no line" in skipped["note"] and "capture failed: X" in skipped["note"]
    old = got[("mamba", 1024, "prefill")]
    assert old["edgebench_ms"] == 40.0 and old["ratio"] == 1.0 and "eager line" in old["note"]
    assert got[("mamba", 1024, "graph")]["ratio"] == 1.0

    table = bench.format_table(rows).splitlines()
    marked = [line for line in table if " H (lag " in line]
    assert len(marked) == 2 and all(line.startswith("qwen") and " 1024 " in line for line in marked)
    assert "H (lag 0.040 ms)" in next(line for line in table if " eager " in line and " 1024 " in line)
    assert [line.split()[2] for line in table if line.endswith(" U")] == ["graph"]  # unstable, not host-bound
    text = "\n".join(bench.summary(rows))
    assert "host-bound (H): 2 phase(s), largest disagreement +50.0% (qwen 1024 eager)" in text
    assert "not flagged host-bound: 5 phase(s), largest disagreement -20.0% (qwen 1024 graph)" in text


def test_the_eager_check_catches_a_decode_that_drops_its_cache():
    plain = _module("plain_timer")
    torch = plain.torch
    model, attn = plain.build("tiny-llama", "cpu", torch.float32)
    assert attn == "sdpa"
    ids = torch.randint(0, 512, (1, 24), generator=torch.Generator().manual_seed(0))
    fwd = plain.Forward(model)
    with torch.inference_mode():
        samples, diff = plain.time_eager(fwd, ids, 3, 1, cuda=False)
        assert len(samples) == 3 and all(s > 0 for s in samples) and diff < 1e-4

        class Forgetful(plain.Forward):
            def __call__(self, ids, cache=None, pos=None):
                return super().__call__(ids, None, pos if cache is None else None)
        _, lost = plain.time_eager(Forgetful(model), ids, 3, 1, cuda=False)
    assert lost > plain.CHECK_WARN


@pytest.mark.slow
def test_the_bench_runs_end_to_end_on_the_cpu(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(BENCH / "independent_timer.py"), "-m", "tiny-llama", "-c", "32",
                           "-n", "4", "--modes", "eager", "--device", "cpu", "-t", "float32", "--out", str(out),
                           "--json", str(out / "agree.json")], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads((out / "agree.json").read_text())
    assert result["failed"] == []
    (plain,) = result["plain"]
    assert plain["rc"] == 0 and plain["edgebench_modules"] == []  # loaded at its end: none of edgebench's
    rows = {r["phase"]: r for r in result["rows"]}
    assert set(rows) == {"prefill", "eager"}
    for r in rows.values():
        assert r["model"] == "tiny-llama" and r["ctx"] == 32
        assert r["edgebench_ms"] > 0 and r["independent_ms"] > 0
        assert r["ratio"] == round(r["edgebench_ms"] / r["independent_ms"], 4)
    measured = json.loads(Path(plain["file"]).read_text())["rows"]
    assert [(r["phase"], r["n"]) for r in measured] == [("prefill", 5), ("eager", 4)]
    assert measured[1]["check_rel_diff"] < 1e-4
    assert "tiny-llama" in proc.stdout and "ratio" in proc.stdout
    assert Path(result["edgebench_log"]).parent == out


@pytest.mark.gpu
@pytest.mark.parametrize("preset", ["tiny-llama", "tiny-mamba2", "tiny-zamba2"])
def test_the_plain_timer_captures_and_replays_graph_decode_on_cuda(preset, tmp_path):
    plain = _module("plain_timer")
    out = tmp_path / "plain.json"
    plain.main(["-m", preset, "-c", "64", "-n", "8", "--modes", "eager,graph", "-t", "bfloat16", "--json", str(out)])
    rows = {r["phase"]: r for r in json.loads(out.read_text())["rows"]}
    assert "skipped" not in rows["graph"], rows["graph"]["skipped"]
    assert [rows[p]["n"] for p in ("prefill", "eager", "graph")] == [5, 8, 8]
    assert rows["graph"]["median_ms"] < rows["eager"]["median_ms"]  # replay removes the launch cost
