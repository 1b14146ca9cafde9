"""The optional packages edgebench knows by name, declared once: for the SSM kernels, the distribution,
import and compiled-extension names (`PACKAGES`); for every optional package whose import name is not
its distribution name, that distribution (`DISTRIBUTIONS`).

Read by the kernel builder (`toolchain.build`), `edgebench kernels status` (`commands.kernels`), the
environment report (`telemetry.environment`) and kernel detection (`models.kernel_detect`). Standard
library only, so any layer may import it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Package:
    name: str                 # distribution name on PyPI
    module: str               # import name
    extension: str            # compiled module its setup.py builds
    env_prefix: str           # prefix of its setup.py switches (<prefix>_FORCE_BUILD, ...)
    pinned: str               # version whose setup.py the patch was checked against
    runtime: tuple[str, ...]  # modules it imports at run time besides torch
    version: str | None = None  # asked for with name==version


# The SSM kernels, in build order. mamba_ssm does not import at all without its compiled extension.
PACKAGES = {
    "causal-conv1d": Package("causal-conv1d", "causal_conv1d", "causal_conv1d_cuda", "CAUSAL_CONV1D",
                             "1.7.0", ("packaging",)),
    "mamba-ssm": Package("mamba-ssm", "mamba_ssm", "selective_scan_cuda", "MAMBA", "2.3.2.post1",
                         ("einops", "triton", "transformers", "huggingface_hub", "packaging")),
}
# Import name -> distribution name, where they differ (importlib.metadata.version wants the latter).
DISTRIBUTIONS = {**{p.module: p.name for p in PACKAGES.values()},
                 "flash_attn": "flash-attn", "pynvml": "nvidia-ml-py", "jtop": "jetson-stats"}
# Import name -> the SSM kernel package it belongs to.
KERNEL_MODULES = {p.module: p for p in PACKAGES.values()}


def distribution(module: str) -> str:
    """The distribution that provides import name `module`."""
    return DISTRIBUTIONS.get(module, module)
