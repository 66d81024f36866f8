"""The engine's deferred write-back (write_back_queues): positions and ETAs reach the tokens
table, a doctor whose rows a click holds is skipped and returned (never waited for), and the
engine's read-only recompute shows positions before they are written."""

from __future__ import annotations

import asyncpg
import pytest

from tests.support import factory

pytestmark = pytest.mark.calendar


async def stored(pool: asyncpg.Pool, doctor_id: object) -> list[tuple[object, int | None]]:
    rows = await pool.fetch(
        """SELECT token_id, queue_position FROM tokens
           WHERE doctor_id = $1 AND status = 'CHECKED_IN' ORDER BY serial""", doctor_id)
    return [(r["token_id"], r["queue_position"]) for r in rows]


async def two_doctors_with_unwritten_queues(pool: asyncpg.Pool, first: int, second: int
                                            ) -> tuple[factory.Hospital, list[asyncpg.Record], list[asyncpg.Record]]:
    """Two doctors with `first` and `second` patients waiting, their stored positions cleared."""
    hospital = await factory.make_hospital(pool, doctors=2)
    a = [await factory.issue(pool, hospital, doctor=hospital.doctors[0]) for _ in range(first)]
    b = [await factory.issue(pool, hospital, doctor=hospital.doctors[1]) for _ in range(second)]
    await forget_positions(pool, hospital)
    return hospital, a, b


async def forget_positions(pool: asyncpg.Pool, hospital: factory.Hospital) -> None:
    await pool.execute("UPDATE tokens SET queue_position = NULL, estimated_wait_time = NULL "
                       "WHERE hospital_id = $1", hospital.hospital_id)


async def test_write_back_writes_every_doctor_given(pool: asyncpg.Pool) -> None:
    hospital, mine, theirs = await two_doctors_with_unwritten_queues(pool, 3, 2)
    first, second = hospital.doctors

    skipped = await pool.fetchval("SELECT write_back_queues($1::uuid[])",
                                  [first.doctor_id, second.doctor_id])

    assert skipped == []
    assert await stored(pool, first.doctor_id) == [(t["token_id"], n) for n, t in enumerate(mine, 1)]
    assert await stored(pool, second.doctor_id) == [(t["token_id"], n) for n, t in enumerate(theirs, 1)]
    etas = await pool.fetch("SELECT estimated_wait_time FROM tokens WHERE hospital_id = $1",
                            hospital.hospital_id)
    assert all(r["estimated_wait_time"] is not None for r in etas)


async def test_a_doctor_whose_rows_a_click_holds_is_skipped_not_waited_for(pool: asyncpg.Pool) -> None:
    hospital, held, other = await two_doctors_with_unwritten_queues(pool, 2, 2)
    busy, free = hospital.doctors

    async with pool.acquire() as click:
        async with click.transaction():
            # An API transaction in the middle of a call: it holds the row.
            await click.execute("SELECT 1 FROM tokens WHERE token_id = $1 FOR UPDATE",
                                held[0]["token_id"])
            skipped = await pool.fetchval("SELECT write_back_queues($1::uuid[])",
                                          [busy.doctor_id, free.doctor_id])
            assert skipped == [busy.doctor_id]
            # Nothing of the skipped doctor was half-written; the other doctor was written.
            assert await stored(pool, busy.doctor_id) == [(t["token_id"], None) for t in held]
            assert await stored(pool, free.doctor_id) == [(t["token_id"], n) for n, t in enumerate(other, 1)]

    assert await pool.fetchval("SELECT write_back_queues($1::uuid[])", [busy.doctor_id]) == []
    assert await stored(pool, busy.doctor_id) == [(t["token_id"], n) for n, t in enumerate(held, 1)]


async def test_recompute_shows_positions_before_they_are_written(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    doctor = hospital.doctor
    tokens = [await factory.issue(pool, hospital) for _ in range(3)]
    await forget_positions(pool, hospital)

    views = await pool.fetchval("SELECT doctor_live_views($1, '{}'::uuid[])", doctor.doctor_id)

    by_number = {v["view"]["token_number"]: v["view"] for v in views["tokens"]}
    assert [by_number[t["token_number"]]["position"] for t in tokens] == [1, 2, 3]
    assert all(by_number[t["token_number"]]["eta_minutes"] is not None for t in tokens)
    # Read-only: the stored columns wait for the write-back.
    assert await stored(pool, doctor.doctor_id) == [(t["token_id"], None) for t in tokens]
    # The patient's own read (GET /track) computes the same positions afresh.
    for n, token in enumerate(tokens, 1):
        view = await pool.fetchval("SELECT token_public_view($1)", token["token_id"])
        assert view["position"] == n


async def test_warm_up_connection_reads_only(pool: asyncpg.Pool) -> None:
    """The engine pool's per-connection warm-up (warm_up_connection) changes nothing: not a
    position, not a row, not a message."""
    await pool.execute("SELECT warm_up_connection()")  # whatever the database holds so far
    hospital, _, _ = await two_doctors_with_unwritten_queues(pool, 2, 1)
    snapshot = """SELECT (SELECT array_agg((token_id, xmin::text, queue_position) ORDER BY token_id)
                          FROM tokens WHERE hospital_id = $1),
                         (SELECT count(*) FROM notifications_log n
                          WHERE n.token_id IN (SELECT token_id FROM tokens WHERE hospital_id = $1))"""
    before = await pool.fetchrow(snapshot, hospital.hospital_id)
    await pool.execute("SELECT warm_up_connection()")
    assert await pool.fetchrow(snapshot, hospital.hospital_id) == before
