"""Maintenance: tokens older than 90 days move to tokens_archive exactly once, their history stays
readable, empty old partitions go, and `python -m app maintenance` is safe to run concurrently."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
import uuid

import asyncpg
import pytest

from app.db.pool import connect
from tests.db.helpers import issue_on, set_clock
from tests.ops import helpers
from tests.support import factory
from tests.support.app_server import REPO_ROOT

pytestmark = pytest.mark.calendar


async def old_day(pool: asyncpg.Pool, hospital: factory.Hospital, months_back: int) -> dt.date:
    """The first day of a month whose partition lies wholly before the 90-day cutoff."""
    day: dt.date = await pool.fetchval(
        "SELECT date_trunc('month', hospital_today($1) - make_interval(months => $2))::date",
        hospital.hospital_id, months_back)
    return day


async def old_tokens(pool: asyncpg.Pool, conn: asyncpg.Connection, hospital: factory.Hospital,
                     day: dt.date) -> list[uuid.UUID]:
    """Three tokens of `day` (one completed, one cancelled, one left queued), issued on its own clock."""
    await helpers.add_shift(pool, hospital.doctor, day, "09:00", "17:00", "ACTIVE")
    await set_clock(conn, await helpers.local(conn, hospital, day, "10:00"))
    ids = [(await issue_on(conn, pool, hospital))["token_id"] for _ in range(3)]
    for status in ("WAITING", "IN_CONSULTATION", "COMPLETED"):
        await helpers.step(conn, ids[0], status)
    await helpers.step(conn, ids[1], "CANCELLED", "test")
    await set_clock(conn, None)
    return ids


def partition(day: dt.date) -> str:
    return f"tokens_{day:%Y_%m}"


async def test_concurrent_archive_moves_each_old_token_once(pool: asyncpg.Pool, database: str,
                                                            clock_conn: asyncpg.Connection) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    day = await old_day(pool, hospital, 5)
    ids = await old_tokens(pool, clock_conn, hospital, day)
    recent = await factory.issue(pool, hospital)
    history_before = await pool.fetch("SELECT * FROM token_history WHERE token_id = ANY($1::uuid[]) "
                                      "ORDER BY history_id", ids)
    assert len(history_before) >= 6
    waiting_old = await pool.fetchval(
        "SELECT count(*) FROM tokens WHERE visit_date < (opd_now() AT TIME ZONE 'UTC')::date - 90")

    other = await connect(database)
    try:
        first, second = await asyncio.gather(clock_conn.fetchval("SELECT archive_old_tokens(90, 5000)"),
                                             other.fetchval("SELECT archive_old_tokens(90, 5000)"))
    finally:
        await other.close()
    assert first["archived"] + second["archived"] == waiting_old, (first, second)
    assert 0 in (first["archived"], second["archived"]), "the second caller found the work done"
    assert partition(day) in first["dropped_partitions"] + second["dropped_partitions"]
    assert await pool.fetchval("SELECT to_regclass($1)", partition(day)) is None

    assert await pool.fetchval("SELECT count(*) FROM tokens WHERE token_id = ANY($1::uuid[])", ids) == 0
    archived = await pool.fetch("SELECT * FROM tokens_archive WHERE token_id = ANY($1::uuid[]) ORDER BY serial", ids)
    assert [r["status"] for r in archived] == ["COMPLETED", "CANCELLED", "CHECKED_IN"]
    assert archived[0]["consultation_end_time"] is not None
    history_after = await pool.fetch("SELECT * FROM token_history WHERE token_id = ANY($1::uuid[]) "
                                     "ORDER BY history_id", ids)
    assert history_after == history_before, "history stays readable by token_id"
    assert await pool.fetchval("SELECT status FROM tokens WHERE token_id = $1", recent["token_id"]) == "CHECKED_IN"


async def run_maintenance(database: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["DATABASE_URL"] = database
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "maintenance", cwd=REPO_ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_maintenance_command_twice_at_once(pool: asyncpg.Pool, database: str,
                                                 clock_conn: asyncpg.Connection) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    day = await old_day(pool, hospital, 6)
    ids = await old_tokens(pool, clock_conn, hospital, day)

    results = await asyncio.gather(run_maintenance(database), run_maintenance(database))
    reports = []
    for code, out, err in results:
        assert code == 0, f"exit {code}\n{out}\n{err[-3000:]}"
        reports.append(json.loads(out))
    for report in reports:
        assert set(report) >= {"partitions_created", "archived_tokens", "dropped_partitions", "archive_cutoff",
                               "hospitals"}
        assert hospital.code in report["hospitals"]
        assert set(report["hospitals"][hospital.code]) == {"doctor_days", "open_alerts"}
    assert sum(r["archived_tokens"] for r in reports) >= len(ids)
    assert await pool.fetchval("SELECT count(*) FROM tokens_archive WHERE token_id = ANY($1::uuid[])", ids) == 3
    assert await pool.fetchval("SELECT count(*) FROM tokens WHERE token_id = ANY($1::uuid[])", ids) == 0
    assert partition(day) in reports[0]["dropped_partitions"] + reports[1]["dropped_partitions"]
    # Today's metrics were computed for the hospital: one row per doctor-day, whichever run wrote it.
    assert await pool.fetchval(
        "SELECT count(*) FROM doctor_performance_metrics WHERE doctor_id = $1 AND metric_date = hospital_today($2)",
        hospital.doctor.doctor_id, hospital.hospital_id) == 1
