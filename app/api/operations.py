"""Operations: doctor leave with redistribution, alerts and their remedy, daily doctor metrics."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app import clock
from app.api import schemas
from app.api.errors import ApiError
from app.api.registry import Call, api, query_param
from app.api.validation import parse_query_date, parse_uuid

TAG = "operations"
EXCEPTION_TYPES = ["PLANNED_LEAVE", "UNPLANNED_LEAVE", "EMERGENCY", "TRAINING", "SURGERY"]
LEAVE = schemas.obj({
    "exception_type": {"type": "string", "enum": EXCEPTION_TYPES},
    "start_datetime": schemas.DATE_TIME,
    "end_datetime": schemas.DATE_TIME,
    "reason": {"type": "string", "maxLength": 500},
}, ["exception_type", "end_datetime"])
METRICS_DAY = schemas.obj({"date": {"type": "string", "format": "date"}})
MAX_METRIC_DAYS = 366


async def _doctor_of_caller(call: Call, doctor_id: Any) -> None:
    owner = await call.pool.fetchval("SELECT hospital_id FROM doctors WHERE doctor_id = $1", doctor_id)
    call.staff.require_hospital(owner, "doctor")


@api.op("POST", "/doctors/{doctor_id}/leave", tag=TAG, body=LEAVE, status=201,
        summary="Record a doctor's leave; unless it awaits approval, move the affected patients now")
async def record_leave(call: Call) -> dict[str, Any]:
    doctor_id = call.path_id("doctor_id", "doctor")
    await _doctor_of_caller(call, doctor_id)
    call.staff.require_role("admin", "receptionist", "doctor")
    call.staff.require_doctor(doctor_id)
    body = call.body
    start = body.get("start_datetime") or clock.now()   # "an unplanned leave starting now"
    if body["end_datetime"] <= start:
        raise ApiError(422, "end_datetime must be after start_datetime", code="invalid", field="end_datetime")
    row = await call.pool.fetchrow(
        "SELECT * FROM record_schedule_exception($1, $2, $3, $4, $5, $6)",
        doctor_id, body["exception_type"], start, body["end_datetime"], body.get("reason"), call.staff.actor_id)
    return dict(row.items())


@api.op("GET", "/leave", summary="Schedule exceptions of the caller's hospital", tag=TAG,
        query=[query_param("pending", "only those awaiting approval: true/false")])
async def list_leave(call: Call) -> list[dict[str, Any]]:
    rows = await call.pool.fetch(
        """SELECT e.*, d.name AS doctor_name FROM schedule_exceptions e JOIN doctors d USING (doctor_id)
           WHERE d.hospital_id = $1 AND ($2::boolean IS NOT TRUE OR (e.needs_approval AND e.approved_at IS NULL))
           ORDER BY e.start_datetime DESC LIMIT 500""",
        call.staff.hospital_id, call.query("pending") == "true")
    return [dict(r.items()) for r in rows]


@api.op("POST", "/leave/{exception_id}/approve", summary="Approve a leave and move its patients", tag=TAG,
        body=schemas.EMPTY)
async def approve_leave(call: Call) -> dict[str, Any]:
    call.staff.require_role("admin")
    exception_id = call.path_id("exception_id", "leave")
    owner = await call.pool.fetchval(
        """SELECT d.hospital_id FROM schedule_exceptions e JOIN doctors d USING (doctor_id)
           WHERE e.exception_id = $1""", exception_id)
    call.staff.require_hospital(owner, "leave")
    row = await call.pool.fetchrow("SELECT * FROM approve_schedule_exception($1, $2)", exception_id,
                                   call.staff.actor_id)
    return dict(row.items())


@api.op("GET", "/leave/{exception_id}/preview", tag=TAG,
        summary="Who approving a leave would move, and to whom (nothing is changed)")
async def preview_leave(call: Call) -> list[dict[str, Any]]:
    call.staff.require_role("admin")
    exception_id = call.path_id("exception_id", "leave")
    owner = await call.pool.fetchval(
        """SELECT d.hospital_id FROM schedule_exceptions e JOIN doctors d USING (doctor_id)
           WHERE e.exception_id = $1""", exception_id)
    call.staff.require_hospital(owner, "leave")
    rows = await call.pool.fetch("SELECT * FROM preview_schedule_exception($1)", exception_id)
    return [dict(r.items()) for r in rows]


@api.op("GET", "/alerts", summary="Open alerts (or all of a day with ?all=true)", tag=TAG,
        query=[query_param("all", "include resolved alerts: true/false")])
async def list_alerts(call: Call) -> list[dict[str, Any]]:
    rows = await call.pool.fetch(
        """SELECT * FROM system_alerts WHERE hospital_id = $1 AND ($2 OR NOT is_resolved)
           ORDER BY created_at DESC LIMIT 500""", call.staff.hospital_id, call.query("all") == "true")
    return [dict(r.items()) for r in rows]


@api.op("POST", "/alerts/check", summary="Run the bottleneck check now", tag=TAG, body=schemas.EMPTY)
async def check_alerts(call: Call) -> dict[str, Any]:
    call.staff.require_role("admin", "receptionist")
    open_count = await call.pool.fetchval("SELECT check_hospital_alerts($1)", call.staff.hospital_id)
    return {"open_alerts": open_count}


@api.op("POST", "/departments/{dept_id}/rebalance", tag=TAG, body=schemas.EMPTY,
        summary="Even out the department's queues: move waiting patients from the longest to the shortest")
async def rebalance(call: Call) -> dict[str, Any]:
    call.staff.require_role("admin", "receptionist")
    dept_id = call.path_id("dept_id", "department")
    owner = await call.pool.fetchval("SELECT hospital_id FROM departments WHERE dept_id = $1", dept_id)
    call.staff.require_hospital(owner, "department")
    moved = await call.pool.fetchval("SELECT rebalance_department($1, $2)", dept_id, call.staff.actor_id)
    return {"moved": moved}


@api.op("GET", "/metrics/doctors", tag=TAG,
        summary="Daily doctor metrics for a date range (default: the last 14 days)",
        query=[query_param("from", "first day YYYY-MM-DD"), query_param("to", "last day YYYY-MM-DD"),
               query_param("doctor_id", "one doctor only")])
async def doctor_metrics(call: Call) -> list[dict[str, Any]]:
    today = await call.pool.fetchval("SELECT hospital_today($1)", call.staff.hospital_id)
    last = parse_query_date(call.query("to"), today)
    first = parse_query_date(call.query("from"), last - dt.timedelta(days=13) if last else None)
    assert first is not None and last is not None
    if first > last or (last - first).days > MAX_METRIC_DAYS:
        raise ApiError(422, f"give from <= to, at most {MAX_METRIC_DAYS} days apart", code="invalid")
    doctor = call.query("doctor_id")
    doctor_id = parse_uuid(doctor, "doctor") if doctor else None
    rows = await call.pool.fetch(
        """SELECT m.*, d.name AS doctor_name, dep.code AS dept_code
           FROM doctor_performance_metrics m JOIN doctors d USING (doctor_id)
           JOIN departments dep ON dep.dept_id = d.primary_dept_id
           WHERE d.hospital_id = $1 AND m.metric_date BETWEEN $2 AND $3 AND ($4::uuid IS NULL OR m.doctor_id = $4)
           ORDER BY m.metric_date, dep.code, d.name""", call.staff.hospital_id, first, last, doctor_id)
    return [dict(r.items()) for r in rows]


@api.op("POST", "/metrics/compute", summary="(Re)compute the daily doctor metrics of a day (default today)",
        tag=TAG, body=METRICS_DAY)
async def compute_metrics(call: Call) -> dict[str, Any]:
    call.staff.require_role("admin")
    day = call.body.get("date") or await call.pool.fetchval("SELECT hospital_today($1)", call.staff.hospital_id)
    count = await call.pool.fetchval("SELECT compute_doctor_metrics($1, $2)", call.staff.hospital_id, day)
    return {"date": day, "doctors": count}

