"""What mamba_ssm's MambaLMHeadModel allocates in a prefill: the `mamba_ssm` backend's memory terms.

`footprint(preset, nbytes, fp32_bytes)` reads `preset.mamba_ssm` (the MambaConfig fields the loader
builds the model from, in the model dtype, `nbytes` per element) with mamba_ssm 2.3.2.post1's defaults
for the fields it leaves out, and returns bytes (batch 1) and sizes:
- `weights`: every parameter once (tied embeddings once, vocab padded to `pad_vocab_size_multiple`)
  in the model dtype, except those mamba_ssm keeps in float32 whatever the dtype: Mamba-1's A_log and D,
  Mamba-2's D.
- `state`: per layer the InferenceParams states, conv (conv_dim, d_conv) and recurrent (Mamba-1:
  (d_inner, d_state); Mamba-2: (heads, head_dim, d_state)), both in the model dtype (`_get_states_from_cache`
  allocates them like the mixer's weights; transformers keeps the recurrent one in float32).
- `vocab` (padded) and `hidden`: the LM head's output width and input width. The head is a plain
  Linear in the model dtype: no float upcast of the logits (2 bytes each in bfloat16 and float16).
- `live_per_token`: the bytes live per token while one block runs, at the mixer's peak:
  - the residual stream: two (hidden, residual) pairs, the block's input still held by
    MixerModel.forward while the fused add+norm makes the next (residual in float32 with
    residual_in_fp32);
  - Mamba-1 (with an InferenceParams the mixer takes selective_scan_fn, not mamba_inner_fn): in_proj
    output (2 x d_inner), conv output, dt, the kernel's out and out_z (6 x d_inner in all), the x_proj
    output (dt_rank + 2 x d_state) and the contiguous copies of B and C, in the model dtype, plus the
    kernel's float32 checkpoints, (d_inner, 2 x d_state) per 2048 tokens;
  - Mamba-2 (mamba_chunk_scan_combined): in_proj output and conv output, then the larger of the chunk
    scan's buffers (float32 dt and dA_cumsum per head; float32 chunk states beside their model-dtype
    copy after state passing, or the model-dtype states, float32 C.B^T per chunk and the output y) and
    y beside its gated RMSNorm's output (a Triton kernel, in the model dtype).
Checked on an H100 (bench/results/h100-2026-11-22c/logs/mamba_ssm.jsonl, 16K to 64K): 55,816 and
50,274 bytes per token measured (mamba-790m, mamba2-780m), 55,808 and 50,272 modelled. Left out: the
input ids (8 bytes per token) and a constant ~35 MB there (cuBLAS workspace and the like).
"""
from __future__ import annotations

from typing import Any

from edgebench.errors import UserError
from edgebench.models.catalog import Preset

# mamba_ssm 2.3.2.post1's defaults (MambaConfig; Mamba and Mamba2 modules) for fields a preset leaves out.
CONFIG_DEFAULTS: dict[str, Any] = {"d_intermediate": 0, "rms_norm": True, "residual_in_fp32": True,
                                   "pad_vocab_size_multiple": 8, "tie_embeddings": True}
LAYER_DEFAULTS: dict[str, dict[str, Any]] = {
    "Mamba1": {"d_state": 16, "d_conv": 4, "expand": 2, "dt_rank": "auto"},
    "Mamba2": {"d_state": 128, "d_conv": 4, "expand": 2, "headdim": 64, "ngroups": 1, "chunk_size": 256},
}
SELECTIVE_SCAN_CHUNK = 2048  # selective_scan_cuda.fwd keeps one float32 checkpoint per 2048 tokens


def footprint(preset: Preset, nbytes: int, fp32_bytes: int) -> dict[str, int]:
    """The terms above for a preset with a `mamba_ssm` config, `nbytes` per model-dtype element."""
    cfg = CONFIG_DEFAULTS | (preset.mamba_ssm or {})
    if cfg["d_intermediate"] or cfg.get("attn_layer_idx"):
        raise UserError(f"{preset.name}: the memory model covers mamba_ssm's pure Mamba and Mamba-2 stacks, "
                        f"not its MLP or attention layers (d_intermediate, attn_layer_idx)")
    ssm = dict(cfg.get("ssm_cfg") or {})
    kind = ssm.pop("layer", "Mamba1")
    if kind not in LAYER_DEFAULTS:
        raise UserError(f"{preset.name}: the memory model knows mamba_ssm layers "
                        f"{', '.join(LAYER_DEFAULTS)}, not {kind!r}")
    s = LAYER_DEFAULTS[kind] | ssm
    d, n, k, ds = cfg["d_model"], cfg["n_layer"], s["d_conv"], s["d_state"]
    di = s["expand"] * d
    if kind == "Mamba1":
        r = -(-d // 16) if s["dt_rank"] == "auto" else s["dt_rank"]
        conv, fp32_params = di, di * ds + di  # A_log, D
        # in_proj, conv (+ bias), x_proj, dt_proj (+ bias), A_log and D, out_proj
        mixer = 2 * d * di + di * (k + 1) + di * (r + 2 * ds) + (r + 1) * di + fp32_params + di * d
        live = nbytes * (6 * di + r + 4 * ds) + fp32_bytes * 2 * di * ds // SELECTIVE_SCAN_CHUNK
    else:
        heads, groups, chunk = di // s["headdim"], s["ngroups"], s["chunk_size"]
        conv, fp32_params = di + 2 * groups * ds, heads  # D
        proj = 2 * di + 2 * groups * ds + heads
        # in_proj, conv (+ bias), dt_bias + A_log + D, the gated norm's weight, out_proj
        mixer = d * proj + conv * (k + 1) + 3 * heads + di + di * d
        states = di * ds // chunk  # chunk states per token
        scan = 2 * heads * fp32_bytes + max(states * (fp32_bytes + nbytes),
                                            states * nbytes + groups * chunk * fp32_bytes + di * nbytes)
        live = nbytes * (proj + conv) + max(scan, 2 * di * nbytes)
    norm = d if cfg["rms_norm"] else 2 * d  # RMSNorm: weight; LayerNorm: weight and bias
    pad = cfg["pad_vocab_size_multiple"]
    vocab = -(-cfg["vocab_size"] // pad) * pad
    params = n * (mixer + norm) + norm + vocab * d * (1 if cfg["tie_embeddings"] else 2)
    residual = fp32_bytes if cfg["residual_in_fp32"] else nbytes
    return {"weights": params * nbytes + n * fp32_params * max(0, fp32_bytes - nbytes),
            "state": n * (conv * k + di * ds) * nbytes, "vocab": vocab, "hidden": d,
            "live_per_token": 2 * d * (nbytes + residual) + live}
