"""The log schema as one declaration: old logs read as before, every field declared once, the
writer writes only what is declared, and the worker contract."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from edgebench.logs import schema
from edgebench.logs.loader import load

ROOT = Path(__file__).resolve().parents[1]

# Each bench/results log as the reader read it before the schema became one declaration (issue
# 13): cases, maxctx, ops records, and a hash of the rows, maxctx and ops records it gave.
OLD_LOGS = {
    "h100-2026-11-22/logs/fallback.jsonl": (1, 0, 0, "a686f4ea75302b2b", "97d170e1550eee4a", "97d170e1550eee4a"),
    "h100-2026-11-22/logs/hybrid_h100.jsonl": (3, 0, 0, "70b6327f6cb949ce", "97d170e1550eee4a", "97d170e1550eee4a"),
    "h100-2026-11-22/logs/sweep_h100.jsonl": (20, 0, 0, "d281d9ddff563953", "97d170e1550eee4a", "97d170e1550eee4a"),
    "h100-2026-11-22b/logs/energy_57k.jsonl": (2, 0, 0, "08934995675b25f5", "97d170e1550eee4a", "97d170e1550eee4a"),
    "h100-2026-11-22b/logs/falcon_first_case.jsonl": (2, 0, 0, "a4897c23a104fe9a", "97d170e1550eee4a", "97d170e1550eee4a"),
    "h100-2026-11-22b/logs/mamba_ssm_backend.jsonl": (4, 0, 0, "222583100a1d6641", "97d170e1550eee4a", "97d170e1550eee4a"),
    "h100-2026-11-22b/logs/maxctx_24GiB.jsonl": (0, 10, 0, "97d170e1550eee4a", "4f772aa9f3df630f", "97d170e1550eee4a"),
    "h100-2026-11-22b/logs/maxctx_8GiB.jsonl": (0, 10, 0, "97d170e1550eee4a", "7b90f4e485d507bb", "97d170e1550eee4a"),
    "h100-2026-11-22b/logs/memfit.jsonl": (18, 0, 0, "43afc602390c46cd", "97d170e1550eee4a", "97d170e1550eee4a"),
    "h100-2026-11-22b/logs/ops_h100.jsonl": (20, 0, 40, "8abbf1e5ee00f372", "97d170e1550eee4a", "5aa2508413ee9993"),
    "h100-2026-11-22b/logs/preload_spawned.jsonl": (4, 0, 0, "74b9a3cd1d936c67", "97d170e1550eee4a", "97d170e1550eee4a"),
    "h100-2026-11-22b/logs/sweep_h100.jsonl": (50, 0, 0, "96b45cc83ccf5fec", "97d170e1550eee4a", "97d170e1550eee4a"),
    "h100-2026-11-22c/logs/energy.jsonl": (12, 0, 0, "2711dd1670618bb0", "97d170e1550eee4a", "97d170e1550eee4a"),
    "h100-2026-11-22c/logs/mamba_ssm.jsonl": (12, 0, 0, "23ac531f16004a6b", "97d170e1550eee4a", "97d170e1550eee4a"),
    "h100-2026-11-22c/logs/maxctx_24GiB_rest.jsonl": (0, 3, 0, "97d170e1550eee4a", "f3110a3c2b29958c", "97d170e1550eee4a"),
    "h100-2026-11-22c/logs/maxctx_8GiB_expandable.jsonl": (0, 3, 0, "97d170e1550eee4a", "69a12bd9b19e3918", "97d170e1550eee4a"),
    "h100-2026-11-22c/logs/maxctx_8GiB_mem.jsonl": (0, 12, 0, "97d170e1550eee4a", "166aa1e6cd2ac245", "97d170e1550eee4a"),
    "h100-2026-11-22c/logs/maxctx_8GiB_rest.jsonl": (0, 2, 0, "97d170e1550eee4a", "5d8e4e865bcaffac", "97d170e1550eee4a"),
    "h100-2026-11-22c/logs/ops_graph.jsonl": (8, 0, 16, "87a229fa20a5563c", "97d170e1550eee4a", "462725b48069c12b"),
    "h100-2026-11-22c/logs/ops_h100.jsonl": (20, 0, 40, "cc2d9b688362f397", "97d170e1550eee4a", "e3b111b262b64cf7"),
    "h100-2026-11-22c/logs/smoke.jsonl": (6, 0, 0, "c252c691bb3341e9", "97d170e1550eee4a", "97d170e1550eee4a"),
    "h100-2026-11-22c/logs/tele_off.jsonl": (2, 0, 0, "b01a0f7f6fa7cb06", "97d170e1550eee4a", "97d170e1550eee4a"),
    "h100-2026-11-22c/logs/tele_on.jsonl": (2, 0, 0, "08cc670973f0341f", "97d170e1550eee4a", "97d170e1550eee4a"),
    "h200-2026-11-30/logs/call2_vm-default-gpu.jsonl": (18, 0, 0, "d1dbd2406852ddf4", "97d170e1550eee4a", "97d170e1550eee4a"),
    "h200-2026-11-30/logs/memssm.jsonl": (12, 0, 0, "ba5f3b388e53bb13", "97d170e1550eee4a", "97d170e1550eee4a"),
    "h200-2026-11-30/logs/memssm_maxctx.jsonl": (0, 1, 0, "97d170e1550eee4a", "58dd3edc5d45b59e", "97d170e1550eee4a"),
    "h200-2026-11-30/logs/vm-default-gpu.jsonl": (18, 0, 0, "8740d50f8180fb53", "97d170e1550eee4a", "97d170e1550eee4a"),
}


def _digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def test_every_recorded_log_reads_exactly_as_before(monkeypatch):
    monkeypatch.chdir(ROOT)
    found = sorted(str(p.relative_to("bench/results")) for p in Path("bench/results").rglob("*")
                   if p.name.endswith((".jsonl", ".jsonl.gz")))
    assert set(OLD_LOGS) <= set(found), sorted(set(OLD_LOGS) - set(found))
    for name in sorted(set(found) - set(OLD_LOGS)):  # recorded after this manifest: read cleanly
        logs = load([Path("bench/results") / name])
        assert not logs.problems and (logs.cases or logs.maxctx or logs.ops), name
    for name, (n_cases, n_maxctx, n_ops, cases_sha, maxctx_sha, ops_sha) in OLD_LOGS.items():
        logs = load([Path("bench/results") / name])
        assert (len(logs.cases), len(logs.maxctx), len(logs.ops)) == (n_cases, n_maxctx, n_ops), name
        assert not logs.problems, name
        rows = sorted(logs.cases, key=lambda r: (r["run"], r["key"]))
        # v1 lines read as one run per point, unflagged (fields added with schema v2), no recorded work
        assert all((r.pop("runs"), r.pop("host_bound"), r.pop("unstable"), r.pop("work")) ==
                   (1, False, False, None) for r in rows), name
        assert _digest([{k: r[k] for k in sorted(r)} for r in rows]) == cases_sha, name
        assert _digest(logs.maxctx) == maxctx_sha, name
        assert _digest(logs.ops) == ops_sha, name


def test_recorded_values_read_back(monkeypatch):
    monkeypatch.chdir(ROOT)
    logs = load(["bench/results/h100-2026-11-22b/logs/sweep_h100.jsonl"])
    row = next(r for r in logs.cases if r["key"] == "01678e83a467")
    assert (row["model"], row["ctx"], row["backend"], row["status"]) == \
        ("falcon-h1-0.5b", 65536, "hf", "ok")
    assert row["prefill_ms"] == {"median": 690.34, "p10": 688.2, "p90": 694.7, "stdev": 4.12, "n": 3}
    assert (row["peak_allocated_bytes"], row["prefill_j"]) == (3993292288, 477.0)
    maxctx = load(["bench/results/h100-2026-11-22b/logs/maxctx_8GiB.jsonl"]).maxctx
    assert [(m["model"], m["mode"], m["max_ok_ctx"]) for m in maxctx][:3] == \
        [("qwen2.5-0.5b", "last", 126976), ("qwen2.5-0.5b", "all", 20480),
         ("llama-3.2-1b", "last", 45056)]
    ops = load(["bench/results/h100-2026-11-22c/logs/ops_graph.jsonl"]).ops[0]
    assert (ops["key"], ops["phase"], ops["shares"]["gemm"], ops["model"], ops["ctx"]) == \
        ("1868053430a8", "prefill", 0.37127, "qwen2.5-0.5b", 1024)


def test_every_field_is_declared_once_with_its_unit_in_its_name():
    for kind, fields in schema.LINE_KINDS.items():
        for name, f in fields.items():
            assert f.name == name
            if f.unit in ("ms", "bytes", "j", "s", "w", "pct", "c", "mhz"):
                assert f.stem is not None, f"{kind}.{name} does not carry its unit {f.unit}"
    for fields in (schema.STATS, schema.MEM, schema.ENERGY, schema.PROV):
        for name, f in fields.items():
            if f.unit in ("bytes", "j", "w", "pct", "c", "mhz"):
                assert f.stem is not None, name
    assert schema.CASE_DEFAULTS == {"backend": "hf", "dtype": "bfloat16", "batch": 1,
                                    "decode_mode": None, "logits": "last", "attn": "sdpa",
                                    "beyond_trained_ctx": False, "host_bound": False,
                                    "unstable": False, "runs": 1}
    assert set(schema.KEY_FIELDS) <= set(schema.CASE)


def test_what_the_worker_writes_is_declared():
    """The writer emits `prov` and `fallback` (the schema once documented `throttle` instead):
    every field a worker result carries is a declared case field."""
    from dataclasses import fields

    from edgebench.logs.contracts import DECODE_RESULT_FIELDS, PointResult
    assert {"prov", "fallback", "exit_code", "worker_log"} <= set(schema.CASE)
    assert {f.name for f in fields(PointResult)} - {"ops", "warnings", "decode", "decoding"} \
        <= set(schema.CASE)
    assert set(DECODE_RESULT_FIELDS) <= set(schema.CASE)
    assert {"gpu_temp_c", "sm_clock_mhz", "throttled", "throttle_reasons"} <= set(schema.PROV)


def test_compact_case_drops_what_the_schema_says_and_expand_restores_it():
    rec = {"type": "case", "run": "r", "key": "abc", "model": "m", "family": "ssm", "backend": "hf",
           "dtype": "bfloat16", "ctx": 8, "gen": 2, "batch": 1, "decode_mode": "eager",
           "logits": "last", "attn": "sdpa", "status": "ok", "reason": None, "device": "CPU",
           "beyond_trained_ctx": False, "prefill_ms": {"median": 2.0}, "fallback": True,
           "energy": {"prefill_j": 1.0, "prefill_mean_w": 500.0},
           "mem": {"nvml_bytes": 100, "device_used_bytes": 100}}
    line = schema.compact_case(rec)
    assert set(line) == {"type", "run", "model", "family", "ctx", "gen", "decode_mode", "status",
                         "device", "prefill_ms", "fallback", "energy", "mem"}
    assert line["energy"] == {"prefill_j": 1.0} and line["mem"] == {"device_used_bytes": 100}
    back = schema.expand_case(line)
    assert back["energy"]["prefill_mean_w"] == 500.0
    assert {k: back[k] for k in schema.CASE_DEFAULTS} == {**schema.CASE_DEFAULTS,
                                                          "decode_mode": "eager"}
    assert back["key"] == schema.case_key(rec, "CPU")
    # a point's prefill line leaves its null decode_mode out; its key is restored all the same
    pre = schema.compact_case({**rec, "decode_mode": None})
    assert "decode_mode" not in pre
    assert schema.expand_case(pre)["key"] == schema.case_key({**rec, "decode_mode": None}, "CPU")


def test_a_declared_quantity_in_another_unit_is_named(tmp_path):
    """The unit check knows every declared field (it knew three mem fields before)."""
    line = {"v": 1, "type": "case", "run": "r", "model": "m", "ctx": 8, "gen": 2,
            "decode_mode": "eager", "status": "ok", "device": "CPU",
            "mem": {"rss_mb": 3, "peak_allocated_bytes": 5}, "energy": {"idle_mw": 1}}
    (tmp_path / "a.jsonl").write_text(json.dumps(line) + "\n")
    logs = load([tmp_path])
    reasons = [p.reason for p in logs.problems]
    assert any("'mem.rss_mb'" in r and "'mem.rss_bytes'" in r for r in reasons), reasons
    assert len(logs.cases) == 1 and logs.cases[0]["peak_allocated_bytes"] == 5


def test_ops_order_is_the_rules_categories():
    from edgebench.analysis.ops_categories import categories
    from edgebench.report.tables import OPS_ORDER
    assert OPS_ORDER == categories()
    assert "causal_conv1d" in OPS_ORDER and "conv1d" not in OPS_ORDER


@pytest.mark.parametrize("rounded", [False, True])
def test_one_summarize_stdev_undefined_for_one_sample(rounded):
    from edgebench.analysis.stats import summarize
    from edgebench.measure import point_run
    assert point_run.summarize is summarize  # the measuring side uses the readers' summary
    s = summarize([3.14159265], rounded=rounded)
    assert s["stdev"] is None and s["n"] == 1 and s["median"] == pytest.approx(3.14159265, 1e-4)
    s = summarize([1.0, 2.0, 3.0, 4.0, 100.0], rounded=rounded)
    assert s["stdev"] == pytest.approx(43.6, rel=1e-3) and s["median"] == 3.0
    assert summarize([], rounded=rounded) is None


def test_summarize_rounded_keeps_significant_digits():
    from edgebench.analysis.stats import summarize
    s = summarize([1.234567, 1.234568, 9.87654321], rounded=True)
    assert (s["median"], s["p10"], s["p90"], s["stdev"]) == (1.2346, 1.235, 8.148, 4.99)


def test_point_request_round_trips_and_names_what_is_malformed():
    from edgebench.logs.contracts import MalformedRequest, PointRequest
    point = {"model": "m", "backend": "hf", "dtype": "float32", "ctx": 8, "gen": 2, "batch": 1,
             "logits": "last", "attn": "sdpa"}
    req = PointRequest(point=point, decode_modes=["eager", "graph"], device="cpu", reps=1,
                       warmup=0, key="abc")
    payload = json.loads(json.dumps(req.to_payload()))
    assert PointRequest.parse(payload) == req
    # maxctx sends only what it needs: the rest takes the declared defaults
    short = PointRequest.parse({"point": point, "decode_modes": [], "device": "cpu", "reps": 0,
                                "warmup": 0})
    assert (short.telemetry, short.profile_ops, short.key, short.power_rate_hz) == \
        (True, False, None, 50.0)
    with pytest.raises(MalformedRequest) as err:
        PointRequest.parse({"point": {**point, "ctx": "8"}, "decode_modes": ["warp"],
                            "device": "cpu", "warmup": 0, "x": 1})
    msg = str(err.value)
    assert "missing 'reps'" in msg and "unknown field 'x'" in msg and "point 'ctx' must be" in msg
    assert "'decode_modes' must be a list of" in msg
    with pytest.raises(MalformedRequest, match="JSON object"):
        PointRequest.parse(["not", "a", "request"])


def test_worker_refuses_a_malformed_request_before_measuring():
    from edgebench.logs.contracts import MalformedRequest
    from edgebench.measure.point_run import run_point
    with pytest.raises(MalformedRequest, match="point without 'model'"):
        run_point({"point": {"ctx": 8}, "decode_modes": [], "device": "cpu", "reps": 1, "warmup": 0})


def test_point_result_sends_only_what_was_measured():
    from edgebench.logs.contracts import PointResult
    res = PointResult.from_dict({"prefill_ms": {"median": 1.0}, "energy": None,
                                 "energy_why": "CPU run"})
    assert res.to_dict() == {"prefill_ms": {"median": 1.0}, "energy": None, "energy_why": "CPU run"}
    with pytest.raises(TypeError):
        PointResult.from_dict({"prefill_us": 1})


def test_case_label_is_not_the_record_key():
    from edgebench.sweep.spec import Case
    c = Case("m", "hf", "bfloat16", 8, 2, 1, "last", "sdpa", decode_mode="eager")
    assert c.label() == "m|hf|bfloat16|ctx=8|gen=2|b=1|eager|last|sdpa"
    assert not hasattr(c, "key")
    assert schema.case_key(c.to_dict(), "CPU") != c.label()
