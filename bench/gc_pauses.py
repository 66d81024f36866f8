"""The bench's own garbage-collection pauses: the swarm's workers and the driver's process stamp
the arrival of every frame and the answer to every click, so a pause of theirs reads as server
latency. Each process notes its collections with the app's own meter (app/gc_policy.py,
PauseMeter) and the report says how long the bench itself stood still in the measured window.
"""

from __future__ import annotations

from typing import Any

FULL = 2  # the generation whose collections walk everything that is not frozen


def summary(pauses: list[tuple[float, int, float]], start: float, end: float) -> dict[str, Any]:
    """Collections that started in [start, end) (epoch seconds): count, longest and total, full
    ones apart."""
    window = [p for p in pauses if start <= p[0] < end]
    full = [p for p in window if p[1] == FULL]
    return {"collections": len(window), "total_ms": round(sum(p[2] for p in window) * 1e3, 1),
            "longest_ms": round(max((p[2] for p in window), default=0.0) * 1e3, 1),
            "full": len(full), "full_longest_ms": round(max((p[2] for p in full), default=0.0) * 1e3, 1),
            "full_at_s": [round(p[0] - start, 1) for p in full]}
