"""Capture the frames the app's engine publishes, and replay them into a fan-out server.

Capture: subscribe to the bus channel `<namespace>:frames` (a message holds one recompute's
frames: app/live/frames.py decode_bus_message). Replay feeds the same texts either to the app's hub
(published on that channel, as the engine does) or to bench/node_ws_server (over its control
socket), so both fan-out paths get identical input. Each replayed text gets a fresh changed_at
(the send time), so the clients' latency is send-to-receive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.live.frames import decode_bus_message

_STAMP = re.compile(r'"changed_at":(?:null|[-0-9.eE+]+)')
BATCH_S = 0.002          # timed replay sends what is due every 2 ms
FLAT_OUT_BATCH = 500     # frames per publish round trip when replaying as fast as possible
# Redis queues pub/sub messages for a slow subscriber (and drops it past a limit) instead of
# pushing back; the replayer waits while the hub's backlog is above this, as TCP makes the
# Node server's sender wait.
HUB_BACKLOG_BYTES = 1 << 20


@dataclass(frozen=True)
class Captured:
    at: float       # epoch seconds when the bus delivered it
    topic: str
    epoch: str
    version: int
    text: str


class Capture:
    def __init__(self, redis_url: str, namespace: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(redis_url)
        self._channel = f"{namespace}:frames"
        self.frames: list[Captured] = []
        self.recording = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self._channel)
        self._task = asyncio.create_task(self._read(pubsub))

    async def _read(self, pubsub: object) -> None:
        while True:
            message = await pubsub.get_message(timeout=1.0)  # type: ignore[attr-defined]
            if message is None or not self.recording:
                continue
            now = time.time()
            for frame in decode_bus_message(message["data"].decode()):  # one recompute's frames
                self.frames.append(Captured(now, frame.topic, frame.epoch, frame.version, frame.text))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._redis.aclose()


def changed_at(text: str) -> float | None:
    """The change time a frame carries (None for a frame no change caused)."""
    match = _STAMP.search(text)
    value = match.group(0).split(":", 1)[1] if match else "null"
    return None if value == "null" else float(value)


def stamp(text: str, now: float) -> str:
    return _STAMP.sub(f'"changed_at":{now:.6f}', text, count=1)


Send = Callable[[list[tuple[str, str]]], Awaitable[None]]


class AppTarget:
    """Publishes on the app's bus channel, with versions above any the hub has seen."""

    def __init__(self, redis_url: str, namespace: str, base_version: int) -> None:
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(redis_url)
        self._channel = f"{namespace}:frames"
        self._version = base_version
        self._epochs: dict[str, str] = {}

    async def wait_for_room(self) -> None:
        """Wait while a pub/sub subscriber (the app's hub) has a backlog in Redis."""
        while True:
            clients = await self._redis.client_list(_type="pubsub")
            if max((int(c.get("omem", 0)) for c in clients), default=0) < HUB_BACKLOG_BYTES:
                return
            await asyncio.sleep(0.001)

    def remember_epochs(self, frames: list[Captured]) -> None:
        self._epochs = {f.topic: f.epoch for f in frames}

    async def send(self, batch: list[tuple[str, str]]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for topic, text in batch:
                self._version += 1
                pipe.publish(self._channel, f"{topic}\n{self._epochs.get(topic, 'bench')}\n"
                                            f"{self._version}\n{text}")
            await pipe.execute()

    async def close(self) -> None:
        await self._redis.aclose()


class NodeTarget:
    def __init__(self, control_url: str) -> None:
        self._url = control_url
        self._ws: object = None

    async def connect(self) -> None:
        from websockets.asyncio.client import connect

        self._ws = await connect(self._url, max_size=None, compression=None)

    async def send(self, batch: list[tuple[str, str]]) -> None:
        await self._ws.send(json.dumps({"frames": batch}))  # type: ignore[attr-defined]

    async def close(self) -> None:
        await self._ws.close()  # type: ignore[attr-defined]


async def replay_timed(frames: list[Captured], send: Send) -> float:
    """Send each frame at its captured offset; return the seconds it took."""
    if not frames:
        return 0.0
    origin = frames[0].at
    started = time.monotonic()
    i = 0
    while i < len(frames):
        elapsed = time.monotonic() - started
        batch = []
        while i < len(frames) and frames[i].at - origin <= elapsed:
            batch.append((frames[i].topic, stamp(frames[i].text, time.time())))
            i += 1
        if batch:
            await send(batch)
        await asyncio.sleep(BATCH_S)
    return time.monotonic() - started


async def replay_flat_out(frames: list[Captured], send: Send, seconds: float,
                          wait_for_room: Callable[[], Awaitable[None]] | None = None) -> int:
    """Send the frames round and round, as fast as the target takes them; return how many."""
    sent = 0
    if not frames:
        return sent
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        now = time.time()
        batch = []
        for _ in range(FLAT_OUT_BATCH):
            frame = frames[i % len(frames)]
            batch.append((frame.topic, stamp(frame.text, now)))
            i += 1
        if wait_for_room is not None:
            await wait_for_room()
        await send(batch)
        sent += len(batch)
    return sent
