"""Accountability: token_history names who acted, a staff user (changed_by) or a key (changed_by_key)."""

from __future__ import annotations

import asyncpg
import httpx

from tests.security.helpers import API, bearer, cookie_header, make_user, page_csrf, sign_in
from tests.support import factory

PATIENT = {"name": "Ravi Kumar", "phone": "9811111111"}


async def history(pool: asyncpg.Pool, token_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT new_status, changed_by, changed_by_key FROM token_history WHERE token_id = $1 ORDER BY history_id",
        token_id)


async def test_session_actions_name_the_user(anon: httpx.AsyncClient, pool: asyncpg.Pool,
                                             hospital: factory.Hospital) -> None:
    username, user_id = await make_user(pool, hospital, "doctor")
    session = await sign_in(anon, username)
    headers = {**cookie_header(opd_session=session), "X-CSRF-Token": await page_csrf(anon, session, "/doctor")}
    token = await factory.issue(pool, hospital)
    called = await anon.post(f"{API}/doctors/{hospital.doctor.doctor_id}/call-next", json={}, headers=headers)
    assert called.status_code == 200, called.text
    assert called.json()["token_id"] == str(token["token_id"])
    rows = await history(pool, token["token_id"])
    assert (rows[-1]["new_status"], rows[-1]["changed_by"], rows[-1]["changed_by_key"]) == \
        ("WAITING", user_id, None)


async def test_key_actions_name_the_key(anon: httpx.AsyncClient, pool: asyncpg.Pool,
                                        hospital: factory.Hospital) -> None:
    key_id = await pool.fetchval("SELECT key_id FROM api_keys WHERE hospital_id = $1 AND role = 'receptionist'",
                                 hospital.hospital_id)
    issued = await anon.post(f"{API}/tokens", json={"doctor_id": str(hospital.doctor.doctor_id), "patient": PATIENT},
                             headers=bearer(hospital.keys["receptionist"]))
    assert issued.status_code == 201
    token_id = issued.json()["token_id"]
    cancelled = await anon.post(f"{API}/tokens/{token_id}/cancel", json={"reason": "left"},
                                headers=bearer(hospital.keys["receptionist"]))
    assert cancelled.status_code == 200
    rows = await history(pool, token_id)
    assert [(r["new_status"], r["changed_by"], r["changed_by_key"]) for r in rows] == \
        [("CHECKED_IN", None, key_id), ("CANCELLED", None, key_id)]
    api_rows = (await anon.get(f"{API}/tokens/{token_id}/history", headers=bearer(hospital.keys["admin"]))).json()
    assert [r["changed_by_key"] for r in api_rows] == [str(key_id)] * 2
