"""`--memory-budget`: check a budget against the device and the model, and apply it in a worker.

`check_budget` runs before any model loads and refuses a budget larger than the device or smaller
than the model's weights. `apply_budget` runs inside the worker, after CUDA is up and before the
model loads: it calls `torch.cuda.set_per_process_memory_fraction(budget / total, device)`.

Caveat: that fraction caps PyTorch's caching allocator only. The CUDA context (hundreds of MiB),
cuBLAS/cuDNN workspaces outside the caching allocator, NCCL, and memory that other libraries allocate
with their own allocators (e.g. Triton's or mamba_ssm's own buffers, if any) are not counted. So a case
can pass under a 24 GiB budget here and still fail on a real 24 GiB card by that margin. The runner
therefore also compares device-level use (`cudaMemGetInfo`) with the budget; `device_overrun` turns
that comparison into a reason string.
"""
from __future__ import annotations

from edgebench.errors import UserError
from edgebench.sweep.units import format_bytes


def check_budget(budget_bytes: int | None, device_total_bytes: int | None,
                 weights_bytes: int | None) -> None:
    """Raise UserError if the budget cannot work; None values skip the matching check."""
    if budget_bytes is None:
        return
    if budget_bytes <= 0:
        raise UserError(f"memory budget must be positive, got {budget_bytes} bytes")
    if device_total_bytes is not None and budget_bytes > device_total_bytes:
        raise UserError(f"memory budget {format_bytes(budget_bytes)} exceeds the device's "
                        f"{format_bytes(device_total_bytes)}; choose a budget up to "
                        f"{format_bytes(device_total_bytes)} or drop --memory-budget")
    if weights_bytes is not None and budget_bytes < weights_bytes:
        raise UserError(f"memory budget {format_bytes(budget_bytes)} is below the model's "
                        f"{format_bytes(weights_bytes)} of weights; raise the budget or pick a "
                        "smaller model or dtype")


def apply_budget(budget_bytes: int, device_index: int) -> float:
    """Cap PyTorch's allocator on CUDA device `device_index` at `budget_bytes`; return the fraction
    of the device's total memory that was set."""
    import torch

    if not torch.cuda.is_available():
        raise UserError("--memory-budget needs a CUDA device and none is available; "
                        "drop --memory-budget on CPU")
    if not 0 <= device_index < torch.cuda.device_count():
        raise UserError(f"CUDA device {device_index} does not exist "
                        f"({torch.cuda.device_count()} visible); pick --device cuda:N")
    total_bytes = torch.cuda.get_device_properties(device_index).total_memory
    check_budget(budget_bytes, total_bytes, None)
    fraction = budget_bytes / total_bytes
    torch.cuda.set_per_process_memory_fraction(fraction, device_index)
    return fraction


def device_overrun(budget_bytes: int | None, device_used_bytes: int | None) -> str | None:
    """A reason string when device-level use (this process's share of cudaMemGetInfo's used
    memory) went over the budget, else None."""
    if budget_bytes is None or device_used_bytes is None or device_used_bytes <= budget_bytes:
        return None
    return (f"device-level use {format_bytes(device_used_bytes)} exceeded the memory budget "
            f"{format_bytes(budget_bytes)} (memory outside PyTorch's allocator: CUDA context, "
            "library workspaces)")
