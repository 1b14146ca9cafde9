"""The published study's claims checked on logs (`edgebench claims`, the report's lead section), and the
suites that measure what they need (`run --suite paper-desktop` / `paper-jetson`).

Logs are written with the log writer, as a run writes them: case lines (a prefill and its decode
either on one line or on separate ones), maxctx records whose backend is in their run header, and
ops records keyed to their case."""
from __future__ import annotations

import csv
import io
import json
import math
import re
import sys

import pytest

from edgebench.analysis import published
from edgebench.analysis.claims import FAILS, HOLDS, NOT_MEASURED, evaluate
from edgebench.cli import main
from edgebench.errors import UserError
from edgebench.logs import schema as records
from edgebench.logs.loader import load
from edgebench.logs.writer import LogWriter
from edgebench.models import catalog
from edgebench.sweep import estimate, suite_plan
from edgebench.sweep import shards
from edgebench.sweep.specfile import load_suite, parse_spec_text
from edgebench.sweep.units import format_bytes

GIB = 2**30
STUDY_MAMBA = {"logits": "all", "backend": "mamba_ssm", "dtype": "float16", "decode_mode": "eager"}
STUDY_HF = {"logits": "all", "backend": "hf", "dtype": "bfloat16", "decode_mode": "eager"}
EDGEBENCH = {"logits": "last", "backend": "hf", "dtype": "bfloat16", "decode_mode": "graph"}


def stats(median: float) -> dict:
    return {"median": median, "p10": median * 0.99, "p90": median * 1.01, "stdev": median * 0.01, "n": 5}


class Log:
    """One log of one device, written line by line with the log writer."""

    def __init__(self, path, device: str = "NVIDIA H200", host: str = "box"):
        self.writer, self.device, self.host = LogWriter(path), device, host
        self.header()

    def header(self, spec: dict | None = None) -> None:
        self.run = records.new_run_id()
        self.writer.write({"type": "run", "run": self.run, "t": records.utc_now(), "device": self.device,
                           "env": {"host": {"hostname": self.host}}, "spec": spec or {}})

    def case(self, model: str, ctx: int, how: dict, prefill: float | None = None, tpot: float | None = None,
             energy: float | None = None, gen: int = 32, status: str = "ok", host_bound: bool = False) -> str:
        rec = {"type": "case", "run": self.run, "model": model, "family": catalog.get(model).family,
               "ctx": ctx, "gen": gen, "batch": 1, "attn": "sdpa", "status": status, "device": self.device,
               "host_bound": host_bound, **how}
        rec["key"] = records.case_key(rec, self.device)
        if prefill is not None:
            rec["prefill_ms"] = stats(prefill)
        if tpot is not None:
            rec["tpot_ms"] = stats(tpot)
        if energy is not None:
            rec["energy"] = {"prefill_j": energy}
        self.writer.write(records.compact_case(rec))
        return rec["key"]

    def ops(self, key: str, scan: float, conv: float = 0.0) -> None:
        self.writer.write({"type": "ops", "run": self.run, "key": key, "phase": "prefill",
                           "shares": {"ssm_scan": scan, "causal_conv1d": conv, "gemm": 1.0 - scan - conv},
                           "kernel_ms": 10.0, "wall_ms": 11.0})

    def searches(self, backend: str, dtype: str, mode: str, found: dict, budget: int | None = 24 * GIB) -> None:
        """One maxctx run (backend in its header, as `edgebench maxctx` writes it): {model: (max_ok, min_fail)}."""
        self.header({"maxctx": {"backend": backend, "logits": mode}})
        for model, (ok, fail) in found.items():
            self.writer.write({"type": "maxctx", "run": self.run, "model": model,
                               "family": catalog.get(model).family, "mode": mode, "device": self.device,
                               "dtype": dtype, "gen": 0, "budget_bytes": budget, "max_ok_ctx": ok,
                               "min_fail_ctx": fail, "probes": 6, "resolution": 8192,
                               "trail": [[ok, "ok"]] + ([[fail, "oom"]] if fail else [])})

    def close(self) -> None:
        self.writer.close()


def by_claim(results, device: str | None = None, method: str | None = None) -> dict[int, list]:
    out: dict[int, list] = {}
    for r in results:
        if (device is None or r.device.startswith(device)) and (method is None or r.method == method):
            out.setdefault(r.claim, []).append(r)
    return out


def paper_like(log: Log) -> None:
    """The study's method with the study's own numbers (RTX 4090): every claim holds."""
    for ctx, qwen, mamba in ((1024, 13.8, 26.0), (8192, 120.0, 130.0), (32768, 1300.3, 491.0)):
        log.case("qwen2.5-0.5b", ctx, STUDY_HF, prefill=qwen, tpot=12.5, energy=qwen / 2)
        log.case("mamba2-780m", ctx, STUDY_MAMBA, prefill=mamba, tpot=13.8, energy=mamba / 2)
    for ctx, share in ((1024, 0.40), (16384, 0.58)):
        log.ops(log.case("mamba2-130m", ctx, STUDY_MAMBA, prefill=5.0, gen=0), share - 0.05, 0.05)
    log.searches("hf", "bfloat16", "all", {"qwen2.5-0.5b": (57344, 65536), "llama-3.2-1b": (65536, 73728)})
    log.searches("mamba_ssm", "float16", "all", {"mamba2-780m": (221184, 229376)})


def test_each_claim_holds_on_the_study_s_own_numbers(tmp_path):
    log = Log(tmp_path / "a.jsonl")
    paper_like(log)
    log.close()
    got = by_claim(evaluate(load([tmp_path])), method="study")
    assert [r.verdict for c in (1, 2, 3, 4) for r in got[c]] == [HOLDS] * 4
    (one,), (two,), (three,), (four,) = got[1], got[2], got[3], got[4]
    assert one.value == pytest.approx(221184 / 65536) and one.budget_bytes == 24 * GIB
    assert one.published == pytest.approx(220000 / 65536)  # Fig. 5a, over the models measured here
    assert "llama-3.2-1b" in one.shown and "Fig. 5a" in one.published_shown
    assert two.value == pytest.approx(26.0 / 13.8) and two.published == pytest.approx(26.0 / 13.8)
    assert three.value == pytest.approx(1300.3 / 491.0) and three.published == pytest.approx(1300.3 / 491.0)
    assert any(re.search(r"curves cross near (\d+\.?\d*)K \(between 8K and 32K; resolved: yes\)", p)
               for p in three.points)
    assert four.value == pytest.approx(0.58) and "16K" in four.shown  # the longest context profiled
    assert two.threshold == pytest.approx(math.sqrt(1.8)) and one.threshold == three.threshold == 2.0
    # edgebench's method measured nothing here: every claim says what it needs, never a guess
    for r in evaluate(load([tmp_path])):
        if r.method == "edgebench":
            assert r.verdict == NOT_MEASURED and r.value is None and "--logits last" in r.needs


def test_each_claim_fails_on_numbers_like_edgebench_s_defaults_on_the_h100(tmp_path):
    log = Log(tmp_path / "b.jsonl", device="NVIDIA H100 80GB HBM3")
    for ctx, qwen, mamba in ((1024, 21.0, 23.0), (16384, 70.0, 72.0), (65536, 576.5, 480.0)):
        log.case("qwen2.5-0.5b", ctx, EDGEBENCH, prefill=qwen, tpot=5.0)
        log.case("mamba2-780m", ctx, EDGEBENCH, prefill=mamba, tpot=3.5)
    log.ops(log.case("mamba2-130m", 16384, EDGEBENCH, prefill=5.0, gen=0), 0.20, 0.06)
    log.searches("hf", "bfloat16", "last", {"qwen2.5-0.5b": (421888, 430080), "mamba2-780m": (282624, 290816),
                                            "mamba-790m": (368640, 376832)})
    log.close()
    got = by_claim(evaluate(load([tmp_path])), method="edgebench")
    assert [r.verdict for c in (1, 2, 3, 4) for r in got[c]] == [FAILS] * 4
    assert got[1][0].value == pytest.approx(368640 / 421888)  # the best SSM over the best Transformer
    assert got[2][0].value == pytest.approx(23.0 / 21.0)  # 1K: 16K is past the short contexts
    assert got[3][0].value == pytest.approx(576.5 / 480.0) and "64K" in got[3][0].shown
    assert got[4][0].value == pytest.approx(0.26)


def test_not_measured_names_the_points_it_needs(tmp_path):
    log = Log(tmp_path / "c.jsonl")
    log.case("qwen2.5-0.5b", 1024, STUDY_HF, prefill=14.0)
    for ctx in (1024, 16384):  # a pair, but never at a long context
        log.case("qwen2.5-1.5b", ctx, STUDY_HF, prefill=30.0)
        log.case("mamba2-1.3b", ctx, STUDY_MAMBA, prefill=45.0)
    log.case("mamba2-780m", 1024, {**STUDY_MAMBA, "backend": "hf", "dtype": "bfloat16"}, prefill=26.0)
    log.searches("hf", "bfloat16", "all", {"qwen2.5-0.5b": (57344, 65536), "phi-3-mini-128k": (8192, 16384)})
    log.close()
    got = by_claim(evaluate(load([tmp_path])), method="study")
    (one,), (two,), (three,), (four,) = got[1], got[2], got[3], got[4]
    assert one.verdict == NOT_MEASURED and "comparable SSM" in one.needs and "Transformer" not in one.needs
    assert "phi-3-mini-128k: 8,192" in one.points  # shown, but 3.8B parameters: not comparable
    assert two.verdict == HOLDS  # the 1.5B pair at 1K and 16K; mamba2-780m through hf is not the study's
    assert three.verdict == NOT_MEASURED and ">= 32K" in three.needs and "measured only up to 16K" in three.needs
    assert four.verdict == NOT_MEASURED and "--profile ops" in four.needs and "mamba2-130m" in four.needs


def test_a_length_ratio_is_decided_only_when_its_interval_is(tmp_path):
    log = Log(tmp_path / "d.jsonl")
    # the Transformer's search passed its limit: the ratio is at most 232K / 128K < 2 -> does not hold
    log.searches("hf", "bfloat16", "last", {"qwen2.5-0.5b": (131072, None), "mamba-790m": (229376, 237568)})
    log.searches("hf", "bfloat16", "last", {"qwen2.5-0.5b": (65536, 73728), "mamba-790m": (262144, None)},
                 budget=8 * GIB)  # the SSM's passed its limit: at least 262K / 72K > 2 -> holds
    log.searches("hf", "bfloat16", "last", {"qwen2.5-0.5b": (131072, 139264), "mamba-790m": (262144, None)},
                 budget=16 * GIB)  # at least 262K / 136K = 1.9, unbounded above: undecided
    log.close()
    got = {r.budget_bytes: r for r in by_claim(evaluate(load([tmp_path])), method="edgebench")[1]}
    assert got[24 * GIB].verdict == FAILS and got[8 * GIB].verdict == HOLDS
    assert got[16 * GIB].verdict == NOT_MEASURED and "higher --limit" in got[16 * GIB].needs
    assert got[8 * GIB].published == pytest.approx(32768 / 16384)  # the Jetson's Fig. 5b, 8 GiB
    assert got[16 * GIB].published is None and "no figure for this budget" in got[16 * GIB].published_shown


def test_two_devices_are_evaluated_apart(tmp_path):
    a = Log(tmp_path / "a.jsonl", device="NVIDIA H200", host="one")
    paper_like(a)
    a.close()
    b = Log(tmp_path / "b.jsonl", device="NVIDIA H200", host="two")  # the same GPU on another host
    for ctx in (1024, 32768):
        b.case("qwen2.5-0.5b", ctx, STUDY_HF, prefill=10.0 if ctx == 1024 else 100.0)
    b.close()
    c = Log(tmp_path / "c.jsonl", device="Orin")
    for ctx in (1024, 32768):
        c.case("mamba2-780m", ctx, STUDY_MAMBA, prefill=50.0)
    c.close()
    results = evaluate(load([tmp_path]))
    assert sorted({r.device for r in results}) == ["NVIDIA H200 @ one", "NVIDIA H200 @ two", "Orin @ box"]
    one, two, orin = (by_claim(results, d, "study") for d in ("NVIDIA H200 @ one", "NVIDIA H200 @ two", "Orin"))
    assert one[2][0].verdict == one[3][0].verdict == HOLDS
    # host two has the Transformer, the Orin the SSM: never paired across devices
    for got in (two, orin):
        assert got[2][0].verdict == got[3][0].verdict == NOT_MEASURED


def test_prefill_and_decode_may_sit_on_separate_rows(tmp_path):
    log = Log(tmp_path / "e.jsonl")
    for model, pre in (("qwen2.5-0.5b", (20.0, 400.0)), ("mamba2-780m", (60.0, 150.0))):
        for ctx, ms in zip((1024, 32768), pre):
            log.case(model, ctx, {**EDGEBENCH, "decode_mode": None}, prefill=ms)  # the point's prefill, once
            log.case(model, ctx, {**EDGEBENCH, "decode_mode": "eager"}, tpot=40.0)
            log.case(model, ctx, EDGEBENCH, tpot=3.0 if model.startswith("mamba") else 4.0 + ctx / 8192)
    log.close()
    logs = load([tmp_path])
    got = by_claim(evaluate(logs), method="edgebench")
    assert got[2][0].value == pytest.approx(3.0) and got[3][0].value == pytest.approx(400.0 / 150.0)
    from edgebench.analysis.claim_data import METHODS, Measured
    tpot = Measured(logs).tpot(logs.cases[0]["device"], METHODS[1])
    assert {m: {c: v for c, (v, _) in per.items()} for m, per in tpot.items()} == {
        "qwen2.5-0.5b": {1024: 4.125, 32768: 8.0}, "mamba2-780m": {1024: 3.0, 32768: 3.0}}  # graph, not eager


def test_edgebench_takes_the_fastest_kernels_that_ran(tmp_path):
    log = Log(tmp_path / "f.jsonl")
    log.case("qwen2.5-0.5b", 1024, EDGEBENCH, prefill=20.0)
    log.case("mamba2-780m", 1024, EDGEBENCH, prefill=60.0)
    log.case("mamba2-780m", 1024, {**EDGEBENCH, "backend": "mamba_ssm"}, prefill=30.0)
    log.case("mamba2-780m", 1024, {**EDGEBENCH, "attn": "eager", "status": "oom"}, prefill=1.0)
    log.close()
    (two,) = by_claim(evaluate(load([tmp_path])), method="edgebench")[2]
    assert two.value == pytest.approx(30.0 / 20.0)  # mamba_ssm's 30 ms; an oom row never counts


def run_claims(*argv) -> tuple[int, str]:
    buf = io.StringIO()
    old, sys.stdout = sys.stdout, buf
    try:
        rc = main(["claims", *map(str, argv)])
    finally:
        sys.stdout = old
    return rc, buf.getvalue()


def test_claims_command_in_every_format(tmp_path):
    log = Log(tmp_path / "a.jsonl")
    paper_like(log)
    log.close()
    rc, text = run_claims(tmp_path)
    assert rc == 0 and "Published claims" in text and "holds" in text and "not measured" in text
    rc, md = run_claims(tmp_path, "--format", "md")
    assert md.startswith("### Published claims") and "| NVIDIA H200 @ box | study | 1. SSMs fit" in md
    rc, raw = run_claims(tmp_path, "--format", "json")
    doc = json.loads(raw)
    study = [c for c in doc["claims"] if c["method"] == "study"]
    assert [c["verdict"] for c in study] == [HOLDS] * 4 and study[0]["budget_bytes"] == 24 * GIB
    rows = doc["tables"][0]["rows"]
    assert rows[0]["measured_value"] == pytest.approx(221184 / 65536) and rows[0]["threshold"] == 2.0
    rc, text = run_claims(tmp_path, "--format", "csv")
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == 8 and {"measured_value", "published_value", "verdict"} <= set(table[0])
    out = tmp_path / "claims.md"
    assert run_claims(tmp_path, "--format", "md", "-o", out)[0] == 0 and out.read_text() == md


def test_the_report_leads_with_the_claims_and_their_plots(tmp_path):
    pytest.importorskip("matplotlib")
    log = Log(tmp_path / "logs" / "a.jsonl")
    paper_like(log)
    log.close()
    assert main(["report", str(tmp_path / "logs"), "-o", str(tmp_path / "out")]) == 0
    page = (tmp_path / "out" / "report.html").read_text()
    claims_at = page.index('<section id="claims">')
    assert claims_at < page.index('data-table="cases"') and claims_at < page.index('id="plots-prefill"')
    section = page[claims_at:page.index("</section>")]
    assert 'data-table="claims"' in section and "holds" in section
    kinds = re.findall(r'data-kind="(claims-[a-z]+)"', section)
    assert kinds == ["claims-prefill", "claims-tpot", "claims-energy", "claims-share", "claims-maxctx"]
    assert (tmp_path / "out" / "claims-maxctx_nvidia-h200-box.png").stat().st_size > 5000


def test_published_figures_say_where_they_come_from():
    doc = published.study()
    assert [c["id"] for c in doc["claims"]] == [1, 2, 3, 4]
    assert doc["paper"]["arxiv"] == "2507.12442"
    for f in doc["figures"]:
        assert f["where"] and f["platform"] in ("desktop", "jetson")
        for p in f.get("points", []) + f.get("ranges", []):
            catalog.get(p["model"])  # every model is a preset
    assert published.max_contexts(24 * GIB)["mamba-790m"][0] == 220000
    assert published.max_contexts(int(7.4 * GIB))["qwen2.5-0.5b"][0] == 16384  # an 8 GB board's usable memory
    assert published.max_contexts(80 * GIB) == {}
    energy = {(p["model"], p["ctx"]): p["value"] for p in published.points("prefill_j")}
    assert energy[("qwen2.5-0.5b", 57344)] == 1492.6 and energy[("mamba2-780m", 57344)] == 370.5


# -- the suites: what they measure, their size, their shards -------------------------------------


def fake_suite_logs(tmp_path, name: str) -> None:
    """A log of everything the suite plans: every case ok (Transformer prefill quadratic, SSM linear),
    every profiled case with an ops record, every search with a result."""
    suite = load_suite(name)
    log = Log(tmp_path / f"{name}.jsonl")
    profiled = {c for profile, sub in suite.groups() if profile for c in sub.plan()}
    for c in suite.plan():
        fam = catalog.get(c.model).family
        pre = 0.01 * c.ctx + (1e-6 * c.ctx * c.ctx if fam == "transformer" else 0.0) + 5
        how = {"logits": c.logits, "backend": c.backend, "dtype": c.dtype, "decode_mode": c.decode_mode}
        key = log.case(c.model, c.ctx, how, prefill=pre, tpot=3.0 if c.gen else None, energy=pre / 10,
                       gen=c.gen)
        if c in profiled:
            log.ops(key, 0.5, 0.1)
    for s in suite.searches:
        dtype = "bfloat16" if s.dtype == "auto" else s.dtype
        for mode in s.logits:
            found = {m: (400 if catalog.get(m).family == "ssm" else 50) * 1024 for m in s.models}
            log.searches(s.backend, dtype, mode, {m: (ok, ok + s.resolution) for m, ok in found.items()},
                         s.memory_budget_bytes)
    log.close()


@pytest.mark.parametrize("name", ["paper-desktop", "paper-jetson"])
def test_the_paper_suites_measure_every_claim_in_both_methods(tmp_path, name):
    fake_suite_logs(tmp_path, name)
    results = evaluate(load([tmp_path]))
    assert {r.method for r in results} == {"study", "edgebench"}
    missing = [f"{r.method} {r.title}: {r.needs}" for r in results if r.verdict == NOT_MEASURED]
    assert not missing, missing


@pytest.mark.parametrize("name,cases,searches,budget", [("paper-desktop", 100, 18, 24 * GIB),
                                                         ("paper-jetson", 44, 12, 8 * GIB)])
def test_suite_dry_run_shows_its_size_and_time(name, cases, searches, budget, capsys):
    assert main(["run", "--suite", name, "--device", "cuda", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"dry run: suite {name}, {cases} points (")
    assert f"maxctx: {searches} of {searches} searches after the grids" in out
    assert f"budget {format_bytes(budget)}" in out and "operators profiled" in out
    minutes = int(re.search(r"estimated time on an H100/H200-class GPU: (\d+) min", out).group(1))
    assert minutes < 45  # well under an hour (the estimate errs long)
    assert out.rstrip().splitlines()[-1].startswith("log: ")


def test_suite_dry_run_on_a_machine_without_a_gpu_plans_for_cuda(monkeypatch, capsys):
    from edgebench.sweep import plan
    monkeypatch.setattr(plan, "device_class", lambda requested="auto": ("cpu", "torch 2.13.0+cpu is a CPU build"))
    assert main(["run", "--suite", "paper-desktop", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("note: planned for CUDA: no GPU here (torch 2.13.0+cpu is a CPU build)")
    assert "mamba_ssm backend runs on CUDA only" in out[1]


def test_shards_divide_cases_and_searches_and_balance_the_searches():
    suite = load_suite("paper-desktop")
    cases, units = suite.plan(), suite.search_units()
    parts = [suite_plan.shard_units(suite, f"{i}/3") for i in (1, 2, 3)]
    assert sorted(u for p in parts for u in p) == sorted(units)
    split = [shards.select(cases, f"{i}/3", reps=suite.reps, warmup=suite.warmup)[0] for i in (1, 2, 3)]
    assert sorted(map(str, (c for part in split for c in part))) == sorted(map(str, cases))
    seconds = [suite_plan.estimated_seconds(suite, [], p)[1] for p in parts]
    assert max(seconds) < 1.3 * min(seconds)  # longest first, each to the least loaded shard
    with pytest.raises(UserError, match="bad shard"):
        suite_plan.shard_units(suite, "4/3")


def test_the_time_estimate_matches_the_recorded_default_run():
    """The H200's `default-gpu` run: 9 points in 140-179 s (bench/results/h200-2026-11-30b)."""
    spec = load_suite("default-gpu")
    seconds = estimate.RUN_START_S + sum(estimate.case_s(c, catalog.get(c.model), spec.reps, spec.warmup)
                                         for c in spec.plan())
    assert 130 < seconds < 240  # 9 points measured in 140-179 s (bench/results/h200-2026-11-30b)


SUITE = """
[sweep]
ctx = "1k,4k"
gen = [8]
reps = 2
[[grid]]
name = "a"
models = ["tiny-llama", "tiny-mamba2"]
logits = ["all"]
[[grid]]
name = "b"
profile = "ops"
models = ["tiny-mamba2"]
backends = ["mamba_ssm"]
dtypes = ["float16"]
[[maxctx]]
models = ["tiny-llama"]
logits = ["last", "all"]
memory_budget = "8GiB"
resolution = "1k"
"""


def test_suite_tables_parse_and_flags_apply_to_them():
    suite, _ = parse_spec_text(SUITE, "t.toml")
    assert [c.label() for c in suite.plan()][-1] == "tiny-mamba2|mamba_ssm|float16|ctx=4096|gen=8|b=1|eager|last|sdpa"
    assert [(p, len(g.plan())) for p, g in suite.groups()] == [(None, 4), ("ops", 4)]
    assert suite.searches[0].memory_budget_bytes == 8 * GIB and suite.searches[0].timeout_s == 900
    narrowed = suite.with_overrides({"models": "tiny-mamba2", "ctx": "2k", "memory_budget_bytes": 4 * GIB})
    assert {c.ctx for c in narrowed.plan()} == {2048} and {c.model for c in narrowed.plan()} == {"tiny-mamba2"}
    assert narrowed.searches == [] and narrowed.memory_budget_bytes == 4 * GIB
    with pytest.raises(UserError, match="-m tiny-zamba2: not in this suite, which measures tiny-llama, tiny-mamba2"):
        suite.with_overrides({"models": "tiny-zamba2"})
    opts = suite.searches[0].options("cuda", device_total_bytes=int(7.4 * GIB))
    assert opts.budget == int(7.4 * GIB) and opts.header_spec["maxctx"]["backend"] == "hf"
    assert "exceeds this device's" in suite.searches[0].budget_note(int(7.4 * GIB))


@pytest.mark.parametrize("text,match", [
    ("[sweep]\n[[grid]]\nmodels=['tiny-llama']\nreps=3\n", r"unknown key\(s\) reps in \[\[grid\]\] 'grid 1'.*stay in \[sweep\]"),
    ("[sweep]\n[grid]\nmodels=['tiny-llama']\n", r"grid in t.toml must be an array of tables: write \[\[grid\]\]"),
    ("[sweep]\n[[grid]]\nmodels=['tiny-llama']\nprofile='kernels'\n", "profile must be one of ops"),
    ("[sweep]\n[[maxctx]]\nmodels=['tiny-llama']\nbackend='vllm'\n", "unknown backend 'vllm'"),
    ("[sweep]\n[[maxctx]]\nmodels=['tiny-llama']\nlimit='1k'\nresolution='4k'\n", "limit 1024 is below its resolution"),
    ("[sweep]\n[[grid]]\nlogits=['all']\n", "has no models"),
])
def test_bad_suite_tables_are_refused_naming_the_fix(text, match):
    with pytest.raises(UserError, match=match):
        parse_spec_text(text, "t.toml")


def test_a_suite_runs_its_grids_then_its_searches_into_one_log_and_resumes(tmp_path):
    """Real workers on the CPU: the profiled grid alone gets ops records, the searches follow."""
    spec = tmp_path / "s.toml"
    spec.write_text("""
[sweep]
ctx = [32]
gen = [1]
reps = 1
warmup = 0
device = "cpu"
dtypes = ["float32"]
timeout_s = 120
[[grid]]
models = ["tiny-llama"]
[[grid]]
profile = "ops"
models = ["tiny-mamba2"]
gen = [0]
[[maxctx]]
models = ["tiny-llama"]
dtype = "float32"
resolution = 32
limit = 64
timeout_s = 60
""")
    out = tmp_path / "log.jsonl"
    assert main(["run", "--spec", str(spec), "-o", str(out), "-q"]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    kinds = [x["type"] for x in lines]
    # tiny-llama's point: its prefill and eager lines; tiny-mamba2's (gen 0): its prefill line
    assert kinds.count("run") == 3 and kinds.count("case") == 3 and kinds.count("maxctx") == 1
    cases = {x["key"] if "key" in x else records.case_key(records.expand_case(x), x["device"]): x["model"]
             for x in lines if x["type"] == "case"}
    assert [cases[x["key"]] for x in lines if x["type"] == "ops"] == ["tiny-mamba2"]
    assert next(x for x in lines if x["type"] == "maxctx")["max_ok_ctx"] == 64
    assert main(["run", "--spec", str(spec), "-o", str(out), "-q"]) == 0  # resumes: nothing new
    assert len(out.read_text().splitlines()) == len(lines)


def test_a_suites_search_tables_run_as_one_run_and_each_record_names_its_backend(tmp_path):
    """Two [[maxctx]] tables (last and full logits) are one executor run, so --devices deals their
    searches together: one run header listing both tables, each record with its backend and dtype,
    and a rerun finds both searches done."""
    spec = tmp_path / "two.toml"
    spec.write_text("""[sweep]
device = "cpu"
[[maxctx]]
name = "a"
models = ["tiny-llama"]
dtype = "float32"
resolution = 32
limit = 64
timeout_s = 60
[[maxctx]]
name = "b"
models = ["tiny-llama"]
logits = ["all"]
dtype = "float32"
resolution = 32
limit = 64
timeout_s = 60
""")
    out = tmp_path / "log.jsonl"
    assert main(["run", "--spec", str(spec), "-o", str(out), "-q"]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    (head,) = [x for x in lines if x["type"] == "run"]
    assert [t["name"] for t in head["spec"]["maxctx_tables"]] == ["a", "b"]
    found = [x for x in lines if x["type"] == "maxctx"]
    assert sorted(x["mode"] for x in found) == ["all", "last"]
    assert all(x["backend"] == "hf" and x["dtype"] == "float32" for x in found)
    assert main(["run", "--spec", str(spec), "-o", str(out), "-q"]) == 0  # resumes: nothing new
    assert len(out.read_text().splitlines()) == len(lines)


def test_a_model_only_searched_plans_its_searches_alone(capsys):
    assert main(["run", "--suite", "paper-desktop", "-m", "llama-3.2-1b", "--device", "cuda", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "dry run: suite paper-desktop, 0 cases on cuda; nothing is loaded or measured"
    assert out[1].startswith("maxctx: 2 of 2 searches") and out[-1].startswith("log: ")


def test_a_ratio_on_host_bound_points_says_it_follows_the_cpu(tmp_path):
    log = Log(tmp_path / "a.jsonl")
    log.case("qwen2.5-0.5b", 1024, STUDY_HF, prefill=13.8, host_bound=True)
    log.case("mamba2-780m", 1024, STUDY_MAMBA, prefill=26.0)
    log.close()
    (two,) = by_claim(evaluate(load([tmp_path])), method="study")[2]
    assert two.verdict == HOLDS and "host-bound: qwen2.5-0.5b at 1K (the ratio follows the CPU)" in two.shown


def test_a_crossing_on_a_host_bound_bracket_is_not_claimed_resolved(tmp_path):
    log = Log(tmp_path / "a.jsonl")
    for ctx, qwen, mamba in ((1024, 13.8, 26.0), (8192, 120.0, 130.0), (32768, 1300.3, 491.0)):
        log.case("qwen2.5-0.5b", ctx, STUDY_HF, prefill=qwen, host_bound=ctx == 8192)
        log.case("mamba2-780m", ctx, STUDY_MAMBA, prefill=mamba)
    log.close()
    (three,) = by_claim(evaluate(load([tmp_path])), method="study")[3]
    assert any("between 8K and 32K; resolved: no: host-bound point" in p for p in three.points)
