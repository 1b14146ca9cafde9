"""One measurement point, run inside an isolated worker (see execution/isolate.py): load the model,
prefill once, then decode in each mode asked for, and return what was measured.

`run_point(payload)` is the worker target. The payload is a `PointRequest` (`edgebench.logs.contracts`:
the point, its decode modes and the run options); the result a `PointResult`. The prefill is
reported as a partial record as soon as it exists, and each decode mode as it ends, so a decode that
runs out of memory or kills the worker still leaves everything measured before it in the log. A
decode mode that fails with an exception (out of memory, a graph that cannot be captured, a model
that cannot compile) is recorded with its status and reason, and the next mode still runs.

Set-up is paid once per point: model load, kernel detection, the idle power baseline and the power
sampler serve the prefill and every decode mode.
"""
from __future__ import annotations

import sys
from typing import Any, Callable

from edgebench.analysis.stats import host_bound, round_sig, summarize, unstable
from edgebench.logs.contracts import PROBE_TOKENS, PointRequest, PointResult
from edgebench.measure.phases import SetupClock
from edgebench.measure.point_telemetry import PointTelemetry
from edgebench.probe import now_ns


def _device_index(device: str) -> int:
    return int(device.split(":")[1]) if ":" in device else 0


def decoder(mode: str, backend: str, cuda: bool) -> Callable[..., Any]:
    """The timing loop of a decode mode (`edgebench.choices.DECODE_MODES`) for a backend."""
    from edgebench.measure import graph, phases
    if mode == "eager":
        return phases.measure_decode_eager
    if mode == "graph":
        if not cuda:
            raise ValueError("graph decode needs a CUDA device; use --decode-mode eager on the CPU")
        return graph.decode_graph_mamba_ssm if backend == "mamba_ssm" else graph.decode_graph_hf
    if mode == "compile":
        from edgebench.measure.compiled import decode_compile_hf
        return decode_compile_hf
    raise ValueError(f"no timing loop for decode mode {mode!r}")


def phase_flags(samples: list[float], median: float | None, lag_ms: float | None) -> dict[str, Any]:
    """A phase's host-bound and stability fields: `gpu_lag_ms` and `host_bound` (`stats.host_bound`;
    neither on the CPU, where there is no GPU to wait), and
    `unstable` (`stats.unstable` on the samples)."""
    out: dict[str, Any] = {"unstable": unstable(samples)}
    if lag_ms is not None:
        out["gpu_lag_ms"] = round_sig(lag_ms, 3)
        out["host_bound"] = host_bound(lag_ms, median)
    return out


def run_point(payload: dict[str, Any]) -> dict[str, Any]:
    setup = SetupClock()  # the worker's own untimed steps (schema: setup_ms), from its entry
    req = PointRequest.parse(payload)  # before torch loads: a malformed request fails at once
    import torch

    from edgebench.execution import isolate, worker
    from edgebench.measure import phases
    from edgebench.measure.memory import PhaseMemory
    from edgebench.analysis import floors
    from edgebench.models import catalog, loaders, memory_model
    from edgebench.models import kernel_detect as kernels

    c, device = req.point, req.device
    cuda = device.startswith("cuda")
    index = _device_index(device)
    setup.lap("imports")
    if cuda:
        torch.cuda.set_device(index)
        torch.cuda.synchronize(index)  # the CUDA context exists from here
        if req.budget_bytes:
            from edgebench.execution.budget import apply_budget
            apply_budget(req.budget_bytes, index)
    setup.lap("device_init")
    from edgebench.telemetry import device_state
    cpu_before = device_state.cpu_times()  # steal: host-bound phases slow down when it is high
    preset = catalog.resolve(c["model"])
    rec: dict[str, Any] = {}
    telemetry = PointTelemetry(req, index) if req.telemetry else None
    setup.lap("telemetry")

    t0 = now_ns()
    loaded = loaders.load(preset, backend=c["backend"], device=device, dtype=c["dtype"], attn=c["attn"])
    load_ms = round((now_ns() - t0) / 1e6)
    ids = phases.random_prompt(loaded.vocab_size, c["batch"], c["ctx"], device)

    # Which kernels run, found from a short profiled forward outside every timed region; skipped
    # when an earlier point of the run (same model, backend, dtype, attn, batch, device) found them.
    short = ids[:, : min(c["ctx"], PROBE_TOKENS)]

    def probe_once():
        logits, cache = loaded.prefill(short, logits="last")
        loaded.decode(logits[:, -1:].argmax(-1), cache)
    # The first call compiles and autotunes (Triton: minutes for a new Mamba-2 shape). Profiling it
    # would record every autotune launch (a trace parsed for minutes), so it runs unprofiled first and
    # its time is reported as cold-start cost. It stays when detection is skipped: it keeps the
    # autotune's benchmarking (Triton's timing runs and their scratch buffers) out of the prefill's
    # memory window and first call.
    t0 = now_ns()
    probe_once()
    if cuda:
        torch.cuda.synchronize(device)
    first_forward_ms = (now_ns() - t0) / 1e6
    detect_ms = None
    if req.known_kernels is not None:
        found = dict(req.known_kernels)
        rec["kernels_from"] = req.kernels_from
    else:
        t0 = now_ns()
        found = kernels.detect(probe_once)
        detect_ms = (now_ns() - t0) / 1e6
    rec["kernels"] = {k: v for k, v in found.items() if v is not None}
    warnings = kernels.fallback_warnings(rec["kernels"], preset.family)
    if warnings:  # printed by the parent; the line keeps only the flag (kernels says which)
        rec["fallback"] = True
        isolate.report_partial({"warnings": warnings})

    setup.skip()  # load, first forward and detection are cold costs (cold_ms)
    mem = PhaseMemory(device, index)
    predicted = memory_model.predict(preset, c["ctx"], batch=c["batch"], dtype=c["dtype"],
                                     logits=c["logits"], gen=c["gen"], backend=c["backend"])
    setup.lap("predict")
    if telemetry:
        telemetry.begin()  # the sampler's start and the idle baseline
    setup.lap("telemetry")
    with torch.inference_mode():
        mem.begin()
        pre = phases.measure_prefill(loaded, ids, reps=req.reps, warmup=req.warmup,
                                     logits=c["logits"], device=device)
        mem_prefill = mem.end()
    rec["prefill_ms"] = summarize(pre.samples_ms, rounded=True)
    rec.update(phase_flags(pre.samples_ms, (rec["prefill_ms"] or {}).get("median"),
                           pre.extra.get("gpu_lag_ms")))
    rec["cold_ms"] = {"load": load_ms, "first_forward": round(first_forward_ms, 1),
                      **({"detect_kernels": round(detect_ms, 1)} if detect_ms is not None else {}),
                      **{k.removesuffix("_ms"): round(v, 1) for k, v in pre.cold_ms.items()}}
    rec["mem"] = _mem_fields(mem_prefill, predicted)
    work = _work(floors, preset, c)
    if work:  # the floors' numerators, counted here where transformers is loaded (schema: work)
        rec["work"] = work
    if req.raw:
        rec["raw"] = {"prefill_ms": [round(x, 4) for x in pre.samples_ms]}
    ops: list[dict] = []
    if req.profile_ops:
        with torch.inference_mode():
            ops.append(_profile(loaded, lambda: loaded.prefill(ids, logits=c["logits"]), req.key,
                                "prefill", (rec["prefill_ms"] or {}).get("median"), 1, device,
                                req.trace_dir))
    tuned = kernels.autotuned("mamba_ssm")  # the prefill's choices (a worker killed in decode keeps them)
    if tuned:
        rec["autotune"] = tuned
    isolate.report_partial(dict(rec))

    decode: dict[str, dict[str, Any]] = {}
    windows: dict[str, tuple[int, int]] = {}
    for mode in req.decode_modes:
        isolate.report_partial({"decoding": mode})
        mem.begin()
        after, steps = None, 0
        if req.profile_ops:
            steps = min(c["gen"], 16)
            after = lambda step, reference=None, m=mode, n=steps: _profile(  # noqa: E731
                loaded, step, req.key, "decode", None, n, device, req.trace_dir, reference, m)
        try:
            fn = decoder(mode, c["backend"], cuda)
            dec = fn(loaded, ids, gen=c["gen"], warmup=req.warmup, device=device, after=after,
                     after_steps=steps)
        except Exception as exc:  # this mode failed; the point and the other modes stand
            oom = worker.is_oom(exc)
            decode[mode] = {"status": "oom" if oom else "error",
                            "reason": worker.describe(exc, where=not oom)}
            exc = None
            setup.skip()
            _release(torch, mode, cuda)  # what the failed mode left (a compile's graph pool too)
            setup.lap("release")
            isolate.report_partial({"decode": dict(decode), "decoding": None})
            continue
        entry: dict[str, Any] = {"status": "ok", "tpot_ms": summarize(dec.samples_ms, rounded=True)}
        entry.update(phase_flags(dec.samples_ms, entry["tpot_ms"]["median"],
                                 dec.extra.get("gpu_lag_ms")))
        entry["cold_ms"] = {k.removesuffix("_ms"): round(v, 1) for k, v in dec.cold_ms.items()}
        if "compile" in dec.extra:
            entry["compile"] = dec.extra["compile"]
        dpeak = mem.end().get("peak_allocated_bytes")
        if dpeak is not None:
            entry["mem"] = {"decode_peak_bytes": dpeak}
        if req.raw:
            entry["raw"] = {"tpot_ms": [round(x, 4) for x in dec.samples_ms]}
        if "after" in dec.extra:
            prof = dec.extra["after"]
            prof.update(_wall_from_timing(prof, entry["tpot_ms"]["median"]))
            ops.append(prof)
        windows[mode] = dec.extra["window_ns"]
        decode[mode] = entry
        dec = None
        setup.skip()
        _release(torch, mode, cuda)  # the next mode's peak is its own
        setup.lap("release")
        isolate.report_partial({"decode": dict(decode), "decoding": None})
    setup.skip()
    if telemetry:
        rec.update(telemetry.end(pre, windows, decode, c, req.reps))
        setup.lap("telemetry")
    tuned = kernels.autotuned("mamba_ssm")  # again after every phase: the decode modes' own tunes too
    if tuned:
        rec["autotune"] = tuned
    steal, _ = device_state.steal_share(cpu_before, device_state.cpu_times())
    if steal is not None:
        rec["steal_pct"] = round(100 * steal, 2)
    rec["decode"] = decode
    rec["decoding"] = None
    if ops:
        rec["ops"] = ops
    rec["setup_ms"] = setup.laps | {"worker": round((now_ns() - setup.start) / 1e6, 1)}
    return PointResult.from_dict(rec).to_dict()


def _release(torch, mode: str, cuda: bool) -> None:
    """Free what a decode mode left (its static cache, a compiled step's CUDA-graph pool) before the
    next mode, so that the next mode's allocator peak and its room are its own."""
    import gc
    if mode == "compile":
        torch.compiler.reset()
    gc.collect()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


def _profile(loaded, fn, key: str, phase: str, wall_ms, steps: int, device: str,
             trace_dir: str | None = None, reference=None, mode: str | None = None) -> dict:
    """One operator profile outside every timed region. The phase's wall time is the timed median
    where there is one (the profiler slows the host, which would overstate the idle share)."""
    from edgebench.measure import ops_profile as opsprofile
    lm_head = loaded.model.get_output_embeddings() if hasattr(loaded.model, "get_output_embeddings") \
        else getattr(loaded.model, "lm_head", None)
    scopes = {"embedding_logits": [lm_head]} if lm_head is not None else {}
    # transformers' RMSNorms run as generic reduce/elementwise kernels: a scope names them. Hooks do
    # not fire inside a replayed CUDA graph: there `reference` (the eager step) lends its scopes.
    norms = [m for m in loaded.model.modules() if type(m).__name__.endswith(_NORM_CLASS_SUFFIXES)]
    if norms:
        scopes["norm"] = norms
    name = f"{key}-{phase}" + (f"-{mode}" if mode else "")
    trace = f"{trace_dir}/{name}" if trace_dir else None
    prof = opsprofile.profile_phase(fn, steps=steps, device=device, scopes=scopes, trace_path=trace,
                                    reference=reference)
    rec = opsprofile.ops_record(key, phase, prof.kernels, (wall_ms or prof.wall_ms / steps) * steps,
                                steps=steps, device_total_us=prof.device_total_us)
    rec["profiled_wall_ms"] = round(prof.wall_ms / steps, 4)
    if prof.replay_scopes:
        rec["replay_scopes"] = prof.replay_scopes
    if trace:
        rec["trace"] = f"{name}.json.gz"  # in the log's .traces/ folder
    if mode:
        rec["decode_mode"] = mode
    return rec


_NORM_CLASS_SUFFIXES = ("RMSNorm", "LayerNorm", "RMSNormGated", "GroupNorm")


def _wall_from_timing(o: dict, tpot_ms: float) -> dict:
    """Re-base a decode profile's wall time (per step) on the timed TPOT median."""
    kernel_ms = o.get("kernel_ms")
    out = {"wall_ms": tpot_ms}
    if isinstance(kernel_ms, (int, float)) and tpot_ms:
        out["gpu_idle_share"] = round(max(0.0, 1 - kernel_ms / tpot_ms), 4)
    return out


def _work(floors, preset, c: dict) -> dict | None:
    """The point's `work` (analysis.floors.point_work); None, said on stderr, where counting it fails:
    an optional number never fails a measured point (the readers then count from the catalog)."""
    try:
        return floors.point_work(preset, c["ctx"], c["batch"], c["dtype"], c["backend"], c["logits"])
    except Exception as exc:  # noqa: BLE001 - e.g. a local model directory's config the formulas do not know
        print(f"edgebench: no work recorded for the floors ({type(exc).__name__}: {exc})", file=sys.stderr)
        return None


def _mem_fields(m: dict, predicted: dict) -> dict:
    """The compact `mem` object of a case line: measured peaks beside the analytic prediction."""
    out = {k: m.get(k) for k in ("peak_allocated_bytes", "peak_reserved_bytes", "device_used_bytes",
                                 "nvml_process_bytes", "rss_bytes", "mem_available_bytes",
                                 "nvmap_used_bytes")}
    if "nvml_process_bytes" in out:
        out["nvml_bytes"] = out.pop("nvml_process_bytes")
    whys = [f"{k}: {m[k + '_why']}" for k in out if m.get(k + "_why")]
    out = {k: v for k, v in out.items() if v is not None}
    if whys:
        out["why"] = "; ".join(whys)
    out["predicted_bytes"] = predicted.get("total_bytes")  # parts: analysis.memory_model.predict
    return out
