"""Module scopes for the kernels of a replayed CUDA graph.

A graph replays its kernels without a CPU op launching each one, so the module scopes that
`opsprofile` uses (e.g. `edgebench:norm` around transformers' RMSNorm, which runs as generic
reduce/elementwise kernels) cannot reach them: a graph decode's norms would count as elementwise.
But the captured step is ordinary Python, and a graph replays its kernels in capture order. So:

1. `ordered(events)`: profile one eager call of the step with the scopes, and list its GPU activities
   in start order, each with the innermost `edgebench:` scope open when its launch (the runtime call
   with the same correlation id) happened.
2. `label(replay, reference)`: list the replay's activities the same way. If their names repeat the
   reference's one for one (`steps` times), each replayed kernel takes the scope of its counterpart.
   Otherwise there is no labelling (None), and the caller keeps the unscoped rows and says so. A
   guess by name alone could put an MLP's multiply in the norm.

Rows come back as `opsprofile` makes them: `(name | "edgebench:<category>/<name>", total_us, count)`.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Sequence

from edgebench.analysis.ops_categories import SCOPE_PREFIX

Activity = tuple[str, float, "str | None"]  # (kernel name, duration in us, scope or None)


def ordered(events: Iterable) -> list[Activity]:
    """GPU activities of Kineto's raw events (`prof.profiler.kineto_results.events()`) in start
    order, each with the innermost edgebench scope its launch ran under (None outside any)."""
    from torch.autograd import DeviceType

    gpu, scopes, launches = [], [], {}
    for e in events:
        if e.device_type() == DeviceType.CUDA:
            if not e.is_user_annotation():
                gpu.append(e)
        elif e.name().startswith(SCOPE_PREFIX):
            scopes.append((e.start_ns(), e.end_ns(), e.name()))
        elif e.correlation_id():
            launches.setdefault(e.correlation_id(), e.start_ns())
    gpu.sort(key=lambda e: e.start_ns())
    out: list[Activity] = []
    for k in gpu:
        t = launches.get(k.correlation_id())
        inner = None
        if t is not None:
            open_ = [s for s in scopes if s[0] <= t <= s[1]]
            inner = max(open_, key=lambda s: s[0])[2] if open_ else None
        out.append((k.name(), k.duration_ns() / 1e3, inner))
    return out


def label(replay: Sequence[Activity], reference: Sequence[Activity]) -> list[tuple[str, float, int]] | None:
    """The replay's rows with the reference's scopes, or None unless the replay's kernel names are
    the reference's, in order, a whole number of times."""
    n = len(reference)
    if n == 0 or not replay or len(replay) % n:
        return None
    if any(name != reference[i % n][0] for i, (name, _, _) in enumerate(replay)):
        return None
    totals: dict[str, list] = defaultdict(lambda: [0.0, 0])
    for i, (name, us, _) in enumerate(replay):
        scope = reference[i % n][2]
        row = totals[f"{scope}/{name}" if scope else name]
        row[0] += us
        row[1] += 1
    return [(name, us, count) for name, (us, count) in totals.items()]
