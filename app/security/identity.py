"""Who is calling: the one place where every credential is checked, below the layers (the API,
the WebSocket pipe and the pages all ask here; app/api/auth.py adds only HTTP's 401/403/CSRF).

- API keys (Authorization: Bearer opd_...): 256-bit random, stored as SHA-256 digests.
- Staff browser sessions: a signed cookie naming the user; CSRF token on unsafe requests.
- Paired displays (TV boards, door screens): a cookie credential, board topics only.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
from starlette.requests import HTTPConnection

from app.db.bounded import REQUEST_DB
from app.errors import ApiError
from app.security.sessions import (
    DISPLAY_COOKIE,
    SESSION_COOKIE,
    SessionSigner,
    hash_credential,
)

KEY_PREFIX = "opd_"
TRACKING_CODE_PATTERN = r"^[A-Za-z0-9_-]{16,32}$"  # a patient's tracking link: 138 random bits
ROLES = ("admin", "receptionist", "doctor")
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)  # last_used_at / last_seen_at are this coarse


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a staff member, an integration's key, or a paired display."""

    hospital_id: uuid.UUID
    role: str  # admin, receptionist, doctor, or display
    actor_id: uuid.UUID  # staff user id, API key id or device id: what token_history records
    doctor_id: uuid.UUID | None = None
    label: str = ""
    via: str = "key"  # key, session, display
    session_nonce: str = ""

    @property
    def is_staff(self) -> bool:
        return self.role in ROLES

    def require_role(self, *roles: str) -> None:
        if self.role not in roles:
            raise ApiError(403, f"this needs the {' or '.join(roles)} role; you are {self.role}",
                           code="forbidden")

    def require_hospital(self, hospital_id: uuid.UUID | None, what: str) -> None:
        # Unknown and foreign ids answer alike, so ids of other hospitals cannot be probed.
        if hospital_id != self.hospital_id:
            raise ApiError(404, f"{what} not found", code="not_found")

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
        """SELECT key_id, hospital_id, role, doctor_id, key_prefix, last_used_at < now() - $2::interval
                  OR last_used_at IS NULL AS stale
           FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL""",
        hash_key(key), LAST_USED_RESOLUTION,
    )
    if row is None:
        return None
    if row["stale"]:  # a write per request would serialise every caller of a shared key
        await pool.execute("UPDATE api_keys SET last_used_at = now() WHERE key_id = $1", row["key_id"])
    return Principal(hospital_id=row["hospital_id"], role=row["role"], actor_id=row["key_id"],
                     doctor_id=row["doctor_id"], label=f"key {row['key_prefix']}")


async def principal_from_session(pool: asyncpg.Pool, signer: SessionSigner,
                                 cookie: str | None) -> Principal | None:
    data = signer.read(cookie)
    if data is None:
        return None
    try:
        user_id = uuid.UUID(str(data["u"]))
    except ValueError:
        return None
    row = await pool.fetchrow(
        """SELECT user_id, hospital_id, role, doctor_id, username FROM staff_users
           WHERE user_id = $1 AND is_active AND sessions_valid_after <= to_timestamp($2)""",
        user_id, float(data["t"]))
    if row is None:
        return None
    return Principal(hospital_id=row["hospital_id"], role=row["role"], actor_id=row["user_id"],
                     doctor_id=row["doctor_id"], label=row["username"], via="session",
                     session_nonce=str(data["n"]))


async def principal_from_display(pool: asyncpg.Pool, cookie: str | None) -> Principal | None:
    if not cookie or len(cookie) > 200:
        return None
    row = await pool.fetchrow(
        """SELECT device_id, hospital_id, label, last_seen_at < now() - $2::interval
                  OR last_seen_at IS NULL AS stale
           FROM display_devices
           WHERE credential_hash = $1 AND paired_at IS NOT NULL AND revoked_at IS NULL""",
        hash_credential(cookie), LAST_USED_RESOLUTION)
    if row is None:
        return None
    if row["stale"]:
        await pool.execute("UPDATE display_devices SET last_seen_at = now() WHERE device_id = $1",
                           row["device_id"])
    return Principal(hospital_id=row["hospital_id"], role="display", actor_id=row["device_id"],
                     label=row["label"], via="display")


def bearer_token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


async def optional_principal(conn: HTTPConnection) -> Principal | None:
    """The caller if any credential is valid, else None. Results are cached on the request."""
    if "opd.principal" in conn.scope:
        cached: Principal | None = conn.scope["opd.principal"]
        return cached
    # An HTTP request waits for a connection within the API's bound (503 busy beyond it); a
    # WebSocket's (re)validation uses the pool as it is.
    # A one-transaction API request checks the credential in its own transaction (registry.py).
    pool: Any = (conn.scope.get(REQUEST_DB) or conn.app.state.api_pool if conn.scope["type"] == "http"
                 else conn.app.state.pool)
    principal: Principal | None = None
    key = bearer_token(conn)
    if key:
        principal = await principal_from_api_key(pool, key)
        if principal is None:
            raise ApiError(401, "invalid or revoked API key", code="unauthenticated")
    if principal is None:
        principal = await principal_from_session(pool, conn.app.state.signer,
                                                 conn.cookies.get(SESSION_COOKIE))
    if principal is None:
        principal = await principal_from_display(pool, conn.cookies.get(DISPLAY_COOKIE))
    conn.scope["opd.principal"] = principal
    return principal
