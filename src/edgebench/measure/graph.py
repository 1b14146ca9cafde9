"""CUDA-graph decode: one decode step captured once, replayed per token.

Eager decode in PyTorch is launch-bound (hundreds of small kernels per token); replaying a captured
graph removes the per-kernel CPU launch cost, which is what a deployed engine does. Two routes:
- hf: a static cache (transformers' `StaticCache`, which lays out attention KV *and* linear-attention
  / SSM states for hybrids with in-place updates) or, for pure SSMs, the model's own cache object whose
  conv/recurrent states are updated in place. The captured step also does the greedy argmax and the
  position increment, so one replay is one complete decode step.
- mamba_ssm: its own graph decode (`mamba_ssm.utils.generation.update_graph_cache`).
Capture time is cold-start cost and is reported as such, never mixed into the per-token samples.
"""
from __future__ import annotations

import inspect

from edgebench.measure.phases import PhaseResult, _sync, timed_steps
from edgebench.probe import now_ns


def _graph_warm(step, n: int):
    import torch
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(n):
            step()
    torch.cuda.current_stream().wait_stream(s)


def _capture(step):
    import torch
    graph = torch.cuda.CUDAGraph()
    torch.cuda.synchronize()
    t0 = now_ns()
    with torch.cuda.graph(graph):
        step()
    torch.cuda.synchronize()
    return graph, (now_ns() - t0) / 1e6


def decode_graph_hf(loaded, ids, *, gen: int, warmup: int, device: str, after=None,
                    after_steps: int = 0) -> PhaseResult:
    """`after(replay, step)` runs after the timed steps (the operator profile, which runs the eager
    `step` once as its reference); the static cache leaves room for its `after_steps` extra tokens
    and that one step."""
    import torch
    model = loaded.model
    params = inspect.signature(model.forward).parameters
    batch, ctx = ids.shape
    warm = max(warmup, 2)
    kw: dict = {"use_cache": True, "logits_to_keep": 1}
    with torch.inference_mode():
        if "cache_params" in params:  # Mamba, Mamba2, FalconMamba: states updated in place
            out = model(input_ids=ids, **kw)
            cache_kw = {"cache_params": out.cache_params}
            kind = "model cache (in-place SSM states)"
        else:
            from transformers import StaticCache
            cache = StaticCache(config=model.config, max_cache_len=ctx + gen + warm + 2 + after_steps)
            out = model(input_ids=ids, past_key_values=cache,
                        cache_position=torch.arange(ctx, device=ids.device), **kw)
            cache_kw = {"past_key_values": cache}
            kind = "StaticCache"
        tok = out.logits[:, -1:].argmax(-1)
        out = None
        pos = torch.full((1,), ctx, dtype=torch.long, device=ids.device)
        pos_kw = {"cache_position": pos} if "cache_position" in params else {}

        def step():
            o = model(input_ids=tok, **cache_kw, **pos_kw, **kw)
            tok.copy_(o.logits[:, -1:].argmax(-1))
            pos.add_(1)

        t0 = now_ns()
        _graph_warm(step, warm)
        _sync(device)
        warm_ms = (now_ns() - t0) / 1e6
        graph, capture_ms = _capture(step)
        samples, window = timed_steps(graph.replay, gen, device)
        extra = {"graph_cache": kind, "window_ns": window}
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
    max_len = ctx + gen + warm + 2 + after_steps
    with torch.inference_mode():
        t0 = now_ns()
        cache = update_graph_cache(model, None, batch, ctx, max_len)
        _sync(device)
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
        _sync(device)
        samples, window = timed_steps(step, gen, device)
        extra = {"graph_cache": "mamba_ssm graph cache", "window_ns": window}
        if after is not None:
            extra["after"] = after(step)
    return PhaseResult(samples, {"graph_capture_ms": capture_ms}, extra)
