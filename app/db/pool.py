"""asyncpg pools with JSON codecs, and the one helper that runs a lifecycle call as an actor."""

from __future__ import annotations

import json
from typing import Any

import asyncpg


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, command_timeout=30
    )
    assert pool is not None
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    """A single connection outside any pool (the LISTEN connection, tools)."""
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


def record_to_dict(record: asyncpg.Record | None) -> dict[str, Any] | None:
    return None if record is None else dict(record.items())
