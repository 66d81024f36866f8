"""Pairing TV boards and door displays: the screen shows a one-time code, an admin confirms it,
and the screen's cookie becomes a long-lived, revocable credential (docs/security.md)."""

from __future__ import annotations

import secrets

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.security.sessions import DISPLAY_COOKIE, DISPLAY_MAX_AGE_S, cookie_options, hash_credential
from app.web.templating import render

PAIRING_VALID_MINUTES = 30


def _new_pairing_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


async def pending_device(pool: asyncpg.Pool, credential: str | None) -> asyncpg.Record | None:
    if not credential:
        return None
    row: asyncpg.Record | None = await pool.fetchrow(
        """SELECT device_id, pairing_code, paired_at, revoked_at FROM display_devices
           WHERE credential_hash = $1 AND revoked_at IS NULL
             AND (paired_at IS NOT NULL OR pairing_expires_at > now())""", hash_credential(credential))
    return row


async def pairing_page(request: Request, purpose: str) -> Response:
    """Shown on a screen that is not yet paired: a code for an admin to confirm."""
    pool = request.app.state.pool
    credential = request.cookies.get(DISPLAY_COOKIE)
    device = await pending_device(pool, credential)
    if device is None or device["paired_at"] is not None:
        # Unknown, expired, or paired to another hospital: start a new pairing.
        credential = secrets.token_urlsafe(32)
        for _ in range(5):
            code = _new_pairing_code()
            try:
                await pool.execute(
                    """INSERT INTO display_devices (pairing_code, pairing_expires_at, credential_hash)
                       VALUES ($1, now() + make_interval(mins => $2), $3)""",
                    code, PAIRING_VALID_MINUTES, hash_credential(credential))
                break
            except asyncpg.UniqueViolationError:
                continue
        else:
            return Response("could not make a pairing code; reload", status_code=503)
    else:
        code = device["pairing_code"]
    response = render(request, "pair.html", {"code": f"{code[:3]} {code[3:]}", "purpose": purpose,
                                             "minutes": PAIRING_VALID_MINUTES})
    response.set_cookie(DISPLAY_COOKIE, credential,
                        **cookie_options(request.url.scheme == "https", DISPLAY_MAX_AGE_S))
    return response


async def pairing_status(request: Request) -> JSONResponse:
    device = await pending_device(request.app.state.pool, request.cookies.get(DISPLAY_COOKIE))
    return JSONResponse({"paired": bool(device and device["paired_at"])})
