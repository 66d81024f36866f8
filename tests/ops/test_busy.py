"""Clicks do not pile up behind a stuck database (issue 19): a request that gets no connection
within OPD_DB_WAIT_S is answered 503 busy with Retry-After at once, and nothing of it ran; those
holding a connection finish when the database frees up."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from app.db.pool import create_pool
from tests.support import factory
from tests.support.app_server import AppServer
from tests.support.pg_server import upgraded_database

POOL_SIZE = 24   # app/main.py: the API's pool


@pytest.fixture(scope="module")
async def busy_dsn(pg_admin_dsn: str) -> AsyncIterator[str]:
    """A database of its own: the test locks a table every server of the suite reads."""
    async with upgraded_database(pg_admin_dsn) as dsn:
        yield dsn


@pytest.fixture(scope="module")
def busy_server(busy_dsn: str) -> Iterator[AppServer]:
    server = AppServer(busy_dsn, None, namespace=f"opdbusy{secrets.token_hex(4)}",
                       extra_env={"OPD_DB_WAIT_S": "0.5"}).start()
    yield server
    server.stop()


async def test_a_request_without_a_free_connection_is_told_busy_not_queued(
        busy_server: AppServer, busy_dsn: str) -> None:
    pool = await create_pool(busy_dsn, max_size=2)
    try:
        hospital = await factory.make_hospital(pool)
        headers = {"Authorization": f"Bearer {hospital.keys['receptionist']}"}
        async with httpx.AsyncClient(base_url=busy_server.base_url, timeout=30, headers=headers,
                                     limits=httpx.Limits(max_connections=100)) as http:
            assert (await http.get("/api/v1/departments")).status_code == 200
            # Every request's sign-in check reads api_keys: with the table locked, the first
            # POOL_SIZE requests hold a connection and wait inside PostgreSQL; the rest get none.
            async with pool.acquire() as locker, locker.transaction():
                await locker.execute("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
                requests = [asyncio.create_task(http.get("/api/v1/departments")) for _ in range(POOL_SIZE + 12)]
                await asyncio.sleep(2.0)   # well beyond OPD_DB_WAIT_S: those without a connection are answered
                early = [t.result() for t in requests if t.done()]
            # The lock is gone: those that had a connection finish normally.
            answers = await asyncio.gather(*requests)
        busy = [r for r in answers if r.status_code == 503]
        assert busy, [r.status_code for r in answers]
        assert all(r.json()["error"]["code"] == "busy" and r.headers["Retry-After"] == "1" for r in busy)
        assert early and all(r.status_code == 503 for r in early)   # answered while the database was stuck
        assert {r.status_code for r in answers} <= {200, 503}
        assert len([r for r in answers if r.status_code == 200]) >= POOL_SIZE // 2
    finally:
        await pool.close()
