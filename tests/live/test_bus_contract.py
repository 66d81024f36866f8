"""One contract, every bus backend: the same tests run against MemoryBus and RedisBus."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from app.live.bus import RESYNC, Bus, Deposed, MemoryBus, RedisBus
from app.live.design_keys import DesignKeys, department_count_key
from app.live.frames import Frame
from tests.support.redis_cleanup import NAMESPACES_USED
from tests.support.redis_server import find_redis_server, free_port, launch_redis

WAIT_S = 10.0
PROBE_TOPIC = "probe:listening"


def namespace() -> str:
    name = f"opdbus{secrets.token_hex(4)}"
    NAMESPACES_USED.add(name)  # removed from Redis at the end of the run
    return name


@pytest.fixture(params=["memory", "redis"])
async def bus(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Bus]:
    backend: Bus = MemoryBus() if request.param == "memory" else RedisBus(redis_url, namespace())
    await backend.connect()
    yield backend
    await backend.close()


def frame(topic: str, version: int, data: object = None, epoch: str = "e1") -> Frame:
    return Frame.snapshot(topic, epoch, version, data if data is not None else {"v": version}, None)


class Listener:
    """Collects what bus.listen() yields, in a task; frames and RESYNC markers alike."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.items: list[Frame | None] = []
        self._arrived = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for item in self.bus.listen():
            self.items.append(item)
            self._arrived.set()

    @property
    def frames(self) -> list[Frame]:
        return [f for f in self.items if f is not None and f.topic != PROBE_TOPIC]

    async def until(self, condition, what: str) -> None:  # type: ignore[no-untyped-def]
        async def wait() -> None:
            while not condition(self):
                self._arrived.clear()
                await self._arrived.wait()

        try:
            await asyncio.wait_for(wait(), WAIT_S)
        except TimeoutError:
            raise AssertionError(f"no {what} within {WAIT_S:.0f} s; got {self.items}") from None

    async def ready(self) -> None:
        """Publish probes until one comes back: from here on, the listener is subscribed."""
        async def probe() -> None:
            n = 0
            while not any(f is not None and f.topic == PROBE_TOPIC for f in self.items):
                n += 1
                await self.bus.publish(frame(PROBE_TOPIC, n))
                self._arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), 0.1)

        await asyncio.wait_for(probe(), WAIT_S)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def listening(bus: Bus) -> AsyncIterator[Listener]:
    listener = Listener(bus)
    try:
        await listener.ready()
        yield listener
    finally:
        await listener.stop()


async def test_listen_receives_published_frame(bus):
    sent = frame("doctor:abc", 7, {"now_serving": None, "waiting": [1, 2]})
    async with listening(bus) as listener:
        await bus.publish(sent)
        await listener.until(lambda li: li.frames, "frame")
    assert listener.frames == [sent]
    assert Frame.decode(sent.encode()) == sent


async def test_frames_arrive_in_publish_order(bus):
    sent = [frame(f"token:{n % 3}", n) for n in range(1, 31)]
    async with listening(bus) as listener:
        for f in sent:
            await bus.publish(f)
        await listener.until(lambda li: len(li.frames) >= len(sent), "all frames")
    assert listener.frames == sent


async def test_every_listener_receives_every_frame(bus):
    sent = frame("hospital:h1", 3)
    async with listening(bus) as first, listening(bus) as second:
        await bus.publish(sent)
        await first.until(lambda li: li.frames, "frame on the first listener")
        await second.until(lambda li: li.frames, "frame on the second listener")
    assert first.frames == second.frames == [sent]


async def test_latest_returns_the_newest_frame_of_each_topic(bus):
    await bus.publish(frame("doctor:a", 1))
    await bus.publish(frame("doctor:b", 5))
    await bus.publish(frame("doctor:a", 2, {"serving": "CARD-002"}))
    latest = await bus.latest(["doctor:a", "doctor:b", "doctor:missing"])
    assert latest == {"doctor:a": frame("doctor:a", 2, {"serving": "CARD-002"}),
                      "doctor:b": frame("doctor:b", 5)}
    assert await bus.latest([]) == {}


async def test_text_with_newlines_and_unicode_survives(bus):
    # The bus form puts header fields on lines before the text; the text may hold anything.
    sent = Frame("cabin:c1", "ep\u00f6ch", 9,
                 '{"note":"line one\nline two","name":"\u0906\u0936\u093e"}')
    async with listening(bus) as listener:
        await bus.publish(sent)
        await listener.until(lambda li: li.frames, "frame")
    assert listener.frames == [sent]
    assert await bus.latest(["cabin:c1"]) == {"cabin:c1": sent}


async def test_publish_many_delivers_each_frame_in_order_and_stores_the_latest(bus):
    # One recompute's frames travel as one bus message; listeners still see separate frames.
    sent = [frame(f"token:t{n % 4}", n, {"position": n, "text": "x\ny \u0906"}) for n in range(1, 41)]
    async with listening(bus) as listener:
        await bus.publish_many(sent)
        await bus.publish_many([])
        await bus.publish(frame("doctor:after", 99))
        await listener.until(lambda li: len(li.frames) >= len(sent) + 1, "all frames")
    assert listener.frames == [*sent, frame("doctor:after", 99)]
    assert await bus.latest([f"token:t{n}" for n in range(4)]) == {
        f"token:t{n % 4}": f for n, f in zip(range(37, 41), sent[36:], strict=True)}


async def test_withdrawn_topics_lose_their_stored_snapshot_and_send_nothing(bus):
    await bus.publish_many([frame("token:a", 1), frame("token:b", 2)])
    async with listening(bus) as listener:
        await bus.publish_many([frame("doctor:d", 3)], withdrawn=["token:a"])
        await bus.publish_many([], withdrawn=["token:gone"])  # nothing stored: nothing to do
        await bus.publish(frame("doctor:after", 4))
        await listener.until(lambda li: len(li.frames) >= 2, "the frames")
    assert [f.topic for f in listener.frames] == ["doctor:d", "doctor:after"]
    assert set(await bus.latest(["token:a", "token:b", "doctor:d"])) == {"token:b", "doctor:d"}
    # A deposed engine withdraws nothing.
    await bus.publish(frame("token:c", 5), term=2)
    with pytest.raises(Deposed):
        await bus.publish_many([], term=1, withdrawn=["token:b", "token:c"])
    assert set(await bus.latest(["token:b", "token:c"])) == {"token:b", "token:c"}


async def test_announcements_of_watched_topics_reach_every_listener(bus):
    heard: list[list[str] | None] = []

    async def listen() -> None:
        async for topics in bus.listen_watching():
            heard.append(topics)

    listeners = [asyncio.create_task(listen()) for _ in range(2)]
    try:
        # Each listener says RESYNC once subscribed: what came before it may be lost.
        async def until(condition) -> None:  # type: ignore[no-untyped-def]
            while not condition():
                await asyncio.sleep(0.01)
        await asyncio.wait_for(until(lambda: heard.count(None) == 2), WAIT_S)
        await bus.announce_watching(["token:x", "token:y"])
        await asyncio.wait_for(until(lambda: heard.count(["token:x", "token:y"]) == 2), WAIT_S)
    finally:
        for task in listeners:
            task.cancel()


async def test_health_says_ok(bus):
    assert (await bus.health()).startswith("ok")


async def test_redis_namespaces_isolate_buses(redis_url):
    first, second = RedisBus(redis_url, namespace()), RedisBus(redis_url, namespace())
    await first.connect()
    await second.connect()
    try:
        async with listening(first) as on_first, listening(second) as on_second:
            await first.publish(frame("doctor:same", 1, {"from": "first"}))
            await second.publish(frame("doctor:same", 2, {"from": "second"}))
            await on_first.until(lambda li: li.frames, "frame on the first bus")
            await on_second.until(lambda li: li.frames, "frame on the second bus")
        assert on_first.frames == [frame("doctor:same", 1, {"from": "first"})]
        assert on_second.frames == [frame("doctor:same", 2, {"from": "second"})]
        assert await first.latest(["doctor:same"]) == {
            "doctor:same": frame("doctor:same", 1, {"from": "first"})}
        assert await second.latest(["doctor:same"]) == {
            "doctor:same": frame("doctor:same", 2, {"from": "second"})}
    finally:
        await first.close()
        await second.close()


async def test_redis_listen_resyncs_after_redis_restart():
    """RedisBus.listen() survives a Redis restart and says RESYNC once it is back."""
    executable, port = find_redis_server(), free_port()
    url, stop = launch_redis(executable, port)
    bus = RedisBus(url, namespace())
    await bus.connect()
    listener = Listener(bus)
    try:
        await listener.ready()
        assert listener.items[0] is RESYNC  # first subscription
        resyncs_before = listener.items.count(RESYNC)
        await asyncio.to_thread(stop)
        url, stop = await asyncio.to_thread(launch_redis, executable, port)
        await listener.until(lambda li: li.items.count(RESYNC) > resyncs_before, "RESYNC")
        after = frame("doctor:after", 1)
        await bus.publish(after)
        await listener.until(lambda li: after in li.frames, "frame published after the restart")
    finally:
        await listener.stop()
        await bus.close()
        await asyncio.to_thread(stop)


async def test_redis_over_a_unix_socket_carries_frames_and_design_keys():
    """REDIS_URL may name a local socket (unix://...), which takes no TCP options: the bus and
    the design keys' client both connect through it (they used to fail on socket_keepalive)."""
    url, stop = await asyncio.to_thread(launch_redis, find_redis_server(), free_port(), True)
    assert url.startswith("unix://")
    bus = RedisBus(url, namespace())
    keys = DesignKeys.connect(url)
    try:
        await bus.connect()
        listener = Listener(bus)
        try:
            await listener.ready()
            sent = frame("doctor:over-the-socket", 1)
            await bus.publish(sent)
            await listener.until(lambda li: sent in li.frames, "the frame over the unix socket")
            assert (await bus.latest([sent.topic]))[sent.topic] == sent
        finally:
            await listener.stop()
        dept_id = secrets.token_hex(8)
        await keys.write_department_counts({dept_id: 7})
        reader = redis.Redis.from_url(url)
        try:
            assert int(await reader.get(department_count_key(dept_id))) == 7
        finally:
            await reader.aclose()
    finally:
        await bus.close()
        await keys.close()
        await asyncio.to_thread(stop)
