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
        self._frames: dict[str, Frame] = {}    # latest frame of each topic someone here watches
        self.frames_in = 0
        self.frames_out = 0
        self.connections = 0                   # open WebSockets of this process (metrics)
        self.trouble: str | None = None        # why this hub cannot deliver now (for /healthz)

    @property
    def client_count(self) -> int:
        return len({c for subs in self._subscribers.values() for c in subs})

    async def run(self) -> None:
        async for frame in self._bus.listen():
            if frame is None:
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

    async def subscribe(self, client: Client, topic: str) -> Frame | None:
        """Register first, then read the cache, so no frame falls in between."""
        self._subscribers.setdefault(topic, set()).add(client)
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

    def subscriptions(self) -> list[tuple[str, set[Client]]]:
        """Each watched topic with its clients here (for the metrics)."""
        return list(self._subscribers.items())

    def cached(self, topic: str) -> Frame | None:
        """The latest frame of a topic this process holds, if any."""
        return self._frames.get(topic)

    def unsubscribe(self, client: Client, topic: str) -> None:
        client.topics.discard(topic)
        subscribers = self._subscribers.get(topic)
        if subscribers is None:
            return
        subscribers.discard(client)
        if not subscribers:
            del self._subscribers[topic]
            self._frames.pop(topic, None)

    def remove(self, client: Client) -> None:
        for topic in list(client.topics):
            self.unsubscribe(client, topic)
