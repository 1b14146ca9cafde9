"""Which fast kernels are importable, and which ones actually ran.

How transformers (5.15+, checked in 5.23 source) binds the SSM kernels: each SSM op in the modeling
files is a plain PyTorch function decorated with
`integrations.hub_kernels.use_kernel_func_from_hub_with_fallback(func_name, package)` (e.g.
`("selective_scan_fn", "mamba_ssm")`, `("mamba_chunk_scan_combined", "mamba_ssm")`,
`("causal_conv1d_fn", "causal_conv1d")`). At import of the modeling module the decorator tries
`importlib.import_module(package)` and resolves the function; on any exception it silently keeps the
PyTorch function. Priority per call: Hub kernels (the `kernels` package, only when the model was
loaded with `use_kernels=True`; `lazy_load_kernel` fetches them from the Hub, impossible offline),
then the installed package, then the PyTorch reference. Mixers are wrapped with `use_kernelized_func`
for the same purpose. `use_mamba_kernels=False` in a config is deprecated and ignored. mamba_ssm
2.3.x raises at import without its compiled `selective_scan_cuda`, so a broken build means every SSM
model falls back, and nothing says so. Hence `detect`, which looks at what ran.

`detect(run_once)` runs the callable once under `torch.profiler` (CPU, plus CUDA when available) and
classifies the op and kernel names it recorded:
- ssm_scan: "mamba_ssm-cuda" for `selective_scan_fwd` (the CUDA kernel / its `selective_scan_cuda`
  binding); "mamba_ssm-triton" for mamba_ssm's Triton kernels (`_chunk_scan_fwd`, `_chunk_state_fwd`,
  `_state_passing_fwd`, `_chunk_cumsum_fwd`, `_bmm_chunk_fwd`, `selective_scan_update`); else
  "torch-reference" when `aten::softplus` ran: every transformers SSM mixer computes
  dt = softplus(dt + bias) in PyTorch only on the fallback path (the fast paths fuse it into the
  kernel, `delta_softplus=True` / `dt_softplus=True`), and no attention model calls it; else None.
- conv1d: "causal_conv1d" for names containing `causal_conv1d`; "torch-conv1d" for `aten::conv1d`
  / `aten::_convolution`; else None.
- attention: "flash" for the flash_attn package (`flash_attn`, `flash_fwd`); "sdpa-flash",
  "sdpa-efficient", "sdpa-cudnn", "sdpa-math" for `aten::_scaled_dot_product_{flash_attention,
  efficient_attention, cudnn_attention, attention_math}` (on CPU aten's
  `_scaled_dot_product_flash_attention_for_cpu` counts as sdpa-flash); "eager" when `aten::softmax`
  ran without any of those (a MoE router's softmax also matches: Jamba is eager-or-SDPA anyway);
  else None.

`autotuned(prefix)` says which configs Triton's autotuner chose for the kernels of the loaded modules
under `prefix` (mamba_ssm's Mamba-2 kernels): the autotuner benchmarks its configs at the first
call's shapes and keeps the winner on disk (TRITON_CACHE_AUTOTUNING), so two machines, or two runs
with their own caches, can run different configs, and their prefills differ with them (on an H200,
mamba2-780m's 16K prefill came out 129 ms in one run and 152 ms in another with its own cache, each
steady over 3 runs, while the Transformer's agreed: a different choice is the likely reason). The
line records the choice, so that such a difference has a name.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import sys
from typing import Callable

from edgebench.toolchain.packages import KERNEL_MODULES, distribution

_TRITON_SSM = ("_chunk_scan_fwd", "_chunk_state_fwd", "_state_passing_fwd", "_chunk_cumsum_fwd",
               "_bmm_chunk_fwd", "selective_scan_update")
_SDPA = (("_scaled_dot_product_flash_attention", "sdpa-flash"),
         ("_scaled_dot_product_efficient_attention", "sdpa-efficient"),
         ("_scaled_dot_product_cudnn_attention", "sdpa-cudnn"),
         ("_scaled_dot_product_attention_math", "sdpa-math"))
# Import name -> compiled extension that must import too (None: the package alone).
_CHECKED = {**{m: p.extension for m, p in KERNEL_MODULES.items()}, "flash_attn": None, "triton": None,
            "kernels": None}
_FIX = "pip install mamba-ssm causal-conv1d --no-build-isolation, or `edgebench kernels build --install`"


def available() -> dict[str, dict]:
    """Per package: {"ok", "version", "why"}; for mamba_ssm/causal_conv1d `ok` means the package
    AND its compiled CUDA extension import."""
    out = {}
    for module, ext in _CHECKED.items():
        dist = distribution(module)
        entry = {"ok": False, "version": None, "why": None}
        try:
            entry["version"] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            entry["why"] = f"{dist} is not installed"
            out[module] = entry
            continue
        try:
            importlib.import_module(module)
            if ext:
                importlib.import_module(ext)
            entry["ok"] = True
        except Exception as exc:  # a broken build raises ImportError, OSError or RuntimeError
            entry["why"] = f"{type(exc).__name__}: {exc}"[:300]
        out[module] = entry
    return out


def classify(names: set[str]) -> dict[str, str | None]:
    """Kernel kinds from the op/kernel names of one profiled run (see the module docstring)."""
    low = {n.lower() for n in names}
    has = lambda *subs: any(s in n for n in low for s in subs)  # noqa: E731
    if has("selective_scan_fwd", "selective_scan_cuda"):
        scan = "mamba_ssm-cuda"
    elif has(*_TRITON_SSM):
        scan = "mamba_ssm-triton"
    elif "aten::softplus" in low:
        scan = "torch-reference"
    else:
        scan = None
    if has("causal_conv1d"):
        conv = "causal_conv1d"
    elif "aten::conv1d" in low or "aten::_convolution" in low:
        conv = "torch-conv1d"
    else:
        conv = None
    attention = None
    if has("flash_attn", "flash_fwd"):
        attention = "flash"
    else:
        for needle, kind in _SDPA:
            if has(needle):
                attention = kind
                break
        else:
            if "aten::softmax" in low or "aten::_softmax" in low:
                attention = "eager"
    return {"ssm_scan": scan, "conv1d": conv, "attention": attention}


def _config_text(config) -> str:
    """A Triton Config as `NAME=value,...` (its meta-parameters, then num_warps, num_stages ...)."""
    try:
        items = config.all_kwargs().items()
    except Exception:  # noqa: BLE001 - another Triton's Config: its own text
        return str(config)
    return ",".join(f"{k}={v}" for k, v in items if v is not None)


def autotuned(prefix: str = "mamba_ssm") -> dict[str, str] | None:
    """{kernel name: the config(s) Triton's autotuner chose in this process} for the autotuned kernels
    of the loaded modules under `prefix` (see the module docstring); several tuning keys' choices
    are joined with " | "; `scan_error` says why the scan stopped short. None when Triton's
    autotuner is not loaded or nothing under `prefix` was tuned yet."""
    module = sys.modules.get("triton.runtime.autotuner")
    kind = getattr(module, "Autotuner", None)
    if not isinstance(kind, type):
        return None
    out: dict[str, str] = {}
    try:
        _collect(prefix, kind, out)
    except Exception as exc:  # noqa: BLE001 - a module that cannot be walked: what was found, and why
        out["scan_error"] = f"the scan stopped: {type(exc).__name__}: {exc}"[:200]  # it never fails a point
    return dict(sorted(out.items())) or None


def _collect(prefix: str, kind: type, out: dict[str, str]) -> None:
    for name, mod in list(sys.modules.items()):
        if mod is None or not (name == prefix or name.startswith(prefix + ".")):
            continue
        for obj in list(vars(mod).values()):
            for _ in range(4):  # an Autotuner under @triton.heuristics wrappers: each keeps the next in .fn
                if isinstance(obj, kind) or not hasattr(obj, "fn"):
                    break
                obj = obj.fn
            chosen = getattr(obj, "cache", None) if isinstance(obj, kind) else None
            if not isinstance(chosen, dict) or not chosen:
                continue
            fn = getattr(obj, "base_fn", None) or getattr(obj, "fn", None)
            kernel = getattr(fn, "__name__", None) or type(obj).__name__
            text = " | ".join(sorted({_config_text(c) for c in chosen.values()}))
            if out.get(kernel, text) != text:  # two kernels of one name in two modules: both kept
                kernel = f"{name}.{kernel}"
            out[kernel] = text


def detect(run_once: Callable[[], None]) -> dict[str, str | None]:
    """Run `run_once` once under torch.profiler and classify what ran."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities, acc_events=True) as prof:  # one cycle; avoids a warning
        run_once()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    return classify({evt.name for evt in prof.events()})


def autotune_group(preset, backend: str, dtype: str, installed: bool | None = None) -> tuple | None:
    """What a point's first forward autotunes, for `--devices` (`scheduler.run_on_devices`' `warms`):
    mamba_ssm's Triton kernels of Mamba-2 mixers (transformers' Mamba-2, Zamba2, Falcon-H1 ... and the
    mamba_ssm backend) at one dtype, chunk and state size, where mamba_ssm is installed; points of one
    group reuse the first one's on-disk autotune results. None: nothing autotuned. `installed`: whether
    mamba_ssm ran (None: whether it is importable here; True for logs read on another machine)."""
    import importlib.util

    from edgebench.errors import UserError
    from edgebench.models import memory_model
    try:
        shape = memory_model.ssd_shape(preset)
    except UserError:  # a layout the memory model does not know (a local hybrid): nothing grouped
        return None
    if installed is None:
        installed = importlib.util.find_spec("mamba_ssm") is not None
    if shape is None or not installed:
        return None
    return ("mamba_ssm-triton", dtype, *shape)


def fallback_warnings(kernels: dict[str, str | None], family: str) -> list[str]:
    """User-visible warnings when an SSM or hybrid model ran PyTorch fallbacks."""
    if family not in ("ssm", "hybrid"):
        return []
    out = []
    scan = kernels.get("ssm_scan")
    if scan == "torch-reference":
        out.append("SSM scan ran the PyTorch reference path, not mamba_ssm's kernels: timings and memory "
                   "are not those of a real deployment (Mamba-1's reference prefill loops over tokens). "
                   f"Fix: {_FIX}; check with `edgebench kernels status`")
    elif scan is None:
        out.append("no SSM scan kernel was seen in the profiled step; the kernel path is unknown")
    if kernels.get("conv1d") == "torch-conv1d":
        out.append("the SSM short convolution ran torch's conv1d, not causal_conv1d. "
                   "Fix: pip install causal-conv1d --no-build-isolation, or `edgebench kernels build --install`")
    return out
