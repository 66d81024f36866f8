"""Faults that once stalled a process silently or dropped a screen (issue 20), each reproduced
with real processes, PostgreSQL and Redis: a resync that fails, a subscribe while Redis is
down, concurrent publishes, and a database that refuses connections."""

from __future__ import annotations

import asyncio
import secrets
import time
import urllib.parse

import asyncpg
import httpx
import redis.asyncio as redis_asyncio

from app.db.migrate import upgrade
from app.live.bus import RedisBus
from app.live.frames import Frame
from app.live.hub import Client, Hub
from tests.live.actions import issue_token
from tests.live.conftest import staff_http, wait_for_role
from tests.support import factory
from tests.support.app_server import AppServer
from tests.support.ws_client import live_client


class ResyncFailsOnce(RedisBus):
    """A real RedisBus whose next read fails the way a read does while Redis restarts."""

    failures = 0

    async def latest(self, topics: list[str]) -> dict[str, Frame]:
        if self.failures:
            self.failures -= 1
            raise redis_asyncio.ConnectionError("Error 111 connecting: Connection refused (Redis restarting)")
        return await super().latest(topics)


def frame(topic: str, version: int, text: str) -> Frame:
    return Frame.snapshot(topic, "e", version, {"text": text}, None)


async def test_the_hub_survives_a_failing_resync(redis_url: str) -> None:
    namespace = f"opdhub{secrets.token_hex(4)}"
    bus, publisher = ResyncFailsOnce(redis_url, namespace), RedisBus(redis_url, namespace)
    hub = Hub(bus)
    received: list[str] = []

    async def send(text: str) -> None:
        received.append(text)

    async def close() -> None:
        return None

    client = Client(send, close, send_timeout_s=5)
    await hub.subscribe(client, "doctor:d1")
    bus.failures = 1  # the resync that follows the (re)subscription fails once
    running = asyncio.create_task(hub.run())
    try:
        deadline = time.monotonic() + 10
        while hub.trouble is None and time.monotonic() < deadline and bus.failures:
            await asyncio.sleep(0.01)
        assert bus.failures == 0, "the resync was not attempted"
        # It retries: once the bus answers again, frames are delivered as before.
        while time.monotonic() < deadline:
            await publisher.publish(frame("doctor:d1", time.time_ns(), "after the failure"))
            if any("after the failure" in t for t in received):
                break
            await asyncio.sleep(0.1)
        assert any("after the failure" in t for t in received), received
        assert hub.trouble is None and not running.done()
    finally:
        running.cancel()
        await client.stop()
        await bus.close()
        await publisher.close()


async def test_stored_snapshots_only_move_forward(redis_url: str) -> None:
    namespace = f"opdfwd{secrets.token_hex(4)}"
    bus = RedisBus(redis_url, namespace)
    listener = RedisBus(redis_url, namespace)
    heard: list[Frame | None] = []

    async def listen() -> None:
        async for item in listener.listen():
            heard.append(item)

    listening = asyncio.create_task(listen())
    try:
        while not heard:  # subscribed (the first item is the resync marker)
            await asyncio.sleep(0.01)
        # Two recomputes of one topic finish out of order: the older must not win.
        await bus.publish_many([frame("department:x", 5, "newer"), frame("hospital:h", 2, "board")])
        await bus.publish_many([frame("department:x", 4, "older"), frame("hospital:h", 3, "board 3")])
        stored = await bus.latest(["department:x", "hospital:h"])
        assert stored["department:x"].version == 5 and "newer" in stored["department:x"].text
        assert stored["hospital:h"].version == 3
        await asyncio.sleep(0.3)
        versions = [(f.topic, f.version) for f in heard if f is not None]
        assert versions == [("department:x", 5), ("hospital:h", 2), ("hospital:h", 3)], versions
    finally:
        listening.cancel()
        await bus.close()
        await listener.close()


async def test_subscribing_while_redis_is_down_keeps_the_socket(start_server, lock_key, hospital,
                                                                private_redis) -> None:
    server = await start_server(namespace=f"opdout{secrets.token_hex(4)}", lock_key=lock_key,
                                redis=private_redis["url"])
    await wait_for_role(server, "leader")
    doctor = hospital.doctor
    topic = f"doctor:{doctor.doctor_id}"
    key = hospital.keys["admin"]
    async with live_client(server.ws_url, key) as staff, staff_http(server, key) as http:
        await staff.send({"type": "ping"})
        await staff.expect(lambda m: m["type"] == "pong", what="pong")
        await asyncio.to_thread(private_redis["stop"])
        reply = await staff.subscribed(topic)
        assert reply["type"] in ("subscribed", "error", "snapshot"), reply
        mark = len(staff.messages)
        await staff.send({"type": "ping"})
        await staff.expect(lambda m: m["type"] == "pong", since=mark, what="pong while Redis is down")
        assert not staff.closed

        await asyncio.to_thread(private_redis["restart"])
        token = await issue_token(http, doctor.doctor_id)
        if reply["type"] == "error":
            await staff.subscribed(topic)
        # The subscription made during the outage delivers once Redis is back.
        await staff.data_where(topic, lambda d: token["token_number"] in
                               [w["token_number"] for w in d["waiting"]], timeout=30)


async def test_healthz_names_the_tasks_it_supervises(server: AppServer) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        health = (await http.get(server.base_url + "/healthz")).json()
    assert {"task:hub", "task:notify-dispatcher", "task:leader"} <= set(health["checks"]), health
    assert all(health["checks"][k] == "ok" for k in ("task:hub", "task:notify-dispatcher", "task:leader"))


async def test_a_database_that_refuses_connections_gets_503_with_retry_after(
        pg_admin_dsn: str, empty_database: str, redis_url: str) -> None:
    await upgrade(empty_database)
    pool = await asyncpg.create_pool(empty_database, min_size=1, max_size=2)
    try:
        hospital = await factory.make_hospital(pool, doctors=1)
    finally:
        await pool.close()
    name = urllib.parse.urlsplit(empty_database).path.lstrip("/")  # the host may be a socket path
    server = await asyncio.to_thread(
        AppServer(empty_database, redis_url, f"opddown{secrets.token_hex(4)}").start)
    admin = await asyncpg.connect(pg_admin_dsn)
    try:
        async with staff_http(server, hospital.keys["admin"]) as http:
            path = f"/api/v1/queues/doctors/{hospital.doctor.doctor_id}"
            assert (await http.get(path)).status_code == 200
            # PostgreSQL stops taking connections to this database and drops the open ones, as
            # in a restart or a failover.
            await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = $1 AND pid <> pg_backend_pid()", name)
            answers = [await http.get(path) for _ in range(5)]
            assert all(a.status_code == 503 for a in answers), [(a.status_code, a.text) for a in answers]
            assert all(a.headers.get("retry-after") == "2" for a in answers)
            assert answers[0].json()["error"]["code"] == "unavailable"

            await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
            deadline = time.monotonic() + 20
            while (status := (await http.get(path)).status_code) != 200 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert status == 200
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        await admin.close()
        await asyncio.to_thread(server.kill)
