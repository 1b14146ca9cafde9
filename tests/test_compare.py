"""Statistics, crossover search and the compare command."""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from edgebench.analysis.crossover import find_crossovers
from edgebench.analysis.stats import (bootstrap_ratio_ci, is_significant, normal_ratio_ci, ratio_ci,
                                      summarize)
from edgebench.commands import compare
from edgebench.errors import UserError

FOREIGN = Path(__file__).parent / "fixtures" / "foreign"


def stats(median, rel=0.01, n=5):
    return {"median": median, "p10": median * (1 - rel), "p90": median * (1 + rel),
            "stdev": median * rel, "n": n}


def test_summarize_matches_numpy():
    s = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["median"] == 3.0 and s["n"] == 5
    assert s["p10"] == pytest.approx(np.percentile([1, 2, 3, 4, 100], 10))
    assert s["stdev"] == pytest.approx(np.std([1, 2, 3, 4, 100], ddof=1))
    assert summarize([]) is None


def test_bootstrap_ci_separates_distinct_samples_and_not_equal_ones():
    rng = np.random.default_rng(1)
    a = 10.0 + rng.normal(0, 0.1, 50)
    b = 12.0 + rng.normal(0, 0.1, 50)
    ci = bootstrap_ratio_ci(a, b)
    assert ci.lo < ci.ratio < ci.hi and ci.hi < 1.0 and is_significant(ci) is True
    same = bootstrap_ratio_ci(a, 10.0 + rng.normal(0, 0.1, 50))
    assert is_significant(same) is False and same.within_spread is True
    assert bootstrap_ratio_ci(a, b, seed=3) == bootstrap_ratio_ci(a, b, seed=3)


def test_normal_approximation_from_summary_stats():
    wide = normal_ratio_ci(stats(10.0, rel=0.2), stats(10.5, rel=0.2))
    assert wide.method == "normal-approx" and wide.lo < 1.0 < wide.hi
    tight = normal_ratio_ci(stats(10.0, rel=0.001, n=100), stats(10.5, rel=0.001, n=100))
    assert tight.hi < 1.0 and is_significant(tight)
    no_spread = normal_ratio_ci({"median": 10.0}, {"median": 5.0})
    assert no_spread.ratio == 2.0 and is_significant(no_spread) is None
    # raw samples take precedence over the summary
    assert ratio_ci(stats(1.0), stats(1.0), [1.0, 1.1, 0.9], [2.0, 2.1, 1.9]).method == "bootstrap"


def test_crossover_interpolates_a_known_power_law_crossing():
    # a = 1e-3 * ctx^2, b = 1 * ctx: they cross at ctx = 1000 exactly, between 512 and 2048.
    ctxs = [128, 512, 2048, 8192]
    a = {c: 1e-3 * c * c for c in ctxs}
    b = {c: float(c) for c in ctxs}
    (x,) = find_crossovers(a, b)
    assert x.ctx == pytest.approx(1000.0, rel=1e-9)
    assert x.value == pytest.approx(1000.0, rel=1e-9)
    assert (x.before.ctx, x.after.ctx) == (512, 2048)
    assert x.before.a < x.before.b and x.after.a > x.after.b
    assert x.better_after == "b"
    assert find_crossovers(a, b, lower_is_better=False)[0].better_after == "a"


def test_crossover_none_when_curves_never_cross_and_ignores_unshared_points():
    a = {1024: 1.0, 2048: 2.0, 4096: 4.0}
    b = {1024: 2.0, 2048: 3.0, 4096: 5.0, 8192: 0.5}
    assert find_crossovers(a, b) == []
    tie = find_crossovers({1: 1.0, 2: 2.0, 4: 5.0}, {1: 2.0, 2: 2.0, 4: 3.0})
    assert len(tie) == 1 and tie[0].ctx == 2.0


def write_logs(folder: Path) -> None:
    """Two models on one device: qwen prefill ~quadratic, mamba linear, crossing near 16K; mamba
    TPOT equal to qwen's within the spread at 1K."""
    header = {"v": 1, "type": "run", "run": "r1", "t": "2026-11-22T16:00:00+00:00",
              "env": {"device": {"name": "Orin"}, "host": {"hostname": "jet"}}, "spec": {}}
    lines = [header]
    for model, fam in (("qwen", "transformer"), ("mamba", "ssm")):
        for ctx in (1024, 4096, 16384, 65536):
            pre = 0.01 * ctx + 8e-7 * ctx * ctx if fam == "transformer" else 0.02 * ctx
            tpot = 20.0 + (ctx / 1024 * 0.5 if fam == "transformer" else 0.3)
            rec = {"v": 1, "type": "case", "run": "r1", "key": f"{model}|{ctx}", "model": model,
                   "family": fam, "backend": "hf", "dtype": "bfloat16", "ctx": ctx, "gen": 64,
                   "batch": 1, "decode_mode": "graph", "logits": "last", "status": "ok",
                   "reason": None, "device": "Orin", "prefill_ms": stats(pre),
                   "tpot_ms": stats(tpot, rel=0.05, n=64),
                   "mem": {"peak_allocated_bytes": 2**30 + ctx * 1000}}
            if model == "qwen" and ctx == 65536:
                rec.update(status="oom", reason="CUDA out of memory", prefill_ms=None,
                           tpot_ms=None, mem=None)
            lines.append(rec)
    lines.append({"v": 1, "type": "maxctx", "run": "r1", "model": "qwen", "mode": "prefill",
                  "max_ok_ctx": 40960, "min_fail_ctx": 45056, "probes": 7, "resolution": 4096,
                  "wall_s": 120.0, "budget_bytes": 8 * 2**30, "trail": [[40960, "ok"], [45056, "oom"]],
                  "mem_at_max_ok": {"peak_allocated_bytes": 6 * 2**30, "peak_reserved_bytes": 7 * 2**30,
                                    "predicted_bytes": 5 * 2**30}})
    lines.append({"v": 1, "type": "maxctx", "run": "r1", "model": "mamba", "mode": "prefill",
                  "max_ok_ctx": 331776, "min_fail_ctx": 335872, "probes": 8, "resolution": 4096,
                  "wall_s": 60.0, "budget_bytes": None, "trail": [], "limited_by": "error"})
    lines.append({"v": 1, "type": "ops", "run": "r1", "key": "mamba|4096", "phase": "prefill",
                  "shares": {"gemm": 0.4, "ssm_scan": 0.55, "other": 0.05}, "top": [],
                  "kernel_ms": 80.0, "wall_ms": 100.0, "decode_mode": "graph"})
    (folder / "orin.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def run_compare(*argv) -> int:
    parser = argparse.ArgumentParser()
    compare.add_arguments(parser)
    return compare.main(parser.parse_args([str(a) for a in argv]))


def test_compare_json_has_ratios_marks_crossover_maxctx_and_ops(tmp_path):
    write_logs(tmp_path)
    out = tmp_path / "out.json"
    assert run_compare(tmp_path, "--baseline", "qwen", "--format", "json", "-o", out) == 0
    doc = json.loads(out.read_text())
    tables = {t["name"]: t["rows"] for t in doc["tables"]}
    mamba = {r["ctx"]: r for r in tables["cases"] if r["model"] == "mamba"}
    near = mamba[1024]["tpot_ms_ratio"]
    assert near["within_spread"] is True and near["ci_lo"] < 1.0 < near["ci_hi"]
    far = mamba[16384]["tpot_ms_ratio"]
    assert far["within_spread"] is False and far["ratio"] < 1.0
    assert mamba[1024]["prefill_ms_ratio"]["ratio"] == pytest.approx(
        0.02 * 1024 / (0.01 * 1024 + 8e-7 * 1024**2))
    assert mamba[65536]["prefill_ms_ratio"] is None  # the baseline ran out of memory there
    oom = [r for r in tables["cases"] if r["status"] == "oom"]
    assert oom[0]["reason"] == "CUDA out of memory" and oom[0]["prefill_ms"] is None
    assert mamba[1024]["prefill_tok_s"] == pytest.approx(1024 * 1000 / (0.02 * 1024))
    prefill_x = [r for r in tables["crossover"] if r["metric"] == "prefill_ms"]
    (x,) = prefill_x
    expect = math.exp(math.log(4096) + (math.log(16384) - math.log(4096)) * (
        math.log(0.02 * 4096 / (0.01 * 4096 + 8e-7 * 4096**2))
        / (math.log(0.02 * 4096 / (0.01 * 4096 + 8e-7 * 4096**2))
           - math.log(0.02 * 16384 / (0.01 * 16384 + 8e-7 * 16384**2)))))
    assert x["crossover_ctx"] == pytest.approx(expect)
    assert (x["below_ctx"], x["above_ctx"], x["better_after"]) == (4096, 16384, "mamba")
    by_model = {m["model"]: m for m in tables["maxctx"]}
    assert by_model["qwen"]["max_ok_ctx"] == 40960
    assert by_model["qwen"]["limited_by"] == "oom"  # from the trail (logs older than the field)
    assert by_model["mamba"]["limited_by"] == "error"
    q = by_model["qwen"]
    assert (q["peak_gib_at_max"], q["reserved_gib_at_max"], q["model_gib_at_max"]) == (6.0, 7.0, 5.0)
    assert by_model["mamba"]["reserved_gib_at_max"] is None  # older logs: not measured, not invented
    (ops,) = tables["ops"]
    assert ops["ssm_scan"] == 0.55 and ops["gpu_idle_share"] == pytest.approx(0.2)
    assert ops["model"] == "mamba" and ops["ctx"] == 4096
    assert ops["decode"] == "graph"  # eager and graph profiles of one case are told apart


def test_compare_text_md_csv_show_the_mark_and_tables(tmp_path, capsys):
    write_logs(tmp_path)
    assert run_compare(tmp_path, "--baseline", "qwen") == 0
    text = capsys.readouterr().out
    assert "~" in text and "Crossover" in text and "Max context" in text and "ssm_scan" in text
    assert run_compare(tmp_path, "--baseline", "qwen", "--format", "md", "--table", "cases") == 0
    md = capsys.readouterr().out
    assert md.startswith("### Cases") and "| Orin @ jet | mamba |" in md and "Crossover" not in md
    assert run_compare(tmp_path, "--baseline", "qwen", "--format", "csv", "--table", "cases",
                       "--metric", "tpot_ms") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {"tpot_ms", "tpot_ms_ratio", "tpot_ms_ratio_within_spread"} <= rows[0].keys()
    assert "prefill_ms" not in rows[0]
    marks = {r["ctx"]: r["tpot_ms_ratio_within_spread"] for r in rows if r["model"] == "mamba"}
    assert marks == {"1024": "True", "4096": "False", "16384": "False", "65536": ""}


def test_compare_reads_foreign_logs_beside_edgebench_logs(tmp_path, capsys):
    write_logs(tmp_path)
    assert run_compare(tmp_path, FOREIGN, "--format", "json", "--table", "cases") == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)["tables"][0]["rows"]
    assert {r["source"] for r in rows} == {"edgebench", "ssm-char", "llama-bench"}
    assert "pg512,64" in captured.err  # the skipped llama-bench test is reported


def test_compare_rejects_bad_arguments(tmp_path):
    write_logs(tmp_path)
    with pytest.raises(UserError, match="baseline model 'gpt5' is not in the logs"):
        run_compare(tmp_path, "--baseline", "gpt5")
    with pytest.raises(UserError, match="unknown metric latency"):
        run_compare(tmp_path, "--metric", "latency")
    with pytest.raises(UserError, match="unknown table"):
        run_compare(tmp_path, "--table", "everything")


MAXCTX_LINE = {"v": 1, "type": "maxctx", "run": "m1", "model": "qwen", "mode": "last",
               "max_ok_ctx": 40960, "min_fail_ctx": 45056, "trail": [[40960, "ok"], [45056, "oom"]]}
RUN_LINE = {"v": 1, "type": "run", "run": "m1", "t": "2026-11-22T10:00:00+00:00"}


@pytest.mark.parametrize("content", ["maxctx", "empty", "header", "newer", "ops"])
def test_logs_without_cases_give_their_tables_and_no_measured_cases(tmp_path, capsys, content):
    lines = {"maxctx": [RUN_LINE, MAXCTX_LINE], "empty": [], "header": [RUN_LINE],
             "newer": [dict(RUN_LINE, v=99)],
             "ops": [RUN_LINE, {"v": 1, "type": "ops", "run": "m1", "key": "k", "phase": "decode",
                                "shares": {"gemm": 1.0}}]}[content]
    log = tmp_path / "a.jsonl"
    log.write_text("".join(json.dumps(x) + "\n" for x in lines))
    for fmt in ("table", "md", "csv", "json"):
        for table in ("all", "cases", "crossover", "maxctx", "ops"):
            assert run_compare(log, "--format", fmt, "--table", table) == 0
            out = capsys.readouterr().out
            if fmt in ("table", "md") and table in ("all", "cases", "crossover"):
                assert "no measured cases in these logs" in out
            if fmt == "json":
                names = [t["name"] for t in json.loads(out)["tables"]]
                assert names == ([table] if content == table else ["maxctx"] if content ==
                                 "maxctx" and table == "all" else ["ops"] if content == "ops"
                                 and table == "all" else [])
    assert run_compare(log) == 0
    text = capsys.readouterr().out
    assert ("Max context" in text) == (content == "maxctx")
    assert ("Operator breakdown" in text) == (content == "ops")
    assert run_compare(log, "--table", "maxctx") == 0
    assert content == "maxctx" or "no max-context search (maxctx) records" in \
        capsys.readouterr().out


def test_output_errors_are_one_line_with_the_fix(tmp_path, capsys):
    write_logs(tmp_path)
    with pytest.raises(UserError, match=r"is a folder; give a file name, e\.g\. "):
        run_compare(tmp_path, "-o", tmp_path)
    with pytest.raises(UserError, match="folder .*nope does not exist"):
        run_compare(tmp_path, "-o", tmp_path / "nope" / "x.md")
    with pytest.raises(UserError, match="cannot write /dev/full: No space left on device; free "
                                        r"space on that disk or write elsewhere \(-o PATH\)"):
        run_compare(tmp_path, "-o", "/dev/full")
    from edgebench import cli
    assert cli.main(["compare", str(tmp_path), "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgebench compare: error: -o ") and err.count("\n") == 1


def test_log_text_reaches_the_terminal_escaped(tmp_path, capsys):
    base = {"v": 1, "type": "case", "run": "e1", "ctx": 1024, "status": "oom",
            "device": "GPU\x1b]0;pwned\x07", "reason": "boom\x1b[2J\rspoof"}
    lines = [dict(base, model="[red]x[/]"), dict(base, model="\x1b[31mred"),
             dict(base, model="[/]"), dict(base, model="ok", status=["\x1b[5m"])]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (tmp_path / "b.csv").write_text("model_name,prefill_time_seconds,\x1b[2Jcol\nm,1,2\n")
    for fmt in ("table", "md", "csv"):
        assert run_compare(tmp_path, "--format", fmt) == 0
        cap = capsys.readouterr()
        assert "\x1b" not in cap.out + cap.err and "\x07" not in cap.out and "\r" not in cap.out
        assert "[red]x[/]" in cap.out and "\\x1b[31mred" in cap.out and "[/]" in cap.out
        assert "boom\\x1b[2J\\x0dspoof" in cap.out
    assert run_compare(tmp_path, "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)  # JSON keeps the text, escaped as JSON does
    assert "\x1b[31mred" in {r["model"] for r in doc["tables"][0]["rows"]}
    from edgebench.commands import validate
    parser = argparse.ArgumentParser()
    validate.add_arguments(parser)
    assert validate.main(parser.parse_args([str(tmp_path)])) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "status ['\\x1b[5m']" in out and "unknown column '\\x1b[2Jcol'" \
        in out


def test_extreme_values_in_range_render_in_every_format_with_a_baseline(tmp_path):
    """The bounds of the reader's ranges (1e-6 .. 1e12 ms, spreads as wide as allowed): every
    ratio and interval the tables derive from them is a finite number or absent."""
    base = {"v": 1, "type": "case", "run": "x1", "ctx": 1024, "status": "ok"}
    lines = [dict(base, model="a", prefill_ms={"median": 1e-6, "p10": 0, "p90": 1e12, "n": 2},
                  tpot_ms={"median": 1e12, "p10": 0.0, "p90": 1e12, "stdev": 1e12, "n": 2}),
             dict(base, model="b", prefill_ms={"median": 1e12, "p10": 1e-6, "p90": 1e12, "n": 2},
                  tpot_ms={"median": 1e-6, "n": 3, "stdev": 1e12}),
             dict(base, model="a", ctx=2048, prefill_ms={"median": 1e12},
                  raw={"prefill_ms": [1e12, 1e12]}),
             dict(base, model="c", ctx=2048, prefill_ms={"median": 1e-6},
                  raw={"prefill_ms": [1e-6, 1e-6]})]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    for fmt in ("table", "md", "csv"):
        assert run_compare(tmp_path, "--baseline", "a", "--format", fmt, "-o",
                           tmp_path / f"out.{fmt}") == 0
    assert run_compare(tmp_path, "--baseline", "a", "--format", "json", "-o",
                       tmp_path / "out.json") == 0
    doc = json.loads((tmp_path / "out.json").read_text(),
                     parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    ratios = {(r["model"], r["ctx"]): r["prefill_ms_ratio"] for r in doc["tables"][0]["rows"]}
    assert ratios[("b", 1024)]["ratio"] == pytest.approx(1e18)
    assert ratios[("b", 1024)]["ci_lo"] is None  # a spread of 10^17 medians: no interval
    assert ratios[("c", 2048)]["ratio"] == pytest.approx(1e-18)


def test_one_table_asked_for_says_nothing_absent_when_the_logs_have_cases(tmp_path, capsys):
    write_logs(tmp_path)
    assert run_compare(tmp_path, "--table", "crossover") == 0
    out = capsys.readouterr().out
    assert "Crossover" in out and "no measured cases" not in out


def _tuned_log(path: Path, host: str, scan_config: str) -> None:
    """A one-point log of an H200 on `host` whose Mamba-2 prefill ran `scan_config` (and a Transformer)."""
    header = {"v": 1, "type": "run", "run": f"r-{host}", "t": "2026-11-30T19:00:00+00:00",
              "device": "NVIDIA H200", "env": {"device": {"name": "NVIDIA H200"}, "host": {"hostname": host}},
              "spec": {}}
    tuned = {"_chunk_scan_fwd_kernel": scan_config, "_state_passing_fwd_kernel": "BLOCK_SIZE=256,num_warps=4"}
    lines = [header]
    for model, fam, extra in (("mamba2-780m", "ssm", {"autotune": tuned}), ("qwen2.5-0.5b", "transformer", {})):
        lines.append({"v": 1, "type": "case", "run": f"r-{host}", "key": f"{model}-{host}", "model": model,
                      "family": fam, "backend": "hf", "dtype": "bfloat16", "ctx": 16384, "gen": 64, "batch": 1,
                      "logits": "last", "status": "ok", "reason": None, "device": "NVIDIA H200",
                      "prefill_ms": stats(130.0), **extra})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_compare_notes_when_merged_logs_ran_different_autotune_choices_on_one_gpu_model(tmp_path, capsys):
    """Two H200 hosts whose Triton caches chose different configs for a Mamba-2 kernel: compare says so,
    naming the kernel that differs and where each choice ran; the same choice, or a model without an
    autotuned kernel, gives no note."""
    _tuned_log(tmp_path / "a.jsonl", "node1", "BLOCK_SIZE_M=32,num_warps=2,num_stages=5")
    _tuned_log(tmp_path / "b.jsonl", "node2", "BLOCK_SIZE_M=64,num_warps=4,num_stages=3")
    out = tmp_path / "out.json"
    assert run_compare(tmp_path / "a.jsonl", tmp_path / "b.jsonl", "--format", "json", "-o", out) == 0
    notes = [n for n in json.loads(out.read_text())["notes"] if "autotune" in n]
    assert len(notes) == 1
    (note,) = notes
    assert "mamba2-780m" in note and "NVIDIA H200" in note and "2 different" in note
    assert "_chunk_scan_fwd_kernel" in note and "_state_passing_fwd_kernel" not in note  # only what differs
    assert "node1" in note and "node2" in note
    assert run_compare(tmp_path / "a.jsonl", tmp_path / "b.jsonl") == 0
    assert "note: mamba2-780m (hf, bfloat16) on NVIDIA H200: the logs ran 2 different" in capsys.readouterr().err

    _tuned_log(tmp_path / "b.jsonl", "node2", "BLOCK_SIZE_M=32,num_warps=2,num_stages=5")  # the same choice
    assert run_compare(tmp_path / "a.jsonl", tmp_path / "b.jsonl") == 0
    assert "autotune" not in capsys.readouterr().err
