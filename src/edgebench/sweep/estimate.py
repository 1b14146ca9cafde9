"""How long a plan should take on an H100/H200-class GPU: the time `run --dry-run` prints, and the
expected work by which shards (`edgebench.sweep.shards`) and GPUs (`edgebench.execution.scheduler`)
are balanced.

An estimate from the plan alone (no torch, no GPU), calibrated on the H100 and H200 logs recorded
under bench/results, and meant to err long. Per log line, in the measurement loop's own counts
(`edgebench.sweep.cost.passes`):
- `RUN_START_S` once per run (the H200's no-argument run spent ~35 s outside its points: the
  environment snapshot in a worker, the fork server importing torch and transformers);
- `STARTUP_S` per worker: fork, the model built on the device, kernel detection and the short first
  forward (the H200's `default-gpu` run: 18 cases in 160-197 s, of which the timed work below is
  about 100 s; the rest, ~5 s a case, is this);
- every prefill (timed, warm-up, cold, decode set-up) at `prefill_s`: the larger of a host floor
  (`HOST_MS_PER_LAYER` per layer: short prefills are launch-bound on the lent VMs, e.g. mamba2-780m
  at 1K took 68-113 ms for 48 layers) and the FLOPs (2 x parameters x tokens, causal attention
  2 x attention layers x ctx^2 x query width, the LM head over the positions kept) at the rate that
  family reached (`FLOPS_PER_S`: qwen2.5-0.5b at 16K on the H200 and 64K on the H100 ran at
  ~430 TFLOP/s, mamba2-780m and zamba2-1.2b at 16-64K at 170-200);
- every decode step at `tpot_s`: eager decode is host-bound (`EAGER_MS_PER_LAYER`; qwen2.5-0.5b
  eager TPOT was 55-104 ms on the H200 VM for 24 layers), graph and compile decode `GRAPH_TPOT_MS`
  (3-12 ms graph, 1.6-3 ms compile); a compile line adds `COMPILE_S`, its cold build (21-39 s on the
  H200, bench/results/h200-2026-11-30b);
- an operator-profiled case adds `PROFILE_PREFILLS` prefills (the profiled one and the profiler's
  slowdown).
A max-context search makes about log2(fit / (2 x resolution)) + 2 probes (it starts near half the
memory model's fit), each a worker and one prefill near the fit, which is estimated here without
torch: the budget less the weights, over per-token bytes (the KV cache, ~48 bytes per hidden unit of
activations, and with full logits 2 bytes per vocabulary entry). Parameters are the presets'
published counts (12 x layers x hidden^2 where a preset has none).
A Jetson or a smaller GPU is several times slower; time one shard there (`--shard 1/N`) and scale.
"""
from __future__ import annotations

import math
from typing import Any

from edgebench.sweep.cost import params, passes
from edgebench.sweep.spec import Case

STARTUP_S = 5.0
RUN_START_S = 30.0  # once per run: the environment snapshot in a worker, the fork server's imports
HOST_MS_PER_LAYER = 2.0
EAGER_MS_PER_LAYER = 2.5
GRAPH_TPOT_MS = 6.0
COMPILE_S = 40.0  # torch.compile building a decode step cold: 21-39 s per point on the H200
FLOPS_PER_S = {"transformer": 400e12, "ssm": 170e12, "hybrid": 170e12}
PROFILE_PREFILLS = 3
ACTIVATION_BYTES_PER_HIDDEN = 48
LOGIT_BYTES = 2


def _layers(pre: Any) -> int:
    return int(pre.config.get("num_hidden_layers") or pre.config.get("n_layer") or 24)


def _params(pre: Any) -> float:
    return float(params(pre)) or 12.0 * _layers(pre) * pre.config.get("hidden_size", 1024) ** 2


def _attention(pre: Any) -> tuple[int, int]:
    """(attention layers, query width) of a preset: every layer of a Transformer and of Falcon-H1,
    Zamba2's hybrid layers, the layers other hybrids name; (0, 0) for pure SSMs."""
    c = pre.config
    if pre.family == "ssm":
        return 0, 0
    width = (c.get("num_attention_heads") or 1) * (c.get("head_dim") or 0) or c.get("hidden_size", 0)
    if pre.family == "transformer" or pre.model_type == "falcon_h1":
        return _layers(pre), width
    kinds = c.get("layers_block_type") or c.get("hybrid_override_pattern") or ""
    named = sum(1 for k in kinds if k in ("hybrid", "attention", "*"))
    named = named or len(c.get("attn_layer_indices") or []) or max(1, _layers(pre) // 8)
    return named, width


def prefill_s(pre: Any, ctx: int, logits: str = "last", batch: int = 1) -> float:
    """Seconds of one prefill of `ctx` tokens (see the module doc)."""
    attn_layers, width = _attention(pre)
    kept = ctx if logits == "all" else 1
    flops = batch * (2.0 * _params(pre) * ctx + 2.0 * attn_layers * ctx * ctx * width
                     + 2.0 * pre.config.get("hidden_size", 0) * pre.config.get("vocab_size", 0) * kept)
    return max(_layers(pre) * HOST_MS_PER_LAYER / 1e3, flops / FLOPS_PER_S.get(pre.family, 170e12))


def tpot_s(pre: Any, decode_mode: str) -> float:
    if decode_mode == "eager":
        return _layers(pre) * EAGER_MS_PER_LAYER / 1e3
    return GRAPH_TPOT_MS / 1e3


def case_s(case: Case, pre: Any, reps: int, warmup: int, profiled: bool = False) -> float:
    """Seconds of one log line, start to record: a point's prefill line carries the worker's start
    and the point's prefills, a decode line its own set-up prefills, its steps and, for `compile`,
    building the step (`COMPILE_S`). The counts are `edgebench.sweep.cost.passes`."""
    p = passes(case, reps, warmup)
    prefills = p.prefills + (PROFILE_PREFILLS if profiled and case.decode_mode is None else 0)
    return ((STARTUP_S if case.decode_mode is None else 0.0)
            + prefills * prefill_s(pre, case.ctx, case.logits, case.batch)
            + (p.steps * tpot_s(pre, case.decode_mode) if case.decode_mode else 0.0)
            + (COMPILE_S if case.decode_mode == "compile" and case.gen else 0.0))


def fit_ctx(pre: Any, budget_bytes: int, logits: str, limit: int, dtype_bytes: int = 2) -> int:
    """A rough longest context under `budget_bytes` (for timing a search only; the search itself
    starts from `edgebench.models.memory_model`)."""
    from edgebench.models import memory_model
    per_token = memory_model.kv_bytes_per_token(pre) + ACTIVATION_BYTES_PER_HIDDEN * pre.config.get("hidden_size", 0)
    if logits == "all":
        per_token += LOGIT_BYTES * pre.config.get("vocab_size", 0)
    room = budget_bytes - _params(pre) * dtype_bytes
    return max(1, min(limit, int(room // max(per_token, 1))))


def search_s(pre: Any, logits: str, budget_bytes: int, resolution: int, limit: int) -> float:
    """Seconds of one max-context search (see the module doc)."""
    fit = fit_ctx(pre, budget_bytes, logits, limit)
    probes = max(1, math.ceil(math.log2(max(fit / (2 * resolution), 1)))) + 2
    return probes * (STARTUP_S + prefill_s(pre, fit, logits))


def makespan(costs: list[float], devices: int) -> float:
    """Seconds until `devices` GPUs finish items of these costs, each item whole on one GPU, dealt
    longest first to the least loaded (as `execution.scheduler` deals series and searches)."""
    loads = [0.0] * max(1, devices)
    for c in sorted(costs, reverse=True):
        loads[loads.index(min(loads))] += c
    return max(loads)


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
