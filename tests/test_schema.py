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
    assert found == sorted(OLD_LOGS)
    for name, (n_cases, n_maxctx, n_ops, cases_sha, maxctx_sha, ops_sha) in OLD_LOGS.items():
        logs = load([Path("bench/results") / name])
        assert (len(logs.cases), len(logs.maxctx), len(logs.ops)) == (n_cases, n_maxctx, n_ops), name
        assert not logs.problems, name
        rows = sorted(logs.cases, key=lambda r: (r["run"], r["key"]))
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
