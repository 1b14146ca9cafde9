"""The sweep spec: what to measure, from CLI flags and TOML files, validated and planned (sharded in `edgebench.sweep.shards`).

Swept numbers take llama-bench style lists and ranges (grammar in `RANGE_GRAMMAR`, counts as in
`edgebench.sweep.units.parse_count`): `"1k,4k,16k"`, `"1k-64k*2"` (multiply), `"1k-8k+1k"` (add), mixed
`"1k,4k-16k*2"`. A range includes its end when a step lands on it and never passes it.

`Spec` holds one sweep; every field validates in `__post_init__` (strings are parsed there, so
`Spec(models="a,b", ctx="1k-4k*2")` works). `Spec.points()` is the cartesian product as `Point`s in a fixed
order: model (as given), backend, dtype, logits, attn (as given), then batch, gen and ctx ascending,
so contexts grow within a model and a runner can skip longer ones after an OOM; each point decodes in
every decode mode after one prefill. `Spec.plan()` gives their log lines (`Case`s): per point, its
prefill line, then one line per decode mode.
A list holds at most `LIST_MAX` values (a range is counted before it is expanded) and a plan at most
`max_cases` cases (`MAX_CASES` unless raised; counted before it is built), so a `+1` typed for `*2`
is refused with the count instead of planning a billion cases. A timeout is a number of seconds in
`TIMEOUT_RANGE_S` (`check_number`).

Model names without a "/" are preset names and are lowercased; names with a "/" (hub ids, local
directories) are kept as given. Whether a model exists is checked by the runner against the catalog.
Spec files, suites and command-line flags become a `Spec` in `edgebench.sweep.specfile` (which imports
this module, never the other way round).
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from edgebench.choices import ATTN_KINDS, AUTO_DTYPE, BACKENDS, DECODE_MODES, LOGITS_MODES
from edgebench.choices import DTYPES as LOADER_DTYPES
from edgebench.errors import UserError
from edgebench.sweep.units import parse_count, parse_size

RANGE_GRAMMAR = ("LIST := ITEM[,ITEM...]; ITEM := N | FIRST-LAST*FACTOR | FIRST-LAST+STEP, "
                 "where N, FIRST, LAST, STEP are counts like 512, 4k, 1.5k and FACTOR an integer >= 2 "
                 "(e.g. 1k,4k,16k or 1k-64k*2 or 1k-8k+1k or 1k,4k-16k*2)")
DTYPES = (AUTO_DTYPE, *LOADER_DTYPES)  # a sweep may also say "auto" (resolved per device)
DTYPE_ALIASES = {"fp32": "float32", "float": "float32", "fp16": "float16", "half": "float16",
                 "bf16": "bfloat16"}
LIST_MAX = 1_000_000  # values in one swept list
MAX_CASES = 10_000  # cases in one plan unless max_cases raises it
RUNS_RANGE = (1, 100)  # --runs: worker processes per point
TIMEOUT_RANGE_S = (1.0, 7 * 24 * 3600.0)
_RANGE_RE = re.compile(r"([^-*+]+)-([^-*+]+)([*+])(.+)")
_DEVICE_RE = re.compile(r"auto|cpu|cuda(:\d+)?")


def parse_list(text: str | int | list, parse: Callable[[str], int] = parse_count) -> list[int]:
    """Numbers from a list/range string (see RANGE_GRAMMAR), an int, or a list of those; duplicates
    dropped, first occurrence kept."""
    pieces = text if isinstance(text, list) else [text]
    values: list[int] = []
    for piece in pieces:
        if isinstance(piece, int) and not isinstance(piece, bool):
            values.append(parse(piece))
            continue
        for item in str(piece).split(","):
            values.extend(_parse_item(item.strip(), str(piece), parse, LIST_MAX - len(values)))
    return list(dict.fromkeys(values))


def check_number(value: Any, name: str, low: float, high: float, unit: str, note: str = "") -> float:
    """`value` as a float when it is a finite number from `low` to `high` (in `unit`)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise UserError(f"{name} must be a positive number of {unit} from {low:g} to {high:g}{note}, "
                        f"got {value!r}")
    return float(value)


def check_timeout(value: Any, name: str) -> float:
    """A per-case timeout in seconds: finite, from 1 s to 7 days."""
    return check_number(value, name, *TIMEOUT_RANGE_S, unit="seconds", note=" (7 days)")


def _parse_item(item: str, whole: str, parse: Callable[[str], int], room: int) -> list[int]:
    def bad(why: str) -> UserError:
        return UserError(f"bad list item {item!r} in {whole!r}: {why}; grammar: {RANGE_GRAMMAR}")

    if not item:
        raise bad("empty item")
    if not any(ch in item for ch in "-*+"):
        try:
            return [parse(item)]
        except UserError as exc:
            raise bad(str(exc)) from None
    match = _RANGE_RE.fullmatch(item)
    if not match:
        raise bad("a range needs FIRST-LAST*FACTOR or FIRST-LAST+STEP")
    try:
        first, last = parse(match.group(1).strip()), parse(match.group(2).strip())
    except UserError as exc:
        raise bad(str(exc)) from None
    op, operand = match.group(3), match.group(4).strip()
    if first > last:
        raise bad(f"FIRST ({first}) is larger than LAST ({last})")
    if op == "*":
        if not operand.isdigit() or int(operand) < 2:
            raise bad(f"FACTOR {operand!r} must be an integer >= 2")
        if first == 0:
            raise bad("a multiplied range cannot start at 0")
        factor, values, value = int(operand), [], first
        while value <= last:
            values.append(value)
            value *= factor
        return values
    try:
        step = parse(operand)
    except UserError as exc:
        raise bad(str(exc)) from None
    if step < 1:
        raise bad("STEP must be at least 1")
    count = (last - first) // step + 1
    if count > room:
        raise bad(f"it counts {count:,} values, more than the {LIST_MAX:,} a list may hold "
                  "(+STEP adds, *FACTOR multiplies)")
    return list(range(first, last + 1, step))


def _names(value: str | list, what: str) -> list[str]:
    items = value if isinstance(value, list) else str(value).split(",")
    names = [str(v).strip() for v in items]
    if not names or any(not n for n in names):
        raise UserError(f"empty name in {what} {value!r}; give a comma-separated list")
    return list(dict.fromkeys(names))


def _choices(value: str | list, what: str, allowed: tuple[str, ...],
             aliases: dict[str, str] | None = None) -> list[str]:
    names = [(aliases or {}).get(n.lower(), n.lower()) for n in _names(value, what)]
    for name in names:
        if name not in allowed:
            raise UserError(f"unknown {what} {name!r}; choose from {', '.join(allowed)}")
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Shape:
    """A model at one shape: what a point and each of its log lines share (`Point`, `Case`)."""
    model: str
    backend: str
    dtype: str
    ctx: int
    gen: int
    batch: int
    logits: str
    attn: str

    def series(self) -> tuple:
        """The shape without its context: contexts ascend within a series."""
        return (self.model, self.backend, self.dtype, self.logits, self.attn, self.batch, self.gen)

    def point_fields(self) -> tuple:
        """The shape's fields, in order: what the lines of one point share."""
        return tuple(getattr(self, f.name) for f in dataclasses.fields(Shape))

    def label(self, mode: str | None = None) -> str:
        return (f"{self.model}|{self.backend}|{self.dtype}|ctx={self.ctx}|gen={self.gen}|"
                f"b={self.batch}|{mode + '|' if mode else ''}{self.logits}|{self.attn}")


@dataclass(frozen=True)
class Point(Shape):
    """What one worker measures (`edgebench.measure.point_run`): a model at one shape, prefilled once,
    then decoded in each of `decode_modes` after that prefill (none: prefill and memory only)."""
    decode_modes: tuple[str, ...] = ()

    def cases(self) -> list["Case"]:
        """Its log lines, in order: the prefill (decode_mode None), then one per decode mode."""
        return [Case(*self.point_fields(), decode_mode=m) for m in (None, *self.decode_modes)]

    def label(self) -> str:
        return super().label()

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "decode_modes": list(self.decode_modes)}


@dataclass(frozen=True)
class Case(Shape):
    """One log line of a point: its prefill (`decode_mode` None) or one decode mode. `label()` names
    it for people (progress, plans, warnings); the record key that identifies it in logs and for
    resume is `edgebench.logs.schema.case_key`."""
    decode_mode: str | None = None

    def label(self) -> str:
        return super().label(self.decode_mode)  # a prefill line: its point's label

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def group_points(cases: list[Case]) -> list[Point]:
    """The points of a list of cases (in first-seen order), each with the decode modes its cases
    ask for (a point whose prefill line is not among them still gets measured: its prefill comes
    with every decode)."""
    modes: dict[tuple, list[str]] = {}
    for c in cases:
        got = modes.setdefault(c.point_fields(), [])
        if c.decode_mode is not None:
            got.append(c.decode_mode)
    return [Point(*k, decode_modes=tuple(v)) for k, v in modes.items()]


@dataclass
class Spec:
    """One sweep. Lists may be given as lists or as list/range strings; all are validated here."""
    models: list[str] = field(default_factory=list)
    backends: list[str] = field(default_factory=lambda: ["hf"])
    dtypes: list[str] = field(default_factory=lambda: ["bfloat16"])
    ctx: list[int] = field(default_factory=lambda: [4096])
    gen: list[int] = field(default_factory=lambda: [128])
    batch: list[int] = field(default_factory=lambda: [1])
    decode_modes: list[str] = field(default_factory=lambda: ["eager"])
    logits: list[str] = field(default_factory=lambda: ["last"])
    attn: list[str] = field(default_factory=lambda: ["sdpa"])
    reps: int = 5
    runs: int = 1  # worker processes per point (pyperf's processes): RUNS_RANGE
    warmup: int = 2
    raw: bool = False
    output: str | None = None
    device: str = "auto"
    memory_budget_bytes: int | None = None
    # Contexts past a model's trained length run by default (flagged `beyond_trained_ctx` in their
    # records); strict_ctx refuses them at planning instead.
    strict_ctx: bool = False
    timeout_s: float | None = None
    max_cases: int = MAX_CASES

    def __post_init__(self) -> None:
        self.models = [n if "/" in n else n.lower() for n in _names(self.models, "models")] \
            if self.models else []
        self.backends = _choices(self.backends, "backend", BACKENDS)
        self.dtypes = _choices(self.dtypes, "dtype", DTYPES, DTYPE_ALIASES)
        self.decode_modes = _choices(self.decode_modes, "decode mode", DECODE_MODES)
        self.logits = _choices(self.logits, "logits mode", LOGITS_MODES)
        self.attn = _choices(self.attn, "attention kind", ATTN_KINDS)
        for name, lowest in (("ctx", 1), ("gen", 0), ("batch", 1)):
            values = parse_list(getattr(self, name))
            if not values or min(values) < lowest:
                raise UserError(f"{name} values must be at least {lowest}, got {values}; "
                                f"fix the {name} list")
            setattr(self, name, values)
        for name, lowest in (("reps", 1), ("warmup", 0), ("max_cases", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise UserError(f"{name} must be an integer >= {lowest}, got {value!r}")
        lo, hi = RUNS_RANGE
        if isinstance(self.runs, bool) or not isinstance(self.runs, int) or not lo <= self.runs <= hi:
            raise UserError(f"runs must be an integer from {lo} to {hi} (worker processes per point; "
                            f"3 gives a between-run spread), got {self.runs!r}")
        for name in ("raw", "strict_ctx"):
            if not isinstance(getattr(self, name), bool):
                raise UserError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not isinstance(self.device, str) or not _DEVICE_RE.fullmatch(self.device):
            raise UserError(f"unknown device {self.device!r}; use auto, cpu, cuda or cuda:N")
        if self.memory_budget_bytes is not None:
            self.memory_budget_bytes = parse_size(self.memory_budget_bytes)
        if self.timeout_s is not None:
            self.timeout_s = check_timeout(self.timeout_s, "timeout_s")
        if self.output is not None:
            self.output = str(self.output)

    def plan(self) -> list[Case]:
        """Every case of the sweep, in the documented order; counted first and refused above
        `max_cases`."""
        if not self.models:
            raise UserError("no models to run; pass -m MODEL[,MODEL...] or a spec/suite with models")
        count, points, sizes = self.count()
        if count > self.max_cases:
            raise UserError(f"this sweep plans {count:,} cases ({points:,} points: {sizes}; a "
                            f"prefill line each, and one per decode mode), more than the limit of "
                            f"{self.max_cases:,}; a range stepping +1 where *2 was meant does this "
                            f"(1-4k+1 is 4,096 values, 1-4k*2 is 13): check the lists, or pass "
                            f"--max-cases {count} to run them all")
        return [c for p in self.points() for c in p.cases()]

    def count(self) -> tuple[int, int, str]:
        """(log lines, points, the lists that multiply into the points) of the plan, counted
        without building it: a point has a line for its prefill, and one per decode mode where it
        decodes (gen > 0 and last-token logits: see `points`)."""
        lists = {"models": self.models, "backends": self.backends, "dtypes": self.dtypes,
                 "logits modes": self.logits, "attention kinds": self.attn,
                 "batch sizes": self.batch, "gen lengths": self.gen, "contexts": self.ctx}
        points = math.prod(len(v) for v in lists.values())
        decoding = points // len(self.gen) // len(self.logits) * sum(g > 0 for g in self.gen) \
            * ("last" in self.logits)
        sizes = " x ".join(f"{len(v):,} {k}" for k, v in lists.items() if len(v) > 1)
        return points + decoding * len(self.decode_modes), points, sizes

    def points(self) -> list[Point]:
        """The points of the sweep in plan order; each decodes in every decode mode after its
        prefill, except where there is nothing to decode: gen 0, or full logits (decode after a
        full-logits prefill is the decode after a last-logits one; the point measures prefill
        and memory)."""
        combos = itertools.product(self.models, self.backends, self.dtypes, self.logits, self.attn,
                                   sorted(self.batch), sorted(self.gen), sorted(self.ctx))
        return [Point(model=m, backend=be, dtype=dt, ctx=c, gen=g, batch=b, logits=lg, attn=at,
                      decode_modes=tuple(self.decode_modes) if g > 0 and lg == "last" else ())
                for m, be, dt, lg, at, b, g, c in combos]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
