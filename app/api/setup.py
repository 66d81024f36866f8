"""Setting up a hospital: its departments, cabins, doctors and shifts (admin only)."""

from __future__ import annotations

import uuid
from typing import Any

from app.api import schemas
from app.api.errors import ApiError
from app.api.registry import Call, api, query_param, require_found
from app.api.validation import parse_query_date

TAG = "setup"

# table -> (primary key, SQL that yields the row's hospital_id from $1 = the primary key)
_OWNERSHIP = {
    "departments": ("dept_id", "SELECT hospital_id FROM departments WHERE dept_id = $1"),
    "cabins": ("cabin_id", "SELECT d.hospital_id FROM cabins c JOIN departments d USING (dept_id) "
                           "WHERE c.cabin_id = $1"),
    "doctors": ("doctor_id", "SELECT hospital_id FROM doctors WHERE doctor_id = $1"),
    "cabin_doctors": ("assignment_id", "SELECT d.hospital_id FROM cabin_doctors a "
                                       "JOIN doctors d USING (doctor_id) WHERE a.assignment_id = $1"),
}
_REFERENCES = {  # body field -> the table whose row it names, checked to be in the caller's hospital
    "dept_id": "departments", "primary_dept_id": "departments", "cabin_id": "cabins",
    "doctor_id": "doctors",
}


async def _check_owned(call: Call, table: str, row_id: Any, field: str | None = None) -> None:
    _, sql = _OWNERSHIP[table]
    owner = await call.pool.fetchval(sql, row_id)
    if owner != call.staff.hospital_id:
        what = table.rstrip("s").replace("cabin_doctor", "shift")
        raise ApiError(404, f"{what} not found", code="not_found", **({"field": field} if field else {}))


async def _check_references(call: Call, body: dict[str, Any]) -> None:
    for field, table in _REFERENCES.items():
        if body.get(field) is not None:
            await _check_owned(call, table, body[field], field)


async def _insert(call: Call, table: str, body: dict[str, Any]) -> dict[str, Any]:
    call.staff.require_role("admin")
    await _check_references(call, body)
    columns = list(body)
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    row = await call.pool.fetchrow(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) RETURNING *",
        *body.values())
    return dict(row.items())


async def _update(call: Call, table: str, row_id: uuid.UUID, body: dict[str, Any]) -> dict[str, Any]:
    call.staff.require_role("admin")
    await _check_owned(call, table, row_id)
    await _check_references(call, body)
    if not body:
        raise ApiError(422, "nothing to change", code="invalid")
    key = _OWNERSHIP[table][0]
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(body, start=2))
    row = await call.pool.fetchrow(f"UPDATE {table} SET {sets} WHERE {key} = $1 RETURNING *",
                                   row_id, *body.values())
    return dict(require_found(row, table).items())


# Hospital -------------------------------------------------------------------------------------
@api.op("GET", "/hospital", summary="The caller's hospital", tag=TAG)
async def get_hospital(call: Call) -> dict[str, Any]:
    row = await call.pool.fetchrow(
        """SELECT hospital_id, code, name, address, latitude, longitude, geofence_radius, timezone,
                  operating_hours, board_shows_names, announcement_languages, status,
                  called_not_seen_minutes, auto_absent_minutes, dlt_pe_id, sms_service_implicit,
                  hospital_today(hospital_id) AS today
           FROM hospitals WHERE hospital_id = $1""", call.staff.hospital_id)
    return dict(row.items())


@api.op("PATCH", "/hospital", summary="Change the caller's hospital", tag=TAG, body=schemas.HOSPITAL_PATCH)
async def patch_hospital(call: Call) -> dict[str, Any]:
    call.staff.require_role("admin")
    if not call.body:
        raise ApiError(422, "nothing to change", code="invalid")
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(call.body, start=2))
    await call.pool.execute(f"UPDATE hospitals SET {sets}, updated_at = now() WHERE hospital_id = $1",
                            call.staff.hospital_id, *call.body.values())
    return await get_hospital(call)


# Departments ----------------------------------------------------------------------------------
@api.op("GET", "/departments", summary="Departments of the caller's hospital", tag=TAG)
async def list_departments(call: Call) -> list[dict[str, Any]]:
    rows = await call.pool.fetch("SELECT * FROM departments WHERE hospital_id = $1 ORDER BY code",
                                 call.staff.hospital_id)
    return [dict(r.items()) for r in rows]


@api.op("POST", "/departments", summary="Create a department", tag=TAG, body=schemas.DEPARTMENT, status=201)
async def create_department(call: Call) -> dict[str, Any]:
    return await _insert(call, "departments", {"hospital_id": call.staff.hospital_id, **call.body})


@api.op("PATCH", "/departments/{dept_id}", summary="Change a department", tag=TAG,
        body=schemas.partial(schemas.DEPARTMENT))
async def patch_department(call: Call) -> dict[str, Any]:
    return await _update(call, "departments", call.path_id("dept_id", "department"), call.body)


# Cabins ---------------------------------------------------------------------------------------
@api.op("GET", "/cabins", summary="Cabins of the caller's hospital", tag=TAG)
async def list_cabins(call: Call) -> list[dict[str, Any]]:
    rows = await call.pool.fetch(
        """SELECT c.*, d.code AS dept_code FROM cabins c JOIN departments d USING (dept_id)
           WHERE d.hospital_id = $1 ORDER BY d.code, c.cabin_number""", call.staff.hospital_id)
    return [dict(r.items()) for r in rows]


@api.op("POST", "/cabins", summary="Create a cabin", tag=TAG, body=schemas.CABIN, status=201)
async def create_cabin(call: Call) -> dict[str, Any]:
    return await _insert(call, "cabins", call.body)


@api.op("PATCH", "/cabins/{cabin_id}", summary="Change a cabin", tag=TAG, body=schemas.partial(schemas.CABIN))
async def patch_cabin(call: Call) -> dict[str, Any]:
    return await _update(call, "cabins", call.path_id("cabin_id", "cabin"), call.body)


# Doctors --------------------------------------------------------------------------------------
@api.op("GET", "/doctors", summary="Doctors of a hospital, with today's cabin when on shift", tag=TAG,
        query=[query_param("hospital", "hospital code, e.g. DEMO (defaults to the caller's)")])
async def list_doctors(call: Call) -> list[dict[str, Any]]:
    code = call.query("hospital")
    if code:
        owner = await call.pool.fetchval("SELECT hospital_id FROM hospitals WHERE code = $1", code)
        if owner is None:
            raise ApiError(404, f"hospital {code!r} not found", code="not_found")
        call.staff.require_hospital(owner, "hospital")
    rows = await call.pool.fetch(
        """SELECT d.doctor_id, d.name, d.emp_code, d.specialization, d.primary_dept_id AS dept_id,
                  dep.code AS dept_code, d.status, d.paused_at IS NOT NULL AS paused,
                  d.avg_consultation_time, d.max_tokens_per_session,
                  s.cabin_id, c.cabin_number, s.shift_start_time, s.shift_end_time
           FROM doctors d
           JOIN departments dep ON dep.dept_id = d.primary_dept_id
           LEFT JOIN LATERAL doctor_shift(d.doctor_id, hospital_today(d.hospital_id), opd_now()) s ON true
           LEFT JOIN cabins c ON c.cabin_id = s.cabin_id
           WHERE d.hospital_id = $1 ORDER BY dep.code, d.name""", call.staff.hospital_id)
    return [dict(r.items()) for r in rows]


@api.op("POST", "/doctors", summary="Create a doctor", tag=TAG, body=schemas.DOCTOR, status=201)
async def create_doctor(call: Call) -> dict[str, Any]:
    return await _insert(call, "doctors", {"hospital_id": call.staff.hospital_id, **call.body})


@api.op("PATCH", "/doctors/{doctor_id}", summary="Change a doctor", tag=TAG,
        body=schemas.partial(schemas.DOCTOR))
async def patch_doctor(call: Call) -> dict[str, Any]:
    return await _update(call, "doctors", call.path_id("doctor_id", "doctor"), call.body)


async def _pause(call: Call, paused: bool) -> dict[str, Any]:
    doctor_id = call.path_id("doctor_id", "doctor")
    await _check_owned(call, "doctors", doctor_id)
    call.staff.require_doctor(doctor_id)
    row = await call.pool.fetchrow("SELECT doctor_id, paused_at FROM set_doctor_paused($1, $2)",
                                   doctor_id, paused)
    return {"doctor_id": row["doctor_id"], "paused": row["paused_at"] is not None,
            "paused_at": row["paused_at"]}


@api.op("POST", "/doctors/{doctor_id}/pause", summary="Start a break: calls are refused until resumed",
        tag=TAG, body=schemas.EMPTY)
async def pause_doctor(call: Call) -> dict[str, Any]:
    return await _pause(call, True)


@api.op("POST", "/doctors/{doctor_id}/resume", summary="End a break", tag=TAG, body=schemas.EMPTY)
async def resume_doctor(call: Call) -> dict[str, Any]:
    return await _pause(call, False)


# Shifts (cabin_doctors) -----------------------------------------------------------------------
@api.op("GET", "/shifts", summary="Shifts of a day (default: the hospital's today)", tag=TAG,
        query=[query_param("date", "YYYY-MM-DD", schema={"type": "string", "format": "date"})])
async def list_shifts(call: Call) -> list[dict[str, Any]]:
    day = parse_query_date(call.query("date"))
    rows = await call.pool.fetch(
        """SELECT a.*, d.name AS doctor_name, c.cabin_number
           FROM cabin_doctors a JOIN doctors d USING (doctor_id) JOIN cabins c USING (cabin_id)
           WHERE d.hospital_id = $1 AND a.shift_date = COALESCE($2, hospital_today($1))
           ORDER BY c.cabin_number, a.shift_start_time""", call.staff.hospital_id, day)
    return [dict(r.items()) for r in rows]


@api.op("POST", "/shifts", summary="Put a doctor in a cabin for a shift", tag=TAG, body=schemas.SHIFT,
        status=201)
async def create_shift(call: Call) -> dict[str, Any]:
    return await _insert(call, "cabin_doctors", call.body)


@api.op("POST", "/shifts/copy-week", tag=TAG, body=schemas.COPY_WEEK,
        summary="Copy the 7 days of shifts from one date onto the 7 days from another (overlaps skipped)")
async def copy_week(call: Call) -> dict[str, Any]:
    call.staff.require_role("admin")
    row = await call.pool.fetchrow("SELECT * FROM copy_roster_week($1, $2, $3)", call.staff.hospital_id,
                                   call.body["from_date"], call.body["to_date"])
    return {"copied": row["copied"], "skipped": row["skipped"]}


@api.op("PATCH", "/shifts/{assignment_id}", summary="Change a shift (e.g. status ACTIVE when it starts)",
        tag=TAG, body=schemas.partial(schemas.SHIFT))
async def patch_shift(call: Call) -> dict[str, Any]:
    return await _update(call, "cabin_doctors", call.path_id("assignment_id", "shift"), call.body)
