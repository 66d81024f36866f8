"""Patient views and whole-hospital topics go out only while someone watches them
(app/live/interest.py): the stored snapshot of a topic nobody watches is withdrawn rather than
left outdated, a screen that opens it later gets it current, and a watched topic gets every
change."""

from __future__ import annotations

import asyncio
import secrets

import redis.asyncio as redis

from app.live.bus import MemoryBus
from app.live.hub import Client, Hub
from app.live.interest import WatchedTopics
from app.live.publisher import Publisher
from tests.live.actions import call_next, issue_token, token_action
from tests.live.conftest import staff_http, wait_for_role
from tests.support.ws_client import live_client

REFRESH_S = 0.4  # the server's OPD_WATCH_REFRESH_S: it fails open for 0.6 s, a topic stays watched 1.2 s


async def _stored(client: redis.Redis, namespace: str, topic: str) -> bool:
    return bool(await client.exists(f"{namespace}:frame:{topic}"))


async def _until_stored(client: redis.Redis, namespace: str, topic: str, stored: bool) -> None:
    for _ in range(200):
        if await _stored(client, namespace, topic) == stored:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{topic} still {'not ' if stored else ''}stored after 10 s")


async def test_only_watched_views_go_out_and_a_new_watcher_gets_the_current_one(
        start_server, lock_key, hospital, redis_url):
    namespace = f"opdwatch{secrets.token_hex(4)}"
    server = await start_server(namespace=namespace, lock_key=lock_key,
                                extra_env={"OPD_WATCH_REFRESH_S": str(REFRESH_S)})
    await wait_for_role(server, "leader")
    doctor = hospital.doctor.doctor_id
    store = redis.Redis.from_url(redis_url)
    async with staff_http(server, hospital.keys["admin"]) as http, \
            live_client(server.ws_url, hospital.keys["admin"]) as staff, \
            live_client(server.ws_url) as watcher:
        first, unwatched, watched, leaving = [await issue_token(http, doctor) for _ in range(4)]
        topic = {t["token_number"]: f"token:{t['tracking_code']}" for t in (first, unwatched, watched, leaving)}
        await staff.subscribed(f"doctor:{doctor}")
        await watcher.subscribed(topic[watched["token_number"]])
        await watcher.data_where(topic[watched["token_number"]], lambda d: d["position"] == 3)
        # Past the engine's open start (0.6 s from its subscription to the announcements, made
        # as it took the lead), with room for a slow machine.
        await asyncio.sleep(2.0)

        # A call moves everyone behind: the watched view goes out, the others are withdrawn.
        await call_next(http, doctor)
        await watcher.data_where(topic[watched["token_number"]],
                                 lambda d: d["position"] == 2 and d["now_serving"] == first["token_number"])
        await _until_stored(store, namespace, topic[unwatched["token_number"]], False)
        assert await _stored(store, namespace, topic[watched["token_number"]])

        # A visit closed while nobody watched is withdrawn too; its patient reads the database.
        await token_action(http, leaving["token_id"], "cancel")
        await _until_stored(store, namespace, topic[leaving["token_number"]], False)
        async with live_client(server.ws_url) as late:
            await late.subscribed(topic[leaving["token_number"]])
            closed = await late.data_where(topic[leaving["token_number"]], lambda d: True)
            assert closed["status"] == "CANCELLED"

        # A phone that opens the tracker now gets the current view, not the one of before the call.
        async with live_client(server.ws_url) as opened:
            reply = await opened.subscribed(topic[unwatched["token_number"]])
            assert reply["type"] == "snapshot" and reply["data"]["position"] == 1, reply
            assert reply["data"]["now_serving"] == first["token_number"]
            # ... and from then on every change, stored again for the next subscriber.
            await _until_stored(store, namespace, topic[unwatched["token_number"]], True)
            await token_action(http, first["token_id"], "start")
            await call_next(http, doctor, complete_current=True)
            called = await opened.data_where(topic[unwatched["token_number"]],
                                             lambda d: d["now_serving"] == unwatched["token_number"])
            assert called["called_time"] is not None
            await watcher.data_where(topic[watched["token_number"]], lambda d: d["position"] == 1)
    await store.aclose()


def _serving(board: dict) -> list[int]:
    """The token numbers a hospital board shows being served, in every department."""
    return [desk["now_serving"]["token_number"] for dept in board["departments"]
            for desk in dept["desks"] if desk["now_serving"] is not None]


async def test_whole_hospital_topics_go_out_only_while_watched(start_server, lock_key, hospital, redis_url):
    """The hospital board and the operations dashboard of a hospital nobody watches are withdrawn
    (no 187 KB frame a second, no dashboard query); the first screen that opens one gets it
    current at once, and from then on every change."""
    namespace = f"opdwatch{secrets.token_hex(4)}"
    server = await start_server(namespace=namespace, lock_key=lock_key,
                                extra_env={"OPD_WATCH_REFRESH_S": str(REFRESH_S)})
    await wait_for_role(server, "leader")
    doctor = hospital.doctor.doctor_id
    board, operations = f"hospital:{hospital.hospital_id}", f"operations:{hospital.hospital_id}"
    store = redis.Redis.from_url(redis_url)
    async with staff_http(server, hospital.keys["admin"]) as http:
        first, second = [await issue_token(http, doctor) for _ in range(2)]
        await asyncio.sleep(2.0)  # past the engine's open start, as above
        await call_next(http, doctor)  # the hospital's boards are rebuilt: nobody watches them
        await _until_stored(store, namespace, board, False)
        await _until_stored(store, namespace, operations, False)

        async with live_client(server.ws_url, hospital.keys["admin"]) as staff:
            reply = await staff.subscribed(board)
            assert reply["type"] == "snapshot" and _serving(reply["data"]) == [first["token_number"]], reply
            reply = await staff.subscribed(operations)
            assert reply["type"] == "snapshot", reply
            statuses = {d["doctor_id"]: d for d in reply["data"]["doctors"]}
            assert statuses[str(doctor)]["current_status"] == "BUSY", statuses
            assert statuses[str(doctor)]["pending_tokens"] == 1, statuses
            await _until_stored(store, namespace, board, True)
            await _until_stored(store, namespace, operations, True)

            await token_action(http, first["token_id"], "start")
            await call_next(http, doctor, complete_current=True)
            await staff.data_where(board, lambda d: _serving(d) == [second["token_number"]])
            # The doctors' statuses are read at most every 5 s: the read after the call comes
            # when that interval is over, with no further change to bring it.
            await staff.data_where(operations, lambda d: [x["pending_tokens"] for x in d["doctors"]
                                                          if x["doctor_id"] == str(doctor)] == [0])
    await store.aclose()


def test_watched_topics_fail_open_then_follow_the_announcements():
    watching = WatchedTopics(refresh_s=10, now=0.0)
    assert watching.watched("token:a", 14.9)            # nothing heard yet: everything counts
    assert not watching.watched("token:a", 15.1)
    watching.note(["token:a"], 16.0)
    assert watching.watched("token:a", 45.9) and not watching.watched("token:a", 46.1)
    assert not watching.watched("token:b", 20.0)
    watching.reopen(50.0)                               # the announcements had a gap
    assert watching.watched("token:b", 64.9) and not watching.watched("token:b", 65.1)
    watching.note(["token:c"], 80.0)                    # ... and expired topics are forgotten
    assert len(watching) == 1


async def test_publisher_withdraws_a_stored_snapshot_once_and_publishes_it_again_when_asked():
    bus = MemoryBus()
    publisher = Publisher(bus)
    publisher.stage("token:a", {"position": 3}, None)
    publisher.stage("doctor:d", {"waiting": 3}, None)
    await publisher.flush()
    publisher.withdraw("token:a")
    await publisher.flush()
    assert set(await bus.latest(["token:a", "doctor:d"])) == {"doctor:d"}
    assert not publisher.is_published("token:a")
    publisher.withdraw("token:a")                        # already gone: nothing more to send
    publisher.withdraw("token:never")                    # never published here: an older engine's may be stored
    assert publisher.pending == 1
    await publisher.flush()
    assert publisher.withdrawn == 2
    publisher.stage("token:a", {"position": 3}, None)    # the same view as before goes out again
    await publisher.flush()
    assert (await bus.latest(["token:a"]))["token:a"].text.endswith('"data":{"position":3}}')


async def test_hub_announces_new_patient_topics_at_once_and_all_of_them_every_refresh():
    bus = MemoryBus()
    hub = Hub(bus)
    heard: list[list[str] | None] = []

    async def listen() -> None:
        async for topics in bus.listen_watching():
            heard.append(topics)

    async def until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
        for _ in range(200):
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{what}; heard {heard}")

    async def nothing(_text: str = "") -> None:
        return None

    listening = asyncio.create_task(listen())
    await until(lambda: heard == [None], "the listener subscribed")
    announcing = asyncio.create_task(hub.announce_watching(refresh_s=0.5))
    client = Client(nothing, nothing, 5.0)
    try:
        await hub.subscribe(client, "token:first")
        await hub.subscribe(client, "doctor:d")            # staff topics are always published
        await until(lambda: any(h and "token:first" in h for h in heard), "the first topic announced")
        await hub.subscribe(client, "token:second")
        await until(lambda: ["token:second"] in heard, "a new topic announced alone")
        heard.clear()
        await until(lambda: any(h and set(h) == {"token:first", "token:second"} for h in heard),
                    "every topic announced at the refresh")
        assert not any(h and "doctor:d" in h for h in heard)
    finally:
        for task in (announcing, listening):
            task.cancel()
        await client.stop()
