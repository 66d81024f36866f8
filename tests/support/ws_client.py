"""A WebSocket client of /ws for tests: reads every message in the background and lets a test
wait, with a bounded timeout, until what it expects has arrived."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import websockets

# Generous: a loaded CI machine may take seconds for a recompute; the wait ends at the first match.
WAIT_S = 10.0

Message = dict[str, Any]


class LiveClient:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.messages: list[Message] = []        # every message, in arrival order
        self.snapshots: dict[str, Message] = {}  # topic -> newest snapshot message
        self.closed = False
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read_loop(), name="test-ws-reader")

    async def _read_loop(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                self.messages.append(message)
                if message.get("type") == "snapshot":
                    self.snapshots[message["topic"]] = message
                async with self._changed:
                    self._changed.notify_all()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed = True
            async with self._changed:
                self._changed.notify_all()

    async def send(self, message: Message | str) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def subscribe(self, topic: str, **extra: Any) -> None:
        await self.send({"type": "subscribe", "topic": topic, **extra})

    async def until(self, condition: Callable[[LiveClient], Any], timeout: float = WAIT_S,
                    what: str = "the expected state") -> Any:
        """Wait until condition(self) is truthy; return its value."""
        async def wait() -> Any:
            async with self._changed:
                while True:
                    value = condition(self)
                    if value:
                        return value
                    if self.closed:
                        raise AssertionError(
                            f"connection closed before {what}; got {self.messages[-5:]}")
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"no {what} within {timeout:.0f} s; last messages: {self.messages[-3:]}") from None

    async def expect(self, predicate: Callable[[Message], bool], *, since: int = 0,
                     timeout: float = WAIT_S, what: str = "matching message") -> Message:
        """The first message from index `since` on that satisfies predicate."""
        def find(client: LiveClient) -> Message | None:
            return next((m for m in client.messages[since:] if predicate(m)), None)

        result: Message = await self.until(find, timeout, what)
        return result

    async def subscribed(self, topic: str, timeout: float = WAIT_S, **extra: Any) -> Message:
        """Subscribe and return the reply: a snapshot, a 'subscribed' ack or an error."""
        since = len(self.messages)
        await self.subscribe(topic, **extra)
        return await self.expect(lambda m: m.get("topic") == topic
                                 and m.get("type") in ("snapshot", "subscribed", "error"),
                                 since=since, timeout=timeout, what=f"reply to subscribe {topic}")

    async def data_where(self, topic: str, predicate: Callable[[Any], bool],
                         timeout: float = WAIT_S, what: str | None = None) -> Any:
        """Wait until the newest snapshot of topic satisfies predicate(data); return the data."""
        def check(client: LiveClient) -> Any:
            snap = client.snapshots.get(topic)
            return snap["data"] if snap is not None and predicate(snap["data"]) else None

        try:
            return await self.until(check, timeout, what or f"snapshot of {topic} as expected")
        except AssertionError as exc:
            snap = self.snapshots.get(topic)
            raise AssertionError(f"{exc.args[0].split('; last messages')[0]}; newest snapshot of "
                                 f"{topic}: {snap and snap['data']}") from None

    def snapshots_of(self, topic: str) -> list[Message]:
        return [m for m in self.messages if m.get("type") == "snapshot" and m.get("topic") == topic]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader


@contextlib.asynccontextmanager
async def live_client(ws_url: str, key: str | None = None, **connect_kwargs: Any
                      ) -> AsyncIterator[LiveClient]:
    headers = {"Authorization": f"Bearer {key}"} if key else None
    ws = await websockets.connect(ws_url, additional_headers=headers, open_timeout=10,
                                  **connect_kwargs)
    client = LiveClient(ws)
    try:
        yield client
    finally:
        await client.close()
