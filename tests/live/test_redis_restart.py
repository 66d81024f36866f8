"""Redis goes away mid-run and comes back empty (no persistence): the hub resubscribes and
resyncs, the engine republishes, and every screen ends on the database's final state."""

from __future__ import annotations

import asyncio
import secrets

from tests.live.actions import (
    call_next,
    issue_token,
    token_action,
    topics_for,
    wait_converged,
)
from tests.live.conftest import staff_http, wait_for_role
from tests.support.ws_client import live_client

# The engine's timers, fast so that the periodic safety refresh comes within seconds.
FAST_TIMERS = {"OPD_SAFETY_REFRESH_S": "2", "OPD_ETA_TICK_S": "1"}
CONVERGE_S = 30.0  # several safety refreshes and Redis reconnect backoffs (at most 5 s each)


async def test_screens_converge_after_redis_restart(start_server, lock_key, hospital,
                                                   private_redis):
    server = await start_server(namespace=f"opdredis{secrets.token_hex(4)}", lock_key=lock_key,
                                redis=private_redis["url"], extra_env=FAST_TIMERS)
    await wait_for_role(server, "leader")
    first, second = hospital.doctors
    key = hospital.keys["admin"]
    async with staff_http(server, key) as http, \
            live_client(server.ws_url, key) as staff, live_client(server.ws_url) as patient:
        for topic in topics_for(hospital):
            await staff.subscribed(topic)
        tokens = [await issue_token(http, first.doctor_id) for _ in range(3)]
        tokens += [await issue_token(http, second.doctor_id) for _ in range(2)]
        codes = [t["tracking_code"] for t in tokens]
        for code in codes:
            await patient.subscribed(f"token:{code}")
        await wait_converged(staff, patient, http, hospital, codes)

        await asyncio.to_thread(private_redis["stop"])
        await call_next(http, first.doctor_id)
        await token_action(http, tokens[0]["token_id"], "start")
        await token_action(http, tokens[2]["token_id"], "no-show")
        await call_next(http, second.doctor_id)
        tokens.append(await issue_token(http, second.doctor_id))
        await asyncio.sleep(3)  # let the engine try (and fail) to publish while Redis is away
        await asyncio.to_thread(private_redis["restart"])

        await wait_converged(staff, patient, http, hospital, codes, timeout=CONVERGE_S)

    # Redis came back empty: a new screen must still get every topic, not "pending" forever.
    codes.append(tokens[-1]["tracking_code"])
    async with live_client(server.ws_url, key) as late_staff, \
            live_client(server.ws_url) as late_patient:
        for topic in topics_for(hospital):
            await late_staff.subscribe(topic)
        for code in codes:
            await late_patient.subscribe(f"token:{code}")
        async with staff_http(server, key) as http:
            await wait_converged(late_staff, late_patient, http, hospital, codes,
                                 timeout=CONVERGE_S)
