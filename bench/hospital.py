"""A throwaway database holding one hospital sized for the run, built through the SQL functions."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from app.api.auth import create_api_key
from app.clock import OFFSET_ENV, offset_to_reach
from app.db.migrate import upgrade

# No limit should stop the bench: a department issues every token of the run.
TOKEN_LIMIT = 1_000_000

# The bench lives on a fixed day and hour, on the app's own fake clock (app/clock.py: its
# processes and database sessions run with this offset): a run that crossed the hospital's
# midnight (18:30 UTC for Asia/Kolkata) found every doctor off shift and failed every change.
# Latencies are unaffected: a change's NOTIFY carries the real clock_timestamp().
BENCH_CLOCK = dt.datetime(2027, 1, 4, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))
CLOCK_OFFSET_S = offset_to_reach(BENCH_CLOCK)


def clock_env() -> dict[str, str]:
    """The environment that puts an app process on the bench's clock."""
    return {OFFSET_ENV: str(CLOCK_OFFSET_S)}


def clock_settings() -> dict[str, str]:
    """The session settings that put a database connection on the bench's clock."""
    return {"opd.clock_offset": f"{CLOCK_OFFSET_S} seconds"}


@dataclass
class BenchHospital:
    dsn: str
    database: str
    hospital_id: str
    dept_ids: list[str]
    doctor_ids: list[str]
    key: str
    # doctor_id -> tracking codes of the last tokens in its queue: they stay waiting all run,
    # so each call-next moves them up and their phones get a frame.
    tail_codes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def all_codes(self) -> list[str]:
        return [c for codes in self.tail_codes.values() for c in codes]


def dsn_for_database(dsn: str, database: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path="/" + database))


async def create_database(admin_dsn: str) -> tuple[str, str]:
    name = f"opd_bench_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        # Per-function call counts (pg_stat_user_functions) for the queries-per-change figure;
        # set before the app connects, since it applies to new sessions only.
        await conn.execute(f"ALTER DATABASE \"{name}\" SET track_functions = 'all'")
    finally:
        await conn.close()
    return name, dsn_for_database(admin_dsn, name)


async def drop_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def build_hospital(admin_dsn: str, *, doctors: int, departments: int, queue_length: int,
                         tail: int) -> BenchHospital:
    """Schema, then a hospital whose doctors are all on shift, each with a patient in
    consultation and `queue_length` waiting tokens."""
    name, dsn = await create_database(admin_dsn)
    await upgrade(dsn)
    conn = await asyncpg.connect(dsn, server_settings=clock_settings())
    try:
        async with conn.transaction():
            hospital_id, dept_ids, doctor_ids = await _structure(conn, doctors, departments)
            await _queues(conn, hospital_id, doctor_ids, queue_length)
            _, key = await create_api_key(conn, hospital_id, role="admin", label="bench")
        # Statistics now, as autovacuum keeps them on a running server: without them the planner
        # guesses, and both its plans and its custom-versus-generic choices differ from production.
        await conn.execute("ANALYZE")
        tail_codes = {}
        for doctor_id in doctor_ids:
            rows = await conn.fetch(
                """SELECT tracking_code FROM tokens WHERE doctor_id = $1 AND status = 'CHECKED_IN'
                   ORDER BY serial DESC LIMIT $2""", doctor_id, tail)
            tail_codes[str(doctor_id)] = [r["tracking_code"] for r in rows]
    finally:
        await conn.close()
    return BenchHospital(dsn, name, str(hospital_id), [str(d) for d in dept_ids],
                         [str(d) for d in doctor_ids], key, tail_codes)


async def _structure(conn: asyncpg.Connection, doctors: int, departments: int
                     ) -> tuple[uuid.UUID, list[uuid.UUID], list[uuid.UUID]]:
    hospital_id = await conn.fetchval(
        """INSERT INTO hospitals (code, name, address, latitude, longitude, timezone)
           VALUES ($1, 'Bench General Hospital', 'Bench Road', 28.6139, 77.2090, 'Asia/Kolkata')
           RETURNING hospital_id""", "B" + secrets.token_hex(4).upper())
    dept_ids = []
    for d in range(departments):
        dept_ids.append(await conn.fetchval(
            """INSERT INTO departments (hospital_id, name, code, avg_consultation_time, buffer_time,
                                        max_tokens_per_day)
               VALUES ($1, $2, $3, 10, 2, $4) RETURNING dept_id""",
            hospital_id, f"Department {d + 1}", f"D{d + 1}", TOKEN_LIMIT))
    doctor_ids = []
    for n in range(doctors):
        dept_id = dept_ids[n % departments]
        cabin_id = await conn.fetchval(
            "INSERT INTO cabins (dept_id, cabin_number) VALUES ($1, $2) RETURNING cabin_id",
            dept_id, f"C-{n + 1:03d}")
        doctor_id = await conn.fetchval(
            """INSERT INTO doctors (hospital_id, emp_code, name, specialization, primary_dept_id,
                                    phone, max_tokens_per_session)
               VALUES ($1, $2, $3, 'General', $4, '9000000000', $5) RETURNING doctor_id""",
            hospital_id, f"E{n + 1}", f"Dr. Bench {n + 1:03d}", dept_id, TOKEN_LIMIT)
        # The whole local day, so the run works at any hour.
        await conn.execute(
            """INSERT INTO cabin_doctors (cabin_id, doctor_id, shift_date, shift_start_time,
                                          shift_end_time, status)
               VALUES ($1, $2, hospital_today($3), '00:00', '23:59:59', 'ACTIVE')""",
            cabin_id, doctor_id, hospital_id)
        doctor_ids.append(doctor_id)
    return hospital_id, dept_ids, doctor_ids


async def _queues(conn: asyncpg.Connection, hospital_id: uuid.UUID, doctor_ids: list[uuid.UUID],
                  queue_length: int) -> None:
    # One more token per doctor than the queue: that one is called and put in consultation,
    # so the driver's first step for every doctor is "complete and call next".
    per_doctor = queue_length + 1
    patients = [(hospital_id, f"BP{i:07d}", f"Bench Patient {i}", f"98{i:08d}")
                for i in range(len(doctor_ids) * per_doctor)]
    await conn.copy_records_to_table("patients", records=patients,
                                     columns=["hospital_id", "uhid", "name", "phone"])
    patient_ids = [r["patient_id"] for r in await conn.fetch(
        "SELECT patient_id FROM patients WHERE hospital_id = $1 ORDER BY uhid", hospital_id)]
    args = [(hospital_id, patient_ids[i * per_doctor + k], doctor_id)
            for k in range(per_doctor) for i, doctor_id in enumerate(doctor_ids)]
    await conn.executemany(
        "SELECT issue_token($1, $2, $3, NULL, 'WALK_IN', 1, NULL, 'bench')", args)
    for doctor_id in doctor_ids:
        token_id = await conn.fetchval("SELECT token_id FROM call_next_token($1, NULL, false)",
                                       doctor_id)
        await conn.execute("SELECT 1 FROM set_token_status($1, 'IN_CONSULTATION', NULL)", token_id)
