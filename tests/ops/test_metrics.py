"""Daily doctor metrics from a day played with the test clock (sql: compute_doctor_metrics)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import asyncpg
import pytest

from tests.db.helpers import issue_on, set_clock
from tests.ops import helpers
from tests.ops.conftest import StaffHttp
from tests.support import factory

pytestmark = pytest.mark.calendar


async def play_day(pool: asyncpg.Pool, conn: asyncpg.Connection, hospital: factory.Hospital, day: dt.date) -> None:
    """Doctor 1, shift 09:00-13:00: two seen (10 and 20 min), one no-show, one cancelled, a 30 min break."""
    doctor, colleague = hospital.doctors

    async def at(hhmm: str) -> None:
        await set_clock(conn, await helpers.local(conn, hospital, day, hhmm))

    await helpers.add_shift(pool, doctor, day, "09:00", "13:00")
    await helpers.add_shift(pool, colleague, day, "09:00", "13:00")   # on shift, nobody to see
    await at("08:50")
    first = await issue_on(conn, pool, hospital)
    await at("09:00")
    second = await issue_on(conn, pool, hospital)
    third = await issue_on(conn, pool, hospital)
    await at("09:05")
    await helpers.step(conn, first["token_id"], "WAITING")            # waited 15
    await at("09:07")
    await helpers.step(conn, first["token_id"], "IN_CONSULTATION")
    await at("09:17")
    await helpers.step(conn, first["token_id"], "COMPLETED")          # 10 min
    await at("09:20")
    await helpers.step(conn, second["token_id"], "WAITING")           # waited 20
    await helpers.step(conn, second["token_id"], "IN_CONSULTATION")
    await at("09:40")
    await helpers.step(conn, second["token_id"], "COMPLETED")         # 20 min
    await at("09:45")
    await conn.execute("SELECT doctor_id FROM set_doctor_paused($1, true)", doctor.doctor_id)
    await at("10:00")
    cancelled = await issue_on(conn, pool, hospital)
    await at("10:05")
    await helpers.step(conn, cancelled["token_id"], "CANCELLED")
    await at("10:15")
    await conn.execute("SELECT doctor_id FROM set_doctor_paused($1, false)", doctor.doctor_id)   # 30 min break
    await at("10:20")
    await helpers.step(conn, third["token_id"], "WAITING")            # waited 80
    await at("10:30")
    await helpers.step(conn, third["token_id"], "NO_SHOW")
    await at("18:00")


EXPECTED = {
    "tokens_scheduled": 3, "tokens_completed": 2, "tokens_no_show": 1,
    "avg_consultation_time_mins": Decimal("15.00"),
    "avg_wait_time_mins": Decimal("38.33"),            # (15 + 20 + 80) / 3
    "first_patient_delay_mins": 5,                      # first call 09:05, shift 09:00
    "last_patient_time": dt.time(9, 40),
    "break_time_mins": 30,
    "idle_time_mins": 180,                              # 240 shift - 30 consulting - 30 break
    "utilization_rate": Decimal("14.29"),               # 30 / (240 - 30)
}


async def metrics_of(db: asyncpg.Pool | asyncpg.Connection, doctor: factory.Doctor, day: dt.date) -> list[dict]:
    rows = await db.fetch("SELECT * FROM doctor_performance_metrics WHERE doctor_id = $1 AND metric_date = $2",
                          doctor.doctor_id, day)
    return [{k: r[k] for k in EXPECTED} for r in rows]


async def test_metrics_of_a_played_day_are_exact_and_idempotent(
        pool: asyncpg.Pool, clock_conn: asyncpg.Connection, staff_http: StaffHttp) -> None:
    hospital = await factory.make_hospital(pool, doctors=2)
    doctor, colleague = hospital.doctors
    day = await helpers.today(pool, hospital) - dt.timedelta(days=3)
    await play_day(pool, clock_conn, hospital, day)

    assert await clock_conn.fetchval("SELECT compute_doctor_metrics($1, $2)", hospital.hospital_id, day) == 2
    assert await metrics_of(pool, doctor, day) == [EXPECTED]
    idle_colleague = (await metrics_of(pool, colleague, day))[0]
    assert (idle_colleague["tokens_scheduled"], idle_colleague["idle_time_mins"],
            idle_colleague["utilization_rate"]) == (0, 240, Decimal("0.00"))

    assert await clock_conn.fetchval("SELECT compute_doctor_metrics($1, $2)", hospital.hospital_id, day) == 2
    assert await metrics_of(pool, doctor, day) == [EXPECTED], "recomputing changed the numbers or added a row"

    async with staff_http(hospital.keys["admin"]) as http:
        response = await http.get("/metrics/doctors", params={"from": day.isoformat(), "to": day.isoformat()})
        assert response.status_code == 200, response.text
        rows = {r["doctor_name"]: r for r in response.json()}
        assert set(rows) == {doctor.name, colleague.name}
        mine = rows[doctor.name]
        assert (mine["metric_date"], mine["tokens_completed"], mine["avg_wait_time_mins"], mine["utilization_rate"],
                mine["last_patient_time"]) == (day.isoformat(), 2, 38.33, 14.29, "09:40:00")
        only = await http.get("/metrics/doctors", params={"from": day.isoformat(), "to": day.isoformat(),
                                                           "doctor_id": str(colleague.doctor_id)})
        assert [r["doctor_name"] for r in only.json()] == [colleague.name]
        for bad in ({"from": day.isoformat(), "to": (day - dt.timedelta(days=1)).isoformat()},
                    {"from": "2020-01-01", "to": "2022-01-01"},
                    {"from": "yesterday"}):
            refused = await http.get("/metrics/doctors", params=bad)
            assert refused.status_code == 422, (bad, refused.text)
        # A malformed id answers like an unknown one (the API's rule for ids).
        assert (await http.get("/metrics/doctors", params={"doctor_id": "not-a-uuid"})).status_code == 404


async def test_compute_over_http_is_for_admins(pool: asyncpg.Pool, staff_http: StaffHttp) -> None:
    hospital = await factory.make_hospital(pool, doctors=2)
    day = await helpers.today(pool, hospital)
    async with staff_http(hospital.keys["admin"]) as http:
        response = await http.post("/metrics/compute", json={"date": day.isoformat()})
        assert response.status_code == 200, response.text
        assert response.json() == {"date": day.isoformat(), "doctors": 2}
        again = await http.post("/metrics/compute", json={})
        assert again.json() == {"date": day.isoformat(), "doctors": 2}
        assert (await http.post("/metrics/compute", json={"date": "26/11/2026"})).status_code == 422
    assert await pool.fetchval("SELECT count(*) FROM doctor_performance_metrics m JOIN doctors d USING (doctor_id) "
                               "WHERE d.hospital_id = $1", hospital.hospital_id) == 2
    async with staff_http(hospital.keys["receptionist"]) as http:
        assert (await http.post("/metrics/compute", json={})).status_code == 403
