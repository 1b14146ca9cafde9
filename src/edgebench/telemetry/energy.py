"""Energy from power samples, per phase, in pure numpy.

Inputs are what a power sampler gives: `t_ns` (monotonic ns, the timer clock) and one channel's
`mw` (NaN where a read failed; those samples are dropped). Units: ns, mW in; J, W, s out
(mW * ns = 1e-12 J).

- `integrate_j`: trapezoid over [t0_ns, t1_ns]; the power at each window edge is linearly
  interpolated between the samples around it, so a window need not start or end on a sample. The
  window must lie inside the sampled span (no extrapolation): otherwise ValueError.
- `phase_energy`: per phase raw J, net J (raw minus idle_mw * duration), mean and peak W, number of
  samples inside the window. A phase shorter than 2 sample periods, or not covered by samples, has
  `energy_j` None with `energy_j_why`; when NVML energy-counter readings for that phase are given,
  `counter_energy_j` is still reported (and used as the phase's `energy_j` then, with
  `energy_source` saying so).
- `counter_vs_samples_pct`: 100 * (integrated - counter) / counter.
"""
from __future__ import annotations

import numpy as np

_MW_NS_TO_J = 1e-12
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz


def _clean(t_ns, mw) -> tuple[np.ndarray, np.ndarray, int]:
    """Sorted, finite samples as float64 offsets from the first time (keeps ns precision)."""
    t = np.asarray(t_ns, dtype=np.int64)
    p = np.asarray(mw, dtype=np.float64)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"t_ns and mw must be 1-D of equal length, got {t.shape} and {p.shape}")
    keep = np.isfinite(p)
    t, p = t[keep], p[keep]
    order = np.argsort(t, kind="stable")
    t, p = t[order], p[order]
    base = int(t[0]) if t.size else 0
    return (t - base).astype(np.float64), p, base


def sample_period_ns(t_ns) -> float | None:
    """Median spacing of the samples, or None with fewer than two."""
    t = np.asarray(t_ns, dtype=np.int64)
    return float(np.median(np.diff(np.sort(t)))) if t.size >= 2 else None


def _window(t: np.ndarray, p: np.ndarray, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    inner = (t > a) & (t < b)
    tw = np.concatenate(([a], t[inner], [b]))
    pw = np.concatenate(([np.interp(a, t, p)], p[inner], [np.interp(b, t, p)]))
    return tw, pw


def integrate_j(t_ns, mw, t0_ns: int, t1_ns: int) -> float:
    """Energy in J over [t0_ns, t1_ns] by the trapezoid rule with interpolated edges."""
    t, p, base = _clean(t_ns, mw)
    if t1_ns < t0_ns:
        raise ValueError(f"window ends before it starts: {t0_ns} > {t1_ns}")
    if t.size < 2:
        raise ValueError(f"need at least 2 valid samples, have {t.size}")
    a, b = float(t0_ns - base), float(t1_ns - base)
    if a < t[0] or b > t[-1]:
        raise ValueError(f"window [{t0_ns}, {t1_ns}] ns is outside the sampled span "
                         f"[{base}, {base + int(t[-1])}] ns")
    tw, pw = _window(t, p, a, b)
    return float(_trapezoid(pw, tw)) * _MW_NS_TO_J


def counter_vs_samples_pct(counter_j: float | None, integrated_j: float | None) -> float | None:
    if counter_j is None or integrated_j is None or counter_j == 0:
        return None
    return 100.0 * (integrated_j - counter_j) / counter_j


def phase_energy(t_ns, mw, phases: dict[str, tuple[int, int]], idle_mw: float | None,
                 counter_mj: dict[str, tuple[int | None, int | None]] | None = None) -> dict:
    """Per-phase energy for one channel. `phases` maps a name to (t0_ns, t1_ns); `counter_mj`
    optionally maps a name to the NVML total-energy counter (mJ) read at its start and end."""
    t, p, base = _clean(t_ns, mw)
    period = sample_period_ns(t) if t.size >= 2 else None
    out = {}
    for name, (t0, t1) in phases.items():
        dur_s = (t1 - t0) * 1e-9
        r: dict = {"duration_s": dur_s, "n_samples": 0, "energy_j": None, "net_energy_j": None,
                   "mean_w": None, "peak_w": None}
        a, b = float(t0 - base), float(t1 - base)
        if period is None:
            r["energy_j_why"] = f"fewer than 2 valid power samples ({t.size})"
        elif a < t[0] or b > t[-1]:
            r["energy_j_why"] = "phase not covered by power samples"
        elif (t1 - t0) < 2 * period:
            r["energy_j_why"] = (f"phase {dur_s * 1e3:.3f} ms is shorter than 2 sample periods "
                                 f"({2 * period * 1e-6:.3f} ms)")
        else:
            tw, pw = _window(t, p, a, b)
            energy_j = float(_trapezoid(pw, tw)) * _MW_NS_TO_J
            r.update(energy_j=energy_j, mean_w=energy_j / dur_s, peak_w=float(pw.max()) / 1e3,
                     n_samples=int(tw.size - 2), energy_source="samples")
        if counter_mj and name in counter_mj:
            e0, e1 = counter_mj[name]
            if e0 is not None and e1 is not None and e1 >= e0:
                r["counter_energy_j"] = (e1 - e0) / 1e3
                r["counter_vs_samples_pct"] = counter_vs_samples_pct(r["counter_energy_j"],
                                                                     r["energy_j"])
                if r["energy_j"] is None and dur_s > 0:
                    r.update(energy_j=r["counter_energy_j"], energy_source="nvml_counter",
                             mean_w=r["counter_energy_j"] / dur_s)
            else:
                r["counter_energy_j"] = None
                r["counter_energy_j_why"] = f"counter readings unusable: {e0}, {e1}"
        if r["energy_j"] is not None:
            if idle_mw is None:
                r["net_energy_j_why"] = "no idle baseline"
            else:
                r["net_energy_j"] = r["energy_j"] - idle_mw * 1e-3 * dur_s
        out[name] = r
    return out


def per_token(phase: dict, tokens: int) -> dict:
    """J per token (raw and net) for a phase result; None where the energy or tokens are missing."""
    ok = tokens > 0
    return {"energy_j_per_token": phase["energy_j"] / tokens if ok and phase["energy_j"] is not None
            else None,
            "net_energy_j_per_token": phase["net_energy_j"] / tokens
            if ok and phase["net_energy_j"] is not None else None}
