"""Doctor leave: redistribution to colleagues, rescheduling or cancelling what nobody can take,
approval of planned leave, and refusal of bad input (sql: apply_schedule_exception)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
import pytest

from app import clock
from tests.db.helpers import raises_sqlstate
from tests.ops import helpers
from tests.ops.conftest import StaffHttp
from tests.support import factory
from tests.support.app_server import AppServer
from tests.support.ws_client import live_client

pytestmark = pytest.mark.calendar

# Walk-ins issued in this order; the priority of each (3 is an emergency).
MIXED_PRIORITIES = [1, 2, 1, 3, 1, 2]


def utc_in(hours: float) -> str:
    return (clock.now() + dt.timedelta(hours=hours)).isoformat()


async def issue_mixed(pool: asyncpg.Pool, hospital: factory.Hospital, doctor: factory.Doctor) -> list[Any]:
    tokens = []
    for priority in MIXED_PRIORITIES:
        booking = "EMERGENCY" if priority == 3 else "WALK_IN"
        tokens.append(await factory.issue(pool, hospital, doctor=doctor, booking_type=booking, priority=priority))
    return tokens


def call_order(tokens: list[Any]) -> list[Any]:
    """What call_next_token follows: priority first, then queue_joined_at, then serial."""
    return sorted(tokens, key=lambda t: (-t["priority"], t["queue_joined_at"], t["serial"]))


async def desks(data: dict[str, Any]) -> dict[str, int]:
    return {d["doctor_id"]: d["waiting_count"] for d in data["desks"]}


async def test_unplanned_leave_moves_every_patient_to_colleagues_in_one_transaction(
        pool: asyncpg.Pool, server: AppServer, staff_http: StaffHttp) -> None:
    hospital = await factory.make_hospital(pool, doctors=3)
    a, b, c = hospital.doctors
    before = await issue_mixed(pool, hospital, a)
    topic = f"department:{hospital.dept_id}"
    async with live_client(server.ws_url, hospital.keys["admin"]) as ws:
        await ws.subscribed(topic)
        await ws.data_where(topic, lambda d: {x["doctor_id"]: x["waiting_count"] for x in d["desks"]}
                            .get(str(a.doctor_id)) == 6, what="A's desk with its 6 patients")

        async with staff_http(hospital.keys["admin"]) as http:
            response = await http.post(f"/doctors/{a.doctor_id}/leave", json={
                "exception_type": "UNPLANNED_LEAVE", "end_datetime": utc_in(8), "reason": "fever"})
        assert response.status_code == 201, response.text
        leave = response.json()
        assert leave["affected_tokens_count"] == 6
        assert leave["redistribution_status"] == "REDISTRIBUTED"
        assert (leave["rescheduled_count"], leave["cancelled_count"]) == (0, 0)

        # The boards follow: A's desk empty, B and C with three patients each.
        def moved(data: dict[str, Any]) -> bool:
            counts = {x["doctor_id"]: x["waiting_count"] for x in data["desks"]}
            return counts.get(str(a.doctor_id), 0) == 0 and \
                counts.get(str(b.doctor_id)) == 3 and counts.get(str(c.doctor_id)) == 3
        await ws.data_where(topic, moved, what="A's patients under B and C on the department board")

    ids = [t["token_id"] for t in before]
    after = {r["token_id"]: r for r in await pool.fetch("SELECT * FROM tokens WHERE token_id = ANY($1::uuid[])", ids)}
    assert {r["doctor_id"] for r in after.values()} == {b.doctor_id, c.doctor_id}
    assert sum(r["doctor_id"] == b.doctor_id for r in after.values()) == 3, "balanced by load: 3 and 3"
    for old in before:
        new = after[old["token_id"]]
        assert new["status"] == "CHECKED_IN"
        assert new["priority"] == old["priority"]
        assert new["queue_joined_at"] == old["queue_joined_at"], "a transfer keeps the patient's place"

    # Call order across B and C respects A's: nobody gets ahead of someone A would have called first.
    position = {q["token_id"]: q["queue_position"] for d in (b, c) for q in await helpers.queued(pool, d)}
    ordered = call_order(before)
    for earlier, later in zip(ordered, ordered[1:], strict=False):
        assert position[earlier["token_id"]] <= position[later["token_id"]], (
            f"{earlier['token_number']} (p{earlier['priority']}) is called after {later['token_number']}")

    # One TRANSFER history row per token, naming the admin key; all in one transaction.
    admin_key = await helpers.key_id(pool, hospital, "admin")
    rows = await pool.fetch(
        """SELECT * FROM token_history WHERE token_id = ANY($1::uuid[]) AND metadata ? 'from_doctor_id'""", ids)
    assert len(rows) == 6
    for row in rows:
        assert row["metadata"]["from_doctor_id"] == str(a.doctor_id)
        assert row["metadata"]["to_doctor_id"] == str(after[row["token_id"]]["doctor_id"])
        assert row["changed_by_key"] == admin_key
        assert row["change_reason"].startswith("LEAVE")
    assert len({r["changed_at"] for r in rows}) == 1, "all moves were written by one transaction"

    # Moved patients are not told their token was cancelled or rescheduled.
    assert await helpers.notifications(pool, ids, "CANCELLED") == []
    assert await helpers.notifications(pool, ids, "RESCHEDULED") == []


async def test_redistribution_balances_by_existing_load(pool: asyncpg.Pool) -> None:
    """B already has two patients, C none: six of A's patients should leave both with four."""
    hospital = await factory.make_hospital(pool, doctors=3)
    a, b, c = hospital.doctors
    await factory.issue(pool, hospital, doctor=b)
    await factory.issue(pool, hospital, doctor=b)
    await issue_mixed(pool, hospital, a)

    leave = await pool.fetchrow(
        "SELECT * FROM record_schedule_exception($1, 'UNPLANNED_LEAVE', opd_now(), "
        "opd_now() + interval '8 hours', 'x', NULL)",
        a.doctor_id)
    assert leave["affected_tokens_count"] == 6
    counts = {d.name: len(await helpers.queued(pool, d)) for d in (a, b, c)}
    assert counts == {a.name: 0, b.name: 4, c.name: 4}, (
        f"queues after the leave: {counts} (each moved token seems to count twice toward its "
        "new doctor's load: v_load plus the tokens already updated to them)")


async def test_a_patient_nobody_can_take_moves_to_the_doctors_next_session(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    doctor = hospital.doctor
    tomorrow = await helpers.today(pool, hospital) + dt.timedelta(days=1)
    await helpers.add_shift(pool, doctor, tomorrow, "09:00", "13:00")
    token = await factory.issue(pool, hospital, priority=2)

    leave = await pool.fetchrow(
        "SELECT * FROM record_schedule_exception($1, 'UNPLANNED_LEAVE', opd_now(), "
        "opd_now() + interval '2 hours', 'x', NULL)",
        doctor.doctor_id)
    assert (leave["affected_tokens_count"], leave["rescheduled_count"], leave["cancelled_count"]) == (1, 1, 0)
    assert leave["redistribution_status"] == "RESCHEDULED"

    old = await pool.fetchrow("SELECT * FROM tokens WHERE token_id = $1", token["token_id"])
    assert old["status"] == "RESCHEDULED"
    new = await pool.fetchrow("SELECT * FROM tokens WHERE rescheduled_from_token_id = $1", token["token_id"])
    assert new is not None, "no replacement token"
    assert new["visit_date"] == tomorrow and new["doctor_id"] == doctor.doctor_id
    assert new["scheduled_time"] == await helpers.local(pool, hospital, tomorrow, "09:00")
    assert (new["status"], new["priority"], new["patient_id"]) == ("BOOKED", 2, token["patient_id"])
    assert await helpers.notifications(pool, [new["token_id"]], "RESCHEDULED"), "no RESCHEDULED message"
    assert await helpers.notifications(pool, [token["token_id"], new["token_id"]], "CANCELLED") == []


async def test_a_full_colleague_cannot_take_patients(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=2, max_tokens_per_session=2)
    a, b = hospital.doctors
    tomorrow = await helpers.today(pool, hospital) + dt.timedelta(days=1)
    await helpers.add_shift(pool, a, tomorrow, "09:00", "13:00")
    await factory.issue(pool, hospital, doctor=b)
    await factory.issue(pool, hospital, doctor=b)
    token = await factory.issue(pool, hospital, doctor=a)

    leave = await pool.fetchrow(
        "SELECT * FROM record_schedule_exception($1, 'EMERGENCY', opd_now(), "
        "opd_now() + interval '2 hours', 'x', NULL)",
        a.doctor_id)
    assert (leave["rescheduled_count"], leave["redistribution_status"]) == (1, "RESCHEDULED")
    assert await pool.fetchval("SELECT count(*) FROM tokens WHERE doctor_id = $1 AND visit_date = hospital_today($2)"
                               " AND status = 'CHECKED_IN'", b.doctor_id, hospital.hospital_id) == 2
    new = await pool.fetchrow("SELECT * FROM tokens WHERE rescheduled_from_token_id = $1", token["token_id"])
    assert new is not None and new["doctor_id"] == a.doctor_id and new["visit_date"] == tomorrow


async def test_without_a_later_session_the_patient_is_cancelled_and_told(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    tokens = [await factory.issue(pool, hospital), await factory.issue(pool, hospital, priority=2)]
    leave = await pool.fetchrow(
        "SELECT * FROM record_schedule_exception($1, 'UNPLANNED_LEAVE', opd_now(), "
        "opd_now() + interval '2 hours', 'x', NULL)",
        hospital.doctor.doctor_id)
    assert (leave["affected_tokens_count"], leave["cancelled_count"]) == (2, 2)
    assert leave["redistribution_status"] == "CANCELLED"
    ids = [t["token_id"] for t in tokens]
    rows = await pool.fetch("SELECT status, cancellation_reason FROM tokens WHERE token_id = ANY($1::uuid[])", ids)
    assert [r["status"] for r in rows] == ["CANCELLED", "CANCELLED"]
    assert all("no later session" in r["cancellation_reason"] for r in rows)
    told = await helpers.notifications(pool, ids, "CANCELLED")
    assert {r["token_id"] for r in told} == set(ids)


async def test_planned_leave_waits_for_an_admins_approval(pool: asyncpg.Pool, staff_http: StaffHttp) -> None:
    hospital = await factory.make_hospital(pool, doctors=2)
    a, b = hospital.doctors
    tokens = [await factory.issue(pool, hospital, doctor=a) for _ in range(3)]
    ids = [t["token_id"] for t in tokens]

    async with staff_http(hospital.keys["receptionist"]) as desk, staff_http(hospital.keys["admin"]) as admin:
        response = await desk.post(f"/doctors/{a.doctor_id}/leave", json={
            "exception_type": "PLANNED_LEAVE", "start_datetime": utc_in(-0.1), "end_datetime": utc_in(6)})
        assert response.status_code == 201, response.text
        leave = response.json()
        assert (leave["redistribution_status"], leave["needs_approval"], leave["affected_tokens_count"]) == (
            "PENDING", True, 0)
        assert {r["doctor_id"] for r in await pool.fetch(
            "SELECT doctor_id FROM tokens WHERE token_id = ANY($1::uuid[])", ids)} == {a.doctor_id}
        assert not await pool.fetchval("SELECT doctor_on_leave($1, opd_now())", a.doctor_id)

        pending = await admin.get("/leave", params={"pending": "true"})
        assert [x["exception_id"] for x in pending.json()] == [leave["exception_id"]]

        refused = await desk.post(f"/leave/{leave['exception_id']}/approve", json={})
        assert refused.status_code == 403, refused.text
        assert await pool.fetchval("SELECT approved_at FROM schedule_exceptions WHERE exception_id = $1",
                                   uuid.UUID(leave["exception_id"])) is None

        # The preview names who goes where and changes nothing: no token, history, message.
        counts = """SELECT (SELECT count(*) FROM token_history WHERE token_id = ANY($1::uuid[])),
                           (SELECT count(*) FROM notifications_log WHERE token_id = ANY($1::uuid[]))"""
        before = await pool.fetchrow(counts, ids)
        preview = await admin.get(f"/leave/{leave['exception_id']}/preview")
        assert preview.status_code == 200, preview.text
        assert [(p["token_id"], p["outcome"], p["to_doctor_name"]) for p in preview.json()] == [
            (str(i), "MOVED", b.name) for i in ids]
        assert await pool.fetchrow(counts, ids) == before
        assert {r["doctor_id"] for r in await pool.fetch(
            "SELECT doctor_id FROM tokens WHERE token_id = ANY($1::uuid[])", ids)} == {a.doctor_id}
        assert (await desk.get(f"/leave/{leave['exception_id']}/preview")).status_code == 403

        approved = await admin.post(f"/leave/{leave['exception_id']}/approve", json={})
        assert approved.status_code == 200, approved.text
        assert (approved.json()["redistribution_status"], approved.json()["affected_tokens_count"]) == (
            "REDISTRIBUTED", 3)
        assert {r["doctor_id"] for r in await pool.fetch(
            "SELECT doctor_id FROM tokens WHERE token_id = ANY($1::uuid[])", ids)} == {b.doctor_id}
        assert await pool.fetchval("SELECT doctor_on_leave($1, opd_now())", a.doctor_id)

        again = await admin.post(f"/leave/{leave['exception_id']}/approve", json={})
        assert again.status_code == 409, again.text
        assert (await admin.get(f"/leave/{leave['exception_id']}/preview")).status_code == 409
        assert (await admin.get("/leave", params={"pending": "true"})).json() == []


async def test_auto_assignment_skips_a_doctor_on_leave(pool: asyncpg.Pool) -> None:
    """issue_token with only a department must not pick the doctor who is away."""
    hospital = await factory.make_hospital(pool, doctors=2)
    a, b = hospital.doctors
    await factory.issue(pool, hospital, doctor=a)
    await factory.issue(pool, hospital, doctor=b)
    await pool.execute(
        "SELECT record_schedule_exception($1, 'UNPLANNED_LEAVE', opd_now(), "
        "opd_now() + interval '8 hours', 'x', NULL)",
        a.doctor_id)
    patient = await factory.make_patient(pool, hospital)
    token = await pool.fetchrow("SELECT * FROM issue_token($1, $2, NULL, $3, 'WALK_IN', 1, NULL, 'test')",
                                hospital.hospital_id, patient, hospital.dept_id)
    assert token["doctor_id"] == b.doctor_id, "a new walk-in was given to the doctor on leave (shortest queue)"


async def test_a_token_for_a_doctor_on_leave_is_refused(pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=2)
    a = hospital.doctor
    await pool.execute(
        "SELECT record_schedule_exception($1, 'SURGERY', opd_now(), "
        "opd_now() + interval '8 hours', 'x', NULL)", a.doctor_id)
    with raises_sqlstate("OPD14"):
        await factory.issue(pool, hospital, doctor=a)


async def leave_rows(pool: asyncpg.Pool, hospital: factory.Hospital) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM schedule_exceptions e JOIN doctors d USING (doctor_id) "
                                     "WHERE d.hospital_id = $1", hospital.hospital_id)
    return count


async def test_bad_leave_requests_are_refused_and_write_nothing(pool: asyncpg.Pool, staff_http: StaffHttp) -> None:
    hospital = await factory.make_hospital(pool, doctors=2)
    other = await factory.make_hospital(pool, doctors=2)
    a = hospital.doctor
    token = await factory.issue(pool, hospital, doctor=a)
    cases = [
        (a.doctor_id, {"exception_type": "UNPLANNED_LEAVE", "start_datetime": utc_in(2), "end_datetime": utc_in(1)},
         422),
        (a.doctor_id, {"exception_type": "UNPLANNED_LEAVE", "end_datetime": utc_in(-1)}, 422),
        (a.doctor_id, {"exception_type": "HOLIDAY", "end_datetime": utc_in(2)}, 422),
        (a.doctor_id, {"exception_type": "UNPLANNED_LEAVE", "end_datetime": "tomorrow"}, 422),
        (a.doctor_id, {"exception_type": "UNPLANNED_LEAVE"}, 422),
        (other.doctor.doctor_id, {"exception_type": "UNPLANNED_LEAVE", "end_datetime": utc_in(2)}, 404),
        (uuid.uuid4(), {"exception_type": "UNPLANNED_LEAVE", "end_datetime": utc_in(2)}, 404),
    ]
    async with staff_http(hospital.keys["admin"]) as http:
        for doctor_id, body, status in cases:
            response = await http.post(f"/doctors/{doctor_id}/leave", json=body)
            assert response.status_code == status, (body, response.text)
            assert "message" in response.text or "error" in response.text
        # A doctor key may record leave only for its own doctor.
    async with staff_http(hospital.keys["doctor"]) as http:
        response = await http.post(f"/doctors/{hospital.doctors[1].doctor_id}/leave",
                                   json={"exception_type": "UNPLANNED_LEAVE", "end_datetime": utc_in(2)})
        assert response.status_code == 403, response.text
    assert await leave_rows(pool, hospital) == 0
    assert await leave_rows(pool, other) == 0
    assert await pool.fetchval("SELECT doctor_id FROM tokens WHERE token_id = $1", token["token_id"]) == a.doctor_id
    async with staff_http(hospital.keys["admin"]) as http:
        assert (await http.post(f"/leave/{uuid.uuid4()}/approve", json={})).status_code == 404
