"""Operator profile of one phase: GPU time per kernel under torch.profiler, and the `ops` record.

`profile_phase(fn, steps=1, device="cuda", scopes=None, trace_path=None) -> Profiled` runs `fn`
`steps` times under `torch.profiler.profile` and returns `Profiled(kernels, wall_ms, steps)`:
`kernels` is a list of `(name, total_us, count)` summed over the steps, `wall_ms` the host-clock
time of the profiled loop between two synchronizes. Call it OUTSIDE any timed region, after the
warm-up: the profiler slows the host side, so its `wall_ms` overstates launch-bound phases; pass
the phase time measured by the timing loop to `ops_record` when there is one.

On CUDA the rows are device kernels (and Memcpy/Memset), the time is the device time field
(`device_time_total`, called `cuda_time_total` before torch 2.4). On `device="cpu"` the rows are
ATen ops with their SELF CPU time, so nested ops (linear -> addmm) are not counted twice.

`scopes` maps a category to modules (e.g. `{"embedding_logits": [model.lm_head]}`): each module's
forward runs inside `record_function("edgebench:<category>")`, and the kernels (or ops) launched
there come back named `edgebench:<category>/<name>`, which `ops_categories.classify` puts in that
category. This is how the lm-head GEMM is told apart from the other GEMMs.

`ops_record(key, phase, kernels, wall_ms, steps=1, top_n=10) -> dict` builds the `ops` log record
(see logs/schema.py): shares, top kernels, `kernel_ms` and `wall_ms` per step, and `gpu_idle_share` =
max(0, 1 - kernel_ms / wall_ms), the launch-bound fraction (kernels overlapping on several streams
can make kernel_ms exceed wall_ms). torch is imported only inside the functions.
"""
from __future__ import annotations

import gzip
import os
import shutil
import time
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path
from typing import Callable, Iterable, Mapping, NamedTuple, Sequence

from edgebench.analysis.ops_categories import SCOPE_PREFIX, categories, categorize
from edgebench.errors import UserError

_DEVICE_TIME_FIELDS = ("self_device_time_total", "device_time_total",
                       "self_cuda_time_total", "cuda_time_total")


class Profiled(NamedTuple):
    kernels: list[tuple[str, float, int]]
    wall_ms: float
    steps: int
    device_total_us: float | None = None  # from the raw Kineto events; None on the CPU
    replay_scopes: str | None = None  # with a reference: "mapped" or "unmatched" (see opsreplay)


def device_total_us(events) -> float:
    """Total GPU activity time summed straight from Kineto's raw events (not through key_averages,
    the scope moves or the categories): the total the categorised kernel time is checked against.
    User annotations on the GPU timeline (record_function ranges) are not activities and are skipped."""
    from torch.autograd import DeviceType
    return sum(e.duration_ns() for e in events
               if e.device_type() == DeviceType.CUDA and not e.is_user_annotation()) / 1e3


def _device_us(evt) -> float:
    for field in _DEVICE_TIME_FIELDS:
        value = getattr(evt, field, None)
        if value is not None:
            return float(value)
    raise RuntimeError("this torch's profiler events have no device time field "
                       f"(looked for {', '.join(_DEVICE_TIME_FIELDS)})")


def _scope_of(evt) -> str | None:
    """The innermost edgebench scope above a CPU event, or None."""
    node = evt
    while node is not None:
        if node.name.startswith(SCOPE_PREFIX):
            return node.name
        node = node.cpu_parent
    return None


def _scope_hooks(stack: ExitStack, scopes: Mapping[str, Iterable]) -> None:
    import torch

    for category, modules in scopes.items():
        if category not in categories():
            raise UserError(f"unknown ops category {category!r} in scopes; "
                            f"use one of: {', '.join(categories())}")
        for module in modules:
            open_ranges: list = []

            def pre(_mod, _args, name=SCOPE_PREFIX + category, ranges=open_ranges):
                ranges.append(torch.profiler.record_function(name).__enter__())

            def post(_mod, _args, _out, ranges=open_ranges):
                ranges.pop().__exit__(None, None, None)

            stack.callback(module.register_forward_pre_hook(pre).remove)
            stack.callback(module.register_forward_hook(post).remove)


def _rows(prof, on_cuda: bool) -> list[tuple[str, float, int]]:
    """(name, us, count) per kernel (CUDA) or per op with self CPU time (CPU), with time under an
    edgebench scope moved to `edgebench:<category>/<name>` rows."""
    from torch.autograd import DeviceType

    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for avg in prof.key_averages():
        if getattr(avg, "is_user_annotation", False) or avg.key.startswith(SCOPE_PREFIX):
            continue  # record_function ranges also appear as device rows: not kernels
        if on_cuda:
            if avg.device_type != DeviceType.CUDA:
                continue
            us = _device_us(avg)
        else:
            if avg.device_type != DeviceType.CPU:
                continue
            us = float(avg.self_cpu_time_total)
        if us > 0:
            totals[avg.key][0] += us
            totals[avg.key][1] += int(avg.count)
    for evt in prof.events():
        if evt.device_type != DeviceType.CPU:
            continue
        scope = _scope_of(evt.cpu_parent) if not on_cuda or evt.kernels else None
        if scope is None:
            continue
        if on_cuda:
            moved = [(k.name, float(k.duration)) for k in evt.kernels]
        elif evt.name.startswith(SCOPE_PREFIX):
            moved = []
        else:
            moved = [(evt.name, float(evt.self_cpu_time_total))]
        for name, us in moved:
            if name not in totals or us <= 0:
                continue
            us = min(us, totals[name][0])
            totals[name][0] -= us
            totals[name][1] = max(totals[name][1] - 1, 0)
            totals[f"{scope}/{name}"][0] += us
            totals[f"{scope}/{name}"][1] += 1
    return [(name, us, count) for name, (us, count) in totals.items() if us > 0]


def profile_phase(fn: Callable[[], None], *, steps: int = 1, device: str = "cuda",
                  scopes: Mapping[str, Iterable] | None = None,
                  trace_path: str | os.PathLike | None = None,
                  reference: Callable[[], None] | None = None) -> Profiled:
    """Run `fn` `steps` times under torch.profiler; see the module docstring. With `reference` (on
    CUDA: one eager call of the step that `fn` replays as a CUDA graph), the reference runs once first
    under the scopes, and the replay's kernels take their scopes by position (`opsreplay`)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    if steps < 1:
        raise UserError(f"steps must be at least 1, got {steps}")
    on_cuda = str(device).startswith("cuda")
    if not on_cuda and str(device) != "cpu":
        raise UserError(f"operator profiles run on 'cuda' or 'cpu', not {device!r}")
    if on_cuda and not torch.cuda.is_available():
        raise UserError("an operator profile on 'cuda' needs a visible CUDA device; "
                        "use device='cpu' for an ATen op profile")
    sync = torch.cuda.synchronize if on_cuda else (lambda: None)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_cuda else [])

    def profiled(call: Callable[[], None], n: int):
        """(profile, wall ms) of `n` calls under the scopes, between two synchronizes."""
        with ExitStack() as stack:
            _scope_hooks(stack, scopes or {})
            sync()
            with profile(activities=activities, acc_events=True) as prof:  # one cycle; avoids a warning
                sync()
                t0_ns = time.perf_counter_ns()
                for _ in range(n):
                    call()
                sync()
                return prof, (time.perf_counter_ns() - t0_ns) / 1e6

    ref = None
    if reference is not None and on_cuda:
        from edgebench.measure import ops_replay as opsreplay
        ref = opsreplay.ordered(profiled(reference, 1)[0].profiler.kineto_results.events())
    prof, wall_ms = profiled(fn, steps)
    if trace_path is not None:
        export_trace(prof, trace_path)
    total = device_total_us(prof.profiler.kineto_results.events()) if on_cuda else None
    rows, replay_scopes = _rows(prof, on_cuda), None
    if ref is not None:
        mapped = opsreplay.label(opsreplay.ordered(prof.profiler.kineto_results.events()), ref)
        rows, replay_scopes = (mapped, "mapped") if mapped is not None else (rows, "unmatched")
    return Profiled(rows, wall_ms, steps, total, replay_scopes)


def export_trace(prof, trace_path: str | os.PathLike) -> Path:
    """Write the profile as a gzip'd Chrome trace (`.json.gz` is appended when missing)."""
    path = Path(trace_path)
    if not path.name.endswith(".gz"):
        path = path.with_name(path.name + (".gz" if path.name.endswith(".json") else ".json.gz"))
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = path.with_name(path.name[:-3] + ".tmp")
    prof.export_chrome_trace(str(raw))
    with open(raw, "rb") as src, gzip.open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    raw.unlink()
    return path


def ops_record(key: str, phase: str, kernels: Sequence[Sequence], wall_ms: float, *,
               steps: int = 1, top_n: int = 10, device_total_us: float | None = None) -> dict:
    """The `ops` record of one phase; times are per step (kernels and wall_ms are over `steps`).
    With the profiler's own device total, `profiler_total_ms` and `categorised_vs_total_pct` (the
    categorised kernel time against it) show that no GPU time was lost or counted twice."""
    if phase not in ("prefill", "decode"):
        raise UserError(f"phase must be 'prefill' or 'decode', not {phase!r}")
    if steps < 1:
        raise UserError(f"steps must be at least 1, got {steps}")
    cat = categorize(kernels, top_n=top_n)
    kernel_ms = cat["kernel_ms"] / steps
    wall_ms = float(wall_ms) / steps
    idle = max(0.0, 1.0 - kernel_ms / wall_ms) if wall_ms > 0 else None
    return {
        "type": "ops",
        "key": key,
        "phase": phase,
        "shares": {c: round(s, 5) for c, s in cat["shares"].items()},
        "top": [{"kernel": t["kernel"], "category": t["category"], "ms": round(t["ms"] / steps, 4),
                 **({"fused_gemm": True} if t["fused_gemm"] else {})} for t in cat["top"]],
        "kernel_ms": round(kernel_ms, 4),
        "wall_ms": round(wall_ms, 4),
        "gpu_idle_share": None if idle is None else round(idle, 5),
        "fused_gemm_ms": round(cat["fused_gemm_ms"] / steps, 4),
        "steps": steps,
        **({"profiler_total_ms": round(device_total_us / 1e3 / steps, 4),
            "categorised_vs_total_pct": round(100.0 * (cat["kernel_ms"] * 1e3 / device_total_us - 1), 2)}
           if device_total_us else {}),
    }
