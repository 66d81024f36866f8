"""The bench's own garbage-collection pauses: the swarm's workers and the driver's process stamp
the arrival of every frame and the answer to every click, so a pause of theirs reads as server
latency. Each process records its collections (gc.callbacks) and the report says how long the
bench itself stood still, second by second, beside the figures it measured.
"""

from __future__ import annotations

import gc
import time
from typing import Any

FULL = 2  # the generation whose collections walk everything that is not frozen


class GcPauses:
    def __init__(self) -> None:
        self.pauses: list[tuple[float, int, float]] = []  # (epoch s at the start, generation, seconds)
        self._started = 0.0
        self._started_wall = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started, self._started_wall = time.perf_counter(), time.time()
        else:
            self.pauses.append((self._started_wall, info["generation"], time.perf_counter() - self._started))

    def install(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def uninstall(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)


def summary(pauses: list[tuple[float, int, float]], start: float, end: float) -> dict[str, Any]:
    """Collections that started in [start, end): count, longest and total, full ones apart."""
    window = [p for p in pauses if start <= p[0] < end]
    full = [p for p in window if p[1] == FULL]
    return {"collections": len(window), "total_ms": round(sum(p[2] for p in window) * 1e3, 1),
            "longest_ms": round(max((p[2] for p in window), default=0.0) * 1e3, 1),
            "full": len(full), "full_longest_ms": round(max((p[2] for p in full), default=0.0) * 1e3, 1),
            "full_at_s": [round(p[0] - start, 1) for p in full]}
