"""Fixtures of the database tests: a hospital, and a dedicated connection with its own clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from app.db.pool import connect


@pytest.fixture
async def clock_conn(database: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection outside the pool, so `opd.fake_now` set on it never leaks to other tests."""
    conn = await connect(database)
    yield conn
    await conn.close()
