"""Monthly partitions of tokens: created once, safely in parallel, and used for the right month."""

from __future__ import annotations

import asyncio
import secrets
from datetime import date, timedelta

import asyncpg
import pytest

from tests.db.helpers import raises_sqlstate
from tests.support import factory

pytestmark = pytest.mark.calendar

CREATE = "SELECT create_partition_if_not_exists('tokens', $1)"


async def partition_of(pool: asyncpg.Pool, token_id: object) -> str:
    name: str = await pool.fetchval(
        "SELECT tableoid::regclass::text FROM tokens WHERE token_id = $1", token_id
    )
    return name


async def test_create_partition_is_idempotent(pool: asyncpg.Pool) -> None:
    day = date(2300 + secrets.randbelow(600), 1 + secrets.randbelow(12), 17)
    name = f"tokens_{day:%Y_%m}"
    assert await pool.fetchval(CREATE, day) == name
    assert await pool.fetchval(CREATE, day) is None
    assert await pool.fetchval(CREATE, day.replace(day=1)) is None
    bound = await pool.fetchval(
        "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = $1", name
    )
    next_month = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    assert bound == f"FOR VALUES FROM ('{day.replace(day=1)}') TO ('{next_month}')"
    with raises_sqlstate("OPD16"):
        await pool.fetchval("SELECT create_partition_if_not_exists('token_history', current_date)")


async def test_concurrent_creators_make_one_partition(pool: asyncpg.Pool) -> None:
    day = date(2900 + secrets.randbelow(99), 1 + secrets.randbelow(12), 1)
    results = await asyncio.gather(*(pool.fetchval(CREATE, day) for _ in range(4)))
    assert sorted(results, key=str) == [None, None, None, f"tokens_{day:%Y_%m}"]
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM pg_inherits WHERE inhrelid = to_regclass($1)",
            f"tokens_{day:%Y_%m}",
        )
        == 1
    )


async def test_ensure_token_partitions_is_idempotent(pool: asyncpg.Pool) -> None:
    assert await pool.fetchval("SELECT ensure_token_partitions(2)") == []


async def test_tokens_land_in_their_month(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    today_token = await factory.issue(pool, hospital)
    assert (
        await partition_of(pool, today_token["token_id"])
        == f"tokens_{today_token['visit_date']:%Y_%m}"
    )

    # A booking for a later month, once that month's partition exists, lands in it.
    today: date = today_token["visit_date"]
    # The 12th of next month: another month on every day of the year, and at most 42 days
    # ahead, well inside the 92-day booking horizon (three months ahead was past it early in a
    # month: issue 11).
    later = (today.replace(day=1) + timedelta(days=32)).replace(day=12)
    await pool.execute(
        """INSERT INTO cabin_doctors
               (cabin_id, doctor_id, shift_date, shift_start_time, shift_end_time)
           VALUES ($1, $2, $3, '09:00', '17:00')""",
        hospital.doctor.cabin_id,
        hospital.doctor.doctor_id,
        later,
    )
    slot = await pool.fetchval(
        "SELECT hospital_local_time($1, $2, '10:00')", hospital.hospital_id, later
    )
    await pool.fetchval(CREATE, later)
    booked = await factory.issue(pool, hospital, booking_type="ONLINE", scheduled=slot)
    assert booked["visit_date"] == later
    assert await partition_of(pool, booked["token_id"]) == f"tokens_{later:%Y_%m}"
    # Numbers restart each day.
    assert booked["token_number"] == "CARD-001"
