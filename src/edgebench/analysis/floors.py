"""Floors: how far each measured number is from what the device itself could do, from its own
micro-benchmarks (`edgebench env --micro`; every run header holds them as `env.micro`).

Decode. One step reads every weight once and, per sequence, the KV cache at the case's context
(attention layers) and the SSM and convolution states (Mamba layers): `decode_step_bytes` is
weights + kv + ssm_state of `edgebench.models.memory_model.predict` at that context, batch, dtype
and backend. Its floor is those bytes over the device's measured copy bandwidth: a device-to-device
copy, counted as bytes read plus bytes written per second, so a kernel that only reads streams at
that rate at best. On a Jetson the copy runs in the DRAM the CPU shares, measured the same way:
nothing here assumes a discrete GPU memory.

    decode floor_ms = step_bytes / copy_bw * 1e3    achieved GB/s = step_bytes / TPOT
                                                    tpot_x_floor = TPOT / floor

Prefill. The FLOPs of the matrix products a prompt of `ctx` tokens needs, over the device's
measured dense bf16 matmul rate (n x n, n = 8192 where memory allows: `probe.matrix_rate`):

    flops = 2 * batch * ctx * (params - vocab * hidden * (1 if tied else 2))   projections, MLPs, mixers
          + 2 * batch * positions * vocab * hidden                             LM head (1 or ctx positions)
          + 2 * batch * ctx * (ctx + 1) * attention_width                      causal QK^T and AV
    prefill floor_ms = flops / matmul_rate * 1e3    achieved TFLOP/s = flops / prefill time
                                                    prefill_x_floor = prefill time / floor

`attention_width` is attention layers x query heads x head_dim (`memory_model.attention_width`): a
causal prompt scores ctx (ctx + 1) / 2 query-key pairs per head, 2 * head_dim FLOPs each for QK^T
and as many for AV. The embedding table is a lookup, not a product; an untied LM head is counted at
the positions whose logits are kept only.

The two counts are made in each point's worker and recorded on its lines (`work`, schema `CASE`);
lines written before that are counted from the catalog here (`case_work`: a model outside the
catalog then has no floor).

Limits: both floors are lower bounds, not predictions. Decode reads the KV at the context; the
measured steps read up to `gen` more positions. Prefill leaves out the SSM scan, convolutions,
norms, softmax and elementwise work, and counts Zamba2's shared block once although it runs at several
layers. Mixture-of-experts presets (Jamba) get no floor (which experts a token takes is not
modelled), nor do lines of models outside the catalog written before `work` was recorded. The bf16 rate is used for bfloat16 and float16 rows
(the same tensor-core rate on NVIDIA GPUs); float32 rows get no prefill floor.

Everything takes plain numbers and rows, so `compare` and `report` give each record its floor offline
from its run header (`Logs.runs[run]["env"]`) and its row.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

from edgebench.errors import UserError
from edgebench.logs.schema import WORK_KEYS, work_ok

# The columns a measured case gets, each with the measurement it is made from.
FLOOR_COLUMNS = {"decode_gb_s": "tpot_ms", "tpot_x_floor": "tpot_ms", "prefill_tflop_s": "prefill_ms",
                 "prefill_x_floor": "prefill_ms"}
NOTE = ("decode_gb_s: bytes a decode step reads (weights + KV cache at ctx + SSM state, memory model) / "
        "TPOT; tpot_x_floor: TPOT / (those bytes / the device's measured copy bandwidth). prefill_tflop_s: "
        "prefill matmul FLOPs (2 x params x tokens, less the embedding, + LM head + causal attention) / "
        "prefill time; prefill_x_floor: prefill time / (those FLOPs / the device's measured bf16 matmul "
        "rate). Floors are lower bounds (README: Floors)")
PREFILL_DTYPES = ("bfloat16", "float16")  # the dtypes the bf16 matmul rate stands for
NO_MICRO = ("the run header has no device micro-benchmarks (env.micro: recorded by runs of this "
            "edgebench on a GPU with the native CUDA probe; `edgebench env --micro` shows them)")


@dataclass(frozen=True)
class Rates:
    """A device's measured copy bandwidth (bytes read + written per second) and dense bf16 matmul
    rate (FLOP/s); None with `why` where the header does not have them."""

    copy_bytes_per_s: float | None
    matmul_flop_s: float | None
    why: str | None = None


def _positive(x: Any) -> float | None:
    return float(x) if type(x) in (int, float) and math.isfinite(x) and x > 0 else None


def run_gpu(header: dict | None) -> tuple[int | None, str | None]:
    """The GPU a run measured: its index from the spec's device (`cuda:N`; `auto` and `cuda` are
    GPU 0) and its name (the header's device label)."""
    header = header if isinstance(header, dict) else {}
    spec = header.get("spec") if isinstance(header.get("spec"), dict) else {}
    dev, name = spec.get("device"), header.get("device")
    index = None
    if isinstance(dev, str) and dev.startswith("cuda:") and dev[5:].isdigit():
        index = int(dev[5:])
    elif dev in ("auto", "cuda"):
        index = 0
    return index, name if isinstance(name, str) else None


def rates_from_env(env: Any, index: int | None = None, name: str | None = None) -> Rates:
    """The micro-benchmark numbers of one GPU of an environment snapshot: `env.micro` as runs record
    it ({"gpus": [{"index", ...}], "why"}) or as older `edgebench env --micro --json` wrote it (a
    list, one entry per GPU). The GPU is `index` where the snapshot has it, else the one named
    `name`, else the first."""
    micro = env.get("micro") if isinstance(env, dict) else None
    if isinstance(micro, list):
        entries = [dict(m, index=m.get("index", i)) for i, m in enumerate(micro) if isinstance(m, dict)]
        skipped = None
    elif isinstance(micro, dict):
        entries = [m for m in micro.get("gpus") or [] if isinstance(m, dict)]
        skipped = micro.get("why")
    else:
        return Rates(None, None, NO_MICRO)
    if not entries:
        return Rates(None, None, f"the device micro-benchmarks were skipped: {skipped or 'no GPU'}")
    by_index = {m.get("index"): m for m in entries}
    if index not in by_index and name is not None:
        gpus = env.get("gpus") if isinstance(env.get("gpus"), list) else []
        index = next((g.get("index") for g in gpus if isinstance(g, dict) and g.get("name") == name), None)
    m = by_index.get(index, entries[0])
    bw, mm = _positive(m.get("copy_bw_bytes_per_s")), _positive(m.get("matmul_bf16_flop_s"))
    whys = [f"micro-benchmark failed: {m['why']}"] if m.get("why") else []
    if bw is None and not whys:
        whys.append("the micro-benchmarks hold no copy bandwidth")
    if mm is None and not whys:
        whys.append(f"no bf16 matmul rate ({m.get('matmul_why') or 'not measured by this edgebench'})")
    return Rates(bw, mm, "; ".join(whys) or None)


def decode_step_bytes(preset, ctx: int, batch: int = 1, dtype: str = "bfloat16",
                      backend: str = "hf") -> int:
    """Bytes one decode step reads: weights + KV cache at `ctx` + SSM/conv states (memory model)."""
    from edgebench.models import memory_model
    p = memory_model.predict(preset, ctx, batch=batch, dtype=dtype, backend=backend)
    return p["weights_bytes"] + p["kv_bytes"] + p["ssm_state_bytes"]


def prefill_flops(preset, ctx: int, batch: int = 1, logits: str = "last") -> int:
    """Matmul FLOPs of a prefill of `ctx` tokens (the formula of the module docstring)."""
    body, head, attention = _prefill_terms(preset)
    positions = ctx if logits == "all" else 1
    return 2 * batch * (ctx * body + positions * head + ctx * (ctx + 1) * attention)


@functools.lru_cache(maxsize=None)
def _prefill_terms(preset) -> tuple[int, int, int]:
    """(parameters every token multiplies, LM head parameters, attention width) of a preset."""
    from edgebench.models import catalog, memory_model
    c = preset.config
    if (c.get("num_experts") or 0) > 1:
        raise UserError(f"{preset.name} is a mixture of experts: the parameters a token uses are "
                        "not modelled, so it has no prefill or decode floor")
    head = c.get("vocab_size", 0) * c.get("hidden_size", 0)
    tied = c.get("tie_word_embeddings")  # every catalog preset declares it; else its config class's default
    if tied is None:
        tied = getattr(preset.hf_config(), "tie_word_embeddings", True)
    return (catalog.param_count(preset) - head * (1 if tied else 2), head,
            memory_model.attention_width(preset))


def floor_ms(amount: float | None, rate: float | None) -> float | None:
    """amount (bytes or FLOPs) / rate (per second), in ms; None where either is missing."""
    return amount / rate * 1e3 if amount and rate else None


def case_work(model: str, backend: str | None, dtype: str | None, batch: int | None, ctx: int | None,
              logits: str | None) -> tuple[int | None, int | None, str | None]:
    """(decode step bytes, prefill FLOPs, why they are None) of one case, from its catalog preset
    (what a line without `work`, written before edgebench recorded it, is read with)."""
    if not isinstance(ctx, int) or ctx < 1:
        return None, None, "no context length"
    preset = _preset(model)
    if preset is None:
        return None, None, "the model is not in the catalog (`edgebench models` lists the presets)"
    return _work(preset, ctx, batch, dtype, backend, logits)


def _work(preset, ctx, batch, dtype, backend, logits) -> tuple[int | None, int | None, str | None]:
    try:
        flops = prefill_flops(preset, ctx, batch or 1, logits or "last")
        step = decode_step_bytes(preset, ctx, batch or 1, dtype or "bfloat16", backend or "hf")
    except UserError as exc:
        return None, None, str(exc)
    return step, flops, None


def point_work(preset, ctx: int, batch: int, dtype: str, backend: str, logits: str) -> dict | None:
    """The `work` object of a point's lines (schema `CASE["work"]`), counted in its case worker, where
    transformers is loaded already: readers then give the floors from the line alone, also for a model
    outside the catalog (whose parameter count would import torch and transformers, seconds in the
    parent, impossible on a laptop without them). None where the preset has no floor (the readers say
    why)."""
    step, flops, why = _work(preset, ctx, batch, dtype, backend, logits)
    return None if why else dict(zip(WORK_KEYS, (step, flops)))


def row_work(row: dict) -> tuple[int | None, int | None, str | None]:
    """(decode step bytes, prefill FLOPs, why None) of a row: its recorded `work`, else the catalog's."""
    work = row.get("work")
    if work_ok(work):
        return (*(work[k] for k in WORK_KEYS), None)
    return case_work(row.get("model"), row.get("backend"), row.get("dtype"), row.get("batch"),
                     row.get("ctx"), row.get("logits"))


@functools.lru_cache(maxsize=1024)
def _preset(model: str):
    from edgebench.models import catalog
    try:
        return catalog.get(model)
    except UserError:
        return None


def case_floors(row: dict, header: dict | None) -> dict[str, Any]:
    """One case row (a log line or a loader row) with its run header: `FLOOR_COLUMNS`, the floors in
    ms, the work (`decode_step_bytes`, `prefill_flops`) and why any is missing."""
    index, name = run_gpu(header)
    rates = rates_from_env((header or {}).get("env"), index, name)
    pre, tp = (_median(row.get(k)) if row.get("status") == "ok" else None
               for k in ("prefill_ms", "tpot_ms"))
    if not (rates.copy_bytes_per_s or rates.matmul_flop_s):  # nothing to divide by: no work counted
        return dict.fromkeys((*FLOOR_COLUMNS, "decode_floor_ms", "prefill_floor_ms", "decode_step_bytes",
                              "prefill_flops")) | {"why": rates.why}
    step, flops, why = row_work(row)
    cells, whys = _cells(step, flops, rates, row.get("dtype"), pre, tp)
    return cells | {"decode_step_bytes": step, "prefill_flops": flops,
                    "why": "; ".join(dict.fromkeys(w for w in (why, *whys) if w)) or None}


def _median(stats: Any) -> float | None:
    return _positive(stats.get("median")) if isinstance(stats, dict) else None


def _cells(step, flops, rates: Rates, dtype, pre, tp) -> tuple[dict[str, float | None], list[str]]:
    """The cells of one measured case and why its x-floor cells are empty where they are."""
    mm = rates.matmul_flop_s if dtype in PREFILL_DTYPES else None
    dec, pf = floor_ms(step, rates.copy_bytes_per_s), floor_ms(flops, mm)
    whys = [rates.why] if rates.why else []
    if pre and flops and rates.matmul_flop_s and mm is None:
        whys.append(f"the bf16 matmul rate is no floor for a {dtype} prefill")
    return {"decode_floor_ms": dec, "prefill_floor_ms": pf,
            "decode_gb_s": step / tp / 1e6 if step and tp else None,
            "tpot_x_floor": tp / dec if tp and dec else None,
            "prefill_tflop_s": flops / pre / 1e9 if flops and pre else None,
            "prefill_x_floor": pre / pf if pre and pf else None}, whys

