"""One bus interface, two backends: in-process (one worker) and Redis (many processes and nodes).

The bus carries snapshot frames: each publish stores the topic's latest frame (so a process
can answer a new subscriber without the database) and fans the frame out to every process. It
also carries what the web processes watch (interest.py), from them to the engines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from app.live.frames import BATCH_SEPARATOR, Frame, decode_bus_message

log = logging.getLogger(__name__)

# listen() yields frames, and None for "you may have missed frames: reread what you need".
RESYNC = None
SNAPSHOT_TTL_S = 2 * 24 * 3600  # a topic's latest frame outlives its visit day, then expires

# KEYS: each frame's key, then each key to withdraw, then the term key; ARGV: ttl, channel,
# separator, the publishing engine's term, the number of frames, then the encoded frames in KEYS'
# order, then their versions in the same order.
# Fencing: a frame of an older term than the newest seen (a deposed leader that has not noticed
# yet, e.g. one resumed after a freeze) is refused whole: nothing stored, nothing published, -1
# returned. A stored snapshot only moves forward: a frame whose topic already holds a newer or
# equal version (a slower concurrent recompute) is neither stored nor published. A withdrawn
# topic's stored snapshot is deleted (a patient view nobody watches: publisher.py). Returns how
# many frames were published.
PUBLISH_FRAMES_LUA = """
local ttl, channel, separator, term, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local term_key = KEYS[#KEYS]
local newest_term = tonumber(redis.call('GET', term_key) or '0')
if term < newest_term then
    return -1
elseif term > newest_term then
    redis.call('SET', term_key, term)
end
local frames = {}
for i = 1, n do
    local version = tonumber(ARGV[5 + n + i])
    local stored = redis.call('GET', KEYS[i])
    local stored_version = stored and tonumber(string.match(stored, '^[^\\n]*\\n[^\\n]*\\n(%d+)\\n'))
    if not stored_version or stored_version < version then
        redis.call('SET', KEYS[i], ARGV[5 + i], 'EX', ttl)
        frames[#frames + 1] = ARGV[5 + i]
    end
end
for i = n + 1, #KEYS - 1 do
    redis.call('DEL', KEYS[i])
end
if #frames > 0 then
    redis.call('PUBLISH', channel, table.concat(frames, separator))
end
return #frames
"""


class Deposed(RuntimeError):
    """The bus has seen frames of a newer leadership term: this engine is no longer the leader."""


class Bus(Protocol):
    async def connect(self) -> None: ...
    async def close(self) -> None: ...
    async def publish(self, frame: Frame, term: int = 0, shard: int = 0) -> None: ...
    async def publish_many(self, frames: list[Frame], term: int = 0, shard: int = 0,
                           withdrawn: Sequence[str] = ()) -> None:
        """Store and send the frames, and delete the stored snapshots of the withdrawn topics
        (nothing is sent for those). Raises Deposed when a newer term of the same engine shard
        has published (fencing: each shard's lease counts its own terms)."""
        ...
    async def latest(self, topics: list[str]) -> dict[str, Frame]: ...
    def listen(self) -> AsyncIterator[Frame | None]: ...

    async def announce_watching(self, topics: list[str]) -> None:
        """This process has subscribers for these topics (interest.py)."""
        ...

    def listen_watching(self) -> AsyncIterator[list[str] | None]:
        """Every process's announcements; None (RESYNC) first and after any gap in which some
        may have been missed."""
        ...

    async def health(self) -> str: ...

    async def state_survived(self, epoch: str, shard: int = 0) -> bool:
        """False if the stored frames may be gone since this shard's last call (e.g. Redis
        restarted)."""
        ...


class MemoryBus:
    """Everything in this process: for a single worker with no Redis."""

    def __init__(self) -> None:
        self._frames: dict[str, Frame] = {}
        self._listeners: set[asyncio.Queue[Frame | None]] = set()
        self._watch_listeners: set[asyncio.Queue[list[str] | None]] = set()
        self._terms: dict[int, int] = {}  # engine shard -> newest term seen

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def publish(self, frame: Frame, term: int = 0, shard: int = 0) -> None:
        newest = self._terms.get(shard, 0)
        if term < newest:
            raise Deposed(f"term {term} of shard {shard} is older than {newest}")
        self._terms[shard] = term
        stored = self._frames.get(frame.topic)
        if stored is not None and stored.version >= frame.version:
            return  # only forward, as in Redis
        self._frames[frame.topic] = frame
        for queue in self._listeners:
            queue.put_nowait(frame)

    async def publish_many(self, frames: list[Frame], term: int = 0, shard: int = 0,
                           withdrawn: Sequence[str] = ()) -> None:
        if term < self._terms.get(shard, 0):
            raise Deposed(f"term {term} of shard {shard} is older than {self._terms[shard]}")
        for frame in frames:
            await self.publish(frame, term, shard)
        for topic in withdrawn:
            self._frames.pop(topic, None)

    async def latest(self, topics: list[str]) -> dict[str, Frame]:
        return {t: self._frames[t] for t in topics if t in self._frames}

    async def announce_watching(self, topics: list[str]) -> None:
        for queue in self._watch_listeners:
            queue.put_nowait(list(topics))

    async def listen_watching(self) -> AsyncIterator[list[str] | None]:
        queue: asyncio.Queue[list[str] | None] = asyncio.Queue()
        self._watch_listeners.add(queue)
        try:
            yield RESYNC
            while True:
                yield await queue.get()
        finally:
            self._watch_listeners.discard(queue)

    async def listen(self) -> AsyncIterator[Frame | None]:
        queue: asyncio.Queue[Frame | None] = asyncio.Queue()
        self._listeners.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._listeners.discard(queue)

    async def health(self) -> str:
        return "ok (in-process)"

    async def state_survived(self, epoch: str, shard: int = 0) -> bool:
        return True


class RedisBus:
    """Latest frames in Redis keys, fan-out over Redis pub/sub."""

    RECONNECT_MAX_S = 5.0  # backoff ceiling while Redis is away

    def __init__(self, url: str, namespace: str = "opd") -> None:
        # The namespace keeps deployments (and test runs) that share one Redis apart.
        self._channel = f"{namespace}:frames"
        self._watching_channel = f"{namespace}:watching"
        self._key = f"{namespace}:frame:"
        self._marker = f"{namespace}:engine"
        self._term_key = f"{namespace}:term"
        self._redis = redis_client(url)
        # redis-py sends EVALSHA and falls back to EVAL when Redis lost its script cache.
        self._publish_script = self._redis.register_script(PUBLISH_FRAMES_LUA)

    async def connect(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()

    def _of_shard(self, key: str, shard: int) -> str:
        # Shard 0 keeps the keys of the single engine, so one shard is exactly the old layout.
        return key if shard == 0 else f"{key}:{shard}"

    async def publish(self, frame: Frame, term: int = 0, shard: int = 0) -> None:
        await self.publish_many([frame], term, shard)

    async def publish_many(self, frames: list[Frame], term: int = 0, shard: int = 0,
                           withdrawn: Sequence[str] = ()) -> None:
        """All of a recompute's frames in one command: a script stores each as its topic's latest
        and publishes them together as one message. One command instead of two per frame: at a
        hundred changes a second the per-command cost in redis-py was most of the engine's CPU."""
        if not frames and not withdrawn:
            return
        published = await self._publish_script(
            keys=[*(self._key + frame.topic for frame in frames), *(self._key + t for t in withdrawn),
                  self._of_shard(self._term_key, shard)],
            args=[SNAPSHOT_TTL_S, self._channel, BATCH_SEPARATOR, term, len(frames),
                  *(f.encode() for f in frames), *(f.version for f in frames)])
        if published == -1:
            raise Deposed(f"a newer leadership term than {term} of shard {shard} has published")

    async def latest(self, topics: list[str]) -> dict[str, Frame]:
        if not topics:
            return {}
        values = await self._redis.mget([self._key + t for t in topics])
        return {t: Frame.decode(v.decode() if isinstance(v, bytes) else v)
                for t, v in zip(topics, values, strict=True) if v is not None}

    async def listen(self) -> AsyncIterator[Frame | None]:
        # Frames published while we were away are lost: the hub rereads what it needs.
        async for message in self._messages(self._channel):
            if message is None:
                yield RESYNC
            else:
                for frame in decode_bus_message(message):
                    yield frame

    async def announce_watching(self, topics: list[str]) -> None:
        if topics:
            await self._redis.publish(self._watching_channel, "\n".join(topics))

    async def listen_watching(self) -> AsyncIterator[list[str] | None]:
        async for message in self._messages(self._watching_channel):
            yield RESYNC if message is None else message.split("\n")

    async def _messages(self, channel: str) -> AsyncIterator[str | None]:
        """The channel's messages, across reconnects; None on each (re)subscription, since what
        was published meanwhile is lost."""
        delay = 0.1
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                delay = 0.1
                yield None
                while True:
                    message = await pubsub.get_message(timeout=30.0)
                    if message is None or message["type"] != "message":
                        continue
                    yield message["data"].decode()
            except (OSError, ConnectionError) as exc:
                log.warning("redis subscription lost (%s); retrying in %.1fs", exc, delay)
            except Exception as exc:  # redis-py raises its own ConnectionError subclasses
                if exc.__class__.__module__.startswith("redis"):
                    log.warning("redis subscription lost (%s); retrying in %.1fs", exc, delay)
                else:
                    raise
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.RECONNECT_MAX_S)

    async def state_survived(self, epoch: str, shard: int = 0) -> bool:
        # Redis here keeps nothing on disk: a restart empties it, and with it this marker (one
        # per shard: the first shard to look must not hide the loss from the others).
        previous = await self._redis.set(self._of_shard(self._marker, shard), epoch, get=True)
        return previous is not None

    async def health(self) -> str:
        try:
            await self._redis.ping()
            return "ok"
        except Exception as exc:
            return f"error: {exc.__class__.__name__}"


def redis_client(url: str) -> Any:
    """A redis-py asyncio client for `url`: redis:// or rediss:// (TCP, with keepalive so a
    half-open connection is found) or unix:// (a local socket, which takes no TCP options and
    spares both sides the loopback TCP stack)."""
    import redis.asyncio as redis

    options: dict[str, Any] = {"health_check_interval": 15, "retry_on_timeout": True}
    if not url.startswith("unix://"):
        options["socket_keepalive"] = True
    return redis.Redis.from_url(url, **options)


def create_bus(redis_url: str | None, namespace: str = "opd") -> Bus:
    return RedisBus(redis_url, namespace) if redis_url else MemoryBus()
