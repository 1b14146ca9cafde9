"""Case lines of an edgebench log into flat rows (`schema.CASE_FIELDS`), for `edgebench.logs.file_reader`.

`case_row(reader, n, obj)` checks one parsed case line against the schema of `edgebench.logs.schema`,
reports its problems to the reader and turns the line into a row, in place (the parsed dict
becomes the row: no copy). Every field a table or plot reads is checked: type, finite, in range
(the bounds and fields `edgebench.logs.schema` declares), so that whatever is kept renders in every format. This runs for every line
of a 10^5-case comparison, so the checks are inline and unrolled, and the helpers run only on bad
input. (Checking whole groups of alike lines
a field at a time was tried: slower, as each pass over the rows misses the cache again.)
"""
from __future__ import annotations

import re
from operator import itemgetter
from typing import Any, Iterable

from edgebench.choices import FAMILIES
from edgebench.logs.schema import (CASE, CASE_DEFAULTS, CASE_STATUSES, ENERGY, KEY_FIELDS,
                                   MEM, STATS, case_key, work_ok)
from edgebench.logs.values import brief

_DEFAULTS = tuple(CASE_DEFAULTS.items())
# Every bound below is read from the schema's declarations.
_CTX_HI, _GEN_HI = CASE["ctx"].hi, CASE["gen"].hi
_BATCH_LO, _BATCH_HI = CASE["batch"].lo, CASE["batch"].hi
_MED_LO, _MS_HI = STATS["median"].lo, STATS["median"].hi
_N_LO, _N_HI = STATS["n"].lo, STATS["n"].hi
_BYTES_HI = MEM["peak_allocated_bytes"].hi
_J_HI = ENERGY["prefill_j"].hi
_KNOWN_CASE_KEYS = frozenset(CASE)
_WORK_WHAT = CASE["work"].what
# A known quantity (stem) in some unit: prefill_us, tpot_s, peak_allocated_mb, decode_mj_per_token.
_UNIT_RE = re.compile(r"(.+?)_(s|sec|seconds|us|ns|ms|j|mj|kj|wh|mwh|b|bytes|kb|mb|gb|kib|mib|gib)"
                      r"(_per_token)?")


def _stems(fields: dict) -> dict[str, str]:
    return {f.stem: k for k, f in fields.items() if f.stem}


_TOP_UNITS, _MEM_UNITS, _ENERGY_UNITS = _stems(CASE), _stems(MEM), _stems(ENERGY)
_MEM_ORDER = tuple(k for k, f in MEM.items() if f.checked)  # the row's mem columns
_ENERGY_ORDER = tuple(k for k, f in ENERGY.items() if f.checked and f.type is float)
_MEM_FIELDS = frozenset(MEM)
_ENERGY_FIELDS = frozenset(_ENERGY_ORDER)
_ENERGY_KEYS = frozenset(ENERGY)
_NUM = (int, float)
_STATS = itemgetter("median", "p10", "p90", "stdev", "n")


def case_row(reader: Any, n: int, obj: dict[str, Any]) -> bool:
    """Check one case line and turn it into a row (appended to `reader.cases`); False when the
    line cannot be used. Each problem is reported to `reader` (`problem(line, reason, skipped)`)."""
    # The hot path of a 100k-case compare: inline type checks (a parsed str/int is exactly
    # that type), unrolled field by field; the helpers run only on bad input.
    get = obj.get
    run, model, ctx, status, family = get("run"), get("model"), get("ctx"), get("status"), \
        get("family")
    if not (type(run) is str and run and type(model) is str and model and type(ctx) is int
            and 0 <= ctx <= _CTX_HI and status in CASE_STATUSES
            and (family is None or family in FAMILIES)):
        why = _case_error(obj)
        if why:
            reader.problem(n, why)
            return False
    if not _KNOWN_CASE_KEYS.issuperset(obj):
        _units(reader, n, obj.keys() - _KNOWN_CASE_KEYS, "", _TOP_UNITS)
    mem, energy, raw = get("mem"), get("energy"), get("raw")
    pre, tpot = get("prefill_ms"), get("tpot_ms")
    if pre is not None and not (type(pre) is dict and _stats_ok(pre)):
        pre = _bad_stats(reader, n, "prefill_ms", pre)
    if tpot is not None and not (type(tpot) is dict and _stats_ok(tpot)):
        tpot = _bad_stats(reader, n, "tpot_ms", tpot)
    # The parsed line becomes the row (no copy); the sub-objects it was read from go.
    row = obj
    for k, v in _DEFAULTS:  # compact lines leave out fields holding their schema default
        if k not in row:
            row[k] = v
    dev = get("device")
    row["device_name"] = dev if type(dev) is str else None
    row["source"], row["file"], row["device"], row["host"] = "edgebench", reader.name, None, None
    row["prefill_ms"], row["tpot_ms"] = pre, tpot
    row["prefill_raw_ms"] = row["tpot_raw_ms"] = None
    if type(family) is not str:
        row["family"] = None
    # Text fields: absent or null is None; another type is reported and read as None.
    for name in ("backend", "dtype", "decode_mode", "logits", "attn", "reason"):
        if type(v := get(name)) is not str:
            row[name] = v if v is None else _ignored(reader, n, name, "a string", v)
    if dev is not None and type(dev) is not str:
        _ignored(reader, n, "device", "a string", dev)
    keyed = type(get("key")) is str  # compact lines leave the key out: a hash of the fields
    complete = keyed or all(f in obj for f in KEY_FIELDS)  # (before gen is filled in)
    gen, batch = get("gen"), get("batch")
    if not (type(gen) is int and 0 <= gen <= _GEN_HI):
        row["gen"] = _ignored(reader, n, "gen", f"a token count from 0 to {_GEN_HI:,}", gen)
    if not (type(batch) is int and _BATCH_LO <= batch <= _BATCH_HI):
        row["batch"] = _ignored(reader, n, "batch", f"an integer from {_BATCH_LO} to {_BATCH_HI:,}", batch)
    if not keyed:
        row["key"] = case_key(obj, str(row["device_name"])) if complete else f"{model}|ctx={ctx}"
    # Flags: only a literal true counts; runs: absent (every v1 line) is one run per point.
    row["host_bound"] = get("host_bound") is True
    row["unstable"] = get("unstable") is True
    runs = get("runs")
    row["runs"] = runs if type(runs) is int and 1 <= runs <= _N_HI else 1
    if type(get("kernels")) is not dict:
        row["kernels"] = None
    if type(get("cold_ms")) is not dict:
        row["cold_ms"] = None
    work = get("work")  # the floors divide by it: a bad one is reported and not used
    row["work"] = work if work is None or work_ok(work) else _ignored(reader, n, "work", _WORK_WHAT, work)
    del row["v"], row["type"]
    if type(mem) is dict:
        del row["mem"]
        a, r, p = mem.get("peak_allocated_bytes"), mem.get("peak_reserved_bytes"), \
            mem.get("predicted_bytes")
        if a is None and row["decode_mode"] is not None:  # a v2 decode line: its own peak
            a = mem.get("decode_peak_bytes")
        if (a is None or type(a) in _NUM and 0 <= a <= _BYTES_HI) \
                and (r is None or type(r) in _NUM and 0 <= r <= _BYTES_HI) \
                and (p is None or type(p) in _NUM and 0 <= p <= _BYTES_HI):
            row["peak_allocated_bytes"], row["peak_reserved_bytes"] = a, r
            row["predicted_bytes"] = p
        else:
            _numbers(reader, n, row, mem, "mem.", _MEM_ORDER, _BYTES_HI)
    else:
        row.pop("mem", None)
        row["peak_allocated_bytes"] = row["peak_reserved_bytes"] = row["predicted_bytes"] = None
    if type(energy) is dict:
        del row["energy"]
        pj, dj, why = energy.get("prefill_j"), energy.get("decode_j_per_token"), \
            energy.get("energy_why")
        row["energy_why"] = why if type(why) is str else None
        if (pj is None or type(pj) in _NUM and 0 <= pj <= _J_HI) \
                and (dj is None or type(dj) in _NUM and 0 <= dj <= _J_HI):
            row["prefill_j"], row["decode_j_per_token"] = pj, dj
        else:
            _numbers(reader, n, row, energy, "energy.", _ENERGY_ORDER, _J_HI)
    else:
        row.pop("energy", None)
        row["prefill_j"] = row["decode_j_per_token"] = row["energy_why"] = None
    if type(mem) is dict and not _MEM_FIELDS.issuperset(mem):
        _units(reader, n, mem.keys() - _MEM_FIELDS, "mem.", _MEM_UNITS)
    if type(energy) is dict and not _ENERGY_KEYS.issuperset(energy):
        _units(reader, n, energy.keys() - _ENERGY_KEYS, "energy.", _ENERGY_UNITS)
    if raw is not None:
        del row["raw"]
        if type(raw) is dict:
            row["prefill_raw_ms"] = _samples(reader, n, "prefill_ms", raw.get("prefill_ms"))
            row["tpot_raw_ms"] = _samples(reader, n, "tpot_ms", raw.get("tpot_ms"))
        else:
            _ignored(reader, n, "raw", "an object of sample lists", raw)
    elif "raw" in row:
        del row["raw"]
    reader.cases.append(row)
    return True


def _stats_ok(d: dict[str, Any]) -> bool:
    """A Stats object the tables can use: a positive median and, where present, a spread and a
    sample count in range."""
    try:
        m, lo, hi, sd, k = _STATS(d)
    except KeyError:
        get = d.get
        m, lo, hi, sd, k = get("median"), get("p10"), get("p90"), get("stdev"), get("n")
    return (type(m) in _NUM and _MED_LO <= m <= _MS_HI
            and (type(k) is int and _N_LO <= k <= _N_HI or k is None)
            and (type(lo) in _NUM and 0 <= lo <= _MS_HI or lo is None)
            and (type(hi) in _NUM and 0 <= hi <= _MS_HI or hi is None)
            and (type(sd) in _NUM and 0 <= sd <= _MS_HI or sd is None))


def _ignored(reader: Any, n: int, key: str, what: str, value: Any) -> None:
    """Report a field that is present but unusable (None, absent: nothing said); reads as None."""
    if value is not None:
        reader.problem(n, f"{key!r} must be {what}, got {brief(value)}: field ignored, rest of "
                          "the line used", False)


def _numbers(reader: Any, n: int, row: dict[str, Any], d: dict[str, Any], prefix: str,
             fields: tuple[str, ...], top: float) -> None:
    """Numeric fields of mem / energy into the row; a value that is not a number from 0 to `top`
    is reported and left out."""
    for f in fields:
        v = d.get(f)
        if v is not None and not (type(v) in _NUM and 0 <= v <= top):
            reader.problem(n, f"'{prefix}{f}' must be a number from 0 to {top:g}, got "
                              f"{brief(v)}: field ignored", False)
            v = None
        row[f] = v

def _units(reader: Any, n: int, extra: Iterable[str], prefix: str, known: dict[str, str]) -> None:
    """Report a known quantity written in another unit (prefill_us, mem.peak_allocated_mb)."""
    for k in sorted(extra):
        m = _UNIT_RE.fullmatch(k)
        if m and (m.group(1) + (m.group(3) or "")) in known:
            want = known[m.group(1) + (m.group(3) or "")]
            reader.problem(n, f"unknown unit in field '{prefix}{k}': the schema has "
                            f"'{prefix}{want}'; field ignored, rest of the line used", False)

def _bad_stats(reader: Any, n: int, key: str, value: Any) -> None:
    reader.problem(n, f"{key!r} must be a Stats object with a numeric 'median' in ms (from "
                      f"{_MED_LO:g} to {_MS_HI:g}; p10, p90, stdev from 0 to {_MS_HI:g}, n a "
                      f"positive integer, each where present), got {brief(value)}: field "
                      "ignored, rest used", False)


def _case_error(obj: dict[str, Any]) -> str | None:
    """Why a case line cannot be used (None when it can)."""
    run, model, ctx, status = obj.get("run"), obj.get("model"), obj.get("ctx"), obj.get("status")
    if not isinstance(run, str) or not run:
        return "case without a 'run' id string"
    if not isinstance(model, str) or not model:
        return "case without a 'model' string"
    if not _is_int(ctx) or ctx < 0:
        return f"'ctx' must be a non-negative integer token count, got {brief(ctx)}"
    if ctx > _CTX_HI:
        return f"'ctx' {ctx} is past the largest token count read ({_CTX_HI:,})"
    if status not in CASE_STATUSES:
        return f"status {brief(status)} is not one of {', '.join(CASE_STATUSES)}"
    if obj.get("family") is not None and obj["family"] not in FAMILIES:
        return f"family {brief(obj['family'])} is not one of {', '.join(FAMILIES)}"
    return None


def _samples(reader: Any, n: int, key: str, x: Any) -> list[float] | None:
    """Raw samples in ms (each from MIN_MS to MAX_MS), or None (a bad list reported)."""
    if type(x) is list and x and all(type(s) in _NUM and _MED_LO <= s <= _MS_HI for s in x):
        return x
    if x is not None and x != []:
        _ignored(reader, n, f"raw.{key}", f"a list of times in ms from {_MED_LO:g} to {_MS_HI:g}",
                 x)
    return None


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)

