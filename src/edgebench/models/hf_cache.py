"""How the installed transformers hands a model its decode cache: the one place that decides it.

transformers has renamed the cache keyword and output within edgebench's supported range: up to 5.23 a
pure SSM's forward (Mamba, Mamba-2, FalconMamba) takes `cache_params=` and returns `out.cache_params`,
every other model `past_key_values=` / `out.past_key_values`; from 5.24 every model takes `cache=` and
returns `out.cache` (the old keywords warn there and go in 5.40; a forward that swallows an unknown
keyword in `**kwargs` would silently decode from an empty state). So the keyword is read once per
loaded model from its `forward` signature, newest name first, and the output carries the cache under
that same name: capability, never the version or the model type.

Contract:
- `detect(model) -> CacheApi` (raises `UserError` for a forward that takes none of the known keywords).
- `CacheApi.kwargs(cache, positions=None)` -> the forward's keyword arguments for that cache;
  `cache_position` is passed only where the forward still takes it (remote-code models: transformers'
  own classes take none since 5.5). `CacheApi.positions(start, n, device)` builds it, or None.
- `CacheApi.of(out)` -> the cache the forward returned; a missing one raises instead of letting the
  next step start from nothing.
- `static_cache(model, max_len)` -> transformers' `StaticCache` for the model's config: attention KV in
  preallocated buffers, SSM / linear-attention states updated in place, the write position kept as a
  device tensor. Every tensor a decode step touches keeps its address, so the step can be captured in
  a CUDA graph and replayed (measure/graph.py) and run eagerly on the CPU with the same objects.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any

from edgebench.errors import UserError

# Newest name first: a forward that has `cache` (5.24+) may still accept the deprecated ones.
CACHE_KEYWORDS = ("cache", "cache_params", "past_key_values")


@dataclasses.dataclass(frozen=True)
class CacheApi:
    keyword: str  # the forward's cache keyword; its output carries the cache under the same name
    takes_cache_position: bool

    def kwargs(self, cache, positions=None) -> dict[str, Any]:
        kw: dict[str, Any] = {} if cache is None else {self.keyword: cache}
        if positions is not None:
            kw["cache_position"] = positions
        return kw

    def positions(self, start: int, n: int, device):
        if not self.takes_cache_position:
            return None
        import torch
        return torch.arange(start, start + n, device=device)

    def of(self, out):
        cache = getattr(out, self.keyword, None)
        if cache is None:
            raise RuntimeError(f"{type(out).__name__} carries no `{self.keyword}` although the forward takes "
                               f"`{self.keyword}=`: the next decode step would start from an empty state")
        return cache


def detect(model) -> CacheApi:
    params = inspect.signature(model.forward).parameters
    keyword = next((k for k in CACHE_KEYWORDS if k in params), None)
    if keyword is None:
        raise UserError(f"{type(model).__name__}.forward takes none of {', '.join(CACHE_KEYWORDS)}: edgebench "
                        f"cannot pass it a decode cache; upgrade transformers or use a model it ships")
    return CacheApi(keyword=keyword, takes_cache_position="cache_position" in params)


def static_cache(model, max_len: int):
    from transformers import StaticCache
    return StaticCache(config=model.config, max_cache_len=max_len)
