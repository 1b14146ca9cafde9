"""Summary statistics of timing samples, in the unit of the samples."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def summarize(samples: Sequence[float]) -> dict | None:
    """{"median", "p10", "p90", "stdev", "n"} of the samples, or None for no samples."""
    a = np.asarray(samples, dtype=np.float64)
    if a.size == 0:
        return None
    p10, med, p90 = np.percentile(a, [10, 50, 90])
    sd = float(a.std(ddof=1)) if a.size > 1 else 0.0
    return {"median": _r(med), "p10": _r(p10, 4), "p90": _r(p90, 4), "stdev": _r(sd, 3), "n": int(a.size)}


def _r(x: float, digits: int = 5) -> float:
    """Round to `digits` significant digits: far below timing noise, and it keeps log lines short."""
    x = float(x)
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, max(0, digits - 1 - int(math.floor(math.log10(abs(x))))))
