"""The patient's tracking link (app/api/track.py): no credential, no personal data."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from tests.api.helpers import API, assert_error, db_now, issue, unchanged
from tests.support import factory

pytestmark = pytest.mark.calendar

NAME = "Zubeida Quasimodo-Arora"
PHONE = "9123456780"


async def test_track_shows_the_token_without_name_or_phone(
    admin: httpx.AsyncClient, anonymous: httpx.AsyncClient, hospital: factory.Hospital
) -> None:
    await issue(admin, hospital.doctor)
    token = await issue(
        admin, hospital.doctor, patient={"name": NAME, "phone": PHONE, "uhid": "ZQ-1"}
    )
    response = await anonymous.get(f"{API}/track/{token['tracking_code']}")
    assert response.status_code == 200, response.text
    view = response.json()
    assert (view["token_number"], view["status"], view["position"]) == (
        token["token_number"],
        "CHECKED_IN",
        2,
    )
    assert view["eta_minutes"] is not None
    assert view["doctor_name"] == hospital.doctor.name
    for secret in (NAME, "Zubeida", "Quasimodo", PHONE, "ZQ-1", token["patient_id"]):
        assert secret not in response.text


async def test_patient_checks_in_from_the_phone(
    admin: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    pool: asyncpg.Pool,
    hospital: factory.Hospital,
) -> None:
    token = await issue(
        admin,
        hospital.doctor,
        booking_type="ONLINE",
        scheduled_time=(await db_now(pool)).isoformat(),
        patient={"name": NAME, "phone": PHONE},
    )
    assert (await anonymous.get(f"{API}/track/{token['tracking_code']}")).json()[
        "status"
    ] == "BOOKED"
    response = await anonymous.post(
        f"{API}/track/{token['tracking_code']}/check-in",
        json={"latitude": hospital.latitude, "longitude": hospital.longitude},
    )
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["position"]) == ("CHECKED_IN", 1)
    assert NAME not in response.text and PHONE not in response.text
    history = (await admin.get(f"{API}/tokens/{token['token_id']}/history")).json()
    assert (history[-1]["new_status"], history[-1]["changed_by_key"]) == ("CHECKED_IN", None)


async def test_patient_outside_the_geofence_is_refused(
    admin: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    pool: asyncpg.Pool,
    hospital: factory.Hospital,
) -> None:
    token = await issue(
        admin,
        hospital.doctor,
        booking_type="ONLINE",
        scheduled_time=(await db_now(pool)).isoformat(),
    )
    async with unchanged(pool, hospital):
        response = await anonymous.post(
            f"{API}/track/{token['tracking_code']}/check-in",
            json={
                "latitude": hospital.latitude + 0.01,  # ~1.1 km north
                "longitude": hospital.longitude,
            },
        )
    error = assert_error(response, 422, "outside_geofence")
    assert error["radius_m"] == hospital.radius_m
    assert 1000 < error["distance_m"] < 1300
    assert "m from the hospital" in error["message"]


async def test_unknown_tracking_code_is_404(
    anonymous: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital
) -> None:
    async with unchanged(pool, hospital):
        for code in ("A" * 24, "not-a-code", "x"):
            assert_error(await anonymous.get(f"{API}/track/{code}"), 404, "not_found")
            assert_error(
                await anonymous.post(
                    f"{API}/track/{code}/check-in",
                    json={"latitude": hospital.latitude, "longitude": hospital.longitude},
                ),
                404,
                "not_found",
            )
