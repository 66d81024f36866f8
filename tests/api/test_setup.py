"""Hospital set-up over HTTP (app/api/setup.py): hospital, departments, cabins, doctors, shifts,
and a doctor's break."""

from __future__ import annotations

import datetime as dt

import asyncpg
import httpx
import pytest

from tests.api.helpers import API, assert_error, issue, unchanged
from tests.support import factory

pytestmark = pytest.mark.calendar


async def test_get_hospital_returns_the_callers_hospital(
    admin: httpx.AsyncClient, hospital: factory.Hospital
) -> None:
    response = await admin.get(f"{API}/hospital")
    assert response.status_code == 200
    body = response.json()
    assert body["hospital_id"] == str(hospital.hospital_id)
    assert body["code"] == hospital.code
    assert body["geofence_radius"] == hospital.radius_m
    assert body["timezone"] == "Asia/Kolkata"
    dt.date.fromisoformat(body["today"])


async def test_patch_hospital_changes_and_returns_it(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital
) -> None:
    response = await admin.patch(
        f"{API}/hospital",
        json={"name": "City OPD", "geofence_radius": 350, "board_shows_names": True},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["geofence_radius"], body["board_shows_names"]) == (
        "City OPD",
        350,
        True,
    )
    row = await pool.fetchrow(
        "SELECT name, geofence_radius FROM hospitals WHERE hospital_id = $1", hospital.hospital_id
    )
    assert (row["name"], row["geofence_radius"]) == ("City OPD", 350)


async def test_department_create_list_patch(
    admin: httpx.AsyncClient, hospital: factory.Hospital
) -> None:
    created = await admin.post(
        f"{API}/departments",
        json={
            "name": "Orthopaedics",
            "code": "ORTH",
            "avg_consultation_time": 12,
            "buffer_time": 3,
            "max_tokens_per_day": 80,
            "color_code": "#12AB34",
        },
    )
    assert created.status_code == 201, created.text
    dept = created.json()
    assert dept["hospital_id"] == str(hospital.hospital_id)
    assert (dept["code"], dept["avg_consultation_time"], dept["max_tokens_per_day"]) == (
        "ORTH",
        12,
        80,
    )

    listed = await admin.get(f"{API}/departments")
    assert listed.status_code == 200
    assert {d["code"] for d in listed.json()} == {"CARD", "ORTH"}

    patched = await admin.patch(
        f"{API}/departments/{dept['dept_id']}",
        json={"avg_consultation_time": 20, "status": "INACTIVE"},
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["avg_consultation_time"], patched.json()["status"]) == (20, "INACTIVE")


async def test_cabin_create_list_patch(
    admin: httpx.AsyncClient, hospital: factory.Hospital
) -> None:
    created = await admin.post(
        f"{API}/cabins",
        json={"dept_id": str(hospital.dept_id), "cabin_number": "C-201", "floor_number": 2},
    )
    assert created.status_code == 201, created.text
    cabin = created.json()
    assert (cabin["dept_id"], cabin["cabin_number"], cabin["floor_number"]) == (
        str(hospital.dept_id),
        "C-201",
        2,
    )

    listed = await admin.get(f"{API}/cabins")
    assert listed.status_code == 200
    assert {c["cabin_number"] for c in listed.json()} == {"C-101", "C-102", "C-201"}

    patched = await admin.patch(f"{API}/cabins/{cabin['cabin_id']}", json={"status": "MAINTENANCE"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["status"] == "MAINTENANCE"


async def test_doctors_list_by_hospital_code_has_todays_cabin(
    admin: httpx.AsyncClient, hospital: factory.Hospital
) -> None:
    response = await admin.get(f"{API}/doctors", params={"hospital": hospital.code})
    assert response.status_code == 200, response.text
    doctors = {d["doctor_id"]: d for d in response.json()}
    assert set(doctors) == {str(d.doctor_id) for d in hospital.doctors}
    for made in hospital.doctors:
        listed = doctors[str(made.doctor_id)]
        assert listed["name"] == made.name
        assert listed["dept_id"] == str(hospital.dept_id)
        assert listed["cabin_id"] == str(made.cabin_id)
        assert listed["paused"] is False


async def test_doctor_create_and_patch(
    admin: httpx.AsyncClient, hospital: factory.Hospital
) -> None:
    created = await admin.post(
        f"{API}/doctors",
        json={
            "emp_code": "E99",
            "name": "Dr. New",
            "specialization": "Cardiology",
            "primary_dept_id": str(hospital.dept_id),
            "phone": "+919000000001",
            "max_tokens_per_session": 40,
        },
    )
    assert created.status_code == 201, created.text
    doctor = created.json()
    assert doctor["hospital_id"] == str(hospital.hospital_id)
    assert (doctor["name"], doctor["max_tokens_per_session"], doctor["status"]) == (
        "Dr. New",
        40,
        "ACTIVE",
    )

    patched = await admin.patch(
        f"{API}/doctors/{doctor['doctor_id']}",
        json={"status": "ON_LEAVE", "avg_consultation_time": 15},
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["status"], patched.json()["avg_consultation_time"]) == ("ON_LEAVE", 15)

    listed = (await admin.get(f"{API}/doctors")).json()
    new = next(d for d in listed if d["doctor_id"] == doctor["doctor_id"])
    assert new["cabin_id"] is None  # no shift today


async def test_shift_create_list_patch(
    admin: httpx.AsyncClient, hospital: factory.Hospital
) -> None:
    today = dt.date.fromisoformat((await admin.get(f"{API}/hospital")).json()["today"])
    tomorrow = today + dt.timedelta(days=1)
    doctor = hospital.doctors[1]
    created = await admin.post(
        f"{API}/shifts",
        json={
            "cabin_id": str(doctor.cabin_id),
            "doctor_id": str(doctor.doctor_id),
            "shift_date": tomorrow.isoformat(),
            "shift_start_time": "09:00",
            "shift_end_time": "13:30",
            "planned_tokens": 25,
        },
    )
    assert created.status_code == 201, created.text
    shift = created.json()
    assert (shift["shift_date"], shift["shift_start_time"], shift["status"]) == (
        tomorrow.isoformat(),
        "09:00:00",
        "SCHEDULED",
    )

    todays = await admin.get(f"{API}/shifts")
    assert todays.status_code == 200
    assert {s["doctor_id"] for s in todays.json()} == {str(d.doctor_id) for d in hospital.doctors}

    tomorrows = (await admin.get(f"{API}/shifts", params={"date": tomorrow.isoformat()})).json()
    assert [s["assignment_id"] for s in tomorrows] == [shift["assignment_id"]]
    assert tomorrows[0]["doctor_name"] == doctor.name

    patched = await admin.patch(
        f"{API}/shifts/{shift['assignment_id']}",
        json={"status": "ACTIVE", "shift_end_time": "14:00"},
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["status"], patched.json()["shift_end_time"]) == ("ACTIVE", "14:00:00")


async def test_pause_refuses_calls_until_resume(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital
) -> None:
    doctor = hospital.doctor
    await issue(admin, doctor)
    paused = await admin.post(f"{API}/doctors/{doctor.doctor_id}/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True and paused.json()["paused_at"]
    listed = (await admin.get(f"{API}/doctors")).json()
    assert next(d for d in listed if d["doctor_id"] == str(doctor.doctor_id))["paused"] is True

    async with unchanged(pool, hospital):
        refused = await admin.post(f"{API}/doctors/{doctor.doctor_id}/call-next")
    error = assert_error(refused, 409, "doctor_unavailable")
    assert "break" in error["message"]

    resumed = await admin.post(f"{API}/doctors/{doctor.doctor_id}/resume")
    assert resumed.status_code == 200
    assert resumed.json() == {
        "doctor_id": str(doctor.doctor_id),
        "paused": False,
        "paused_at": None,
    }
    called = await admin.post(f"{API}/doctors/{doctor.doctor_id}/call-next")
    assert called.status_code == 200, called.text
    assert called.json()["status"] == "WAITING"


async def test_copy_a_week_of_the_roster_skips_what_would_overlap(admin: httpx.AsyncClient, hospital, pool) -> None:
    """Issue 13: the roster of next week is last week's, copied; copying twice adds nothing."""
    today = await pool.fetchval("SELECT hospital_today($1)", hospital.hospital_id)
    source = today + dt.timedelta(days=14)
    target = today + dt.timedelta(days=21)
    for offset, doctor in ((0, hospital.doctors[0]), (2, hospital.doctors[1])):
        made = await admin.post(f"{API}/shifts", json={
            "cabin_id": str(doctor.cabin_id), "doctor_id": str(doctor.doctor_id),
            "shift_date": (source + dt.timedelta(days=offset)).isoformat(),
            "shift_start_time": "09:00", "shift_end_time": "13:00"})
        assert made.status_code == 201, made.text
    copied = await admin.post(f"{API}/shifts/copy-week",
                              json={"from_date": source.isoformat(), "to_date": target.isoformat()})
    assert copied.status_code == 200, copied.text
    assert copied.json() == {"copied": 2, "skipped": 0}
    days = await pool.fetch("SELECT shift_date, status FROM cabin_doctors WHERE doctor_id = ANY($1) "
                            "AND shift_date >= $2 ORDER BY shift_date",
                            [hospital.doctors[0].doctor_id, hospital.doctors[1].doctor_id], target)
    assert [(r["shift_date"], r["status"]) for r in days] == [
        (target, "SCHEDULED"), (target + dt.timedelta(days=2), "SCHEDULED")]
    again = await admin.post(f"{API}/shifts/copy-week",
                             json={"from_date": source.isoformat(), "to_date": target.isoformat()})
    assert again.json() == {"copied": 0, "skipped": 2}
    onto_itself = await admin.post(f"{API}/shifts/copy-week",
                                   json={"from_date": source.isoformat(), "to_date": source.isoformat()})
    assert onto_itself.status_code == 422
