"""Every refused request: a 4xx JSON error that says what was wrong, and nothing written."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.api.helpers import API, assert_error, db_now, issue, new_patient, unchanged
from tests.support import factory

MISSING = str(uuid.uuid4())


@pytest.fixture
async def ids(admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital) -> dict[str, str]:
    """Names for path templates: a queued token, a booked one, and the hospital's rows."""
    queued = await issue(admin, hospital.doctor)
    booked = await issue(admin, hospital.doctor, booking_type="ONLINE",
                         scheduled_time=(await db_now(pool)).isoformat())
    shift = await pool.fetchval("SELECT assignment_id FROM cabin_doctors WHERE doctor_id = $1",
                                hospital.doctor.doctor_id)
    return {"token": queued["token_id"], "booked": booked["token_id"], "code": booked["tracking_code"],
            "doctor": str(hospital.doctor.doctor_id), "doctor2": str(hospital.doctors[1].doctor_id),
            "dept": str(hospital.dept_id), "cabin": str(hospital.doctor.cabin_id), "shift": str(shift),
            "missing": MISSING}


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
    ("POST", "/tokens", {"doctor_id": "{missing}", "patient": {"name": "A", "phone": "9800000000"}}),
    ("POST", "/tokens", {"dept_id": "{missing}", "patient": {"name": "A", "phone": "9800000000"}}),
    ("POST", "/tokens", {"doctor_id": "{doctor}", "patient_id": "{missing}"}),
    ("POST", "/cabins", {"dept_id": "{missing}", "cabin_number": "C-9"}),
    ("POST", "/shifts", {"cabin_id": "{missing}", "doctor_id": "{doctor}", "shift_date": "2030-01-01",
                         "shift_start_time": "09:00", "shift_end_time": "10:00"}),
]

# Bodies the schema refuses: wrong types, missing or unknown fields, bad formats.
INVALID = [
    ("POST", "/tokens", {"doctor_id": "{doctor}", "patient": {"name": "A", "phone": "9800000000"},
                         "priority": "1"}, "priority"),
    ("POST", "/tokens", {"doctor_id": "{doctor}", "patient": {"name": "A", "phone": 9800000000}},
     "patient.phone"),
    ("POST", "/tokens", {"doctor_id": "{doctor}", "patient": {"name": "A", "phone": "98-00"}},
     "patient.phone"),
    ("POST", "/tokens", {"doctor_id": "{doctor}", "patient": {"phone": "9800000000"}}, "patient.name"),
    ("POST", "/tokens", {"doctor_id": "{doctor}", "patient": {"name": "A", "phone": "9800000000",
                                                              "nickname": "B"}}, "patient.nickname"),
    ("POST", "/tokens", {"doctor_id": "{doctor}", "patient": {"name": "A", "phone": "9800000000"},
                         "colour": "red"}, "colour"),
    ("POST", "/tokens", {"doctor_id": "not-a-uuid", "patient": {"name": "A", "phone": "9800000000"}},
     "doctor_id"),
    ("POST", "/tokens", {"doctor_id": "{doctor}", "patient": {"name": "A", "phone": "9800000000"},
                         "booking_type": "VIP"}, "booking_type"),
    ("POST", "/tokens", {"doctor_id": "{doctor}", "patient": {"name": "A", "phone": "9800000000"},
                         "booking_type": "ONLINE", "scheduled_time": "2030-01-01T10:00:00"},
     "scheduled_time"),
    ("POST", "/tokens", {"doctor_id": "{doctor}", "patient": {"name": "A", "phone": "9800000000"},
                         "booking_type": "EMERGENCY", "priority": 1}, "priority"),
    ("POST", "/tokens", {"patient": {"name": "A", "phone": "9800000000"}}, None),
    ("POST", "/tokens", {"doctor_id": "{doctor}", "dept_id": "{dept}",
                         "patient": {"name": "A", "phone": "9800000000"}}, None),
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
    ("POST", "/patients", {"name": "A", "phone": "9800000000", "date_of_birth": "09/04/1961"},
     "date_of_birth"),
    ("POST", "/departments", {"name": "Eye", "avg_consultation_time": 10}, "code"),
    ("POST", "/departments", {"name": "Eye", "code": "eye", "avg_consultation_time": 10}, "code"),
    ("POST", "/departments", {"name": "Eye", "code": "EYE", "avg_consultation_time": "10"},
     "avg_consultation_time"),
    ("POST", "/departments", {"name": "Eye", "code": "EYE", "avg_consultation_time": 0},
     "avg_consultation_time"),
    ("PATCH", "/departments/{dept}", {}, None),
    ("PATCH", "/departments/{dept}", {"hospital_id": "{missing}"}, "hospital_id"),
    ("POST", "/cabins", {"dept_id": "{dept}"}, "cabin_number"),
    ("POST", "/doctors", {"emp_code": "E9", "name": "Dr", "specialization": "x",
                          "primary_dept_id": "{dept}", "phone": "9800000000", "status": "RETIRED"},
     "status"),
    ("POST", "/shifts", {"cabin_id": "{cabin}", "doctor_id": "{doctor}", "shift_date": "2030-13-01",
                         "shift_start_time": "09:00", "shift_end_time": "10:00"}, "shift_date"),
    ("POST", "/shifts", {"cabin_id": "{cabin}", "doctor_id": "{doctor}", "shift_date": "2030-01-01",
                         "shift_start_time": "9am", "shift_end_time": "10:00"}, "shift_start_time"),
    ("PATCH", "/shifts/{shift}", {"planned_tokens": -1}, "planned_tokens"),
    ("PATCH", "/hospital", {}, None),
    ("PATCH", "/hospital", {"geofence_radius": 5}, "geofence_radius"),
    ("PATCH", "/hospital", {"board_shows_names": "yes"}, "board_shows_names"),
    ("GET", "/patients", None, None),
    ("GET", "/shifts?date=31-12-2030", None, "date"),
]


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


async def _send(http: httpx.AsyncClient, method: str, path: str, body: Any, ids: dict[str, str]) -> httpx.Response:
    kwargs = {} if body is None else {"json": _fill(body, ids)}
    return await http.request(method, API + path.format(**ids), **kwargs)


@pytest.mark.parametrize(("method", "path", "body"), NOT_FOUND, ids=[f"{m} {p}" for m, p, _ in NOT_FOUND])
async def test_unknown_or_malformed_ids_are_404(admin: httpx.AsyncClient, pool: asyncpg.Pool,
                                                hospital: factory.Hospital, ids: dict[str, str],
                                                method: str, path: str, body: Any) -> None:
    async with unchanged(pool, hospital):
        response = await _send(admin, method, path, body, ids)
    error = assert_error(response, 404, "not_found")
    assert "not found" in error["message"] or "does not exist" in error["message"]


@pytest.mark.parametrize(("method", "path", "body", "field"), INVALID,
                         ids=[f"{m} {p} {f}" for m, p, _, f in INVALID])
async def test_invalid_bodies_are_422_with_the_field(admin: httpx.AsyncClient, pool: asyncpg.Pool,
                                                     hospital: factory.Hospital, ids: dict[str, str],
                                                     method: str, path: str, body: Any,
                                                     field: str | None) -> None:
    async with unchanged(pool, hospital):
        response = await _send(admin, method, path, body, ids)
    error = assert_error(response, 422, field=field)
    if field:
        assert field in error["message"]


@pytest.mark.parametrize("path", ["/tokens", "/tokens/{booked}/check-in", "/doctors/{doctor}/call-next",
                                  "/departments", "/track/{code}/check-in"])
@pytest.mark.parametrize(("raw", "status", "code"), [
    (b"{not json", 400, "bad_json"),
    (b"\xff\xfe\x00", 400, "bad_json"),
    (b"[1, 2]", 422, "invalid"),
    (b'"a string"', 422, "invalid"),
    (b"42", 422, "invalid"),
    (b"null", 422, "invalid"),
])
async def test_body_not_a_json_object(admin: httpx.AsyncClient, pool: asyncpg.Pool,
                                      hospital: factory.Hospital, ids: dict[str, str],
                                      path: str, raw: bytes, status: int, code: str) -> None:
    async with unchanged(pool, hospital):
        response = await admin.post(API + path.format(**ids), content=raw,
                                    headers={"content-type": "application/json"})
    error = assert_error(response, status, code)
    assert "JSON" in error["message"]


async def test_nan_is_not_json(admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital,
                               ids: dict[str, str]) -> None:
    """NaN is not JSON (RFC 8259); Python's parser accepts it, the API must not pass it on."""
    async with unchanged(pool, hospital):
        response = await admin.post(f"{API}/tokens/{ids['booked']}/check-in",
                                    content=b'{"latitude": NaN, "longitude": 77.2}',
                                    headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert_error(response, response.status_code)


async def test_unknown_route_and_wrong_method_are_json(admin: httpx.AsyncClient) -> None:
    assert_error(await admin.get(f"{API}/nothing-here"), 404, "not_found")
    assert_error(await admin.delete(f"{API}/hospital"), 405, "method_not_allowed")


# Illegal transitions --------------------------------------------------------------------------
async def _state(http: httpx.AsyncClient, hospital: factory.Hospital, *, status: str) -> str:
    """A token of hospital.doctor in `status`; the doctor is free unless the state needs them."""
    token = await issue(http, hospital.doctor)
    token_id = token["token_id"]
    steps = {"CHECKED_IN": [], "WAITING": ["call"], "IN_CONSULTATION": ["start"],
             "COMPLETED": ["start", "complete"], "NO_SHOW": ["no-show"], "CANCELLED": ["cancel"]}
    for step in steps[status]:
        response = await http.post(f"{API}/tokens/{token_id}/{step}", json={"reason": "setup"})
        assert response.status_code == 200, response.text
    return token_id


ILLEGAL = [
    ("CHECKED_IN", "complete"), ("CHECKED_IN", "recall"), ("CHECKED_IN", "check-in"),
    ("WAITING", "complete"), ("WAITING", "transfer"), ("WAITING", "undo-complete"),
    ("IN_CONSULTATION", "no-show"), ("IN_CONSULTATION", "cancel"), ("IN_CONSULTATION", "requeue"),
    ("IN_CONSULTATION", "transfer"), ("IN_CONSULTATION", "reschedule"),
    ("COMPLETED", "cancel"), ("COMPLETED", "no-show"), ("COMPLETED", "requeue"),
    ("COMPLETED", "reschedule"), ("COMPLETED", "check-in"), ("COMPLETED", "call"),
    ("NO_SHOW", "start"), ("NO_SHOW", "transfer"), ("NO_SHOW", "complete"),
    ("CANCELLED", "requeue"), ("CANCELLED", "call"), ("CANCELLED", "recall"), ("CANCELLED", "start"),
]

# Each action names a step of the lifecycle, not just a target status: "start" must not reopen
# a completed consultation (that is undo-complete), "undo-start" must not call a queued patient.
WRONG_STATE = [
    ("COMPLETED", "start"), ("IN_CONSULTATION", "call"), ("CHECKED_IN", "undo-start"),
    ("CHECKED_IN", "undo-complete"), ("WAITING", "undo-start"),
]

# Repeating the step a token already took is refused like any other conflict (check-in does so
# already: "token CARD-001 is already CHECKED_IN"), rather than answering 200 and changing nothing
# (or, for cancel, silently rewriting the reason of a closed token without an audit row).
SAME_STATE = [
    ("CHECKED_IN", "requeue"), ("WAITING", "call"), ("IN_CONSULTATION", "start"),
    ("COMPLETED", "complete"), ("NO_SHOW", "no-show"), ("CANCELLED", "cancel"),
]


async def _refused(admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital,
                   status: str, action: str) -> None:
    token_id = await _state(admin, hospital, status=status)
    body: dict[str, Any] = {
        "transfer": {"to_doctor_id": str(hospital.doctors[1].doctor_id)},
        "reschedule": {"scheduled_time": (await db_now(pool) + dt.timedelta(minutes=30)).isoformat()},
        "check-in": {"override_reason": "desk"},
        "cancel": {"reason": "again"},
    }.get(action, {})
    async with unchanged(pool, hospital):
        response = await admin.post(f"{API}/tokens/{token_id}/{action}", json=body)
    error = assert_error(response, 409)
    assert error["code"] in ("illegal_transition", "duplicate"), error


@pytest.mark.parametrize(("status", "action"), ILLEGAL, ids=[f"{s}-{a}" for s, a in ILLEGAL])
async def test_illegal_transitions_are_409(admin: httpx.AsyncClient, pool: asyncpg.Pool,
                                           hospital: factory.Hospital, status: str, action: str) -> None:
    await _refused(admin, pool, hospital, status, action)


@pytest.mark.parametrize(("status", "action"), WRONG_STATE, ids=[f"{s}-{a}" for s, a in WRONG_STATE])
async def test_an_action_from_the_wrong_state_is_409(admin: httpx.AsyncClient, pool: asyncpg.Pool,
                                                     hospital: factory.Hospital, status: str,
                                                     action: str) -> None:
    await _refused(admin, pool, hospital, status, action)


@pytest.mark.parametrize(("status", "action"), SAME_STATE, ids=[f"{s}-{a}" for s, a in SAME_STATE])
async def test_repeating_the_current_step_is_409(admin: httpx.AsyncClient, pool: asyncpg.Pool,
                                                 hospital: factory.Hospital, status: str,
                                                 action: str) -> None:
    await _refused(admin, pool, hospital, status, action)


async def test_requeue_cannot_check_in_a_booked_token(admin: httpx.AsyncClient, pool: asyncpg.Pool,
                                                      hospital: factory.Hospital, ids: dict[str, str]) -> None:
    """'requeue' undoes a call or a no-show; it must not bypass the geofence check-in."""
    async with unchanged(pool, hospital):
        response = await admin.post(f"{API}/tokens/{ids['booked']}/requeue")
    assert_error(response, 409, "illegal_transition")


async def test_second_call_while_one_is_called_is_409(admin: httpx.AsyncClient, pool: asyncpg.Pool,
                                                      hospital: factory.Hospital) -> None:
    await issue(admin, hospital.doctor)
    second = await issue(admin, hospital.doctor)
    assert (await admin.post(f"{API}/doctors/{hospital.doctor.doctor_id}/call-next")).status_code == 200
    async with unchanged(pool, hospital):
        by_id = await admin.post(f"{API}/tokens/{second['token_id']}/call")
        by_next = await admin.post(f"{API}/doctors/{hospital.doctor.doctor_id}/call-next")
        started = await admin.post(f"{API}/tokens/{second['token_id']}/start")
    for response in (by_id, by_next, started):
        error = assert_error(response, 409, "illegal_transition")
        assert "CARD-001 is called" in error["message"]


async def test_call_next_with_nobody_waiting_is_409(admin: httpx.AsyncClient, pool: asyncpg.Pool,
                                                    hospital: factory.Hospital) -> None:
    async with unchanged(pool, hospital):
        response = await admin.post(f"{API}/doctors/{hospital.doctor.doctor_id}/call-next",
                                    json={"complete_current": True})
    error = assert_error(response, 409, "queue_empty")
    assert "nobody is waiting" in error["message"]


async def test_undo_complete_while_another_patient_is_called_is_409(admin: httpx.AsyncClient,
                                                                    pool: asyncpg.Pool,
                                                                    hospital: factory.Hospital) -> None:
    done = await _state(admin, hospital, status="COMPLETED")
    await issue(admin, hospital.doctor)
    assert (await admin.post(f"{API}/doctors/{hospital.doctor.doctor_id}/call-next")).status_code == 200
    async with unchanged(pool, hospital):
        response = await admin.post(f"{API}/tokens/{done}/undo-complete")
    assert_error(response, 409)


# Capacity, geofence and booking rules ------------------------------------------------------------
async def test_full_day_is_409_and_keeps_the_numbering(server, pool: asyncpg.Pool) -> None:
    small = await factory.make_hospital(pool, max_tokens_per_day=2)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=15,
                                 headers={"Authorization": f"Bearer {small.keys['admin']}"}) as http:
        await issue(http, small.doctors[0])
        await issue(http, small.doctors[1])
        async with unchanged(pool, small):
            response = await http.post(f"{API}/tokens", json={
                "doctor_id": str(small.doctor.doctor_id), "patient": new_patient()})
        error = assert_error(response, 409, "full")
        assert "all 2 tokens of the day" in error["message"]
        # A cancelled token keeps its number: the day is still full.
        first = (await http.get(f"{API}/queues/doctors/{small.doctor.doctor_id}")).json()["waiting"][0]
        assert (await http.post(f"{API}/tokens/{first['token_id']}/cancel")).status_code == 200
        assert_error(await http.post(f"{API}/tokens", json={
            "dept_id": str(small.dept_id), "patient": new_patient()}), 409, "full")


async def test_full_session_is_409(server, pool: asyncpg.Pool) -> None:
    small = await factory.make_hospital(pool, max_tokens_per_session=1)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=15,
                                 headers={"Authorization": f"Bearer {small.keys['admin']}"}) as http:
        await issue(http, small.doctor)
        async with unchanged(pool, small):
            response = await http.post(f"{API}/tokens", json={
                "doctor_id": str(small.doctor.doctor_id), "patient": new_patient()})
        error = assert_error(response, 409, "full")
        assert "1 of 1" in error["message"]
        # The other doctor still has room.
        await issue(http, small.doctors[1])


async def test_staff_check_in_outside_the_geofence_is_422(admin: httpx.AsyncClient, pool: asyncpg.Pool,
                                                          hospital: factory.Hospital,
                                                          ids: dict[str, str]) -> None:
    async with unchanged(pool, hospital):
        response = await admin.post(f"{API}/tokens/{ids['booked']}/check-in",
                                    json={"latitude": 19.0760, "longitude": 72.8777})  # Mumbai
    error = assert_error(response, 422, "outside_geofence")
    assert error["radius_m"] == hospital.radius_m and error["distance_m"] > 1_000_000


async def test_online_without_scheduled_time_is_422(admin: httpx.AsyncClient, pool: asyncpg.Pool,
                                                    hospital: factory.Hospital) -> None:
    async with unchanged(pool, hospital):
        response = await admin.post(f"{API}/tokens", json={
            "doctor_id": str(hospital.doctor.doctor_id), "patient": new_patient(), "booking_type": "ONLINE"})
    error = assert_error(response, 422)
    assert "scheduled_time" in error["message"]


async def test_token_for_a_doctor_on_leave_is_409(admin: httpx.AsyncClient, pool: asyncpg.Pool,
                                                  hospital: factory.Hospital) -> None:
    patched = await admin.patch(f"{API}/doctors/{hospital.doctor.doctor_id}", json={"status": "ON_LEAVE"})
    assert patched.status_code == 200
    async with unchanged(pool, hospital):
        response = await admin.post(f"{API}/tokens", json={
            "doctor_id": str(hospital.doctor.doctor_id), "patient": new_patient()})
    assert_error(response, 409, "doctor_unavailable")


async def test_reschedule_into_the_past_changes_nothing(admin: httpx.AsyncClient, pool: asyncpg.Pool,
                                                        hospital: factory.Hospital,
                                                        ids: dict[str, str]) -> None:
    past = (await db_now(pool) - dt.timedelta(days=2)).isoformat()
    async with unchanged(pool, hospital):
        response = await admin.post(f"{API}/tokens/{ids['token']}/reschedule", json={"scheduled_time": past})
    error = assert_error(response, 422)
    assert "past" in error["message"]


async def test_transfer_to_the_same_doctor_is_409(admin: httpx.AsyncClient, pool: asyncpg.Pool,
                                                  hospital: factory.Hospital, ids: dict[str, str]) -> None:
    async with unchanged(pool, hospital):
        response = await admin.post(f"{API}/tokens/{ids['token']}/transfer",
                                    json={"to_doctor_id": ids["doctor"]})
    assert_error(response, 409, "illegal_transition")


async def test_transfer_to_a_doctor_of_another_hospital_is_404(admin: httpx.AsyncClient, pool: asyncpg.Pool,
                                                               hospital: factory.Hospital,
                                                               ids: dict[str, str]) -> None:
    other = await factory.make_hospital(pool)
    async with unchanged(pool, hospital, other):
        response = await admin.post(f"{API}/tokens/{ids['token']}/transfer",
                                    json={"to_doctor_id": str(other.doctor.doctor_id)})
    assert_error(response, 404, "not_found")


async def test_duplicates_are_409(admin: httpx.AsyncClient, pool: asyncpg.Pool,
                                  hospital: factory.Hospital) -> None:
    async with unchanged(pool, hospital):
        dept = await admin.post(f"{API}/departments", json={
            "name": "Cardiology again", "code": "CARD", "avg_consultation_time": 10})
        cabin = await admin.post(f"{API}/cabins", json={"dept_id": str(hospital.dept_id),
                                                        "cabin_number": "C-101"})
    assert_error(dept, 409, "duplicate")
    assert_error(cabin, 409, "duplicate")
    first = await admin.post(f"{API}/patients", json={"name": "A", "phone": "9800000000", "uhid": "DUP-1"})
    assert first.status_code == 201
    async with unchanged(pool, hospital):
        again = await admin.post(f"{API}/patients", json={"name": "B", "phone": "9800000001", "uhid": "DUP-1"})
    assert_error(again, 409, "duplicate")


async def test_invalid_timezone_is_422(admin: httpx.AsyncClient, pool: asyncpg.Pool,
                                       hospital: factory.Hospital) -> None:
    async with unchanged(pool, hospital):
        response = await admin.patch(f"{API}/hospital", json={"timezone": "Mars/Olympus_Mons"})
    assert_error(response, 422)
