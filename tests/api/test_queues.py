"""Queue snapshots over HTTP (app/api/queues.py)."""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import API, issue
from tests.support import factory

pytestmark = pytest.mark.calendar

WAITING_FIELDS = {"token_id", "token_number", "position", "eta_minutes", "priority", "status"}


async def test_doctor_queue_orders_by_priority_with_positions(
    admin: httpx.AsyncClient, hospital: factory.Hospital
) -> None:
    doctor = hospital.doctor
    normal_1 = await issue(admin, doctor)
    senior = await issue(admin, doctor, priority=2)
    normal_2 = await issue(admin, doctor)
    emergency = await issue(admin, doctor, booking_type="EMERGENCY")

    response = await admin.get(f"{API}/queues/doctors/{doctor.doctor_id}")
    assert response.status_code == 200, response.text
    queue = response.json()
    assert queue["now_serving"] is None
    assert queue["doctor_id"] == str(doctor.doctor_id)
    assert queue["cabin_id"] == str(doctor.cabin_id)
    waiting = queue["waiting"]
    assert all(WAITING_FIELDS <= set(w) for w in waiting)
    assert not any(k.startswith("_") for w in waiting for k in w)
    assert [w["token_id"] for w in waiting] == [
        emergency["token_id"],
        senior["token_id"],
        normal_1["token_id"],
        normal_2["token_id"],
    ]
    assert [w["position"] for w in waiting] == [1, 2, 3, 4]
    assert [w["priority"] for w in waiting] == [3, 2, 1, 1]
    assert {w["status"] for w in waiting} == {"CHECKED_IN"}
    etas = [w["eta_minutes"] for w in waiting]
    assert etas == sorted(etas) and len(set(etas)) == 4
    # About one expected call per patient ahead: for a doctor without history half the configured
    # 10 minutes' consultation + 5 minutes' buffer (the factory's defaults; the configured slot is
    # read as an upper bound), less expected no-shows, with a range around each (docs/eta.md).
    assert all(4 <= b - a <= 10 for a, b in zip(etas, etas[1:], strict=False)), etas
    assert all(w["eta_low_minutes"] <= w["eta_minutes"] <= w["eta_high_minutes"] for w in waiting)


async def test_doctor_queue_shows_now_serving(
    admin: httpx.AsyncClient, hospital: factory.Hospital
) -> None:
    doctor = hospital.doctor
    first = await issue(admin, doctor)
    second = await issue(admin, doctor)
    called = await admin.post(f"{API}/doctors/{doctor.doctor_id}/call-next")
    assert called.status_code == 200

    queue = (await admin.get(f"{API}/queues/doctors/{doctor.doctor_id}")).json()
    assert queue["now_serving"]["token_id"] == first["token_id"]
    assert queue["now_serving"]["status"] == "WAITING"
    assert [(w["token_id"], w["position"]) for w in queue["waiting"]] == [(second["token_id"], 1)]


async def test_department_queue_has_every_doctor_on_shift(
    admin: httpx.AsyncClient, hospital: factory.Hospital
) -> None:
    await issue(admin, hospital.doctors[0])
    await issue(admin, hospital.doctors[0])
    await issue(admin, hospital.doctors[1])
    response = await admin.get(f"{API}/queues/departments/{hospital.dept_id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["dept_id"], body["code"], body["waiting_count"]) == (
        str(hospital.dept_id),
        "CARD",
        3,
    )
    by_doctor = {q["doctor_id"]: q for q in body["queues"]}
    assert set(by_doctor) == {str(d.doctor_id) for d in hospital.doctors}
    assert [w["position"] for w in by_doctor[str(hospital.doctors[0].doctor_id)]["waiting"]] == [
        1,
        2,
    ]
    assert [w["position"] for w in by_doctor[str(hospital.doctors[1].doctor_id)]["waiting"]] == [1]
