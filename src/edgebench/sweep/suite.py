"""Suites of several grids and max-context searches: one `run` for every measurement a study needs.

Besides its `[sweep]` table, a spec file (or a shipped suite) may hold:
- `[[grid]]` tables, each one grid of the sweep: the swept lists it sets (`GRID_KEYS`) replace those
  of `[sweep]` for that grid; `name` labels it; `profile = "ops"` profiles its cases' operators as
  `run --profile ops` does. The run-wide settings (reps, warmup, timeout_s, output, device,
  memory_budget, raw, strict_ctx, max_cases) stay in `[sweep]` and hold for every grid. Two grids
  can then measure two methods (e.g. one model family through another backend and dtype), which one
  cartesian product cannot.
- `[[maxctx]]` tables (`MAXCTX_KEYS`), each the searches of one `edgebench maxctx` invocation:
  `models`, `logits` (a list), `backend`, `dtype`, `memory_budget`, `resolution`, `limit`, `gen`,
  `timeout_s` (default: `[sweep]`'s, else the maxctx command's), `name`. `run` makes them after
  the grids, into the same log.
A file with either becomes a `Suite`: a `Spec` whose `plan()` is the grids' cases in grid order (a
case two grids share, once) and whose `models` are theirs, so everything that plans or runs a `Spec`
plans or runs a suite's grids. What only a suite has:
- `groups()`: the grids as runs of the executor, one per profile setting (each a `Suite` of those
  grids, restricted to the cases of `only`), so a run profiles only the grids that ask for it;
- `search_units()` / `searches_for(units)`: the searches as (table, model, logits mode) units, which
  `--shard i/N` divides round-robin like cases, and the tables they fill;
- `MaxctxSearch.options(device_total_bytes, header)`: the `MaxctxOptions` the maxctx planner takes.
  A budget above the device's memory becomes the device's memory (a suite written for an 8 GiB
  board runs on a 7.4 GiB one), and says so;
- `with_overrides(values)`: command-line flags over a suite. `-m` keeps only the named models in every
  grid and search (a model in none of them is an error listing the suite's); the other swept flags
  replace that list in every grid; `--memory-budget` and `--timeout` hold for the searches too.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from edgebench.choices import BACKENDS, LOGITS_MODES
from edgebench.errors import UserError
from edgebench.sweep.spec import Case, Point, Spec, check_timeout, group_points
from edgebench.sweep.units import format_bytes, parse_count, parse_size

GRID_KEYS = ("models", "backends", "dtypes", "ctx", "gen", "batch", "decode_modes", "logits", "attn")
PROFILES = ("ops",)
MAXCTX_KEYS = ("name", "models", "logits", "backend", "dtype", "memory_budget", "resolution", "limit",
               "gen", "timeout_s")
MAXCTX_TIMEOUT_S = 900.0  # a probe's timeout when neither the table nor [sweep] sets one (as `maxctx`)


@dataclass
class Grid:
    """One grid of a suite: its name, its full spec (the suite's settings with the grid's lists) and
    whether its cases are operator-profiled."""
    name: str
    spec: Spec
    profile: str | None = None


@dataclass
class MaxctxSearch:
    """The searches of one `[[maxctx]]` table: every model x logits mode, one backend and dtype."""
    name: str
    models: list[str]
    logits: list[str]
    backend: str = "hf"
    dtype: str = "auto"
    memory_budget_bytes: int | None = None
    resolution: int = 4096
    limit: int | None = None
    gen: int = 0
    timeout_s: float = MAXCTX_TIMEOUT_S

    def __post_init__(self) -> None:
        probe = Spec(models=self.models, backends=self.backend, dtypes=self.dtype, logits=self.logits,
                     gen=self.gen)  # the same checks and messages as a sweep's lists
        self.models, self.logits = probe.models, probe.logits
        self.backend, self.dtype = probe.backends[0], probe.dtypes[0]
        if len(probe.backends) != 1 or len(probe.dtypes) != 1:
            raise UserError(f"maxctx table {self.name!r}: one backend and one dtype per table "
                            "(write a second [[maxctx]] table for another)")
        if not self.models:
            raise UserError(f"maxctx table {self.name!r} has no models; list them in models = [...]")
        self.gen = probe.gen[0]
        self.resolution = parse_count(self.resolution)
        if self.resolution < 1:
            raise UserError(f"maxctx table {self.name!r}: resolution must be at least 1 token")
        if self.limit is not None:
            self.limit = parse_count(self.limit)
            if self.limit < self.resolution:
                raise UserError(f"maxctx table {self.name!r}: limit {self.limit} is below its "
                                f"resolution {self.resolution}; raise limit or lower resolution")
        if self.memory_budget_bytes is not None:
            self.memory_budget_bytes = parse_size(self.memory_budget_bytes)
        self.timeout_s = check_timeout(self.timeout_s, f"timeout_s of maxctx table {self.name!r}")

    def options(self, device: str = "auto", device_total_bytes: int | None = None,
                header: dict[str, Any] | None = None, models: list[str] | None = None,
                modes: list[str] | None = None):
        """The `MaxctxOptions` of these searches (or of the `models` x `modes` given), on `device`.
        A budget above `device_total_bytes` becomes the whole device (the note is in
        `budget_note`), and the records name that budget."""
        from edgebench.execution.maxctx_planner import MaxctxOptions
        budget = self.memory_budget_bytes
        if budget and device_total_bytes and budget > device_total_bytes:
            budget = device_total_bytes
        return MaxctxOptions(models=list(models or self.models), modes=list(modes or self.logits),
                             resolution=self.resolution, backend=self.backend, dtype=self.dtype,
                             gen=self.gen, limit=None if self.limit is None else str(self.limit),
                             budget=budget, device=device, timeout_s=self.timeout_s,
                             header_spec={"maxctx": self.describe(), **(header or {})})

    def budget_note(self, device_total_bytes: int | None) -> str | None:
        budget = self.memory_budget_bytes
        if budget and device_total_bytes and budget > device_total_bytes:
            return (f"maxctx table {self.name!r}: its {format_bytes(budget)} budget exceeds this "
                    f"device's {format_bytes(device_total_bytes)}; searching the whole device instead")
        return None

    def describe(self) -> dict[str, Any]:
        """The table as a run header records it (the keys `edgebench maxctx` records)."""
        return {"name": self.name, "models": self.models, "logits": ",".join(self.logits),
                "backend": self.backend, "dtype": self.dtype, "memory_budget": self.memory_budget_bytes,
                "resolution": self.resolution, "limit": self.limit, "gen": self.gen,
                "timeout": self.timeout_s}


@dataclass
class Suite(Spec):
    """A spec of several grids and max-context searches (see the module doc). Its own list fields
    are the defaults the grids start from; `only`, when set, keeps just those cases (a shard)."""
    grids: list[Grid] = field(default_factory=list)
    searches: list[MaxctxSearch] = field(default_factory=list)
    only: frozenset | None = None

    def __post_init__(self) -> None:
        base_models = self.models
        self.models = list(dict.fromkeys(m for g in self.grids for m in g.spec.models)) or base_models
        super().__post_init__()

    def plan(self) -> list[Case]:
        """The grids' cases in grid order, each case once; counted before they are built and refused
        above `max_cases`, as a `Spec`'s are."""
        counts = [_count(g.spec) for g in self.grids]
        if sum(counts) > self.max_cases:
            sizes = ", ".join(f"{g.name}: {n:,}" for g, n in zip(self.grids, counts))
            raise UserError(f"this suite plans up to {sum(counts):,} cases ({sizes}), more than the "
                            f"limit of {self.max_cases:,}; narrow it (-m, -c) or pass --max-cases "
                            f"{sum(counts)} to run them all")
        cases: dict[Case, None] = {}
        for g, n in zip(self.grids, counts):
            cases.update(dict.fromkeys(dataclasses.replace(g.spec, max_cases=max(n, 1)).plan()))
        out = list(cases)
        return out if self.only is None else [c for c in out if c in self.only]

    def points(self) -> list[Point]:
        """The points of the grids' cases (a point two grids share, once, with every decode mode
        either asks for)."""
        return group_points(self.plan())

    def to_dict(self) -> dict[str, Any]:
        """The run-wide settings, each grid's lists and each search, as a run header records them."""
        out = _settings(self)
        out["grids"] = [{"name": g.name, "profile": g.profile,
                         **{k: getattr(g.spec, k) for k in GRID_KEYS}} for g in self.grids]
        out["searches"] = [s.describe() for s in self.searches]
        return out

    def groups(self, only: list[Case] | None = None) -> list[tuple[str | None, "Suite"]]:
        """(profile, the suite of the grids with that profile, restricted to `only`), one per
        profile setting present, unprofiled first; groups left without cases are dropped."""
        keep = frozenset(self.plan() if only is None else only)
        out = []
        for profile in (None, *PROFILES):
            grids = [g for g in self.grids if g.profile == profile]
            if not grids:
                continue
            sub = dataclasses.replace(self, grids=grids, searches=[], models=[], only=None)
            mine = frozenset(c for c in sub.plan() if c in keep)
            if mine:
                out.append((profile, dataclasses.replace(sub, models=[], only=mine)))
        return out

    def search_units(self) -> list[tuple[int, str, str]]:
        """Every search as (table index, model, logits mode), in table order."""
        return [(i, m, mode) for i, s in enumerate(self.searches) for m in s.models for mode in s.logits]

    def searches_for(self, units: list[tuple[int, str, str]]) -> list[tuple[MaxctxSearch, list[str], list[str]]]:
        """(table, its models, its modes) for the units given, per table; a table whose units are
        not a whole models x modes product is split by mode."""
        out = []
        for i, s in enumerate(self.searches):
            mine = [(m, mode) for j, m, mode in units if j == i]
            for mode in s.logits:
                models = [m for m, md in mine if md == mode]
                if models:
                    out.append((s, models, [mode]))
        return out

    def with_overrides(self, values: dict[str, Any]) -> "Suite":
        """The suite with command-line values applied (see the module doc)."""
        values = dict(values)
        keep = values.pop("models", None)
        grid_lists = {k: values.pop(k) for k in GRID_KEYS if k in values}
        base = {**_settings(self), **values}
        grids, searches = list(self.grids), list(self.searches)
        if keep is not None:
            wanted = Spec(models=keep).models
            known = list(dict.fromkeys([*self.models, *(m for s in self.searches for m in s.models)]))
            missing = [m for m in wanted if m not in known]
            if missing:
                raise UserError(f"-m {', '.join(missing)}: not in this suite, which measures "
                                f"{', '.join(known)}; name some of those, or run without --suite")
            grids = [dataclasses.replace(g, spec=dataclasses.replace(
                g.spec, models=[m for m in g.spec.models if m in wanted]))
                for g in grids if any(m in wanted for m in g.spec.models)]
            searches = [dataclasses.replace(s, models=[m for m in s.models if m in wanted])
                        for s in searches if any(m in wanted for m in s.models)]
        settings = {k: v for k, v in base.items() if k not in GRID_KEYS}
        grids = [dataclasses.replace(g, spec=Spec(**{**g.spec.to_dict(), **settings, **grid_lists}))
                 for g in grids]
        search_over = {}
        if "memory_budget_bytes" in values:
            search_over["memory_budget_bytes"] = values["memory_budget_bytes"]
        if values.get("timeout_s") is not None:
            search_over["timeout_s"] = values["timeout_s"]
        searches = [dataclasses.replace(s, **search_over) for s in searches]
        return Suite(**{**base, **grid_lists, "models": []}, grids=grids, searches=searches)


def _settings(suite: Suite) -> dict[str, Any]:
    """The `Spec` fields of a suite (its run-wide settings and default lists)."""
    return {f.name: getattr(suite, f.name) for f in dataclasses.fields(Spec)}


def _count(spec: Spec) -> int:
    return spec.count()[0]


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UserError(f"{where} must be a table; write [[{where.split()[0]}]] followed by key = value "
                        "lines")
    return value


def parse_suite(doc: dict[str, Any], base: dict[str, Any], where: str, make_spec) -> Suite:
    """A `Suite` from a parsed spec file whose `[sweep]` table is `base` (`make_spec(table, where)`
    builds and checks a `Spec` from a `[sweep]`-style mapping)."""
    raw_grids, raw_searches = doc.get("grid", []), doc.get("maxctx", [])
    for name, value in (("grid", raw_grids), ("maxctx", raw_searches)):
        if not isinstance(value, list):
            raise UserError(f"{name} in {where} must be an array of tables: write [[{name}]] (double "
                            "brackets) before each one")
    base_spec = make_spec({k: v for k, v in base.items()}, f"[sweep] of {where}")
    settings = {k: v for k, v in base_spec.to_dict().items() if k not in GRID_KEYS}
    grids = []
    for i, raw in enumerate(raw_grids, 1):
        raw = dict(_table(raw, f"grid {i} of {where}"))
        name = str(raw.pop("name", f"grid {i}"))
        here = f"[[grid]] {name!r} of {where}"
        profile = raw.pop("profile", None)
        if profile is not None and profile not in PROFILES:
            raise UserError(f"{here}: profile must be one of {', '.join(PROFILES)}, got {profile!r}")
        extra = sorted(set(raw) - set(GRID_KEYS))
        if extra:
            raise UserError(f"unknown key(s) {', '.join(extra)} in {here}; a grid sets name, profile "
                            f"and the swept lists {', '.join(GRID_KEYS)} (the run-wide settings stay "
                            "in [sweep])")
        lists = {k: getattr(base_spec, k) for k in GRID_KEYS}
        lists.update(raw)
        spec = make_spec({**_file_keys(settings), **lists}, here)
        if not spec.models:
            raise UserError(f"{here} has no models; list them in models = [...] (in the grid or in [sweep])")
        grids.append(Grid(name, spec, profile))
    searches = []
    for i, raw in enumerate(raw_searches, 1):
        raw = dict(_table(raw, f"maxctx {i} of {where}"))
        name = str(raw.pop("name", f"maxctx {i}"))
        extra = sorted(set(raw) - set(MAXCTX_KEYS))
        if extra:
            raise UserError(f"unknown key(s) {', '.join(extra)} in [[maxctx]] {name!r} of {where}; "
                            f"valid keys: {', '.join(MAXCTX_KEYS)}")
        raw.setdefault("timeout_s", base_spec.timeout_s or MAXCTX_TIMEOUT_S)
        raw.setdefault("memory_budget", base_spec.memory_budget_bytes)
        raw.setdefault("logits", list(LOGITS_MODES[:1]))
        raw.setdefault("backend", BACKENDS[0])
        raw["memory_budget_bytes"] = raw.pop("memory_budget")
        try:
            searches.append(MaxctxSearch(name=name, **raw))
        except (TypeError, UserError) as exc:
            raise UserError(f"[[maxctx]] {name!r} of {where}: {exc}") from None
    return Suite(**{**base_spec.to_dict(), "models": []}, grids=grids, searches=searches)


def _file_keys(values: dict[str, Any]) -> dict[str, Any]:
    """Spec field values as a `[sweep]` table spells them (the budget is `memory_budget`)."""
    out = dict(values)
    if "memory_budget_bytes" in out:
        out["memory_budget"] = out.pop("memory_budget_bytes")
    return out

