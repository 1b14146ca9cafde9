"""One case, run inside an isolated worker (see execution/isolate.py): load, warm up, measure, return a record.

`run_case(payload)` is the worker target. The payload is a `CaseRequest` (`edgebench.logs.contracts`:
the case and the run options); the result a `CaseResult`. Prefill results are reported as a partial record as soon as they exist, so a decode that
runs out of memory still leaves its prefill numbers in the log.
"""
from __future__ import annotations

import time
from typing import Any

from edgebench.analysis.stats import round_sig, summarize
from edgebench.logs.contracts import CaseRequest, CaseResult
from edgebench.probe import now_ns


def _device_index(device: str) -> int:
    return int(device.split(":")[1]) if ":" in device else 0


def run_case(payload: dict[str, Any]) -> dict[str, Any]:
    req = CaseRequest.parse(payload)  # before torch loads: a malformed request fails at once
    import torch

    from edgebench.execution import isolate
    from edgebench.models import memory_model
    from edgebench.measure import graph, phases
    from edgebench.measure.memory import PhaseMemory
    from edgebench.models import catalog, loaders
    from edgebench.models import kernel_detect as kernels

    c, device = req.case, req.device
    cuda = device.startswith("cuda")
    index = _device_index(device)
    if cuda:
        torch.cuda.set_device(index)
        if req.budget_bytes:
            from edgebench.execution.budget import apply_budget
            apply_budget(req.budget_bytes, index)
    preset = catalog.resolve(c["model"])
    rec: dict[str, Any] = {}
    telemetry = _Telemetry(req) if req.telemetry else None

    t0 = now_ns()
    loaded = loaders.load(preset, backend=c["backend"], device=device, dtype=c["dtype"], attn=c["attn"])
    load_ms = round((now_ns() - t0) / 1e6)
    ids = phases.random_prompt(loaded.vocab_size, c["batch"], c["ctx"], device)

    # Which kernels run, found from a short profiled forward outside every timed region.
    short = ids[:, : min(c["ctx"], 64)]

    def probe_once():
        logits, cache = loaded.prefill(short, logits="last")
        loaded.decode(logits[:, -1:].argmax(-1), cache)
    # The first call compiles and autotunes (Triton: minutes for a new Mamba-2 shape). Profiling it
    # would record every autotune launch (a trace parsed for minutes), so it runs unprofiled first and
    # its time is reported as cold-start cost.
    t0 = now_ns()
    probe_once()
    if cuda:
        torch.cuda.synchronize(device)
    first_forward_ms = (now_ns() - t0) / 1e6
    found = kernels.detect(probe_once)
    rec["kernels"] = {k: v for k, v in found.items() if v is not None}
    warnings = kernels.fallback_warnings(rec["kernels"], preset.family)
    if warnings:  # printed by the parent; the line keeps only the flag (kernels says which)
        rec["fallback"] = True
        isolate.report_partial({"warnings": warnings})

    mem = PhaseMemory(device, index)
    predicted = memory_model.predict(preset, c["ctx"], batch=c["batch"], dtype=c["dtype"],
                                     logits=c["logits"], gen=c["gen"], backend=c["backend"])
    if telemetry:
        telemetry.begin()
    with torch.inference_mode():
        mem.begin()
        pre = phases.measure_prefill(loaded, ids, reps=req.reps, warmup=req.warmup,
                                     logits=c["logits"], device=device)
        mem_prefill = mem.end()
    rec["prefill_ms"] = summarize(pre.samples_ms, rounded=True)
    rec["cold_ms"] = {"load": load_ms, "first_forward": round(first_forward_ms, 1),
                      **{k.removesuffix("_ms"): round(v, 1) for k, v in pre.cold_ms.items()}}
    rec["mem"] = _mem_fields(mem_prefill, predicted)
    if req.raw:
        rec["raw"] = {"prefill_ms": [round(x, 4) for x in pre.samples_ms]}
    ops: list[dict] = []
    if req.profile_ops:
        with torch.inference_mode():
            ops.append(_profile(loaded, lambda: loaded.prefill(ids, logits=c["logits"]), req.key,
                                "prefill", rec["prefill_ms"]["median"], 1, device, req.trace_dir))
    isolate.report_partial(dict(rec))

    if c["gen"] > 0:
        mem.begin()
        if c["decode_mode"] == "graph":
            if not cuda:
                raise ValueError("graph decode needs a CUDA device; use --decode-mode eager on the CPU")
            fn = graph.decode_graph_mamba_ssm if c["backend"] == "mamba_ssm" else graph.decode_graph_hf
        elif c["decode_mode"] == "compile":
            from edgebench.measure.compiled import decode_compile_hf as fn
        else:
            fn = phases.measure_decode_eager
        after, steps = None, 0
        if req.profile_ops:
            steps = min(c["gen"], 16)
            after = lambda step, reference=None: _profile(  # noqa: E731
                loaded, step, req.key, "decode", None, steps, device, req.trace_dir, reference)
        dec = fn(loaded, ids, gen=c["gen"], warmup=req.warmup, device=device, after=after, after_steps=steps)
        if "after" in dec.extra:
            ops.append(dec.extra["after"])
        mem_decode = mem.end()
        peak, dpeak = rec["mem"].get("peak_allocated_bytes"), mem_decode.get("peak_allocated_bytes")
        if dpeak is not None and (peak is None or abs(dpeak - peak) > 0.01 * peak):
            rec["mem"]["decode_peak_bytes"] = dpeak  # only when decode peaked apart from prefill
        rec["tpot_ms"] = summarize(dec.samples_ms, rounded=True)
        rec["cold_ms"].update({k.removesuffix("_ms"): round(v, 1) for k, v in dec.cold_ms.items()})
        if "compile" in dec.extra:
            rec["compile"] = dec.extra["compile"]
        if req.raw:
            rec["raw"]["tpot_ms"] = [round(x, 4) for x in dec.samples_ms]
    else:
        dec = None
    if telemetry:
        rec.update(telemetry.end(pre, dec, c, req.reps))
    if ops:
        for o in ops:
            if o["phase"] == "decode" and rec.get("tpot_ms"):
                o.update(_wall_from_timing(o, rec["tpot_ms"]["median"]))
        rec["ops"] = ops
    return CaseResult.from_dict(rec).to_dict()


def _profile(loaded, fn, key: str, phase: str, wall_ms, steps: int, device: str,
             trace_dir: str | None = None, reference=None) -> dict:
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
    trace = f"{trace_dir}/{key}-{phase}" if trace_dir else None
    prof = opsprofile.profile_phase(fn, steps=steps, device=device, scopes=scopes, trace_path=trace,
                                    reference=reference)
    rec = opsprofile.ops_record(key, phase, prof.kernels, (wall_ms or prof.wall_ms / steps) * steps,
                                steps=steps, device_total_us=prof.device_total_us)
    rec["profiled_wall_ms"] = round(prof.wall_ms / steps, 4)
    if prof.replay_scopes:
        rec["replay_scopes"] = prof.replay_scopes
    if trace:
        rec["trace"] = f"{key}-{phase}.json.gz"  # in the log's .traces/ folder
    return rec


_NORM_CLASS_SUFFIXES = ("RMSNorm", "LayerNorm", "RMSNormGated", "GroupNorm")


def _wall_from_timing(o: dict, tpot_ms: float) -> dict:
    """Re-base a decode profile's wall time (per step) on the timed TPOT median."""
    kernel_ms = o.get("kernel_ms")
    out = {"wall_ms": tpot_ms}
    if isinstance(kernel_ms, (int, float)) and tpot_ms:
        out["gpu_idle_share"] = round(max(0.0, 1 - kernel_ms / tpot_ms), 4)
    return out


def _rnd(x, digits: int = 3):
    return round(x, digits) if isinstance(x, (int, float)) else None


def _div(x, n: int):
    return round_sig(x / n, 3) if isinstance(x, (int, float)) and n else None


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


def _prov(before: dict, after: dict) -> dict:
    """Clocks, temperature and throttle reasons: one value if unchanged, else [before, after]."""
    out: dict[str, Any] = {}
    for k in sorted(set(before) | set(after)):
        b, a = before.get(k), after.get(k)
        if k in ("t_ns", "kind", "throttle_names", "throttle_reasons") or k.endswith("_why") \
                or (b is None and a is None):
            continue
        out[k] = b if b == a else [b, a]
    if not out:
        whys = [v for k, v in before.items() if k.endswith("_why") and v]
        out["why"] = whys[0] if whys else "no clock or temperature readings on this device"
    return out


class _Telemetry:
    """Power sampling, per-phase energy and device provenance around one case. Every part that the
    device cannot give is recorded as null with its reason; it never fails the case."""

    def __init__(self, req: CaseRequest):
        from edgebench.telemetry import jetson
        from edgebench.telemetry import power
        from edgebench.telemetry import provenance
        device = req.device
        self.index = _device_index(device)
        self.kind = "jetson" if jetson.is_jetson() else ("nvml" if device.startswith("cuda") else None)
        self.rate_hz = req.power_rate_hz
        self.idle_s = req.idle_s
        self.provenance = provenance
        self.sampler = None
        self.why = "CPU run: no power source" if self.kind is None else ""
        if self.kind:
            chans, why = power.channels_for_device(self.kind, self.index)
            if chans:
                self.rate_hz, self.rate_warning = power.clamp_rate(self.rate_hz, self.kind)
                self.channels = chans
                self.sampler, self.sampler_kind = power.make_sampler(chans, self.rate_hz)
            else:
                self.why = why

    def begin(self) -> None:
        from edgebench.telemetry import power
        self.before = self.provenance.snapshot(self.index) if self.kind else {}
        if self.sampler:
            self.sampler.start()
            self.idle = power.idle_baseline(self.sampler, self.idle_s)
        self.span = [self._counter_mj(), None]
        self.span_ns = [now_ns(), None]

    def _counter_mj(self):
        if self.kind != "nvml":
            return None
        from edgebench.telemetry import nvml
        return nvml.energy_mj(self.index)

    def end(self, pre, dec, c: dict, reps: int) -> dict:
        from edgebench.telemetry import energy
        self.span[1], self.span_ns[1] = self._counter_mj(), now_ns()
        after = self.provenance.snapshot(self.index) if self.kind else {}
        out: dict[str, Any] = {}
        if self.kind:
            out["prov"] = _prov(self.before, after)
            thr = self.provenance.compare(self.before, after)
            known = "why" not in out["prov"]
            out["prov"]["throttled"] = thr.get("throttled") if known else None
            if thr.get("reasons"):
                out["prov"]["throttle_reasons"] = thr["reasons"]
        if not self.sampler:
            out["energy"] = None
            out["energy_why"] = self.why
            return out
        time.sleep(2.0 / self.rate_hz)  # one more sample after the last phase ends, so it is covered
        self.sampler.stop()
        t_ns, per_channel = self.sampler.samples()
        total = next((i for i, ch in enumerate(self.channels) if ch.is_total), 0)
        phases = {"prefill": pre.extra["window_ns"], "case": tuple(self.span_ns)}
        if dec is not None:
            phases["decode"] = dec.extra["window_ns"]
        idle_mw = self.idle["idle_mw"][total]
        # The NVML energy counter is read around the whole measured region ("case") and compared
        # there with the integrated samples; per-phase energy comes from the samples.
        e = energy.phase_energy(t_ns, per_channel[total], phases, idle_mw,
                                counter_mj={"case": tuple(self.span)} if self.kind == "nvml" else None)
        pe, de = e.get("prefill") or {}, (e.get("decode") or {}) if dec is not None else {}
        tokens = c["gen"] * c["batch"]
        result: dict[str, Any] = {
            "channel": None if self.kind == "nvml" else self.channels[total].name,
            "idle_w": round(idle_mw / 1e3, 1) if idle_mw is not None else None,
            "prefill_j": _div(pe.get("energy_j"), reps), "prefill_net_j": _div(pe.get("net_energy_j"), reps),
            "prefill_mean_w": _rnd(pe.get("mean_w"), 1), "prefill_peak_w": _rnd(pe.get("peak_w"), 0),
            "decode_j_per_token": _div(de.get("energy_j"), tokens),
            "decode_net_j_per_token": _div(de.get("net_energy_j"), tokens),
            "decode_mean_w": _rnd(de.get("mean_w"), 1), "decode_peak_w": _rnd(de.get("peak_w"), 0),
            "counter_vs_samples_pct": _rnd((e.get("case") or {}).get("counter_vs_samples_pct"), 2),
        }
        whys = [f"{n}: {d['energy_j_why']}" for n, d in (("prefill", pe), ("decode", de)) if d.get("energy_j_why")]
        if whys:
            result["energy_why"] = "; ".join(whys)
        if self.sampler.dropped:
            result["dropped_samples"] = self.sampler.dropped
        result = {k: v for k, v in result.items() if v is not None}
        out["energy"] = result
        return out
