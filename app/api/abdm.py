"""ABDM Scan & Share (docs/abdm.md).

- The bridge callback the ABDM gateway calls when a patient shares their profile at one of the
  hospital's counters: `POST /api/v3/hip/patient/share` (ABDM's own path). The gateway's bearer
  JWT is checked against its published keys; the share is recorded, a token issued (or the
  failure recorded) and the on-share reply written to its outbox in one transaction
  (sql: abdm_receive_share); the answer is 202 at once and the reply follows (app/abdm/on_share.py).
- The admin's side: the hospital's HIP id and its counters (QR code -> department, optionally a
  doctor), and the shares received today.
"""

from __future__ import annotations

import uuid
from typing import Any

from app import clock
from app.abdm import on_share
from app.abdm.gateway import GatewayError
from app.abdm.gateway_jwt import GatewayTokenRefused
from app.abdm.share import CODE, ShareInvalid, read_share
from app.api import schemas
from app.api.errors import ApiError
from app.api.registry import Call, api, query_param
from app.api.validation import parse_query_date

TAG = "abdm"
REPEAT_MINUTES = 60       # the same patient at the same counter gets the same token back this long ...
TOKEN_EXPIRY_S = 3600     # ... which is what the on-share tells the ABHA app the number is good for
SHARE_BODY = {
    "type": "object",
    "description": "ABDM v3 profile share: intent PROFILE_SHARE, metaData {hipId, context, hprId, "
                   "latitude, longitude}, profile.patient {abhaNumber, abhaAddress, name, gender, "
                   "dayOfBirth, monthOfBirth, yearOfBirth, address, phoneNumber}",
    "properties": {"intent": {"type": "string"}, "metaData": {"type": "object"},
                   "profile": {"type": "object"}},
}
COUNTER_FIELDS: dict[str, Any] = {
    "context": {"type": "string", "pattern": CODE.pattern, "maxLength": 50},
    "label": {"type": "string", "minLength": 1, "maxLength": 100},
    "dept_id": schemas.UUID,
    "doctor_id": schemas.UUID_OR_NULL,
    "active": {"type": "boolean"},
}
COUNTER_NEW = schemas.obj({k: COUNTER_FIELDS[k] for k in ("context", "label", "dept_id", "doctor_id")},
                          ["context", "label", "dept_id"])
COUNTER_CHANGE = schemas.obj({k: COUNTER_FIELDS[k] for k in ("label", "dept_id", "doctor_id", "active")}, [])
FACILITY = schemas.obj({"hip_id": {"type": ["string", "null"], "pattern": CODE.pattern, "maxLength": 50}},
                       ["hip_id"])


@api.op("POST", "/hip/patient/share", prefix="/api/v3", tag=TAG, auth=False, body=SHARE_BODY, status=202,
        summary="ABDM gateway callback: a patient shared their ABHA profile at a counter (Scan & Share)",
        responses={401: "not signed by the ABDM gateway", 404: "Scan & Share is not set up on this server",
                   422: "the share lacks what a token needs"})
async def receive_share(call: Call) -> dict[str, Any]:
    gateway = call.request.app.state.abdm_gateway
    if gateway is None:
        raise ApiError(404, "ABDM Scan & Share is not set up on this server (OPD_ABDM_GATEWAY_URL)",
                       code="not_found")
    headers = call.request.headers
    try:
        await gateway.verify_caller(headers.get("authorization"))
    except GatewayTokenRefused as exc:
        raise ApiError(401, f"not the ABDM gateway: {exc}", code="unauthorized") from None
    except GatewayError:
        raise ApiError(503, "the ABDM gateway's keys cannot be read now", code="unavailable") from None
    request_id = (headers.get("request-id") or "").strip()
    if not request_id or len(request_id) > 64 or "\x00" in request_id:
        raise ApiError(422, "the REQUEST-ID header is missing", code="invalid", field="REQUEST-ID")
    try:
        profile = read_share(call.body, headers.get("x-hip-id"), clock.now().date())
    except ShareInvalid as exc:
        raise ApiError(422, exc.message, code="invalid", field=exc.field) from None
    share = await call.pool.fetchrow(
        "SELECT * FROM abdm_receive_share($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        request_id, profile.hip_id, profile.context, profile.abha_number, profile.abha_address,
        profile.name, profile.gender, profile.birth_year, profile.birth_date, profile.phone,
        profile.address, TOKEN_EXPIRY_S, REPEAT_MINUTES)
    on_share.wake.set()  # this process's sender, if it runs one, replies at once
    return {"status": "ACCEPTED", "share": share["status"]}


@api.op("GET", "/abdm", tag=TAG, summary="The hospital's ABDM facility (HIP id) and whether Scan & Share is on")
async def get_facility(call: Call) -> dict[str, Any]:
    call.staff.require_role("admin", "receptionist")
    hip_id = await call.pool.fetchval("SELECT abdm_hip_id FROM hospitals WHERE hospital_id = $1",
                                      call.staff.hospital_id)
    settings = call.request.app.state.settings
    return {"hip_id": hip_id, "gateway_configured": call.request.app.state.abdm_gateway is not None,
            "share_url": settings.abdm_share_url}


@api.op("PUT", "/abdm", tag=TAG, body=FACILITY, summary="Set the hospital's HIP id (its facility id in HFR)")
async def set_facility(call: Call) -> dict[str, Any]:
    call.staff.require_role("admin")
    hip_id = call.body["hip_id"]
    taken = hip_id is not None and await call.pool.fetchval(
        "SELECT 1 FROM hospitals WHERE abdm_hip_id = $1 AND hospital_id <> $2", hip_id, call.staff.hospital_id)
    if taken:
        raise ApiError(409, f"HIP id {hip_id} belongs to another hospital here", code="conflict", field="hip_id")
    await call.pool.execute("UPDATE hospitals SET abdm_hip_id = $2 WHERE hospital_id = $1",
                            call.staff.hospital_id, hip_id)
    return await get_facility(call)


_COUNTER_COLUMNS = """c.counter_id, c.context, c.label, c.dept_id, d.code AS dept_code, d.name AS dept_name,
                      c.doctor_id, doc.name AS doctor_name, c.active"""


async def _counter(call: Call, counter_id: uuid.UUID) -> dict[str, Any]:
    row = await call.pool.fetchrow(
        f"""SELECT {_COUNTER_COLUMNS} FROM abdm_counters c JOIN departments d USING (dept_id)
            LEFT JOIN doctors doc ON doc.doctor_id = c.doctor_id
            WHERE c.counter_id = $1 AND c.hospital_id = $2""", counter_id, call.staff.hospital_id)
    if row is None:
        raise ApiError(404, "counter not found", code="not_found")
    return dict(row.items())


@api.op("GET", "/abdm/counters", tag=TAG, summary="The hospital's Scan & Share counters")
async def list_counters(call: Call) -> list[dict[str, Any]]:
    call.staff.require_role("admin", "receptionist")
    rows = await call.pool.fetch(
        f"""SELECT {_COUNTER_COLUMNS} FROM abdm_counters c JOIN departments d USING (dept_id)
            LEFT JOIN doctors doc ON doc.doctor_id = c.doctor_id
            WHERE c.hospital_id = $1 ORDER BY c.active DESC, c.context""", call.staff.hospital_id)
    return [dict(r.items()) for r in rows]


async def _check_target(call: Call, dept_id: uuid.UUID | None, doctor_id: uuid.UUID | None) -> None:
    if dept_id is not None and not await call.pool.fetchval(
            "SELECT 1 FROM departments WHERE dept_id = $1 AND hospital_id = $2", dept_id, call.staff.hospital_id):
        raise ApiError(404, "department not found", code="not_found", field="dept_id")
    if doctor_id is not None and not await call.pool.fetchval(
            "SELECT 1 FROM doctors WHERE doctor_id = $1 AND hospital_id = $2", doctor_id, call.staff.hospital_id):
        raise ApiError(404, "doctor not found", code="not_found", field="doctor_id")


@api.op("POST", "/abdm/counters", tag=TAG, body=COUNTER_NEW, status=201,
        summary="Add a counter: its code (the QR's counter-id) and the department its tokens go to")
async def add_counter(call: Call) -> dict[str, Any]:
    call.staff.require_role("admin")
    body = call.body
    await _check_target(call, body["dept_id"], body.get("doctor_id"))
    counter_id = await call.pool.fetchval(
        """INSERT INTO abdm_counters (hospital_id, context, label, dept_id, doctor_id)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hospital_id, context) DO NOTHING RETURNING counter_id""",
        call.staff.hospital_id, body["context"], body["label"].strip(), body["dept_id"], body.get("doctor_id"))
    if counter_id is None:
        raise ApiError(409, f"counter {body['context']} exists already", code="conflict", field="context")
    return await _counter(call, counter_id)


@api.op("PATCH", "/abdm/counters/{counter_id}", tag=TAG, body=COUNTER_CHANGE,
        summary="Change a counter (label, department, doctor) or close it (active false)")
async def change_counter(call: Call) -> dict[str, Any]:
    call.staff.require_role("admin")
    counter_id = call.path_id("counter_id", "counter")
    await _counter(call, counter_id)
    body = call.body
    await _check_target(call, body.get("dept_id"), body.get("doctor_id"))
    changes = {k: v for k, v in body.items() if k in ("label", "dept_id", "doctor_id", "active")}
    if "label" in changes:
        changes["label"] = changes["label"].strip()
    if changes:
        columns = list(changes)
        assignments = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=3))
        await call.pool.execute(f"UPDATE abdm_counters SET {assignments} WHERE counter_id = $1 AND hospital_id = $2",
                                counter_id, call.staff.hospital_id, *changes.values())
    return await _counter(call, counter_id)


@api.op("GET", "/abdm/shares", tag=TAG, summary="Profile shares received on a day (default today), newest first",
        query=[query_param("date", "the hospital's day, YYYY-MM-DD", schema={"type": "string", "format": "date"})])
async def list_shares(call: Call) -> list[dict[str, Any]]:
    call.staff.require_role("admin", "receptionist")
    day = parse_query_date(call.query("date"))
    rows = await call.pool.fetch(
        """SELECT s.share_id, s.received_at, s.status, s.reason, s.token_id, s.token_number,
                  s.repeat_of IS NOT NULL AS repeat, c.context, c.label AS counter_label,
                  p.name AS patient_name, s.abha_address, s.sent_at IS NOT NULL AS answered,
                  s.gave_up_at IS NOT NULL AS gave_up, s.attempts, s.last_error
           FROM abdm_shares s LEFT JOIN abdm_counters c USING (counter_id)
           LEFT JOIN patients p ON p.patient_id = s.patient_id
           WHERE s.hospital_id = $1 AND s.share_day = COALESCE($2, hospital_today($1))
           ORDER BY s.received_at DESC LIMIT 200""", call.staff.hospital_id, day)
    return [dict(r.items()) for r in rows]
