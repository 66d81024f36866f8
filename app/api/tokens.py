"""Token operations: issue, read, and every step of the lifecycle (all enforced in SQL)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg

from app import logs
from app.api import schemas
from app.api.auth import Principal
from app.api.errors import ApiError
from app.api.patients import find_or_create_patient
from app.api.registry import Call, api, require_found

TAG = "tokens"


def token_json(row: asyncpg.Record | dict[str, Any], base_url: str) -> dict[str, Any]:
    data = dict(row.items()) if isinstance(row, asyncpg.Record) else dict(row)
    data["tracking_url"] = f"{base_url}/t/{data['tracking_code']}"
    return data


def base_url(call: Call) -> str:
    return str(call.request.app.state.settings.base_url())


async def load_token_for(call: Call, token_id: uuid.UUID) -> asyncpg.Record:
    """The token, if the caller's hospital owns it; doctors only reach their own patients."""
    row = await call.pool.fetchrow(
        "SELECT token_id, hospital_id, doctor_id, status FROM tokens WHERE token_id = $1", token_id)
    require_found(row, "token")
    call.staff.require_hospital(row["hospital_id"], "token")
    call.staff.require_doctor(row["doctor_id"])
    return row


async def act_on_token(call: Call, token_id: uuid.UUID, function_call: str, *args: Any) -> dict[str, Any]:
    """Runs a lifecycle function (function_call names the token `t.token_id` and its own
    arguments $2, $3, ...) in the same statement that checks the caller may act on the token:
    its hospital's, and for a doctor their own patient. One statement instead of a read and then
    the change, in the request's one transaction with the credential check (issue 19); a refusal
    then asks why, to answer 404 or 403 as before."""
    hospital, doctor, request = f"${len(args) + 2}", f"${len(args) + 3}", f"${len(args) + 4}"
    own_doctor = call.staff.doctor_id if call.staff.role == "doctor" else None
    # The caller's actor argument goes through opd_request_actor(), which notes this request's id
    # for the audit trail (token_history.metadata.request_id) before the function runs.
    actor = f"${args.index(call.staff.actor_id) + 2}"
    function_call = re.sub(re.escape(actor) + r"\b", f"opd_request_actor({actor}, {request})", function_call)
    row = await call.pool.fetchrow(
        f"""SELECT f.* FROM tokens t CROSS JOIN LATERAL {function_call} f
            WHERE t.token_id = $1 AND t.hospital_id = {hospital}
              AND ({doctor}::uuid IS NULL OR t.doctor_id = {doctor})""",
        token_id, *args, call.staff.hospital_id, own_doctor, logs.REQUEST_ID.get())
    if row is None:
        await load_token_for(call, token_id)   # raises the 404 or 403 that applies
        raise ApiError(404, "token not found", code="not_found")   # it moved to another doctor meanwhile
    return token_json(row, base_url(call))


@api.op("POST", "/tokens", summary="Issue a token (walk-in, online booking or emergency)", tag=TAG,
        body=schemas.TOKEN_ISSUE, status=201, one_transaction=True)
async def issue_token(call: Call) -> dict[str, Any]:
    staff = call.staff
    staff.require_role("admin", "receptionist")
    body = call.body
    booking_type = body.get("booking_type", "WALK_IN")
    priority = body.get("priority", 3 if booking_type == "EMERGENCY" else 1)
    if booking_type == "EMERGENCY" and priority != 3:
        raise ApiError(422, "an emergency token has priority 3", code="invalid", field="priority")
    async with call.pool.acquire() as conn, conn.transaction():
        if body.get("patient_id"):
            owner = await conn.fetchval("SELECT hospital_id FROM patients WHERE patient_id = $1",
                                        body["patient_id"])
            if owner != staff.hospital_id:
                raise ApiError(404, "patient not found", code="not_found", field="patient_id")
            patient_id = body["patient_id"]
        else:
            patient_id = await find_or_create_patient(conn, staff.hospital_id, body["patient"])
        await _check_same_hospital(conn, staff, body.get("doctor_id"), body.get("dept_id"))
        row = await conn.fetchrow(
            "SELECT * FROM issue_token($1, $2, $3, $4, $5, $6, $7, $8, opd_request_actor($9, $10))",
            staff.hospital_id, patient_id, body.get("doctor_id"), body.get("dept_id"),
            booking_type, priority, body.get("scheduled_time"), body.get("visit_reason"),
            staff.actor_id, logs.REQUEST_ID.get())
    return token_json(row, base_url(call))


async def _check_same_hospital(conn: asyncpg.Connection, staff: Principal,
                               doctor_id: uuid.UUID | None, dept_id: uuid.UUID | None) -> None:
    if doctor_id is not None:
        owner = await conn.fetchval("SELECT hospital_id FROM doctors WHERE doctor_id = $1", doctor_id)
        if owner != staff.hospital_id:
            raise ApiError(404, "doctor not found", code="not_found", field="doctor_id")
    if dept_id is not None:
        owner = await conn.fetchval("SELECT hospital_id FROM departments WHERE dept_id = $1", dept_id)
        if owner != staff.hospital_id:
            raise ApiError(404, "department not found", code="not_found", field="dept_id")


@api.op("GET", "/tokens/{token_id}", summary="Read a token", tag=TAG)
async def get_token(call: Call) -> dict[str, Any]:
    token_id = call.path_id("token_id", "token")
    await load_token_for(call, token_id)
    row = await call.pool.fetchrow("SELECT * FROM tokens WHERE token_id = $1", token_id)
    return token_json(row, base_url(call))


@api.op("GET", "/tokens/{token_id}/history", summary="A token's audit trail", tag=TAG)
async def get_token_history(call: Call) -> list[dict[str, Any]]:
    token_id = call.path_id("token_id", "token")
    await load_token_for(call, token_id)
    rows = await call.pool.fetch(
        """SELECT h.history_id, h.previous_status, h.new_status, h.changed_by, u.username AS changed_by_username,
                  h.changed_by_key, h.change_reason, h.metadata, h.changed_at
           FROM token_history h LEFT JOIN staff_users u ON u.user_id = h.changed_by
           WHERE h.token_id = $1 ORDER BY h.history_id""", token_id)
    return [dict(r.items()) for r in rows]


@api.op("POST", "/tokens/{token_id}/check-in", tag=TAG, body=schemas.CHECK_IN, one_transaction=True,
        summary="Check a booked patient in: inside the geofence, or by staff override with a reason")
async def check_in(call: Call) -> dict[str, Any]:
    token_id = call.path_id("token_id", "token")
    call.staff.require_role("admin", "receptionist")
    body = call.body
    if body.get("override_reason") is None and (body.get("latitude") is None or body.get("longitude") is None):
        await load_token_for(call, token_id)   # an unknown token is 404 before the body's 422
        raise ApiError(422, "give latitude and longitude, or an override_reason", code="invalid")
    return await act_on_token(
        call, token_id, "check_in_token(t.token_id, $2, $3, $4, $5)",
        body.get("latitude"), body.get("longitude"), body.get("override_reason"), call.staff.actor_id)


async def _doctor_action(call: Call, function_call: str, *extra: Any) -> dict[str, Any]:
    return await act_on_token(call, call.path_id("token_id", "token"), function_call, *extra)


def _status_op(path: str, status: str, from_statuses: list[str], summary: str,
               body: dict[str, Any] = schemas.REASON_OPTIONAL) -> None:
    """One lifecycle step: the target status and the statuses it may start from."""
    async def handler(call: Call) -> dict[str, Any]:
        return await _doctor_action(call, "set_token_status(t.token_id, $2, $3, $4, $5)", status,
                                    call.staff.actor_id, call.body.get("reason"), from_statuses)
    handler.__name__ = f"token_{path.replace('-', '_')}"
    api.op("POST", f"/tokens/{{token_id}}/{path}", summary=summary, tag=TAG, body=body, one_transaction=True)(handler)


_status_op("call", "WAITING", ["CHECKED_IN"],
           "Call this token now (out of order, e.g. the patient who stepped out)")
_status_op("start", "IN_CONSULTATION", ["WAITING", "CHECKED_IN"], "Start the consultation")
_status_op("complete", "COMPLETED", ["IN_CONSULTATION"], "Complete the consultation")
_status_op("no-show", "NO_SHOW", ["BOOKED", "CHECKED_IN", "WAITING"], "Mark as no-show")
_status_op("requeue", "CHECKED_IN", ["WAITING", "NO_SHOW"],
           "Put back in the queue at its old place (undo a call or a no-show)")
_status_op("undo-start", "WAITING", ["IN_CONSULTATION"], "Undo 'start': back to called")
_status_op("undo-complete", "IN_CONSULTATION", ["COMPLETED"], "Undo 'complete': back in consultation")
_status_op("cancel", "CANCELLED", ["BOOKED", "CHECKED_IN", "WAITING"], "Cancel a token", body=schemas.CANCEL)


@api.op("POST", "/tokens/{token_id}/recall", summary="Announce a called token again", tag=TAG,
        body=schemas.EMPTY, one_transaction=True)
async def recall_token(call: Call) -> dict[str, Any]:
    return await _doctor_action(call, "recall_token(t.token_id, $2)", call.staff.actor_id)


@api.op("POST", "/tokens/{token_id}/transfer", summary="Move a queued token to another doctor of the department",
        tag=TAG, body=schemas.TRANSFER, one_transaction=True)
async def transfer_token(call: Call) -> dict[str, Any]:
    return await _doctor_action(call, "transfer_token(t.token_id, $2, $3, $4)",
                                call.body["to_doctor_id"], call.staff.actor_id, call.body.get("reason"))


@api.op("POST", "/tokens/{token_id}/reschedule", tag=TAG, body=schemas.RESCHEDULE, status=201, one_transaction=True,
        summary="Close as RESCHEDULED and issue a linked token for another time")
async def reschedule_token(call: Call) -> dict[str, Any]:
    token_id = call.path_id("token_id", "token")
    call.staff.require_role("admin", "receptionist", "doctor")
    return await act_on_token(
        call, token_id, "reschedule_token(t.token_id, $2, $3, $4, $5)",
        call.body["scheduled_time"], call.body.get("doctor_id"), call.staff.actor_id,
        call.body.get("reason"))


@api.op("POST", "/doctors/{doctor_id}/call-next", tag=TAG, body=schemas.CALL_NEXT, one_transaction=True,
        summary="Call the doctor's next patient (409 when nobody is waiting)")
async def call_next(call: Call) -> dict[str, Any]:
    doctor_id = call.path_id("doctor_id", "doctor")
    # The hospital check in the same statement as the call: one transaction per click (issue 19).
    row = None
    if call.staff.role != "doctor" or doctor_id == call.staff.doctor_id:
        row = await call.pool.fetchrow(
            """SELECT c.* FROM doctors d
               CROSS JOIN LATERAL call_next_token(d.doctor_id, opd_request_actor($2, $5), $3) c
               WHERE d.doctor_id = $1 AND d.hospital_id = $4""",
            doctor_id, call.staff.actor_id, call.body.get("complete_current", False), call.staff.hospital_id,
            logs.REQUEST_ID.get())
    if row is None:   # not this hospital's doctor (404), or another doctor's queue (403)
        owner = await call.pool.fetchval("SELECT hospital_id FROM doctors WHERE doctor_id = $1", doctor_id)
        call.staff.require_hospital(owner, "doctor")
        call.staff.require_doctor(doctor_id)
        raise ApiError(404, "doctor not found", code="not_found")
    return token_json(row, base_url(call))
