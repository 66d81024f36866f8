"""The API's way to the database: a bounded wait for a connection.

When clicks arrive faster than PostgreSQL answers them (a backup, the HIS or antivirus taking the
CPU), an unbounded pool queue turns every click into a multi-second one and the backlog keeps
growing after the burst. Here a request that cannot get a connection within OPD_DB_WAIT_S gets
503 {"code": "busy"} with Retry-After at once: nothing ran, so the page may send it again, and
those that did get a connection stay fast (issue 19). The queue engine does not go through this:
it must never drop a recompute, and its own work is already coalesced per doctor.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from app import metrics

# Where a one-transaction request keeps its RequestTransaction (the ASGI scope, per request).
REQUEST_DB = "opd.db"


class DatabaseBusy(Exception):
    """No connection became free within the wait: the request did not run."""


class BoundedPool:
    """The subset of asyncpg.Pool the API uses, each call waiting at most wait_s for a connection."""

    def __init__(self, pool: asyncpg.Pool, wait_s: float) -> None:
        self.pool = pool
        self.wait_s = wait_s

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            conn = await self.pool.acquire(timeout=self.wait_s)
        except TimeoutError:
            metrics.DB_ERRORS.labels("busy").inc()
            raise DatabaseBusy from None
        try:
            yield conn
        finally:
            await self.pool.release(conn)

    async def execute(self, query: str, *args: Any) -> str:
        async with self.acquire() as conn:
            result: str = await conn.execute(query, *args)
            return result

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async with self.acquire() as conn:
            return list(await conn.fetch(query, *args))

    async def fetchrow(self, query: str, *args: Any) -> Any:   # a Record or None, as asyncpg types it
        async with self.acquire() as conn:
            return await conn.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        async with self.acquire() as conn:
            return await conn.fetchval(query, *args)


class RequestTransaction(BoundedPool):
    """One connection in one transaction for a whole API request (registry.py, `one_transaction`):
    the credential check, the ownership check and the change commit together — one transaction
    per click instead of two (issue 19) — and a refusal after a change rolls it back. Handlers
    use it as they use the pool; their own `conn.transaction()` becomes a savepoint."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        yield self.conn

    async def execute(self, query: str, *args: Any) -> str:
        result: str = await self.conn.execute(query, *args)
        return result

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return list(await self.conn.fetch(query, *args))

    async def fetchrow(self, query: str, *args: Any) -> Any:
        return await self.conn.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self.conn.fetchval(query, *args)
