"""Fixtures of the live tests: extra app processes, each group with its own leader lock.

Every app process of the suite shares one database. The advisory lock that elects the queue
engine is per database, so a group of extra servers gets its own OPD_LEADER_LOCK_KEY (and its
own bus namespace): otherwise the session server would stay the only leader and publish only
into its own namespace, and the extra servers' clients would never see a frame.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from tests.support.app_server import AppServer
from tests.support.redis_server import find_redis_server, free_port, launch_redis

_lock_keys = itertools.count(800_000 + secrets.randbelow(100_000) * 64, 64)  # room for 64 shards each

StartServer = Callable[..., Awaitable[AppServer]]


@pytest.fixture
def lock_key() -> int:
    """An advisory lock id no other process of this run uses."""
    return next(_lock_keys)


@pytest.fixture
async def start_server(database: str, redis_url: str) -> AsyncIterator[StartServer]:
    """Start extra app servers (own port each); all are stopped when the test ends."""
    started: list[AppServer] = []

    async def start(*, namespace: str, lock_key: int, redis: str | None = None,
                    extra_env: dict[str, str] | None = None) -> AppServer:
        env = {"OPD_LEADER_LOCK_KEY": str(lock_key), **(extra_env or {})}
        server = AppServer(database, redis or redis_url, namespace, extra_env=env)
        started.append(server)
        return await asyncio.to_thread(server.start)

    try:
        yield start
    finally:
        for server in started:
            await asyncio.to_thread(server.kill)


async def engine_role(server: AppServer) -> str:
    """'leader' or 'follower', from the process's /healthz."""
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(server.base_url + "/healthz")
    role: str = response.json()["checks"]["engine"]
    return role


async def wait_for_role(server: AppServer, role: str, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        try:
            last = await engine_role(server)
        except httpx.HTTPError as exc:
            last = repr(exc)
        if last == role:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(
        f"{server.base_url} did not become {role} within {timeout:.0f} s (is {last})")


def staff_http(server: AppServer, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.base_url, timeout=15,
                             headers={"Authorization": f"Bearer {key}"})


@pytest.fixture
def private_redis():
    """A Redis of this test alone, which the test may stop and start again on the same port."""
    executable, port = find_redis_server(), free_port()
    running = {}
    running["url"], running["stop"] = launch_redis(executable, port)

    def restart() -> None:
        running["url"], running["stop"] = launch_redis(executable, port)

    running["restart"] = restart
    yield running
    running["stop"]()
