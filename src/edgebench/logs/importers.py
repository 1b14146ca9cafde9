"""Import logs written by other tools as edgebench case rows, tagged with their `source`.

Supported:
- `ssm-char`: the CSV logs of the published SSM characterization framework.
  Generation times: `model_name,input_seq_length,output_tokens,prefill_time_seconds,
  decode_time_seconds,total_time_seconds,tpot_seconds,throughput_tokens_per_sec,device,timestamp`,
  model_name like `gen_qwen25-instruct_cuda_256_1024` (`gen_<model>_<device>_<ctx>_<n>`; the
  `input_seq_length` column wins over the name when both are there). Seconds become ms; repeated
  rows of one model and context become one row with median/p10/p90 and the raw samples.
  Memory footprints: `model_name,model_config,seq_len,batch_size,model_size_mb,
  activation_memory_mb,kv_cache_mb,reserved_memory_mb,total_memory_mb`, MB read as MiB (2**20
  bytes, what torch's memory counters divided by 1024**2 give); total -> peak_allocated_bytes,
  reserved -> peak_reserved_bytes. They carry no device: they are merged into the generation rows
  of the same model and context in the same folder, and keep "unknown device" otherwise.
- `llama-bench`: llama.cpp's `llama-bench -o json` (a list of objects) or `-o jsonl` (one object a
  line, found inside `*.jsonl` files too). A `pp N` test at depth 0 is the prefill of N tokens;
  a `tg N` test at depth d is N decode steps with d tokens cached, so TPOT at ctx=d is
  sample_ns / N. Tests edgebench has no equivalent for (`pp` at depth > 0, combined `pg`) are
  reported and skipped.

Problems come back as (line or None, reason, skipped) tuples; one bad row never stops the rest.
Files are read within the caps of `ReadLimits` (`edgebench.logs.stream`); every number is checked
to be finite and in its quantity's range (`edgebench.logs.values`), like edgebench's own lines.
"""
from __future__ import annotations

import csv
import re
from functools import partial
from pathlib import Path
from typing import Any, Iterable

from edgebench.analysis.stats import summarize
from edgebench.logs.schema import CASE_FIELDS
from edgebench.logs.stream import LOG_FLAG, ReadLimits, text_lines
from edgebench.logs.fields import MAX_BATCH, MAX_BYTES, MAX_MS, MAX_TOKENS, MIN_MS
from edgebench.logs.values import NON_FINITE, brief, in_range, int_in, json_error, loads
from edgebench.sweep.units import format_bytes

GEN_COLUMNS = ("model_name", "input_seq_length", "output_tokens", "prefill_time_seconds",
               "decode_time_seconds", "total_time_seconds", "tpot_seconds",
               "throughput_tokens_per_sec", "device", "timestamp")
MEM_COLUMNS = ("model_name", "model_config", "seq_len", "batch_size", "model_size_mb",
               "activation_memory_mb", "kv_cache_mb", "reserved_memory_mb", "total_memory_mb")
_MIB = 1 << 20
_NAME_RE = re.compile(r"(?:gen|mem|memory)_(?P<model>.+?)_(?P<dev>cuda|cpu|mps|gpu|xpu|rocm)"
                      r"(?:_(?P<ctx>\d+))?(?:_\d+)*")
# Architecture words that name SSMs and hybrids, in llama.cpp model types and common model names.
_SSM_WORDS = ("mamba", "rwkv", "falcon-mamba", "falcon_mamba")
_HYBRID_WORDS = ("zamba", "jamba", "hymba", "bamba", "falcon-h1", "falcon_h1", "nemotron-h",
                 "nemotron_h", "granitehybrid", "granite-4.0-h", "plamo2", "lfm2", "qwen3next")

Issue = tuple[int | None, str, bool]
# A foreign row's `key` is its record key, as an edgebench case's is: what makes it one case within
# its run (the reader keeps one row per run and key); `run` ids of memory-only ssm-char rows start
# with this.
_MEMORY_RUN = "ssm-char-mem:"


def guess_family(model: str) -> str:
    """transformer | ssm | hybrid from a model or architecture name (foreign logs do not say)."""
    m = model.lower()
    if any(w in m for w in _HYBRID_WORDS):
        return "hybrid"
    if any(w in m for w in _SSM_WORDS):
        return "ssm"
    return "transformer"


def blank_row(**values: Any) -> dict[str, Any]:
    row = dict.fromkeys(CASE_FIELDS)
    row.update(values)
    return row


def import_file(path: Path, limits: ReadLimits = ReadLimits()
                ) -> tuple[list[dict[str, Any]], list[Issue]]:
    """Rows and problems of one foreign file (CSV or JSON), by its content, not its name."""
    if path.suffix == ".json":
        return _import_json(path, limits)
    issues: list[Issue] = []
    # Lines within the caps; a CSV field may span lines (quoted), up to the line cap.
    reader = csv.DictReader(text_lines(path, limits, lambda *issue: issues.append(issue)))
    rows: list[dict[str, str]] = []
    header: list[str] = []
    old_limit = csv.field_size_limit(max(csv.field_size_limit(), limits.max_line_bytes))
    try:
        header = reader.fieldnames = [h.strip() for h in (reader.fieldnames or [])]
        rows.extend(reader)
    except csv.Error as exc:
        issues.append((reader.line_num or None, f"CSV not readable ({exc}): the rows from here "
                                                "on skipped", True))
    finally:
        csv.field_size_limit(old_limit)
    if "prefill_time_seconds" in header or "tpot_seconds" in header or "input_seq_length" in header:
        rows, more = _ssm_generation(rows, header, str(path))
    elif "total_memory_mb" in header or "kv_cache_mb" in header:
        rows, more = _ssm_memory(rows, header, str(path))
    else:
        rows, more = [], [(1, "CSV columns not recognised (" + ",".join(map(brief, header[:6]))
                           + "...); expected the SSM characterization generation or memory CSV",
                           True)]
    return rows, issues + more


def _import_json(path: Path, limits: ReadLimits) -> tuple[list[dict[str, Any]], list[Issue]]:
    try:
        with open(path, "rb") as fh:
            data = fh.read(limits.max_log_bytes + 1)
    except OSError as exc:
        return [], [(None, f"cannot read the file ({exc.strerror or exc}): skipped", True)]
    if len(data) > limits.max_log_bytes:
        return [], [(None, f"JSON file larger than {format_bytes(limits.max_log_bytes)}: not "
                           f"read; raise the limit with {LOG_FLAG} to read it", True)]
    try:
        data, non_finite = loads(data.decode("utf-8", errors="replace"))
    except ValueError as exc:
        return [], [(None, f"not JSON ({json_error(exc)}); expected llama-bench -o json output",
                     True)]
    if not (isinstance(data, list) and data and all(is_llama_bench(o) for o in data)):
        return [], [(None, "JSON file is not a recognised log (llama-bench -o json is a list of "
                           "objects with n_prompt, n_gen, avg_ns)", True)]
    rows, issues = llama_bench_rows(list(enumerate(data, 1)), str(path), numbered="result #")
    return rows, ([(None, NON_FINITE, False)] if non_finite else []) + issues


def _header_issues(header: list[str], known: tuple[str, ...]) -> list[Issue]:
    out: list[Issue] = []
    for col in header:
        if col not in known:
            out.append((1, f"unknown column {brief(col)} (unit or name not in the SSM "
                           "characterization format): ignored, the other columns used", False))
    return out


def _number(row: dict[str, str], line: int, issues: list[Issue], col: str, lo: float,
            hi: float) -> float | None:
    """A numeric cell of a CSV row; one that is not a finite number from lo to hi is reported
    (ignored, the rest of the row used) and read as None."""
    text = row.get(col)
    if text is None or not str(text).strip():
        return None
    try:
        x = float(text)
    except (TypeError, ValueError):
        x = None
    if x is None or not lo <= x <= hi:  # NaN and infinities fail too
        issues.append((line, f"column {col} {brief(text)} is not a number from {lo:g} to "
                             f"{hi:g}: ignored", False))
        return None
    return x


def _parse_name(name: str) -> tuple[str, str | None, int | None]:
    m = _NAME_RE.fullmatch(name.strip())
    if not m:
        return name.strip(), None, None
    ctx = m.group("ctx")
    return m.group("model"), m.group("dev"), int(ctx) if ctx and len(ctx) <= 12 else None


def _ssm_generation(rows: list[dict[str, str]], header: list[str], name: str):
    issues = _header_issues(header, GEN_COLUMNS)
    groups: dict[tuple, dict[str, Any]] = {}
    for i, r in enumerate(rows, 2):
        num = partial(_number, r, i, issues)
        model, dev, name_ctx = _parse_name(r.get("model_name") or "")
        seq = num("input_seq_length", 0, MAX_TOKENS)
        ctx = int(seq) if seq is not None else name_ctx
        prefill_s = num("prefill_time_seconds", MIN_MS / 1e3, MAX_MS / 1e3)
        tpot_s = num("tpot_seconds", MIN_MS / 1e3, MAX_MS / 1e3)
        if not model or ctx is None:
            issues.append((i, "row without a model name or context length: skipped", True))
            continue
        if prefill_s is None and tpot_s is None:
            issues.append((i, "row without prefill_time_seconds or tpot_seconds: skipped", True))
            continue
        gen = num("output_tokens", 0, MAX_TOKENS)
        device = (r.get("device") or "").strip() or dev
        g = groups.setdefault((model, ctx, device), {"gen": int(gen) if gen else None,
                                                     "prefill": [], "tpot": [], "t": []})
        if prefill_s is not None:
            g["prefill"].append(prefill_s * 1000.0)
        if tpot_s is not None:
            g["tpot"].append(tpot_s * 1000.0)
        g["t"].append(r.get("timestamp") or "")
    run = f"ssm-char:{Path(name).name}:{min((t for g in groups.values() for t in g['t']), default='')}"
    out = []
    for (model, ctx, device), g in groups.items():
        out.append(blank_row(
            source="ssm-char", file=name, run=run, key=f"{model}|ssm-char|ctx={ctx}|gen={g['gen']}",
            device_name=device, model=model, family=guess_family(model), backend="ssm-char",
            ctx=ctx, gen=g["gen"], batch=1, status="ok",
            prefill_ms=summarize(g["prefill"]), tpot_ms=summarize(g["tpot"]),
            prefill_raw_ms=g["prefill"] if len(g["prefill"]) > 1 else None,
            tpot_raw_ms=g["tpot"] if len(g["tpot"]) > 1 else None))
    return out, issues


def _ssm_memory(rows: list[dict[str, str]], header: list[str], name: str):
    issues = _header_issues(header, MEM_COLUMNS)
    out = []
    for i, r in enumerate(rows, 2):
        num = partial(_number, r, i, issues)
        model, dev, name_ctx = _parse_name(r.get("model_name") or "")
        seq = num("seq_len", 0, MAX_TOKENS)
        ctx = int(seq) if seq is not None else name_ctx
        total = num("total_memory_mb", 0, MAX_BYTES / _MIB)
        reserved = num("reserved_memory_mb", 0, MAX_BYTES / _MIB)
        if not model or ctx is None or (total is None and reserved is None):
            issues.append((i, "row without model, seq_len or memory columns: skipped", True))
            continue
        batch = num("batch_size", 1, MAX_BATCH)
        out.append(blank_row(
            source="ssm-char", file=name, run=f"{_MEMORY_RUN}{Path(name).name}",
            key=f"{model}|ssm-char|ctx={ctx}|mem", model=model, family=guess_family(model),
            backend="ssm-char", ctx=ctx, batch=int(batch) if batch else 1, status="ok",
            peak_allocated_bytes=round(total * _MIB) if total is not None else None,
            peak_reserved_bytes=round(reserved * _MIB) if reserved is not None else None))
    return out, issues


def _memory_only(row: dict[str, Any]) -> bool:
    """A row of an ssm-char memory CSV (no timings): told by its run id, not by its key."""
    return str(row["run"]).startswith(_MEMORY_RUN)


def merge_memory_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold memory-only ssm-char rows into the timing rows of the same model, context and folder;
    the ones with no timing row to join stay as they are (device unknown)."""
    timed: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        if r["source"] == "ssm-char" and not _memory_only(r):
            timed.setdefault((str(Path(r["file"]).parent), r["model"], r["ctx"]), []).append(r)
    out = []
    for r in rows:
        if r["source"] == "ssm-char" and _memory_only(r):
            targets = timed.get((str(Path(r["file"]).parent), r["model"], r["ctx"]))
            if targets:
                for t in targets:
                    t["peak_allocated_bytes"] = r["peak_allocated_bytes"]
                    t["peak_reserved_bytes"] = r["peak_reserved_bytes"]
                continue
        out.append(r)
    return out


def is_llama_bench(obj: Any) -> bool:
    return isinstance(obj, dict) and "n_prompt" in obj and "n_gen" in obj and (
        "avg_ns" in obj or "samples_ns" in obj or "model_type" in obj)


def llama_bench_rows(items: Iterable[tuple[int, dict[str, Any]]], name: str, numbered: str = ""):
    """Case rows from llama-bench result objects given as (line, object); with `numbered` the
    numbers are positions in a JSON list, named in the message rather than as a file line."""
    raw_issues: list[Issue] = []
    issues = raw_issues
    merged: dict[tuple, dict[str, Any]] = {}
    for line, o in items:
        n_prompt, n_gen, depth = o.get("n_prompt"), o.get("n_gen"), o.get("n_depth") or 0
        samples = o.get("samples_ns")
        if not isinstance(samples, list) or not samples:
            samples = [o["avg_ns"]] if isinstance(o.get("avg_ns"), (int, float)) else []
        why = _llama_bench_error(o, n_prompt, n_gen, depth, samples)
        if why:
            issues.append((line, f"llama-bench result skipped: {why}", True))
            continue
        if n_prompt > 0 and n_gen > 0:
            issues.append((line, f"llama-bench pg{n_prompt},{n_gen} mixes prefill and decode in "
                                 "one time: no edgebench equivalent, skipped", True))
            continue
        if n_prompt > 0 and depth:
            issues.append((line, f"llama-bench pp{n_prompt} @ d{depth} times {n_prompt} tokens "
                                 f"after {depth} cached: no edgebench equivalent, skipped", True))
            continue
        arch_size, _, dtype = (_text(o, "model_type") or "unknown").partition(" ")
        size, _, dtype = dtype.partition(" ")
        model = f"{arch_size}-{size}".lower() if size else arch_size.lower()
        device = (_text(o, "gpu_info") or _text(o, "cpu_info") or "").strip() or None
        ctx = n_prompt if n_prompt > 0 else depth
        row = merged.get((device, model, dtype, ctx))
        if row is None:
            backend = "llama.cpp/" + (_text(o, "backends") or "?")
            row = merged[(device, model, dtype, ctx)] = blank_row(
                source="llama-bench", file=name,
                run=f"llama-bench:{_text(o, 'build_commit') or '?'}:{_text(o, 'test_time') or '?'}",
                key=f"{model}|{backend}|{dtype}|ctx={ctx}", device_name=device, model=model,
                family=guess_family(model), backend=backend, dtype=dtype or None, ctx=ctx,
                batch=1, status="ok")
        per = [s / 1e6 / (n_gen if n_prompt == 0 else 1) for s in samples]
        if n_prompt > 0:
            row["prefill_ms"], row["prefill_raw_ms"] = summarize(per), per if len(per) > 1 else None
        else:
            row["gen"] = n_gen
            row["tpot_ms"], row["tpot_raw_ms"] = summarize(per), per if len(per) > 1 else None
    if numbered:
        issues = [(None, f"{numbered}{n}: {why}", skip) for n, why, skip in raw_issues]
    rows = list(merged.values())
    # All results of one llama-bench invocation share one run id (its first test's time).
    if rows:
        for r in rows[1:]:
            r["run"] = rows[0]["run"]
    return rows, issues


def _text(o: dict[str, Any], key: str) -> str | None:
    """A string field of a llama-bench result (numbers as text); None for anything else."""
    v = o.get(key)
    return v if type(v) is str else str(v) if type(v) in (int, float) else None


def _llama_bench_error(o: dict[str, Any], n_prompt: Any, n_gen: Any, depth: Any,
                       samples: list[Any]) -> str | None:
    """Why a llama-bench result's counts or times cannot be used (None when they can)."""
    if not (isinstance(n_prompt, int) and isinstance(n_gen, int)) or not samples:
        unit = [k for k in o if k.startswith("avg_") and k not in ("avg_ns", "avg_ts")]
        return (f"time in unknown unit {brief(unit[0])} (llama-bench writes avg_ns)" if unit
                else "needs integer n_prompt, n_gen and avg_ns or samples_ns")
    if not (int_in(n_prompt, 0, MAX_TOKENS) and int_in(n_gen, 0, MAX_TOKENS)
            and int_in(depth, 0, MAX_TOKENS)):
        return (f"n_prompt, n_gen and n_depth must be token counts from 0 to {MAX_TOKENS:,}, got "
                f"{brief(n_prompt)}, {brief(n_gen)}, {brief(depth)}")
    if n_prompt == 0 and n_gen == 0:
        return "n_prompt and n_gen are both 0: nothing was timed"
    per = n_gen if n_prompt == 0 else 1
    if not all(in_range(s, MIN_MS * 1e6 * per, MAX_MS * 1e6 * per) for s in samples):
        return (f"times must be numbers of ns, from {MIN_MS * 1e6:g} to {MAX_MS * 1e6:g} per "
                f"token timed, got {brief(samples)}")
    return None
