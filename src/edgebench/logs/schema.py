"""The log schema: every line kind and every field, declared once (`Field`), and the compact
case line (`compact_case` / `expand_case`); `edgebench.logs.writer` writes the lines.

One self-describing JSON object per line, no whitespace. Every line has `v` (schema version) and
`type`, one of `LINE_KINDS`: `run` (the header), `case` (one measured case), `maxctx` (a
max-context search result), `ops` (an operator breakdown), `interrupted` (a run stopped by Ctrl-C
or SIGTERM), `end` (a run that finished: its tear-down timeline). The fields of each kind are in
`RUN`, `CASE`, `MAXCTX`, `OPS`, `INTERRUPTED` and `END`, and
those of the objects inside a case in `STATS` (`prefill_ms`, `tpot_ms`), `MEM`, `ENERGY` and
`PROV`. A number's unit is in its name (`_ms`, `_bytes`, `_j`, `_s`, `_w`, `_pct`, `_c`, `_mhz`);
a Stats object is `{"median", "p10", "p90", "stdev", "n"}` in the unit its key names. Unavailable
telemetry is `null` beside a `<name>_why` string, never 0.

Each `Field` says its type, unit, default, whether the compact writer may leave it out (`omit`:
"default" = when it holds its default, "derived" = always, a reader derives it, "null-when-ok" =
`reason` of an ok case) and, where the readers check it (`checked`), the bounds they hold it to:
the readers (`edgebench.logs.case_lines`, `edgebench.logs.other_lines`, `edgebench.logs.values`),
`validate`, `compare` and `report` read these declarations. The bounds are wide enough for any
real log (a context of 10^12 tokens, a petabyte, 30 years) and narrow enough that every product
and ratio of them stays a finite float. What crosses the process boundary to a case worker and
back is in `edgebench.logs.contracts`.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import uuid
from typing import Any

from edgebench.choices import DECODE_MODES
from edgebench.logs.fields import (MAX_BATCH, MAX_BYTES, MAX_COUNT, MAX_JOULES, MAX_MS,  # noqa: F401
                                   MAX_SECONDS, MAX_SHARE, MAX_TOKENS, MAX_WORK, MIN_MS, Field, byte_count,
                                   fields, text, tokens, trail_ok)

SCHEMA_VERSION = 2  # 2: a point's prefill and each decode mode on lines of their own (v1: one line
# per point and decode mode, each with its own prefill); v1 logs read as before, one run per point
CASE_STATUSES = ("ok", "oom", "error", "killed", "skipped")
WORK_KEYS = ("decode_step_bytes", "prefill_flops")  # a case line's `work` object


def work_ok(work: Any) -> bool:
    """A `work` object the floors can divide by: both counts positive integers in range."""
    return type(work) is dict and all(type(work.get(k)) is int and 0 < work[k] <= MAX_WORK
                                      for k in WORK_KEYS)

PHASES = ("prefill", "decode")

STATS = fields(
    Field("median", float, "median sample", "ms", checked=True, lo=MIN_MS, hi=MAX_MS),
    Field("p10", float, "10th percentile", "ms", checked=True, lo=0, hi=MAX_MS),
    Field("p90", float, "90th percentile", "ms", checked=True, lo=0, hi=MAX_MS),
    Field("stdev", float, "sample standard deviation; null with one sample", "ms", checked=True,
          lo=0, hi=MAX_MS),
    Field("n", int, "sample count (with runs: the number of runs)", "count", checked=True, lo=1,
          hi=MAX_COUNT),
    Field("run_medians", list, "--runs N > 1: the median of each worker process; the other fields are "
          "then over these medians (the between-run spread)", "ms"),
    Field("samples", int, "--runs N > 1: the samples the run_medians came from", "count"),
)
MEM = fields(
    byte_count("peak_allocated_bytes", "torch allocator peak over prefill", checked=True),
    byte_count("peak_reserved_bytes", "torch allocator reserved peak", checked=True),
    byte_count("predicted_bytes", "the analytic memory model's total", checked=True),
    byte_count("decode_peak_bytes", "a decode line's allocator peak over that decode (v1 lines: "
               "written when apart from prefill's by >1%)"),
    byte_count("device_used_bytes", "device-level memory in use (NVML)"),
    Field("nvml_bytes", float, "NVML per-process memory; left out within 1% of "
          "device_used_bytes", "bytes", omit="derived"),
    byte_count("rss_bytes", "host resident set size"),
    byte_count("mem_available_bytes", "host MemAvailable (Jetson: shared memory)"),
    byte_count("nvmap_used_bytes", "Jetson nvmap in use"),
    text("why", "why a reading is missing"),
)
ENERGY = fields(
    Field("prefill_j", float, "energy per prefill", "j", checked=True, lo=0, hi=MAX_JOULES),
    Field("decode_j_per_token", float, "decode energy per token", "j", checked=True, lo=0,
          hi=MAX_JOULES),
    text("energy_why", "why energy is missing", checked=True),
    Field("prefill_net_j", float, "prefill energy above idle", "j"),
    Field("decode_net_j_per_token", float, "decode energy per token above idle", "j"),
    Field("prefill_mean_w", float, "mean power in prefill", "w", omit="derived",
          derive=("prefill_j", "prefill_ms")),
    Field("decode_mean_w", float, "mean power in decode", "w", omit="derived",
          derive=("decode_j_per_token", "tpot_ms")),
    Field("prefill_peak_w", float, "peak power in prefill", "w"),
    Field("decode_peak_w", float, "peak power in decode", "w"),
    Field("idle_w", float, "idle power before the case (measured by this point, or lent by the line "
          "idle_from names)", "w"),
    Field("idle_temp_c", float, "the GPU temperature idle_w was measured at", "c"),
    Field("counter_vs_samples_pct", float, "NVML energy counter vs integrated samples", "pct"),
    text("channel", "the power rail read (Jetson)"),
    Field("dropped_samples", int, "power samples the sampler dropped", "count"),
)
PROV = fields(
    Field("gpu_temp_c", float, "GPU temperature (one value, or [before, after])", "c"),
    Field("sm_clock_mhz", float, "SM clock (one value, or [before, after])", "mhz"),
    Field("mem_clock_mhz", float, "memory clock (one value, or [before, after])", "mhz"),
    Field("throttled", bool, "the device throttled during the case; null when unknown"),
    Field("throttle_reasons", list, "the throttle reasons seen"),
    text("why", "why there are no readings"),
)
_COMMON = (Field("v", int, "schema version"), text("type", "the line kind"),
           text("run", "run id (every line of one invocation)"))
RUN = fields(
    *_COMMON, text("t", "UTC ISO start time: the latest run wins", checked=True,
                   what="an ISO time string"),
    text("edgebench", "version"), Field("env", dict, "environment snapshot (its snapshot_s: seconds "
                                        "its worker spent on host_probe, packages, gpus_power, micro)"),
    Field("spec", dict, "the sweep spec as given"), Field("argv", list, "command line"),
    text("device", "device label"), text("shard", "--shard i/n"),
    Field("devices", list, "--devices: the label of each GPU the run used"),
    Field("device_state", dict, "what makes numbers reproducible, checked before the first case: "
          "CPU governors, steal since boot, Jetson nvpmodel / jetson_clocks, other GPU processes, "
          "persistence, locked clocks (telemetry/device_state.py)"),
    Field("workers", dict, "how workers started (preloaded or spawned)"),
    Field("startup_s", dict, "when the run's start-up reached each moment, in seconds since its "
          "process started (execution/timeline.py): main (the CLI entered), prestart (the fork "
          "server launched), env_start / env (the environment snapshot, whose own parts are in "
          "env.snapshot_s; env_server: the fork server it forked from was READY), log_open, "
          "preload_ready (every fork server READY), header", "s"),
    Field("preload_s", dict, "device -> its fork server's [started, modules named, READY], seconds "
          "since the process started (null: never reached)", "s"),
)
CASE = fields(
    *_COMMON,
    text("key", "case_key(): stable id of the case on its device, for resume", omit="derived"),
    text("model", "model name"), text("family", "transformer | ssm | hybrid"),
    text("backend", "hf | mamba_ssm", default="hf", omit="default", checked=True),
    text("dtype", "weights dtype", default="bfloat16", omit="default", checked=True),
    tokens("ctx", "prompt tokens", checked=True), tokens("gen", "decode tokens", checked=True),
    Field("batch", int, "prompts per batch", "count", default=1, omit="default", checked=True,
          lo=1, hi=MAX_BATCH),
    text("decode_mode", "the decode mode of a decode line; left out (null) on the point's prefill "
         "line, which holds the prefill, memory and cold costs", default=None, omit="default",
         checked=True),
    text("logits", "last | all", default="last", omit="default", checked=True),
    text("attn", "attention implementation", default="sdpa", omit="default", checked=True),
    text("status", " | ".join(CASE_STATUSES)),
    text("reason", "why not ok (null when ok)", omit="null-when-ok", checked=True),
    text("device", "device name", checked=True),
    Field("device_index", int, "prefill line: the CUDA index of the GPU the point ran on", "count"),
    text("pci_bus_id", "prefill line: the PCI bus id of that GPU (--devices tells GPUs apart)"),
    Field("beyond_trained_ctx", bool, "ctx + gen passed the model's trained length (random "
          "weights: timing and memory meaningful, outputs not)", default=False, omit="default"),
    Field("prefill_ms", dict, "Stats of one prefill", "ms", checked=True),
    Field("tpot_ms", dict, "Stats of one decode step", "ms", checked=True),
    Field("host_bound", bool, "the phase kept the GPU waiting for the host: the GPU finished less "
          "than HOST_BOUND_LAG_SHARE of the phase time after the timed call returned", default=False,
          omit="default"),
    Field("gpu_lag_ms", float, "median time from the timed call's return to the GPU finishing "
          "(warm-up calls, synchronised): near 0 when host-bound", "ms"),
    Field("unstable", bool, "the spread (within a run, or between --runs) is too wide: p10-p90 >= "
          "20% of the median (analysis.stats.unstable)", default=False,
          omit="default"),
    Field("runs", int, "worker processes that measured the point (--runs); absent: 1", "count",
          default=1, omit="default"),
    Field("steal_pct", float, "host CPU time stolen by the hypervisor during the point "
          "(/proc/stat)", "pct"),
    Field("cold_ms", dict, "first-call costs: load, first_forward, graph_capture ... (load holds the "
          "CUDA context's creation in lines without setup_ms; from then on it is setup_ms.device_init)", "ms"),
    Field("compile", dict, "a compile decode line: graphs, recompiles, Inductor cache_hits / "
          "cache_misses, cache_dir"),
    Field("kernels", dict, "which kernels ran: attention, ssm_scan, conv1d"),
    Field("fallback", bool, "written only when true: a slow fallback ran (kernels says which)"),
    text("kernels_from", "prefill line, written only when this point's worker skipped kernel "
         "detection: the key of the earlier prefill line of this run (same model, backend, dtype, attn, "
         "batch, probe length min(ctx, 64) and GPU model) whose detected kernels `kernels` repeats"),
    Field("autotune", dict, "prefill line, written only where this point's worker ran mamba_ssm's "
          "autotuned Triton kernels: {kernel: the config it ran}, chosen by benchmarking at the first "
          "call's shapes or read from the on-disk cache of an earlier benchmark, so runs with different "
          "caches can differ by it; with --runs, the first ok run's (models.kernel_detect.autotuned)"),
    text("idle_from", "prefill line, written only when this point's worker took no idle baseline of its "
         "own: the key of the earlier prefill line of this run, on the same GPU, whose idle_w it used "
         "(lent while the GPU was within contracts.IDLE_REUSE_C of that line's idle_temp_c and at most "
         "IDLE_REUSE_S after that line's worker started; only a point's first run lends)"),
    Field("mem", dict, "memory readings (MEM)"),
    Field("energy", dict, "energy readings (ENERGY); null with energy_why"),
    text("energy_why", "why energy is null"),
    Field("prov", dict, "clocks, temperature, throttling (PROV)"),
    Field("raw", dict, "with --raw: the samples (prefill_ms, tpot_ms lists)"),
    text("worker_log", "not ok: the worker's output file, relative to the log's folder"),
    Field("exit_code", int, "a killed or failed worker's exit code"),
    Field("throttle", dict, "v1 before prov: {throttled, reasons}; read, no longer written"),
    text("t", "time (early v1 logs)"),
    Field("wall_s", float, "prefill line: the point's worker wall time, all runs and modes", "s"),
    Field("setup_ms", dict, "prefill line: the first run's worker, ms of its untimed steps: imports "
          "(what the fork server had not), device_init (CUDA context, budget), telemetry (sampler, idle baseline, provenance, energy), predict "
          "(memory model), release (between decode modes), and worker (its whole run, entry to "
          "result); wall_s less worker is the process's start and exit", "ms"),
    Field("work", dict, "what the point's phases must do, counted in its worker "
          "(analysis.floors.point_work): decode_step_bytes (weights + KV cache at ctx + SSM state) and "
          "prefill_flops (matmul FLOPs of one prefill); the floors divide them by the run header's "
          "micro-benchmarks. Absent: readers count them from the catalog", checked=True,
          check=work_ok, what=f"an object of {' and '.join(WORK_KEYS)}, each an integer from 1 to {MAX_WORK:g}"),
)
MAXCTX = fields(
    *_COMMON, text("model", "model name"), text("family", "model family"),
    text("mode", "logits mode searched", checked=True), text("device", "device name", checked=True),
    Field("device_index", int, "the CUDA index of the GPU the search ran on", "count"),
    text("pci_bus_id", "the PCI bus id of that GPU (--devices tells GPUs apart)"),
    text("backend", "hf | mamba_ssm (absent in logs before session 7: the run header's spec.maxctx "
         "names it)"),
    text("dtype", "weights dtype"), tokens("gen", "decode tokens per probe"),
    byte_count("budget_bytes", "memory budget of the search", checked=True),
    tokens("start_ctx", "first probe"), tokens("limit_ctx", "largest context tried"),
    Field("wall_s", float, "search wall time", "s", checked=True, lo=0, hi=MAX_SECONDS),
    tokens("max_ok_ctx", "largest context that fit (null: none)", checked=True),
    tokens("min_fail_ctx", "smallest context that failed (null: none)", checked=True),
    tokens("probes", "probes run", checked=True), tokens("resolution", "search step", checked=True),
    Field("trail", list, "(ctx, status) pairs", checked=True, check=trail_ok,
          what="a list of [context, status] pairs"),
    text("stopped", "why it ended early"), text("limited_by", "what bounded it", checked=True),
    Field("mem_at_max_ok", dict, "the passing probe's mem at max_ok_ctx", checked=True,
          check=lambda x: all(x.get(k) is None or MEM[k].ok(x[k]) for k in MEM if MEM[k].checked),
          what=f"a mem object of byte counts from 0 to {MAX_BYTES:,}"),
    Field("beyond_trained_ctx", bool, "max_ok_ctx + gen passed the trained length"),
)
OPS = fields(
    *_COMMON, text("key", "the case's record key", checked=True),
    text("phase", " | ".join(PHASES)),
    Field("shares", dict, "category -> fraction of GPU time", "share", lo=0, hi=MAX_SHARE),
    Field("top", list, "largest kernels: kernel, category, ms, count, fused_gemm"),
    Field("kernel_ms", float, "GPU kernel time", "ms", checked=True, lo=0, hi=MAX_MS),
    Field("wall_ms", float, "the phase's wall time", "ms", checked=True, lo=0, hi=MAX_MS),
    Field("gpu_idle_share", float, "1 - kernel / wall", "share"),
    Field("fused_gemm_ms", float, "GEMM inside other categories", "ms"),
    Field("steps", int, "decode steps profiled", "count"),
    Field("profiler_total_ms", float, "CUDA: the profiler's total", "ms"),
    Field("categorised_vs_total_pct", float, "CUDA: kernel_ms / profiler total", "pct"),
    Field("profiled_wall_ms", float, "wall time under the profiler", "ms"),
    Field("replay_scopes", dict, "graph decode: mapped | unmatched scopes"),
    text("trace", "--ops-trace: the Chrome trace file"), text("model", "model name"),
    tokens("ctx", "prompt tokens"), text("decode_mode", " | ".join(DECODE_MODES), checked=True),
    text("device", "device name"),
)
INTERRUPTED = fields(
    *_COMMON, text("t", "UTC ISO time"), text("reason", "e.g. received SIGTERM"),
    Field("cases_recorded", int, "cases this invocation recorded", "count"),
    Field("cases_left", int, "cases not measured (a rerun resumes them)", "count"),
)
END = fields(
    *_COMMON, text("t", "UTC ISO time"),
    Field("teardown_s", dict, "after the last point, in seconds since the process started: "
          "first_point (the first point's worker asked for), points_done, and servers_closed (the "
          "fork servers ended) or servers_kept (handed to the suite's next group, closed when the "
          "suite ends); what follows (the summary, the exit) is the run's wall after it", "s"),
)
LINE_KINDS: dict[str, dict[str, Field]] = {"run": RUN, "case": CASE, "maxctx": MAXCTX, "ops": OPS,
                                           "interrupted": INTERRUPTED, "end": END}
RECORD_TYPES = tuple(LINE_KINDS)
# What makes a case a case: the fields of its record key (with the device).
# A point (`edgebench.sweep.spec.Point`) is written as one line holding its prefill (no decode_mode)
# and one line per decode mode measured after that prefill; each line is a case.
HOST_BOUND_LAG_SHARE = 0.1
KEY_FIELDS = ("model", "backend", "dtype", "ctx", "gen", "batch", "decode_mode", "logits", "attn")
# Fields a case line leaves out when they hold their default; every reader restores them.
CASE_DEFAULTS = {f.name: f.default for f in CASE.values() if f.omit == "default"}
# The flat rows readers make of case lines (`edgebench.logs.case_lines`, importers): the
# checked case fields, the Stats and the checked mem and energy fields flattened, and where the
# row came from (source, file, host, device_name) and the raw samples.
CASE_FIELDS = ("source", "file", "run", "key", "device", "host", "device_name", "model", "family",
               "backend", "dtype", "ctx", "gen", "batch", "decode_mode", "logits", "attn", "status",
               "reason", "prefill_ms", "tpot_ms", "prefill_raw_ms", "tpot_raw_ms", "host_bound",
               "unstable", "runs",
               *(k for k, f in MEM.items() if f.checked),
               *(k for k, f in ENERGY.items() if f.checked), "kernels", "autotune", "cold_ms", "work")
_DERIVED_ENERGY = {k: f.derive for k, f in ENERGY.items() if f.derive}


def case_key(fields: dict[str, Any], device: str) -> str:
    """The record key of a case on a device (12 hex digits of a hash of `KEY_FIELDS` and the
    device): the same case measured again gets the same key, which is how a rerun resumes and
    readers deduplicate."""
    text = "|".join(str(fields[k]) for k in KEY_FIELDS) + "|" + device
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def compact_case(rec: dict[str, Any]) -> dict[str, Any]:
    """The case line as written: what `CASE`, `MEM` and `ENERGY` say may be left out is dropped
    (the key, `reason` when ok, fields at their default, mean power, NVML per-process memory
    within 1% of device-level use), so a line stays under ~1 KB."""
    ok = rec.get("status") == "ok"
    out = {}
    for k, v in rec.items():
        f = CASE.get(k)
        if f is not None and (f.omit == "derived" or f.omit == "null-when-ok" and v is None and ok
                              or f.omit == "default" and v == f.default
                              and type(v) is type(f.default)):
            continue
        out[k] = v
    e = out.get("energy")
    if isinstance(e, dict):
        out["energy"] = {k: v for k, v in e.items() if k not in _DERIVED_ENERGY and v is not None}
    m = out.get("mem")
    if isinstance(m, dict) and m.get("nvml_bytes") and m.get("device_used_bytes"):
        if abs(m["nvml_bytes"] - m["device_used_bytes"]) <= 0.01 * m["device_used_bytes"]:
            out["mem"] = {k: v for k, v in m.items() if k != "nvml_bytes"}
    return out


def expand_case(rec: dict[str, Any]) -> dict[str, Any]:
    """A case line with its derivable fields filled back in (the inverse of `compact_case`)."""
    out = dict(rec)
    out.setdefault("reason", None)
    if out.get("type", "case") == "case":
        for k, v in CASE_DEFAULTS.items():
            out.setdefault(k, v)
    if "key" not in out and all(k in out for k in KEY_FIELDS):
        out["key"] = case_key(out, str(out.get("device")))
    e = out.get("energy")
    if isinstance(e, dict):
        e = dict(e)
        for name, (joules, phase) in _DERIVED_ENERGY.items():
            t = (out.get(phase) or {}).get("median")
            if name not in e and isinstance(e.get(joules), (int, float)) and t:
                # per token x tokens per step (the batch) / seconds per step
                per_step = (out.get("batch") or 1) if joules.endswith("_per_token") else 1
                e[name] = round(e[joules] * per_step / (t / 1e3), 1)
        out["energy"] = e
    return out


def peak_bytes(rec: dict[str, Any]) -> int | None:
    """A line's device allocator peak (`mem.peak_allocated_bytes` of a prefill, `mem.decode_peak_bytes`
    of a decode, the larger of both on a v1 line); None where the device has no allocator stats."""
    mem = rec.get("mem") or {}
    peaks = [v for v in (mem.get("peak_allocated_bytes"), mem.get("decode_peak_bytes")) if v is not None]
    return max(peaks) if peaks else None


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def dumps(obj: dict[str, Any]) -> str:
    """Compact, deterministic one-line JSON. NaN/inf are not valid JSON: they become null."""
    return json.dumps(_finite(obj), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _finite(x: Any) -> Any:
    if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x
