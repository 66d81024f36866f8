"""Per-address rate limits (app/security/ratelimit.py). Each test has its own app process: the
limits are per process, and exhausting the shared server's would starve the other tests."""

from __future__ import annotations

import asyncpg

from tests.security.conftest import StartServer
from tests.security.helpers import make_user, plain_client, post_login
from tests.support import factory

TRACK_LIMIT = 120   # per address per minute (app/main.py)
LOGIN_LIMIT = 20    # per address per 5 minutes (app/web/login.py)


async def test_tracking_is_limited_per_address(start_server: StartServer, pool: asyncpg.Pool,
                                               hospital: factory.Hospital) -> None:
    server = await start_server()
    code = (await factory.issue(pool, hospital))["tracking_code"]
    async with plain_client(server.base_url) as http:
        answers = [(await http.get(f"/api/v1/track/{code}")).status_code for _ in range(TRACK_LIMIT)]
        assert set(answers) == {200}
        limited = await http.get(f"/api/v1/track/{code}")
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        # Guesses and the page share the allowance.
        assert (await http.get(f"/api/v1/track/{'A' * 24}")).status_code == 429
        assert (await http.get(f"/t/{code}")).status_code == 429


async def test_sign_in_is_limited_per_address(start_server: StartServer, pool: asyncpg.Pool,
                                              hospital: factory.Hospital) -> None:
    server = await start_server()
    username, _ = await make_user(pool, hospital, "admin")
    async with plain_client(server.base_url) as http:
        for n in range(LOGIN_LIMIT):
            # Many accounts, one wrong guess each: no account lock-out would stop this.
            assert (await post_login(http, f"guess-{n}", "wrong password!")).status_code == 401
        limited = await post_login(http, username)
        assert limited.status_code == 429
        assert "opd_session" not in limited.headers.get("set-cookie", "")
        assert await pool.fetchval("SELECT count(*) FROM login_events WHERE username = $1", username) == 0
