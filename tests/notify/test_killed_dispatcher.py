"""A dispatcher process SIGKILLed mid-batch: another one finishes the batch, and nothing is sent
twice except the message that was in flight, and that one with the same idempotency key."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import asyncpg
import pytest

from tests.notify.helpers import WEBHOOK_SECRET, dispatcher, issue, notify_settings
from tests.notify.provider_server import ProviderServer, eventually
from tests.support import factory

REPO_ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 3.0  # short, so the survivor takes over the dead process's claim soon

# The production entry point of one process's dispatcher, configured from the environment.
CHILD = """
import asyncio, os
from app.db.pool import create_pool
from app.notify.dispatcher import run_dispatcher
from app.settings import Settings

async def main():
    pool = await create_pool(os.environ["DATABASE_URL"])
    await run_dispatcher(pool, Settings.from_env())

asyncio.run(main())
"""

pytestmark = pytest.mark.usefixtures("quiet_outbox")


async def test_killed_dispatcher_is_finished_by_another_without_duplicates(
        outbox_dsn: str, outbox_pool: asyncpg.Pool, outbox_hospital: factory.Hospital,
        provider: ProviderServer) -> None:
    tokens = [await issue(outbox_pool, outbox_hospital) for _ in range(5)]
    ids = {str(t["token_id"]): str(await outbox_pool.fetchval(
        "SELECT notification_id FROM notifications_log WHERE token_id = $1", t["token_id"])) for t in tokens}
    slow = ids[str(tokens[2]["token_id"])]
    provider.hold_when(slow)  # the provider sits on this one message until released
    env = {**os.environ, "DATABASE_URL": outbox_dsn, "OPD_NOTIFY_PROVIDER": "webhook",
           "OPD_NOTIFY_WEBHOOK_URL": f"{provider.url}/hook", "OPD_NOTIFY_WEBHOOK_SECRET": WEBHOOK_SECRET,
           "OPD_NOTIFY_TIMEOUT_S": "2", "OPD_NOTIFY_LEASE_S": str(LEASE_S), "OPD_NOTIFY_POLL_S": "0.1",
           # Should the held send time out before the kill, it is retried at once (and held again).
           "OPD_NOTIFY_RETRY_BASE_S": "0"}
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, cwd=REPO_ROOT, env=env)
    try:
        await eventually(provider.held.is_set, what="the slow message to reach the provider")
        await eventually(lambda: outbox_pool.fetchval(
            "SELECT count(*) = 4 FROM notifications_log WHERE notification_id = ANY($1::uuid[]) "
            "AND delivery_status = 'SENT'", list(ids.values())), what="the other four to be marked SENT")
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    provider.release.set()  # its answer now goes to a dead socket

    status = await outbox_pool.fetchval(
        "SELECT delivery_status FROM notifications_log WHERE notification_id = $1", slow)
    assert status == "PENDING"  # claimed by the dead process: the lease keeps it until it runs out
    async with dispatcher(outbox_pool, notify_settings(provider.url)) as survivor:
        async def slow_one_sent() -> bool:
            await survivor.run_batch()
            return await outbox_pool.fetchval(  # type: ignore[no-any-return]
                "SELECT delivery_status = 'SENT' FROM notifications_log WHERE notification_id = $1", slow)
        await eventually(slow_one_sent, timeout_s=LEASE_S + 15, what="the survivor to send the claimed message")

    seen = provider.keys()
    assert set(seen) == set(ids.values())
    assert all(seen.count(key) == 1 for key in ids.values() if key != slow)  # finished ones: never again
    assert seen.count(slow) >= 2  # the one in flight: at least once more, with the same key
