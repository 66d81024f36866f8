"""`db upgrade`: schema.sql once (checksummed), numbered migrations once each, functions.sql whenever
it changed.

Two servers starting at once do not race: the whole upgrade runs under an advisory lock.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import asyncpg

from app import clock
from app.settings import REPO_ROOT

log = logging.getLogger(__name__)

SQL_DIR = REPO_ROOT / "sql"
UPGRADE_LOCK_KEY = 727000  # advisory lock id held for the duration of an upgrade

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name TEXT PRIMARY KEY,
    checksum TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)"""


class SchemaChecksumMismatch(RuntimeError):
    pass


def _checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def migration_files() -> list[Path]:
    return sorted((SQL_DIR / "migrations").glob("[0-9]*.sql"))


async def upgrade(dsn: str) -> list[str]:
    """Bring the database at dsn up to date; returns the names of the files applied once."""
    conn = await asyncpg.connect(dsn, server_settings=clock.session_settings())
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", UPGRADE_LOCK_KEY)
        try:
            await conn.execute("SET client_min_messages = warning")
            await conn.execute(_MIGRATIONS_TABLE)
            done = {
                r["name"]: r["checksum"]
                for r in await conn.fetch("SELECT name, checksum FROM schema_migrations")
            }
            for path in [SQL_DIR / "schema.sql", *migration_files()]:
                name = path.name if path.parent.name == "sql" else f"migrations/{path.name}"
                checksum = _checksum(path)
                if name in done:
                    if done[name] != checksum:
                        raise SchemaChecksumMismatch(
                            f"{name} changed after it was applied; put the change in a new "
                            "numbered file under sql/migrations/"
                        )
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())
                    await conn.execute(
                        "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
                        name,
                        checksum,
                    )
                applied.append(name)
                log.info("applied %s", name)
            # functions.sql is re-applied only when it changed: re-creating triggers locks the
            # token tables, which would stall live traffic (and deadlock with the archive job)
            # at every start of every process. And after any migration, which may have dropped
            # or changed what it defines (009 drops old trigger functions with their triggers).
            functions = SQL_DIR / "functions.sql"
            checksum = _checksum(functions)
            if done.get("functions.sql") != checksum or applied:
                async with conn.transaction():
                    await conn.execute(functions.read_text())
                    await conn.execute(
                        """INSERT INTO schema_migrations (name, checksum) VALUES ('functions.sql', $1)
                           ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()""",
                        checksum)
                log.info("applied functions.sql")
            await conn.execute("SELECT ensure_token_partitions(2)")
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", UPGRADE_LOCK_KEY)
    finally:
        await conn.close()
    return applied
