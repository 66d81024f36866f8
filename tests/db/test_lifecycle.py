"""The token lifecycle through plain SQL: the tokens trigger allows exactly token_transitions."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from tests.db.helpers import (
    STATUSES,
    history,
    issue_on,
    local_time,
    raises_sqlstate,
    set_clock,
    set_status,
)
from tests.support import factory

pytestmark = pytest.mark.calendar

# The design's lifecycle. The table is the source of truth for the trigger; this copy makes a
# change to it a visible decision.
EXPECTED_TRANSITIONS = {
    ("BOOKED", "CHECKED_IN"),
    ("BOOKED", "NO_SHOW"),
    ("BOOKED", "CANCELLED"),
    ("BOOKED", "RESCHEDULED"),
    ("CHECKED_IN", "WAITING"),
    ("CHECKED_IN", "IN_CONSULTATION"),
    ("CHECKED_IN", "NO_SHOW"),
    ("CHECKED_IN", "CANCELLED"),
    ("CHECKED_IN", "RESCHEDULED"),
    ("WAITING", "IN_CONSULTATION"),
    ("WAITING", "NO_SHOW"),
    ("WAITING", "CANCELLED"),
    ("WAITING", "CHECKED_IN"),
    ("IN_CONSULTATION", "COMPLETED"),
    ("IN_CONSULTATION", "WAITING"),
    ("COMPLETED", "IN_CONSULTATION"),
    ("NO_SHOW", "CHECKED_IN"),
}

# A legal path from a fresh online booking (BOOKED) to each status.
PATH_TO = {
    "BOOKED": (),
    "CHECKED_IN": ("CHECKED_IN",),
    "WAITING": ("CHECKED_IN", "WAITING"),
    "IN_CONSULTATION": ("CHECKED_IN", "WAITING", "IN_CONSULTATION"),
    "COMPLETED": ("CHECKED_IN", "WAITING", "IN_CONSULTATION", "COMPLETED"),
    "NO_SHOW": ("CHECKED_IN", "NO_SHOW"),
    "CANCELLED": ("CANCELLED",),
    "RESCHEDULED": ("RESCHEDULED",),
}


async def transitions(conn: asyncpg.Connection) -> set[tuple[str, str]]:
    return {
        (r["from_status"], r["to_status"])
        for r in await conn.fetch("SELECT * FROM token_transitions")
    }


async def test_transition_table_is_the_designed_lifecycle(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await transitions(conn) == EXPECTED_TRANSITIONS


def assert_stamped(before: asyncpg.Record, after: asyncpg.Record, at: object) -> None:
    """The time columns of one transition (`at` is the clock during it)."""
    old, new = before["status"], after["status"]
    if new == "CHECKED_IN":
        if old == "BOOKED":
            assert after["check_in_time"] == at
            # An online booking arriving early queues from its slot (fairness rule).
            assert after["queue_joined_at"] == before["scheduled_time"]
        else:  # undo of a call or of a no-show: back in the queue at the old place
            assert after["called_time"] is None and after["closed_at"] is None
            assert after["queue_joined_at"] == before["queue_joined_at"]
    elif new == "WAITING":
        if old == "IN_CONSULTATION":
            assert after["consultation_start_time"] is None
        else:
            assert after["called_time"] == at
            assert after["call_count"] == before["call_count"] + 1
    elif new == "IN_CONSULTATION":
        if old == "COMPLETED":
            assert after["consultation_end_time"] is None
        else:
            assert after["consultation_start_time"] == at
            assert after["called_time"] is not None
    elif new == "COMPLETED":
        assert after["consultation_end_time"] == at
    else:
        assert new in ("NO_SHOW", "CANCELLED", "RESCHEDULED")
        assert after["closed_at"] == at
    if new != "CHECKED_IN":
        assert after["queue_position"] is None and after["estimated_wait_time"] is None


async def test_every_pair_of_statuses(pool: asyncpg.Pool, clock_conn: asyncpg.Connection) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    conn = clock_conn
    legal = await transitions(conn)
    t0 = await local_time(conn, hospital, "10:00")
    t1 = t0 + timedelta(minutes=7)
    refused = allowed = 0
    for start in STATUSES:
        await set_clock(conn, t0)
        outer = conn.transaction()
        await outer.start()
        try:
            booked = await issue_on(
                conn, pool, hospital, booking_type="ONLINE", scheduled=t0 + timedelta(hours=1)
            )
            assert booked["status"] == "BOOKED"
            tid = booked["token_id"]
            await set_status(conn, tid, *PATH_TO[start])
            await set_clock(conn, t1)  # so this transition's stamps differ from the path's
            before = await conn.fetchrow("SELECT * FROM tokens WHERE token_id = $1", tid)
            assert before["status"] == start
            seen = len(await history(conn, tid))
            for target in STATUSES:
                if target == start:
                    continue
                update = "UPDATE tokens SET status = $2 WHERE token_id = $1 RETURNING *"
                if (start, target) not in legal:
                    with raises_sqlstate("OPD10") as info:
                        async with conn.transaction():
                            await conn.fetchrow(update, tid, target)
                    assert f"cannot go from {start} to {target}" in str(info.value)
                    refused += 1
                    continue
                savepoint = conn.transaction()
                await savepoint.start()
                try:
                    after = await conn.fetchrow(update, tid, target)
                    rows = await history(conn, tid)
                    assert len(rows) == seen + 1, (start, target)
                    assert (rows[-1]["previous_status"], rows[-1]["new_status"]) == (start, target)
                    assert rows[-1]["changed_at"] == t1
                    assert_stamped(before, after, t1)
                    allowed += 1
                finally:
                    await savepoint.rollback()
            # Setting the status it already has is no transition and leaves no trace.
            await conn.execute("UPDATE tokens SET status = status WHERE token_id = $1", tid)
            assert len(await history(conn, tid)) == seen
        finally:
            await outer.rollback()
    assert allowed == len(legal)
    assert refused == 8 * 7 - len(legal)


async def test_each_transition_writes_one_history_row(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    token = await factory.issue(pool, hospital)  # a walk-in: issued as CHECKED_IN
    await set_status(pool, token["token_id"], "WAITING", "IN_CONSULTATION", "COMPLETED")
    rows = await history(pool, token["token_id"])
    assert [(r["previous_status"], r["new_status"]) for r in rows] == [
        (None, "CHECKED_IN"),
        ("CHECKED_IN", "WAITING"),
        ("WAITING", "IN_CONSULTATION"),
        ("IN_CONSULTATION", "COMPLETED"),
    ]
    assert rows[0]["change_reason"] == "ISSUED"
    done = await pool.fetchrow("SELECT * FROM tokens WHERE token_id = $1", token["token_id"])
    assert (
        done["check_in_time"]
        <= done["called_time"]
        <= done["consultation_start_time"]
        <= done["consultation_end_time"]
    )


async def test_eta_write_back_writes_no_history(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    token = await factory.issue(pool, hospital)
    await factory.issue(pool, hospital)
    before = await pool.fetchrow("SELECT * FROM tokens WHERE token_id = $1", token["token_id"])
    await pool.execute(
        """UPDATE tokens SET queue_position = 7, estimated_wait_time = 42, eta_updated_at = opd_now()
           WHERE token_id = $1""",
        token["token_id"],
    )
    await pool.execute(
        "SELECT doctor_queue_snapshot($1, $2, true)", hospital.doctor.doctor_id, token["visit_date"]
    )
    after = await pool.fetchrow("SELECT * FROM tokens WHERE token_id = $1", token["token_id"])
    assert after["queue_position"] == 1 and after["estimated_wait_time"] is not None
    assert after["updated_at"] == before["updated_at"]
    assert len(await history(pool, token["token_id"])) == 1


async def test_no_show_before_arrival_then_arrival_stamps_check_in(pool: asyncpg.Pool) -> None:
    # BOOKED -> NO_SHOW -> CHECKED_IN: the patient never checked in before, so the return to the
    # queue is their first arrival and must stamp check_in_time and queue_joined_at (without a
    # queue_joined_at the token sorts after everyone, whatever its priority).
    hospital = await factory.make_hospital(pool, doctors=1)
    slot = await pool.fetchval("SELECT opd_now()")  # not later: a minute on may be tomorrow
    booked = await factory.issue(pool, hospital, booking_type="ONLINE", scheduled=slot)
    await set_status(pool, booked["token_id"], "NO_SHOW", "CHECKED_IN")
    back = await pool.fetchrow("SELECT * FROM tokens WHERE token_id = $1", booked["token_id"])
    assert back["status"] == "CHECKED_IN"
    assert back["closed_at"] is None
    assert back["check_in_time"] is not None
    assert back["queue_joined_at"] is not None


async def test_tokens_of_another_day_cannot_join_the_queue(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    await pool.execute(
        """INSERT INTO cabin_doctors
               (cabin_id, doctor_id, shift_date, shift_start_time, shift_end_time)
           VALUES ($1, $2, hospital_today($3) + 1, '09:00', '17:00')""",
        hospital.doctor.cabin_id,
        hospital.doctor.doctor_id,
        hospital.hospital_id,
    )
    tomorrow = await pool.fetchval(
        "SELECT hospital_local_time($1, hospital_today($1) + 1, '10:00')", hospital.hospital_id
    )
    token = await factory.issue(pool, hospital, scheduled=tomorrow)
    assert token["status"] == "BOOKED"  # a walk-in for tomorrow waits for check-in
    with raises_sqlstate("OPD10") as info:
        await set_status(pool, token["token_id"], "CHECKED_IN")
    assert "not today" in str(info.value)
