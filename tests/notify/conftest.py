"""Fixtures for the notification tests.

They use a database of their own: every app process of the wider suite runs a dispatcher, and one
of those would otherwise send (and so take away) the rows these tests create.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from app.db.pool import create_pool
from tests.notify.provider_server import ProviderServer
from tests.support import factory
from tests.support.pg_server import upgraded_database


@pytest.fixture(scope="session")
async def outbox_dsn(pg_admin_dsn: str) -> AsyncIterator[str]:
    async with upgraded_database(pg_admin_dsn) as dsn:
        yield dsn


@pytest.fixture(scope="session")
async def outbox_pool(outbox_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(outbox_dsn, min_size=2, max_size=20)
    yield pool
    await pool.close()


@pytest.fixture
async def outbox_hospital(outbox_pool: asyncpg.Pool) -> factory.Hospital:
    return await factory.make_hospital(outbox_pool)


@pytest.fixture
def provider() -> Iterator[ProviderServer]:
    server = ProviderServer().start()
    yield server
    server.stop()


@pytest.fixture
async def quiet_outbox(outbox_pool: asyncpg.Pool) -> None:
    """No earlier test's rows are due: a dispatcher run then sends only this test's messages."""
    await outbox_pool.execute(
        """UPDATE notifications_log SET delivery_status = 'FAILED', failed_reason = 'left by an earlier test'
           WHERE delivery_status = 'PENDING'""")
