"""Queue snapshots straight from the database (the live topics carry the same shapes)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from app.api.errors import ApiError
from app.api.registry import Call, api
from app.jsonutil import strip_private

TAG = "queues"




async def read_doctor_queue(conn: asyncpg.Connection | asyncpg.Pool, doctor_id: uuid.UUID) -> dict[str, Any] | None:
    snapshot: dict[str, Any] | None = await conn.fetchval(
        """SELECT doctor_queue_snapshot(d.doctor_id, hospital_today(d.hospital_id), false)
           FROM doctors d WHERE d.doctor_id = $1""", doctor_id)
    return snapshot


@api.op("GET", "/queues/doctors/{doctor_id}", tag=TAG,
        summary="A doctor's queue today: now serving, and every waiting token with position and ETA")
async def doctor_queue(call: Call) -> dict[str, Any]:
    doctor_id = call.path_id("doctor_id", "doctor")
    snapshot = await read_doctor_queue(call.pool, doctor_id)
    if snapshot is None:
        raise ApiError(404, "doctor not found", code="not_found")
    call.staff.require_hospital(uuid.UUID(snapshot["hospital_id"]), "doctor")
    call.staff.require_doctor(doctor_id)  # the queue names patients: a doctor sees only their own
    result: dict[str, Any] = strip_private(snapshot)
    return result


@api.op("GET", "/queues/departments/{dept_id}", tag=TAG,
        summary="Every queue of a department today, one per doctor on shift")
async def department_queue(call: Call) -> dict[str, Any]:
    dept_id = call.path_id("dept_id", "department")
    dept = await call.pool.fetchrow(
        "SELECT dept_id, hospital_id, code, name, color_code FROM departments WHERE dept_id = $1", dept_id)
    if dept is None:
        raise ApiError(404, "department not found", code="not_found")
    call.staff.require_hospital(dept["hospital_id"], "department")
    call.staff.require_role("admin", "receptionist")  # every doctor's patients, by name
    rows = await call.pool.fetch(
        """SELECT doctor_queue_snapshot(d.doctor_id, hospital_today(d.hospital_id), false) AS q
           FROM doctors d
           WHERE d.primary_dept_id = $1
             AND EXISTS (SELECT 1 FROM cabin_doctors a WHERE a.doctor_id = d.doctor_id
                         AND a.shift_date = hospital_today(d.hospital_id) AND a.status <> 'CANCELLED')
           ORDER BY d.name""", dept_id)
    queues = [strip_private(r["q"]) for r in rows]
    return {**dict(dept.items()), "queues": queues,
            "waiting_count": sum(len(q["waiting"]) for q in queues)}
