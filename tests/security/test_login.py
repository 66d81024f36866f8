"""Sign-in (app/web/login.py): wrong passwords are recorded, five lock the account, the form needs
its double-submit token, and `next` never leads off the site.

These tests run against their own app process: the per-address limit (20 attempts per 5 min)
would otherwise be shared with every other test's sign-ins from 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from urllib.parse import urljoin, urlsplit

import asyncpg
import httpx
import pytest

from tests.security.conftest import new_server
from tests.security.helpers import (
    PASSWORD,
    cookie_header,
    make_user,
    plain_client,
    post_login,
    set_cookies,
)
from tests.support import factory
from tests.support.app_server import AppServer


@pytest.fixture(scope="module")
def login_server(database: str, redis_url: str) -> Iterator[AppServer]:
    server = new_server(database, redis_url).start()
    yield server
    server.stop()


@pytest.fixture
async def web(login_server: AppServer) -> AsyncIterator[httpx.AsyncClient]:
    async with plain_client(login_server.base_url) as http:
        yield http


async def events(pool: asyncpg.Pool, username: str) -> list[tuple[bool, str | None]]:
    rows = await pool.fetch("SELECT succeeded, detail FROM login_events WHERE username = $1 ORDER BY event_id",
                            username)
    return [(r["succeeded"], r["detail"]) for r in rows]


async def test_wrong_password_is_refused_and_recorded(web: httpx.AsyncClient, pool: asyncpg.Pool,
                                                      hospital: factory.Hospital) -> None:
    username, user_id = await make_user(pool, hospital, "admin")
    response = await post_login(web, username, "not the password at all")
    assert response.status_code == 401
    assert "Wrong username or password." in response.text
    assert "opd_session" not in set_cookies(response)
    assert await events(pool, username) == [(False, "wrong password")]
    assert await pool.fetchval("SELECT failed_logins FROM staff_users WHERE user_id = $1", user_id) == 1


async def test_unknown_user_reads_like_a_wrong_password(web: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    response = await post_login(web, "nobody-by-this-name", PASSWORD)
    assert response.status_code == 401
    assert "Wrong username or password." in response.text
    assert await events(pool, "nobody-by-this-name") == [(False, "unknown user")]


async def test_five_failures_lock_the_account(web: httpx.AsyncClient, pool: asyncpg.Pool,
                                              hospital: factory.Hospital) -> None:
    username, user_id = await make_user(pool, hospital, "receptionist")
    for _ in range(5):
        assert (await post_login(web, username, "guess guess guess")).status_code == 401
    assert await pool.fetchval("SELECT locked_until > now() FROM staff_users WHERE user_id = $1", user_id)
    right = await post_login(web, username, PASSWORD)
    assert right.status_code == 401
    assert "locked" in right.text
    assert "opd_session" not in set_cookies(right)
    assert (await events(pool, username))[-1] == (False, "locked")


async def test_sign_in_form_needs_its_double_submit_token(web: httpx.AsyncClient, pool: asyncpg.Pool,
                                                          hospital: factory.Hospital) -> None:
    username, _ = await make_user(pool, hospital, "admin")
    form = {"username": username, "password": PASSWORD}
    token = set_cookies(await web.get("/login"))["opd_login_csrf"].value
    attempts = [
        web.post("/login", data=form),                                              # neither
        web.post("/login", data=form, headers=cookie_header(opd_login_csrf=token)),   # cookie only
        web.post("/login", data={**form, "login_csrf": token}),                     # field only
        web.post("/login", data={**form, "login_csrf": token + "x"},
                 headers=cookie_header(opd_login_csrf=token)),                       # mismatch
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 403
        assert "opd_session" not in set_cookies(response)
    assert await events(pool, username) == []


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example",
                                    "http:evil.example", " //evil.example"])
async def test_next_never_leaves_the_site(web: httpx.AsyncClient, pool: asyncpg.Pool,
                                          hospital: factory.Hospital, login_server: AppServer,
                                          target: str) -> None:
    username, _ = await make_user(pool, hospital, "admin")
    response = await post_login(web, username, next_url=target)
    assert response.status_code == 303
    location = response.headers["location"]
    # Browsers read a backslash as a slash, so "/\evil" would be "//evil".
    assert "\\" not in location and not location.lstrip().startswith("//"), location
    assert urlsplit(urljoin(login_server.base_url + "/login", location)).netloc == \
        urlsplit(login_server.base_url).netloc, location


async def test_next_to_a_local_page_is_followed(web: httpx.AsyncClient, pool: asyncpg.Pool,
                                                hospital: factory.Hospital) -> None:
    username, _ = await make_user(pool, hospital, "admin")
    response = await post_login(web, username, next_url="/reception")
    assert response.status_code == 303 and response.headers["location"] == "/reception"


async def test_nul_in_username_is_an_ordinary_refusal(web: httpx.AsyncClient) -> None:
    """PostgreSQL text cannot hold U+0000; a form field with one must not become a 500."""
    response = await post_login(web, "admin\x00", PASSWORD)
    assert response.status_code in (400, 401, 422), response.status_code
