"""Helpers of the access-control tests: signing in over HTTP, cookies, CSRF tokens from pages,
pairing displays, WebSocket clients with cookies, and a fingerprint of every row a hospital owns
(to prove that a refused request changed nothing)."""

from __future__ import annotations

import contextlib
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from http.cookies import SimpleCookie
from typing import Any

import asyncpg
import httpx
import websockets
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from app.security.accounts import create_user
from tests.support import factory
from tests.support.ws_client import LiveClient

API = "/api/v1"
PASSWORD = "correct horse battery staple"
# What tests/support/app_server.py gives every test server as OPD_SECRET_KEY.
SERVER_SECRET = "test-secret-key-not-for-production"
SESSION_MAX_AGE_S = 12 * 3600


def plain_client(base_url: str, key: str | None = None) -> httpx.AsyncClient:
    """An HTTP client that never keeps cookies: every credential a test sends is explicit."""
    no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(base_url=base_url, timeout=15, cookies=no_cookies,
                             headers=bearer(key) if key else {})


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def cookie_header(**cookies: str) -> dict[str, str]:
    """An explicit Cookie header: no client-side jar decides what is sent."""
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}


def set_cookies(response: httpx.Response) -> dict[str, Any]:
    """name -> Morsel of every Set-Cookie of a response."""
    jar: dict[str, Any] = {}
    for raw in response.headers.get_list("set-cookie"):
        parsed = SimpleCookie()
        parsed.load(raw)
        jar.update(parsed)
    return jar


def meta_csrf(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert match, "the page has no csrf-token meta tag"
    return match.group(1)


async def make_user(pool: asyncpg.Pool, hospital: factory.Hospital, role: str,
                    doctor_id: uuid.UUID | None = None) -> tuple[str, uuid.UUID]:
    """A new staff account of the hospital (password PASSWORD); (username, user_id)."""
    username = f"{role}-{secrets.token_hex(5)}"
    if role == "doctor" and doctor_id is None:
        doctor_id = hospital.doctor.doctor_id
    async with pool.acquire() as conn:
        row = await create_user(conn, hospital.hospital_id, username, PASSWORD, role, doctor_id)
    return username, row["user_id"]


async def post_login(http: httpx.AsyncClient, username: str, password: str = PASSWORD,
                     next_url: str | None = None) -> httpx.Response:
    """One sign-in attempt as a browser makes it: GET the form, POST it with its double-submit token."""
    form_page = await http.get("/login")
    token = set_cookies(form_page)["opd_login_csrf"].value
    data = {"username": username, "password": password, "login_csrf": token}
    if next_url is not None:
        data["next"] = next_url
    return await http.post("/login", data=data, headers=cookie_header(opd_login_csrf=token))


async def sign_in(http: httpx.AsyncClient, username: str) -> str:
    """Sign in; the value of the opd_session cookie."""
    response = await post_login(http, username)
    assert response.status_code == 303, response.text
    return str(set_cookies(response)["opd_session"].value)


async def page_csrf(http: httpx.AsyncClient, session: str, path: str) -> str:
    page = await http.get(path, headers=cookie_header(opd_session=session))
    assert page.status_code == 200, page.text
    return meta_csrf(page.text)


def craft_session(user_id: uuid.UUID, *, issued_at: float | None = None,
                  secret: str = SERVER_SECRET) -> str:
    """A session cookie as the server signs it, but with a chosen signing time and secret."""
    issued = issued_at if issued_at is not None else time.time()
    at = int(issued)

    class Backdated(TimestampSigner):
        def get_timestamp(self) -> int:
            return at

    serializer = URLSafeTimedSerializer(secret, salt="opd-session", signer=Backdated)
    return serializer.dumps({"u": str(user_id), "n": secrets.token_urlsafe(16), "t": issued})


async def pair_display(http: httpx.AsyncClient, hospital: factory.Hospital,
                       path: str | None = None) -> tuple[str, uuid.UUID]:
    """Open a board as a new screen, confirm its code with the admin key; (cookie, device_id)."""
    page = await http.get(path or f"/board/{hospital.code}")
    assert page.status_code == 200, page.text
    code = pairing_code(page.text)
    credential = str(set_cookies(page)["opd_display"].value)
    response = await http.post(f"{API}/displays/pair", json={"code": code, "label": "Hall TV"},
                               headers=bearer(hospital.keys["admin"]))
    assert response.status_code == 201, response.text
    return credential, uuid.UUID(response.json()["device_id"])


def pairing_code(html: str) -> str:
    match = re.search(r'id="pair-code">\s*(\d{3} \d{3})\s*<', html)
    assert match, "not a pairing page"
    return match.group(1)


@contextlib.asynccontextmanager
async def ws_client(ws_url: str, *, key: str | None = None, cookies: dict[str, str] | None = None,
                    origin: str | None = None) -> AsyncIterator[LiveClient]:
    headers: dict[str, str] = {}
    if key:
        headers.update(bearer(key))
    if cookies:
        headers.update(cookie_header(**cookies))
    ws = await websockets.connect(ws_url, additional_headers=headers or None, open_timeout=10,
                                  origin=origin)  # type: ignore[arg-type]
    client = LiveClient(ws)
    try:
        yield client
    finally:
        await client.close()


async def assert_ws_refused(ws_url: str, code: int | None = None, **kwargs: Any) -> None:
    """The socket is accepted, told why in an error frame, and closed with 4401 (credential) or
    4403 (origin) as docs/protocol.md says; not refused at the handshake, which a browser sees
    only as close code 1006."""
    async with ws_client(ws_url, **kwargs) as client:
        await client.until(lambda c: c.closed, what="the server closing the socket")
        closed_with = client.ws.close_code
        assert closed_with in (4401, 4403), f"closed with {closed_with}"
        assert code is None or closed_with == code, f"closed with {closed_with}, not {code}"
        assert any(is_error(m) for m in client.messages), client.messages


def is_error(message: dict[str, Any]) -> bool:
    return message.get("type") == "error"


# Columns that change without any request asking (ETA write-back, "last used" stamps).
_VOLATILE = {
    "tokens": "- 'queue_position' - 'estimated_wait_time' - 'eta_updated_at' - 'notified_expected_at'",
    "doctors": "- 'last_active_at'",
    "api_keys": "- 'last_used_at'",
    "display_devices": "- 'last_seen_at'",
}
_OWNED_ROWS = {
    "hospitals": "SELECT {j} FROM hospitals x WHERE hospital_id = $1",
    "departments": "SELECT {j} FROM departments x WHERE hospital_id = $1",
    "cabins": "SELECT {j} FROM cabins x JOIN departments d USING (dept_id) WHERE d.hospital_id = $1",
    "doctors": "SELECT {j} FROM doctors x WHERE hospital_id = $1",
    "cabin_doctors": "SELECT {j} FROM cabin_doctors x JOIN doctors d USING (doctor_id) WHERE d.hospital_id = $1",
    "patients": "SELECT {j} FROM patients x WHERE hospital_id = $1",
    "tokens": "SELECT {j} FROM tokens x WHERE hospital_id = $1",
    "token_history": "SELECT {j} FROM token_history x JOIN tokens t USING (token_id) WHERE t.hospital_id = $1",
    "token_counters": "SELECT {j} FROM token_counters x JOIN departments d USING (dept_id) WHERE d.hospital_id = $1",
    "staff_users": "SELECT {j} FROM staff_users x WHERE hospital_id = $1",
    "api_keys": "SELECT {j} FROM api_keys x WHERE hospital_id = $1",
    "display_devices": "SELECT {j} FROM display_devices x WHERE hospital_id = $1",
}


async def owned_rows(pool: asyncpg.Pool, hospital_id: uuid.UUID) -> dict[str, list[str]]:
    """Every row a hospital owns, as sorted JSON text per table."""
    state = {}
    for table, sql in _OWNED_ROWS.items():
        j = f"(to_jsonb(x) {_VOLATILE.get(table, '')})::text"
        rows = await pool.fetch(sql.format(j=j), hospital_id)
        state[table] = sorted(r[0] for r in rows)
    return state


def _diff(old: list[str], new: list[str]) -> str:
    return f"gone {sorted(set(old) - set(new))[:2]}; new {sorted(set(new) - set(old))[:2]}"


@contextlib.asynccontextmanager
async def unchanged(pool: asyncpg.Pool, *hospitals: factory.Hospital) -> AsyncIterator[None]:
    """Assert that no row of these hospitals was added, removed or changed inside the block."""
    before = [await owned_rows(pool, h.hospital_id) for h in hospitals]
    yield
    after = [await owned_rows(pool, h.hospital_id) for h in hospitals]
    for old, new in zip(before, after, strict=True):
        for table in old:
            assert len(new[table]) == len(old[table]), f"{table}: {len(old[table])} -> {len(new[table])} rows"
            assert new[table] == old[table], f"{table} changed: {_diff(old[table], new[table])}"
