"""asyncpg pools with JSON codecs, and the one helper that runs a lifecycle call as an actor."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from app import clock, jsonutil

log = logging.getLogger(__name__)

# Plans of the SQL functions' statements are made once per connection, not at every call.
# PostgreSQL's default re-plans a parameterized statement whenever a custom plan looks cheaper,
# which for statements on the partitioned tokens table is nearly always: at a hundred changes a
# second, planning was a fifth of PostgreSQL's CPU (perf; docs/performance.md). Generic plans
# still prune partitions, at executor start.
SESSION_SETTINGS = {"plan_cache_mode": "force_generic_plan"}


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, encoder=jsonutil.dumps, decoder=jsonutil.loads, schema="pg_catalog"
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Run on release instead of asyncpg's reset query (UNLISTEN, RESET ALL, ...), which cost a
    round trip and a server transaction per release: several per click. asyncpg still rolls back
    an open transaction first. This is safe because pooled connections never change session
    state: settings are per transaction (set_config(..., true)), LISTEN and session advisory
    locks live on dedicated connections (app/live/leader.py, app/db/migrate.py)."""


async def _init_warm_connection(conn: asyncpg.Connection) -> None:
    await _init_connection(conn)
    try:
        await conn.execute("SELECT warm_up_connection()")
    except (asyncpg.PostgresError, TimeoutError) as exc:  # only a head start: serve cold
        log.warning("connection warm-up failed (%r); the connection is used cold", exc)


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10,
                      warm: bool = False) -> asyncpg.Pool:
    """warm: open every connection now, kept open, each warmed up (sql: warm_up_connection) --
    for the queue engine, whose first recomputes after a start otherwise paid for cold sessions
    in the middle of the first clicks."""
    pool = await asyncpg.create_pool(
        dsn, min_size=max_size if warm else min_size, max_size=max_size,
        init=_init_warm_connection if warm else _init_connection, command_timeout=30,
        reset=_keep_session, server_settings={**SESSION_SETTINGS, **clock.session_settings()},
        max_inactive_connection_lifetime=0 if warm else 300.0,
    )
    assert pool is not None
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    """A single connection outside any pool (the LISTEN connection, tools)."""
    conn = await asyncpg.connect(dsn, server_settings=clock.session_settings())
    await _init_connection(conn)
    return conn


def record_to_dict(record: asyncpg.Record | None) -> dict[str, Any] | None:
    return None if record is None else dict(record.items())
