"""Many desks and many clicks at once: numbering without gaps or repeats, one call at a time."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from tests.db.helpers import raises_sqlstate, set_status
from tests.support import factory

pytestmark = pytest.mark.calendar

ISSUE = "SELECT * FROM issue_token($1, $2, $3, NULL, 'WALK_IN', 1, NULL, 'test')"
CALL_NEXT = "SELECT * FROM call_next_token($1, NULL)"


async def test_fifty_concurrent_issuers_get_numbers_1_to_50(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=2)
    patients = [await factory.make_patient(pool, hospital) for _ in range(50)]

    async def issue(n: int) -> asyncpg.Record:
        doctor = hospital.doctors[n % 2]
        row: asyncpg.Record = await pool.fetchrow(
            ISSUE, hospital.hospital_id, patients[n], doctor.doctor_id
        )
        return row

    tokens = await asyncio.gather(*(issue(n) for n in range(50)))
    assert sorted(t["serial"] for t in tokens) == list(range(1, 51))
    assert sorted(t["token_number"] for t in tokens) == [f"CARD-{n:03d}" for n in range(1, 51)]
    assert len({t["tracking_code"] for t in tokens}) == 50
    assert (
        await pool.fetchval(
            "SELECT last_number FROM token_counters WHERE dept_id = $1", hospital.dept_id
        )
        == 50
    )


async def test_a_rolled_back_issue_leaves_no_gap(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    first = await factory.issue(pool, hospital)
    patient = await factory.make_patient(pool, hospital)
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        undone = await conn.fetchrow(
            ISSUE, hospital.hospital_id, patient, hospital.doctor.doctor_id
        )
        assert undone["token_number"] == "CARD-002"
        await tx.rollback()
    after = await factory.issue(pool, hospital, patient_id=patient)
    assert (first["token_number"], after["token_number"]) == ("CARD-001", "CARD-002")
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM token_history WHERE token_id = $1", undone["token_id"]
        )
        == 0
    )


async def test_department_day_limit(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=2, max_tokens_per_day=3)
    for _ in range(3):
        await factory.issue(pool, hospital)
    with raises_sqlstate("OPD11") as info:
        await factory.issue(pool, hospital, doctor=hospital.doctors[1])
    assert "Cardiology is full for" in str(info.value)
    assert "all 3 tokens of the day are issued" in str(info.value)
    assert (
        await pool.fetchval(
            "SELECT last_number FROM token_counters WHERE dept_id = $1", hospital.dept_id
        )
        == 3
    )


async def test_doctor_session_limit(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=2, max_tokens_per_session=2)
    first = await factory.issue(pool, hospital)
    await factory.issue(pool, hospital)
    with raises_sqlstate("OPD11") as info:
        await factory.issue(pool, hospital)
    assert "Dr. Test 1 is full for" in str(info.value)
    assert "2 of 2 tokens issued" in str(info.value)
    # The refusal took no number; another doctor of the department gets the next one.
    other = await factory.issue(pool, hospital, doctor=hospital.doctors[1])
    assert other["token_number"] == "CARD-003"
    # A cancelled token frees its place in the session.
    await set_status(pool, first["token_id"], "CANCELLED")
    again = await factory.issue(pool, hospital)
    assert again["token_number"] == "CARD-004"


async def test_concurrent_issuers_respect_the_session_limit(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1, max_tokens_per_session=5)
    patients = [await factory.make_patient(pool, hospital) for _ in range(12)]
    results = await asyncio.gather(
        *(
            pool.fetchrow(ISSUE, hospital.hospital_id, p, hospital.doctor.doctor_id)
            for p in patients
        ),
        return_exceptions=True,
    )
    issued = [r for r in results if isinstance(r, asyncpg.Record)]
    refused = [r for r in results if not isinstance(r, asyncpg.Record)]
    assert sorted(t["serial"] for t in issued) == [1, 2, 3, 4, 5]
    assert len(refused) == 7
    assert all(isinstance(e, asyncpg.PostgresError) and e.sqlstate == "OPD11" for e in refused), (
        refused
    )


async def test_twenty_concurrent_call_next_never_double_call(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    doctor = hospital.doctor.doctor_id
    queued = {(await factory.issue(pool, hospital))["token_id"] for _ in range(10)}
    called: list[uuid.UUID] = []
    outcomes: dict[str, int] = {}
    for _ in range(11):
        results = await asyncio.gather(
            *(pool.fetchrow(CALL_NEXT, doctor) for _ in range(20)), return_exceptions=True
        )
        winners = [r for r in results if isinstance(r, asyncpg.Record)]
        for error in results:
            if not isinstance(error, asyncpg.Record):
                assert isinstance(error, asyncpg.PostgresError), error
                assert error.sqlstate in ("OPD10", "OPD12"), error
                outcomes[error.sqlstate] = outcomes.get(error.sqlstate, 0) + 1
        assert len(winners) <= 1
        active = await pool.fetchval(
            """SELECT count(*) FROM tokens
               WHERE doctor_id = $1 AND status IN ('WAITING', 'IN_CONSULTATION')""",
            doctor,
        )
        assert active == len(winners)
        if not winners:
            break
        token_id = winners[0]["token_id"]
        assert winners[0]["status"] == "WAITING" and winners[0]["call_count"] == 1
        called.append(token_id)
        await set_status(pool, token_id, "IN_CONSULTATION", "COMPLETED")
    assert len(called) == len(set(called)) == 10
    assert set(called) == queued
    assert outcomes["OPD10"] == 10 * 19  # someone was already called
    assert outcomes["OPD12"] == 20  # the last round: nobody waiting
    assert (
        await pool.fetchval(
            """SELECT count(*) FROM token_history
               WHERE new_status = 'WAITING' AND token_id = ANY($1::uuid[])""",
            list(queued),
        )
        == 10
    )


async def test_concurrent_complete_and_call_next(pool: asyncpg.Pool) -> None:
    # A double click on "complete and call next": the second click finds the new call in place.
    hospital = await factory.make_hospital(pool, doctors=1)
    doctor = hospital.doctor.doctor_id
    for _ in range(3):
        await factory.issue(pool, hospital)
    first = await pool.fetchrow(CALL_NEXT, doctor)
    await set_status(pool, first["token_id"], "IN_CONSULTATION")
    results = await asyncio.gather(
        *(
            pool.fetchrow("SELECT * FROM call_next_token($1, NULL, true)", doctor)
            for _ in range(10)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, asyncpg.Record)]
    assert len(winners) == 1
    assert all(
        isinstance(e, asyncpg.PostgresError) and e.sqlstate == "OPD10"
        for e in results
        if not isinstance(e, asyncpg.Record)
    )
    statuses = dict(
        await pool.fetch("SELECT token_id, status FROM tokens WHERE doctor_id = $1", doctor)
    )
    assert statuses[first["token_id"]] == "COMPLETED"
    assert sorted(statuses.values()) == ["CHECKED_IN", "COMPLETED", "WAITING"]
