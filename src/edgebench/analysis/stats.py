"""Summary statistics and the spread of a ratio of medians.

`summarize(samples)` gives the Stats object the log schema uses (median, p10, p90, stdev, n): the
one summary, used by the measuring side (`edgebench.measure.point_run`, rounded) and the readers.
`ratio_ci(...)` gives the ratio of two medians (a / b) with a confidence interval:

- from raw samples: a percentile bootstrap (both samples resampled with replacement, the median of
  each resample taken, vectorised with numpy, seeded so a report is reproducible);
- from Stats objects only (logs written without --raw): a normal approximation on the log scale.
  Each median's standard error is taken as 1.2533 * sigma / sqrt(n) (the asymptotic standard error of
  a median of normal data), with sigma estimated from the p10-p90 spread ((p90 - p10) / 2.5631, the
  width of that range for a normal distribution) and from `stdev` when the percentiles are absent.
  Then var(log a/b) = (se_a / median_a)^2 + (se_b / median_b)^2. This assumes independent samples of
  roughly symmetric spread; decode token times are autocorrelated, so the interval is optimistic for
  TPOT and should be read as "at least this uncertain".

`unstable(samples)` says whether a sample's spread is too wide to trust (a robust form of pyperf's
rule); `aggregate_runs(stats)` combines the Stats of
runs in separate processes (`--runs`) so that the between-run spread is the one intervals use.
`is_significant(ci)` says whether the interval excludes 1 (None when no interval could be formed).
"""
from __future__ import annotations

import math
from operator import itemgetter
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from edgebench.logs.schema import HOST_BOUND_LAG_SHARE

_Z = {0.90: 1.6449, 0.95: 1.9600, 0.99: 2.5758}
_P10_P90_WIDTH_IN_SIGMA = 2.5631  # 2 * 1.28155
_MEDIAN_SE_FACTOR = 1.2533  # sqrt(pi / 2)
_NUM = (int, float)  # exact types: a bool is not a measurement


class RatioCI(NamedTuple):
    """Ratio of medians a / b and its interval; `method` is "bootstrap" or "normal-approx",
    or None when there was no spread to work from (then lo and hi are None). A NamedTuple because
    a 10^5-row comparison makes one per row and metric."""

    ratio: float
    lo: float | None
    hi: float | None
    method: str | None

    @property
    def within_spread(self) -> bool | None:
        """True when the interval includes 1: the difference is within the measurement spread."""
        sig = is_significant(self)
        return None if sig is None else not sig

    def as_dict(self) -> dict[str, Any]:
        return {"ratio": self.ratio, "ci_lo": self.lo, "ci_hi": self.hi, "method": self.method,
                "within_spread": self.within_spread}


def summarize(samples: Sequence[float | None], rounded: bool = False) -> dict[str, Any] | None:
    """The Stats object of a sample list (None samples dropped); None for no samples. With one
    sample the spread is undefined: `stdev` is None (not 0, which would claim no noise). With
    `rounded` (what the measuring side writes) the median keeps 5 significant digits, p10 and p90
    4, stdev 3: far below timing noise, and it keeps log lines short."""
    arr = np.asarray([s for s in samples if s is not None], dtype=float)
    if arr.size == 0:
        return None
    p10, med, p90 = (float(x) for x in np.percentile(arr, [10, 50, 90]))
    stdev = float(arr.std(ddof=1)) if arr.size > 1 else None
    if rounded:
        med, p10, p90 = round_sig(med, 5), round_sig(p10, 4), round_sig(p90, 4)
        stdev = round_sig(stdev, 3) if stdev is not None else None
    return {"median": med, "p10": p10, "p90": p90, "stdev": stdev, "n": int(arr.size)}


# A number that does not hold still: pyperf's `check` flags a standard deviation of 10% of the mean.
# Over timing samples one late sample (a page fault, a clock change) inflates the stdev past that
# while the number itself holds, so the rule here is the robust form of the same threshold: the
# p10-p90 spread at least 20% of the median (for normal samples p10-p90 is 2.56 sigma, so this is
# sigma >= 7.8% of the mean), on the samples of a run or, with --runs, on the run medians.
UNSTABLE_P10_P90_OF_MEDIAN = 0.20


def unstable(samples: Sequence[float]) -> bool | None:
    """The rule above on a sample list; None with fewer than two samples."""
    arr = np.asarray([s for s in samples if s is not None], dtype=float)
    if arr.size < 2:
        return None
    p10, med, p90 = np.percentile(arr, [10, 50, 90])
    if med <= 0:
        return None
    return bool(p90 - p10 >= UNSTABLE_P10_P90_OF_MEDIAN * med)


def host_bound(lag_ms: float | None, median_ms: float | None) -> bool | None:
    """The host-bound rule: the GPU finished less than HOST_BOUND_LAG_SHARE of the phase's median
    after the timed call returned (None without a lag: on the CPU there is no GPU to wait)."""
    if lag_ms is None:
        return None
    return bool(median_ms and lag_ms < HOST_BOUND_LAG_SHARE * median_ms)


def aggregate_runs(per_run: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The Stats of a phase measured in several worker processes (`--runs`): summarized over the
    per-run medians (so `n` counts runs and the spread, hence every interval and ratio built from
    it, is the between-run spread), with `run_medians` listing them and `samples` the samples
    they came from. One run: that run's Stats unchanged."""
    per_run = [s for s in per_run if s and type(s.get("median")) in _NUM]
    if not per_run:
        return None
    if len(per_run) == 1:
        return dict(per_run[0])
    medians = [float(s["median"]) for s in per_run]
    out = summarize(medians, rounded=True)
    out["run_medians"] = [round_sig(m, 5) for m in medians]
    out["samples"] = sum(int(s.get("n") or 0) for s in per_run)
    return out


def round_sig(x: float, digits: int = 5) -> float:
    """`x` rounded to `digits` significant digits (0, NaN and infinities as they are)."""
    x = float(x)
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, max(0, digits - 1 - int(math.floor(math.log10(abs(x))))))


def bootstrap_ratio_ci(a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95,
                       n_boot: int = 1000, seed: int = 0) -> RatioCI:
    """Percentile bootstrap of median(a) / median(b) from raw samples."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if xa.size == 0 or xb.size == 0:
        raise ValueError("bootstrap needs at least one sample on each side")
    ratio = float(np.median(xa) / np.median(xb))
    rng = np.random.default_rng(seed)
    med_a = np.median(xa[rng.integers(0, xa.size, size=(n_boot, xa.size))], axis=1)
    med_b = np.median(xb[rng.integers(0, xb.size, size=(n_boot, xb.size))], axis=1)
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(med_a / med_b, [tail, 1.0 - tail])
    return RatioCI(ratio, float(lo), float(hi), "bootstrap")


def median_and_rel_se(stats: Mapping[str, Any] | None) -> tuple[float | None, float | None]:
    """(median, relative standard error of the median) of a Stats object, as described above;
    median None when missing or not positive, rel_se None when the spread or n is unknown."""
    if not stats:
        return None, None
    med, n = stats.get("median"), stats.get("n")
    if type(med) not in _NUM or med <= 0:
        return None, None
    if type(n) is not int or n < 2:
        return float(med), None
    p10, p90 = stats.get("p10"), stats.get("p90")
    if type(p10) in _NUM and type(p90) in _NUM and p90 >= p10:
        sigma = (p90 - p10) / _P10_P90_WIDTH_IN_SIGMA
    elif type(stats.get("stdev")) in _NUM:
        sigma = float(stats["stdev"])
    else:
        return float(med), None
    return float(med), _MEDIAN_SE_FACTOR * sigma / math.sqrt(n) / med


def ratio_from_parts(med_a: float, se_a: float | None, med_b: float, se_b: float | None, *,
                     confidence: float = 0.95) -> RatioCI:
    """Ratio med_a / med_b with the log-normal interval from the two relative standard errors."""
    ratio = med_a / med_b
    if se_a is None or se_b is None:
        return RatioCI(ratio, None, None, None)
    z = _Z.get(confidence) or _z_of(confidence)
    half = z * math.sqrt(se_a * se_a + se_b * se_b)
    return RatioCI(ratio, ratio * math.exp(-half), ratio * math.exp(half), "normal-approx")


def stats_fields(stats: Sequence[Mapping[str, Any] | None]) -> list[tuple[Any, ...]] | None:
    """The (median, n, p10, p90, stdev) fields of a column of Stats objects, as five columns (None
    where absent); None when an object is neither a dict nor None. One pass over the objects, at
    C speed where every dict has all five keys: they lie scattered in memory (a cache miss each)."""
    if not set(map(type, stats)) <= _DICT_OR_NONE:
        return None
    try:
        rows = list(map(_STATS_KEYS, [_ALL_NONE if s is None else s for s in stats]))
    except KeyError:
        rows = [(s.get("median"), s.get("n"), s.get("p10"), s.get("p90"), s.get("stdev"))
                for s in (s or _ALL_NONE for s in stats)]
    return list(zip(*rows)) or [() for _ in range(5)]


def median_rel_se_columns(stats: Sequence[Mapping[str, Any] | None],
                          fields: list[tuple[Any, ...]] | None = None
                          ) -> tuple[np.ndarray, np.ndarray]:
    """`median_and_rel_se` over a column of Stats objects: (medians, rel_se) as float arrays, NaN
    for None. When every object is a dict (or None) whose fields are floats (n an int) or absent,
    numpy does it in the same operation order; otherwise each goes through `median_and_rel_se`.
    `fields`: `stats_fields(stats)` when the caller has it already."""
    size = len(stats)
    fields = fields if fields is not None else stats_fields(stats)
    arrays = []
    for i, f in enumerate(fields or ()):  # each field's types checked, then converted (None -> NaN)
        if not set(map(type, f)) <= (_INT_OR_NONE if i == 1 else _FLOAT_OR_NONE):
            break
        arrays.append(np.array(f, dtype=float))
    else:
        if fields is not None:
            m, n, p10, p90, sd = arrays
            with np.errstate(invalid="ignore", divide="ignore"):
                med_ok, n_ok, pq_ok = m > 0, n >= 2, p90 >= p10
                sigma = np.where(pq_ok, (p90 - p10) / _P10_P90_WIDTH_IN_SIGMA, sd)
                se = _MEDIAN_SE_FACTOR * sigma / np.sqrt(n) / m
            return np.where(med_ok, m, np.nan), np.where(med_ok & n_ok, se, np.nan)
    med, se = np.full(size, np.nan), np.full(size, np.nan)
    for i, s in enumerate(stats):
        a, e = median_and_rel_se(s)
        if a is not None:
            med[i] = a
            if e is not None:
                se[i] = e
    return med, se


_STATS_KEYS = itemgetter("median", "n", "p10", "p90", "stdev")
_ALL_NONE: dict[str, Any] = dict.fromkeys(("median", "n", "p10", "p90", "stdev"))
_DICT_OR_NONE = frozenset((dict, type(None)))
_INT_OR_NONE = frozenset((int, type(None)))
_FLOAT_OR_NONE = frozenset((float, type(None)))


def ratio_cis_from_parts(med_a: Sequence[float | None], se_a: Sequence[float | None],
                        med_b: Sequence[float | None], se_b: Sequence[float | None], *,
                        confidence: float = 0.95) -> list[RatioCI | None]:
    """`ratio_from_parts` over whole columns at once (numpy): None where a median is missing."""
    def arr(xs: Sequence[float | None]) -> np.ndarray:
        return np.array([np.nan if x is None else x for x in xs], dtype=float)

    return ratio_cis_from_arrays(arr(med_a), arr(se_a), arr(med_b), arr(se_b),
                                 confidence=confidence)


def ratio_cis_from_arrays(ma: np.ndarray, sa: np.ndarray, mb: np.ndarray, sb: np.ndarray, *,
                          confidence: float = 0.95) -> list[RatioCI | None]:
    """`ratio_cis_from_parts` on float arrays (NaN = missing)."""
    z = _Z.get(confidence) or _z_of(confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = ma / mb
        half = z * np.sqrt(sa * sa + sb * sb)
        lo, hi = ratio * np.exp(-half), ratio * np.exp(half)
    make = RatioCI._make
    return [None if r != r else make((r, None, None, None)) if h != h
            else make((r, lo_, hi_, "normal-approx"))
            for r, h, lo_, hi_ in zip(ratio.tolist(), half.tolist(), lo.tolist(), hi.tolist())]


def normal_ratio_ci(a: Mapping[str, Any], b: Mapping[str, Any], *,
                    confidence: float = 0.95) -> RatioCI | None:
    """Ratio of medians from two Stats objects with the normal approximation described above.
    None when either median is missing or not positive; lo/hi None when the spread is unknown."""
    med_a, se_a = median_and_rel_se(a)
    med_b, se_b = median_and_rel_se(b)
    if med_a is None or med_b is None:
        return None
    return ratio_from_parts(med_a, se_a, med_b, se_b, confidence=confidence)


def ratio_ci(a_stats: Mapping[str, Any] | None, b_stats: Mapping[str, Any] | None,
             a_raw: Sequence[float] | None = None, b_raw: Sequence[float] | None = None, *,
             confidence: float = 0.95, seed: int = 0) -> RatioCI | None:
    """Ratio a / b of medians with its interval: bootstrap when both raw sample lists are there,
    the normal approximation from the Stats objects otherwise; None when no ratio can be formed."""
    if a_raw and b_raw:
        return bootstrap_ratio_ci(a_raw, b_raw, confidence=confidence, seed=seed)
    if a_stats is None or b_stats is None:
        return None
    return normal_ratio_ci(a_stats, b_stats, confidence=confidence)


def is_significant(ci: RatioCI | None) -> bool | None:
    """True when the interval excludes 1, False when it includes 1, None without an interval."""
    if ci is None or ci.lo is None or ci.hi is None:
        return None
    return not (ci.lo <= 1.0 <= ci.hi)


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or x != x:
        return None
    return float(x)


def _z_of(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    # Inverse normal CDF by bisection on erf: only reached for unusual confidence levels.
    target, lo, hi = (1.0 + confidence) / 2.0, 0.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2.0
        if 0.5 * (1.0 + math.erf(mid / math.sqrt(2.0))) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0
