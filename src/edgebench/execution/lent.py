"""What one point's worker found that later points of the same run reuse instead of paying for again,
each with the key of the prefill line that found it (which the borrowing line names):

- kernels: kernel detection depends on `contracts.detection_key`, not on the context, so the first
  point of that key detects and later ones are sent its answer (their lines say `kernels_from`);
- the idle power baseline of a device: measured by its first point with telemetry and lent to the
  device's later points for `IDLE_REUSE_S` seconds; each borrowing worker checks that the GPU is still
  within `IDLE_REUSE_C` of the temperature it was measured at and measures its own otherwise (their
  lines say `idle_from`).

Only a prefill line written in this run lends: a resumed point that adds a decode mode writes none, so
a borrowed key always names a line of this run.
"""
from __future__ import annotations

import time
from typing import Any

from edgebench.logs.contracts import IDLE_REUSE_S


class Lent:
    def __init__(self) -> None:
        self._kernels: dict[tuple, tuple[dict, str]] = {}  # detection_key -> (kernels, line key)
        self._idle: dict[str, tuple[dict, str, float]] = {}  # device -> (known_idle, line key, when)

    def kernels(self, found: tuple) -> tuple[dict, str] | None:
        """(kernels, the key of the line that detected them) for a detection key, if any."""
        return self._kernels.get(found)

    def idle(self, device: str) -> tuple[dict, str] | None:
        """({"idle_w", "temp_c"}, the key of the line that measured it) for a device, while fresh."""
        got = self._idle.get(device)
        if got is None or time.monotonic() - got[2] > IDLE_REUSE_S:
            return None
        return got[0], got[1]

    def keep(self, result: dict[str, Any], key: str, found: tuple, device: str) -> None:
        """Keep what a worker of this run's prefill line `key` measured itself (not what it borrowed)."""
        if isinstance(result.get("kernels"), dict) and found not in self._kernels:
            self._kernels[found] = (result["kernels"], result.get("kernels_from") or key)
        energy = result.get("energy") or {}
        idle_w, temp = energy.get("idle_w"), energy.get("idle_temp_c")
        if not result.get("idle_from") and isinstance(idle_w, (int, float)) and isinstance(temp, (int, float)):
            self._idle[device] = ({"idle_w": float(idle_w), "temp_c": float(temp)}, key, time.monotonic())
