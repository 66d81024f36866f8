"""Check-in inside the hospital's circle, and the ETAs of a doctor's queue."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from tests.db.helpers import history, issue_on, local_time, raises_sqlstate, set_clock, set_status
from tests.support import factory

pytestmark = pytest.mark.calendar

CHECK_IN = "SELECT * FROM check_in_token($1, $2::numeric, $3::numeric, $4, NULL)"


async def booked(pool: asyncpg.Pool, hospital: factory.Hospital) -> asyncpg.Record:
    slot = await pool.fetchval("SELECT opd_now()")
    token = await factory.issue(pool, hospital, booking_type="ONLINE", scheduled=slot)
    assert token["status"] == "BOOKED"
    return token


async def north_of(pool: asyncpg.Pool, hospital: factory.Hospital, metres: float) -> Decimal:
    """The latitude `metres` due north of the hospital, on earthdistance's sphere."""
    lat: Decimal = await pool.fetchval(
        "SELECT $1::numeric + degrees($2::float8 / earth())::numeric",
        Decimal(str(hospital.latitude)),
        metres,
    )
    return lat


async def test_check_in_inside_stores_the_coordinates(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    token = await booked(pool, hospital)
    lat, lon = Decimal("28.61450000"), Decimal("77.20950000")  # about 70 m away
    row = await pool.fetchrow(CHECK_IN, token["token_id"], lat, lon, None)
    assert row["status"] == "CHECKED_IN"
    assert (row["check_in_latitude"], row["check_in_longitude"]) == (lat, lon)
    assert row["check_in_override_reason"] is None
    assert row["check_in_time"] is not None
    assert (await history(pool, token["token_id"]))[-1]["change_reason"] == "CHECK_IN"


async def test_check_in_outside_is_refused_with_the_distance(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    token = await booked(pool, hospital)
    lat = await north_of(pool, hospital, 1500)
    with raises_sqlstate("OPD13") as info:
        await pool.fetchrow(
            CHECK_IN, token["token_id"], lat, Decimal(str(hospital.longitude)), None
        )
    assert "you are 1500 m from the hospital; check-in works within 200 m" in str(info.value)
    assert json.loads(info.value.detail) == {"distance_m": 1500, "radius_m": 200}
    assert (
        await pool.fetchrow("SELECT status FROM tokens WHERE token_id = $1", token["token_id"])
    )[0] == "BOOKED"


async def test_check_in_on_the_boundary_is_accepted(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    lon = Decimal(str(hospital.longitude))
    on_circle = await north_of(pool, hospital, hospital.radius_m)
    distance = await pool.fetchval(
        "SELECT distance_to_hospital_m($1, $2::numeric, $3::numeric)",
        hospital.hospital_id,
        on_circle,
        lon,
    )
    assert abs(distance - hospital.radius_m) < 0.01
    token = await booked(pool, hospital)
    row = await pool.fetchrow(CHECK_IN, token["token_id"], on_circle, lon, None)
    assert row["status"] == "CHECKED_IN"

    # Two metres further out is outside.
    other = await booked(pool, hospital)
    with raises_sqlstate("OPD13") as info:
        await pool.fetchrow(
            CHECK_IN,
            other["token_id"],
            await north_of(pool, hospital, hospital.radius_m + 2),
            lon,
            None,
        )
    assert "you are 202 m" in str(info.value)


async def test_staff_override_bypasses_the_geofence(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    far = await north_of(pool, hospital, 50_000)
    token = await booked(pool, hospital)
    row = await pool.fetchrow(
        CHECK_IN, token["token_id"], far, Decimal(str(hospital.longitude)), "phone GPS is off"
    )
    assert row["status"] == "CHECKED_IN"
    assert row["check_in_override_reason"] == "phone GPS is off"
    assert row["check_in_latitude"] == far.quantize(Decimal("0.00000001"))
    assert (await history(pool, token["token_id"]))[-1][
        "change_reason"
    ] == "CHECK_IN_OVERRIDE: phone GPS is off"

    # Without coordinates, only an override with a reason checks in.
    no_gps = await booked(pool, hospital)
    with raises_sqlstate("OPD16"):
        await pool.fetchrow(CHECK_IN, no_gps["token_id"], None, None, None)
    with raises_sqlstate("OPD16"):
        await pool.fetchrow(CHECK_IN, no_gps["token_id"], None, None, "  ")
    row = await pool.fetchrow(CHECK_IN, no_gps["token_id"], None, None, "patient at the desk")
    assert row["status"] == "CHECKED_IN" and row["check_in_latitude"] is None

    # A token is checked in once.
    with raises_sqlstate("OPD10"):
        await pool.fetchrow(CHECK_IN, no_gps["token_id"], None, None, "again")


# ETA ------------------------------------------------------------------------------------------
CONSULT, BUFFER = 12, 3  # minutes; distinct numbers so a mix-up shows


async def queue(conn: asyncpg.Connection, hospital: factory.Hospital) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM doctor_queue($1, hospital_today($2))",
        hospital.doctor.doctor_id,
        hospital.hospital_id,
    )


async def minutes_per_call(conn: asyncpg.Connection, hospital: factory.Hospital) -> float:
    """The doctor's expected minutes per call: for a doctor without history, the configured
    consultation + buffer read as an upper bound (docs/eta.md), less expected no-shows."""
    return await conn.fetchval("SELECT call_mins FROM doctor_eta_basis($1, hospital_today($2))",
                               hospital.doctor.doctor_id, hospital.hospital_id)


async def queue_in_consultation(
    pool: asyncpg.Pool, conn: asyncpg.Connection, waiting: int = 3
) -> tuple[factory.Hospital, asyncpg.Record, list[asyncpg.Record], datetime]:
    """At 10:00 one patient goes in and `waiting` walk-ins queue.

    Returns (hospital, the current token, the queued tokens, 10:00).
    """
    hospital = await factory.make_hospital(
        pool, doctors=1, avg_minutes=CONSULT, buffer_minutes=BUFFER
    )
    t0 = await local_time(conn, hospital, "10:00")
    await set_clock(conn, t0)
    current = await issue_on(conn, pool, hospital)
    await set_status(conn, current["token_id"], "WAITING", "IN_CONSULTATION")
    queued = [await issue_on(conn, pool, hospital) for _ in range(waiting)]
    return hospital, current, queued, t0


async def test_eta_counts_the_current_consultation_and_each_patient_ahead(
    pool: asyncpg.Pool, clock_conn: asyncpg.Connection
) -> None:
    # doctor_queue (docs/eta.md): the doctor is free after the current consultation's expected
    # remaining time; each later patient adds the expected minutes per call. A doctor without
    # history starts from the configured consultation + buffer, so the first waiting patient
    # waits less than a whole slot and each later one about the expected minutes per call more.
    hospital, current, queued, t0 = await queue_in_consultation(pool, clock_conn)
    await set_clock(clock_conn, t0 + timedelta(minutes=4))
    rows = await queue(clock_conn, hospital)
    assert [(r["token_id"], r["queue_position"], r["eta_minutes"]) for r in rows][0] == (
        current["token_id"],
        0,
        0,
    )
    waiting = rows[1:]
    assert [(r["token_id"], r["queue_position"]) for r in waiting] == [
        (t["token_id"], pos) for pos, t in enumerate(queued, 1)
    ]
    etas = [r["eta_minutes"] for r in waiting]
    assert 0 < etas[0] < CONSULT + BUFFER
    gaps = [b - a for a, b in zip(etas, etas[1:], strict=False)]
    per_call = await minutes_per_call(clock_conn, hospital)
    assert per_call < CONSULT + BUFFER
    assert all(0.6 * per_call <= g <= 1.4 * per_call for g in gaps), (gaps, per_call)
    # The range holds the median and widens with the position.
    assert all(r["eta_low_minutes"] <= r["eta_minutes"] <= r["eta_high_minutes"] for r in waiting)
    widths = [r["eta_high_minutes"] - r["eta_low_minutes"] for r in waiting]
    assert widths == sorted(widths) and widths[-1] > widths[0]
    assert not any(r["eta_beyond_shift"] for r in waiting)


async def test_eta_follows_the_clock_and_the_queue(
    pool: asyncpg.Pool, clock_conn: asyncpg.Connection
) -> None:
    hospital, current, queued, t0 = await queue_in_consultation(pool, clock_conn)
    await set_clock(clock_conn, t0 + timedelta(minutes=1))
    at_1 = [r["eta_minutes"] for r in await queue(clock_conn, hospital)][1:]
    await set_clock(clock_conn, t0 + timedelta(minutes=4))
    at_4 = [r["eta_minutes"] for r in await queue(clock_conn, hospital)][1:]
    # Three minutes of the consultation passed: every wait is about three minutes shorter.
    assert all(2 <= a - b <= 4 for a, b in zip(at_1, at_4, strict=True)), (at_1, at_4)
    # An overrunning consultation is expected to end soon, never "now" and never negative.
    await set_clock(clock_conn, t0 + timedelta(minutes=CONSULT + 20))
    overrun = [r["eta_minutes"] for r in await queue(clock_conn, hospital)][1:]
    assert 0 < overrun[0] < at_4[0]
    for token, eta in zip(queued, overrun, strict=True):
        assert await clock_conn.fetchval("SELECT calculate_token_eta($1)", token["token_id"]) == eta
    assert await clock_conn.fetchval("SELECT calculate_token_eta($1)", current["token_id"]) == 0


async def test_eta_counts_checked_in_tokens_in_priority_order(
    pool: asyncpg.Pool, clock_conn: asyncpg.Connection
) -> None:
    hospital, _current, queued, t0 = await queue_in_consultation(pool, clock_conn, waiting=2)
    conn = clock_conn
    await set_clock(conn, t0 + timedelta(minutes=1))
    online = await issue_on(
        conn, pool, hospital, booking_type="ONLINE", scheduled=t0 + timedelta(minutes=2)
    )
    senior = await issue_on(conn, pool, hospital, priority=2)
    emergency = await issue_on(conn, pool, hospital, booking_type="EMERGENCY")
    rows = await queue(conn, hospital)
    # BOOKED is not in the hall: not in the queue. CHECKED_IN tokens are.
    assert online["token_id"] not in {r["token_id"] for r in rows}
    assert [r["token_id"] for r in rows[1:]] == [
        emergency["token_id"],
        senior["token_id"],
        queued[0]["token_id"],
        queued[1]["token_id"],
    ]
    assert [r["queue_position"] for r in rows[1:]] == [1, 2, 3, 4]
    etas = [r["eta_minutes"] for r in rows[1:]]
    assert etas == sorted(etas) and len(set(etas)) == 4

    await conn.execute(
        "SELECT 1 FROM check_in_token($1, NULL, NULL, 'at the desk', NULL)", online["token_id"]
    )
    after = await queue(conn, hospital)
    assert [r["token_id"] for r in after[1:]] == [
        emergency["token_id"],
        senior["token_id"],
        queued[0]["token_id"],
        queued[1]["token_id"],
        online["token_id"],
    ]


async def test_tokens_of_yesterday_do_not_count(
    pool: asyncpg.Pool, clock_conn: asyncpg.Connection
) -> None:
    conn = clock_conn
    hospital = await factory.make_hospital(
        pool, doctors=1, avg_minutes=CONSULT, buffer_minutes=BUFFER
    )
    await pool.execute(
        """INSERT INTO cabin_doctors
               (cabin_id, doctor_id, shift_date, shift_start_time, shift_end_time)
           VALUES ($1, $2, hospital_today($3) - 1, '00:00', '23:59:59')""",
        hospital.doctor.cabin_id,
        hospital.doctor.doctor_id,
        hospital.hospital_id,
    )
    # Yesterday: one patient left in consultation, two left waiting (nobody closed the day).
    await set_clock(conn, await local_time(conn, hospital, "10:00", days=-1))
    stale = [await issue_on(conn, pool, hospital) for _ in range(3)]
    await set_status(conn, stale[0]["token_id"], "WAITING", "IN_CONSULTATION")
    yesterday = stale[0]["visit_date"]

    t0 = await local_time(conn, hospital, "10:00")
    await set_clock(conn, t0)
    today = [await issue_on(conn, pool, hospital) for _ in range(2)]
    assert today[0]["visit_date"] == yesterday + timedelta(days=1)
    rows = await queue(conn, hospital)
    assert [(r["token_id"], r["queue_position"]) for r in rows] == [
        (today[0]["token_id"], 1),
        (today[1]["token_id"], 2),
    ]
    # Nobody in consultation today (yesterday's leftover does not count): the first waiting
    # patient is next, the second about one call's expected minutes later.
    etas = [r["eta_minutes"] for r in rows]
    per_call = await minutes_per_call(conn, hospital)
    assert etas[0] < CONSULT + BUFFER
    assert 0.6 * per_call <= etas[1] - etas[0] <= 1.4 * per_call, (etas, per_call)
    assert await conn.fetchval("SELECT calculate_token_eta($1)", today[1]["token_id"]) == etas[1]
    called = await conn.fetchrow(
        "SELECT * FROM call_next_token($1, NULL)", hospital.doctor.doctor_id
    )
    assert called["token_id"] == today[0]["token_id"]
