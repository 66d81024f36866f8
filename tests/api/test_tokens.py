"""Tokens over HTTP (app/api/tokens.py and the lifecycle in sql/functions.sql): issue, read,
audit, and every step a token can take."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import httpx
import pytest

from tests.api.helpers import API, db_now, issue, key_id, new_patient
from tests.support import factory

pytestmark = pytest.mark.calendar


async def _history(http: httpx.AsyncClient, token_id: str) -> list[dict[str, Any]]:
    response = await http.get(f"{API}/tokens/{token_id}/history")
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


async def _post(
    http: httpx.AsyncClient, path: str, body: dict[str, Any] | None = None, status: int = 200
) -> dict[str, Any]:
    response = await http.post(f"{API}{path}", json=body if body is not None else {})
    assert response.status_code == status, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_walk_in_starts_checked_in(
    receptionist: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital
) -> None:
    response = await receptionist.post(
        f"{API}/tokens",
        json={
            "doctor_id": str(hospital.doctor.doctor_id),
            "patient": {"name": "Anil", "phone": "9811111111"},
            "booking_type": "WALK_IN",
            "priority": 1,
            "visit_reason": "chest pain follow-up",
        },
    )
    assert response.status_code == 201, response.text
    token = response.json()
    assert token["status"] == "CHECKED_IN"
    assert token["doctor_id"] == str(hospital.doctor.doctor_id)
    assert token["token_number"] == "CARD-001"
    assert len(token["tracking_code"]) >= 16
    assert token["tracking_url"].endswith("/t/" + token["tracking_code"])
    assert token["cabin_id"] == str(hospital.doctor.cabin_id)
    assert (
        await pool.fetchval("SELECT status FROM tokens WHERE token_id = $1", token["token_id"])
        == "CHECKED_IN"
    )


async def test_token_numbers_follow_the_department(
    admin: httpx.AsyncClient, hospital: factory.Hospital
) -> None:
    numbers = [
        (await issue(admin, d))["token_number"] for d in (*hospital.doctors, hospital.doctor)
    ]
    assert numbers == ["CARD-001", "CARD-002", "CARD-003"]


async def test_online_booking_starts_booked(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital
) -> None:
    slot = await db_now(pool)
    token = await issue(
        admin, hospital.doctor, booking_type="ONLINE", scheduled_time=slot.isoformat()
    )
    assert token["status"] == "BOOKED"
    assert token["booking_type"] == "ONLINE"
    assert dt.datetime.fromisoformat(token["scheduled_time"]) == slot


async def test_emergency_gets_priority_3(
    admin: httpx.AsyncClient, hospital: factory.Hospital
) -> None:
    token = await issue(admin, hospital.doctor, booking_type="EMERGENCY")
    assert (token["priority"], token["status"]) == (3, "CHECKED_IN")


async def test_issue_by_department_picks_the_shortest_queue(
    admin: httpx.AsyncClient, hospital: factory.Hospital
) -> None:
    await issue(admin, hospital.doctors[0])
    response = await admin.post(
        f"{API}/tokens", json={"dept_id": str(hospital.dept_id), "patient": new_patient()}
    )
    assert response.status_code == 201, response.text
    assert response.json()["doctor_id"] == str(hospital.doctors[1].doctor_id)


async def test_issue_for_an_existing_patient_id(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital
) -> None:
    patient_id = await factory.make_patient(pool, hospital)
    response = await admin.post(
        f"{API}/tokens",
        json={"doctor_id": str(hospital.doctor.doctor_id), "patient_id": str(patient_id)},
    )
    assert response.status_code == 201, response.text
    assert response.json()["patient_id"] == str(patient_id)


async def test_get_token_and_history_record_the_api_key(
    receptionist: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital
) -> None:
    token = await issue(receptionist, hospital.doctor)
    read = await receptionist.get(f"{API}/tokens/{token['token_id']}")
    assert read.status_code == 200
    assert read.json()["token_id"] == token["token_id"]
    assert read.json()["tracking_code"] == token["tracking_code"]

    history = await _history(receptionist, token["token_id"])
    assert [(h["previous_status"], h["new_status"]) for h in history] == [(None, "CHECKED_IN")]
    assert history[0]["changed_by_key"] == str(await key_id(pool, hospital, "receptionist"))
    assert history[0]["change_reason"] == "ISSUED"


async def test_staff_check_in_inside_the_geofence(
    receptionist: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital
) -> None:
    booked = await issue(
        receptionist,
        hospital.doctor,
        booking_type="ONLINE",
        scheduled_time=(await db_now(pool)).isoformat(),
    )
    response = await receptionist.post(
        f"{API}/tokens/{booked['token_id']}/check-in",
        json={"latitude": hospital.latitude + 0.0005, "longitude": hospital.longitude},
    )  # ~55 m away
    assert response.status_code == 200, response.text
    token = response.json()
    assert token["status"] == "CHECKED_IN"
    assert token["check_in_time"] is not None
    assert token["check_in_override_reason"] is None
    history = await _history(receptionist, booked["token_id"])
    assert (history[-1]["previous_status"], history[-1]["new_status"]) == ("BOOKED", "CHECKED_IN")
    assert history[-1]["changed_by_key"] == str(await key_id(pool, hospital, "receptionist"))


async def test_staff_check_in_by_override_with_reason(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital
) -> None:
    booked = await issue(
        admin,
        hospital.doctor,
        booking_type="ONLINE",
        scheduled_time=(await db_now(pool)).isoformat(),
    )
    response = await admin.post(
        f"{API}/tokens/{booked['token_id']}/check-in", json={"override_reason": "phone without GPS"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CHECKED_IN"
    assert response.json()["check_in_override_reason"] == "phone without GPS"
    history = await _history(admin, booked["token_id"])
    assert "phone without GPS" in history[-1]["change_reason"]


async def test_call_next_follows_priority_then_arrival(
    doctor: httpx.AsyncClient,
    receptionist: httpx.AsyncClient,
    pool: asyncpg.Pool,
    hospital: factory.Hospital,
) -> None:
    first = await issue(receptionist, hospital.doctor)
    senior = await issue(receptionist, hospital.doctor, priority=2)
    emergency = await issue(receptionist, hospital.doctor, booking_type="EMERGENCY")
    doctor_id = hospital.doctor.doctor_id

    order = []
    for _ in range(3):
        called = await _post(doctor, f"/doctors/{doctor_id}/call-next", {"complete_current": True})
        assert called["status"] == "WAITING"
        assert called["called_time"] is not None
        order.append(called["token_id"])
        await _post(doctor, f"/tokens/{called['token_id']}/start")
    assert order == [emergency["token_id"], senior["token_id"], first["token_id"]]

    # complete_current closed the earlier consultations.
    statuses = dict(
        await pool.fetch(
            "SELECT token_id::text, status FROM tokens WHERE hospital_id = $1", hospital.hospital_id
        )
    )
    assert statuses == {
        emergency["token_id"]: "COMPLETED",
        senior["token_id"]: "COMPLETED",
        first["token_id"]: "IN_CONSULTATION",
    }
    history = await _history(doctor, emergency["token_id"])
    assert [h["new_status"] for h in history] == [
        "CHECKED_IN",
        "WAITING",
        "IN_CONSULTATION",
        "COMPLETED",
    ]
    assert history[1]["changed_by_key"] == str(await key_id(pool, hospital, "doctor"))


async def test_call_a_specific_token_out_of_order(
    admin: httpx.AsyncClient, hospital: factory.Hospital
) -> None:
    await issue(admin, hospital.doctor)
    second = await issue(admin, hospital.doctor)
    called = await _post(
        admin, f"/tokens/{second['token_id']}/call", {"reason": "stepped out earlier"}
    )
    assert (called["token_id"], called["status"], called["call_count"]) == (
        second["token_id"],
        "WAITING",
        1,
    )
    history = await _history(admin, second["token_id"])
    assert history[-1]["change_reason"] == "stepped out earlier"


async def test_recall_announces_again(
    doctor: httpx.AsyncClient, admin: httpx.AsyncClient, hospital: factory.Hospital
) -> None:
    token = await issue(admin, hospital.doctor)
    called = await _post(doctor, f"/doctors/{hospital.doctor.doctor_id}/call-next")
    recalled = await _post(doctor, f"/tokens/{token['token_id']}/recall")
    assert (recalled["status"], recalled["call_count"]) == ("WAITING", 2)
    assert recalled["called_time"] >= called["called_time"]


async def test_start_then_complete(
    doctor: httpx.AsyncClient, admin: httpx.AsyncClient, hospital: factory.Hospital
) -> None:
    token = await issue(admin, hospital.doctor)
    await _post(doctor, f"/doctors/{hospital.doctor.doctor_id}/call-next")
    started = await _post(doctor, f"/tokens/{token['token_id']}/start")
    assert started["status"] == "IN_CONSULTATION"
    assert started["consultation_start_time"] is not None
    completed = await _post(doctor, f"/tokens/{token['token_id']}/complete")
    assert completed["status"] == "COMPLETED"
    assert completed["consultation_end_time"] is not None


async def test_no_show_then_requeue_restores_the_place(
    admin: httpx.AsyncClient, hospital: factory.Hospital
) -> None:
    first = await issue(admin, hospital.doctor)
    second = await issue(admin, hospital.doctor)
    await _post(admin, f"/doctors/{hospital.doctor.doctor_id}/call-next")
    no_show = await _post(admin, f"/tokens/{first['token_id']}/no-show")
    assert (no_show["status"], no_show["closed_at"] is not None) == ("NO_SHOW", True)

    back = await _post(admin, f"/tokens/{first['token_id']}/requeue", {"reason": "came back"})
    assert (back["status"], back["closed_at"], back["called_time"]) == ("CHECKED_IN", None, None)
    assert back["queue_joined_at"] == first["queue_joined_at"]
    queue = (await admin.get(f"{API}/queues/doctors/{hospital.doctor.doctor_id}")).json()
    assert [w["token_id"] for w in queue["waiting"]] == [first["token_id"], second["token_id"]]


async def test_requeue_undoes_a_call(admin: httpx.AsyncClient, hospital: factory.Hospital) -> None:
    token = await issue(admin, hospital.doctor)
    await _post(admin, f"/doctors/{hospital.doctor.doctor_id}/call-next")
    back = await _post(admin, f"/tokens/{token['token_id']}/requeue")
    assert (back["status"], back["called_time"]) == ("CHECKED_IN", None)


async def test_cancel_with_reason(admin: httpx.AsyncClient, hospital: factory.Hospital) -> None:
    token = await issue(admin, hospital.doctor)
    cancelled = await _post(
        admin, f"/tokens/{token['token_id']}/cancel", {"reason": "patient left"}
    )
    assert (cancelled["status"], cancelled["cancellation_reason"]) == ("CANCELLED", "patient left")
    history = await _history(admin, token["token_id"])
    assert (history[-1]["new_status"], history[-1]["change_reason"]) == (
        "CANCELLED",
        "patient left",
    )


async def test_reschedule_links_a_new_token(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital
) -> None:
    today = dt.date.fromisoformat((await admin.get(f"{API}/hospital")).json()["today"])
    tomorrow = today + dt.timedelta(days=1)
    doctor = hospital.doctor
    shift = await admin.post(
        f"{API}/shifts",
        json={
            "cabin_id": str(doctor.cabin_id),
            "doctor_id": str(doctor.doctor_id),
            "shift_date": tomorrow.isoformat(),
            "shift_start_time": "09:00",
            "shift_end_time": "17:00",
        },
    )
    assert shift.status_code == 201, shift.text
    old = await issue(admin, doctor)

    slot = f"{tomorrow.isoformat()}T10:30:00+05:30"
    new = await _post(
        admin,
        f"/tokens/{old['token_id']}/reschedule",
        {"scheduled_time": slot, "reason": "patient asked"},
        status=201,
    )
    assert new["token_id"] != old["token_id"]
    assert new["rescheduled_from_token_id"] == old["token_id"]
    assert (new["status"], new["visit_date"], new["patient_id"]) == (
        "BOOKED",
        tomorrow.isoformat(),
        old["patient_id"],
    )
    assert dt.datetime.fromisoformat(new["scheduled_time"]) == dt.datetime.fromisoformat(slot)

    old_now = (await admin.get(f"{API}/tokens/{old['token_id']}")).json()
    assert old_now["status"] == "RESCHEDULED"
    history = await _history(admin, new["token_id"])
    assert history[0]["metadata"]["rescheduled_from_token_id"] == old["token_id"]
    assert history[0]["metadata"]["request_id"]     # the request that rescheduled it (app/logs.py)
    assert history[0]["changed_by_key"] == str(await key_id(pool, hospital, "admin"))


async def test_transfer_to_another_doctor_of_the_department(
    admin: httpx.AsyncClient, hospital: factory.Hospital
) -> None:
    token = await issue(admin, hospital.doctors[0])
    other = hospital.doctors[1]
    moved = await _post(
        admin,
        f"/tokens/{token['token_id']}/transfer",
        {"to_doctor_id": str(other.doctor_id), "reason": "shorter queue"},
    )
    assert (moved["doctor_id"], moved["cabin_id"], moved["status"]) == (
        str(other.doctor_id),
        str(other.cabin_id),
        "CHECKED_IN",
    )
    history = await _history(admin, token["token_id"])
    assert history[-1]["metadata"] == {
        "from_doctor_id": str(hospital.doctors[0].doctor_id),
        "to_doctor_id": str(other.doctor_id),
        "request_id": history[-1]["metadata"]["request_id"],   # the request's id (app/logs.py)
    }
    queue = (await admin.get(f"{API}/queues/doctors/{other.doctor_id}")).json()
    assert [w["token_id"] for w in queue["waiting"]] == [token["token_id"]]


async def test_undo_start_and_undo_complete(
    admin: httpx.AsyncClient, hospital: factory.Hospital
) -> None:
    token = await issue(admin, hospital.doctor)
    await _post(admin, f"/tokens/{token['token_id']}/start")
    undone = await _post(admin, f"/tokens/{token['token_id']}/undo-start")
    assert (undone["status"], undone["consultation_start_time"]) == ("WAITING", None)
    await _post(admin, f"/tokens/{token['token_id']}/start")
    await _post(admin, f"/tokens/{token['token_id']}/complete")
    reopened = await _post(admin, f"/tokens/{token['token_id']}/undo-complete")
    assert (reopened["status"], reopened["consultation_end_time"]) == ("IN_CONSULTATION", None)
