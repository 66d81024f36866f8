"""NOTIFY on opd_changes: sent when a token change commits; never before, never for ETAs."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.support import factory

pytestmark = pytest.mark.calendar

CHANNEL = "opd_changes"
QUIET_SECS = 0.5  # how long "nothing arrives" is watched for: a bounded wait, not a timing claim
ARRIVAL_SECS = 10  # generous upper bound for a notification that must arrive


class Listener:
    """A dedicated LISTEN connection (never a pooled one) collecting payloads by token."""

    def __init__(self) -> None:
        self.payloads: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.payloads.put_nowait(json.loads(payload))

    async def next_for(self, token_id: uuid.UUID, timeout: float) -> dict[str, Any] | None:
        """The next payload about token_id, or None if none comes within timeout seconds."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    payload = await self.payloads.get()
                    if payload.get("token_id") == str(token_id):
                        return payload
        except TimeoutError:
            return None


@pytest.fixture
async def listener(database: str) -> AsyncIterator[Listener]:
    conn = await asyncpg.connect(database)
    listening = Listener()
    await conn.add_listener(CHANNEL, listening.on_notify)
    yield listening
    await conn.remove_listener(CHANNEL, listening.on_notify)
    await conn.close()


async def test_status_change_notifies_after_commit_only(
    pool: asyncpg.Pool, listener: Listener
) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    token = await factory.issue(pool, hospital)
    issued = await listener.next_for(token["token_id"], ARRIVAL_SECS)
    assert issued is not None and issued["status"] == "CHECKED_IN" and issued["old_status"] is None

    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await conn.execute(
            "UPDATE tokens SET status = 'WAITING' WHERE token_id = $1", token["token_id"]
        )
        assert await listener.next_for(token["token_id"], QUIET_SECS) is None  # still uncommitted
        await tx.commit()
    payload = await listener.next_for(token["token_id"], ARRIVAL_SECS)
    assert payload is not None
    assert payload["kind"] == "token"
    assert payload["token_id"] == str(token["token_id"])
    assert payload["doctor_id"] == str(hospital.doctor.doctor_id)
    assert payload["dept_id"] == str(hospital.dept_id)
    assert payload["hospital_id"] == str(hospital.hospital_id)
    assert payload["status"] == "WAITING"
    assert payload["old_status"] == "CHECKED_IN"
    assert payload["visit_date"] == token["visit_date"].isoformat()


async def test_rolled_back_change_never_notifies(pool: asyncpg.Pool, listener: Listener) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    token = await factory.issue(pool, hospital)
    assert await listener.next_for(token["token_id"], ARRIVAL_SECS) is not None
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await conn.execute(
            "UPDATE tokens SET status = 'CANCELLED' WHERE token_id = $1", token["token_id"]
        )
        await tx.rollback()
    assert await listener.next_for(token["token_id"], QUIET_SECS) is None


async def test_rolled_back_issue_never_notifies(pool: asyncpg.Pool, listener: Listener) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    patient = await factory.make_patient(pool, hospital)
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        token_id = await conn.fetchval(
            "SELECT token_id FROM issue_token($1, $2, $3, NULL, 'WALK_IN', 1, NULL, NULL)",
            hospital.hospital_id,
            patient,
            hospital.doctor.doctor_id,
        )
        await tx.rollback()
    assert await listener.next_for(token_id, QUIET_SECS) is None


async def test_eta_write_back_never_notifies(pool: asyncpg.Pool, listener: Listener) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    token = await factory.issue(pool, hospital)
    assert await listener.next_for(token["token_id"], ARRIVAL_SECS) is not None
    await pool.execute(
        """UPDATE tokens SET queue_position = 3, estimated_wait_time = 25, eta_updated_at = opd_now()
           WHERE token_id = $1""",
        token["token_id"],
    )
    await pool.execute(
        "SELECT doctor_queue_snapshot($1, $2, true)", hospital.doctor.doctor_id, token["visit_date"]
    )
    assert await listener.next_for(token["token_id"], QUIET_SECS) is None
    # The listener is still alive: a real change right after does arrive.
    await pool.execute(
        "UPDATE tokens SET status = 'NO_SHOW' WHERE token_id = $1", token["token_id"]
    )
    payload = await listener.next_for(token["token_id"], ARRIVAL_SECS)
    assert payload is not None and payload["status"] == "NO_SHOW"
