"""Pairing a screen: an admin confirms the code a TV board or door display shows, and that
screen's cookie becomes a credential of the hospital (the pages: app/web/displays.py)."""

from __future__ import annotations

from typing import Any

import asyncpg


async def confirm_pairing(pool: asyncpg.Pool, hospital_id: Any, code: str, label: str,
                          user_id: Any) -> asyncpg.Record | None:
    """An admin confirms the code shown on a screen; returns the device, or None if no match."""
    row: asyncpg.Record | None = await pool.fetchrow(
        """UPDATE display_devices
           SET hospital_id = $1, label = $3, paired_at = now(), pairing_code = NULL,
               paired_by = (SELECT user_id FROM staff_users WHERE user_id = $4)
           WHERE pairing_code = $2 AND paired_at IS NULL AND pairing_expires_at > now() AND revoked_at IS NULL
           RETURNING device_id, label, paired_at""",
        hospital_id, code.replace(" ", ""), label, user_id)
    return row
