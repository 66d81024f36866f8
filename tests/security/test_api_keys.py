"""API keys (app/api/auth.py, app/api/admin.py): shown once, never listed, dead once revoked."""

from __future__ import annotations

import hashlib

import asyncpg
import httpx

from tests.security.helpers import API, bearer, unchanged
from tests.support import factory


async def test_created_key_works_and_is_never_listed(anon: httpx.AsyncClient, pool: asyncpg.Pool,
                                                     hospital: factory.Hospital) -> None:
    admin = bearer(hospital.keys["admin"])
    created = await anon.post(f"{API}/api-keys", json={"role": "receptionist", "label": "kiosk"}, headers=admin)
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert key.startswith("opd_") and len(key) >= 40
    works = await anon.get(f"{API}/departments", headers=bearer(key))
    assert works.status_code == 200

    listing = await anon.get(f"{API}/api-keys", headers=admin)
    assert listing.status_code == 200
    for secret in (key, *hospital.keys.values()):
        assert secret not in listing.text
        assert secret[4:] not in listing.text
    assert all("key" not in row and "key_hash" not in row for row in listing.json())
    stored = await pool.fetchval("SELECT key_hash FROM api_keys WHERE key_id = $1", created.json()["key_id"])
    assert bytes(stored) == hashlib.sha256(key.encode()).digest()
    # Only the first characters, to recognise a key by.
    prefixes = {row["key_prefix"] for row in listing.json()}
    assert key[:12] in prefixes
    # The admin page's list is no different.
    assert key not in (await anon.get("/admin/lists/keys", headers=admin)).text


async def test_revoked_key_is_refused(anon: httpx.AsyncClient, pool: asyncpg.Pool,
                                      hospital: factory.Hospital) -> None:
    admin = bearer(hospital.keys["admin"])
    created = (await anon.post(f"{API}/api-keys", json={"role": "admin"}, headers=admin)).json()
    revoked = await anon.post(f"{API}/api-keys/{created['key_id']}/revoke", json={}, headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    async with unchanged(pool, hospital):
        for method, path, body in [("GET", "/hospital", None), ("GET", "/api-keys", None),
                                   ("POST", "/api-keys", {"role": "admin"}),
                                   ("POST", "/departments", {"name": "X", "code": "X", "avg_consultation_time": 5})]:
            response = await anon.request(method, API + path, json=body, headers=bearer(created["key"]))
            assert response.status_code == 401, (path, response.text)
            assert response.json()["error"]["code"] == "unauthenticated"


async def test_receptionist_cannot_mint_or_revoke_keys(anon: httpx.AsyncClient, pool: asyncpg.Pool,
                                                       hospital: factory.Hospital) -> None:
    admin_key_id = await pool.fetchval(
        "SELECT key_id FROM api_keys WHERE hospital_id = $1 AND role = 'admin'", hospital.hospital_id)
    async with unchanged(pool, hospital):
        for path, body in [("/api-keys", {"role": "admin"}), (f"/api-keys/{admin_key_id}/revoke", {})]:
            response = await anon.post(API + path, json=body, headers=bearer(hospital.keys["receptionist"]))
            assert response.status_code == 403
