"""Notices on the hospital's boards and door displays ("Dr. Mehta's OPD starts at 11:00 today"):
posted by reception or an admin, shown until they end or are removed (sql: post_board_notice,
hospital_layout). The text is public: the whole hall reads it."""

from __future__ import annotations

from typing import Any

from app import clock
from app.api import schemas
from app.api.errors import ApiError
from app.api.registry import Call, api

TAG = "notices"
NOTICE_TEXT: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 200}
NOTICE = schemas.obj({
    "text_en": NOTICE_TEXT,
    "text_hi": {"type": ["string", "null"], "maxLength": 200},
    "dept_id": schemas.UUID_OR_NULL,
    "starts_at": schemas.DATE_TIME,
    "ends_at": schemas.DATE_TIME,
}, ["text_en", "ends_at"])
_COLUMNS = """n.notice_id, n.dept_id, d.code AS dept_code, n.text_en, n.text_hi, n.starts_at, n.ends_at,
              n.created_at, n.removed_at"""


@api.op("GET", "/board-notices", tag=TAG, summary="The hospital's notices on the boards that have not ended")
async def list_notices(call: Call) -> list[dict[str, Any]]:
    call.staff.require_role("admin", "receptionist")
    rows = await call.pool.fetch(
        f"""SELECT {_COLUMNS} FROM board_notices n LEFT JOIN departments d USING (dept_id)
            WHERE n.hospital_id = $1 AND n.removed_at IS NULL AND n.ends_at > opd_now()
            ORDER BY n.starts_at, n.notice_id""", call.staff.hospital_id)
    return [dict(r.items()) for r in rows]


@api.op("POST", "/board-notices", tag=TAG, body=NOTICE, status=201,
        summary="Put a notice on the boards (all of the hospital's, or one department's) until ends_at")
async def post_notice(call: Call) -> dict[str, Any]:
    call.staff.require_role("admin", "receptionist")
    body = call.body
    if not body["text_en"].strip():
        raise ApiError(422, "text_en must not be empty", code="invalid", field="text_en")
    starts = body.get("starts_at") or clock.now()
    if body["ends_at"] <= max(starts, clock.now()):
        raise ApiError(422, "ends_at must be in the future and after starts_at", code="invalid", field="ends_at")
    row = await call.pool.fetchrow(
        "SELECT * FROM post_board_notice($1, $2, $3, $4, $5, $6, $7)", call.staff.hospital_id,
        body.get("dept_id"), body["text_en"], body.get("text_hi"), starts, body["ends_at"], call.staff.actor_id)
    return dict(row.items())


@api.op("POST", "/board-notices/{notice_id}/remove", tag=TAG, body=schemas.EMPTY,
        summary="Take a notice off the boards now")
async def remove_notice(call: Call) -> dict[str, Any]:
    call.staff.require_role("admin", "receptionist")
    notice_id = call.path_id("notice_id", "notice")
    row = await call.pool.fetchrow(
        """UPDATE board_notices SET removed_at = opd_now(), removed_by = $3
           WHERE notice_id = $1 AND hospital_id = $2 AND removed_at IS NULL RETURNING *""",
        notice_id, call.staff.hospital_id, call.staff.actor_id)
    if row is None:
        raise ApiError(404, "notice not found (or already removed)", code="not_found")
    return dict(row.items())
