"""The engine's LISTEN connection dies (pg_terminate_backend): notifications sent while nobody
listens are lost, so after reconnecting the engine must resync, and every screen ends on the
database's final state."""

from __future__ import annotations

import asyncio
import secrets

import asyncpg
import pytest

from tests.live.actions import (
    call_next,
    issue_token,
    token_action,
    topics_for,
    wait_converged,
)
from tests.live.conftest import staff_http, wait_for_role
from tests.support.ws_client import live_client

# Timers far beyond the test's length: convergence must come from the reconnect's resync,
# not from the periodic safety refresh.
NO_TIMERS = {"OPD_SAFETY_REFRESH_S": "600", "OPD_ETA_TICK_S": "600"}

LEADER_PID_SQL = """
    SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database
    WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = $1
      AND l.objsubid = 1 AND d.datname = current_database()"""


async def leader_pid(pool: asyncpg.Pool, lock_key: int, not_pid: int | None = None) -> int:
    """The backend holding the engine's lock: the LISTEN connection (waits for a new one, up to
    30 s: on a loaded CI machine reconnecting can take a while; correctness is what is tested)."""
    for _ in range(300):
        pid = await pool.fetchval(LEADER_PID_SQL, lock_key)
        if pid is not None and pid != not_pid:
            listens = await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)
            assert listens == 1
            return int(pid)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no process took advisory lock {lock_key}")


async def terminate(pool: asyncpg.Pool, pid: int) -> None:
    assert await pool.fetchval("SELECT pg_terminate_backend($1)", pid)


@pytest.fixture
async def live_setup(start_server, lock_key, hospital):
    server = await start_server(namespace=f"opdlisten{secrets.token_hex(4)}", lock_key=lock_key,
                                extra_env=NO_TIMERS)
    await wait_for_role(server, "leader")
    key = hospital.keys["admin"]
    async with staff_http(server, key) as http, \
            live_client(server.ws_url, key) as staff, live_client(server.ws_url) as patient:
        for topic in topics_for(hospital):
            await staff.subscribed(topic)
        yield server, http, staff, patient


async def track(patient, token) -> str:
    code: str = token["tracking_code"]
    reply = await patient.subscribed(f"token:{code}")
    assert reply["type"] in ("snapshot", "subscribed"), reply
    return code


async def test_screens_converge_when_listen_connection_is_killed_between_actions(
        live_setup, hospital, pool, lock_key):
    server, http, staff, patient = live_setup
    first, second = hospital.doctors
    tokens = [await issue_token(http, first.doctor_id) for _ in range(3)]
    tokens += [await issue_token(http, second.doctor_id) for _ in range(2)]
    codes = [await track(patient, t) for t in tokens]
    await wait_converged(staff, patient, http, hospital, codes)

    async def issue_more():
        tokens.append(await issue_token(http, second.doctor_id))
        codes.append(await track(patient, tokens[-1]))

    actions = [
        lambda: call_next(http, first.doctor_id),
        issue_more,
        lambda: token_action(http, tokens[0]["token_id"], "start"),
        lambda: call_next(http, first.doctor_id, complete_current=True),
        lambda: token_action(http, tokens[4]["token_id"], "cancel", {"reason": "left"}),
        lambda: call_next(http, second.doctor_id),
        lambda: token_action(http, tokens[1]["token_id"], "no-show"),
    ]
    pid = await leader_pid(pool, lock_key)
    for action in actions:
        await terminate(pool, pid)
        await action()  # right away: the engine may not be listening yet
        pid = await leader_pid(pool, lock_key, not_pid=pid)
    await wait_converged(staff, patient, http, hospital, codes)


async def test_screens_converge_after_actions_while_nobody_listens(
        live_setup, hospital, pool, lock_key, database):
    server, http, staff, patient = live_setup
    first, second = hospital.doctors
    tokens = [await issue_token(http, first.doctor_id) for _ in range(3)]
    codes = [await track(patient, t) for t in tokens]
    await wait_converged(staff, patient, http, hospital, codes)

    # Another holder takes the engine lease (as a process would after this one froze) and the
    # LISTEN connection is killed: the app steps down and nobody listens until we let go.
    await pool.execute("""UPDATE engine_lease SET holder = 'test-blocker', term = term + 1,
                                 expires_at = clock_timestamp() + interval '1 hour'
                          WHERE lease_key = $1""", lock_key)
    try:
        await terminate(pool, await leader_pid(pool, lock_key))
        await wait_for_role(server, "follower")

        await call_next(http, first.doctor_id)
        await token_action(http, tokens[0]["token_id"], "start")
        # A token whose topic the patient already watches leaves the queue.
        await token_action(http, tokens[2]["token_id"], "cancel", {"reason": "went home"})
        more = [await issue_token(http, second.doctor_id) for _ in range(2)]
        tokens += more
        codes += [await track(patient, t) for t in more]
    finally:
        await pool.execute("UPDATE engine_lease SET expires_at = clock_timestamp() - interval '1 ms' "
                           "WHERE lease_key = $1 AND holder = 'test-blocker'", lock_key)
    await wait_for_role(server, "leader")
    await wait_converged(staff, patient, http, hospital, codes)
