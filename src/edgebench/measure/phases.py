"""Prefill and decode timing loops.

Contract: each function warms up at the exact shapes it then times, reports cold-start cost (the
first call: lazy init, Triton autotune/compile, graph capture) separately, and times only device
work between two `Timer.mark()`s. Nothing else runs inside the marks: inputs are made, caches freed
and results read outside them. Samples come back raw (ms); `edgebench.analysis.stats.summarize` reduces them.
`SetupClock` times the untimed steps around them (a point's `setup_ms`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from edgebench.probe import Timer, now_ns


@dataclass
class PhaseResult:
    samples_ms: list[float]
    cold_ms: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch
        torch.cuda.synchronize(device)


def timed_once_ms(fn: Callable[[], Any], device: str) -> tuple[Any, float]:
    """Host-clock time of one call including its device work (for cold-start numbers)."""
    sync(device)
    t0 = now_ns()
    out = fn()
    sync(device)
    return out, (now_ns() - t0) / 1e6


LAG_STEPS = 3  # synchronised calls that measure the GPU lag at return (decode: steps of room to leave)


def gpu_lag_ms(fn: Callable[[], Any], device: str, n: int = LAG_STEPS) -> float | None:
    """The median, over `n` synchronised calls of `fn`, of the time from the call's return on the
    host to the GPU finishing its work (ms): near 0 when the GPU waited on the host's launches
    (host-bound), near the call's time when the host ran ahead (GPU-bound). One host clock read
    per call beside the synchronisation; never inside a timed region. None on the CPU."""
    if not device.startswith("cuda") or n < 1:
        return None
    lags = []
    for _ in range(n):
        sync(device)
        fn()
        t = now_ns()
        sync(device)
        lags.append((now_ns() - t) / 1e6)
    lags.sort()
    return lags[len(lags) // 2]


def random_prompt(vocab_size: int, batch: int, ctx: int, device: str, seed: int = 0):
    import torch
    g = torch.Generator(device="cpu").manual_seed(seed)
    # Token ids never matter for timing, but a constant prompt could hit special cases (e.g. all pads).
    return torch.randint(0, vocab_size, (batch, ctx), generator=g).to(device)


def timed_steps(step: Callable[[], Any], n: int, device: str) -> tuple[list[float], tuple[int, int]]:
    """Time `n` calls of `step` one by one: a mark before the first call and after each, so the
    intervals are per-step times. Returns (samples in ms, the host-clock window of the loop)."""
    timer = Timer(device, capacity=n + 2)
    mark = timer.mark
    t0 = now_ns()
    mark()
    for _ in range(n):
        step()
        mark()
    return timer.intervals_ms(), (t0, now_ns())


def measure_prefill(loaded, ids, *, reps: int, warmup: int, logits: str, device: str) -> PhaseResult:
    """Time `reps` prefills of `ids` (after a cold first call and `warmup` warm ones)."""
    prefill = loaded.prefill
    out, first_ms = timed_once_ms(lambda: prefill(ids, logits=logits), device)
    out = None
    # The warm-ups run synchronised, each measuring the GPU lag at return (at least one). A fit probe
    # (reps 0, maxctx) is the cold prefill alone: a second call can fail where the first ran, as its
    # intermediates split the first call's freed logits block and the caching allocator cannot hand
    # that block back (on the H200, mamba-790m with full logits under 24 GiB: 147,456 tokens with the
    # extra call, failing with 14.3 GiB cached but unallocated; 229,376 in an earlier single-call
    # search). That measures fragmentation, not whether the context fits.
    lag = gpu_lag_ms(lambda: prefill(ids, logits=logits), device, max(warmup, 1)) if reps else None
    if not device.startswith("cuda"):
        for _ in range(warmup):
            out = prefill(ids, logits=logits)
            out = None
    sync(device)
    timer = Timer(device, capacity=2 * reps + 2)
    mark = timer.mark
    t0 = now_ns()
    for _ in range(reps):
        mark()
        out = prefill(ids, logits=logits)
        mark()
        del out  # free logits and cache outside the timed region, before the next repetition
    samples = timer.pairs_ms()
    return PhaseResult(samples, {"first_prefill_ms": first_ms},
                       {"window_ns": (t0, now_ns()), "gpu_lag_ms": lag})


def eager_step(loaded, ids):
    """Prefill `ids` and build the eager decode step: each call feeds the current token through
    `loaded.decode`, keeps the greedy next token for the following call (as generation does) and
    returns the step's logits (batch, 1, vocab). Returns (step, the prefill's last logits)."""
    logits, cache = loaded.prefill(ids, logits="last")
    state = {"tok": logits[:, -1:].argmax(-1), "cache": cache}
    cache = None
    decode = loaded.decode

    def step():
        lg, state["cache"] = decode(state["tok"], state["cache"])
        state["tok"] = lg[:, -1:].argmax(-1)
        return lg
    return step, logits


def measure_decode_eager(loaded, ids, *, gen: int, warmup: int, device: str,
                         after: Callable[[Callable[[], Any]], Any] | None = None,
                         after_steps: int = 0) -> PhaseResult:
    """Prefill `ids`, then time `gen` single-token decode steps one by one (`eager_step`).
    Warm-up steps run at the same depth on a separate prefill.
    `after(step)` runs after the timed steps (the operator profile); the dynamic cache grows, so
    `after_steps` needs no room reserved here."""
    import torch
    with torch.inference_mode():
        step, _ = eager_step(loaded, ids)
        _, first_ms = timed_once_ms(step, device)
        lag = gpu_lag_ms(step, device, max(warmup, 1))
        if not device.startswith("cuda"):
            for _ in range(max(warmup, 1)):
                step()
        step = None
        step, _ = eager_step(loaded, ids)
        sync(device)
        samples, window = timed_steps(step, gen, device)
        extra = {"window_ns": window, "gpu_lag_ms": lag}
        if after is not None:  # e.g. the operator profile: more steps, after the timed ones
            extra["after"] = after(step)
    return PhaseResult(samples, {"first_decode_ms": first_ms}, extra)


class SetupClock:
    """Milliseconds of a worker's named untimed steps: `lap(name)` adds the time since the last mark
    to `laps[name]` (summed over repeats), `skip()` moves the mark without counting (the measured
    phases between)."""

    def __init__(self):
        self.laps: dict[str, float] = {}
        self.start = self._t = now_ns()

    def lap(self, name: str) -> None:
        t = now_ns()
        self.laps[name] = round(self.laps.get(name, 0.0) + (t - self._t) / 1e6, 1)
        self._t = t

    def skip(self) -> None:
        self._t = now_ns()
