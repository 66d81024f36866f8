"""Refused input: unknown or malformed ids, bodies the schema refuses, bodies that are not a
JSON object. Each answer is a 4xx JSON error that says what was wrong, and nothing is written."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from tests.api.helpers import API, assert_error, fill, unchanged
from tests.support import factory

MISSING = "00000000-0000-4000-8000-000000000000"

# (method, path, body, status, code, field): unknown and malformed ids.
NOT_FOUND = [
    ("GET", "/tokens/{missing}", None),
    ("GET", "/tokens/{missing}/history", None),
    ("POST", "/tokens/{missing}/start", {}),
    ("POST", "/tokens/{missing}/cancel", {"reason": "x"}),
    ("POST", "/tokens/{missing}/check-in", {"override_reason": "x"}),
    ("POST", "/tokens/{missing}/transfer", {"to_doctor_id": "{doctor2}"}),
    ("POST", "/tokens/{missing}/reschedule", {"scheduled_time": "2030-01-01T10:00:00+05:30"}),
    ("POST", "/tokens/{missing}/recall", {}),
    ("POST", "/doctors/{missing}/call-next", {}),
    ("POST", "/doctors/{missing}/pause", {}),
    ("PATCH", "/doctors/{missing}", {"name": "x"}),
    ("PATCH", "/departments/{missing}", {"name": "x"}),
    ("PATCH", "/cabins/{missing}", {"cabin_number": "x"}),
    ("PATCH", "/shifts/{missing}", {"planned_tokens": 3}),
    ("GET", "/patients/{missing}", None),
    ("GET", "/queues/doctors/{missing}", None),
    ("GET", "/queues/departments/{missing}", None),
    ("GET", "/tokens/not-a-uuid", None),
    ("POST", "/tokens/12345/start", {}),
    ("POST", "/doctors/zzz/call-next", {}),
    ("GET", "/queues/doctors/{doctor}x", None),
    ("GET", "/doctors?hospital=NOSUCHCODE", None),
    ("POST", "/tokens/{token}/transfer", {"to_doctor_id": "{missing}"}),
    (
        "POST",
        "/tokens",
        {"doctor_id": "{missing}", "patient": {"name": "A", "phone": "9800000000"}},
    ),
    ("POST", "/tokens", {"dept_id": "{missing}", "patient": {"name": "A", "phone": "9800000000"}}),
    ("POST", "/tokens", {"doctor_id": "{doctor}", "patient_id": "{missing}"}),
    ("POST", "/cabins", {"dept_id": "{missing}", "cabin_number": "C-9"}),
    (
        "POST",
        "/shifts",
        {
            "cabin_id": "{missing}",
            "doctor_id": "{doctor}",
            "shift_date": "2030-01-01",
            "shift_start_time": "09:00",
            "shift_end_time": "10:00",
        },
    ),
]

# Bodies the schema refuses: wrong types, missing or unknown fields, bad formats.
INVALID = [
    (
        "POST",
        "/tokens",
        {"doctor_id": "{doctor}", "patient": {"name": "A", "phone": "9800000000"}, "priority": "1"},
        "priority",
    ),
    (
        "POST",
        "/tokens",
        {"doctor_id": "{doctor}", "patient": {"name": "A", "phone": 9800000000}},
        "patient.phone",
    ),
    (
        "POST",
        "/tokens",
        {"doctor_id": "{doctor}", "patient": {"name": "A", "phone": "98-00"}},
        "patient.phone",
    ),
    (
        "POST",
        "/tokens",
        {"doctor_id": "{doctor}", "patient": {"phone": "9800000000"}},
        "patient.name",
    ),
    (
        "POST",
        "/tokens",
        {"doctor_id": "{doctor}", "patient": {"name": "A", "phone": "9800000000", "nickname": "B"}},
        "patient.nickname",
    ),
    (
        "POST",
        "/tokens",
        {"doctor_id": "{doctor}", "patient": {"name": "A", "phone": "9800000000"}, "colour": "red"},
        "colour",
    ),
    (
        "POST",
        "/tokens",
        {"doctor_id": "not-a-uuid", "patient": {"name": "A", "phone": "9800000000"}},
        "doctor_id",
    ),
    (
        "POST",
        "/tokens",
        {
            "doctor_id": "{doctor}",
            "patient": {"name": "A", "phone": "9800000000"},
            "booking_type": "VIP",
        },
        "booking_type",
    ),
    (
        "POST",
        "/tokens",
        {
            "doctor_id": "{doctor}",
            "patient": {"name": "A", "phone": "9800000000"},
            "booking_type": "ONLINE",
            "scheduled_time": "2030-01-01T10:00:00",
        },
        "scheduled_time",
    ),
    (
        "POST",
        "/tokens",
        {
            "doctor_id": "{doctor}",
            "patient": {"name": "A", "phone": "9800000000"},
            "booking_type": "EMERGENCY",
            "priority": 1,
        },
        "priority",
    ),
    ("POST", "/tokens", {"patient": {"name": "A", "phone": "9800000000"}}, None),
    (
        "POST",
        "/tokens",
        {
            "doctor_id": "{doctor}",
            "dept_id": "{dept}",
            "patient": {"name": "A", "phone": "9800000000"},
        },
        None,
    ),
    ("POST", "/tokens", {"doctor_id": "{doctor}"}, None),
    ("POST", "/tokens/{booked}/check-in", {"latitude": "28.6", "longitude": 77.2}, "latitude"),
    ("POST", "/tokens/{booked}/check-in", {"latitude": 91, "longitude": 77.2}, "latitude"),
    ("POST", "/tokens/{booked}/check-in", {"latitude": 28.6}, None),
    ("POST", "/tokens/{booked}/check-in", {}, None),
    ("POST", "/tokens/{booked}/check-in", {"override_reason": ""}, "override_reason"),
    ("POST", "/tokens/{token}/cancel", {"reason": 5}, "reason"),
    ("POST", "/tokens/{token}/start", {"why": "x"}, "why"),
    ("POST", "/tokens/{token}/transfer", {"reason": "x"}, "to_doctor_id"),
    ("POST", "/tokens/{token}/reschedule", {}, "scheduled_time"),
    ("POST", "/tokens/{token}/reschedule", {"scheduled_time": "tomorrow"}, "scheduled_time"),
    ("POST", "/doctors/{doctor}/call-next", {"complete_current": "yes"}, "complete_current"),
    ("POST", "/doctors/{doctor}/pause", {"minutes": 5}, "minutes"),
    ("POST", "/track/{code}/check-in", {"latitude": 28.6}, "longitude"),
    ("POST", "/patients", {"name": "A"}, "phone"),
    ("POST", "/patients", {"name": "A", "phone": "9800000000", "gender": "X"}, "gender"),
    (
        "POST",
        "/patients",
        {"name": "A", "phone": "9800000000", "date_of_birth": "09/04/1961"},
        "date_of_birth",
    ),
    ("POST", "/departments", {"name": "Eye", "avg_consultation_time": 10}, "code"),
    ("POST", "/departments", {"name": "Eye", "code": "eye", "avg_consultation_time": 10}, "code"),
    (
        "POST",
        "/departments",
        {"name": "Eye", "code": "EYE", "avg_consultation_time": "10"},
        "avg_consultation_time",
    ),
    (
        "POST",
        "/departments",
        {"name": "Eye", "code": "EYE", "avg_consultation_time": 0},
        "avg_consultation_time",
    ),
    ("PATCH", "/departments/{dept}", {}, None),
    ("PATCH", "/departments/{dept}", {"hospital_id": "{missing}"}, "hospital_id"),
    ("POST", "/cabins", {"dept_id": "{dept}"}, "cabin_number"),
    (
        "POST",
        "/doctors",
        {
            "emp_code": "E9",
            "name": "Dr",
            "specialization": "x",
            "primary_dept_id": "{dept}",
            "phone": "9800000000",
            "status": "RETIRED",
        },
        "status",
    ),
    (
        "POST",
        "/shifts",
        {
            "cabin_id": "{cabin}",
            "doctor_id": "{doctor}",
            "shift_date": "2030-13-01",
            "shift_start_time": "09:00",
            "shift_end_time": "10:00",
        },
        "shift_date",
    ),
    (
        "POST",
        "/shifts",
        {
            "cabin_id": "{cabin}",
            "doctor_id": "{doctor}",
            "shift_date": "2030-01-01",
            "shift_start_time": "9am",
            "shift_end_time": "10:00",
        },
        "shift_start_time",
    ),
    ("PATCH", "/shifts/{shift}", {"planned_tokens": -1}, "planned_tokens"),
    ("PATCH", "/hospital", {}, None),
    ("PATCH", "/hospital", {"geofence_radius": 5}, "geofence_radius"),
    ("PATCH", "/hospital", {"board_shows_names": "yes"}, "board_shows_names"),
    ("GET", "/patients", None, None),
    ("GET", "/shifts?date=31-12-2030", None, "date"),
]


async def _send(
    http: httpx.AsyncClient, method: str, path: str, body: Any, ids: dict[str, str]
) -> httpx.Response:
    kwargs = {} if body is None else {"json": fill(body, ids)}
    return await http.request(method, API + path.format(**ids), **kwargs)


@pytest.mark.parametrize(
    ("method", "path", "body"), NOT_FOUND, ids=[f"{m} {p}" for m, p, _ in NOT_FOUND]
)
async def test_unknown_or_malformed_ids_are_404(
    admin: httpx.AsyncClient,
    pool: asyncpg.Pool,
    hospital: factory.Hospital,
    ids: dict[str, str],
    method: str,
    path: str,
    body: Any,
) -> None:
    async with unchanged(pool, hospital):
        response = await _send(admin, method, path, body, ids)
    error = assert_error(response, 404, "not_found")
    assert "not found" in error["message"] or "does not exist" in error["message"]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"), INVALID, ids=[f"{m} {p} {f}" for m, p, _, f in INVALID]
)
async def test_invalid_bodies_are_422_with_the_field(
    admin: httpx.AsyncClient,
    pool: asyncpg.Pool,
    hospital: factory.Hospital,
    ids: dict[str, str],
    method: str,
    path: str,
    body: Any,
    field: str | None,
) -> None:
    async with unchanged(pool, hospital):
        response = await _send(admin, method, path, body, ids)
    error = assert_error(response, 422, field=field)
    if field:
        assert field in error["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/tokens",
        "/tokens/{booked}/check-in",
        "/doctors/{doctor}/call-next",
        "/departments",
        "/track/{code}/check-in",
    ],
)
@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"{not json", 400, "bad_json"),
        (b"\xff\xfe\x00", 400, "bad_json"),
        (b"[1, 2]", 422, "invalid"),
        (b'"a string"', 422, "invalid"),
        (b"42", 422, "invalid"),
        (b"null", 422, "invalid"),
    ],
)
async def test_body_not_a_json_object(
    admin: httpx.AsyncClient,
    pool: asyncpg.Pool,
    hospital: factory.Hospital,
    ids: dict[str, str],
    path: str,
    raw: bytes,
    status: int,
    code: str,
) -> None:
    async with unchanged(pool, hospital):
        response = await admin.post(
            API + path.format(**ids), content=raw, headers={"content-type": "application/json"}
        )
    error = assert_error(response, status, code)
    assert "JSON" in error["message"]


async def test_nan_is_not_json(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital, ids: dict[str, str]
) -> None:
    """NaN is not JSON (RFC 8259). Python's parser accepts it; the API must refuse it as bad JSON
    or name the field, not pass it to PostgreSQL and answer with a constraint of the earth type."""
    async with unchanged(pool, hospital):
        response = await admin.post(
            f"{API}/tokens/{ids['booked']}/check-in",
            content=b'{"latitude": NaN, "longitude": 77.2}',
            headers={"content-type": "application/json"},
        )
    assert response.status_code in (400, 422), response.text
    error = assert_error(response, response.status_code)
    assert error["code"] == "bad_json" or error.get("field") == "latitude", error


async def test_unknown_route_and_wrong_method_are_json(admin: httpx.AsyncClient) -> None:
    assert_error(await admin.get(f"{API}/nothing-here"), 404, "not_found")
    assert_error(await admin.delete(f"{API}/hospital"), 405, "method_not_allowed")
