"""Shared fixtures: real PostgreSQL, real Redis, the real app in a subprocess.

Every run creates its own databases with random names and drops them at the end; each test
builds its own hospital (tests/support/factory.py), so tests never see each other's rows.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest

from app.db.migrate import upgrade
from app.db.pool import create_pool
from tests.support import factory
from tests.support.app_server import AppServer
from tests.support.pg_server import create_database, drop_database, start_postgres
from tests.support.redis_cleanup import NAMESPACES_USED, delete_keys, design_keys_of
from tests.support.redis_server import start_redis


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    dsn, stop = start_postgres()
    yield dsn
    stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url, stop = start_redis()
    yield url
    stop()


@pytest.fixture(scope="session")
async def database(pg_admin_dsn: str, redis_url: str) -> AsyncIterator[str]:
    """The suite's database, schema applied; its DSN. At the end, the Redis keys the run wrote
    go with it (tests/support/redis_cleanup.py)."""
    dsn = await create_database(pg_admin_dsn)
    await upgrade(dsn)
    yield dsn
    design_keys = await design_keys_of(dsn)
    await drop_database(pg_admin_dsn, dsn.rsplit("/", 1)[1].split("?")[0])
    delete_keys(redis_url, design_keys, NAMESPACES_USED)


@pytest.fixture
async def empty_database(pg_admin_dsn: str) -> AsyncIterator[str]:
    """A brand-new empty database for this test alone."""
    dsn = await create_database(pg_admin_dsn)
    yield dsn
    await drop_database(pg_admin_dsn, dsn.rsplit("/", 1)[1].split("?")[0])


@pytest.fixture(scope="session")
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(database, min_size=2, max_size=30)
    yield p
    await p.close()


@pytest.fixture(scope="session")
def server(database: str, redis_url: str) -> Iterator[AppServer]:
    """One app process (Redis bus) shared by the HTTP and WebSocket tests."""
    # Hundreds of test hospitals share this database: the periodic refresh would spend the
    # machine on them. Tests that need the timers start their own server with short ones.
    # Every sign-in of the suite comes from 127.0.0.1: the per-address limit (20 per 5 minutes)
    # would refuse the later ones. test_rate_limits checks the limit on servers of its own.
    app = AppServer(database, redis_url, namespace=f"opdtest{secrets.token_hex(4)}",
                    extra_env={"OPD_SAFETY_REFRESH_S": "300", "OPD_ETA_TICK_S": "300",
                               "OPD_LOGIN_ATTEMPTS_PER_ADDRESS": "100000"}).start()
    yield app
    app.stop()


@pytest.fixture
async def hospital(pool: asyncpg.Pool) -> factory.Hospital:
    return await factory.make_hospital(pool)


@pytest.fixture
async def admin(server: AppServer, hospital: factory.Hospital) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the test hospital with an admin API key."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=15,
                                 headers={"Authorization": f"Bearer {hospital.keys['admin']}"}) as client:
        yield client
