"""What one measurement point costs: its passes (prefills, decode steps) and its expected seconds.

`passes(case, reps, warmup)` counts the work of one log line in the measurement loop's own terms
(`edgebench.measure.point_run`): a point's prefill line, a cold prefill, `warmup` warm ones and `reps`
timed ones at full length; a decode line (gen > 0), that mode's own prefills (eager 2, graph 1), `gen`
timed steps and its warm-up steps (eager: the first step + max(warmup, 1); graph: max(warmup, 2) +
the captured one). The short
forwards that detect the kernels are not counted. `edgebench.sweep.plan.work` sums these for a dry run.

`point_seconds(case, params, reps, warmup)` is the expected wall time of one log line (the point's
fixed cost charged to its prefill line), used to balance
work (job-array shards in `edgebench.sweep.shards`, GPUs in `edgebench.execution.scheduler`), never
reported as a measurement:

    [POINT_S] + PARAM_TOKEN_S * params * ctx * batch * prefills + STEP_S[decode_mode] * decode_steps

- `POINT_S` (5 s): what every point pays whatever its size: worker start, CUDA context, model
  build, first forward, kernel detection. The H200 default-gpu run (bench/results/h200-2026-11-30,
  18 points, 174 s wall) spent 54 s in timed work and 32 s in one Triton autotune; the rest is
  ~5 s per point.
- `PARAM_TOKEN_S` (1.35e-14 s): prefill time per parameter per prompt token, the median over the
  H100 sweep's 30 points at 16k-64k tokens (bench/results/h100-2026-11-22b/logs/sweep_h100.jsonl:
  8.7e-15 .. 2.1e-14 across Qwen2.5, Mamba, Mamba-2, Zamba2, Falcon-H1). Linear in the context:
  attention's quadratic term is left out, so long Transformer contexts cost more than this says.
- `STEP_S` (eager 64 ms, graph 4.2 ms; compile taken as graph's, plus `COMPILE_S` to build the
  step, until logs record it): one decode step at batch 1, the medians of that sweep's
  TPOT. Small models decode at the speed of kernel launches, not of their size, so the step does not
  scale with parameters (nor with batch).
`bench/cost_constants.py LOG...` recomputes both from recorded logs.

Only the ranking and rough ratios matter for balancing; the constants are coarse on purpose.
`params(preset)` is the preset's published count, else an estimate from its config
(12 * layers * hidden^2 + vocab * hidden). This module imports nothing from the rest of edgebench, so
the spec, the plan and the scheduler can all use it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

POINT_S = 5.0
PARAM_TOKEN_S = 1.35e-14
# every decode mode of edgebench.choices.DECODE_MODES; compile: no recorded compile logs yet, so
# graph's step plus COMPILE_S per point for building the step (the compile helper's CPU runs: 20-60 s)
STEP_S = {"eager": 0.064, "graph": 0.0042, "compile": 0.0042}
COMPILE_S = 30.0


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
    """Parameters of a preset: the published count, else 12 * layers * hidden^2 + vocab * hidden from
    its config (a local model directory), else 0 when the config names neither (the fixed cost remains)."""
    if preset.published_params:
        return int(preset.published_params)
    cfg = preset.config or {}
    hidden = cfg.get("hidden_size") or cfg.get("d_model") or 0
    layers = cfg.get("num_hidden_layers") or cfg.get("n_layer") or cfg.get("num_layers") or 0
    vocab = cfg.get("vocab_size") or 0
    return int(12 * layers * hidden * hidden + vocab * hidden)


def point_seconds(case: Any, n_params: int, reps: int, warmup: int) -> float:
    """Expected wall seconds of one point (`case`: ctx, batch, gen, decode_mode) of a model with
    `n_params` parameters; see the module docstring for the formula and where its constants come from."""
    p = passes(case, reps, warmup)
    return ((POINT_S if case.decode_mode is None else 0.0)
            + PARAM_TOKEN_S * n_params * case.ctx * case.batch * p.prefills
            + (STEP_S[case.decode_mode] * p.steps if case.decode_mode else 0.0)
            + (COMPILE_S if case.decode_mode == "compile" and case.gen else 0.0))
