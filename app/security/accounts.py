"""Staff accounts: creating one (the admin page, the first admin from the command line, the
demo). Who is signed in is app/security/identity.py."""

from __future__ import annotations

from typing import Any

import asyncpg

from app.errors import ApiError
from app.security.passwords import hash_password

USER_COLUMNS = """user_id, username, role, doctor_id, is_active, failed_logins, locked_until,
                   created_at"""


async def create_user(conn: asyncpg.Connection, hospital_id: Any, username: str, password: str,
                      role: str, doctor_id: Any = None) -> dict[str, Any]:
    if (role == "doctor") != (doctor_id is not None):
        raise ApiError(422, "a doctor account needs doctor_id, and only a doctor account has one",
                       code="invalid", field="doctor_id")
    if doctor_id is not None:
        owner = await conn.fetchval("SELECT hospital_id FROM doctors WHERE doctor_id = $1", doctor_id)
        if owner != hospital_id:
            raise ApiError(404, "doctor not found", code="not_found", field="doctor_id")
    try:
        row = await conn.fetchrow(
            f"""INSERT INTO staff_users (hospital_id, username, password_hash, role, doctor_id)
                VALUES ($1, $2, $3, $4, $5) RETURNING {USER_COLUMNS}""",
            hospital_id, username, hash_password(password), role, doctor_id)
    except asyncpg.UniqueViolationError:
        raise ApiError(409, f"the username {username!r} is taken", code="duplicate", field="username") from None
    return dict(row.items())
