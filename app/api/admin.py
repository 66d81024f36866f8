"""Administration: staff accounts, paired displays and API keys of the caller's hospital."""

from __future__ import annotations

from typing import Any

from app.api import schemas
from app.api.auth import create_api_key
from app.api.errors import ApiError
from app.api.registry import Call, api, require_found
from app.security.accounts import USER_COLUMNS, create_user
from app.security.pairing import confirm_pairing
from app.security.passwords import MIN_PASSWORD_LENGTH, hash_password

TAG = "admin"
PASSWORD = {"type": "string", "minLength": MIN_PASSWORD_LENGTH, "maxLength": 200}
USER_NEW = schemas.obj({
    "username": {"type": "string", "pattern": r"^[A-Za-z0-9_.@-]{3,64}$"},
    "password": PASSWORD,
    "role": {"type": "string", "enum": ["admin", "receptionist", "doctor"]},
    "doctor_id": schemas.UUID_OR_NULL,
}, ["username", "password", "role"])
USER_PATCH = schemas.obj({"password": PASSWORD, "is_active": {"type": "boolean"},
                          "logout_everywhere": {"type": "boolean"}})
PAIR = schemas.obj({"code": {"type": "string", "pattern": r"^\s*\d{3}\s?\d{3}\s*$"},
                    "label": {"type": "string", "minLength": 1, "maxLength": 100}}, ["code", "label"])
KEY_NEW = schemas.obj({"role": {"type": "string", "enum": ["admin", "receptionist", "doctor"]},
                       "doctor_id": schemas.UUID_OR_NULL,
                       "label": {"type": "string", "maxLength": 100}}, ["role"])





@api.op("GET", "/users", summary="Staff accounts", tag=TAG)
async def list_users(call: Call) -> list[dict[str, Any]]:
    call.staff.require_role("admin")
    rows = await call.pool.fetch(f"SELECT {USER_COLUMNS} FROM staff_users WHERE hospital_id = $1 ORDER BY username",
                                 call.staff.hospital_id)
    return [dict(r.items()) for r in rows]


@api.op("POST", "/users", summary="Create a staff account", tag=TAG, body=USER_NEW, status=201)
async def post_user(call: Call) -> dict[str, Any]:
    call.staff.require_role("admin")
    async with call.pool.acquire() as conn:
        return await create_user(conn, call.staff.hospital_id, call.body["username"], call.body["password"],
                                 call.body["role"], call.body.get("doctor_id"))


@api.op("PATCH", "/users/{user_id}", summary="Reset a password, deactivate, or end every session",
        tag=TAG, body=USER_PATCH)
async def patch_user(call: Call) -> dict[str, Any]:
    call.staff.require_role("admin")
    user_id = call.path_id("user_id", "user")
    body = call.body
    row = await call.pool.fetchrow(
        f"""UPDATE staff_users SET
               password_hash = COALESCE($3, password_hash),
               is_active = COALESCE($4, is_active),
               failed_logins = CASE WHEN $3 IS NULL THEN failed_logins ELSE 0 END,
               locked_until = CASE WHEN $3 IS NULL THEN locked_until END,
               sessions_valid_after = CASE WHEN $5 OR $4 = false OR $3 IS NOT NULL THEN now()
                                           ELSE sessions_valid_after END
            WHERE user_id = $1 AND hospital_id = $2 RETURNING {USER_COLUMNS}""",
        user_id, call.staff.hospital_id,
        hash_password(body["password"]) if "password" in body else None,
        body.get("is_active"), bool(body.get("logout_everywhere")))
    return dict(require_found(row, "user").items())


@api.op("GET", "/displays", summary="Paired TV boards and door displays", tag=TAG)
async def list_displays(call: Call) -> list[dict[str, Any]]:
    call.staff.require_role("admin")
    rows = await call.pool.fetch(
        """SELECT device_id, label, paired_at, last_seen_at, revoked_at FROM display_devices
           WHERE hospital_id = $1 ORDER BY paired_at DESC""", call.staff.hospital_id)
    return [dict(r.items()) for r in rows]


@api.op("POST", "/displays/pair", summary="Confirm the code a screen shows, pairing it to this hospital",
        tag=TAG, body=PAIR, status=201)
async def pair_display(call: Call) -> dict[str, Any]:
    call.staff.require_role("admin")
    row = await confirm_pairing(call.pool, call.staff.hospital_id, call.body["code"], call.body["label"],
                                call.staff.actor_id)
    if row is None:
        raise ApiError(404, "no screen is showing that code (codes expire after 30 minutes)",
                       code="not_found", field="code")
    return dict(row.items())


@api.op("POST", "/displays/{device_id}/revoke", summary="Unpair a display at once", tag=TAG,
        body=schemas.EMPTY)
async def revoke_display(call: Call) -> dict[str, Any]:
    call.staff.require_role("admin")
    row = await call.pool.fetchrow(
        """UPDATE display_devices SET revoked_at = COALESCE(revoked_at, now())
           WHERE device_id = $1 AND hospital_id = $2 RETURNING device_id, label, revoked_at""",
        call.path_id("device_id", "display"), call.staff.hospital_id)
    return dict(require_found(row, "display").items())


@api.op("GET", "/api-keys", summary="API keys (never the keys themselves)", tag=TAG)
async def list_api_keys(call: Call) -> list[dict[str, Any]]:
    call.staff.require_role("admin")
    rows = await call.pool.fetch(
        """SELECT key_id, key_prefix, role, doctor_id, label, created_at, last_used_at, revoked_at
           FROM api_keys WHERE hospital_id = $1 ORDER BY created_at DESC""", call.staff.hospital_id)
    return [dict(r.items()) for r in rows]


@api.op("POST", "/api-keys", summary="Create an API key; the key is in this response only", tag=TAG,
        body=KEY_NEW, status=201)
async def post_api_key(call: Call) -> dict[str, Any]:
    call.staff.require_role("admin")
    body = call.body
    if (body["role"] == "doctor") != (body.get("doctor_id") is not None):
        raise ApiError(422, "a doctor key needs doctor_id, and only a doctor key has one",
                       code="invalid", field="doctor_id")
    async with call.pool.acquire() as conn:
        if body.get("doctor_id"):
            owner = await conn.fetchval("SELECT hospital_id FROM doctors WHERE doctor_id = $1", body["doctor_id"])
            if owner != call.staff.hospital_id:
                raise ApiError(404, "doctor not found", code="not_found", field="doctor_id")
        key_id, key = await create_api_key(conn, call.staff.hospital_id, role=body["role"],
                                           doctor_id=body.get("doctor_id"), label=body.get("label", ""))
    return {"key_id": key_id, "key": key, "role": body["role"], "label": body.get("label", "")}


@api.op("POST", "/api-keys/{key_id}/revoke", summary="Revoke an API key at once", tag=TAG,
        body=schemas.EMPTY)
async def revoke_api_key(call: Call) -> dict[str, Any]:
    call.staff.require_role("admin")
    row = await call.pool.fetchrow(
        """UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now())
           WHERE key_id = $1 AND hospital_id = $2 RETURNING key_id, key_prefix, revoked_at""",
        call.path_id("key_id", "API key"), call.staff.hospital_id)
    return dict(require_found(row, "API key").items())
