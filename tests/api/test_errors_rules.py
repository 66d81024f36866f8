"""Refused by the booking rules: a full day or session, the geofence, emergencies, online
bookings, transfers and duplicates. A 4xx JSON error, and nothing written."""

from __future__ import annotations

import datetime as dt

import asyncpg
import httpx
import pytest

from tests.api.helpers import API, assert_error, db_now, issue, new_patient, unchanged
from tests.support import factory

pytestmark = pytest.mark.calendar


async def test_full_day_is_409_and_keeps_the_numbering(server, pool: asyncpg.Pool) -> None:
    small = await factory.make_hospital(pool, max_tokens_per_day=2)
    async with httpx.AsyncClient(
        base_url=server.base_url,
        timeout=15,
        headers={"Authorization": f"Bearer {small.keys['admin']}"},
    ) as http:
        await issue(http, small.doctors[0])
        await issue(http, small.doctors[1])
        async with unchanged(pool, small):
            response = await http.post(
                f"{API}/tokens",
                json={"doctor_id": str(small.doctor.doctor_id), "patient": new_patient()},
            )
        error = assert_error(response, 409, "full")
        assert "all 2 tokens of the day" in error["message"]
        # A cancelled token keeps its number: the day is still full.
        first = (await http.get(f"{API}/queues/doctors/{small.doctor.doctor_id}")).json()[
            "waiting"
        ][0]
        assert (await http.post(f"{API}/tokens/{first['token_id']}/cancel")).status_code == 200
        assert_error(
            await http.post(
                f"{API}/tokens", json={"dept_id": str(small.dept_id), "patient": new_patient()}
            ),
            409,
            "full",
        )


async def test_full_session_is_409(server, pool: asyncpg.Pool) -> None:
    small = await factory.make_hospital(pool, max_tokens_per_session=1)
    async with httpx.AsyncClient(
        base_url=server.base_url,
        timeout=15,
        headers={"Authorization": f"Bearer {small.keys['admin']}"},
    ) as http:
        await issue(http, small.doctor)
        async with unchanged(pool, small):
            response = await http.post(
                f"{API}/tokens",
                json={"doctor_id": str(small.doctor.doctor_id), "patient": new_patient()},
            )
        error = assert_error(response, 409, "full")
        assert "1 of 1" in error["message"]
        # The other doctor still has room.
        await issue(http, small.doctors[1])


async def test_staff_check_in_outside_the_geofence_is_422(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital, ids: dict[str, str]
) -> None:
    async with unchanged(pool, hospital):
        response = await admin.post(
            f"{API}/tokens/{ids['booked']}/check-in",
            json={"latitude": 19.0760, "longitude": 72.8777},
        )  # Mumbai
    error = assert_error(response, 422, "outside_geofence")
    assert error["radius_m"] == hospital.radius_m and error["distance_m"] > 1_000_000


async def test_online_without_scheduled_time_is_422(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital
) -> None:
    async with unchanged(pool, hospital):
        response = await admin.post(
            f"{API}/tokens",
            json={
                "doctor_id": str(hospital.doctor.doctor_id),
                "patient": new_patient(),
                "booking_type": "ONLINE",
            },
        )
    error = assert_error(response, 422)
    assert "scheduled_time" in error["message"]


async def test_token_for_a_doctor_on_leave_is_409(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital
) -> None:
    patched = await admin.patch(
        f"{API}/doctors/{hospital.doctor.doctor_id}", json={"status": "ON_LEAVE"}
    )
    assert patched.status_code == 200
    async with unchanged(pool, hospital):
        response = await admin.post(
            f"{API}/tokens",
            json={"doctor_id": str(hospital.doctor.doctor_id), "patient": new_patient()},
        )
    assert_error(response, 409, "doctor_unavailable")


async def test_reschedule_into_the_past_changes_nothing(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital, ids: dict[str, str]
) -> None:
    past = (await db_now(pool) - dt.timedelta(days=2)).isoformat()
    async with unchanged(pool, hospital):
        response = await admin.post(
            f"{API}/tokens/{ids['token']}/reschedule", json={"scheduled_time": past}
        )
    error = assert_error(response, 422)
    assert "past" in error["message"]


async def test_transfer_to_the_same_doctor_is_409(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital, ids: dict[str, str]
) -> None:
    async with unchanged(pool, hospital):
        response = await admin.post(
            f"{API}/tokens/{ids['token']}/transfer", json={"to_doctor_id": ids["doctor"]}
        )
    assert_error(response, 409, "illegal_transition")


async def test_transfer_to_a_doctor_of_another_hospital_is_404(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital, ids: dict[str, str]
) -> None:
    other = await factory.make_hospital(pool)
    async with unchanged(pool, hospital, other):
        response = await admin.post(
            f"{API}/tokens/{ids['token']}/transfer",
            json={"to_doctor_id": str(other.doctor.doctor_id)},
        )
    assert_error(response, 404, "not_found")


async def test_duplicates_are_409(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital
) -> None:
    async with unchanged(pool, hospital):
        dept = await admin.post(
            f"{API}/departments",
            json={"name": "Cardiology again", "code": "CARD", "avg_consultation_time": 10},
        )
        cabin = await admin.post(
            f"{API}/cabins", json={"dept_id": str(hospital.dept_id), "cabin_number": "C-101"}
        )
    assert_error(dept, 409, "duplicate")
    assert_error(cabin, 409, "duplicate")
    first = await admin.post(
        f"{API}/patients", json={"name": "A", "phone": "9800000000", "uhid": "DUP-1"}
    )
    assert first.status_code == 201
    async with unchanged(pool, hospital):
        again = await admin.post(
            f"{API}/patients", json={"name": "B", "phone": "9800000001", "uhid": "DUP-1"}
        )
    assert_error(again, 409, "duplicate")


async def test_invalid_timezone_is_422(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital
) -> None:
    async with unchanged(pool, hospital):
        response = await admin.patch(f"{API}/hospital", json={"timezone": "Mars/Olympus_Mons"})
    assert_error(response, 422)
