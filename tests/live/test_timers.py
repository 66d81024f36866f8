"""The engine's timers fire at their own deadlines (app/live/timers.py), on a fake clock."""

from __future__ import annotations

from app.live.timers import REFRESH, TICK, TimerSchedule


def run(tick_s: float, refresh_s: float, until: float) -> list[tuple[float, str]]:
    schedule, fired = TimerSchedule(0.0, tick_s, refresh_s), []
    while True:
        at, kind = schedule.next()
        if at > until:
            return fired
        fired.append((at, kind))
        schedule.fired(kind, at)


def test_a_30_second_refresh_runs_every_30_seconds_beside_a_20_second_tick() -> None:
    fired = run(20, 30, 120)
    assert [at for at, kind in fired if kind == REFRESH] == [30, 60, 90, 120]
    # The tick fills the gaps: never more than 20 s without one or the other.
    times = [0.0] + [at for at, _ in fired]
    assert max(b - a for a, b in zip(times, times[1:], strict=False)) <= 20
    assert fired[:3] == [(20, TICK), (30, REFRESH), (50, TICK)]


def test_a_refresh_shorter_than_the_tick_replaces_it() -> None:
    fired = run(20, 5, 30)
    assert fired == [(5.0, REFRESH), (10.0, REFRESH), (15.0, REFRESH), (20.0, REFRESH),
                     (25.0, REFRESH), (30.0, REFRESH)]


def test_the_suites_long_timers() -> None:
    # The shared test server: tick and refresh both 300 s; the refresh wins the tie.
    assert run(300, 300, 900) == [(300, REFRESH), (600, REFRESH), (900, REFRESH)]
