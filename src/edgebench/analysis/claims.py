"""The published study's four claims (arXiv 2507.12442), checked on the logs of each device.

`evaluate(logs) -> list[Result]`: for every device in the logs (devices differ, so each is checked
on its own) and each method (`claim_data.METHODS`: the study's, edgebench's defaults), each claim as a
ratio, length, share or crossover, never an absolute time. A result has the measured value, the
published one (`edgebench.analysis.published`), the verdict `HOLDS`, `FAILS` or `NOT_MEASURED` (with
`needs`: the points missing), and the points it used.

The rules. An F-fold claim holds when the measured factor is at least sqrt(F): the midpoint between
parity (1x) and the claim on a log scale. Devices, kernels and libraries differ, so the exact factor is
not expected to repeat; what the claim asserts is a large advantage one way, and a measured advantage
below sqrt(F) is nearer parity than the claim.
1. SSMs fit ~4x longer contexts (F = 4, holds at >= 2): per memory budget, the longest context of the
   best comparable SSM over that of the best comparable Transformer, from max-context searches
   (`edgebench maxctx`, or a suite's `[[maxctx]]`). Comparable: the catalog's pure SSMs and
   Transformers of at most `COMPARABLE_MAX_PARAMS` parameters (the study's 0.5-1.5B models; Phi-3-mini
   at 3.8B is not). A search gives an interval [max_ok_ctx, min_fail_ctx) (unbounded above when it
   passed its limit or stopped early); the verdict needs the whole ratio interval on one side of the
   threshold, else it is not measured and says what would settle it (a higher --limit, a finer
   --resolution). The published value applies the same rule to the study's figures for the platform
   whose memory matches the budget (24 GiB: RTX 4090, 8 GiB: Jetson), over the models measured here.
2. Transformers up to 1.8x faster at short context (holds at >= sqrt(1.8) = 1.34): for the study's
   pairs of like size (`PAIRS`: Qwen2.5-0.5B / Mamba2-780m, Qwen2.5-1.5B / Mamba2-1.3B), prefill of
   the SSM over prefill of the Transformer at every context both measured up to `SHORT_MAX` (8K, the
   study's "<8K"); the largest.
3. SSMs up to 4x faster at very long context (F = 4, holds at >= 2): for the same pairs, prefill of
   the Transformer over prefill of the SSM at the longest context both measured, which must be at
   least `LONG_MIN` (32K: the study's long scenarios are 32K and ~57K); the largest over the pairs.
   Where the prefill curves cross (interpolated log-log, `edgebench.analysis.crossover`) is reported.
4. SSM kernels dominate, >55% of the time (holds at >= 50%, a majority of the GPU kernel time): the
   share of prefill kernel time in the SSM kernels (`claim_data.SSM_CATEGORIES`) of a pure SSM at the
   longest context profiled (`run --profile ops`): Mamba2-130m, the study's model, where it was
   profiled, else the largest share among the SSMs profiled.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from edgebench.analysis import published
from edgebench.analysis.claim_data import METHODS, Measured, Method
from edgebench.analysis.crossover import bracket_doubt, find_crossovers, resolved
from edgebench.analysis.stats import median_and_rel_se
from edgebench.logs.loader import Logs
from edgebench.sweep.units import format_bytes

HOLDS, FAILS, NOT_MEASURED = "holds", "does not hold", "not measured"
PAIRS = (("qwen2.5-0.5b", "mamba2-780m"), ("qwen2.5-1.5b", "mamba2-1.3b"))
SHORT_MAX, LONG_MIN = 8192, 32768
COMPARABLE_MAX_PARAMS = 1.6e9
SHARE_MODEL = "mamba2-130m"
SHARE_THRESHOLD = 0.5
TITLES = {1: "SSMs fit ~4x longer contexts", 2: "Transformers up to 1.8x faster prefill at short context",
          3: "SSMs up to 4x faster prefill at long context", 4: "SSM kernels take >55% of the time"}


@dataclass
class Result:
    device: str
    method: str
    claim: int
    verdict: str
    threshold: float
    value: float | None = None  # the measured ratio (claims 1-3) or share (claim 4)
    shown: str = "-"
    published: float | None = None
    published_shown: str = "-"
    points: list[str] = field(default_factory=list)
    needs: str | None = None
    budget_bytes: int | None = None

    @property
    def title(self) -> str:
        budget = f" ({format_bytes(self.budget_bytes)})" if self.claim == 1 and self.budget_bytes else ""
        return f"{self.claim}. {TITLES[self.claim]}{budget}"

    def as_dict(self) -> dict[str, Any]:
        return {"device": self.device, "method": self.method, "claim": self.claim, "title": self.title,
                "verdict": self.verdict, "value": self.value, "measured": self.shown,
                "published_value": self.published, "published": self.published_shown,
                "threshold": self.threshold, "points": self.points, "needs": self.needs,
                "budget_bytes": self.budget_bytes}


def _verdict(value: float | None, threshold: float) -> str:
    return NOT_MEASURED if value is None else HOLDS if value >= threshold else FAILS


def _how(method: Method) -> str:
    """How a method's points are measured, as a `needs` text says it."""
    if method.name == "study":
        return "--logits all; Mamba models --backend mamba_ssm -t float16, others hf bfloat16"
    return f"--logits {method.logits}"


def _k(ctx: float) -> str:
    return f"{ctx / 1024:.3g}K" if ctx >= 1024 else f"{ctx:.0f}"


def evaluate(logs: Logs) -> list[Result]:
    """Every claim, per device and method (see the module doc)."""
    data = Measured(logs)
    out: list[Result] = []
    for device in data.devices():
        for method in METHODS:
            out += claim_length(data, device, method)
            measured = data.prefill(device, method)
            prefill = {m: {c: v for c, (v, _) in per.items()} for m, per in measured.items()}
            host = frozenset((m, c) for m, per in measured.items() for c, (_, row) in per.items()
                             if row.get("host_bound"))
            out.append(claim_short(device, method, prefill, host))
            se = {m: {c: median_and_rel_se(row.get("prefill_ms"))[1] for c, (_, row) in per.items()}
                  for m, per in measured.items()}
            out.append(claim_long(device, method, prefill, host, se))
            out.append(claim_share(device, method, data.ssm_share(device, method)))
    return out


def _comparable(model: str, family: str | None) -> str | None:
    """'ssm' or 'transformer' for a comparable model (see the module doc), else None."""
    from edgebench.errors import UserError
    from edgebench.models import catalog
    try:
        pre = catalog.get(model)
    except UserError:
        return None
    if pre.family not in ("ssm", "transformer") or (family and family != pre.family):
        return None
    return pre.family if (pre.published_params or math.inf) <= COMPARABLE_MAX_PARAMS else None


def _interval(rec: dict[str, Any]) -> tuple[int, float]:
    lo = rec.get("max_ok_ctx") or 0
    hi = rec.get("min_fail_ctx")
    return lo, math.inf if hi is None else hi


def claim_length(data: Measured, device: str, method: Method) -> list[Result]:
    threshold = math.sqrt(published.claim(1)["factor"])
    groups = data.maxctx(device, method)
    if not groups:
        return [Result(device, method.name, 1, NOT_MEASURED, threshold,
                       needs=f"max-context searches of a comparable SSM (e.g. mamba2-780m) and Transformer "
                             f"(e.g. qwen2.5-0.5b): edgebench maxctx --memory-budget 24GiB {_how(method)}")]
    out = []
    for budget, per in sorted(groups.items(), key=lambda kv: kv[0] or 0):
        sides: dict[str, dict[str, dict]] = {"ssm": {}, "transformer": {}}
        for model, rec in per.items():
            kind = _comparable(model, rec.get("family"))
            if kind:
                sides[kind][model] = rec
        res = Result(device, method.name, 1, NOT_MEASURED, threshold, budget_bytes=budget)
        res.points = [f"{m}: {r.get('max_ok_ctx') or 0:,}" + (" (passed its limit)" if r.get("min_fail_ctx") is None else "")
                      for m, r in sorted(per.items(), key=lambda kv: -(kv[1].get("max_ok_ctx") or 0))]
        _published_length(res, budget, sides)
        missing = [k for k in ("ssm", "transformer") if not sides[k]]
        if missing:
            examples = {"ssm": "SSM (e.g. mamba2-780m)", "transformer": "Transformer (e.g. qwen2.5-0.5b)"}
            res.needs = (f"a search of a comparable {' and a comparable '.join(examples[k] for k in missing)}"
                         f" under this budget: edgebench maxctx {_how(method)}")
            out.append(res)
            continue
        (s_lo, s_hi), (t_lo, t_hi) = ([max(_interval(r)[i] for r in sides[k].values()) for i in (0, 1)]
                                      for k in ("ssm", "transformer"))
        best_s = max(sides["ssm"], key=lambda m: sides["ssm"][m].get("max_ok_ctx") or 0)
        best_t = max(sides["transformer"], key=lambda m: sides["transformer"][m].get("max_ok_ctx") or 0)
        low = s_lo / t_hi
        high = math.inf if t_lo == 0 else s_hi / t_lo
        res.value = s_lo / t_lo if t_lo else None  # None: no comparable Transformer fit at all
        res.shown = f"{res.value:.2f}x ({best_s} {s_lo:,} / {best_t} {t_lo:,})" if t_lo else \
            f"no comparable Transformer fit; {best_s} {s_lo:,}"
        if low >= threshold:
            res.verdict = HOLDS
        elif high < threshold:
            res.verdict = FAILS
        else:
            res.needs = ("the searches to bound the ratio on one side of "
                         f"{threshold:g}x: a higher --limit where a search passed its limit, or a finer --resolution")
        out.append(res)
    return out


def _published_length(res: Result, budget: int | None, sides: dict[str, dict]) -> None:
    figures = published.max_contexts(budget)
    if not figures:
        res.published_shown = f"~{published.claim(1)['factor']:g}x (abstract; no figure for this budget)"
        return
    def best(kind: str, only: bool) -> tuple[str, int] | None:
        found = [(m, v) for m, (v, _) in figures.items() if _comparable(m, None) == kind
                 and (not only or m in sides[kind])]
        return max(found, key=lambda mv: mv[1]) if found else None
    pair = (best("ssm", True), best("transformer", True))
    if None in pair:
        pair = (best("ssm", False), best("transformer", False))
    (sm, sv), (tm, tv) = pair
    where = ", ".join(dict.fromkeys((figures[sm][1], figures[tm][1])))
    res.published = sv / tv
    res.published_shown = (f"{res.published:.2f}x ({sm} {sv:,} / {tm} {tv:,}, {where}); "
                           f"abstract ~{published.claim(1)['factor']:g}x")


def _pair_ratios(prefill: dict[str, dict[int, float]], pairs=PAIRS) -> dict[tuple[str, str], dict[int, float]]:
    """{(transformer, ssm): {ctx: prefill(ssm) / prefill(transformer)}} at the contexts both measured."""
    out = {}
    for t, s in pairs:
        common = set(prefill.get(t, {})) & set(prefill.get(s, {}))
        if common:
            out[(t, s)] = {c: prefill[s][c] / prefill[t][c] for c in sorted(common)}
    return out


def _published_prefill() -> tuple[dict[str, dict[int, float]], dict[tuple[str, int], str]]:
    """The study's prefill times {model: {ctx: ms}}, and where each is from {(model, ctx): figure}."""
    out: dict[str, dict[int, float]] = {}
    where = {}
    for p in published.points("prefill_ms"):
        out.setdefault(p["model"], {})[p["ctx"]] = p["value"]
        where[(p["model"], p["ctx"])] = p["where"]
    return out, where


def _host_note(host: frozenset, *points: tuple[str, int]) -> str:
    """A note for a ratio built on host-bound points: it measures the host, not the GPU."""
    bound = [f"{m} at {_k(c)}" for m, c in points if (m, c) in host]
    return f"; host-bound: {', '.join(bound)} (the ratio follows the CPU)" if bound else ""


def claim_short(device: str, method: Method, prefill: dict[str, dict[int, float]],
                host: frozenset = frozenset()) -> Result:
    factor = published.claim(2)["factor"]
    res = Result(device, method.name, 2, NOT_MEASURED, math.sqrt(factor))
    times, where = _published_prefill()
    pub = [(r, pair, c) for pair, rs in _pair_ratios(times).items() for c, r in rs.items() if c <= SHORT_MAX]
    if pub:
        r, (t, s), c = max(pub)
        res.published = r
        res.published_shown = f"{r:.2f}x ({s} / {t} at {_k(c)}, {where[(s, c)]}); abstract {factor:g}x"
    found = []
    for (t, s), rs in _pair_ratios(prefill).items():
        short = {c: r for c, r in rs.items() if c <= SHORT_MAX}
        if short:
            found += [(r, (t, s), c) for c, r in short.items()]
            res.points.append(f"{s} / {t}: " + ", ".join(f"{r:.2f}x at {_k(c)}" for c, r in short.items()))
    if not found:
        res.needs = _needs_pair_prefill(method, f"<= {_k(SHORT_MAX)}")
        return res
    r, (t, s), c = max(found)
    return _settle(res, r, f"{r:.2f}x ({s} / {t} at {_k(c)})" + _host_note(host, (s, c), (t, c)))


def claim_long(device: str, method: Method, prefill: dict[str, dict[int, float]],
               host: frozenset = frozenset(), se: dict[str, dict[int, float | None]] | None = None) -> Result:
    factor = published.claim(3)["factor"]
    res = Result(device, method.name, 3, NOT_MEASURED, math.sqrt(factor))
    times, where = _published_prefill()
    pub = [(1 / rs[max(rs)], (t, s), max(rs)) for (t, s), rs in _pair_ratios(times).items()
           if max(rs) >= LONG_MIN]
    found, shorter = [], []
    for (t, s), rs in _pair_ratios(prefill).items():
        longest = max(rs)
        cross = find_crossovers({c: prefill[t][c] for c in rs}, {c: prefill[s][c] for c in rs})
        def real(x, t=t, s=s) -> str:  # compare's rule: both brackets apart, neither host-bound
            if se is None:
                return ""
            return "; resolved: " + resolved([bracket_doubt(
                br.a, br.b, se.get(t, {}).get(br.ctx), se.get(s, {}).get(br.ctx),
                (t, br.ctx) in host or (s, br.ctx) in host) for br in (x.before, x.after)])
        crossing = "; ".join(f"curves cross near {_k(x.ctx)} (between {_k(x.before.ctx)} and "
                             f"{_k(x.after.ctx)}{real(x)})" for x in cross) \
            or "curves do not cross in the measured range"
        res.points.append(f"{t} / {s}: {1 / rs[longest]:.2f}x at {_k(longest)}; {crossing}")
        (found if longest >= LONG_MIN else shorter).append((1 / rs[longest], (t, s), longest))
    mine = {pair for _, pair, _ in found}
    shown_pub = [p for p in pub if p[1] in mine] or pub
    if shown_pub:
        r, (t, s), c = max(shown_pub)
        res.published = r
        res.published_shown = "; ".join(f"{pr:.2f}x ({pt} / {ps} at {_k(pc)}, {where[(pt, pc)]})"
                                        for pr, (pt, ps), pc in shown_pub) + \
            f"; abstract up to {factor:g}x"
    if not found:
        got = f" (measured only up to {', '.join(_k(c) for _, _, c in shorter)})" if shorter else ""
        res.needs = _needs_pair_prefill(method, f">= {_k(LONG_MIN)}") + got
        return res
    r, (t, s), c = max(found)
    return _settle(res, r, f"{r:.2f}x ({t} / {s} at {_k(c)})" + _host_note(host, (t, c), (s, c)))


def _needs_pair_prefill(method: Method, where: str) -> str:
    """What claims 2 and 3 need: a study pair's prefill at a common context `where`."""
    return (f"prefill of {' or '.join(f'{t} and {s}' for t, s in PAIRS)} at a common context {where} "
            f"({_how(method)})")


def _settle(res: Result, value: float, shown: str) -> Result:
    res.value, res.shown = value, shown
    res.verdict = _verdict(value, res.threshold)
    return res


def claim_share(device: str, method: Method, shares: dict[str, dict[int, float]]) -> Result:
    res = Result(device, method.name, 4, NOT_MEASURED, SHARE_THRESHOLD)
    pubs = published.ranges("ssm_share")
    res.published = published.claim(4)["share"]
    res.published_shown = "; ".join(f"{r['low']:.1%}-{r['high']:.1%} ({r['model']}, {r['platform']}, {r['where']})"
                                    for r in pubs if r["model"] == SHARE_MODEL) + \
        f"; abstract >{res.published:.0%}"
    for model, per in sorted(shares.items()):
        res.points.append(f"{model}: " + ", ".join(f"{v:.1%} at {_k(c)}" for c, v in sorted(per.items())))
    if not shares:
        res.needs = f"prefill profiles (run --profile ops) of a pure SSM, e.g. {SHARE_MODEL} ({_how(method)})"
        return res
    at_longest = {m: per[max(per)] for m, per in shares.items()}
    model = SHARE_MODEL if SHARE_MODEL in shares else max(at_longest, key=at_longest.get)
    ctx = max(shares[model])
    return _settle(res, at_longest[model], f"{at_longest[model]:.1%} ({model} at {_k(ctx)})")
