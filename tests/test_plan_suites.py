"""Planning without a GPU: every shipped suite and every preset plans on both device classes
(`--dry-run`), contexts past the trained length run flagged, and what cannot plan says why."""
from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
import os
import subprocess
import sys
import time

import pytest

from edgebench.execution import isolate
from edgebench.sweep import plan
from edgebench.logs import schema as records
from edgebench.execution import executor, grid_planner
from edgebench.cli import main
from edgebench.models import catalog
from edgebench.sweep.spec import Case, Spec
from edgebench.sweep.specfile import list_suites, load_suite, parse_spec_text

SUITES = sorted(list_suites())
FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "sysfs")


@pytest.fixture
def no_workers(monkeypatch):
    """A dry run must not start a worker (the environment snapshot or a case)."""
    def refuse(*a, **k):
        raise AssertionError("a dry run started a worker")
    monkeypatch.setattr(isolate, "run_isolated", refuse)
    monkeypatch.setattr(executor, "snapshot_env", refuse)


def _lines(path):
    return [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]


@pytest.mark.parametrize("device", ["cuda", "cpu"])
@pytest.mark.parametrize("suite", SUITES)
def test_every_shipped_suite_plans_on_both_device_classes(suite, device, no_workers, capsys):
    rc = main(["run", "--suite", suite, "--device", device, "--dry-run"])
    captured = capsys.readouterr()
    if device == "cpu" and suite.startswith("paper-"):  # the study's Mamba models run on mamba_ssm
        assert rc == 2 and "the mamba_ssm backend runs on CUDA only" in captured.err
        return
    assert rc == 0, captured.err
    out = captured.out
    n, points = len(load_suite(suite).plan()), len(load_suite(suite).points())
    assert out.startswith(f"dry run: suite {suite}, {points} points ({n} log lines: a prefill per "
                          f"point, a decode per point and mode) on {device} (--device {device})")
    assert "work: " in out and "log: " in out


@pytest.mark.parametrize("device", ["cuda", "cpu"])
@pytest.mark.parametrize("preset", catalog.names())
def test_every_preset_plans_with_the_default_flags(preset, device, no_workers, capsys):
    rc = main(["run", "-m", preset, "--device", device, "--dry-run"])
    captured = capsys.readouterr()
    if catalog.get(preset).remote_code:  # no built-in class: only its downloaded directory runs
        assert rc == 2 and "pass its directory: -m /path/to/" in captured.err
        return
    assert rc == 0, captured.err
    assert f"{preset}|hf|" in captured.out
    trained = catalog.get(preset).max_ctx
    spec = Spec()  # the default flags: ctx 4096 + 128 generated tokens
    if spec.ctx[0] + spec.gen[0] > trained:
        assert f"[beyond trained {trained}]" in captured.out
        assert f"past its trained length of {trained} tokens" in captured.out


def _python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


_NOTHING_HEAVY = ("import sys; from edgebench.cli import main; rc = main({argv!r}); "
                  "heavy = [m for m in ('torch', 'transformers') if m in sys.modules]; "
                  "print('imported:', heavy); sys.exit(rc)")


def test_no_argument_dry_run_forced_to_cuda_plans_default_gpu_without_torch():
    r = _python(_NOTHING_HEAVY.format(argv=["run", "--dry-run", "--device", "cuda"]))
    assert r.returncode == 0, r.stderr
    assert "planning the embedded default suite 'default-gpu'" in r.stderr
    assert "dry run: suite default-gpu, 9 points (27 log lines" in r.stdout
    assert "imported: []" in r.stdout  # nothing loaded: no torch, no transformers


def test_no_argument_dry_run_on_this_cpu_plans_default_cpu():
    # CUDA_VISIBLE_DEVICES="" hides any GPU, so this holds on a GPU machine too.
    r = _python(_NOTHING_HEAVY.format(argv=["run", "--dry-run"]), CUDA_VISIBLE_DEVICES="")
    assert r.returncode == 0, r.stderr
    assert "planning the embedded default suite 'default-cpu'" in r.stderr
    assert "dry run: suite default-cpu, 6 points (12 log lines" in r.stdout and "imported: []" in r.stdout


@pytest.fixture
def cuda_torch(monkeypatch):
    """A torch without a CPU-build tag, so the system decides the device class."""
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "2.5.0a0+872d972e41.nv24.08" if name == "torch" else real(name))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_device_class_reads_the_system_without_cuda(cuda_torch, monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEBENCH_SYSFS_ROOT", str(tmp_path))
    assert plan.device_class()[0] == "cpu"  # no driver, no device node
    (tmp_path / "proc/driver/nvidia/gpus/0000:01:00.0").mkdir(parents=True)
    assert plan.device_class() == ("cuda", "the NVIDIA driver lists 1 GPU")
    monkeypatch.setenv("EDGEBENCH_SYSFS_ROOT", os.path.join(FIXTURES, "orin"))
    assert plan.device_class() == ("cuda", "a Jetson board")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert plan.device_class()[0] == "cpu"
    assert plan.device_class("cuda:1") == ("cuda", "--device cuda:1")
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "2.13.0+cpu")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert plan.device_class() == ("cpu", "torch 2.13.0+cpu is a CPU build")


@pytest.mark.parametrize("root, suite", [("orin", "default-gpu"), (None, "default-cpu")])
def test_no_argument_dry_run_picks_the_suite_from_the_system(root, suite, cuda_torch, no_workers,
                                                             monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("EDGEBENCH_SYSFS_ROOT", os.path.join(FIXTURES, root) if root else str(tmp_path))
    assert main(["run", "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert f"embedded default suite '{suite}'" in captured.err
    assert captured.out.startswith(f"dry run: suite {suite}, ")


def test_a_large_plan_is_listed_by_model(no_workers, capsys):
    assert main(["run", "--suite", "paper-desktop", "--device", "cuda", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    spec = load_suite("paper-desktop")
    by_model = [x for x in out[:out.index(next(x for x in out if x.startswith("work: ")))] if x.startswith("  ")]
    assert [x.split(":")[0].strip() for x in by_model] == spec.models
    per_model = len({c.point_fields() for c in spec.plan() if c.model == "qwen2.5-0.5b"})
    assert by_model[0].startswith(f"  qwen2.5-0.5b: {per_model} points; hf bfloat16 ctx 1024,2048,")
    assert by_model[0].endswith("beyond its trained 32768")


def test_estimated_work_matches_what_a_case_runs(monkeypatch):
    """Full-length prefills and decode steps counted inside a real eager case on the CPU."""
    from edgebench.measure import point_run
    from edgebench.models import loaders
    from edgebench.sweep.spec import Point
    ctx, gen, reps, warmup = 80, 3, 2, 1
    counts = {"prefills": 0, "steps": 0}
    real_load = loaders.load

    def counting_load(*a, **k):
        loaded = real_load(*a, **k)
        prefill, decode = loaded.prefill, loaded.decode

        def counted_prefill(ids, **kw):
            counts["prefills"] += ids.shape[1] == ctx  # not the short kernel-detection forwards
            return prefill(ids, **kw)

        def counted_decode(tok, cache):
            counts["steps"] += 1
            return decode(tok, cache)
        loaded.prefill, loaded.decode = counted_prefill, counted_decode
        return loaded
    monkeypatch.setattr(loaders, "load", counting_load)
    p = Point(model="tiny-llama", backend="hf", dtype="float32", ctx=ctx, gen=gen, batch=1,
              logits="last", attn="sdpa", decode_modes=("eager",))
    fields = p.to_dict()
    rec = point_run.run_point({"point": {k: v for k, v in fields.items() if k != "decode_modes"},
                               "decode_modes": ["eager"], "device": "cpu", "reps": reps,
                               "warmup": warmup, "telemetry": False, "key": "k"})
    assert rec["decode"]["eager"]["tpot_ms"]["n"] == gen
    w = plan.work(p.cases(), reps, warmup)
    assert counts["prefills"] == w["timed_prefills"] + w["untimed_prefills"]
    assert counts["steps"] - 2 == w["decode_steps"] + w["warmup_steps"]  # 2: kernel detection
    assert w["prompt_tokens"] == ctx * counts["prefills"]


def test_beyond_trained_cases_run_with_one_warning_and_the_flag(tmp_path, capfd):
    """tiny-llama was trained to 4096 tokens: 4095 + 2 and 5000 + 2 run, flagged, warned once."""
    path = tmp_path / "log.jsonl"
    assert main(["run", "-m", "tiny-llama", "-c", "32,4095,5000", "-n", "2", "-r", "1", "--warmup", "0",
                 "-t", "float32", "--device", "cpu", "-q", "-o", str(path)]) == 0
    warnings = [x for x in capfd.readouterr().err.splitlines() if x.startswith("warning: tiny-llama")]
    assert len(warnings) == 1 and "trained length of 4096 tokens" in warnings[0]
    cases = {c["ctx"]: c for c in _lines(path) if c["type"] == "case"}
    assert all(c["status"] == "ok" for c in cases.values())
    assert "beyond_trained_ctx" not in cases[32]  # false is the schema default, left out
    assert cases[4095]["beyond_trained_ctx"] is True and cases[5000]["beyond_trained_ctx"] is True
    assert main(["validate", str(path)]) == 0
    from edgebench.logs.loader import load as load_logs
    rows = {r["ctx"]: r for r in load_logs([path]).cases}
    assert [rows[n]["beyond_trained_ctx"] for n in (32, 4095, 5000)] == [False, True, True]


def test_compact_lines_write_the_flag_only_when_true():
    rec = {"type": "case", "model": "m", "ctx": 1, "status": "ok", "beyond_trained_ctx": False}
    assert "beyond_trained_ctx" not in records.compact_case(rec)
    assert records.expand_case(records.compact_case(rec))["beyond_trained_ctx"] is False
    assert records.compact_case({**rec, "beyond_trained_ctx": True})["beyond_trained_ctx"] is True


@pytest.mark.parametrize("argv, message", [
    (["-m", "tiny-llama", "-c", "4095", "-n", "2", "--strict-ctx"],
     "tiny-llama|hf|bfloat16|ctx=4095|gen=2|b=1|last|sdpa: context 4095 + 2 generated tokens "
     "exceeds its 4096-token limit (its trained length; --strict-ctx refuses it): lower -c to 4094"),
    (["-m", "tiny-llama", "-c", "4k,8k,16k", "--strict-ctx"], "(2 more points like it)"),
    (["-m", "tiny-llama", "--allow-long-ctx", "--strict-ctx"], "contradict each other"),
    (["-m", "tiny-llama,tiny-mamba", "--backend", "mamba_ssm", "-c", "64"],
     "tiny-llama has no mamba_ssm backend (it has: hf); sweep it with --backend hf separately"),
    (["-m", "tiny-mamba", "--backend", "mamba_ssm", "-c", "64"],
     "tiny-mamba|mamba_ssm|bfloat16|ctx=64|gen=128|b=1|last|sdpa: the mamba_ssm backend runs "
     "on CUDA only; use --backend hf on the CPU"),
    (["-m", "tiny-llama", "--attn", "flash_attention_2", "-c", "64"], "use --attn sdpa on the CPU"),
    (["-m", "tiny-llama", "-c", "64", "--memory-budget", "1GiB"], "drop --memory-budget"),
])
@pytest.mark.parametrize("dry", [True, False])
def test_what_cannot_plan_names_the_case_and_the_fix(argv, message, dry, capsys):
    t0 = time.monotonic()
    assert main(["run", *argv, "--device", "cpu", "-o", "/nonexistent/never-written.jsonl"]
                + (["--dry-run"] if dry else [])) == 2
    assert message in capsys.readouterr().err
    assert time.monotonic() - t0 < 10  # before any worker or model


def test_spec_files_strict_ctx_and_the_old_allow_long_ctx_key():
    old = "[sweep]\nmodels = ['tiny-llama']\nctx = '8k'\nallow_long_ctx = true\n"
    spec = parse_spec_text(old, "old.toml")[0]  # still loads: running past it is the default now
    assert spec.strict_ctx is False and "allow_long_ctx" not in spec.to_dict()
    assert grid_planner.validate(spec, spec.plan(), "cpu")["tiny-llama"].max_ctx == 4096
    strict = parse_spec_text("[sweep]\nmodels = ['tiny-llama']\nctx = '8k'\nstrict_ctx = true\n", "s")[0]
    with pytest.raises(Exception, match="exceeds its 4096-token limit"):
        grid_planner.validate(strict, strict.plan())
    with pytest.raises(Exception, match="both allow_long_ctx and strict_ctx"):
        parse_spec_text(old + "strict_ctx = true\n", "both.toml")


def test_maxctx_searches_past_the_trained_length_unless_strict(no_workers, capsys):
    assert main(["maxctx", "-m", "tiny-llama", "--device", "cpu", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "contexts up to 1048576" in out and "trained length of 4096 tokens" in out
    assert main(["maxctx", "-m", "tiny-llama", "--device", "cpu", "--strict-ctx", "-n", "16",
                 "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "contexts up to 4080" in out and "warning" not in out
    assert main(["maxctx", "-m", "tiny-llama", "--strict-ctx", "--limit", "8k", "--dry-run"]) == 2
    assert "lower --limit to 4096" in capsys.readouterr().err
    assert main(["maxctx", "-m", "tiny-mamba", "--backend", "mamba_ssm", "--device", "cpu",
                 "--dry-run"]) == 2
    assert "runs on CUDA only" in capsys.readouterr().err


@pytest.fixture
def no_compiler(monkeypatch):
    """What `compile_support` finds, faked: no g++ and no Triton, everything else as it is."""
    from edgebench.measure import compiled
    real_which, real_spec = compiled.shutil.which, compiled.importlib.util.find_spec
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setattr(compiled.shutil, "which", lambda name, *a, **k: None if name == "g++"
                        else real_which(name, *a, **k))
    monkeypatch.setattr(compiled.importlib.util, "find_spec", lambda name, *a, **k: None
                        if name == "triton" else real_spec(name, *a, **k))


@pytest.mark.parametrize("device, message", [
    ("cpu", "--decode-mode compile cannot run on cpu here: no C++ compiler for Inductor's CPU backend "
            "('g++' not found"),
    ("cuda", "--decode-mode compile cannot run on cuda here: Triton is not installed"),
])
@pytest.mark.parametrize("dry", [True, False])
def test_compile_without_a_compiler_is_refused_before_any_case(device, message, dry, no_compiler,
                                                              no_workers, tmp_path, capsys):
    log = tmp_path / "log.jsonl"
    assert main(["run", "-m", "tiny-llama,tiny-mamba", "-c", "32,64", "-n", "2", "--decode-mode",
                 "eager,compile", "--device", device, "-o", str(log)] + (["--dry-run"] if dry else [])) == 2
    err = capsys.readouterr().err
    assert message in err and "(3 more points like it)" in err  # 4 compile cases, 1 line
    assert not log.exists()


def test_compile_support_names_the_compiler_it_looked_for(monkeypatch):
    from edgebench.measure.compiled import compile_support
    monkeypatch.setenv("CXX", "/nonexistent/bin/c++")
    assert "'/nonexistent/bin/c++' not found; it takes $CXX" in compile_support("cpu")
    monkeypatch.setenv("CXX", sys.executable)  # any executable: found
    assert compile_support("cpu") is None


def test_compile_mode_in_the_plan_and_its_warnings(no_workers, capsys):
    assert main(["run", "-m", "tiny-llama", "-c", "32", "-n", "2", "-t", "float32", "--decode-mode",
                 "eager,graph,compile", "--device", "cpu", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "tiny-llama|hf|float32|ctx=32|gen=2|b=1|compile|last|sdpa" in out
    assert "1 torch.compile build of the decode step" in out
    c = Case(model="tiny-mamba", backend="mamba_ssm", dtype="bfloat16", ctx=64, gen=2, batch=1,
             decode_mode="compile", logits="last", attn="sdpa")
    lines = plan.warnings([c], {"tiny-mamba": catalog.get("tiny-mamba")}, "cuda")
    assert lines == ["compile decode compiles the hf backend's step: 1 mamba_ssm compile case will "
                     "measure prefill, then end in error (mamba_ssm's own CUDA-graph decode is "
                     "--decode-mode graph)"]
    assert plan.work([c], 1, 0)["compiles"] == 1
