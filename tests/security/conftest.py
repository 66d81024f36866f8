"""Fixtures of the access-control tests: a second hospital, HTTP clients without a cookie jar,
and extra app processes for the tests that exhaust a per-process rate limit."""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import httpx
import pytest

from tests.security.helpers import plain_client
from tests.support import factory
from tests.support.app_server import AppServer

# Extra servers share the suite's database; their own leader lock keeps the session server the
# one queue engine of its bus namespace (see tests/live/conftest.py).
_lock_keys = itertools.count(900_000 + secrets.randbelow(100_000) * 100)

StartServer = Callable[[], Awaitable[AppServer]]


def new_server(database: str, redis_url: str) -> AppServer:
    return AppServer(database, redis_url, f"opdsec{secrets.token_hex(4)}",
                     extra_env={"OPD_LEADER_LOCK_KEY": str(next(_lock_keys))})


@pytest.fixture
async def start_server(database: str, redis_url: str) -> AsyncIterator[StartServer]:
    """Start a private app process (its rate limiters start empty); stopped after the test."""
    started: list[AppServer] = []

    async def start() -> AppServer:
        server = new_server(database, redis_url)
        started.append(server)
        return await asyncio.to_thread(server.start)

    try:
        yield start
    finally:
        for server in started:
            await asyncio.to_thread(server.stop)


@pytest.fixture
async def other(pool: asyncpg.Pool) -> factory.Hospital:
    """A second hospital, whose ids the first one's credentials must not reach."""
    return await factory.make_hospital(pool)


@pytest.fixture
async def anon(server: AppServer) -> AsyncIterator[httpx.AsyncClient]:
    """No credential at all (and no cookie jar: tests send every cookie explicitly)."""
    async with plain_client(server.base_url) as http:
        yield http
