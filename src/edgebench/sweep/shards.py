"""One plan split across job-array tasks: `--shard i/N` or `--shard auto`, balanced by expected work.

`--shard i/N` runs the i-th of N shards (1-based, like array indices); `--shard auto` reads i and N
from the batch scheduler's array environment (`array_task`), and refuses outside an array or on an
environment it cannot read, naming the variable and its value:

- Slurm: SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT, _MIN and _MAX (and _STEP when set). Ids
  need not start at 0 or 1 and may step (`--array=1-15:2` is 8 tasks); ids that are not evenly
  spaced (`--array=0,6,16-32`) are refused, as the environment cannot say where a task stands.
- Grid Engine (SGE, UGE, OGE): SGE_TASK_ID with SGE_TASK_FIRST, SGE_TASK_LAST, SGE_TASK_STEPSIZE
  (`qsub -t 1-8`); SGE_TASK_ID=undefined means a job outside an array.
- LSF: LSB_JOBINDEX with LSB_JOBINDEX_END (and LSB_JOBINDEX_STEP when set); LSB_JOBINDEX=0 means a job
  outside an array. LSF exports no first index, so the array must start at 1 (`bsub -J "eb[1-8]"`,
  LSF's default start); an index off that grid is refused.
- PBS Pro (PBS_ARRAY_INDEX) and Torque (PBS_ARRAYID) export the index only, no range: refused with
  the flag to write instead, `--shard "$PBS_ARRAY_INDEX/N"` for `qsub -J 1-N`.
Variables of two schedulers at once are refused too.

Balance (`select`): the plan's points are grouped into series (`series_key`: same model, backend,
dtype, decode mode, logits, attention, batch and gen; the points whose contexts run in ascending
order, so that an OOM skips the longer ones). A series costs the sum of its points'
`edgebench.sweep.estimate.case_s`; series go longest first to the shard with the least work so
far (ties: the lowest shard; equal costs: plan order), which bounds the largest shard by the mean plus
the costliest series. Whole series keep a sharded sweep's records what one run writes (the OOM skips
included). Every task computes the same split from the same plan and edgebench version, so `i/N`
typed by hand and `auto` in array task i pick the same points; each shard keeps plan order. More
shards than series is refused with the number that can be used.
"""
from __future__ import annotations

import heapq
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from edgebench.errors import UserError
from edgebench.sweep import estimate

_SHARD_RE = re.compile(r"(\d+)/(\d+)")
_NOT_IN_ARRAY = {"SGE_TASK_ID": "undefined", "LSB_JOBINDEX": "0"}  # what these say outside an array


@dataclass(frozen=True)
class Shard:
    """The i-th of N shards (1-based) and how it was chosen (the flag, or the array variables)."""
    index: int
    count: int
    how: str

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"


def parse(which: str, environ: Mapping[str, str] | None = None) -> Shard:
    """`i/N` (1 <= i <= N) or `auto` (the array task of `environ`, default `os.environ`)."""
    text = str(which).strip()
    if text.lower() == "auto":
        return array_task(os.environ if environ is None else environ)
    match = _SHARD_RE.fullmatch(text)
    if not match:
        raise UserError(f"bad shard {which!r}; write i/N with 1 <= i <= N, e.g. 1/4 (1-based, like "
                        "job array indices), or auto inside a job array")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise UserError(f"bad shard {which!r}: i must be between 1 and N (1-based), e.g. 1/{max(count, 1)}")
    return Shard(index, count, f"--shard {index}/{count}")


def array_task(environ: Mapping[str, str]) -> Shard:
    """This job-array task as a shard, from the scheduler's variables (see the module docstring)."""
    found = [(name, read) for name, var, read in _SCHEDULERS
             if environ.get(var, "").strip() not in ("", _NOT_IN_ARRAY.get(var))]
    if not found:
        raise UserError("--shard auto reads the job-array task from the scheduler, and this is not an "
                        "array task (none of SLURM_ARRAY_TASK_ID, SGE_TASK_ID, LSB_JOBINDEX, "
                        "PBS_ARRAY_INDEX, PBS_ARRAYID is set): submit it as an array, e.g. "
                        "sbatch --array=1-4 (examples/slurm-array.sbatch), or give --shard i/N")
    if len(found) > 1:
        raise UserError(f"--shard auto found the array variables of {found[0][0]} and {found[1][0]} "
                        "at once and cannot tell which scheduler runs this task; give --shard i/N")
    return found[0][1](environ)


def _int(environ: Mapping[str, str], var: str, scheduler: str, low: int = 0) -> int:
    value = environ.get(var)
    if value is None or not value.strip():
        raise UserError(f"--shard auto: this is a {scheduler} array task but {var} is not set; the "
                        "array environment is incomplete: give --shard i/N")
    if not value.strip().isdigit() or int(value) < low:
        raise UserError(f"--shard auto: {var}={value!r} is not a whole number >= {low}; the {scheduler} "
                        "array environment is malformed: give --shard i/N")
    return int(value)


def _on_grid(task: int, first: int, step: int, count: int, scheduler: str, shown: str) -> Shard:
    """Task id `task` of the ids first, first+step, ... (count of them) as shard i/N."""
    if step < 1 or count < 1 or not first <= task <= first + step * (count - 1) or (task - first) % step:
        raise UserError(f"--shard auto: {shown} do not describe an array holding this task (ids from "
                        f"{first} by {step}, {count} of them); give --shard i/N")
    return Shard((task - first) // step + 1, count, f"--shard auto: {scheduler} {shown}")


def _slurm(env: Mapping[str, str]) -> Shard:
    names = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX", "SLURM_ARRAY_TASK_COUNT")
    task, first, last = (_int(env, n, "Slurm") for n in names[:3])
    count = _int(env, names[3], "Slurm", low=1)
    stated = _int(env, "SLURM_ARRAY_TASK_STEP", "Slurm", low=1) \
        if env.get("SLURM_ARRAY_TASK_STEP", "").strip() else None
    shown = ", ".join(f"{n}={env[n].strip()}" for n in names)
    span, gaps = last - first, max(count - 1, 1)
    step = span // gaps
    if span < 0 or span % gaps or (count == 1 and span) or (count > 1 and stated not in (None, step)):
        raise UserError(f"--shard auto needs evenly spaced array task ids and this Slurm array's are not "
                        f"({shown}{'' if stated is None else f', SLURM_ARRAY_TASK_STEP={stated}'}; e.g. "
                        "--array=0,6,16-32): submit with --array=1-N, or give each task --shard i/N")
    return _on_grid(task, first, max(step, 1), count, "Slurm", shown)


def _sge(env: Mapping[str, str]) -> Shard:
    names = ("SGE_TASK_ID", "SGE_TASK_FIRST", "SGE_TASK_LAST")
    task, first, last = (_int(env, n, "Grid Engine") for n in names)
    step = _int(env, "SGE_TASK_STEPSIZE", "Grid Engine", low=1)
    shown = ", ".join(f"{n}={env[n].strip()}" for n in (*names, "SGE_TASK_STEPSIZE"))
    return _on_grid(task, first, step, (last - first) // step + 1 if last >= first else 0, "Grid Engine", shown)


def _lsf(env: Mapping[str, str]) -> Shard:
    task = _int(env, "LSB_JOBINDEX", "LSF", low=1)
    last = _int(env, "LSB_JOBINDEX_END", "LSF", low=1)
    step = _int(env, "LSB_JOBINDEX_STEP", "LSF", low=1) if env.get("LSB_JOBINDEX_STEP", "").strip() else 1
    shown = f"LSB_JOBINDEX={task}, LSB_JOBINDEX_END={last}, step {step}, first index 1 (LSF exports none)"
    return _on_grid(task, 1, step, (last - 1) // step + 1, "LSF", shown)


def _pbs(var: str, flag: str) -> Callable[[Mapping[str, str]], Shard]:
    def read(env: Mapping[str, str]) -> Shard:
        raise UserError(f"--shard auto: this is a PBS array task ({var}={env[var].strip()}) but PBS puts "
                        f"no array range in the environment; give it: --shard \"${var}/N\" with "
                        f"qsub {flag} 1-N (N tasks)")
    return read


_SCHEDULERS = (("Slurm", "SLURM_ARRAY_TASK_ID", _slurm), ("Grid Engine", "SGE_TASK_ID", _sge),
               ("LSF", "LSB_JOBINDEX", _lsf), ("PBS Pro", "PBS_ARRAY_INDEX", _pbs("PBS_ARRAY_INDEX", "-J")),
               ("Torque", "PBS_ARRAYID", _pbs("PBS_ARRAYID", "-t")))


def assign(costs: Sequence[float], count: int) -> list[list[int]]:
    """Longest-processing-time assignment of items (by cost) to `count` shards: item indices per
    shard, ascending. Deterministic: ties go to the lower shard, equal costs keep item order."""
    shards: list[list[int]] = [[] for _ in range(count)]
    loads = [(0.0, s) for s in range(count)]  # a heap of (work so far, shard)
    for item in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        load, s = heapq.heappop(loads)
        shards[s].append(item)
        heapq.heappush(loads, (load + costs[item], s))
    return [sorted(items) for items in shards]


def series_key(case: Any) -> tuple:
    """The series a point (or one of its lines) belongs to: everything but its context and decode
    mode, so a point's lines stay together (see the module docstring)."""
    return (case.model, case.backend, case.dtype, case.logits, case.attn, case.batch, case.gen)


def select_items(items: Sequence[Any], shard: Shard, costs: Sequence[float] | None = None,
                 what: str = "items") -> list[Any]:
    """The items of `shard` (plan order kept) when items cost `costs` (default: all equal)."""
    if shard.count > len(items):
        raise UserError(f"{shard.how} asks for {shard.count} shards but this plan has only {len(items)} "
                        f"{what} to share out; use at most {len(items)} shards (array tasks)")
    picked = assign(list(costs) if costs is not None else [1.0] * len(items), shard.count)[shard.index - 1]
    return [items[i] for i in picked]


def select(cases: Sequence[Any], which: str, *, reps: int, warmup: int,
           presets: Mapping[str, Any] | None = None,
           environ: Mapping[str, str] | None = None) -> tuple[list, Shard]:
    """(this shard's cases in plan order, the shard) for `--shard which`, series balanced by expected
    work (`presets`: model -> Preset, resolved from the catalog when not given)."""
    shard = parse(which, environ)
    if presets is None:
        from edgebench.models import catalog
        presets = {m: catalog.resolve(m) for m in dict.fromkeys(c.model for c in cases)}
    series: dict[tuple, float] = {}
    for c in cases:
        series[series_key(c)] = series.get(series_key(c), 0.0) + estimate.case_s(c, presets[c.model],
                                                                                  reps, warmup)
    keys = list(series)
    mine = set(select_items(keys, shard, [series[k] for k in keys], "series (points that differ only "
                                                                     "in context)"))
    return [c for c in cases if series_key(c) in mine], shard
