"""The demo hospital loads on any date and at any hour (run under the calendar clocks too)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import asyncpg
import pytest

from app import clock
from app.demo import HOSPITAL_CODE, demo_banner, load_demo

pytestmark = pytest.mark.calendar


async def test_demo_loads_today_on_any_clock(pool: asyncpg.Pool) -> None:
    first = await load_demo(pool)
    assert "made today's tokens" in first or "already there" in first
    hospital = await pool.fetchrow(
        "SELECT hospital_id, hospital_today(hospital_id) AS today, timezone FROM hospitals WHERE code = $1",
        HOSPITAL_CODE)
    # The app's clock and the database's agree on the hospital's day.
    assert hospital["today"] == clock.now().astimezone(ZoneInfo(hospital["timezone"])).date()

    # Every token is today's, but the bookings moved to tomorrow ("asked for another day").
    days = await pool.fetch(
        """SELECT DISTINCT visit_date FROM tokens
           WHERE hospital_id = $1 AND NOT (status = 'BOOKED' AND visit_date = $2::date + 1)""",
        hospital["hospital_id"], hospital["today"])
    assert [r["visit_date"] for r in days] == [hospital["today"]]
    rostered = await pool.fetch(
        """SELECT d.doctor_id, d.emp_code FROM doctors d JOIN cabin_doctors a USING (doctor_id)
           WHERE d.hospital_id = $1 AND a.shift_date = $2""", hospital["hospital_id"], hospital["today"])
    assert len(rostered) == 14
    for doctor in rostered:  # every queue of the day computes, whatever the hour
        queue = await pool.fetch("SELECT * FROM doctor_queue($1, $2)", doctor["doctor_id"], hospital["today"])
        assert queue, f"{doctor['emp_code']} has nobody waiting"
        assert all(row["eta_minutes"] is None or row["eta_minutes"] >= 0 for row in queue)

    again = await load_demo(pool)
    assert "already there" in again
    banner = await demo_banner(pool, "http://127.0.0.1:8000")
    assert "/t/None" not in banner and "staff API key" in banner
