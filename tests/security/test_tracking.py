"""The patient's tracking link: guessing is hopeless, an old link is dead, and the page never
leaks the link (app/api/track.py, app/web/pages.py, app/web/headers.py)."""

from __future__ import annotations

import base64
import re
import secrets
import uuid

import asyncpg
import httpx

from tests.security.helpers import API, is_error, ws_client
from tests.support import factory
from tests.support.app_server import AppServer

CODE = re.compile(r"^[A-Za-z0-9_-]{24}$")


async def issue_yesterday(pool: asyncpg.Pool, hospital: factory.Hospital) -> asyncpg.Record:
    """A token issued on the hospital's yesterday, by the database's own (test-settable) clock."""
    patient_id = await factory.make_patient(pool, hospital)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT set_config('opd.fake_now', (opd_now() - interval '1 day')::text, true)")
        yesterday = await conn.fetchval("SELECT hospital_today($1)", hospital.hospital_id)
        await conn.execute("SELECT create_partition_if_not_exists('tokens', $1)", yesterday)
        await conn.execute(
            """INSERT INTO cabin_doctors (cabin_id, doctor_id, shift_date, shift_start_time, shift_end_time, status)
               VALUES ($1, $2, $3, '00:00', '23:59:59', 'ACTIVE')""",
            hospital.doctor.cabin_id, hospital.doctor.doctor_id, yesterday)
        row: asyncpg.Record = await conn.fetchrow(
            "SELECT * FROM issue_token($1, $2, $3, NULL, 'WALK_IN', 1, NULL, 'test')",
            hospital.hospital_id, patient_id, hospital.doctor.doctor_id)
    return row


async def test_tracking_codes_carry_at_least_128_random_bits(pool: asyncpg.Pool,
                                                             hospital: factory.Hospital) -> None:
    codes = [(await factory.issue(pool, hospital))["tracking_code"] for _ in range(5)]
    assert len(set(codes)) == len(codes)
    for code in codes:
        assert CODE.match(code), code
        raw = base64.urlsafe_b64decode(code)
        # 18 bytes = one v4 UUID (122 random bits) + two random bytes of another: 138 bits.
        assert len(raw) == 18 and raw[6] >> 4 == 4, code
        assert (len(raw) * 8) - 6 >= 128


async def test_guessed_codes_are_unknown(anon: httpx.AsyncClient, server: AppServer,
                                         hospital: factory.Hospital) -> None:
    real = (await anon.post(f"{API}/tokens", headers={"Authorization": f"Bearer {hospital.keys['admin']}"},
                            json={"doctor_id": str(hospital.doctor.doctor_id),
                                  "patient": {"name": "Ravi Kumar", "phone": "9811111111"}})).json()
    code = real["tracking_code"]
    guesses = [secrets.token_urlsafe(18), code[:-1] + ("A" if code[-1] != "A" else "B"), code.lower(),
               code[:23], "A" * 24, str(uuid.uuid4()), "../../etc/passwd", "%00" * 8]
    for guess in guesses:
        assert (await anon.get(f"{API}/track/{guess}")).status_code == 404, guess
        page = await anon.get(f"/t/{guess}")
        assert page.status_code == 404 and real["token_number"] not in page.text, guess
    async with ws_client(server.ws_url) as ws:
        for guess in guesses[:6]:
            reply = await ws.subscribed(f"token:{guess}")
            assert is_error(reply), reply
        assert not is_error(await ws.subscribed(f"token:{code}"))
    assert (await anon.get(f"{API}/track/{code}")).status_code == 200


async def test_yesterdays_code_is_dead(anon: httpx.AsyncClient, server: AppServer, pool: asyncpg.Pool,
                                       hospital: factory.Hospital) -> None:
    old = await issue_yesterday(pool, hospital)
    code = old["tracking_code"]
    assert (await anon.get(f"{API}/track/{code}")).status_code == 404
    check_in = await anon.post(f"{API}/track/{code}/check-in",
                               json={"latitude": hospital.latitude, "longitude": hospital.longitude})
    assert check_in.status_code == 404
    assert (await anon.get(f"/t/{code}")).status_code == 404
    async with ws_client(server.ws_url) as ws:
        assert is_error(await ws.subscribed(f"token:{code}"))
    assert await pool.fetchval("SELECT status FROM tokens WHERE token_id = $1", old["token_id"]) == old["status"]


async def test_security_headers(anon: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital) -> None:
    code = (await factory.issue(pool, hospital))["tracking_code"]
    for path in (f"/t/{code}", f"/t/{'A' * 24}", "/login", f"{API}/track/{code}", f"/board/{hospital.code}"):
        response = await anon.get(path)
        csp = response.headers["content-security-policy"]
        directives = {d.strip().split(" ")[0]: d.strip() for d in csp.split(";") if d.strip()}
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
        assert directives["frame-ancestors"] == "frame-ancestors 'none'", path
        assert directives["script-src"] == "script-src 'self'", path
        assert response.headers["referrer-policy"] == "no-referrer", path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["x-frame-options"] == "DENY", path
    # No inline script on the tracker page, which the CSP would block anyway.
    page = (await anon.get(f"/t/{code}")).text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", page), "inline event handler"


async def test_a_patient_cannot_cancel_or_be_late_once_called(server: AppServer, pool: asyncpg.Pool,
                                                             hospital: factory.Hospital) -> None:
    token = await factory.issue(pool, hospital)
    code = await pool.fetchval("SELECT tracking_code FROM tokens WHERE token_id = $1", token["token_id"])
    await pool.execute("SELECT * FROM call_next_token($1, NULL)", hospital.doctor.doctor_id)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=15) as anon:
        for path, body in (("cancel", {}), ("late", {"minutes": 30})):
            response = await anon.post(f"/api/v1/track/{code}/{path}", json=body)
            assert response.status_code == 409, response.text
        bad = await anon.post(f"/api/v1/track/{code}/late", json={"minutes": 500})
        assert bad.status_code == 422 and "minutes" in bad.text
        assert (await anon.post("/api/v1/track/" + "A" * 24 + "/cancel", json={})).status_code == 404
    assert await pool.fetchval("SELECT status FROM tokens WHERE token_id = $1", token["token_id"]) == "WAITING"
