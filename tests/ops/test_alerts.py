"""Bottleneck alerts: check_hospital_alerts raises what holds, never twice, and resolves what
cleared. Clock-driven cases run on a hidden hospital with opd.fake_now (tests/ops/helpers.py)."""

from __future__ import annotations

import datetime as dt

import asyncpg
import pytest

from tests.db.helpers import issue_on, set_clock
from tests.ops import helpers
from tests.ops.conftest import StaffHttp
from tests.support import factory

pytestmark = pytest.mark.calendar


async def check(conn: asyncpg.Connection, hospital: factory.Hospital) -> int:
    count: int = await conn.fetchval("SELECT check_hospital_alerts($1)", hospital.hospital_id)
    return count


async def clock_at(conn: asyncpg.Connection, hospital: factory.Hospital, day: dt.date, hhmm: str) -> None:
    await set_clock(conn, await helpers.local(conn, hospital, day, hhmm))


async def one_doctor_on_shift(pool: asyncpg.Pool, clock_conn: asyncpg.Connection,
                              at: str) -> tuple[factory.Hospital, dt.date]:
    """A hidden hospital with one doctor on an ACTIVE 08:00-14:00 shift today; the clock at `at`."""
    hospital = await helpers.hidden_hospital(pool, doctors=1)
    day = await helpers.today(pool, hospital)
    await helpers.set_today_shift(pool, hospital.doctor, "08:00", "14:00", "ACTIVE")
    await clock_at(clock_conn, hospital, day, at)
    return hospital, day


async def test_bottleneck_over_http_raised_once_and_resolved(pool: asyncpg.Pool, staff_http: StaffHttp) -> None:
    hospital = await factory.make_hospital(pool, doctors=3)
    tokens = [await factory.issue(pool, hospital, doctor=hospital.doctors[n % 3]) for n in range(21)]
    async with staff_http(hospital.keys["receptionist"]) as http:
        for _ in range(2):
            response = await http.post("/alerts/check", json={})
            assert response.status_code == 200, response.text
            assert response.json()["open_alerts"] >= 1
        listed = (await http.get("/alerts")).json()
        bottlenecks = [a for a in listed if a["alert_type"] == "BOTTLENECK"]
        assert [a["entity_id"] for a in bottlenecks] == [str(hospital.dept_id)]
        assert bottlenecks[0]["metadata"]["pending"] == 21
        assert bottlenecks[0]["severity"] == "WARNING"
        assert len(await helpers.alerts_for(pool, hospital.dept_id, "BOTTLENECK")) == 1, "raised twice"

        # Clear the hall down to two patients (first in line, so their ETAs are short).
        keep = {t["token_id"] for t in tokens[:3] if t["doctor_id"] == hospital.doctors[0].doctor_id}
        for t in tokens:
            if t["token_id"] not in keep:
                await helpers.step(pool, t["token_id"], "CANCELLED", "test")
        await http.post("/alerts/check", json={})
        still_open = (await http.get("/alerts")).json()
        assert [a for a in still_open if a["alert_type"] == "BOTTLENECK"] == []
        everything = (await http.get("/alerts", params={"all": "true"})).json()
        resolved = [a for a in everything if a["alert_type"] == "BOTTLENECK"]
        assert len(resolved) == 1 and resolved[0]["is_resolved"] and resolved[0]["resolved_at"]
    async with staff_http(hospital.keys["doctor"]) as http:
        assert (await http.post("/alerts/check", json={})).status_code == 403


async def test_long_wait_is_raised_and_resolves_when_the_patient_is_called(
        pool: asyncpg.Pool, clock_conn: asyncpg.Connection) -> None:
    hospital = await helpers.hidden_hospital(pool, doctors=2)
    a, b = hospital.doctors
    day = await helpers.today(pool, hospital)
    for doctor in (a, b):
        await helpers.set_today_shift(pool, doctor, "06:00", "14:00", "ACTIVE")
    await clock_at(clock_conn, hospital, day, "06:00")
    old = await issue_on(clock_conn, pool, hospital, doctor=a)
    await clock_at(clock_conn, hospital, day, "07:00")
    recent = await issue_on(clock_conn, pool, hospital, doctor=b)
    # B keeps calling, so only the waits matter for B's queue.
    await clock_at(clock_conn, hospital, day, "07:20")
    assert not [x for x in await helpers.open_alerts(clock_conn, hospital) if x["alert_type"] == "LONG_WAIT"]
    await check(clock_conn, hospital)
    assert await helpers.alerts_for(clock_conn, old["token_id"], "LONG_WAIT") == []

    await clock_at(clock_conn, hospital, day, "07:45")
    await check(clock_conn, hospital)
    await check(clock_conn, hospital)
    raised = await helpers.alerts_for(clock_conn, old["token_id"], "LONG_WAIT")
    assert len(raised) == 1 and not raised[0]["is_resolved"]
    assert raised[0]["metadata"]["waited_mins"] == 105
    assert await helpers.alerts_for(clock_conn, recent["token_id"], "LONG_WAIT") == []

    await clock_at(clock_conn, hospital, day, "07:46")
    await helpers.step(clock_conn, old["token_id"], "WAITING")
    await check(clock_conn, hospital)
    resolved = await helpers.alerts_for(clock_conn, old["token_id"], "LONG_WAIT")
    assert len(resolved) == 1 and resolved[0]["is_resolved"]
    assert resolved[0]["resolved_at"] == await helpers.local(pool, hospital, day, "07:46")


async def test_doctor_idle_after_ten_minutes_without_a_call(pool: asyncpg.Pool, clock_conn: asyncpg.Connection) -> None:
    hospital, day = await one_doctor_on_shift(pool, clock_conn, "08:00")
    doctor = hospital.doctor
    first = await issue_on(clock_conn, pool, hospital)
    second = await issue_on(clock_conn, pool, hospital)
    await clock_at(clock_conn, hospital, day, "08:05")
    await helpers.step(clock_conn, first["token_id"], "WAITING")
    await helpers.step(clock_conn, first["token_id"], "IN_CONSULTATION")
    await clock_at(clock_conn, hospital, day, "08:08")
    await helpers.step(clock_conn, first["token_id"], "COMPLETED")

    await clock_at(clock_conn, hospital, day, "08:12")
    await check(clock_conn, hospital)
    assert await helpers.alerts_for(clock_conn, doctor.doctor_id, "DOCTOR_IDLE") == []

    await clock_at(clock_conn, hospital, day, "08:20")
    await check(clock_conn, hospital)
    await check(clock_conn, hospital)
    idle = await helpers.alerts_for(clock_conn, doctor.doctor_id, "DOCTOR_IDLE")
    assert len(idle) == 1 and not idle[0]["is_resolved"] and idle[0]["metadata"]["waiting"] == 1

    await clock_at(clock_conn, hospital, day, "08:21")
    await helpers.step(clock_conn, second["token_id"], "WAITING")
    await check(clock_conn, hospital)
    assert [a["is_resolved"] for a in await helpers.alerts_for(clock_conn, doctor.doctor_id, "DOCTOR_IDLE")] == [True]


async def test_doctor_late_when_the_shift_has_not_started(pool: asyncpg.Pool, clock_conn: asyncpg.Connection) -> None:
    hospital = await helpers.hidden_hospital(pool, doctors=1)
    doctor = hospital.doctor
    day = await helpers.today(pool, hospital)
    await helpers.set_today_shift(pool, doctor, "08:00", "14:00", "SCHEDULED")
    await clock_at(clock_conn, hospital, day, "08:05")
    token = await issue_on(clock_conn, pool, hospital)
    await clock_at(clock_conn, hospital, day, "08:09")
    await check(clock_conn, hospital)
    assert await helpers.alerts_for(clock_conn, doctor.doctor_id, "DOCTOR_LATE") == []

    await clock_at(clock_conn, hospital, day, "08:15")
    await check(clock_conn, hospital)
    await check(clock_conn, hospital)
    late = await helpers.alerts_for(clock_conn, doctor.doctor_id, "DOCTOR_LATE")
    assert len(late) == 1 and not late[0]["is_resolved"]
    assert await helpers.alerts_for(clock_conn, doctor.doctor_id, "DOCTOR_IDLE") == [], "late, not idle"

    # The first call starts the shift (assert_doctor_free) and clears the alert.
    await clock_at(clock_conn, hospital, day, "08:16")
    await clock_conn.execute("SELECT token_id FROM call_next_token($1, NULL)", doctor.doctor_id)
    assert await clock_conn.fetchval("SELECT status FROM cabin_doctors WHERE doctor_id = $1 AND shift_date = $2",
                                     doctor.doctor_id, day) == "ACTIVE"
    await check(clock_conn, hospital)
    assert [a["is_resolved"] for a in await helpers.alerts_for(clock_conn, doctor.doctor_id, "DOCTOR_LATE")] == [True]
    assert await clock_conn.fetchval("SELECT status FROM tokens WHERE token_id = $1", token["token_id"]) == "WAITING"


async def test_late_alert_resolves_even_when_the_same_doctor_is_now_idle(
        pool: asyncpg.Pool, clock_conn: asyncpg.Connection) -> None:
    """Resolution must match (type, entity): a DOCTOR_IDLE for the doctor keeps no stale DOCTOR_LATE open."""
    hospital = await helpers.hidden_hospital(pool, doctors=1)
    doctor = hospital.doctor
    day = await helpers.today(pool, hospital)
    await helpers.set_today_shift(pool, doctor, "08:00", "14:00", "SCHEDULED")
    await clock_at(clock_conn, hospital, day, "08:05")
    await issue_on(clock_conn, pool, hospital)
    await clock_at(clock_conn, hospital, day, "08:15")
    await check(clock_conn, hospital)
    assert len(await helpers.alerts_for(clock_conn, doctor.doctor_id, "DOCTOR_LATE")) == 1
    # The doctor arrives: a short break at the desk (pause/resume marks them active).
    await clock_at(clock_conn, hospital, day, "08:16")
    await clock_conn.execute("SELECT doctor_id FROM set_doctor_paused($1, true)", doctor.doctor_id)
    await clock_at(clock_conn, hospital, day, "08:17")
    await clock_conn.execute("SELECT doctor_id FROM set_doctor_paused($1, false)", doctor.doctor_id)
    await clock_at(clock_conn, hospital, day, "08:30")
    await check(clock_conn, hospital)
    assert len(await helpers.alerts_for(clock_conn, doctor.doctor_id, "DOCTOR_IDLE")) == 1
    late = await helpers.alerts_for(clock_conn, doctor.doctor_id, "DOCTOR_LATE")
    assert [a["is_resolved"] for a in late] == [True], (
        "DOCTOR_LATE no longer holds (the doctor was active at 08:17) but stays open: "
        "check_hospital_alerts resolves by entity_id only, and the DOCTOR_IDLE alert put that id in v_open")


async def doctor_status(db: helpers.Db, doctor: factory.Doctor) -> str:
    """The doctor's status in the design's view, checked against the operations dashboard's read
    of the doctor's hospital: both follow one rule (sql: hospital_doctor_statuses)."""
    status: str = await db.fetchval("SELECT current_status FROM vw_doctor_status WHERE doctor_id = $1",
                                    doctor.doctor_id)
    operations = await db.fetchval(
        "SELECT hospital_operations(hospital_id) FROM doctors WHERE doctor_id = $1", doctor.doctor_id)
    on_dashboard = [d["current_status"] for d in operations["doctors"] if d["doctor_id"] == str(doctor.doctor_id)]
    assert on_dashboard == [status], "the dashboard and vw_doctor_status disagree"
    return status


async def test_available_on_break_and_offline(pool: asyncpg.Pool, clock_conn: asyncpg.Connection) -> None:
    """The statuses without patients: on shift and free, paused, and with no active shift."""
    hospital, _ = await one_doctor_on_shift(pool, clock_conn, "09:00")
    doctor = hospital.doctor
    assert await doctor_status(clock_conn, doctor) == "AVAILABLE"
    await pool.execute("UPDATE doctors SET paused_at = now() WHERE doctor_id = $1", doctor.doctor_id)
    assert await doctor_status(clock_conn, doctor) == "ON_BREAK"
    await pool.execute("UPDATE doctors SET paused_at = NULL WHERE doctor_id = $1", doctor.doctor_id)
    await helpers.set_today_shift(pool, doctor, "08:00", "14:00", "CANCELLED")
    assert await doctor_status(clock_conn, doctor) == "OFFLINE"


async def test_called_and_not_seen_alerts_and_the_doctor_is_not_shown_busy(
        pool: asyncpg.Pool, clock_conn: asyncpg.Connection) -> None:
    """Issue 13: in the demo six doctors sat on a patient called 80-120 min earlier, shown BUSY,
    with no alert. Past the hospital's limit (default 3 min) an alert opens, the doctor shows
    CALLED_NOT_SEEN, and the alert resolves once the patient is seen."""
    hospital, day = await one_doctor_on_shift(pool, clock_conn, "09:00")
    doctor = hospital.doctor
    first = await issue_on(clock_conn, pool, hospital)
    await issue_on(clock_conn, pool, hospital)
    assert await doctor_status(clock_conn, doctor) == "IDLE"  # patients waiting, nobody called
    await helpers.step(clock_conn, first["token_id"], "WAITING")
    await clock_at(clock_conn, hospital, day, "09:02")
    await check(clock_conn, hospital)
    assert await helpers.alerts_for(clock_conn, first["token_id"], "CALLED_NOT_SEEN") == []
    assert await doctor_status(clock_conn, doctor) == "BUSY"

    await clock_at(clock_conn, hospital, day, "09:04")
    await check(clock_conn, hospital)
    await check(clock_conn, hospital)
    raised = await helpers.alerts_for(clock_conn, first["token_id"], "CALLED_NOT_SEEN")
    assert len(raised) == 1 and not raised[0]["is_resolved"]
    assert raised[0]["metadata"]["since_call_mins"] == 4
    assert await doctor_status(clock_conn, doctor) == "CALLED_NOT_SEEN"

    await helpers.step(clock_conn, first["token_id"], "IN_CONSULTATION")
    await check(clock_conn, hospital)
    seen = await helpers.alerts_for(clock_conn, first["token_id"], "CALLED_NOT_SEEN")
    assert [a["is_resolved"] for a in seen] == [True]
    assert await doctor_status(clock_conn, doctor) == "BUSY"


async def test_a_hospital_may_mark_a_called_unseen_patient_absent(
        pool: asyncpg.Pool, clock_conn: asyncpg.Connection) -> None:
    """With auto_absent_minutes set, the check marks the patient NO_SHOW (audited, with why);
    reception can put them back in line."""
    hospital, day = await one_doctor_on_shift(pool, clock_conn, "10:00")
    await pool.execute("UPDATE hospitals SET auto_absent_minutes = 10 WHERE hospital_id = $1", hospital.hospital_id)
    token = await issue_on(clock_conn, pool, hospital)
    await helpers.step(clock_conn, token["token_id"], "WAITING")
    await clock_at(clock_conn, hospital, day, "10:09")
    await check(clock_conn, hospital)
    assert await pool.fetchval("SELECT status FROM tokens WHERE token_id = $1", token["token_id"]) == "WAITING"
    await clock_at(clock_conn, hospital, day, "10:11")
    await check(clock_conn, hospital)
    assert await pool.fetchval("SELECT status FROM tokens WHERE token_id = $1", token["token_id"]) == "NO_SHOW"
    reason = await pool.fetchval(
        "SELECT change_reason FROM token_history WHERE token_id = $1 ORDER BY history_id DESC LIMIT 1",
        token["token_id"])
    assert reason and "not seen 11 min after the call" in reason
    absent = await helpers.alerts_for(clock_conn, token["token_id"], "CALLED_NOT_SEEN")
    assert [a["is_resolved"] for a in absent] in ([], [True])
    await helpers.step(clock_conn, token["token_id"], "CHECKED_IN")  # the requeue at reception
