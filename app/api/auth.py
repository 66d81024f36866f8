"""Who is calling: the one place where staff credentials are checked.

API keys (Authorization: Bearer opd_...) are 256-bit random strings stored as SHA-256 digests.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

import asyncpg
from starlette.requests import HTTPConnection

from app.api.errors import ApiError

KEY_PREFIX = "opd_"
ROLES = ("admin", "receptionist", "doctor")


@dataclass(frozen=True)
class Principal:
    """An authenticated staff caller."""

    hospital_id: uuid.UUID
    role: str
    actor_id: uuid.UUID  # staff user id or API key id: what token_history records
    doctor_id: uuid.UUID | None = None
    label: str = ""

    def require_role(self, *roles: str) -> None:
        if self.role not in roles:
            raise ApiError(403, f"this needs the {' or '.join(roles)} role; you are {self.role}",
                           code="forbidden")

    def require_hospital(self, hospital_id: uuid.UUID | None) -> None:
        # Unknown and foreign ids answer alike, so ids of other hospitals cannot be probed.
        if hospital_id != self.hospital_id:
            raise ApiError(404, "not found in your hospital", code="not_found")

    def require_doctor(self, doctor_id: uuid.UUID) -> None:
        """Doctors act only on their own queue; admins and receptionists on any in the hospital."""
        if self.role == "doctor" and doctor_id != self.doctor_id:
            raise ApiError(403, "a doctor acts only on their own queue", code="forbidden")


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


async def create_api_key(conn: asyncpg.Connection, hospital_id: uuid.UUID, *, role: str = "admin",
                         doctor_id: uuid.UUID | None = None, label: str = "") -> tuple[uuid.UUID, str]:
    """Create a key and return (key_id, key); the key itself is shown once and never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = await conn.fetchval(
        """INSERT INTO api_keys (hospital_id, role, doctor_id, label, key_prefix, key_hash)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING key_id""",
        hospital_id, role, doctor_id, label, key[: len(KEY_PREFIX) + 8], hash_key(key),
    )
    return key_id, key


async def principal_from_api_key(pool: asyncpg.Pool, key: str) -> Principal | None:
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    row = await pool.fetchrow(
        """UPDATE api_keys SET last_used_at = now()
           WHERE key_hash = $1 AND revoked_at IS NULL
           RETURNING key_id, hospital_id, role, doctor_id, key_prefix""",
        hash_key(key),
    )
    if row is None:
        return None
    return Principal(hospital_id=row["hospital_id"], role=row["role"], actor_id=row["key_id"],
                     doctor_id=row["doctor_id"], label=f"key {row['key_prefix']}")


def bearer_token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


async def authenticate(conn: HTTPConnection) -> Principal:
    """The staff caller of an HTTP request or WebSocket upgrade, or 401."""
    cached = conn.scope.get("opd.principal")
    if isinstance(cached, Principal):
        return cached
    pool: asyncpg.Pool = conn.app.state.pool
    key = bearer_token(conn)
    principal = await principal_from_api_key(pool, key) if key else None
    if principal is None:
        message = "invalid or revoked API key" if key else \
            "sign in, or send an API key as 'Authorization: Bearer <key>'"
        raise ApiError(401, message, code="unauthenticated")
    conn.scope["opd.principal"] = principal
    return principal
