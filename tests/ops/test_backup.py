"""Backups that restore: a day in progress is backed up, restored into a fresh database, and a
server on it (with an empty Redis namespace: Redis holds only derived data) shows the same
queues; bad `backup` / `restore` requests get a clear refusal and change nothing."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.db.migrate import upgrade
from tests.support import factory
from tests.support.app_server import REPO_ROOT, AppServer
from tests.support.pg_server import create_database, drop_database

pytestmark = pytest.mark.calendar


def run_cli(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPD_")}
    env["DATABASE_URL"] = dsn
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
async def scratch_databases(pg_admin_dsn: str) -> AsyncIterator[list[str]]:
    """Databases made by the test (create_database), dropped at its end."""
    made: list[str] = []
    yield made
    for dsn in made:
        await drop_database(pg_admin_dsn, dsn.rsplit("/", 1)[1].split("?")[0])


async def queues(server: AppServer, key: str, doctor_ids: list[str]) -> list[object]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=15,
                                 headers={"Authorization": f"Bearer {key}"}) as http:
        result = []
        for doctor_id in doctor_ids:
            body = (await http.get(f"/api/v1/queues/doctors/{doctor_id}")).json()
            result.append({"now_serving": (body.get("now_serving") or {}).get("token_number"),
                           "waiting": [(w["token_number"], w["position"]) for w in body["waiting"]]})
        return result


async def test_a_day_in_progress_survives_backup_and_restore(
        pg_admin_dsn: str, redis_url: str, scratch_databases: list[str], tmp_path: Path) -> None:
    source = await create_database(pg_admin_dsn)
    scratch_databases.append(source)
    await upgrade(source)
    pool = await asyncpg.create_pool(source, min_size=1, max_size=4)
    try:
        hospital = await factory.make_hospital(pool, doctors=2)
        for doctor in hospital.doctors:
            for _ in range(4):
                await factory.issue(pool, hospital, doctor=doctor)
            await pool.execute("SELECT * FROM call_next_token($1, NULL)", doctor.doctor_id)
    finally:
        await pool.close()
    doctor_ids = [str(d.doctor_id) for d in hospital.doctors]

    archive = tmp_path / "day.dump"
    made = await asyncio.to_thread(run_cli, source, "backup", "--out", str(archive))
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == str(archive) and archive.stat().st_size > 0

    target = await create_database(pg_admin_dsn)
    scratch_databases.append(target)
    restored = await asyncio.to_thread(run_cli, target, "restore", str(archive))
    assert restored.returncode == 0, restored.stderr
    conn = await asyncpg.connect(target)
    try:   # the index pg_restore cannot build itself (app/db/backup.py, EARTH_INDEXES) is there too
        assert await conn.fetchval("SELECT to_regclass('public.idx_hospitals_location') IS NOT NULL")
    finally:
        await conn.close()

    servers = [await asyncio.to_thread(AppServer(dsn, redis_url, f"opdbackup{secrets.token_hex(4)}").start)
               for dsn in (source, target)]
    try:
        before, after = [await queues(server, hospital.keys["admin"], doctor_ids) for server in servers]
    finally:
        for server in servers:
            server.stop()
    assert before == after
    assert all(q["now_serving"] and len(q["waiting"]) == 3 for q in after)  # type: ignore[index]

    # Restoring again over the restored (now non-empty) database is refused, and changes nothing.
    again = await asyncio.to_thread(run_cli, target, "restore", str(archive))
    assert again.returncode == 2 and "not empty" in again.stderr, again.stderr


async def test_bad_backup_and_restore_requests_are_refused(
        pg_admin_dsn: str, scratch_databases: list[str], tmp_path: Path) -> None:
    source = await create_database(pg_admin_dsn)
    scratch_databases.append(source)
    empty = await create_database(pg_admin_dsn)
    scratch_databases.append(empty)

    nothing = await asyncio.to_thread(run_cli, empty, "backup", "--out", str(tmp_path / "empty.dump"))
    assert nothing.returncode == 2 and "no OPD Queue Board schema" in nothing.stderr
    assert not (tmp_path / "empty.dump").exists()

    await upgrade(source)
    nowhere = await asyncio.to_thread(run_cli, source, "backup", "--out", str(tmp_path / "no" / "x.dump"))
    assert nowhere.returncode == 2 and "is not a directory" in nowhere.stderr
    (tmp_path / "taken.dump").write_text("x")
    taken = await asyncio.to_thread(run_cli, source, "backup", "--out", str(tmp_path / "taken.dump"))
    assert taken.returncode == 2 and "already exists" in taken.stderr

    missing = await asyncio.to_thread(run_cli, empty, "restore", str(tmp_path / "missing.dump"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    junk = tmp_path / "junk.dump"
    junk.write_bytes(b"not an archive at all")
    refused = await asyncio.to_thread(run_cli, empty, "restore", str(junk))
    assert refused.returncode == 2 and "is not a backup" in refused.stderr

    # An archive from a newer version (a migration this code does not know) is refused before
    # anything is written.
    conn = await asyncpg.connect(source)
    try:
        await conn.execute("INSERT INTO schema_migrations (name, checksum) VALUES ('migrations/999_future.sql', 'x')")
    finally:
        await conn.close()
    future = tmp_path / "future.dump"
    assert (await asyncio.to_thread(run_cli, source, "backup", "--out", str(future))).returncode == 0
    newer = await asyncio.to_thread(run_cli, empty, "restore", str(future))
    assert newer.returncode == 2 and "newer version" in newer.stderr and "999_future" in newer.stderr
    conn = await asyncpg.connect(empty)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
    finally:
        await conn.close()
