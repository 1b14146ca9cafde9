"""Analytic memory model: where the bytes of a prefill go, per preset, context and dtype.

`predict(preset, ctx, batch=1, dtype="bfloat16", logits="last", gen=0)` returns bytes:
- `weights_bytes`: parameters x dtype size (`catalog.param_count`, tied tensors once).
- `kv_bytes`: K and V of the layers that hold an attention cache, for ctx + gen positions, in the
  model dtype, GQA aware (kv heads x head_dim). Which layers: every layer (Transformers, Falcon-H1's
  parallel attention+Mamba layers), Zamba2's "hybrid" layers (the shared block's weights are shared,
  its cache is per call site), Jamba's `i % attn_layer_period == attn_layer_offset`, Nemotron-H's
  `*` in `hybrid_override_pattern`, Bamba's `attn_layer_indices`. 0 for pure SSMs.
- `ssm_state_bytes`: per Mamba layer a conv state (batch, conv_dim, d_conv) in the model dtype
  and a recurrent state in float32 (Mamba-1: (batch, d_inner, d_state); Mamba-2: (batch, heads,
  head_dim, d_state)); constant in context. conv_dim is d_inner for Mamba-1 and
  d_inner + 2 * n_groups * d_state for Mamba-2. These shapes and dtypes are what transformers 5.23
  allocates (the tests sum the real cache tensors of a CPU prefill).
- `logits_bytes`: batch x (1 | ctx) x vocab, float32 for the classes that upcast their logits
  (Mamba, Mamba-2, FalconMamba, Nemotron-H call `.float()` on the lm_head output), else the dtype.
- `activation_bytes`: estimate of the largest transient of a prefill on the fast-kernel path:
  batch x ctx x (the residual stream and its normed copy: 2 x hidden x dtype size, or hidden x (4 +
  dtype size) with residual_in_fp32; Zamba2 adds its kept embeddings) + the widest per-layer
  intermediate: 3 x intermediate for a gated MLP, (2 x heads + 2 x kv_heads) x head_dim for
  attention, 8 x d_inner for a Mamba-1 mixer (see _MAMBA1_LIVE_D_INNER), a Mamba-2 mixer's live
  tensors (see _Mixer2: its float32 gated norm dominates).
  It ignores allocator fragmentation and the PyTorch-reference SSM path (which materialises
  (batch, d_inner, ctx, d_state) float32 tensors for Mamba-1 and is far larger).
- `head_bytes`: what lives beside the logits while the LM head runs: the final normed hidden states of
  the positions kept (batch x (1 | ctx) x hidden x dtype size) and, for an upcasting class with
  logits="all", the dtype copy of the logits before `.float()`.
- `total_bytes`: the peak: weights + kv + ssm_state + the larger of `activation_bytes` (inside the
  layers) and `logits_bytes + head_bytes` (at the LM head, after the layers' transients are freed).
  Adding the two instead over-predicted full-logits peaks by 8-16% on the H100 (allocator peaks at
  the longest context that fit 8 GiB, bench/results/h100-2026-11-22c); the larger of the two is
  within -7% .. -0.5% of them. Zamba2's layer transients exceed its logits, so its limit does not
  depend on the logits mode, as measured.
`backend="mamba_ssm"` (Mamba and Mamba-2 presets) predicts mamba_ssm's MambaLMHeadModel instead:
its own parameters, states and logits in the model dtype (no float32 state, no logits upcast), and its
fused kernels' transients; `edgebench.models.mamba_ssm_memory` says what each term holds.
`kv_bytes_per_token(preset, dtype)` and `state_bytes(preset, dtype, backend)` are the per-token and the
constant parts, batch 1. `longest_fit(preset, budget_bytes, ...)` bisects the longest context whose
predicted `total_bytes` fits a budget. Only the standard library is imported here except `param_count`,
the backend names and the mamba_ssm terms.
"""
from __future__ import annotations

import dataclasses

from edgebench.models import mamba_ssm_memory
from edgebench.errors import UserError
from edgebench.models.catalog import Preset, param_count
from edgebench.choices import BACKENDS, LOGITS_MODES

DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}
FP32_STATE_BYTES = 4
_FP32_LOGITS_TYPES = frozenset({"mamba", "mamba2", "falcon_mamba", "nemotron_h"})
# Mamba-1 prefill through transformers' MambaMixer with mamba_ssm's selective_scan_fn holds, at the
# scan, d_inner-wide per-token tensors: in_proj output (2), conv output (1), dt_proj output (1),
# selective_scan_fn's contiguous copies of u and z (2), its out and out_z (2) = 8 x d_inner. Checked on
# an H100 (mamba-790m, bench/results/h100-2026-11-22): 63 KB/token measured vs 55 predicted.
_MAMBA1_TYPES = frozenset({"mamba", "falcon_mamba"})
_MAMBA1_LIVE_D_INNER = 8


# Mamba-2 mixers (Mamba2, Zamba2, Falcon-H1, Bamba, Nemotron-H) through transformers with mamba_ssm's
# chunked scan. Per token, live at the mixer's peak: in_proj output + conv output (model dtype), then
# the larger of (a) the chunked scan's own buffers: chunk states before and after state passing
# (2 x heads x head_dim x d_state / chunk, float32), the chunk C.B^T (n_groups x chunk, float32) and
# its output y (d_inner), and (b) after the scan: y plus the gated RMSNorm, which transformers computes
# in float32 (its input, silu(gate) and their product: 3 x d_inner x 4 bytes), or without that norm
# (Falcon-H1's mamba_rms_norm=False) silu(gate) and y * silu(gate) in the model dtype. Checked on an
# H100 (mamba2-780m, bench/results/h100-2026-11-22b): 74.8 KB/token measured, 74.8 predicted.
_NORM_FP32_LIVE = 3


@dataclasses.dataclass(frozen=True)
class _Mixer2:
    d_inner: int
    state_per_chunk_elems: int  # heads x head_dim x d_state
    n_groups: int
    chunk: int
    gated_norm: bool

    def live_bytes_per_token(self, in_proj: int, conv_dim: int, nbytes: int) -> int:
        d = self.d_inner
        scan = 2 * self.state_per_chunk_elems * FP32_STATE_BYTES // self.chunk \
            + self.n_groups * self.chunk * FP32_STATE_BYTES + d * nbytes
        if self.gated_norm:
            after = d * nbytes + _NORM_FP32_LIVE * d * max(FP32_STATE_BYTES, nbytes)
        else:
            after = 3 * d * nbytes
        return (in_proj + conv_dim) * nbytes + max(scan, after)


@dataclasses.dataclass(frozen=True)
class _Layout:
    attn_layers: int
    kv_heads: int
    head_dim: int
    q_heads: int
    mamba_layers: int
    conv_dim: int
    d_conv: int
    ssm_state_elems: int  # per layer, batch 1
    in_proj_width: int
    mlp_width: int  # widest MLP intermediate (3 x for gated, 2 x for relu2)
    mixer2: _Mixer2 | None = None  # Mamba-2 mixers


def _mamba2(d_inner, heads, n_groups, d_state, d_conv):
    conv_dim = d_inner + 2 * n_groups * d_state
    return conv_dim, d_inner * d_state, d_conv, 2 * d_inner + 2 * n_groups * d_state + heads


def _mixer2(c: dict, d_inner: int, n_groups: int, d_state: int, chunk_key: str, gated_norm: bool = True):
    return _Mixer2(d_inner, d_inner * d_state, n_groups, c.get(chunk_key, 256), gated_norm)


def _layout(p: Preset) -> _Layout:
    c, t, L = p.config, p.model_type, p.config.get("num_hidden_layers", 0)
    hidden = c.get("hidden_size", 0)
    q_heads = c.get("num_attention_heads", 1)
    kv_heads = c.get("num_key_value_heads") or q_heads
    head_dim = c.get("head_dim") or (hidden // q_heads if q_heads else 0)
    mlp = 3 * c.get("intermediate_size", 4 * hidden)
    if p.family == "transformer":
        return _Layout(L, kv_heads, head_dim, q_heads, 0, 0, 0, 0, 0, mlp)
    if t in ("mamba", "falcon_mamba"):
        d_inner = c.get("intermediate_size") or c.get("expand", 2) * hidden
        return _Layout(0, 0, 0, 0, L, d_inner, c.get("conv_kernel", 4), d_inner * c.get("state_size", 16),
                       2 * d_inner, 0)
    if t == "mamba2":
        heads = c.get("num_heads", 128)
        d_inner = heads * c.get("head_dim", 64)
        groups, d_state = c.get("n_groups", 8), c.get("state_size", 128)
        conv, state, k, proj = _mamba2(d_inner, heads, groups, d_state, c.get("conv_kernel", 4))
        return _Layout(0, 0, 0, 0, L, conv, k, state, proj, 0, _mixer2(c, d_inner, groups, d_state, "chunk_size"))
    if t == "zamba2":
        types = c.get("layers_block_type") or []
        attn = sum(1 for x in types if x == "hybrid")
        d_inner = c.get("mamba_expand", 2) * hidden
        heads = c.get("n_mamba_heads", 8)
        groups, d_state = c.get("mamba_ngroups", 1), c.get("mamba_d_state", 64)
        conv, state, k, proj = _mamba2(d_inner, heads, groups, d_state, c.get("mamba_d_conv", 4))
        zhead = 2 * hidden // q_heads
        return _Layout(attn, kv_heads, zhead, q_heads, L, conv, k, state, proj, mlp,
                       _mixer2(c, d_inner, groups, d_state, "chunk_size"))
    if t in ("falcon_h1", "bamba"):
        d_inner = c.get("mamba_d_ssm") or c.get("mamba_expand", 2) * hidden
        heads = c.get("mamba_n_heads", 128)
        groups, d_state = c.get("mamba_n_groups", 1), c.get("mamba_d_state", 256)
        conv, state, k, proj = _mamba2(d_inner, heads, groups, d_state, c.get("mamba_d_conv", 4))
        mixer = _mixer2(c, d_inner, groups, d_state, "mamba_chunk_size", c.get("mamba_rms_norm", True))
        if t == "falcon_h1":
            return _Layout(L, kv_heads, head_dim, q_heads, L, conv, k, state, proj, mlp, mixer)
        attn = len(c.get("attn_layer_indices") or [])
        return _Layout(attn, kv_heads, head_dim, q_heads, L - attn, conv, k, state, proj, mlp, mixer)
    if t == "nemotron_h":
        kinds = list(c["hybrid_override_pattern"]) if "hybrid_override_pattern" in c else [
            {"mamba": "M", "attention": "*", "full_attention": "*", "linear_attention": "M"}.get(x, "-")
            for x in c.get("layers_block_type", [])]
        heads = c.get("mamba_num_heads", 128)
        d_inner = heads * c.get("mamba_head_dim", 64)
        groups, d_state = c.get("n_groups", 8), c.get("ssm_state_size", 128)
        conv, state, k, proj = _mamba2(d_inner, heads, groups, d_state, c.get("conv_kernel", 4))
        return _Layout(kinds.count("*"), kv_heads, head_dim, q_heads, kinds.count("M"), conv, k, state, proj,
                       2 * c.get("intermediate_size", 4 * hidden), _mixer2(c, d_inner, groups, d_state, "chunk_size"))
    if t == "jamba":
        period, offset = c.get("attn_layer_period", 8), c.get("attn_layer_offset", 4)
        attn = sum(1 for i in range(L) if i % period == offset)
        d_inner = c.get("mamba_expand", 2) * hidden
        return _Layout(attn, kv_heads, head_dim, q_heads, L - attn, d_inner, c.get("mamba_d_conv", 4),
                       d_inner * c.get("mamba_d_state", 16), 2 * d_inner, mlp)
    raise UserError(f"the memory model does not know model_type '{t}' ({p.name}); "
                    f"it covers the catalog's Transformer, Mamba, Mamba-2, Zamba2, Falcon-H1, Bamba, "
                    f"Nemotron-H and Jamba layouts")


def _dtype_bytes(dtype: str) -> int:
    if dtype not in DTYPE_BYTES:
        raise UserError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPE_BYTES)}")
    return DTYPE_BYTES[dtype]


def kv_bytes_per_token(preset: Preset, dtype: str = "bfloat16") -> int:
    lay = _layout(preset)
    return 2 * lay.attn_layers * lay.kv_heads * lay.head_dim * _dtype_bytes(dtype)


def state_bytes(preset: Preset, dtype: str = "bfloat16", backend: str = "hf") -> int:
    if _backend(preset, backend) == "mamba_ssm":
        return mamba_ssm_memory.footprint(preset, _dtype_bytes(dtype), FP32_STATE_BYTES)["state"]
    lay = _layout(preset)
    per_layer = lay.conv_dim * lay.d_conv * _dtype_bytes(dtype) + lay.ssm_state_elems * FP32_STATE_BYTES
    return lay.mamba_layers * per_layer


def _backend(preset: Preset, backend: str) -> str:
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if backend == "mamba_ssm" and not preset.mamba_ssm:
        raise UserError(f"{preset.name} has no mamba_ssm backend (it has: {', '.join(preset.backends)}); "
                        f"mamba_ssm serves the Mamba and Mamba-2 presets only")
    return backend


def predict(preset: Preset, ctx: int, batch: int = 1, dtype: str = "bfloat16", logits: str = "last",
            gen: int = 0, backend: str = "hf") -> dict[str, int]:
    if logits not in LOGITS_MODES:
        raise UserError(f"logits must be one of {', '.join(LOGITS_MODES)}, not {logits!r}")
    if ctx < 1 or batch < 1 or gen < 0:
        raise UserError(f"ctx and batch must be >= 1 and gen >= 0 (got ctx={ctx}, batch={batch}, gen={gen})")
    nbytes = _dtype_bytes(dtype)
    if _backend(preset, backend) == "mamba_ssm":
        return _total(_predict_mamba_ssm(preset, ctx, batch, nbytes, ctx if logits == "all" else 1))
    lay = _layout(preset)
    c = preset.config
    vocab = c.get("vocab_size", 0)
    logit_positions = ctx if logits == "all" else 1
    logit_bytes = FP32_STATE_BYTES if preset.model_type in _FP32_LOGITS_TYPES else nbytes
    hidden = c.get("hidden_size", 0)
    widest = nbytes * max(lay.mlp_width, (2 * lay.q_heads + 2 * lay.kv_heads) * lay.head_dim,
                          lay.in_proj_width + lay.conv_dim)
    if preset.model_type in _MAMBA1_TYPES:
        widest = nbytes * _MAMBA1_LIVE_D_INNER * (lay.in_proj_width // 2)
    if lay.mixer2 is not None:
        widest = max(widest, lay.mixer2.live_bytes_per_token(lay.in_proj_width, lay.conv_dim, nbytes))
    residual = (FP32_STATE_BYTES + nbytes) * hidden if c.get("residual_in_fp32") else 2 * nbytes * hidden
    if preset.model_type == "zamba2":  # the embeddings stay live: every shared block reads them again
        residual += nbytes * hidden
    head = batch * logit_positions * hidden * nbytes
    if logits == "all" and logit_bytes != nbytes:
        head += batch * ctx * vocab * nbytes
    out = {
        "weights_bytes": param_count(preset) * nbytes,
        "kv_bytes": batch * (ctx + gen) * kv_bytes_per_token(preset, dtype),
        "ssm_state_bytes": batch * state_bytes(preset, dtype),
        "logits_bytes": batch * logit_positions * vocab * logit_bytes,
        "activation_bytes": batch * ctx * (residual + widest),
        "head_bytes": head,
    }
    return _total(out)


def _predict_mamba_ssm(preset: Preset, ctx: int, batch: int, nbytes: int, positions: int) -> dict[str, int]:
    m = mamba_ssm_memory.footprint(preset, nbytes, FP32_STATE_BYTES)
    return {"weights_bytes": m["weights"], "kv_bytes": 0, "ssm_state_bytes": batch * m["state"],
            "logits_bytes": batch * positions * m["vocab"] * nbytes,
            "activation_bytes": batch * ctx * m["live_per_token"],
            "head_bytes": batch * ctx * m["hidden"] * nbytes}


def _total(out: dict[str, int]) -> dict[str, int]:
    out["total_bytes"] = (out["weights_bytes"] + out["kv_bytes"] + out["ssm_state_bytes"]
                          + max(out["activation_bytes"], out["logits_bytes"] + out["head_bytes"]))
    return out


def longest_fit(preset: Preset, budget_bytes: int, *, dtype: str = "bfloat16", logits: str = "last",
                lo: int = 1024, hi: int = 1 << 20, resolution: int = 1024, backend: str = "hf") -> int | None:
    """The longest context in [lo, hi] (to within `resolution`) whose predicted peak fits
    `budget_bytes`; None when even `lo` does not fit."""
    fits = lambda ctx: predict(preset, ctx, dtype=dtype, logits=logits,  # noqa: E731
                               backend=backend)["total_bytes"] <= budget_bytes
    if not fits(lo):
        return None
    while hi - lo > resolution:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def ssd_shape(preset: Preset) -> tuple[int, int] | None:
    """(chunk size, state size) of the preset's Mamba-2 mixers, the dimensions mamba_ssm's Triton
    kernels are autotuned at besides the head size; None without Mamba-2 mixers."""
    m = _layout(preset).mixer2
    return None if m is None else (m.chunk, m.state_per_chunk_elems // m.d_inner)


def attention_width(preset: Preset) -> int:
    """The query width summed over the layers that hold an attention cache (layers x query heads x
    head_dim, the same layers as `kv_bytes`): what a prefill's attention FLOPs scale with
    (`edgebench.analysis.floors`). 0 for pure SSMs."""
    lay = _layout(preset)
    return lay.attn_layers * lay.q_heads * lay.head_dim
