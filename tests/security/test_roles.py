"""Wrong role: every refusal is 401/403 and changes nothing (docs/security.md, "Who can do what")."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from tests.security.helpers import API, PASSWORD, bearer, cookie_header, pair_display, unchanged
from tests.support import factory


def assert_refused(response: httpx.Response, status: int = 403) -> None:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: " \
                                           f"{response.status_code} {response.text}"
    assert response.json()["error"]["code"] in ("forbidden", "unauthenticated", "csrf")


def admin_only_requests(hospital: factory.Hospital) -> list[tuple[str, str, Any]]:
    return [
        ("POST", "/departments", {"name": "Neurology", "code": "NEURO", "avg_consultation_time": 10}),
        ("PATCH", f"/departments/{hospital.dept_id}", {"name": "Renamed"}),
        ("POST", "/cabins", {"dept_id": str(hospital.dept_id), "cabin_number": "X-1"}),
        ("PATCH", f"/doctors/{hospital.doctor.doctor_id}", {"name": "Dr. Renamed"}),
        ("PATCH", "/hospital", {"name": "Renamed Hospital"}),
        ("POST", "/users", {"username": "sneaky-admin", "password": PASSWORD, "role": "admin"}),
        ("GET", "/users", None),
        ("POST", "/api-keys", {"role": "admin", "label": "sneaky"}),
        ("GET", "/api-keys", None),
        ("GET", "/displays", None),
        ("POST", "/displays/pair", {"code": "123 456", "label": "sneaky"}),
    ]


async def test_receptionist_cannot_administer(anon: httpx.AsyncClient, pool: asyncpg.Pool,
                                              hospital: factory.Hospital) -> None:
    async with unchanged(pool, hospital):
        for method, path, body in admin_only_requests(hospital):
            response = await anon.request(method, API + path, json=body,
                                          headers=bearer(hospital.keys["receptionist"]))
            assert_refused(response)


async def test_doctor_cannot_administer_or_issue(anon: httpx.AsyncClient, pool: asyncpg.Pool,
                                                 hospital: factory.Hospital) -> None:
    token = await factory.issue(pool, hospital)
    requests = [*admin_only_requests(hospital),
                ("POST", "/tokens", {"doctor_id": str(hospital.doctor.doctor_id),
                                     "patient": {"name": "Ravi Kumar", "phone": "9811111111"}}),
                ("POST", f"/tokens/{token['token_id']}/check-in", {"override_reason": "at the desk"}),
                ("GET", "/patients?phone=9811111111", None)]
    async with unchanged(pool, hospital):
        for method, path, body in requests:
            response = await anon.request(method, API + path, json=body,
                                          headers=bearer(hospital.keys["doctor"]))
            assert_refused(response)


async def test_doctor_cannot_act_on_another_doctors_queue(anon: httpx.AsyncClient, pool: asyncpg.Pool,
                                                          hospital: factory.Hospital) -> None:
    colleague = hospital.doctors[1]
    theirs = await factory.issue(pool, hospital, doctor=colleague)
    tid = theirs["token_id"]
    requests = [
        ("POST", f"/doctors/{colleague.doctor_id}/call-next", {}),
        ("POST", f"/doctors/{colleague.doctor_id}/pause", {}),
        ("POST", f"/doctors/{colleague.doctor_id}/resume", {}),
        *[("POST", f"/tokens/{tid}/{action}", {}) for action in
          ("call", "start", "complete", "no-show", "requeue", "undo-start", "undo-complete",
           "cancel", "recall")],
        ("POST", f"/tokens/{tid}/transfer", {"to_doctor_id": str(hospital.doctor.doctor_id)}),
        ("POST", f"/tokens/{tid}/reschedule", {"scheduled_time": "2999-01-01T10:00:00Z"}),
    ]
    async with unchanged(pool, hospital):
        for method, path, body in requests:
            response = await anon.request(method, API + path, json=body,
                                          headers=bearer(hospital.keys["doctor"]))
            assert_refused(response)


async def test_doctor_reads_only_their_own_queue(anon: httpx.AsyncClient, pool: asyncpg.Pool,
                                                 hospital: factory.Hospital) -> None:
    """The WebSocket refuses a doctor another doctor's topic (app/live/access.py), and
    load_token_for says "doctors only reach their own patients": the JSON API should agree."""
    colleague = hospital.doctors[1]
    theirs = await factory.issue(pool, hospital, doctor=colleague)
    key = bearer(hospital.keys["doctor"])
    own = await anon.get(f"{API}/queues/doctors/{hospital.doctor.doctor_id}", headers=key)
    assert own.status_code == 200, own.text
    refused = {}
    for path in (f"/queues/doctors/{colleague.doctor_id}", f"/tokens/{theirs['token_id']}",
                 f"/tokens/{theirs['token_id']}/history"):
        response = await anon.get(API + path, headers=key)
        refused[path] = response.status_code
    assert set(refused.values()) == {403}, f"a doctor read a colleague's patients: {refused}"


async def test_display_cookie_gets_no_json_api(anon: httpx.AsyncClient, pool: asyncpg.Pool,
                                               hospital: factory.Hospital) -> None:
    credential, _ = await pair_display(anon, hospital)
    as_display = cookie_header(opd_display=credential)
    token = await factory.issue(pool, hospital)
    async with unchanged(pool, hospital):
        for method, path, body in [
            ("GET", "/hospital", None),
            ("GET", "/departments", None),
            ("GET", f"/queues/doctors/{hospital.doctor.doctor_id}", None),
            ("GET", f"/tokens/{token['token_id']}", None),
            ("POST", f"/tokens/{token['token_id']}/cancel", {}),
            ("POST", "/tokens", {"doctor_id": str(hospital.doctor.doctor_id),
                                 "patient": {"name": "Ravi Kumar", "phone": "9811111111"}}),
            ("POST", "/departments", {"name": "Neurology", "code": "NEURO", "avg_consultation_time": 10}),
        ]:
            response = await anon.request(method, API + path, json=body, headers=as_display)
            assert_refused(response)


async def test_no_credential_is_401_everywhere(anon: httpx.AsyncClient, pool: asyncpg.Pool,
                                               hospital: factory.Hospital) -> None:
    token = await factory.issue(pool, hospital)
    async with unchanged(pool, hospital):
        for method, path, body in [
            *admin_only_requests(hospital),
            ("GET", f"/tokens/{token['token_id']}", None),
            ("POST", f"/tokens/{token['token_id']}/cancel", {}),
            ("POST", f"/doctors/{hospital.doctor.doctor_id}/call-next", {}),
        ]:
            assert_refused(await anon.request(method, API + path, json=body), 401)
            bogus = bearer("opd_" + "x" * 43)
            assert_refused(await anon.request(method, API + path, json=body, headers=bogus), 401)
