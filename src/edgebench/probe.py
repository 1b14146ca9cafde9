"""The Python face of the native probe `edgebench._probe`, with a pure-Python fallback.

`backend` names what is live, decided on first use (so importing this module never touches CUDA):
- "native-cuda": the compiled probe with its CUDA parts and a usable GPU;
- "native-host": the compiled probe without CUDA (built without a toolkit, or no GPU/driver here);
- "python": the compiled module is missing; clocks from `time`, device timing from torch.cuda.Event.
`why` says why the backend is not "native-cuda".

`Timer` is what the measurement loops use: `mark()` is bound straight to the native event record
(or a list append on the CPU), so the timed region holds nothing the probe does not need. After the
region, `intervals_ms()` / `pairs_ms()` synchronise once and resolve every mark in one batch.
"""
from __future__ import annotations

import functools
import os
import time
from typing import Any, Callable

try:
    from edgebench import _probe as _native
    _import_error = ""
except ImportError as exc:  # a source checkout that was never built, or a broken wheel
    _native = None
    _import_error = f"edgebench._probe not importable ({exc}); reinstall with: pip install --force-reinstall edgebench"

now_ns: Callable[[], int] = _native.now_ns if _native else time.monotonic_ns
process_cpu_ns: Callable[[], int] = _native.process_cpu_ns if _native else time.process_time_ns


@functools.lru_cache(maxsize=None)
def _select() -> tuple[str, str]:
    if _native is None:
        return "python", _import_error
    if not _native.has_cuda:
        return "native-host", "the probe was built without CUDA (no toolkit found, or EDGEBENCH_CUDA=OFF)"
    try:
        n = _native.cuda_device_count()
    except RuntimeError as exc:
        return "native-host", f"CUDA runtime error: {exc}"
    if n == 0:
        return "native-host", "no CUDA device or driver on this machine"
    return "native-cuda", ""


def __getattr__(name: str) -> Any:  # PEP 562: lazy `backend` / `why`
    if name == "backend":
        return _select()[0]
    if name == "why":
        return _select()[1]
    raise AttributeError(name)


def native_module():
    """The compiled module or None (for callers that use its NVML or sampler directly)."""
    return _native


def cuda_ready() -> bool:
    return _select()[0] == "native-cuda"


def device_info(index: int = 0) -> dict | None:
    """Device facts from cudaGetDeviceProperties via the native probe, else from torch, else None."""
    if cuda_ready():
        return dict(_native.device_info(index))
    torch = _torch_if_cuda()
    if torch is None:
        return None
    p = torch.cuda.get_device_properties(index)
    return {"index": index, "name": p.name, "compute_capability": f"{p.major}.{p.minor}",
            "sm_count": p.multi_processor_count, "total_bytes": p.total_memory,
            "integrated": bool(getattr(p, "is_integrated", False)), "theoretical_bw_bytes_per_s": None,
            "theoretical_bw_bytes_per_s_why": "needs the native probe (memory clock and bus width)",
            "pci_bus_id": None, "l2_bytes": getattr(p, "L2_cache_size", None)}


def mem_get_info(index: int = 0) -> tuple[int, int]:
    """(free, total) device bytes from cudaMemGetInfo."""
    if cuda_ready():
        return tuple(_native.mem_get_info(index))
    torch = _torch_if_cuda()
    if torch is None:
        raise RuntimeError("no CUDA device: cudaMemGetInfo is not available")
    return tuple(torch.cuda.mem_get_info(index))


# The micro-benchmarks' sizes: a copy well past any L2 (H200: 60 MiB) and at most an eighth of the
# free memory (a Jetson shares it with the host); a square bf16 matmul of MATMUL_N (3 x 128 MiB).
COPY_BYTES = 256 << 20
MATMUL_N = 8192
MICRO_BUDGET_S = 1.0


def microbench(index: int = 0, copy_bytes: int | None = None, budget_s: float = MICRO_BUDGET_S) -> dict:
    """The device's own roofline inputs, in about `budget_s`: launch latency, device-to-device copy
    bandwidth (bytes read + written per second, on whatever memory the device has: the same DRAM as
    the host on a Jetson), event resolution, and the dense bf16 matmul rate (`matrix_rate`)."""
    if not cuda_ready():
        raise RuntimeError(f"device micro-benchmarks need the native CUDA probe: {_select()[1]}")
    t0 = time.perf_counter()
    free, _ = mem_get_info(index)
    if copy_bytes is None:
        copy_bytes = max(1 << 20, min(COPY_BYTES, free // 8) >> 20 << 20)
    out = {"index": index, **_native.launch_latency(index, 2000)}
    out["copy_bytes"] = copy_bytes
    out["copy_bw_bytes_per_s"] = _native.copy_bandwidth_bytes_per_s(index, copy_bytes, 10)
    out["event_resolution_us"] = _native.event_resolution_us(index, 1000)
    spent = time.perf_counter() - t0
    out.update(matrix_rate(index, budget_s=max(0.1, budget_s - spent)))
    out["wall_ms"] = (time.perf_counter() - t0) * 1e3
    return out


def matrix_rate(index: int = 0, n: int = MATMUL_N, budget_s: float = 0.5) -> dict:
    """Dense bf16 matmul rate of the device: C = A @ B on n x n bf16 matrices through torch (the
    cuBLAS path the models' projections take), after warm-up, timed with device events; the best
    of the timed repetitions, 2 n^3 FLOPs each. n halves until the operands take at most a quarter
    of the free memory and one product fits a fifth of the budget. `matmul_bf16_flop_s` is None
    with `matmul_why` where it cannot run (no CUDA torch, a GPU or torch without bf16 matmul)."""
    torch = _torch_if_cuda()
    if torch is None:
        return {"matmul_bf16_flop_s": None, "matmul_why": "needs a torch that sees this GPU"}
    try:
        return _matrix_rate(torch, index, n, budget_s)
    except RuntimeError as exc:  # a GPU or a torch build without bf16 matmul, or no memory left
        torch.cuda.empty_cache()
        return {"matmul_bf16_flop_s": None, "matmul_why": f"bf16 matmul failed: {str(exc).splitlines()[0]}"}


def _matrix_rate(torch, index: int, n: int, budget_s: float) -> dict:
    free, _ = mem_get_info(index)
    while n > 512 and 3 * n * n * 2 > free // 4:
        n //= 2
    dev = torch.device("cuda", index)
    with torch.cuda.device(index):
        a, b = (torch.randn(n, n, device=dev, dtype=torch.bfloat16) for _ in range(2))
        c = torch.empty(n, n, device=dev, dtype=torch.bfloat16)
        timer = Timer(str(dev), capacity=64)
        while True:
            for _ in range(3):  # warm-up: cuBLAS handle and heuristics, clocks up
                torch.matmul(a, b, out=c)
            timer.reset()
            timer.mark()
            torch.matmul(a, b, out=c)
            timer.mark()
            one_s = timer.intervals_ms()[0] / 1e3
            if one_s <= budget_s / 5 or n <= 512:
                break
            n //= 2
            a, b, c = a[:n, :n].contiguous(), b[:n, :n].contiguous(), c[:n, :n].contiguous()
        reps = int(min(timer.capacity - 1, max(3, budget_s * 0.6 / max(one_s, 1e-6))))
        timer.reset()
        timer.mark()
        for _ in range(reps):
            torch.matmul(a, b, out=c)
            timer.mark()
        best_ms = min(timer.intervals_ms())
        del a, b, c
    torch.cuda.empty_cache()
    return {"matmul_bf16_flop_s": 2.0 * n ** 3 / (best_ms * 1e-3), "matmul_n": n, "matmul_reps": reps}


def _torch_if_cuda():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


class Timer:
    """Marks on a device's timeline. `mark()` records one point; after the timed region,
    `intervals_ms()` gives the times between consecutive marks and `pairs_ms()` the times of
    (start, stop) pairs, resolved after one synchronisation.

    device: "cpu" (host clock) or a CUDA device ("cuda", "cuda:1"; events on torch's current stream).
    """

    def __init__(self, device: str = "cpu", capacity: int = 4096):
        self.device = str(device)
        self.capacity = capacity
        if not self.device.startswith("cuda"):
            self.kind = "host-clock"
            self._marks: list[int] = []
            append, clock = self._marks.append, now_ns
            self.mark = lambda: append(clock())
            return
        import torch
        dev = torch.device(self.device)
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        stream = torch.cuda.current_stream(index)
        if cuda_ready():
            self.kind = "native-cuda-events"
            self._impl = _native.EventTimer(capacity, stream.cuda_stream, index, False)
            self.mark = self._impl.mark
        else:
            self.kind = "torch-cuda-events"
            self._events = [torch.cuda.Event(enable_timing=True) for _ in range(capacity)]
            self._used = 0
            self._stream = stream
            self.mark = self._torch_mark

    def _torch_mark(self) -> None:
        self._events[self._used].record(self._stream)
        self._used += 1

    @property
    def count(self) -> int:
        if self.kind == "host-clock":
            return len(self._marks)
        return self._impl.count if self.kind == "native-cuda-events" else self._used

    def reset(self) -> None:
        if self.kind == "host-clock":
            self._marks.clear()
        elif self.kind == "native-cuda-events":
            self._impl.reset()
        else:
            self._used = 0

    def intervals_ms(self) -> list[float]:
        if self.kind == "host-clock":
            m = self._marks
            return [(m[i] - m[i - 1]) / 1e6 for i in range(1, len(m))]
        if self.kind == "native-cuda-events":
            return list(self._impl.intervals_ms())
        ev = self._events[: self._used]
        if ev:
            ev[-1].synchronize()
        return [ev[i - 1].elapsed_time(ev[i]) for i in range(1, len(ev))]

    def pairs_ms(self) -> list[float]:
        if self.kind == "native-cuda-events":
            return list(self._impl.pairs_ms())
        iv = self.intervals_ms()
        return iv[0::2]

    def __repr__(self) -> str:
        return f"Timer(device={self.device!r}, kind={self.kind!r}, marks={self.count})"


def summary() -> dict:
    """What the probe can do here, for `edgebench env` and the run header."""
    b, why = _select()
    out: dict[str, Any] = {"backend": b, "why": why or None,
                           "module": getattr(_native, "__file__", None),
                           "built_with_cuda": bool(_native and _native.has_cuda)}
    if _native is not None:
        out["nvml"] = _native.nvml_init() or "ok"
    if b == "native-cuda":
        out["cuda_driver_version"] = _native.cuda_driver_version()
        out["cuda_runtime_version"] = _native.cuda_runtime_version()
    if os.environ.get("EDGEBENCH_CUDA"):
        out["EDGEBENCH_CUDA"] = os.environ["EDGEBENCH_CUDA"]
    return out
