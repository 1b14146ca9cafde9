"""torch.compile decode: the graph mode's decode step, compiled as a PyTorch deployment runs it.

The step is `graph.hf_step`'s (transformers' static cache or in-place SSM state, greedy argmax and
the position increment inside the step), compiled by `torch.compile`: on CUDA in the CUDA-graph-backed
mode (`CUDA_MODE`: Inductor's fused Triton kernels replayed through CUDA graph trees), on the CPU
plainly (Inductor's C++ kernels, no graphs). Contract, as `graph.decode_graph_hf`:
`decode_compile_hf(loaded, ids, *, gen, warmup, device, after=None, after_steps=0) -> PhaseResult`.

- Warm-up runs until recompilation stops: the first call compiles; later calls repeat until
  `max(warmup, 2)` calls in a row compiled nothing new (on CUDA the second call records the graph), at
  most `MAX_WARMUP_CALLS`. A step still recompiling by then raises, and so does a recompile during the
  timed steps (`error_on_recompile`): compilation is never mixed into the samples.
- Cold-start cost goes to `cold_ms` (`compile_ms`: the first call, compilation included;
  `compile_warmup_ms`: the other warm-up calls), the non-time facts to `extra["compile"]`: FX graphs
  compiled, recompiles, Inductor's on-disk cache hits and misses, and its directory. The FX graph and
  AOT autograd caches are switched on; a second run of the same point hits them and says so.
- Where torch would quietly run the step without CUDA graphs (an input mutation or a CPU tensor it
  cannot capture), it raises instead (`cudagraph_or_error`, and the skip counter as a backstop).

`compile_support(device) -> str | None` is the preflight the plan runs in the parent, without
importing torch: None where this machine can compile, else what is missing and the fix.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys
import sysconfig
import warnings
from pathlib import Path

from edgebench.measure import graph
from edgebench.measure.phases import LAG_STEPS, PhaseResult, gpu_lag_ms, timed_once_ms, timed_steps

CUDA_MODE = "reduce-overhead"  # torch.compile's CUDA-graph-backed mode
MAX_WARMUP_CALLS = 16  # compiled calls before a step that keeps recompiling is given up


def compile_support(device: str) -> str | None:
    """None where `torch.compile` can build the decode step for `device` ("cpu", "cuda[:N]") here,
    else the reason, naming what is missing and the fix. Reads the file system only."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return "torch is not installed"
    root = Path(next(iter(spec.submodule_search_locations)))
    for part in ("_dynamo", "_inductor"):
        if not (root / part / "__init__.py").is_file():
            return (f"this torch has no torch.{part} ({root}): torch.compile needs a torch build "
                    f"with TorchDynamo and Inductor; use --decode-mode graph or eager")
    header = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not header.is_file():
        return (f"Python's C headers are missing ({header} not found): Inductor compiles its kernels "
                f"against them; install them (e.g. apt install python{sys.version_info[0]}."
                f"{sys.version_info[1]}-dev) or use --decode-mode graph or eager")
    if device.startswith("cuda"):
        if importlib.util.find_spec("triton") is None:
            return ("Triton is not installed: Inductor writes its CUDA kernels in Triton (a Jetson or "
                    "source build of torch often ships without it); install the triton release your "
                    "torch was built with, or use --decode-mode graph")
        cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("clang")
        if not cc or not shutil.which(cc):
            return ("no C compiler for Triton's launchers (CC unset and neither gcc nor clang on PATH): "
                    "install gcc or set CC, or use --decode-mode graph")
        return None
    cxx = os.environ.get("CXX") or ("clang++" if sys.platform == "darwin" else "g++")
    if not shutil.which(cxx):
        return (f"no C++ compiler for Inductor's CPU backend ({cxx!r} not found; it takes $CXX, else "
                f"{'clang++' if sys.platform == 'darwin' else 'g++'}): install one or set CXX, or use "
                f"--decode-mode eager on the CPU")
    return None


def _counters():
    """torch's compile counters (a dict of Counters), which both torch 2.11 and 2.13 keep."""
    from torch._dynamo import utils
    counters = getattr(utils, "counters", None)
    if counters is None:
        raise RuntimeError("this torch has no torch._dynamo.utils.counters: compile decode cannot tell "
                           "when recompilation stops; use --decode-mode graph")
    return counters


def _snapshot(counters) -> dict[str, int]:
    """What has been compiled so far in this process: FX graphs, Inductor cache hits and misses,
    graphs run without CUDA graphs."""
    ind = counters["inductor"]
    return {"graphs": counters["stats"]["unique_graphs"], "cache_hits": ind["fxgraph_cache_hit"],
            "cache_misses": ind["fxgraph_cache_miss"], "cudagraph_skips": ind["cudagraph_skips"]}


def _warm_up(run, counters, device: str, quiet_needed: int) -> float:
    """Call `run` until `quiet_needed` calls in a row compiled nothing new; returns their ms."""
    calls, quiet, warm_ms = 1, 0, 0.0
    while quiet < quiet_needed:
        if calls >= MAX_WARMUP_CALLS:
            raise RuntimeError(f"the compiled decode step still recompiled after {calls} calls: its "
                               f"guards change from token to token, so it cannot be timed compiled; "
                               f"use --decode-mode graph")
        n = _snapshot(counters)["graphs"]
        _, ms = timed_once_ms(run, device)
        warm_ms += ms
        calls += 1
        quiet = quiet + 1 if _snapshot(counters)["graphs"] == n else 0
    return warm_ms


def _import_inductor() -> None:
    """Import Inductor's compiler ahead of the first compile. Its import pulls in torch.utils.mkldnn,
    whose classes use `torch.jit.script_method`, which torch 2.13 deprecates (a DeprecationWarning at
    import, from torch's own code, nothing edgebench calls): only that one warning is silenced, here."""
    import warnings
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.script_method` is ",
                                category=DeprecationWarning)
        import torch._inductor.compile_fx  # noqa: F401


_INDUCTOR_ADVICE = (r"TensorFloat32 tensor cores for float32 matrix multiplication available",
                   r"The CUDA Graph is empty", r"\s*Online softmax is disabled on the fly")


@contextlib.contextmanager
def compiled_step(parts: graph.HfStep, device: str, backend: str = "inductor"):
    """`parts.step` compiled for `device` (CUDA: `CUDA_MODE`; CPU: plain Inductor), inside the
    settings it is compiled and run under: Inductor's FX graph and AOT autograd caches on and, on CUDA,
    an error where torch would skip CUDA graphs (each setting only where this torch has it). Call
    under `torch.inference_mode()`; the compile happens at the first call. `backend` other than
    Inductor (the CPU tests' "aot_eager": Dynamo's capture and AOT autograd without code generation,
    seconds instead of a minute per model) compiles plainly."""
    import torch
    from torch._functorch import config as functorch_config
    from torch._inductor import config as inductor_config
    _import_inductor()
    cuda = device.startswith("cuda")
    for t in (parts.tok, parts.pos):  # fixed addresses: CUDA graphs mutate them in place
        torch._dynamo.mark_static_address(t)
    with contextlib.ExitStack() as stack:
        stack.enter_context(inductor_config.patch(fx_graph_cache=True))
        if hasattr(functorch_config, "enable_autograd_cache"):
            stack.enter_context(functorch_config.patch(enable_autograd_cache=True))
        if cuda and hasattr(inductor_config.triton, "cudagraph_or_error"):
            stack.enter_context(inductor_config.patch({"triton.cudagraph_or_error": True}))
        # Inductor's advice while it compiles, not faults of the step (seen on the H200 with
        # torch 2.11, raised as errors under the tests' warnings-as-errors): TF32 left off for a
        # float32 model (edgebench keeps the model's precision), a CUDA graph captured empty (a
        # partition without kernels), online softmax turned off for a long reduction.
        stack.enter_context(warnings.catch_warnings())
        for message in _INDUCTOR_ADVICE:
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        # A fresh compile in this process: a step closure from an earlier call (same code object)
        # would otherwise count as a recompile of it.
        torch.compiler.reset()
        yield torch.compile(parts.step, backend=backend,
                            mode=CUDA_MODE if cuda and backend == "inductor" else None)


def _cache_dir() -> str:
    """Inductor's cache directory ($TORCHINDUCTOR_CACHE_DIR, else torch's default)."""
    try:
        from torch._inductor.runtime.cache_dir_utils import cache_dir
    except ImportError:  # older layouts
        from torch._inductor.utils import cache_dir
    return cache_dir()


def decode_compile_hf(loaded, ids, *, gen: int, warmup: int, device: str, after=None,
                      after_steps: int = 0) -> PhaseResult:
    """`after(step)` runs after the timed steps with the compiled step (the operator profile); the
    static cache leaves room for its `after_steps` extra tokens."""
    if loaded.backend != "hf":
        raise ValueError(f"compile decode compiles the hf backend's step, not {loaded.backend}'s; "
                         f"mamba_ssm's own CUDA-graph decode is --decode-mode graph")
    import torch
    cuda = device.startswith("cuda")
    ctx = ids.shape[1]
    counters = _counters()
    with torch.inference_mode():
        parts = graph.hf_step(loaded, ids,
                              max_len=ctx + MAX_WARMUP_CALLS + gen + LAG_STEPS + after_steps + 1)
        with compiled_step(parts, device) as run:
            before = _snapshot(counters)
            _, compile_ms = timed_once_ms(run, device)
            first = _snapshot(counters)
            warm_ms = _warm_up(run, counters, device, max(warmup, 2))
            done = _snapshot(counters)
            if cuda and done["cudagraph_skips"] > before["cudagraph_skips"]:
                raise RuntimeError(f"torch.compile ran part of the decode step without CUDA graphs "
                                   f"(TORCH_LOGS=cudagraphs says why): not the {CUDA_MODE!r} mode")
            with torch._dynamo.config.patch(error_on_recompile=True):
                samples, window = timed_steps(run, gen, device)
            extra = {"window_ns": window, "gpu_lag_ms": gpu_lag_ms(run, device), "compile": {
                "graphs": first["graphs"] - before["graphs"], "recompiles": done["graphs"] - first["graphs"],
                "cache_hits": done["cache_hits"] - before["cache_hits"],
                "cache_misses": done["cache_misses"] - before["cache_misses"], "cache_dir": _cache_dir()}}
            if after is not None:  # e.g. the operator profile, after the timed steps
                extra["after"] = after(run)
    return PhaseResult(samples, {"compile_ms": compile_ms, "compile_warmup_ms": warm_ms}, extra)
