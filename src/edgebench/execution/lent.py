"""What one point's worker found that later points of the same run reuse instead of paying for again,
each with the key of the prefill line that found it (which the borrowing line names):

- kernels: kernel detection depends on `contracts.detection_key`, not on the context, so the first
  point of that key detects and later ones are sent its answer (their lines say `kernels_from`);
- the idle power baseline of a device: measured by its first point with telemetry and lent to the
  device's later points; each borrowing worker checks, when it would measure its own, that the GPU is
  still within `IDLE_REUSE_C` of the temperature the baseline was measured at and that at most
  `IDLE_REUSE_S` seconds have passed since the lending point's worker started (the `expires_s` sent,
  on CLOCK_MONOTONIC, which parent and workers share), and measures its own otherwise (their lines
  say `idle_from`).

Only the first run of a point lends, and only when its prefill line is written in this run: the line
records the first run's energy (`point_lines`), and a resumed point that adds a decode mode writes no
prefill line, so a borrowed key always names a line of this log that holds the lent value.
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
        """({"idle_w", "temp_c", "expires_s"}, the key of the line that measured it) for a device, while
        fresh (the worker checks `expires_s` again when it would measure)."""
        got = self._idle.get(device)
        if got is None or time.monotonic() > got[0]["expires_s"]:
            return None
        return got

    def keep(self, result: dict[str, Any], key: str, found: tuple, device: str, started: float) -> None:
        """Keep what the first run of this run's prefill line `key`, whose worker started at `started`
        (time.monotonic()), measured itself (not what it borrowed)."""
        if isinstance(result.get("kernels"), dict) and found not in self._kernels:
            self._kernels[found] = (result["kernels"], result.get("kernels_from") or key)
        energy = result.get("energy") or {}
        idle_w, temp = energy.get("idle_w"), energy.get("idle_temp_c")
        if not result.get("idle_from") and isinstance(idle_w, (int, float)) and isinstance(temp, (int, float)):
            self._idle[device] = ({"idle_w": float(idle_w), "temp_c": float(temp),
                                   "expires_s": started + IDLE_REUSE_S}, key)
