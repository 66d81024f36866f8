"""Wrong hospital: a credential of hospital A naming B's ids, in a URL or a body, gets 404 (as an
unknown id would) and changes nothing in either hospital."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from tests.security.helpers import (
    API,
    PASSWORD,
    bearer,
    cookie_header,
    make_user,
    page_csrf,
    pair_display,
    sign_in,
    unchanged,
)
from tests.support import factory


async def foreign_ids(anon: httpx.AsyncClient, pool: asyncpg.Pool, b: factory.Hospital) -> dict[str, Any]:
    """One row of every kind in hospital B."""
    token = await factory.issue(pool, b)
    _, user_id = await make_user(pool, b, "receptionist")
    _, device_id = await pair_display(anon, b)
    return {
        "token": token["token_id"],
        "patient": token["patient_id"],
        "doctor": b.doctor.doctor_id,
        "dept": b.dept_id,
        "cabin": b.doctor.cabin_id,
        "shift": await pool.fetchval("SELECT assignment_id FROM cabin_doctors WHERE doctor_id = $1",
                                     b.doctor.doctor_id),
        "user": user_id,
        "display": device_id,
        "key": await pool.fetchval("SELECT key_id FROM api_keys WHERE hospital_id = $1 AND role = 'admin'",
                                   b.hospital_id),
    }


def requests_naming(ids: dict[str, Any], a: factory.Hospital) -> list[tuple[str, str, Any]]:
    """Requests that an admin of A may make, each naming a row of B by URL or body."""
    t, today = ids["token"], "2999-01-01"
    return [
        # by URL
        ("GET", f"/tokens/{t}", None),
        ("GET", f"/tokens/{t}/history", None),
        ("POST", f"/tokens/{t}/check-in", {"override_reason": "at the desk"}),
        *[("POST", f"/tokens/{t}/{action}", {}) for action in
          ("call", "start", "complete", "no-show", "requeue", "cancel", "recall")],
        ("POST", f"/tokens/{t}/transfer", {"to_doctor_id": str(a.doctor.doctor_id)}),
        ("POST", f"/tokens/{t}/reschedule", {"scheduled_time": f"{today}T10:00:00Z"}),
        ("GET", f"/patients/{ids['patient']}", None),
        ("GET", f"/queues/doctors/{ids['doctor']}", None),
        ("GET", f"/queues/departments/{ids['dept']}", None),
        ("POST", f"/doctors/{ids['doctor']}/call-next", {}),
        ("POST", f"/doctors/{ids['doctor']}/pause", {}),
        ("PATCH", f"/doctors/{ids['doctor']}", {"name": "Dr. Hijacked"}),
        ("PATCH", f"/departments/{ids['dept']}", {"name": "Hijacked"}),
        ("PATCH", f"/cabins/{ids['cabin']}", {"cabin_number": "HIJACK"}),
        ("PATCH", f"/shifts/{ids['shift']}", {"status": "CANCELLED"}),
        ("PATCH", f"/users/{ids['user']}", {"is_active": False}),
        ("PATCH", f"/users/{ids['user']}", {"password": "a new password here"}),
        ("POST", f"/displays/{ids['display']}/revoke", {}),
        ("POST", f"/api-keys/{ids['key']}/revoke", {}),
        # by body
        ("POST", "/tokens", {"doctor_id": str(ids["doctor"]),
                             "patient": {"name": "Ravi Kumar", "phone": "9811111111"}}),
        ("POST", "/tokens", {"dept_id": str(ids["dept"]),
                             "patient": {"name": "Ravi Kumar", "phone": "9811111111"}}),
        ("POST", "/tokens", {"doctor_id": str(a.doctor.doctor_id), "patient_id": str(ids["patient"])}),
        ("POST", "/cabins", {"dept_id": str(ids["dept"]), "cabin_number": "HIJACK"}),
        ("POST", "/doctors", {"emp_code": "H1", "name": "Dr. Hijack", "specialization": "Any",
                              "primary_dept_id": str(ids["dept"]), "phone": "9000000001"}),
        ("POST", "/shifts", {"cabin_id": str(ids["cabin"]), "doctor_id": str(a.doctor.doctor_id),
                             "shift_date": today, "shift_start_time": "09:00", "shift_end_time": "10:00"}),
        ("POST", "/shifts", {"cabin_id": str(a.doctor.cabin_id), "doctor_id": str(ids["doctor"]),
                             "shift_date": today, "shift_start_time": "09:00", "shift_end_time": "10:00"}),
        ("PATCH", f"/doctors/{a.doctor.doctor_id}", {"primary_dept_id": str(ids["dept"])}),
        ("POST", "/users", {"username": f"hijack-{uuid.uuid4().hex[:8]}", "password": PASSWORD,
                            "role": "doctor", "doctor_id": str(ids["doctor"])}),
        ("POST", "/api-keys", {"role": "doctor", "doctor_id": str(ids["doctor"])}),
    ]


async def test_api_key_of_a_cannot_reach_b(anon: httpx.AsyncClient, pool: asyncpg.Pool,
                                           hospital: factory.Hospital, other: factory.Hospital) -> None:
    ids = await foreign_ids(anon, pool, other)
    a_token = await factory.issue(pool, hospital)
    later = (await pool.fetchval("SELECT opd_now() + interval '2 hours'")).isoformat()
    cross = [*requests_naming(ids, hospital),
             # A's own token moved to B's doctor, or rescheduled onto B's doctor.
             ("POST", f"/tokens/{a_token['token_id']}/transfer", {"to_doctor_id": str(ids["doctor"])}),
             ("POST", f"/tokens/{a_token['token_id']}/reschedule",
              {"scheduled_time": later, "doctor_id": str(ids["doctor"])})]
    answers = {}
    async with unchanged(pool, hospital, other):
        for method, path, body in cross:
            response = await anon.request(method, API + path, json=body, headers=bearer(hospital.keys["admin"]))
            answers[f"{method} {path} {body}"] = (response.status_code, response.json())
    wrong = {k: v for k, v in answers.items() if v[0] != 404 or v[1]["error"]["code"] != "not_found"}
    assert not wrong, f"expected 404 not_found for every foreign id: {wrong}"


async def test_foreign_ids_answer_like_unknown_ids(anon: httpx.AsyncClient, pool: asyncpg.Pool,
                                                   hospital: factory.Hospital, other: factory.Hospital) -> None:
    """The answer to B's id is the answer to a random id: nothing tells that B's row exists."""
    ids = await foreign_ids(anon, pool, other)
    key = bearer(hospital.keys["admin"])
    differ = {}
    for kind, path in [("token", "/tokens/{}"), ("token", "/tokens/{}/history"),
                       ("patient", "/patients/{}"), ("doctor", "/queues/doctors/{}"),
                       ("dept", "/queues/departments/{}"), ("doctor", "/doctors/{}/call-next"),
                       ("user", "/users/{}"), ("display", "/displays/{}/revoke"),
                       ("key", "/api-keys/{}/revoke"), ("dept", "/departments/{}")]:
        method = "GET" if "/queues/" in path or path.startswith(("/tokens", "/patients")) else "POST"
        method = "PATCH" if path in ("/users/{}", "/departments/{}") else method
        body = {"name": "X"} if path == "/departments/{}" else {"is_active": True} if path == "/users/{}" else {}
        foreign = await anon.request(method, API + path.format(ids[kind]), headers=key,
                                     json=None if method == "GET" else body)
        unknown = await anon.request(method, API + path.format(uuid.uuid4()), headers=key,
                                     json=None if method == "GET" else body)
        if (foreign.status_code, foreign.json()) != (unknown.status_code, unknown.json()):
            differ[f"{method} {path}"] = (foreign.text, unknown.text)
    assert not differ, f"another hospital's id answers unlike an unknown id: {differ}"
    listed = await anon.get(f"{API}/doctors?hospital={other.code}", headers=key)
    assert listed.status_code == 404


async def test_session_of_a_cannot_reach_b(anon: httpx.AsyncClient, pool: asyncpg.Pool,
                                           hospital: factory.Hospital, other: factory.Hospital) -> None:
    ids = await foreign_ids(anon, pool, other)
    username, _ = await make_user(pool, hospital, "admin")
    session = await sign_in(anon, username)
    headers = {**cookie_header(opd_session=session), "X-CSRF-Token": await page_csrf(anon, session, "/admin")}
    async with unchanged(pool, hospital, other):
        for method, path, body in requests_naming(ids, hospital)[:20]:
            response = await anon.request(method, API + path, json=body, headers=headers)
            assert response.status_code == 404, f"{method} {path}: {response.status_code} {response.text}"
        # Pages name rows too.
        for page in (f"/reception/slip/{ids['token']}", f"/doctor/{ids['doctor']}"):
            response = await anon.get(page, headers=cookie_header(opd_session=session))
            assert response.status_code == 404, page
            assert other.doctor.name not in response.text


async def test_staff_of_a_sees_only_a_in_lists(anon: httpx.AsyncClient, pool: asyncpg.Pool,
                                               hospital: factory.Hospital, other: factory.Hospital) -> None:
    await foreign_ids(anon, pool, other)
    key = bearer(hospital.keys["admin"])
    for path in ("/users", "/api-keys", "/displays", "/departments", "/cabins", "/doctors", "/shifts"):
        response = await anon.get(API + path, headers=key)
        assert response.status_code == 200, path
        text = response.text
        assert str(other.hospital_id) not in text and str(other.dept_id) not in text, path
        assert str(other.doctor.doctor_id) not in text, path
