"""Turn a preset (or a local model directory) into a model on the target device, and give the timing
code one forward interface for every backend and family.

Contract:
- `load(preset, backend="hf", device="cuda", dtype="bfloat16", attn="sdpa") -> Loaded`.
  A preset becomes random weights built directly on `device` in `dtype` (parameters are allocated
  and initialised under `torch.device(device)`, so a 7B model is never materialised on the CPU
  first). A local directory loads with `from_pretrained(..., local_files_only=True)`, with
  `trust_remote_code` only where the preset says so (Hymba); a directory with a config but no
  weight files gets random weights from that config. Bad arguments raise `UserError`, a missing
  package `MissingDependency`, before any weights are allocated.
- `Loaded.prefill(input_ids, logits="last"|"all") -> (logits, cache)` and
  `Loaded.decode(token_ids, cache) -> (logits, cache)`. "last" keeps one position
  (`logits_to_keep=1` / `num_last_tokens=1`, what generation does); "all" keeps every position.
  For `hf` the cache keyword and output (`cache` / `cache_params` / `past_key_values`, by transformers
  version) come from `hf_cache.detect`, once per load, kept as `Loaded.cache_api`. For `mamba_ssm` the
  cache is its `InferenceParams`.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import time
from pathlib import Path
from typing import Any

from edgebench.choices import ATTN_KINDS, BACKENDS, DTYPES, LOGITS_MODES
from edgebench.errors import MissingDependency, UserError
from edgebench.models import hf_cache
from edgebench.models.catalog import Preset

_WEIGHT_GLOBS = ("*.safetensors", "*.bin", "*.pt")


@dataclasses.dataclass
class Loaded:
    model: Any
    preset: Preset
    backend: str
    dtype: str
    attn: str | None
    vocab_size: int
    info: dict[str, Any]
    cache_api: hf_cache.CacheApi | None = None  # hf backend: how its forward takes and returns the cache
    # Position of the next token; only needed by models whose forward takes cache_position, and by
    # mamba_ssm's InferenceParams.seqlen_offset.
    _pos: int = 0
    max_new_tokens: int = 4096

    def prefill(self, input_ids, logits: str = "last"):
        if logits not in LOGITS_MODES:
            raise UserError(f"logits must be one of {', '.join(LOGITS_MODES)}, not {logits!r}")
        import torch

        seq_len = input_ids.shape[1]
        with torch.inference_mode():
            if self.backend == "mamba_ssm":
                from mamba_ssm.utils.generation import InferenceParams

                params = InferenceParams(max_seqlen=seq_len + self.max_new_tokens,
                                         max_batch_size=input_ids.shape[0])
                out = self.model(input_ids, inference_params=params,
                                 num_last_tokens=1 if logits == "last" else 0)
                params.seqlen_offset += seq_len
                self._pos = seq_len
                return out.logits, params
            api = self.cache_api
            out = self.model(input_ids=input_ids, use_cache=True, logits_to_keep=1 if logits == "last" else 0,
                             **api.kwargs(None, api.positions(0, seq_len, input_ids.device)))
        self._pos = seq_len
        return out.logits, api.of(out)

    def decode(self, token_ids, cache):
        import torch

        n = token_ids.shape[1]
        with torch.inference_mode():
            if self.backend == "mamba_ssm":
                out = self.model(token_ids, inference_params=cache, num_last_tokens=1)
                cache.seqlen_offset += n
                self._pos += n
                return out.logits, cache
            api = self.cache_api
            out = self.model(input_ids=token_ids, use_cache=True, logits_to_keep=1,
                             **api.kwargs(cache, api.positions(self._pos, n, token_ids.device)))
        self._pos += n
        return out.logits, api.of(out)


def _check_args(preset: Preset, backend: str, device: str, dtype: str, attn: str) -> None:
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if backend not in preset.backends:
        raise UserError(f"{preset.name} has no {backend} backend (it has: {', '.join(preset.backends)}); "
                        f"mamba_ssm serves the Mamba and Mamba-2 presets only")
    if dtype not in DTYPES:
        raise UserError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    if attn not in ATTN_KINDS:
        raise UserError(f"unknown attention {attn!r}; use one of {', '.join(ATTN_KINDS)}")
    if attn == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise MissingDependency("flash_attn (for --attn flash_attention_2)",
                                "pip install flash-attn --no-build-isolation", "or use --attn sdpa")
    if not (device == "cpu" or device.startswith("cuda")):
        raise UserError(f"unknown device {device!r}; use cpu or cuda[:N]")


def load(preset: Preset, backend: str = "hf", device: str = "cuda", dtype: str = "bfloat16",
         attn: str = "sdpa") -> Loaded:
    _check_args(preset, backend, device, dtype, attn)
    try:
        import torch
    except ImportError as exc:
        from edgebench.telemetry.stack import torch_install_command
        raise MissingDependency("torch", torch_install_command(), str(exc)) from exc
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("device cuda asked for but torch sees no CUDA GPU; use --device cpu "
                        "(and the tiny-* presets) or check the driver and the torch build")
    torch_dtype = getattr(torch, dtype)
    t0 = time.perf_counter()
    if backend == "mamba_ssm":
        model, vocab_size = _load_mamba_ssm(preset, device, torch_dtype)
        weights, attn_used = "random", None
    else:
        model, weights = _load_hf(preset, device, torch_dtype, attn)
        vocab_size = model.get_output_embeddings().out_features
        attn_used = None if preset.family == "ssm" else getattr(model.config, "_attn_implementation", attn)
    model.eval()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    params = sum(p.numel() for p in model.parameters())
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    info = {"weights": weights, "init_s": round(time.perf_counter() - t0, 3), "params": params,
            "param_bytes": param_bytes, "device": device}
    api = hf_cache.detect(model) if backend == "hf" else None
    return Loaded(model=model, preset=preset, backend=backend, dtype=dtype, attn=attn_used,
                  vocab_size=vocab_size, info=info, cache_api=api)


def _load_hf(preset: Preset, device: str, torch_dtype, attn: str):
    import torch
    from transformers import AutoModelForCausalLM

    kwargs = {"dtype": torch_dtype, "trust_remote_code": preset.remote_code}
    if preset.family != "ssm":  # pure SSM classes refuse any attn_implementation but their default
        kwargs["attn_implementation"] = attn
    if preset.local_dir and any(any(Path(preset.local_dir).glob(g)) for g in _WEIGHT_GLOBS):
        # device_map loads straight onto the GPU but needs accelerate; without it, stage on the host.
        if device != "cpu" and importlib.util.find_spec("accelerate") is not None:
            kwargs["device_map"] = device
        model = AutoModelForCausalLM.from_pretrained(preset.local_dir, local_files_only=True, **kwargs)
        return model.to(device), "pretrained"
    cfg = preset.hf_config()
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, **kwargs)
    return model, "random"


def _load_mamba_ssm(preset: Preset, device: str, torch_dtype):
    try:
        from mamba_ssm.models.config_mamba import MambaConfig
        from mamba_ssm.models.mixer_seq_simple import MambaLMHeadModel
    except Exception as exc:  # its import fails with ImportError or OSError when selective_scan_cuda is absent
        raise MissingDependency(
            "mamba_ssm (backend mamba_ssm)",
            "pip install mamba-ssm causal-conv1d --no-build-isolation, or `edgebench kernels build`",
            f"{type(exc).__name__}: {exc}") from exc
    if not device.startswith("cuda"):
        raise UserError("the mamba_ssm backend runs on CUDA only; use --backend hf on the CPU")
    fields = dict(preset.mamba_ssm)
    model = MambaLMHeadModel(MambaConfig(**fields), device=device, dtype=torch_dtype)
    return model, model.backbone.embedding.num_embeddings
