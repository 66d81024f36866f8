"""Small helpers shared by the database tests: SQLSTATE assertions, the test clock, tokens."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import asyncpg
import pytest

from app import clock
from tests.support import factory

STATUSES = (
    "BOOKED",
    "CHECKED_IN",
    "WAITING",
    "IN_CONSULTATION",
    "COMPLETED",
    "NO_SHOW",
    "CANCELLED",
    "RESCHEDULED",
)


@contextmanager
def raises_sqlstate(*codes: str) -> Iterator[Any]:
    """Like pytest.raises, for a PostgreSQL error whose SQLSTATE is one of `codes`."""
    with pytest.raises(asyncpg.PostgresError) as info:
        yield info
    assert info.value.sqlstate in codes, (
        f"expected {codes}, got {info.value.sqlstate}: {info.value}"
    )


async def set_clock(conn: asyncpg.Connection, at: datetime | None) -> None:
    """Move opd_now() on this connection (None: back to the real clock)."""
    await conn.execute("SELECT set_config('opd.fake_now', $1, false)", at.isoformat() if at else "")


async def local_time(
    conn: asyncpg.Connection, hospital: factory.Hospital, hhmm: str, days: int = 0
) -> datetime:
    """The instant of hh:mm on the hospital's today (+ days) by the flowing clock (app/clock.py),
    whatever fixed instant `conn` is set to."""
    at: datetime = await conn.fetchval(
        """SELECT hospital_local_time($1, ($4::timestamptz AT TIME ZONE h.timezone)::date + $3::int,
                                      $2::text::time)
           FROM hospitals h WHERE h.hospital_id = $1""",
        hospital.hospital_id,
        hhmm,
        days,
        clock.now(),
    )
    return at


async def issue_on(
    conn: asyncpg.Connection,
    pool: asyncpg.Pool,
    hospital: factory.Hospital,
    *,
    doctor: factory.Doctor | None = None,
    booking_type: str = "WALK_IN",
    priority: int = 1,
    scheduled: datetime | None = None,
) -> asyncpg.Record:
    """Issue a token on `conn` (so it sees that connection's clock)."""
    doctor = doctor or hospital.doctor
    patient_id = await factory.make_patient(pool, hospital)
    row: asyncpg.Record = await conn.fetchrow(
        "SELECT * FROM issue_token($1, $2, $3, NULL, $4, $5, $6, 'test')",
        hospital.hospital_id,
        patient_id,
        doctor.doctor_id,
        booking_type,
        priority,
        scheduled,
    )
    return row


async def token(conn: asyncpg.Connection | asyncpg.Pool, token_id: uuid.UUID) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow("SELECT * FROM tokens WHERE token_id = $1", token_id)
    return row


async def set_status(
    conn: asyncpg.Connection | asyncpg.Pool, token_id: uuid.UUID, *statuses: str
) -> None:
    """Plain-SQL status changes, one UPDATE per step."""
    for status in statuses:
        await conn.execute("UPDATE tokens SET status = $2 WHERE token_id = $1", token_id, status)


async def history(
    conn: asyncpg.Connection | asyncpg.Pool, token_id: uuid.UUID
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM token_history WHERE token_id = $1 ORDER BY history_id", token_id
    )
