"""Planning a sweep before anything loads: what cannot run here, what runs past a model's trained
length, which device class a run would use, and the `--dry-run` listing with its estimated work.

Nothing here imports torch or starts a worker (the catalog and the spec use the standard library
only), so a dry run works anywhere and CI plans every shipped suite for both device classes.

- `check(spec, cases, device=None) -> {model: Preset}` resolves every model and raises one
  `UserError` listing what cannot plan, each problem naming its first case and the fix: a backend the
  model lacks, a remote-code preset given by name, under `strict_ctx` a context past the trained
  length, and when the device ("cpu", "cuda[:N]") is given, what runs on CUDA only and, for
  `--decode-mode compile`, whether torch.compile can build here (`measure.compiled.compile_support`:
  a C/C++ compiler, Triton on CUDA; read from the file system, torch not imported).
- `beyond_trained(ctx, gen, preset)`: ctx + gen passes `Preset.max_ctx`, the trained length (SSMs have
  one too). Such cases run by default, since the weights are random anyway (timing and memory stay
  meaningful, outputs do not); their records say `beyond_trained_ctx: true`.
- `warnings(cases, presets, device)`: the one-line warnings a run prints before it measures: once
  per model past its trained length, graph decode asked of the CPU, compile decode asked of the
  mamba_ssm backend.
- `device_class(requested)`: ("cuda" | "cpu", how it was decided) without initialising CUDA: the
  forced --device, else CUDA_VISIBLE_DEVICES, a CPU build of torch, a Jetson board, the NVIDIA
  driver's GPU list, the device nodes. A dry run plans with it; a real run asks a worker.
- `work(cases, reps, warmup)` estimates the work; `describe(...)` is the dry-run text.
"""
from __future__ import annotations

import importlib.metadata
import os
from dataclasses import replace
from typing import Any

from edgebench.errors import UserError
from edgebench.sweep import cost
from edgebench.sweep.spec import Case, Spec

DEFAULT_SUITES = {"cuda": "default-gpu", "cpu": "default-cpu"}  # `edgebench run` with no arguments
LIST_CASES_UP_TO = 24  # a larger plan is listed by model
_CUDA_ONLY = (("backend", "mamba_ssm", "the mamba_ssm backend runs on CUDA only; use --backend hf "
               "on the CPU, or --device cuda where a GPU is"),
              ("attn", "flash_attention_2", "flash_attention_2 runs on CUDA only; use --attn sdpa "
               "on the CPU"))
_MORE = 8  # problems listed in one error


def beyond_trained(ctx: int, gen: int, preset: Any) -> bool:
    """Whether a prompt of `ctx` tokens plus `gen` generated ones passes the trained length."""
    return ctx + gen > preset.max_ctx


def check(spec: Spec, cases: list[Case], device: str | None = None) -> dict[str, Any]:
    """Every model resolved and every case checked before anything loads; returns the presets."""
    from edgebench.models import catalog
    presets = {name: catalog.resolve(name) for name in spec.models}
    if spec.memory_budget_bytes and device is not None and not device.startswith("cuda"):
        raise UserError("--memory-budget caps a CUDA device's memory; this run is on the CPU (drop "
                        "--memory-budget, or run with --device cuda where a GPU is)")
    found: dict[tuple, list] = {}  # (model, kind) -> [first case, why, count]
    for case in _prefills(cases):  # what cannot plan is a property of the point
        for kind, why in _problems(case, presets[case.model], spec.strict_ctx, device):
            entry = found.setdefault((case.model, kind), [case, why, 0])
            entry[2] += 1
    compiled = [c for c in cases if c.decode_mode == "compile" and c.gen > 0]
    if compiled and device is not None:
        from edgebench.measure.compiled import compile_support  # no torch import
        why = compile_support(device)
        if why:
            found[(None, "compile")] = [compiled[0], f"--decode-mode compile cannot run on {device} here: "
                                        f"{why}", len(compiled)]
    if not found:
        return presets
    lines = [f"{case.label()}: {why}" + (f" ({n - 1} more points like it)" if n > 1 else "")
             for case, why, n in list(found.values())[:_MORE]]
    if len(found) > _MORE:
        lines.append(f"... and {len(found) - _MORE} more problems")
    if len(lines) == 1:
        raise UserError(lines[0])
    raise UserError("cannot plan these cases:\n  " + "\n  ".join(lines))


def _problems(case: Case, pre: Any, strict: bool, device: str | None) -> list[tuple[str, str]]:
    out = []
    if pre.remote_code and not pre.local_dir:
        repo = pre.source.get("hf") or pre.name
        out.append(("remote", f"{case.model} is remote code (transformers has no built-in "
                    f"'{pre.model_type}'): download {repo} on a machine with network, copy it here "
                    f"and pass its directory: -m /path/to/{repo.split('/')[-1]}"))
    if case.backend not in pre.backends:
        out.append(("backend", f"{case.model} has no {case.backend} backend (it has: "
                    f"{', '.join(pre.backends)}); sweep it with --backend {pre.backends[0]} separately"))
    if strict and beyond_trained(case.ctx, case.gen, pre):
        fit = pre.max_ctx - case.gen
        lower = f"lower -c to {fit} or less" if fit >= 1 else f"lower -n below {pre.max_ctx}"
        out.append(("ctx", f"context {case.ctx} + {case.gen} generated tokens exceeds its "
                    f"{pre.max_ctx}-token limit (its trained length; --strict-ctx refuses it): "
                    f"{lower}, or drop --strict-ctx to run it anyway (random weights: timing and "
                    f"memory stay meaningful, outputs do not)"))
    if device is not None and not device.startswith("cuda"):
        for name, value, why in _CUDA_ONLY:
            if getattr(case, name) == value:
                out.append((name, why))
    return out


def warnings(cases: list[Case], presets: dict[str, Any], device: str | None = None) -> list[str]:
    """One line per model with cases past its trained length, and one for graph decode on a CPU."""
    past: dict[str, list[Case]] = {}
    for case in _prefills(cases):
        if beyond_trained(case.ctx, case.gen, presets[case.model]):
            past.setdefault(case.model, []).append(case)
    out = []
    for model, over in past.items():
        first = min(over, key=lambda c: c.ctx + c.gen)
        out.append(f"{model}: {_n(len(over), 'point')} from context {first.ctx} + {first.gen} "
                   f"generated tokens run{'s' if len(over) == 1 else ''} past its trained length of "
                   f"{presets[model].max_ctx} tokens (random weights: timing and memory stay "
                   f"meaningful, outputs do not; --strict-ctx refuses them)")
    graph = sum(c.decode_mode == "graph" and c.gen > 0 for c in cases)
    if graph and device is not None and not device.startswith("cuda"):
        out.append(f"graph decode needs CUDA: on the CPU {_n(graph, 'graph case')} "
                   f"will measure prefill, then end in error (use --decode-mode eager on the CPU)")
    compiled = sum(c.decode_mode == "compile" and c.backend == "mamba_ssm" and c.gen > 0 for c in cases)
    if compiled:
        out.append(f"compile decode compiles the hf backend's step: {_n(compiled, 'mamba_ssm compile case')} "
                   f"will measure prefill, then end in error (mamba_ssm's own CUDA-graph decode is "
                   f"--decode-mode graph)")
    return out


def device_class(requested: str = "auto") -> tuple[str, str]:
    """("cuda" | "cpu", why) for a run asking for `requested`, read without initialising CUDA."""
    from edgebench.telemetry import jetson
    from edgebench.telemetry import sysroot
    if requested != "auto":
        return ("cpu" if requested == "cpu" else "cuda"), f"--device {requested}"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return "cpu", f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU"
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "cpu", "torch is not installed"
    if "+cpu" in torch_version:
        return "cpu", f"torch {torch_version} is a CPU build"
    if jetson.is_jetson():
        return "cuda", "a Jetson board"
    count = driver_gpu_count()
    if count:
        return "cuda", f"the NVIDIA driver lists {count} GPU{'s' if count > 1 else ''}"
    for node in ("/dev/nvidia0", "/dev/dxg"):  # dxg: the GPU of WSL2
        if sysroot.path(node).exists():
            return "cuda", f"{node} exists"
    return "cpu", "no NVIDIA driver or GPU device node found"


def driver_gpu_count() -> int:
    """GPUs the NVIDIA driver lists (/proc/driver/nvidia/gpus), without initialising CUDA; 0 if none."""
    from edgebench.telemetry import sysroot
    listed = sysroot.path("/proc/driver/nvidia/gpus")
    return len(list(listed.iterdir())) if listed.is_dir() else 0


def devices_count(devices: str | None) -> int:
    """How many GPUs `--devices` asks for, as a dry run can tell without CUDA: a list's length, or for
    `all` what CUDA_VISIBLE_DEVICES names, else what the driver lists (1 when unknown or not given);
    the real run checks the list against the GPUs a worker sees."""
    if not devices:
        return 1
    if str(devices).strip().lower() != "all":
        return len({d.strip().lower() for d in str(devices).split(",") if d.strip()}) or 1
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() not in ("", "-1"):
        return len([d for d in visible.split(",") if d.strip()])
    return driver_gpu_count() or 1


def _prefills(cases: list[Case]) -> list[Case]:
    """One case per point (its prefill line, or its first line where the prefill is not listed)."""
    return list({c.point_fields(): c for c in reversed(cases)}.values())[::-1]


def work(cases: list[Case], reps: int, warmup: int, runs: int = 1) -> dict[str, int]:
    """Estimated work of a plan, in the measurement loop's own terms, times `runs`: the sum of
    `edgebench.sweep.cost.passes` over each point's prefill and each decode line (the short forwards
    that detect the kernels are not counted)."""
    out = dict.fromkeys(("points", "cases", "timed_prefills", "untimed_prefills", "prompt_tokens",
                         "decode_steps", "warmup_steps", "compiles"), 0)
    out["points"], out["cases"] = len({c.point_fields() for c in cases}), len(cases)
    lines = [replace(c, decode_mode=None) for c in _prefills(cases)]
    lines += [c for c in cases if c.decode_mode is not None]
    for c in lines:
        p = cost.passes(c, reps, warmup)
        out["timed_prefills"] += p.timed_prefills * runs
        out["untimed_prefills"] += p.untimed_prefills * runs
        out["prompt_tokens"] += c.ctx * c.batch * p.prefills * runs
        out["decode_steps"] += p.decode_steps * runs
        out["warmup_steps"] += p.warmup_steps * runs
        out["compiles"] += (c.decode_mode == "compile" and c.gen > 0) * runs  # one build per compile line
    return out


def describe(spec: Spec, cases: list[Case], presets: dict[str, Any], device: str, how: str,
             suite: str | None, log: str) -> str:
    """The dry-run text: where it would run, the cases (by model when many), the work, the log.
    `cases` hold their dtypes as resolved for `device`."""
    w = work(cases, spec.reps, spec.warmup, spec.runs)
    lines = [f"dry run: {'suite ' + suite + ', ' if suite else ''}{_n(w['points'], 'point')} "
             f"({_n(len(cases), 'log line')}: a prefill per point, a decode per point and mode) on "
             f"{device} ({how}); nothing is loaded or measured"]
    if len(cases) <= LIST_CASES_UP_TO:
        for c in cases:
            pre = presets[c.model]
            past = beyond_trained(c.ctx, c.gen, pre)
            lines.append(f"  {c.label()}" + (f"  [beyond trained {pre.max_ctx}]" if past else ""))
    else:
        lines += [_by_model(model, [c for c in cases if c.model == model], presets[model])
                  for model in dict.fromkeys(c.model for c in cases)]
    runs = f", each in {spec.runs} worker processes" if spec.runs > 1 else ""
    lines.append(f"work: {_n(w['points'], 'point')}{runs}, {spec.reps} timed repetitions and "
                 f"{spec.warmup} warm-up each; prefills: {w['timed_prefills']:,} timed + {w['untimed_prefills']:,} untimed "
                 f"(cold, warm-up, decode setup), {w['prompt_tokens']:,} prompt tokens in all; "
                 f"decode steps: {w['decode_steps']:,} timed + {w['warmup_steps']:,} warm-up"
                 + (f"; {_n(w['compiles'], 'torch.compile build')} of the decode step (cold start, "
                    f"recorded in cold_ms)" if w["compiles"] else ""))
    lines += [f"warning: {x}" for x in warnings(cases, presets, device)]
    exists = " (exists: a real run resumes it)" if os.path.exists(log) else ""
    lines.append(f"log: {log}{exists}")
    return "\n".join(lines)


def _by_model(model: str, cases: list[Case], pre: Any) -> str:
    def values(name: str) -> str:
        return ",".join(str(v) for v in dict.fromkeys(getattr(c, name) for c in cases) if v is not None)
    past = sum(beyond_trained(c.ctx, c.gen, pre) for c in _prefills(cases))
    return (f"  {model}: {_n(len(_prefills(cases)), 'point')}; {values('backend')} {values('dtype')} ctx {values('ctx')} "
            f"gen {values('gen')} batch {values('batch')} {values('decode_mode')} logits "
            f"{values('logits')} {values('attn')}"
            + (f"; {past} beyond its trained {pre.max_ctx}" if past else ""))


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
