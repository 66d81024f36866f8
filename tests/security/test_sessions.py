"""Staff browser sessions: the cookie's flags, CSRF on unsafe API calls, sign-out everywhere,
expiry, tampering and deactivation (app/api/auth.py, app/security/sessions.py, app/web/login.py)."""

from __future__ import annotations

import secrets
import time

import asyncpg
import httpx

from tests.security.helpers import (
    API,
    SESSION_MAX_AGE_S,
    bearer,
    cookie_header,
    craft_session,
    make_user,
    meta_csrf,
    page_csrf,
    post_login,
    set_cookies,
    sign_in,
    unchanged,
)
from tests.support import factory

NEW_DEPT = {"name": "Neurology", "code": "NEURO", "avg_consultation_time": 10}


async def test_sign_in_sets_httponly_samesite_lax_cookie(anon: httpx.AsyncClient, pool: asyncpg.Pool,
                                                         hospital: factory.Hospital) -> None:
    username, user_id = await make_user(pool, hospital, "admin")
    response = await post_login(anon, username)
    assert response.status_code == 303 and response.headers["location"] == "/admin"
    cookie = set_cookies(response)["opd_session"]
    assert cookie["httponly"] is True
    assert cookie["samesite"].lower() == "lax"
    assert cookie["path"] == "/"
    assert int(cookie["max-age"]) <= SESSION_MAX_AGE_S
    assert await pool.fetchval(
        "SELECT succeeded FROM login_events WHERE user_id = $1 ORDER BY event_id DESC LIMIT 1", user_id)


async def test_session_reads_the_api(anon: httpx.AsyncClient, pool: asyncpg.Pool,
                                     hospital: factory.Hospital) -> None:
    session = await sign_in(anon, (await make_user(pool, hospital, "admin"))[0])
    response = await anon.get(f"{API}/hospital", headers=cookie_header(opd_session=session))
    assert response.status_code == 200
    assert response.json()["hospital_id"] == str(hospital.hospital_id)


async def test_unsafe_call_needs_the_sessions_csrf_token(anon: httpx.AsyncClient, pool: asyncpg.Pool,
                                                         hospital: factory.Hospital) -> None:
    username, _ = await make_user(pool, hospital, "admin")
    session = await sign_in(anon, username)
    elsewhere = await sign_in(anon, username)  # the same user, another browser
    token = await page_csrf(anon, session, "/admin")
    foreign_token = await page_csrf(anon, elsewhere, "/admin")
    assert token != foreign_token
    cookie = cookie_header(opd_session=session)
    async with unchanged(pool, hospital):
        for header in ({}, {"X-CSRF-Token": ""}, {"X-CSRF-Token": secrets.token_hex(32)},
                       {"X-CSRF-Token": foreign_token}):
            for method, path, body in [("POST", "/departments", NEW_DEPT),
                                       ("PATCH", "/hospital", {"name": "Renamed"}),
                                       ("POST", "/api-keys", {"role": "admin"})]:
                response = await anon.request(method, API + path, json=body, headers={**cookie, **header})
                assert response.status_code == 403, (header, path, response.text)
                assert response.json()["error"]["code"] == "csrf"
    response = await anon.post(f"{API}/departments", json=NEW_DEPT, headers={**cookie, "X-CSRF-Token": token})
    assert response.status_code == 201, response.text
    assert await pool.fetchval("SELECT count(*) FROM departments WHERE hospital_id = $1 AND code = 'NEURO'",
                               hospital.hospital_id) == 1


async def test_api_keys_need_no_csrf_token(anon: httpx.AsyncClient, hospital: factory.Hospital) -> None:
    response = await anon.post(f"{API}/departments", json=NEW_DEPT, headers=bearer(hospital.keys["admin"]))
    assert response.status_code == 201


async def test_sign_out_everywhere_ends_every_session(anon: httpx.AsyncClient, pool: asyncpg.Pool,
                                                      hospital: factory.Hospital) -> None:
    username, user_id = await make_user(pool, hospital, "admin")
    here, there = await sign_in(anon, username), await sign_in(anon, username)
    here_page = await anon.get("/admin", headers=cookie_header(opd_session=here))
    valid_after = await pool.fetchval("SELECT sessions_valid_after FROM staff_users WHERE user_id = $1", user_id)

    # Without the form's CSRF token nothing happens (a cross-site form cannot sign anyone out).
    refused = await anon.post("/logout", data={"everywhere": "1"}, headers=cookie_header(opd_session=here))
    assert refused.status_code == 403
    assert await pool.fetchval("SELECT sessions_valid_after FROM staff_users WHERE user_id = $1",
                               user_id) == valid_after
    assert (await anon.get(f"{API}/hospital", headers=cookie_header(opd_session=there))).status_code == 200

    response = await anon.post("/logout", data={"csrf_token": meta_csrf(here_page.text), "everywhere": "1"},
                               headers=cookie_header(opd_session=here))
    assert response.status_code == 303 and response.headers["location"] == "/login"
    for session in (here, there):
        gone = await anon.get(f"{API}/hospital", headers=cookie_header(opd_session=session))
        assert gone.status_code == 401
    # A new sign-in works again.
    fresh = await sign_in(anon, username)
    assert (await anon.get(f"{API}/hospital", headers=cookie_header(opd_session=fresh))).status_code == 200


async def test_expired_session_is_refused(anon: httpx.AsyncClient, pool: asyncpg.Pool,
                                          hospital: factory.Hospital) -> None:
    _, user_id = await make_user(pool, hospital, "admin")
    # The crafted cookie is what the server itself signs: fresh, it works ...
    fresh = craft_session(user_id)
    assert (await anon.get(f"{API}/hospital", headers=cookie_header(opd_session=fresh))).status_code == 200
    # ... and signed 12 h and a minute ago, it does not.
    stale = craft_session(user_id, issued_at=time.time() - SESSION_MAX_AGE_S - 60)
    response = await anon.get(f"{API}/hospital", headers=cookie_header(opd_session=stale))
    assert response.status_code == 401
    page = await anon.get("/admin", headers=cookie_header(opd_session=stale))
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


async def test_tampered_or_forged_session_is_refused(anon: httpx.AsyncClient, pool: asyncpg.Pool,
                                                     hospital: factory.Hospital, other: factory.Hospital) -> None:
    username, _ = await make_user(pool, hospital, "receptionist")
    session = await sign_in(anon, username)
    _, victim_id = await make_user(pool, other, "admin")
    payload, _, signature = session.rpartition(".")
    flipped = payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    forged = craft_session(victim_id, secret="not-the-servers-secret")
    for cookie in (flipped, session[:-3], session + "x", "garbage", forged,
                   craft_session(victim_id).split(".")[0] + "." + session.split(".", 1)[1]):
        response = await anon.get(f"{API}/hospital", headers=cookie_header(opd_session=cookie))
        assert response.status_code == 401, cookie


async def test_deactivated_user_is_signed_out_at_once(anon: httpx.AsyncClient, pool: asyncpg.Pool,
                                                      hospital: factory.Hospital) -> None:
    username, user_id = await make_user(pool, hospital, "receptionist")
    session = await sign_in(anon, username)
    assert (await anon.get(f"{API}/hospital", headers=cookie_header(opd_session=session))).status_code == 200
    response = await anon.patch(f"{API}/users/{user_id}", json={"is_active": False},
                                headers=bearer(hospital.keys["admin"]))
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert (await anon.get(f"{API}/hospital", headers=cookie_header(opd_session=session))).status_code == 401
    # A cookie signed now for the deactivated account is no better.
    crafted = craft_session(user_id)
    assert (await anon.get(f"{API}/hospital", headers=cookie_header(opd_session=crafted))).status_code == 401
