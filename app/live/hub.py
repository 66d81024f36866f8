"""Fan-out in one process: every frame from the bus goes to this process's subscribed clients.

A client never holds up another: each has its own writer task and a one-slot-per-topic
mailbox, so a client that falls behind skips straight to the latest snapshot of each topic,
and one whose send blocks past the timeout is disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from app import metrics
from app.live.bus import Bus
from app.live.frames import Frame
from app.live.interest import is_announced
from app.live.mailbox import LatestByKey

log = logging.getLogger(__name__)

SendText = Callable[[str], Awaitable[None]]


class Client:
    def __init__(self, send: SendText, close: Callable[[], Awaitable[None]],
                 send_timeout_s: float) -> None:
        self._send = send
        self._close = close
        self._send_timeout_s = send_timeout_s
        self._mailbox: LatestByKey[str] = LatestByKey()  # topic (or reply key) -> latest text
        self.topics: set[str] = set()
        self.dropped = 0                      # snapshots skipped because a newer one came
        self._closing: asyncio.Future[None] | None = None
        self._replies = 0                     # replies ever queued (their mailbox keys)
        self._pending_replies = 0             # replies queued and not yet sent
        self.closed = False
        self._writer = asyncio.create_task(self._write_loop(), name="ws-writer")

    MAX_PENDING_REPLIES = 256  # a client that sends junk faster than it reads is cut off

    def reply(self, text: str) -> None:
        """A response to one of the client's messages: each is delivered, none replaces another."""
        self._replies += 1
        self._pending_replies += 1
        if self._pending_replies > self.MAX_PENDING_REPLIES:
            if not self.closed:
                self.closed = True
                self._writer.cancel()
                self._closing = asyncio.ensure_future(self._close())
            return
        self.offer(f"\x00reply:{self._replies}", text)

    def offer(self, key: str, text: str) -> None:
        if self.closed:
            return
        if self._mailbox.put(key, text):
            self.dropped += 1
            metrics.WS_SKIPPED.inc()

    async def _write_loop(self) -> None:
        try:
            while True:
                key, text = await self._mailbox.take()
                if key.startswith("\x00"):
                    self._pending_replies -= 1
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for wraps every send in a
                # task of its own, which at thousands of frames a second was a tenth of the
                # fan-out process's time (profiled).
                async with asyncio.timeout(self._send_timeout_s):
                    await self._send(text)
        except TimeoutError:
            log.info("disconnecting a WebSocket client stuck for %.0fs", self._send_timeout_s)
            metrics.WS_STUCK.inc()
            self.closed = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._close(), timeout=1)
        except Exception:  # the socket went away: the reader side notices and cleans up
            self.closed = True

    async def stop(self) -> None:
        self.closed = True
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._writer


class Hub:
    RESYNC_BACKOFF_MAX_S = 5.0

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._subscribers: dict[str, set[Client]] = {}
        self.subscriptions_by_kind: dict[str, int] = {}  # topic kind -> subscriptions (metrics)
        self._frames: dict[str, Frame] = {}    # latest frame of each topic someone here watches
        self._frame_waiters: dict[str, set[asyncio.Future[Frame]]] = {}  # topic -> first_frame()s
        self.frames_in = 0
        self.frames_out = 0
        self.connections = 0                   # open WebSockets of this process (metrics)
        self.trouble: str | None = None        # why this hub cannot deliver now (for /healthz)
        # What the engines must hear this process watches (interest.py): new topics soon, all of
        # them every refresh and after the bus came back.
        self._unannounced: set[str] = set()
        self._announce_all = True
        self._announce_due = asyncio.Event()

    @property
    def client_count(self) -> int:
        return len({c for subs in self._subscribers.values() for c in subs})

    async def run(self) -> None:
        async for frame in self._bus.listen():
            if frame is None:
                self._announce_all = True
                self._announce_due.set()
                await self._resync_until_done()
                continue
            self.frames_in += 1
            self._deliver(frame)

    async def _resync_until_done(self) -> None:
        """A reconnect may have cost frames: reread until it works. An error here once ended the
        hub for good while the process looked healthy (issue 20); now it is retried with backoff
        and /healthz says the hub is behind meanwhile."""
        delay = 0.1
        while True:
            try:
                await self._resync()
                self.trouble = None
                return
            except Exception as exc:
                self.trouble = f"cannot reread the stored snapshots ({exc.__class__.__name__})"
                log.warning("hub resync failed (%r); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.RESYNC_BACKOFF_MAX_S)

    def _deliver(self, frame: Frame) -> None:
        subscribers = self._subscribers.get(frame.topic)
        if not subscribers:
            return
        current = self._frames.get(frame.topic)
        if current is not None and current.version >= frame.version:
            return
        self._frames[frame.topic] = frame
        for waiter in self._frame_waiters.pop(frame.topic, ()):
            if not waiter.done():
                waiter.set_result(frame)
        for client in subscribers:
            client.offer(frame.topic, frame.text)
        self.frames_out += len(subscribers)
        metrics.WS_FRAMES.inc(len(subscribers))  # once per frame, not per client

    async def _resync(self) -> None:
        """After a bus reconnect: reread every watched topic and pass on what is newer."""
        topics = list(self._subscribers)
        for start in range(0, len(topics), 500):
            latest = await self._bus.latest(topics[start:start + 500])
            for frame in latest.values():
                self._deliver(frame)

    ANNOUNCE_CHUNK = 2000          # topics per announcement message
    ANNOUNCE_GATHER_S = 0.005      # new topics gathered into one announcement this long

    async def announce_watching(self, refresh_s: float) -> None:
        """Tell the engines which patient views and whole-hospital topics this process has
        subscribers for: each new one within a few milliseconds, and all of them every refresh_s
        (interest.py). An announcement that fails is made again, whole, once the bus is back."""
        loop = asyncio.get_running_loop()
        next_full = loop.time()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_full - loop.time())):
                    await self._announce_due.wait()
            await asyncio.sleep(self.ANNOUNCE_GATHER_S)
            self._announce_due.clear()
            if self._announce_all or loop.time() >= next_full:
                self._announce_all = False
                self._unannounced.clear()
                next_full = loop.time() + refresh_s
                topics = [t for t in self._subscribers if is_announced(t)]
            else:
                topics, self._unannounced = list(self._unannounced), set()
            try:
                for start in range(0, len(topics), self.ANNOUNCE_CHUNK):
                    await self._bus.announce_watching(topics[start:start + self.ANNOUNCE_CHUNK])
            except Exception as exc:
                log.warning("could not announce the watched topics (%r); retrying", exc)
                self._announce_all = True
                await asyncio.sleep(min(1.0, refresh_s))
                self._announce_due.set()

    async def subscribe(self, client: Client, topic: str) -> Frame | None:
        """Register first, then read the cache, so no frame falls in between."""
        if topic not in self._subscribers and is_announced(topic):
            self._unannounced.add(topic)
            self._announce_due.set()
        subscribers = self._subscribers.setdefault(topic, set())
        if client not in subscribers:
            subscribers.add(client)
            kind = metrics.topic_kind(topic)
            self.subscriptions_by_kind[kind] = self.subscriptions_by_kind.get(kind, 0) + 1
        client.topics.add(topic)
        frame = self._frames.get(topic)
        if frame is None:
            try:
                frame = (await self._bus.latest([topic])).get(topic)
            except Exception as exc:
                # The bus is away: the client stays registered and gets the topic's frame when
                # the hub resyncs after the bus comes back; the socket is not disturbed.
                log.warning("no stored snapshot for %s while the bus is away (%r)", topic, exc)
                return None
            if frame is not None:
                current = self._frames.get(topic)
                if current is None or current.version < frame.version:
                    self._frames[topic] = frame
                frame = self._frames[topic]
        return frame

    async def first_frame(self, topic: str, timeout_s: float) -> Frame | None:
        """The topic's frame here as soon as there is one (offered to its subscribers as every
        frame is), or None after timeout_s."""
        frame = self._frames.get(topic)
        if frame is not None:
            return frame
        waiter: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._frame_waiters.setdefault(topic, set()).add(waiter)
        try:
            async with asyncio.timeout(timeout_s):
                return await waiter
        except TimeoutError:
            return None
        finally:
            waiters = self._frame_waiters.get(topic)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._frame_waiters[topic]

    def cached(self, topic: str) -> Frame | None:
        """The latest frame of a topic this process holds, if any."""
        return self._frames.get(topic)

    def unsubscribe(self, client: Client, topic: str) -> None:
        client.topics.discard(topic)
        subscribers = self._subscribers.get(topic)
        if subscribers is None:
            return
        if client in subscribers:
            subscribers.discard(client)
            self.subscriptions_by_kind[metrics.topic_kind(topic)] -= 1
        if not subscribers:
            del self._subscribers[topic]
            self._frames.pop(topic, None)

    def remove(self, client: Client) -> None:
        for topic in list(client.topics):
            self.unsubscribe(client, topic)

