"""Check that the installed causal-conv1d and mamba-ssm CUDA kernels run on this GPU and agree with the
PyTorch references shipped in the same packages (fp32, small shapes). Prints one line per kernel;
exit status 1 when a kernel is missing or disagrees. Used by tools/lent-gpu/kernels_build.sh."""
import sys

import torch

torch.manual_seed(0)
dev, failed = "cuda", False

try:
    from causal_conv1d import causal_conv1d_fn
    from causal_conv1d.causal_conv1d_interface import causal_conv1d_ref
    x, w, b = torch.randn(2, 64, 512, device=dev), torch.randn(64, 4, device=dev), torch.randn(64, device=dev)
    err = (causal_conv1d_fn(x, w, b, activation="silu") - causal_conv1d_ref(x, w, b, activation="silu")).abs().max()
    failed |= not err.item() < 1e-3
    print(f"causal_conv1d_fn vs causal_conv1d_ref: max abs err {err.item():.2e}")
except ImportError as exc:
    failed = True
    print("causal_conv1d missing:", exc)

try:
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn, selective_scan_ref
    bsz, d, n, L = 2, 64, 16, 512
    u, delta = torch.randn(bsz, d, L, device=dev), torch.rand(bsz, d, L, device=dev)
    A, D = -torch.rand(d, n, device=dev), torch.randn(d, device=dev)
    B, C = torch.randn(bsz, n, L, device=dev), torch.randn(bsz, n, L, device=dev)
    out = selective_scan_fn(u, delta, A, B, C, D, delta_softplus=True)
    ref = selective_scan_ref(u, delta, A, B, C, D, delta_softplus=True)
    err = (out - ref).abs().max() / ref.abs().max()
    failed |= not err.item() < 1e-3
    print(f"selective_scan_fn vs selective_scan_ref: max abs err / max abs {err.item():.2e}")
except ImportError as exc:
    failed = True
    print("mamba_ssm missing:", exc)

sys.exit(1 if failed else 0)
