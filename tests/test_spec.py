"""Sweep lists and ranges, Spec validation, TOML spec files, CLI overrides and planning (sharding:
test_scaleout.py)."""
import argparse
import textwrap
import time

import pytest

from edgebench.errors import UserError
from edgebench.sweep.spec import MAX_CASES, Case, Spec, parse_list
from edgebench.sweep.specfile import (SPEC_FILE_KEYS, add_sweep_arguments, list_suites, load_suite,
                                      read_spec_file, spec_from_args)


@pytest.mark.parametrize("text, values", [
    ("1k,4k,16k", [1024, 4096, 16384]),
    ("1k-64k*2", [1024 * 2**i for i in range(7)]),
    ("1k-8k+1k", [1024 * i for i in range(1, 9)]),
    ("1k,4k-16k*2", [1024, 4096, 8192, 16384]),
    ("1k-10k*3", [1024, 3072, 9216]),
    ("100-350+100", [100, 200, 300]),
    ("4k,1k,4k", [4096, 1024]),
    ("128", [128]),
    (64, [64]),
    (["1k", 2048, "4k-8k*2"], [1024, 2048, 4096, 8192]),
])
def test_parse_list(text, values):
    assert parse_list(text) == values


@pytest.mark.parametrize("text, piece", [
    ("64k-1k*2", "64k-1k*2"), ("1k-", "1k-"), ("1k-64k*1", "1k-64k*1"), ("abc", "abc"),
    ("1k,,2k", ""), ("1k-8k", "1k-8k"), ("1k-8k+0", "1k-8k+0"), ("1k-8k*x", "1k-8k*x"),
    ("0-8k*2", "0-8k*2"), ("1k-8k*2.5", "1k-8k*2.5"),
])
def test_parse_list_rejects_quoting_piece_and_grammar(text, piece):
    with pytest.raises(UserError) as info:
        parse_list(text)
    assert f"bad list item {piece!r}" in str(info.value)
    assert "FIRST-LAST*FACTOR" in str(info.value)


def test_case_key_and_dict():
    case = Case("qwen2.5-0.5b", "hf", "bfloat16", 4096, 128, 1, "last", "sdpa", decode_mode="graph")
    assert case.label() == "qwen2.5-0.5b|hf|bfloat16|ctx=4096|gen=128|b=1|graph|last|sdpa"
    assert case.to_dict()["ctx"] == 4096 and case.to_dict()["decode_mode"] == "graph"


def test_spec_defaults_and_normalisation():
    spec = Spec(models="Qwen2.5-0.5B,Qwen/Qwen2.5-0.5B", ctx="1k-4k*2", dtypes="bf16,fp32",
                memory_budget_bytes="8GiB")
    assert spec.models == ["qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B"]
    assert spec.ctx == [1024, 2048, 4096] and spec.dtypes == ["bfloat16", "float32"]
    assert spec.backends == ["hf"] and spec.reps == 5 and spec.warmup == 2
    assert spec.memory_budget_bytes == 8 * 2**30
    assert Spec(dtypes="auto").dtypes == ["auto"]


@pytest.mark.parametrize("kwargs, message", [
    ({"decode_modes": "fast"}, "unknown decode mode 'fast'; choose from eager, graph, compile"),
    ({"reps": 0}, "reps must be an integer >= 1"),
    ({"warmup": -1}, "warmup must be an integer >= 0"),
    ({"logits": "first"}, "unknown logits mode"),
    ({"attn": "flash"}, "unknown attention kind 'flash'; choose from sdpa, eager, flash_attention_2"),
    ({"backends": "vllm"}, "unknown backend"),
    ({"dtypes": "int8"}, "unknown dtype"),
    ({"device": "gpu"}, "unknown device 'gpu'; use auto, cpu, cuda or cuda:N"),
    ({"ctx": "0,1k"}, "ctx values must be at least 1"),
    ({"batch": 0}, "batch values must be at least 1"),
    ({"timeout_s": -3}, "timeout_s must be a positive number"),
    ({"memory_budget_bytes": "12XB"}, "unknown unit 'XB'"),
    ({"raw": "yes"}, "raw must be true or false"),
    ({"models": "a,,b"}, "empty name in models"),
])
def test_spec_validation(kwargs, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        Spec(**kwargs)


def test_plan_order_is_model_major_with_ascending_ctx():
    spec = Spec(models="b-model,a-model", ctx="16k,1k,4k", gen="64,16", decode_modes="graph,eager")
    cases = spec.plan()
    assert len(cases) == 2 * 3 * 2 * (1 + 2)  # per point: its prefill line and one per mode
    assert [c.model for c in cases[:18]] == ["b-model"] * 18
    points = spec.points()
    assert [p.ctx for p in points[:3]] == [1024, 4096, 16384]
    assert [p.gen for p in points[:6]] == [16, 16, 16, 64, 64, 64]
    assert all(p.decode_modes == ("graph", "eager") for p in points)
    assert [c.decode_mode for c in cases[:3]] == [None, "graph", "eager"]
    assert {c.point_fields() for c in cases[:3]} == {cases[0].point_fields()}
    assert len({c.label() for c in cases}) == len(cases)
    assert spec.plan() == cases
    # nothing to decode: gen 0, or full logits (decode after it is decode after last logits)
    assert Spec(models="m", gen="0", logits="last,all").plan()[0].decode_mode is None
    assert [p.decode_modes for p in Spec(models="m", gen="8", logits="last,all").points()] == \
        [("eager",), ()]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e10, 0.5, 0, -3, "60"])
def test_timeout_is_a_finite_number_of_seconds_from_1_s_to_7_days(value):
    with pytest.raises(UserError, match="timeout_s must be a positive number of seconds from 1 to 604800"):
        Spec(timeout_s=value)
    assert Spec(timeout_s=1).timeout_s == 1.0 and Spec(timeout_s=7 * 86400).timeout_s == 604800.0


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e10"])
def test_timeout_in_a_spec_file_or_flag_is_checked_before_any_work(tmp_path, value):
    path = tmp_path / "s.toml"
    path.write_text(f"[sweep]\nmodels = ['tiny-llama']\ntimeout_s = {value}\n")
    with pytest.raises(UserError, match="timeout_s must be a positive number"):
        read_spec_file(str(path))
    with pytest.raises(UserError, match="command line: timeout_s must be a positive number"):
        spec_from_args(_parser().parse_args(["-m", "x", f"--timeout={value}"]))


def test_a_typo_that_plans_a_billion_cases_is_refused_fast_with_the_count():
    t0 = time.monotonic()
    spec = Spec(models="tiny-llama", ctx="1-4k+1", gen="1-4k+1", batch="1-64+1")
    with pytest.raises(UserError) as info:
        spec.plan()
    assert ("plans 2,147,483,648 cases (1,073,741,824 points: 64 batch sizes x 4,096 gen lengths x "
            "4,096 contexts; a prefill line each, and one per decode mode)") in str(info.value)
    assert "--max-cases 2147483648" in str(info.value)
    with pytest.raises(UserError, match="it counts 1,000,000,000,000 values, more than the 1,000,000"):
        parse_list("1-1000000000000+1")
    with pytest.raises(UserError, match="more than the 1,000,000"):
        parse_list("1-600k+1,600k-1200k+1")
    assert time.monotonic() - t0 < 2


def test_max_cases_raises_the_limit_from_a_flag_over_a_spec_file(tmp_path):
    assert MAX_CASES == 10_000
    with pytest.raises(UserError, match="plans 20,200 cases"):
        Spec(models="m", ctx="1-101+1", gen="1-100+1").plan()
    assert len(Spec(models="m", ctx="1-101+1", gen="1-100+1", max_cases=20_200).plan()) == 20_200
    # full logits and gen 0 plan no decode lines: the count says so before planning
    assert len(Spec(models="m", ctx="1-101+1", gen="0,1-99+1", logits="all,last",
                    max_cases=40_000).plan()) == 2 * 101 * 100 + 101 * 99
    path = tmp_path / "s.toml"
    path.write_text("[sweep]\nmodels = ['m']\nctx = '1-101+1'\ngen = '1-100+1'\n")
    with pytest.raises(UserError, match="--max-cases 20200"):
        spec_from_args(_parser().parse_args(["--spec", str(path)])).plan()
    spec = spec_from_args(_parser().parse_args(["--spec", str(path), "--max-cases", "30000"]))
    assert spec.max_cases == 30_000 and len(spec.plan()) == 20_200
    with pytest.raises(UserError, match="max_cases must be an integer >= 1"):
        Spec(max_cases=0)


def test_spec_file_that_is_not_utf8_is_a_clear_error(tmp_path):
    path = tmp_path / "s.toml"
    path.write_bytes(b"[sweep]\nmodels = ['caf\xe9']\n")
    with pytest.raises(UserError, match=r"is not UTF-8 text \(byte 0xe9 at offset 22\); save it as UTF-8"):
        read_spec_file(str(path))
    path.write_bytes("\ufeff[sweep]\nmodels = ['a']\n".encode())  # a BOM from a Windows editor is fine
    assert read_spec_file(str(path)).models == ["a"]


def test_plan_without_models():
    with pytest.raises(UserError, match="no models"):
        Spec().plan()


def test_from_toml(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(textwrap.dedent("""
        description = "test"
        [sweep]
        models = ["qwen2.5-0.5b", "mamba2-780m"]
        ctx = "1k-4k*2"
        gen = [16, 32]
        decode_modes = ["graph"]
        reps = 3
        memory_budget = "24GiB"
        timeout_s = 60
    """))
    spec = read_spec_file(str(path))
    assert spec.ctx == [1024, 2048, 4096] and spec.gen == [16, 32] and spec.reps == 3
    assert spec.memory_budget_bytes == 24 * 2**30 and spec.timeout_s == 60.0
    assert spec.to_dict()["models"] == ["qwen2.5-0.5b", "mamba2-780m"]


@pytest.mark.parametrize("body, message", [
    ("[sweep]\nmodels = ['a']\ncontext = '1k'\n", "unknown key.*context.*valid keys: models"),
    ("models = ['a']\n", "unexpected top-level key"),
    ("description = 'x'\n", "no \\[sweep\\] table"),
    ("[sweep\n", "not valid TOML"),
    ("[sweep]\nctx = '64k-1k*2'\n", "bad list item '64k-1k\\*2'"),
])
def test_from_toml_rejects(tmp_path, body, message):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(UserError, match=message):
        read_spec_file(str(path))


def test_from_toml_missing_file(tmp_path):
    with pytest.raises(UserError, match="cannot read spec file"):
        read_spec_file(str(tmp_path / "nope.toml"))


def _parser():
    parser = argparse.ArgumentParser()
    add_sweep_arguments(parser)
    return parser


def test_cli_flags_override_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("[sweep]\nmodels = ['a', 'b']\nctx = '1k,2k'\nreps = 3\ngen = [16]\n")
    args = _parser().parse_args(["--spec", str(path), "-c", "1k-64k*2", "-r", "7", "--raw",
                                 "--memory-budget", "8GiB"])
    spec = spec_from_args(args)
    assert spec.models == ["a", "b"] and spec.gen == [16]
    assert spec.ctx[-1] == 65536 and spec.reps == 7 and spec.raw is True
    assert spec.memory_budget_bytes == 8 * 2**30
    assert spec_from_args(_parser().parse_args(["-m", "x"])).models == ["x"]
    base = Spec(models="y", reps=2)
    assert spec_from_args(_parser().parse_args(["-n", "8"]), base).reps == 2


def test_cli_rejects_bad_values():
    with pytest.raises(UserError, match="command line: .*bad list item"):
        spec_from_args(_parser().parse_args(["-c", "1k-"]))
    with pytest.raises(UserError, match="not both"):
        spec_from_args(_parser().parse_args(["--spec", "a.toml", "--suite", "x"]))


def test_spec_file_keys_match_flags():
    assert "memory_budget" in SPEC_FILE_KEYS and "memory_budget_bytes" not in SPEC_FILE_KEYS


def test_suites_load_and_list():
    names = list_suites()
    assert {"default-cpu", "default-gpu", "paper-desktop", "paper-jetson"} <= set(names)
    assert all(names.values())
    cpu = load_suite("default-cpu")
    assert cpu.ctx == [128, 512] and cpu.gen == [16] and cpu.reps == 3 and cpu.device == "cpu"
    gpu = load_suite("default-gpu")
    assert gpu.ctx == [1024, 4096, 16384] and gpu.decode_modes == ["eager", "graph"]
    desktop, jetson = load_suite("paper-desktop"), load_suite("paper-jetson")
    assert desktop.ctx[0] == 1024 and desktop.ctx[-1] == 56 * 1024  # the study's 57,344
    assert jetson.ctx[-1] == 32 * 1024 and desktop.gen == jetson.gen == [32]
    assert set(jetson.models) <= set(desktop.models)
    assert spec_from_args(_parser().parse_args(["--suite", "default-gpu", "-c", "2k"])).ctx == [2048]


def test_unknown_suite_lists_suites():
    with pytest.raises(UserError, match="did you mean paper-desktop.*available suites: default-cpu"):
        load_suite("paper-desktp")
