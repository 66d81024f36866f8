"""A burst of changes to one doctor's queue is coalesced: far fewer snapshots than changes,
and the last one is exactly the database's state."""

from __future__ import annotations

import asyncio

from tests.live.actions import api_queue, assert_etas_grow, issue_token, same_queue, wait_for_db
from tests.support.ws_client import live_client

BURST = 100
CONCURRENCY = 25  # parallel API requests


async def test_burst_of_changes_ends_on_the_right_snapshot(server, hospital, admin, pool):
    doctor = hospital.doctor
    topic = f"doctor:{doctor.doctor_id}"
    async with live_client(server.ws_url, hospital.keys["admin"]) as client, \
            live_client(server.ws_url, hospital.keys["admin"]) as board:
        await client.subscribed(topic)
        await board.subscribed(f"department:{hospital.dept_id}")
        before = len(client.snapshots_of(topic))
        limit = asyncio.Semaphore(CONCURRENCY)

        async def issue_one(n: int) -> dict:
            async with limit:
                return await issue_token(admin, doctor.doctor_id, name=f"Burst Patient {n}")

        issued = await asyncio.gather(*(issue_one(n) for n in range(BURST)))
        assert len({t["token_number"] for t in issued}) == BURST

        data = await client.data_where(topic, lambda d: len(d["waiting"]) == BURST,
                                       timeout=20, what=f"a snapshot with {BURST} waiting")
        assert same_queue(data, await api_queue(admin, doctor.doctor_id))
        # Positions 1..N, each waiting longer than the one before.
        # (Order is by arrival, queue_joined_at, which for concurrent issues need not follow the
        # token numbers; the API comparison above checks the order itself.)
        summary = [(w["token_number"], w["position"], w["eta_minutes"]) for w in data["waiting"]]
        assert [p for _, p, _ in summary] == list(range(1, BURST + 1))
        assert_etas_grow(data["waiting"])
        assert sorted(n for n, _, _ in summary) == sorted(t["token_number"] for t in issued)
        await wait_for_db(pool, doctor.doctor_id, summary)
        await board.data_where(f"department:{hospital.dept_id}",
                               lambda d: d["waiting_count"] == BURST)

        received = len(client.snapshots_of(topic)) - before
        assert 1 <= received < BURST, f"{received} snapshots for {BURST} changes"
