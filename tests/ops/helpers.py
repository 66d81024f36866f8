"""Helpers of the operations tests: hospitals hidden from the app's engine, shifts on chosen
days, hospital-local instants, and the rows the operations features write."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg

from tests.support import factory

Db = asyncpg.Connection | asyncpg.Pool


async def hidden_hospital(pool: asyncpg.Pool, **options: Any) -> factory.Hospital:
    """A hospital the session server's engine leaves alone (INACTIVE is not laid out).

    The engine runs check_hospital_alerts by the real clock on every safety refresh; a test that
    drives alerts with opd.fake_now must not race it.
    """
    hospital = await factory.make_hospital(pool, **options)
    await pool.execute("UPDATE hospitals SET status = 'INACTIVE' WHERE hospital_id = $1", hospital.hospital_id)
    return hospital


async def today(db: Db, hospital: factory.Hospital) -> dt.date:
    day: dt.date = await db.fetchval("SELECT hospital_today($1)", hospital.hospital_id)
    return day


async def local(db: Db, hospital: factory.Hospital, day: dt.date, hhmm: str) -> dt.datetime:
    """The instant of hh:mm on `day` in the hospital's time zone."""
    at: dt.datetime = await db.fetchval("SELECT hospital_local_time($1, $2, $3::text::time)",
                                        hospital.hospital_id, day, hhmm)
    return at


async def add_shift(db: Db, doctor: factory.Doctor, day: dt.date, start: str, end: str,
                    status: str = "SCHEDULED") -> uuid.UUID:
    assignment_id: uuid.UUID = await db.fetchval(
        """INSERT INTO cabin_doctors (cabin_id, doctor_id, shift_date, shift_start_time, shift_end_time, status)
           VALUES ($1, $2, $3, $4::text::time, $5::text::time, $6) RETURNING assignment_id""",
        doctor.cabin_id, doctor.doctor_id, day, start, end, status)
    return assignment_id


async def set_today_shift(db: Db, doctor: factory.Doctor, start: str, end: str, status: str) -> None:
    """Reshape the factory's all-day shift of today."""
    await db.execute(
        """UPDATE cabin_doctors SET shift_start_time = $2::text::time, shift_end_time = $3::text::time,
                                    status = $4, actual_start_time = NULL
           WHERE doctor_id = $1 AND shift_date = hospital_today((SELECT hospital_id FROM doctors
                                                                 WHERE doctor_id = $1))""",
        doctor.doctor_id, start, end, status)


async def key_id(db: Db, hospital: factory.Hospital, role: str) -> uuid.UUID:
    found: uuid.UUID = await db.fetchval(
        "SELECT key_id FROM api_keys WHERE hospital_id = $1 AND role = $2 ORDER BY created_at LIMIT 1",
        hospital.hospital_id, role)
    return found


async def step(conn: Db, token_id: uuid.UUID, status: str, reason: str | None = None) -> None:
    """One lifecycle step through set_token_status (the API's path), on conn's clock."""
    await conn.execute("SELECT token_id FROM set_token_status($1, $2, NULL, $3)", token_id, status, reason)


async def open_alerts(db: Db, hospital: factory.Hospital) -> list[asyncpg.Record]:
    return await db.fetch("SELECT * FROM system_alerts WHERE hospital_id = $1 AND NOT is_resolved "
                          "ORDER BY created_at", hospital.hospital_id)


async def alerts_for(db: Db, entity_id: uuid.UUID, alert_type: str) -> list[asyncpg.Record]:
    """Every alert (open or resolved) of one type about one entity."""
    return await db.fetch("SELECT * FROM system_alerts WHERE entity_id = $1 AND alert_type = $2 "
                          "ORDER BY created_at", entity_id, alert_type)


async def queued(db: Db, doctor: factory.Doctor) -> list[asyncpg.Record]:
    """The doctor's queue of today in call order (doctor_queue: what call-next follows)."""
    return await db.fetch(
        """SELECT q.*, t.queue_joined_at AS joined FROM doctor_queue($1, hospital_today(
               (SELECT hospital_id FROM doctors WHERE doctor_id = $1))) q
           JOIN tokens t ON t.token_id = q.token_id
           WHERE q.queue_position > 0 ORDER BY q.queue_position""", doctor.doctor_id)


async def notifications(db: Db, token_ids: list[uuid.UUID], event: str) -> list[asyncpg.Record]:
    return await db.fetch("SELECT * FROM notifications_log WHERE token_id = ANY($1::uuid[]) AND event_type = $2",
                          token_ids, event)
