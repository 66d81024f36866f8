"""Who may do what (app/api/auth.py): credentials, roles, and one hospital never reaching
another's rows by changing an id in the URL."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.api.helpers import API, assert_error, client, fill, issue, new_patient, unchanged
from tests.support import factory
from tests.support.app_server import AppServer


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer opd_not-a-real-key"},
        {"Authorization": "Bearer something-else"},
        {"Authorization": "Bearer opd_" + "x" * 300},
    ],
    ids=["none", "empty-bearer", "basic", "unknown-key", "not-a-key", "overlong"],
)
async def test_missing_or_bad_credentials_are_401(
    server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital, headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=15, headers=headers) as http:
        async with unchanged(pool, hospital):
            responses = [
                await http.get(f"{API}/hospital"),
                await http.get(f"{API}/queues/doctors/{hospital.doctor.doctor_id}"),
                await http.post(
                    f"{API}/tokens",
                    json={"doctor_id": str(hospital.doctor.doctor_id), "patient": new_patient()},
                ),
                await http.post(f"{API}/doctors/{hospital.doctor.doctor_id}/call-next"),
            ]
    for response in responses:
        error = assert_error(response, 401, "unauthenticated")
        assert "API key" in error["message"]


async def test_revoked_key_is_401(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital
) -> None:
    assert (await admin.get(f"{API}/hospital")).status_code == 200
    await pool.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE hospital_id = $1 AND role = 'admin'",
        hospital.hospital_id,
    )
    async with unchanged(pool, hospital):
        read = await admin.get(f"{API}/hospital")
        write = await admin.post(
            f"{API}/tokens",
            json={"doctor_id": str(hospital.doctor.doctor_id), "patient": new_patient()},
        )
    for response in (read, write):
        error = assert_error(response, 401, "unauthenticated")
        assert "revoked" in error["message"]


async def test_401_comes_before_body_validation(anonymous: httpx.AsyncClient) -> None:
    assert_error(await anonymous.post(f"{API}/tokens", content=b"{broken"), 401)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/departments", {"name": "Eye", "code": "EYE", "avg_consultation_time": 10}),
        ("PATCH", "/departments/{dept}", {"name": "Renamed"}),
        ("POST", "/cabins", {"dept_id": "{dept}", "cabin_number": "C-9"}),
        (
            "POST",
            "/doctors",
            {
                "emp_code": "E9",
                "name": "Dr",
                "specialization": "x",
                "primary_dept_id": "{dept}",
                "phone": "9800000000",
            },
        ),
        ("PATCH", "/doctors/{doctor}", {"status": "ON_LEAVE"}),
        (
            "POST",
            "/shifts",
            {
                "cabin_id": "{cabin}",
                "doctor_id": "{doctor}",
                "shift_date": "2030-01-01",
                "shift_start_time": "09:00",
                "shift_end_time": "10:00",
            },
        ),
        ("PATCH", "/hospital", {"name": "Renamed"}),
    ],
)
async def test_receptionist_cannot_change_the_setup(
    receptionist: httpx.AsyncClient,
    pool: asyncpg.Pool,
    hospital: factory.Hospital,
    method: str,
    path: str,
    body: dict[str, Any],
) -> None:
    names = {
        "dept": str(hospital.dept_id),
        "doctor": str(hospital.doctor.doctor_id),
        "cabin": str(hospital.doctor.cabin_id),
    }
    async with unchanged(pool, hospital):
        response = await receptionist.request(
            method, API + path.format(**names), json=fill(body, names)
        )
    error = assert_error(response, 403, "forbidden")
    assert "admin" in error["message"]


async def test_receptionist_issues_and_calls_for_any_doctor(
    receptionist: httpx.AsyncClient, hospital: factory.Hospital
) -> None:
    for made in hospital.doctors:
        token = await issue(receptionist, made)
        called = await receptionist.post(f"{API}/doctors/{made.doctor_id}/call-next")
        assert called.status_code == 200, called.text
        assert called.json()["token_id"] == token["token_id"]


async def test_doctor_calls_only_their_own_queue(
    doctor: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    pool: asyncpg.Pool,
    hospital: factory.Hospital,
) -> None:
    mine, other = hospital.doctors
    await issue(admin, mine)
    theirs = await issue(admin, other)
    async with unchanged(pool, hospital):
        responses = [
            await doctor.post(f"{API}/doctors/{other.doctor_id}/call-next"),
            await doctor.post(f"{API}/tokens/{theirs['token_id']}/call"),
            await doctor.post(f"{API}/tokens/{theirs['token_id']}/no-show"),
            await doctor.post(f"{API}/tokens/{theirs['token_id']}/cancel", json={"reason": "x"}),
            await doctor.post(
                f"{API}/tokens/{theirs['token_id']}/transfer",
                json={"to_doctor_id": str(mine.doctor_id)},
            ),
            await doctor.post(f"{API}/doctors/{other.doctor_id}/pause"),
        ]
    for response in responses:
        error = assert_error(response, 403, "forbidden")
        assert "own queue" in error["message"]

    own = await doctor.post(f"{API}/doctors/{mine.doctor_id}/call-next")
    assert own.status_code == 200, own.text
    assert own.json()["doctor_id"] == str(mine.doctor_id)


async def test_doctor_cannot_issue_register_or_check_in(
    doctor: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    pool: asyncpg.Pool,
    hospital: factory.Hospital,
) -> None:
    booked = await issue(
        admin,
        hospital.doctor,
        booking_type="ONLINE",
        scheduled_time=(await pool.fetchval("SELECT opd_now()")).isoformat(),
    )
    async with unchanged(pool, hospital):
        responses = [
            await doctor.post(
                f"{API}/tokens",
                json={"doctor_id": str(hospital.doctor.doctor_id), "patient": new_patient()},
            ),
            await doctor.post(f"{API}/patients", json=new_patient()),
            await doctor.get(f"{API}/patients", params={"phone": "9800000000"}),
            await doctor.post(
                f"{API}/tokens/{booked['token_id']}/check-in",
                json={"override_reason": "at the desk"},
            ),
            await doctor.post(
                f"{API}/departments", json={"name": "E", "code": "E", "avg_consultation_time": 5}
            ),
        ]
    for response in responses:
        assert_error(response, 403, "forbidden")


# One hospital never reaches another's rows -------------------------------------------------------
@pytest.fixture
async def foreign(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, server: AppServer
) -> dict[str, Any]:
    """Hospital B with a queued token, a booked token and a patient; its ids as strings."""
    other = await factory.make_hospital(pool)
    async with client(server.base_url, other.keys["admin"]) as b_admin:
        queued = await issue(b_admin, other.doctor)
        booked = await issue(
            b_admin,
            other.doctor,
            booking_type="ONLINE",
            scheduled_time=(await pool.fetchval("SELECT opd_now()")).isoformat(),
        )
        shift = (await b_admin.get(f"{API}/shifts")).json()[0]["assignment_id"]
    return {
        "hospital": other,
        "token": queued["token_id"],
        "booked": booked["token_id"],
        "patient": queued["patient_id"],
        "doctor": str(other.doctor.doctor_id),
        "doctor2": str(other.doctors[1].doctor_id),
        "dept": str(other.dept_id),
        "cabin": str(other.doctor.cabin_id),
        "shift": shift,
        "code": other.code,
    }


CROSS_HOSPITAL = [
    ("GET", "/tokens/{token}", None),
    ("GET", "/tokens/{token}/history", None),
    ("POST", "/tokens/{token}/call", {}),
    ("POST", "/tokens/{token}/start", {}),
    ("POST", "/tokens/{token}/no-show", {}),
    ("POST", "/tokens/{token}/cancel", {"reason": "x"}),
    ("POST", "/tokens/{token}/recall", {}),
    ("POST", "/tokens/{token}/transfer", {"to_doctor_id": "{doctor2}"}),
    ("POST", "/tokens/{token}/reschedule", {"scheduled_time": "2030-01-01T10:00:00+05:30"}),
    ("POST", "/tokens/{booked}/check-in", {"override_reason": "x"}),
    ("POST", "/doctors/{doctor}/call-next", {}),
    ("POST", "/doctors/{doctor}/pause", {}),
    ("POST", "/doctors/{doctor}/resume", {}),
    ("PATCH", "/doctors/{doctor}", {"name": "Taken over"}),
    ("PATCH", "/departments/{dept}", {"name": "Taken over"}),
    ("PATCH", "/cabins/{cabin}", {"status": "MAINTENANCE"}),
    ("PATCH", "/shifts/{shift}", {"status": "CANCELLED"}),
    ("GET", "/queues/doctors/{doctor}", None),
    ("GET", "/queues/departments/{dept}", None),
    ("GET", "/patients/{patient}", None),
    ("GET", "/doctors?hospital={code}", None),
    ("POST", "/tokens", {"doctor_id": "{doctor}", "patient": {"name": "A", "phone": "9800000000"}}),
    ("POST", "/tokens", {"dept_id": "{dept}", "patient": {"name": "A", "phone": "9800000000"}}),
    ("POST", "/tokens", {"doctor_id": "{own_doctor}", "patient_id": "{patient}"}),
    ("POST", "/cabins", {"dept_id": "{dept}", "cabin_number": "C-9"}),
    (
        "POST",
        "/doctors",
        {
            "emp_code": "E9",
            "name": "Dr",
            "specialization": "x",
            "primary_dept_id": "{dept}",
            "phone": "9800000000",
        },
    ),
    (
        "POST",
        "/shifts",
        {
            "cabin_id": "{cabin}",
            "doctor_id": "{own_doctor}",
            "shift_date": "2030-01-01",
            "shift_start_time": "09:00",
            "shift_end_time": "10:00",
        },
    ),
    (
        "POST",
        "/shifts",
        {
            "cabin_id": "{own_cabin}",
            "doctor_id": "{doctor}",
            "shift_date": "2030-01-01",
            "shift_start_time": "09:00",
            "shift_end_time": "10:00",
        },
    ),
    ("PATCH", "/shifts/{own_shift}", {"doctor_id": "{doctor}"}),
]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    CROSS_HOSPITAL,
    ids=[f"{m} {p} {i}" for i, (m, p, _) in enumerate(CROSS_HOSPITAL)],
)
async def test_another_hospitals_ids_are_404(
    admin: httpx.AsyncClient,
    pool: asyncpg.Pool,
    hospital: factory.Hospital,
    foreign: dict[str, Any],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    names = {k: v for k, v in foreign.items() if isinstance(v, str)}
    names["own_doctor"] = str(hospital.doctor.doctor_id)
    names["own_cabin"] = str(hospital.doctor.cabin_id)
    names["own_shift"] = str(
        await pool.fetchval(
            "SELECT assignment_id FROM cabin_doctors WHERE doctor_id = $1",
            hospital.doctor.doctor_id,
        )
    )
    kwargs = {} if body is None else {"json": fill(body, names)}
    async with unchanged(pool, hospital, foreign["hospital"]):
        response = await admin.request(method, API + path.format(**names), **kwargs)
    error = assert_error(response, 404, "not_found")
    # The answer must not tell a foreign row from a missing one by echoing B's data.
    assert foreign["hospital"].doctor.name not in response.text
    assert error["message"]


async def test_foreign_ids_answer_like_missing_ones(
    admin: httpx.AsyncClient, foreign: dict[str, Any]
) -> None:
    """Ids of other hospitals cannot be probed: the answer equals the one for an unknown id."""
    for template in ("/tokens/{}", "/queues/doctors/{}", "/queues/departments/{}"):
        key = {
            "/tokens/{}": "token",
            "/queues/doctors/{}": "doctor",
            "/queues/departments/{}": "dept",
        }[template]
        foreign_answer = await admin.get(API + template.format(foreign[key]))
        missing_answer = await admin.get(API + template.format(uuid.uuid4()))
        assert (foreign_answer.status_code, foreign_answer.json()["error"]["code"]) == (
            missing_answer.status_code,
            missing_answer.json()["error"]["code"],
        )
