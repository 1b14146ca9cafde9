"""A point measured once: its lines from its workers' results (`--runs`), how failures are charged,
the stability and host-bound flags, crossovers claimed only where resolved, and tiers of one model
compared (`--baseline graph`)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from edgebench.analysis.stats import aggregate_runs, summarize, unstable
from edgebench.commands import compare
from edgebench.errors import UserError
from edgebench.execution.point_lines import point_lines
from edgebench.sweep.spec import Spec


def _stats(median, spread=0.01, n=5):
    return {"median": median, "p10": median * (1 - spread), "p90": median * (1 + spread),
            "stdev": median * spread, "n": n}


def _result(pre=10.0, modes=("eager", "graph"), status="ok", **extra):
    decode = {m: {"status": "ok", "tpot_ms": _stats(2.0 if m == "graph" else 20.0, n=64),
                  "cold_ms": {"first_decode": 1.0}, "gpu_lag_ms": 2.0 if m == "graph" else 0.05,
                  "host_bound": m != "graph"} for m in modes}
    return {"status": status, "reason": None, "prefill_ms": _stats(pre), "cold_ms": {"load": 100},
            "mem": {"peak_allocated_bytes": 5}, "kernels": {"attention": "sdpa-flash"},
            "gpu_lag_ms": 3.0, "host_bound": False, "decode": decode, "decoding": None, **extra}


def test_one_run_gives_a_prefill_line_and_one_line_per_mode():
    pre, dec = point_lines([_result()], ("eager", "graph"))
    assert pre["status"] == "ok" and pre["prefill_ms"]["median"] == 10.0 and "tpot_ms" not in pre
    assert pre["kernels"] and "decode" not in pre and "decoding" not in pre and "runs" not in pre
    assert set(dec) == {"eager", "graph"}
    assert dec["graph"]["tpot_ms"]["median"] == 2.0 and "kernels" not in dec["graph"]
    assert dec["eager"]["host_bound"] is True and dec["graph"]["host_bound"] is False


def test_each_measured_decode_line_carries_the_points_work_and_no_failed_one_does():
    """The floors' numerators (`work`, counted in the worker with the prefill) go on the prefill line
    and on every decode line that measured something, never on a failed or skipped one."""
    work = {"decode_step_bytes": 1000, "prefill_flops": 5000}
    r = _result(modes=("eager",), status="killed", decoding="graph", work=work)
    r["reason"] = "timed out after 60 s"
    pre, dec = point_lines([r], ("eager", "graph", "compile"))
    assert pre["work"] == work and dec["eager"]["work"] == work
    assert "work" not in dec["graph"] and "work" not in dec["compile"]
    pre, dec = point_lines([{"status": "oom", "reason": "CUDA out of memory"}], ("eager",))
    assert "work" not in pre and "work" not in dec["eager"]


def test_runs_keep_each_median_and_the_spread_between_them():
    results = [_result(pre=p) for p in (10.0, 11.0, 30.0)]
    pre, dec = point_lines(results, ("eager", "graph"))
    st = pre["prefill_ms"]
    assert st["run_medians"] == [10.0, 11.0, 30.0] and st["n"] == 3 and st["samples"] == 15
    assert st["median"] == 11.0 and st == {**summarize([10.0, 11.0, 30.0], rounded=True),
                                           "run_medians": st["run_medians"], "samples": 15}
    assert pre["runs"] == 3 and pre["unstable"] is True  # the runs disagree: 10 .. 30
    assert dec["graph"]["runs"] == 3 and "unstable" not in dec["graph"]  # they agree: 2.0 each
    assert pre["cold_ms"] == {"load": 100}  # the first run paid the cold costs


def test_a_worker_killed_in_one_mode_charges_that_mode_and_skips_the_rest():
    r = _result(modes=("eager",), status="killed", decoding="graph")
    r["reason"] = "timed out after 60 s"
    pre, dec = point_lines([r], ("eager", "graph", "compile"))
    assert pre["status"] == "ok" and dec["eager"]["status"] == "ok"
    assert (dec["graph"]["status"], dec["graph"]["reason"]) == ("killed", "timed out after 60 s")
    assert dec["compile"]["status"] == "skipped" and "during graph decode" in dec["compile"]["reason"]


def test_a_failed_prefill_skips_every_decode_and_a_failed_run_names_itself():
    oom = {"status": "oom", "reason": "CUDA out of memory"}
    pre, dec = point_lines([oom], ("eager",))
    assert (pre["status"], pre["reason"]) == ("oom", "CUDA out of memory")
    assert dec["eager"]["status"] == "skipped" and "prefill ended oom" in dec["eager"]["reason"]
    pre, _ = point_lines([_result(), oom], ("eager",))
    assert pre["status"] == "oom" and pre["reason"] == "CUDA out of memory (run 2 of 2)"


def test_unstable_is_robust_to_one_late_sample_but_not_to_a_wide_spread():
    steady = [3.21] * 63 + [6.0]  # one late replay among 64 (the H200's graph decode)
    assert summarize(steady)["stdev"] > 0.1 * 3.21 and unstable(steady) is False
    assert unstable([50, 60, 70, 80, 90]) is True and unstable([5.0]) is None
    assert aggregate_runs([_stats(4.0)]) == _stats(4.0)  # one run: its own Stats


@pytest.mark.parametrize("runs", [0, -1, 101, 2.5, True])
def test_runs_out_of_range_are_refused_with_the_range(runs):
    with pytest.raises(UserError, match="runs must be an integer from 1 to 100"):
        Spec(models="m", runs=runs)


def _point_lines(run, model, ctx, pre, tpots, *, host=False, spread=0.01):
    base = {"v": 2, "type": "case", "run": run, "model": model, "family": "ssm", "ctx": ctx,
            "gen": 64, "device": "H200", "status": "ok"}
    out = [{**base, "prefill_ms": _stats(pre, spread), **({"host_bound": True} if host else {})}]
    out += [{**base, "decode_mode": m, "tpot_ms": _stats(t, spread, 64)} for m, t in tpots.items()]
    return out


def _compare_json(tmp_path, lines, *argv):
    header = {"v": 2, "type": "run", "run": "r", "t": "2026-11-30T10:00:00+00:00", "spec": {},
              "env": {"host": {"hostname": "vm"}}}
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(x) + "\n" for x in [header, *lines]))
    parser = argparse.ArgumentParser()
    compare.add_arguments(parser)
    out = tmp_path / "out.json"
    assert compare.main(parser.parse_args([str(tmp_path), "--format", "json", "-o", str(out),
                                           *argv])) == 0
    return {t["name"]: t["rows"] for t in json.loads(out.read_text())["tables"]}


def test_baseline_decode_mode_compares_the_tiers_of_each_model(tmp_path):
    lines = []
    for ctx, (e, g, c) in ((1024, (50.0, 3.0, 1.6)), (16384, (52.0, 4.7, 2.4))):
        lines += _point_lines("r", "qwen", ctx, 20.0, {"eager": e, "graph": g, "compile": c})
    tables = _compare_json(tmp_path, lines, "--baseline", "graph")
    rows = {(r["setting"].split()[-1], r["ctx"]): r for r in tables["cases"]}
    assert rows[("compile", 1024)]["tpot_ms_ratio"]["ratio"] == pytest.approx(1.6 / 3.0)
    assert rows[("eager", 16384)]["tpot_ms_ratio"]["ratio"] == pytest.approx(52.0 / 4.7)
    assert rows[("graph", 1024)]["tpot_ms_ratio"] is None  # the baseline itself
    assert "prefill_ms_ratio" not in rows[("compile", 1024)]  # tiers share one prefill
    # one prefill per point: the prefill rows carry no decode mode
    assert sum(r["prefill_ms"] is not None for r in tables["cases"]) == 2


def test_a_crossover_is_claimed_only_where_both_brackets_are_resolved(tmp_path):
    # a: flat 100 ms; b: 50 -> 200 ms: they cross between 4K and 16K
    lines = []
    for ctx, b in ((1024, 50.0), (4096, 80.0), (16384, 200.0)):
        lines += _point_lines("r", "a", ctx, 100.0, {})
        lines += _point_lines("r", "b", ctx, b, {})
    x = [r for r in _compare_json(tmp_path, lines, "--table", "crossover")["crossover"]
         if r["metric"] == "prefill_ms"]
    assert [r["resolved"] for r in x] == ["yes"]
    lines[3 * 2 - 1]["host_bound"] = True  # b at 4K measured host-bound
    x = _compare_json(tmp_path, lines, "--table", "crossover")["crossover"]
    assert [r["resolved"] for r in x if r["metric"] == "prefill_ms"] == ["no: host-bound point"]
    wide = []
    for ctx, b in ((1024, 50.0), (4096, 95.0), (16384, 200.0)):
        wide += _point_lines("r", "a", ctx, 100.0, {}, spread=0.3)
        wide += _point_lines("r", "b", ctx, b, {}, spread=0.3)
    x = _compare_json(tmp_path, wide, "--table", "crossover")["crossover"]
    assert [r["resolved"] for r in x if r["metric"] == "prefill_ms"] == ["no: intervals overlap"]


def test_a_v1_log_reads_as_one_run_per_point(tmp_path):
    from edgebench.logs.loader import load
    line = {"v": 1, "type": "case", "run": "r", "model": "m", "ctx": 8, "gen": 2, "device": "CPU",
            "decode_mode": "eager", "status": "ok", "prefill_ms": _stats(1.0), "tpot_ms": _stats(2.0)}
    Path(tmp_path / "old.jsonl").write_text(json.dumps(line) + "\n")
    (row,) = load([tmp_path]).cases
    assert (row["runs"], row["host_bound"], row["unstable"]) == (1, False, False)
    assert row["prefill_ms"]["median"] == 1.0 and row["tpot_ms"]["median"] == 2.0


def test_plots_band_the_spread_and_mark_host_bound_points(tmp_path):
    pytest.importorskip("matplotlib")
    from edgebench.logs.loader import load
    from edgebench.report.plots import draw_all
    lines = []
    for ctx in (1024, 4096):
        lines += _point_lines("r", "qwen", ctx, 20.0, {"eager": 50.0}, host=True)
    header = {"v": 2, "type": "run", "run": "r", "t": "2026-11-30T10:00:00+00:00", "spec": {}}
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(x) + "\n" for x in [header, *lines]))
    plots = {p.kind: p for p in draw_all(load([tmp_path / "a.jsonl"]), tmp_path / "plots")}
    assert "band: p10-p90" in plots["prefill"].title and "hollow: host-bound" in plots["prefill"].title
    assert "hollow" not in plots["tpot"].title  # the decode lines were not flagged


def test_the_dry_run_estimate_counts_every_run():
    from edgebench.sweep import estimate, suite_plan
    one, three = Spec(models="qwen2.5-0.5b", ctx="1k,16k"), Spec(models="qwen2.5-0.5b", ctx="1k,16k", runs=3)
    t1 = suite_plan.estimated_seconds(one, one.plan(), [])[0] - estimate.RUN_START_S
    t3 = suite_plan.estimated_seconds(three, three.plan(), [])[0] - estimate.RUN_START_S
    assert t3 == pytest.approx(3 * t1)


def test_review_fixes_in_a_points_lines():
    # the median of an even number of run lags is the mean of the middle two
    a, b = _result(), _result()
    a["gpu_lag_ms"], b["gpu_lag_ms"] = 0.5, 5.0
    a["raw"], b["raw"] = {"prefill_ms": [10.0, 10.1]}, {"prefill_ms": [9.9, 10.0]}
    pre, _ = point_lines([a, b], ("eager",))
    assert pre["gpu_lag_ms"] == 2.75 and pre["host_bound"] is False  # 2.75 ms is past 10% of 10 ms
    # samples of several runs stay apart: a bootstrap over them would ignore the between-run spread
    assert pre["raw"] == {"prefill_ms_by_run": [[10.0, 10.1], [9.9, 10.0]]}
    # a worker that died after every measurement: the lines stand, energy says why it is missing
    late = _result(modes=("eager",), status="killed")
    late["reason"] = "timed out after 60 s"
    pre, dec = point_lines([late], ("eager",))
    assert pre["status"] == "ok" and dec["eager"]["status"] == "ok"
    assert pre["energy_why"] == "the worker ended killed after its measurements (timed out after 60 s)"
    # a worker that died before saying which mode it was in: the first mode left is charged
    early = _result(modes=(), status="oom", exit_code=-9)
    early["reason"] = "killed by the OOM killer"
    _, dec = point_lines([early], ("graph", "eager"))
    assert (dec["graph"]["status"], dec["graph"]["exit_code"]) == ("oom", -9)
    assert dec["eager"]["status"] == "skipped"


def test_decode_mean_power_is_per_step_whatever_the_batch():
    from edgebench.logs import schema
    line = {"type": "case", "model": "m", "ctx": 8, "gen": 8, "batch": 4, "decode_mode": "eager",
            "status": "ok", "tpot_ms": {"median": 20.0}, "energy": {"decode_j_per_token": 2.0}}
    # 2 J per token x 4 tokens per step / 20 ms per step = 400 W
    assert schema.expand_case(line)["energy"]["decode_mean_w"] == 400.0


def test_tier_ratios_pair_the_same_generation_length(tmp_path):
    lines = []
    for gen, (e, g) in ((128, (50.0, 3.0)), (512, (52.0, 6.0))):
        for rec in _point_lines("r", "qwen", 1024, 20.0, {"eager": e, "graph": g}):
            lines.append({**rec, "gen": gen})
    rows = _compare_json(tmp_path, lines, "--baseline", "graph")["cases"]
    eager = {r["setting"]: r for r in rows if r["setting"].endswith("eager")}
    ratios = sorted(r["tpot_ms_ratio"]["ratio"] for r in rows if r.get("tpot_ms_ratio"))
    assert ratios == pytest.approx(sorted([50.0 / 3.0, 52.0 / 6.0])) and eager


def test_a_worker_sent_known_kernels_skips_detection_and_says_where_they_came_from(monkeypatch):
    """A point whose kernels an earlier point of the run found: no profiled detection forward (no
    `cold_ms.detect_kernels`), `kernels_from` names that point, and a fallback still warns."""
    pytest.importorskip("torch", reason="torch is needed for a real prefill")
    from edgebench.execution import isolate
    from edgebench.logs.contracts import MalformedRequest
    from edgebench.measure import point_run
    from edgebench.models import kernel_detect

    partials, detected = [], []
    monkeypatch.setattr(isolate, "report_partial", partials.append)
    real = kernel_detect.detect
    monkeypatch.setattr(kernel_detect, "detect", lambda fn: detected.append(1) or real(fn))
    c = {"model": "tiny-mamba", "backend": "hf", "dtype": "float32", "ctx": 32, "gen": 2, "batch": 1,
         "logits": "last", "attn": "sdpa"}
    base = {"point": c, "decode_modes": [], "device": "cpu", "reps": 1, "warmup": 0, "telemetry": False}
    fresh = point_run.run_point(dict(base))
    assert detected == [1] and "detect_kernels" in fresh["cold_ms"] and "kernels_from" not in fresh
    known = {"ssm_scan": "torch-reference", "conv1d": "torch-conv1d"}
    partials.clear()
    reused = point_run.run_point({**base, "known_kernels": known, "kernels_from": "0123456789ab"})
    assert detected == [1]  # not profiled again
    assert reused["kernels"] == known and reused["kernels_from"] == "0123456789ab"
    assert "detect_kernels" not in reused["cold_ms"] and "first_forward" in reused["cold_ms"]
    assert reused["fallback"] is True
    warned = [w for p in partials for w in p.get("warnings") or []]
    assert any("PyTorch reference" in w for w in warned) and any("causal-conv1d" in w for w in warned)
    with pytest.raises(MalformedRequest, match="come together"):
        point_run.run_point({**base, "known_kernels": known})


@pytest.mark.parametrize("reps, calls", [(0, 1), (2, 1 + 1 + 2)])
def test_a_fit_probe_prefills_once_and_a_timed_prefill_measures_its_lag_on_a_warm_up(monkeypatch, reps, calls):
    """maxctx asks whether the cold prefill fits (reps 0): a second call would measure the caching
    allocator's fragmentation instead (on the H200 it cut mamba-790m's full-logits fit by a third)."""
    from edgebench.measure import phases

    class FakeTimer:  # the CUDA event timer, without a GPU
        def __init__(self, *a, **k):
            self.n = 0

        def mark(self):
            self.n += 1

        def pairs_ms(self):
            return [1.0] * (self.n // 2)

    monkeypatch.setattr(phases, "sync", lambda device: None)
    monkeypatch.setattr(phases, "Timer", FakeTimer)
    made = []

    class Loaded:
        def prefill(self, ids, logits):
            made.append(logits)
            return object()

    res = phases.measure_prefill(Loaded(), ids=None, reps=reps, warmup=1, logits="all", device="cuda:0")
    assert len(made) == calls
    assert (res.extra["gpu_lag_ms"] is None) == (reps == 0)
    assert len(res.samples_ms) == reps
