"""The engine's two timers, as a pure schedule (tested on a fake clock: tests/live/test_timers.py).

The ETA tick recomputes queues whose consultation is running; the safety refresh recomputes
every queue with someone in it. Each fires at its own deadline: the loop once slept the shorter
interval and checked the refresh only on waking, so a 30 s refresh ran every 40 s (issue 16). A
refresh covers what a tick does, so it also restarts the tick's interval.
"""

from __future__ import annotations

TICK = "tick"
REFRESH = "refresh"


class TimerSchedule:
    def __init__(self, now: float, tick_s: float, refresh_s: float) -> None:
        self._tick_s = tick_s
        self._refresh_s = refresh_s
        self._next_tick = now + tick_s
        self._next_refresh = now + refresh_s

    def next(self) -> tuple[float, str]:
        """When the next timer fires, and which."""
        if self._next_refresh <= self._next_tick:
            return self._next_refresh, REFRESH
        return self._next_tick, TICK

    def fired(self, kind: str, now: float) -> None:
        self._next_tick = now + self._tick_s
        if kind == REFRESH:
            self._next_refresh = now + self._refresh_s
