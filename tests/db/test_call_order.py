"""Who call_next_token calls: priority first, then the fairness rule of queue_joined_at."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from tests.db.helpers import issue_on, local_time, raises_sqlstate, set_clock, set_status
from tests.support import factory

pytestmark = pytest.mark.calendar

CALL_NEXT = "SELECT * FROM call_next_token($1, NULL)"


async def call_all(conn: asyncpg.Connection | asyncpg.Pool, doctor_id: object) -> list[str]:
    """Call, see and complete every patient of the doctor; the token numbers in call order."""
    order = []
    while True:
        try:
            token = await conn.fetchrow(CALL_NEXT, doctor_id)
        except asyncpg.PostgresError as error:
            assert error.sqlstate == "OPD12", error
            return order
        order.append(token["token_number"])
        await set_status(conn, token["token_id"], "IN_CONSULTATION", "COMPLETED")


async def test_priority_then_arrival(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    issued = [
        await factory.issue(pool, hospital, priority=p, booking_type=kind)
        for p, kind in [
            (1, "WALK_IN"),
            (2, "WALK_IN"),
            (1, "EMERGENCY"),
            (1, "WALK_IN"),
            (2, "WALK_IN"),
            (3, "WALK_IN"),
        ]
    ]
    assert [t["priority"] for t in issued] == [1, 2, 3, 1, 2, 3]
    assert await call_all(pool, hospital.doctor.doctor_id) == [
        "CARD-003",
        "CARD-006",
        "CARD-002",
        "CARD-005",
        "CARD-001",
        "CARD-004",
    ]


async def test_online_booking_checked_in_early_queues_at_its_slot(
    pool: asyncpg.Pool, clock_conn: asyncpg.Connection
) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    conn = clock_conn
    t0 = await local_time(conn, hospital, "10:00")
    lat, lon = hospital.latitude, hospital.longitude
    await set_clock(conn, t0)
    early = await issue_on(
        conn, pool, hospital, booking_type="ONLINE", scheduled=t0 + timedelta(minutes=60)
    )
    late = await issue_on(
        conn, pool, hospital, booking_type="ONLINE", scheduled=t0 + timedelta(minutes=30)
    )
    within_grace = await issue_on(
        conn, pool, hospital, booking_type="ONLINE", scheduled=t0 + timedelta(minutes=35)
    )

    await set_clock(conn, t0 + timedelta(minutes=10))
    walk_in_a = await issue_on(conn, pool, hospital)  # queues from 10:10
    await set_clock(conn, t0 + timedelta(minutes=20))
    await conn.execute(
        "SELECT 1 FROM check_in_token($1, $2, $3, NULL, NULL)", early["token_id"], lat, lon
    )
    await set_clock(conn, t0 + timedelta(minutes=45))  # 10 min after 10:35: in grace
    await conn.execute(
        "SELECT 1 FROM check_in_token($1, $2, $3, NULL, NULL)", within_grace["token_id"], lat, lon
    )
    await set_clock(conn, t0 + timedelta(minutes=50))  # 20 min after 10:30: too late
    await conn.execute(
        "SELECT 1 FROM check_in_token($1, $2, $3, NULL, NULL)", late["token_id"], lat, lon
    )
    await set_clock(conn, t0 + timedelta(minutes=70))
    walk_in_b = await issue_on(conn, pool, hospital)  # queues from 11:10

    joined = dict(
        await conn.fetch(
            "SELECT token_id, queue_joined_at FROM tokens WHERE doctor_id = $1",
            hospital.doctor.doctor_id,
        )
    )
    assert joined[early["token_id"]] == t0 + timedelta(minutes=60)  # its slot, not 10:20
    assert joined[within_grace["token_id"]] == t0 + timedelta(minutes=35)
    assert joined[late["token_id"]] == t0 + timedelta(minutes=50)
    assert joined[walk_in_a["token_id"]] == t0 + timedelta(minutes=10)
    assert joined[walk_in_b["token_id"]] == t0 + timedelta(minutes=70)

    order = await call_all(conn, hospital.doctor.doctor_id)
    numbers = {
        t["token_id"]: t["token_number"] for t in (early, late, within_grace, walk_in_a, walk_in_b)
    }
    assert order == [
        numbers[walk_in_a["token_id"]],
        numbers[within_grace["token_id"]],
        numbers[late["token_id"]],
        numbers[early["token_id"]],
        numbers[walk_in_b["token_id"]],
    ]


async def test_paused_doctor_cannot_call(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    token = await factory.issue(pool, hospital)
    await pool.execute("SELECT 1 FROM set_doctor_paused($1, true)", hospital.doctor.doctor_id)
    with raises_sqlstate("OPD14") as info:
        await pool.fetchrow(CALL_NEXT, hospital.doctor.doctor_id)
    assert "on a break" in str(info.value)
    with raises_sqlstate("OPD14"):
        await pool.fetchrow(
            "SELECT * FROM set_token_status($1, 'WAITING', NULL)", token["token_id"]
        )
    await pool.execute("SELECT 1 FROM set_doctor_paused($1, false)", hospital.doctor.doctor_id)
    called = await pool.fetchrow(CALL_NEXT, hospital.doctor.doctor_id)
    assert called["token_id"] == token["token_id"]


async def test_call_next_with_nobody_waiting(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    slot = await pool.fetchval("SELECT opd_now()")
    await factory.issue(
        pool, hospital, booking_type="ONLINE", scheduled=slot
    )  # BOOKED: not in the hall
    with raises_sqlstate("OPD12") as info:
        await pool.fetchrow(CALL_NEXT, hospital.doctor.doctor_id)
    assert "nobody is waiting" in str(info.value)
