"""What one measurement point costs: its passes (prefills, decode steps) and its parameters.

`passes(case, reps, warmup)` counts the work of one log line in the measurement loop's own terms
(`edgebench.measure.point_run`): a point's prefill line, a cold prefill, `warmup` warm ones and `reps`
timed ones at full length; a decode line (gen > 0), that mode's own prefills (eager 2, graph 1), `gen`
timed steps and its warm-up steps (eager: the first step + max(warmup, 1); graph: max(warmup, 2) +
the captured one). The short
forwards that detect the kernels are not counted. `edgebench.sweep.plan.work` sums these for a dry run.

The expected seconds of a line are `edgebench.sweep.estimate.case_s`, built on these counts.
`params(preset)` is the preset's published count, else an estimate from its config
(12 * layers * hidden^2 + vocab * hidden). This module imports nothing from the rest of edgebench, so
the spec, the plan and the scheduler can all use it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Passes:
    """The work of one point: prefills at full length and decode steps, timed and untimed."""
    timed_prefills: int
    untimed_prefills: int
    decode_steps: int
    warmup_steps: int

    @property
    def prefills(self) -> int:
        return self.timed_prefills + self.untimed_prefills

    @property
    def steps(self) -> int:
        return self.decode_steps + self.warmup_steps


def passes(case: Any, reps: int, warmup: int) -> Passes:
    """The passes of one log line (`case`: anything with `decode_mode` and `gen`); see the module
    docstring. A prefill line (decode_mode None) carries its point's prefills; a decode line its own
    setup prefills and steps."""
    if case.decode_mode is None:
        return Passes(timed_prefills=reps, untimed_prefills=1 + warmup, decode_steps=0, warmup_steps=0)
    if not case.gen:
        return Passes(0, 0, 0, 0)
    eager = case.decode_mode == "eager"
    return Passes(timed_prefills=0, untimed_prefills=2 if eager else 1, decode_steps=case.gen,
                  warmup_steps=1 + (max(warmup, 1) if eager else max(warmup, 2)))


def params(preset: Any) -> int:
    """Parameters of a preset: the catalog's count (exact, else published), else 12 * layers * hidden^2 +
    vocab * hidden from its config (a local model directory), else 0 when the config names neither (the
    fixed cost remains)."""
    if preset.params or preset.published_params:
        return int(preset.params or preset.published_params)
    cfg = preset.config or {}
    hidden = cfg.get("hidden_size") or cfg.get("d_model") or 0
    layers = cfg.get("num_hidden_layers") or cfg.get("n_layer") or cfg.get("num_layers") or 0
    vocab = cfg.get("vocab_size") or 0
    return int(12 * layers * hidden * hidden + vocab * hidden)
