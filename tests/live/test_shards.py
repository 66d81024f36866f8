"""The queue engine split into shards across engine processes (OPD_ENGINE_SHARDS; issue 19):
hospitals hashed to shards, each shard led by one process, shares kept even as processes come
and go, and every hospital's screens right throughout."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import subprocess
import uuid
from pathlib import Path

import asyncpg
import pytest

from app.live.shard_hash import shard_of
from app.live.shards import BEATS_BEFORE_TAKING, FairShare
from tests.live.actions import issue_token
from tests.live.conftest import staff_http
from tests.live.test_engine_process import log_path, start_engine
from tests.support import factory
from tests.support.ws_client import live_client

SHARDS = 4
ENGINE_LOGS: dict[int, Path] = {}   # pid -> the engine process's log


async def test_python_and_sql_put_every_hospital_in_the_same_shard(pool):
    ids = [uuid.uuid4() for _ in range(300)]
    for count in (1, 2, 3, 4, 7, 64):
        in_sql = await pool.fetch("SELECT id, engine_shard(id, $2) AS shard FROM unnest($1::uuid[]) id",
                                  ids, count)
        assert {str(r["id"]): r["shard"] for r in in_sql} == {str(i): shard_of(str(i), count) for i in ids}
    spread = {shard_of(str(i), 4) for i in ids}
    assert spread == {0, 1, 2, 3}


def share_after_beats(count: int, members: int, fewest: int, held: set[int]) -> FairShare:
    share = FairShare(count)
    share.held = set(held)
    for _ in range(BEATS_BEFORE_TAKING):
        share.observed(members, 0, fewest)
    return share


def test_one_shard_is_taken_whenever_free_and_never_handed_back():
    share = FairShare(1)
    assert share.may_take(0)  # no beat needed: the single engine as it always was
    share.held = {0}
    assert not share.must_yield(0)


def test_a_free_shard_goes_to_the_member_that_leads_fewest_and_below_its_quota():
    assert not FairShare(4).may_take(0)  # before seeing the others: take nothing
    alone = share_after_beats(4, 1, 0, set())
    assert alone.may_take(0)
    assert share_after_beats(4, 1, 3, {0, 1, 2}).may_take(3)  # alone: quota 4
    # Three members, quota 2: the one leading 1 waits while another leads none.
    assert not share_after_beats(4, 3, 0, {1}).may_take(3)
    assert share_after_beats(4, 3, 0, set()).may_take(3)
    assert not share_after_beats(4, 3, 1, {1, 2}).may_take(3)  # at its quota
    disagreeing = FairShare(4)
    for _ in range(BEATS_BEFORE_TAKING):
        disagreeing.observed(1, 1, 0)
    assert not disagreeing.may_take(0)


def test_shares_are_evened_one_highest_shard_at_a_time():
    # A second member joined: quota 2, this one leads all 4 -> hands back its highest only.
    crowded = share_after_beats(4, 2, 0, {0, 1, 2, 3})
    assert [s for s in range(4) if crowded.must_yield(s)] == [3]
    # Three members leading 2, 2, 0: two more than the fewest -> one goes.
    uneven = share_after_beats(4, 3, 0, {0, 2})
    assert [s for s in range(4) if uneven.must_yield(s)] == [2]
    # 2, 1, 1 is as even as 4 shards over 3 get.
    assert not any(share_after_beats(4, 3, 1, {0, 2}).must_yield(s) for s in range(4))


async def shard_holders(pool: asyncpg.Pool, base: int) -> dict[int, str]:
    """shard -> the holder leading it now (an unexpired lease)."""
    rows = await pool.fetch(
        """SELECT lease_key - $1 AS shard, holder FROM engine_lease
           WHERE lease_key >= $1 AND lease_key < $1 + $2 AND expires_at > clock_timestamp()""",
        base, SHARDS)
    return {r["shard"]: r["holder"] for r in rows}


def pid_of(holder: str) -> int:
    return int(holder.split(":")[1])


async def wait_for_shares(pool: asyncpg.Pool, base: int, engines: list[subprocess.Popen[bytes]],
                          timeout: float = 30.0) -> dict[int, int]:
    """Until every shard is led, by these processes only, as evenly as possible; pid -> shards."""
    pids = {engine.pid for engine in engines}
    low, high = SHARDS // len(engines), -(-SHARDS // len(engines))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    counts: dict[int, int] = {}
    while loop.time() < deadline:
        for engine in engines:
            if engine.poll() is not None:
                raise AssertionError(f"engine process {engine.pid} exited ({engine.returncode}):\n"
                                     f"{ENGINE_LOGS[engine.pid].read_text()[-3000:]}")
        holders = await shard_holders(pool, base)
        counts = {pid: 0 for pid in pids}
        for holder in holders.values():
            counts[pid_of(holder)] = counts.get(pid_of(holder), 0) + 1
        if len(holders) == SHARDS and set(counts) == pids and all(low <= n <= high for n in counts.values()):
            return counts
        await asyncio.sleep(0.2)
    raise AssertionError(f"shards not shared out within {timeout:.0f} s: {counts}")


async def test_engine_processes_share_the_shards_and_take_over_a_lost_ones(
        start_server, lock_key, database, redis_url, pool):
    namespace = f"opdshards{secrets.token_hex(4)}"
    # A small pool each: the suite's other processes hold many of PostgreSQL's 100 connections.
    env = {"OPD_ENGINE_SHARDS": str(SHARDS), "OPD_ENGINE_POOL_SIZE": "4"}
    # Hospitals until every shard has at least one of this test's.
    hospitals: list[factory.Hospital] = []
    while {shard_of(h.hospital_id, SHARDS) for h in hospitals} != set(range(SHARDS)):
        hospitals.append(await factory.make_hospital(pool, doctors=1))
    engines: list[subprocess.Popen[bytes]] = []

    def start(n: int) -> None:
        engine = start_engine(database, redis_url, namespace, lock_key, env, log_name=f"{namespace}-{n}")
        ENGINE_LOGS[engine.pid] = log_path(f"{namespace}-{n}")
        engines.append(engine)

    try:
        web = await start_server(namespace=namespace, lock_key=lock_key,
                                 extra_env={"OPD_ENGINE": "off", **env})
        start(1)
        start(2)
        counts = await wait_for_shares(pool, lock_key, engines)
        assert sorted(counts.values()) == [2, 2]

        topics = {h.hospital_id: f"doctor:{h.doctors[0].doctor_id}" for h in hospitals}
        opened = contextlib.AsyncExitStack()
        screens = {h.hospital_id: await opened.enter_async_context(live_client(web.ws_url, h.keys["admin"]))
                   for h in hospitals}
        issued: dict[str, list[int]] = {h.hospital_id: [] for h in hospitals}

        async def issue_everywhere_and_see_it() -> None:
            for h in hospitals:
                async with staff_http(web, h.keys["admin"]) as http:
                    token = await issue_token(http, h.doctors[0].doctor_id)
                issued[h.hospital_id].append(token["token_number"])
            for h in hospitals:
                expected = issued[h.hospital_id]
                await screens[h.hospital_id].data_where(
                    topics[h.hospital_id],
                    lambda d, expected=expected: [w["token_number"] for w in d["waiting"]] == expected,
                    timeout=20)

        try:
            for h in hospitals:
                await screens[h.hospital_id].subscribed(topics[h.hospital_id])
            await issue_everywhere_and_see_it()

            # A third process joins: it is handed shards (2, 1, 1), and every screen stays right.
            start(3)
            counts = await wait_for_shares(pool, lock_key, engines)
            assert sorted(counts.values()) == [1, 1, 2]
            await issue_everywhere_and_see_it()

            # The one leading two dies without a goodbye: the others take its shards.
            busiest = next(e for e in engines if counts[e.pid] == 2)
            busiest.send_signal(signal.SIGKILL)
            await asyncio.to_thread(busiest.wait, 10)
            engines.remove(busiest)
            counts = await wait_for_shares(pool, lock_key, engines)
            assert sorted(counts.values()) == [2, 2]
            await issue_everywhere_and_see_it()

            # Through every hand-over no screen got a frame older than one it already had.
            for h in hospitals:
                versions = [m["version"] for m in screens[h.hospital_id].messages
                            if m.get("type") == "snapshot" and m.get("topic") == topics[h.hospital_id]]
                assert versions == sorted(versions) and len(set(versions)) == len(versions), versions
        finally:
            await opened.aclose()
        for engine in engines:
            assert engine.poll() is None, "an engine process died"
    finally:
        for engine in engines:
            engine.terminate()
        for engine in engines:
            try:
                await asyncio.to_thread(engine.wait, 30)
            except subprocess.TimeoutExpired:
                engine.kill()


@pytest.mark.parametrize("raw", ["0", "65", "four"])
def test_a_shard_count_out_of_range_is_refused_by_name(raw):
    from app.settings import Settings
    with pytest.raises(ValueError, match="OPD_ENGINE_SHARDS"):
        Settings.from_env({"OPD_ENGINE_SHARDS": raw})
