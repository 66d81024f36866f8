"""The app's one clock: aware UTC datetimes, shifted by `OPD_CLOCK_OFFSET_S` when it is set.

The offset is a test and demo seam, never a production setting: the suite's calendar runs
(`python -m app test`) and `python -m app up --clock ...` use it to live on another day while
time still flows. The database follows the same offset through `opd.clock_offset`
(sql/functions.sql: opd_now()), set on every session by app/db/pool.py, so Python and SQL agree
on what "now" and the hospital's "today" are.
"""

from __future__ import annotations

import datetime as dt
import os

OFFSET_ENV = "OPD_CLOCK_OFFSET_S"


def offset_seconds() -> float:
    """Seconds added to the real clock (0 unless a test or the demo set OPD_CLOCK_OFFSET_S)."""
    raw = os.environ.get(OFFSET_ENV, "").strip()
    if not raw:
        return 0.0
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{OFFSET_ENV} must be a number of seconds, not {raw!r}") from None


def now() -> dt.datetime:
    """The current instant, timezone-aware (UTC)."""
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset_seconds())


def session_settings() -> dict[str, str]:
    """PostgreSQL session settings that give SQL's opd_now() the same offset."""
    offset = offset_seconds()
    return {"opd.clock_offset": f"{offset} seconds"} if offset else {}


def offset_to_reach(target: dt.datetime) -> float:
    """The offset that makes the clock read `target` now (for `--clock` and the test clocks)."""
    if target.tzinfo is None:
        raise ValueError("a clock needs a time zone, e.g. 2026-12-31T23:50+05:30")
    return (target - dt.datetime.now(dt.UTC)).total_seconds()
