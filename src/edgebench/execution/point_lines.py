"""A point's log lines from what its workers returned (parent side): one prefill line and one line per
decode mode, each a case line of `edgebench.logs.schema.CASE`.

`point_lines(results, modes)` takes the results of the point's worker runs (`--runs N`: one per
worker process, in order; each a `PointResult` dict with the status and reason `isolate` gave it) and
returns `(prefill_fields, {mode: decode_fields})`: status, reason and the measured fields of each line
(the caller adds the key fields, device and run).

Status: a phase is `ok` when every run measured it (a measured decode line carries the prefill's
`work`, the numerators of its floor); otherwise the line takes the first failure, its
reason ending "(run k of N)" when N > 1. A worker that died during a decode mode charges its status to
that mode; modes it never reached are `skipped`, and so is every decode of a point whose prefill
failed. Several runs: each timed phase's Stats are over the runs' medians (`stats.aggregate_runs`:
the between-run spread is what intervals use), `unstable` holds when any run was unstable within
itself or the runs disagree (`stats.unstable` on their medians), `gpu_lag_ms` is the runs' median and
`host_bound` is judged on it; memory, energy, kernels, autotune and provenance are the first ok run's, cold
costs the first run's (the one that paid them).
"""
from __future__ import annotations

import statistics
from typing import Any

from edgebench.analysis.stats import aggregate_runs, host_bound, round_sig, unstable


def _failure(result: dict[str, Any]) -> tuple[str, str | None]:
    return result.get("status", "error"), result.get("reason")


def _run_prefill(result: dict[str, Any]) -> dict[str, Any]:
    """One run's prefill line: ok when its prefill was measured, else how the worker ended."""
    if "prefill_ms" in result:  # measured (null with no timed repetitions: a maxctx probe)
        return {"status": "ok", "reason": None}
    status, reason = _failure(result)
    return {"status": status if status != "ok" else "error",
            "reason": reason or "the worker returned no prefill measurement"}


def _run_decode(result: dict[str, Any], mode: str, prefill: dict[str, Any],
                modes: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """One run's line for a decode mode."""
    decode = result.get("decode") or {}
    got = decode.get(mode)
    if got is not None:
        return dict(got)
    if prefill["status"] != "ok":
        return {"status": "skipped", "reason": f"its point's prefill ended {prefill['status']} "
                                              f"({prefill['reason']})"}
    status, reason = _failure(result)
    # the mode the worker was in: as it said, or, where it died before saying, the first one left
    decoding = result.get("decoding") or next((m for m in modes if m not in decode), None)
    if status != "ok" and decoding == mode:
        out = {"status": status, "reason": reason}
        if result.get("exit_code") is not None:
            out["exit_code"] = result["exit_code"]
        return out
    if status != "ok" and decoding:
        return {"status": "skipped", "reason": f"the worker ended {status} during {decoding} decode "
                                              f"({reason})"}
    return {"status": "error", "reason": "the worker returned no result for this decode mode"}


def _combine(runs: list[dict[str, Any]], stats_key: str) -> dict[str, Any]:
    """One line from the same line of several runs (see the module doc)."""
    n = len(runs)
    failed = next(((k, r) for k, r in enumerate(runs, 1) if r["status"] != "ok"), None)
    ok = [r for r in runs if r["status"] == "ok"]
    out = dict(ok[0] if ok else runs[0])
    out.pop("unstable", None)
    if runs[0].get("cold_ms") is not None:  # the first run paid the cold costs
        out["cold_ms"] = runs[0]["cold_ms"]
    if failed is not None:
        k, r = failed
        out["status"], out["reason"] = r["status"], (f"{r['reason']} (run {k} of {n})" if n > 1
                                                     else r["reason"])
    else:
        out["reason"] = None
    if n == 1:
        if ok and runs[0].get("unstable"):
            out["unstable"] = True
        return out
    stats = [r.get(stats_key) for r in ok]
    if ok:
        out[stats_key] = aggregate_runs(stats)
        medians = [s["median"] for s in stats if s]
        flagged = any(r.get("unstable") for r in ok) or bool(unstable(medians))
        if flagged:
            out["unstable"] = True
        lags = [r["gpu_lag_ms"] for r in ok if r.get("gpu_lag_ms") is not None]
        if lags:
            lag = statistics.median(lags)
            out["gpu_lag_ms"] = round_sig(lag, 3)
            med = (out[stats_key] or {}).get("median")
            out["host_bound"] = host_bound(lag, med)
        # Each run's samples apart: pooled, a bootstrap would take the within-run spread for the
        # between-run one that the Stats carry (readers bootstrap only `raw.<metric>` lists).
        raws = [(r.get("raw") or {}).get(stats_key) for r in ok]
        out.pop("raw", None)
        if all(raws):
            out["raw"] = {f"{stats_key}_by_run": raws}
    out["runs"] = n
    return out


def point_lines(results: list[dict[str, Any]], modes: list[str] | tuple[str, ...]
                ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(the prefill line's fields, {mode: its decode line's fields}) of one point; see the module doc."""
    prefill_runs, decode_runs = [], {m: [] for m in modes}
    for result in results:
        pre = _run_prefill(result)
        pre.update({k: v for k, v in result.items()
                    if k not in ("status", "reason", "decode", "decoding", "ops", "warnings",
                                 "exit_code", "worker_log")})
        if result.get("exit_code") is not None and pre["status"] != "ok":
            pre["exit_code"] = result["exit_code"]
        prefill_runs.append(pre)
        for m in modes:
            decode_runs[m].append(_run_decode(result, m, pre, modes))
        if pre["status"] == "ok" and result.get("status", "ok") != "ok" \
                and all(m in (result.get("decode") or {}) for m in modes):
            # every measurement reported, then the worker ended badly (in telemetry, at exit)
            status, reason = _failure(result)
            pre["energy_why"] = f"the worker ended {status} after its measurements ({reason})"
    prefill = _combine(prefill_runs, "prefill_ms")
    decode = {m: _combine(runs, "tpot_ms") for m, runs in decode_runs.items()}
    if prefill.get("work"):  # each measured decode line carries its floor's numerators too
        for line in decode.values():
            if line["status"] == "ok":
                line["work"] = prefill["work"]
    return prefill, decode
