"""CUDA-graph decode: one decode step captured once, replayed per token.

Eager decode in PyTorch is launch-bound (hundreds of small kernels per token); replaying a captured
graph removes the per-kernel CPU launch cost, which is what a deployed engine does. Two routes:
- hf: transformers' `StaticCache` (`models.hf_cache`), which lays out attention KV and the conv /
  recurrent states of SSM and hybrid layers with in-place updates, passed under the keyword the loaded
  model's forward takes (`Loaded.cache_api`). `hf_step` builds the step without CUDA, so the CPU tests
  run the very step that is captured. It also does the greedy argmax and the position increment, so
  one replay is one complete decode step.
- mamba_ssm: its own graph decode (`mamba_ssm.utils.generation.update_graph_cache`).
Capture time is cold-start cost and is reported as such, never mixed into the per-token samples.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from edgebench.measure.phases import LAG_STEPS, PhaseResult, sync, gpu_lag_ms, timed_steps
from edgebench.models import hf_cache
from edgebench.probe import now_ns


def warm_on_side_stream(step, n: int):
    """Run `step` `n` times on a side stream, as capture needs (lazy allocations happen here)."""
    import torch
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(n):
            step()
    torch.cuda.current_stream().wait_stream(s)


def capture(step):
    """Capture one call of `step` in a CUDA graph. Returns (graph, what the step returned: tensors the
    graph rewrites on every replay, capture ms)."""
    import torch
    graph = torch.cuda.CUDAGraph()
    torch.cuda.synchronize()
    t0 = now_ns()
    with torch.cuda.graph(graph):
        out = step()
    torch.cuda.synchronize()
    return graph, out, (now_ns() - t0) / 1e6


@dataclass
class HfStep:
    """A prefilled static cache and the decode step over it. One `step()` feeds `tok` (batch, 1),
    writes the greedy next token back into `tok`, advances `pos` and returns the step's logits
    (batch, 1, vocab): one complete decode step, every tensor at a fixed address."""
    cache: Any
    tok: Any
    pos: Any
    step: Callable[[], Any]
    prefill_logits: Any
    kind: str = "StaticCache"


def hf_step(loaded, ids, *, max_len: int) -> HfStep:
    """Prefill `ids` into a static cache with room for `max_len` tokens and build the step that
    `decode_graph_hf` captures. Needs no CUDA: on the CPU it runs eagerly with the same cache objects
    (the decode-correctness tests). Call under `torch.inference_mode()`."""
    import torch
    model, api = loaded.model, loaded.cache_api
    ctx = ids.shape[1]
    cache = hf_cache.static_cache(model, max_len)
    out = model(input_ids=ids, use_cache=True, logits_to_keep=1,
                **api.kwargs(cache, api.positions(0, ctx, ids.device)))
    logits = out.logits
    tok = logits[:, -1:].argmax(-1)
    out = None
    pos = torch.full((1,), ctx, dtype=torch.long, device=ids.device)
    # cache_position only where the forward takes it; the static cache also keeps its own position.
    kw = {"use_cache": True, "logits_to_keep": 1,
          **api.kwargs(cache, pos if api.takes_cache_position else None)}

    def step():
        lg = model(input_ids=tok, **kw).logits
        tok.copy_(lg[:, -1:].argmax(-1))
        pos.add_(1)
        return lg
    return HfStep(cache, tok, pos, step, logits)


def decode_graph_hf(loaded, ids, *, gen: int, warmup: int, device: str, after=None,
                    after_steps: int = 0) -> PhaseResult:
    """`after(replay, step)` runs after the timed steps (the operator profile, which runs the eager
    `step` once as its reference); the static cache leaves room for its `after_steps` extra tokens
    and that one step."""
    import torch
    ctx = ids.shape[1]
    warm = max(warmup, 2)
    with torch.inference_mode():
        parts = hf_step(loaded, ids, max_len=ctx + gen + warm + 2 + LAG_STEPS + after_steps)
        step = parts.step
        t0 = now_ns()
        warm_on_side_stream(step, warm)
        sync(device)
        warm_ms = (now_ns() - t0) / 1e6
        graph, _, capture_ms = capture(step)
        samples, window = timed_steps(graph.replay, gen, device)
        extra = {"graph_cache": parts.kind, "window_ns": window,
                 "gpu_lag_ms": gpu_lag_ms(graph.replay, device)}
        if after is not None:  # the eager step lends the replay its module scopes (opsreplay)
            extra["after"] = after(graph.replay, step)
        del graph
    return PhaseResult(samples, {"graph_warmup_ms": warm_ms, "graph_capture_ms": capture_ms}, extra)


def decode_graph_mamba_ssm(loaded, ids, *, gen: int, warmup: int, device: str, after=None,
                           after_steps: int = 0) -> PhaseResult:
    import torch
    from mamba_ssm.utils.generation import update_graph_cache
    model = loaded.model
    batch, ctx = ids.shape
    warm = max(warmup, 2)
    max_len = ctx + gen + warm + 2 + LAG_STEPS + after_steps
    with torch.inference_mode():
        t0 = now_ns()
        cache = update_graph_cache(model, None, batch, ctx, max_len)
        sync(device)
        capture_ms = (now_ns() - t0) / 1e6
        ip = cache.inference_params
        ip.reset(max_len, batch)
        logits = model(ids, inference_params=ip, num_last_tokens=1).logits
        ip.seqlen_offset += ctx
        tok = logits[:, -1:].argmax(-1)
        run = cache.run
        # cache.run copies inputs into its static buffers and replays the captured step.
        pos = torch.full((batch, 1), ctx, dtype=torch.long, device=ids.device)
        for _ in range(warm):
            logits = run(tok, pos, ip.seqlen_offset)
            ip.seqlen_offset += 1
            pos.fill_(ip.seqlen_offset)
        state = {"tok": tok}

        def step():
            lg = run(state["tok"], pos, ip.seqlen_offset)
            state["tok"] = lg[:, -1:].argmax(-1)
            ip.seqlen_offset += 1
        sync(device)
        samples, window = timed_steps(step, gen, device)
        extra = {"graph_cache": "mamba_ssm graph cache", "window_ns": window,
                 "gpu_lag_ms": gpu_lag_ms(step, device)}
        if after is not None:
            extra["after"] = after(step)
    return PhaseResult(samples, {"graph_capture_ms": capture_ms}, extra)
