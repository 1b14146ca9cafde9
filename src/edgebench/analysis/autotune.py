"""Where merged logs ran different Triton autotune choices for one model on one GPU model.

mamba_ssm's Mamba-2 kernels are autotuned: the first call benchmarks the configs at its shapes and
the winner is cached on disk, keyed by head, state and chunk sizes and dtypes (not by the sequence
length). Two machines of the same GPU model, or two runs with their own caches, can so run different
configs, and the prefill moves with the choice (an H200's mamba2-780m 16K prefill: 129 ms in one
run, 152 ms in another with its own cache, each steady over its runs, the Transformer's the same in
both). Prefill lines name the choice (`autotune`:
{kernel: config}); `differing(cases)` turns disagreement into notes for `edgebench compare`, so that
such a gap is not read as the device's or as run-to-run noise.
"""
from __future__ import annotations

import json
from typing import Any, Iterable

MAX_SHOWN = 4  # kernel names per note


def differing(cases: Iterable[dict[str, Any]]) -> list[str]:
    """One note per (model, backend, dtype, GPU model) whose prefill lines name more than one autotune
    choice: which kernels differ and on which devices each choice ran."""
    seen: dict[tuple, dict[str, tuple[dict, set[str]]]] = {}  # choice's JSON: (the choice, where it ran)
    for row in cases:
        tuned = row.get("autotune")
        if not isinstance(tuned, dict) or not tuned or row.get("status") != "ok":
            continue
        key = (row.get("model"), row.get("backend"), row.get("dtype"),
               row.get("device_name") or row.get("device"))
        entry = seen.setdefault(key, {}).setdefault(json.dumps(tuned, sort_keys=True), (tuned, set()))
        entry[1].add(f"{row.get('device')} run {row.get('run')}")
    notes = []
    for (model, backend, dtype, gpu), choices in seen.items():
        if len(choices) < 2:
            continue
        picked = [tuned for tuned, _ in choices.values()]
        kernels = sorted({k for p in picked for k in p if len({str(q.get(k)) for q in picked}) > 1})
        shown = ", ".join(kernels[:MAX_SHOWN]) + (f" and {len(kernels) - MAX_SHOWN} more" if len(kernels) > MAX_SHOWN else "")
        where = "; ".join(f"choice {i}: {', '.join(sorted(runs))}" for i, runs in
                          enumerate(sorted((runs for _, runs in choices.values()), key=sorted), 1))
        notes.append(f"{model} ({backend}, {dtype}) on {gpu}: the logs ran {len(choices)} different Triton "
                     f"autotune choices ({shown}); its prefill and decode differences between them include "
                     f"the choice, not only the device or noise (each prefill line's `autotune`) [{where}]")
    return notes
