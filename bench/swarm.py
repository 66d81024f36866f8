"""The client swarm: WebSocket clients spread over worker processes, so that the clients are not
what limits the measurement (check: the same swarm against bench/node_ws_server).

Each worker runs its own event loop and is driven over a pipe: connect, start, stop, close.
A client subscribes to one topic (a whole-hospital TV: one per department); the first message
after each subscribe (the current snapshot, or an ack) is not a change and is not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing as mp
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

from app.gc_policy import PauseMeter

CONNECT_CONCURRENCY = 200   # handshakes in flight per worker
CONNECT_TIMEOUT_S = 120.0   # all of a worker's clients, including the first message
MAX_FRAME_BYTES = 8 * 1024 * 1024  # a big hospital board is one large frame
_STAMP = '"changed_at":'


@dataclass
class ClientSpec:
    topic: str
    staff: bool = False     # sends the API key (every topic but token: needs one)
    more_topics: tuple[str, ...] = ()  # subscribed too, on the same connection
    # A topic published at a fixed pace by design (the operations dashboard: at most one frame a
    # second): its frames are counted apart, not in the commit-to-client figures or the tail,
    # where up to a second of pacing would read as latency or a backlog.
    paced: bool = False

    @property
    def topics(self) -> tuple[str, ...]:
        return (self.topic, *self.more_topics)


@dataclass
class WindowStats:
    """What the clients received between start and stop, summed over workers."""
    frames: int = 0
    other: int = 0          # acks, errors, pongs
    paced_frames: int = 0   # snapshots of paced topics (ClientSpec.paced), not in the latencies
    errors: int = 0
    closed: int = 0
    latencies: array = field(default_factory=lambda: array("d"))
    stamps: array = field(default_factory=lambda: array("d"))  # each latency's changed_at
    first_at: float = 0.0
    last_at: float = 0.0
    gc_pauses: list[list[tuple[float, int, float]]] = field(default_factory=list)  # per worker

    def merge(self, other: dict[str, Any]) -> None:
        self.frames += other["frames"]
        self.other += other["other"]
        self.paced_frames += other["paced_frames"]
        self.errors += other["errors"]
        self.closed += other["closed"]
        lat = array("d")
        lat.frombytes(other["latencies"])
        self.latencies.extend(lat)
        stamps = array("d")
        stamps.frombytes(other["stamps"])
        self.stamps.extend(stamps)
        if other["first_at"]:
            self.first_at = min(self.first_at or other["first_at"], other["first_at"])
        self.last_at = max(self.last_at, other["last_at"])
        self.gc_pauses.append(other["gc_pauses"])

    def changed_between(self, start: float, end: float = float("inf")) -> WindowStats:
        """The frames of the changes committed in [start, end) (epoch seconds): the warm-up
        and the measured part of one continuous drive. Frames without a commit time are left
        out of both."""
        part = WindowStats(errors=self.errors, closed=self.closed, other=self.other,
                           paced_frames=self.paced_frames,
                           first_at=self.first_at, last_at=self.last_at, gc_pauses=self.gc_pauses)
        for stamp, latency in zip(self.stamps, self.latencies, strict=True):
            if start <= stamp < end:
                part.stamps.append(stamp)
                part.latencies.append(latency)
        part.frames = len(part.latencies)
        return part


class _Worker:
    def __init__(self, url: str, key: str, specs: list[ClientSpec], local_ip: str,
                 deflate: bool) -> None:
        self.url, self.key, self.specs, self.local_ip, self.deflate = url, key, specs, local_ip, deflate
        self.sockets: list[Any] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.ready = 0
        self.failed = 0
        self.gc = PauseMeter().install()
        self.reset()

    def reset(self) -> None:
        self.measuring = False
        self.frames = self.other = self.errors = self.closed = self.paced_frames = 0
        self.latencies = array("d")
        self.stamps = array("d")
        self.first_at = self.last_at = 0.0
        self.gc.take()  # the window starts now

    async def _client(self, spec: ClientSpec, limit: asyncio.Semaphore,
                      first: asyncio.Event) -> None:
        from websockets.asyncio.client import connect

        headers = {"Authorization": f"Bearer {self.key}"} if spec.staff else None
        try:
            async with limit:
                ws = await connect(self.url, additional_headers=headers, open_timeout=60,
                                   ping_interval=None, max_size=MAX_FRAME_BYTES,
                                   compression="deflate" if self.deflate else None,
                                   local_addr=(self.local_ip, 0))
                for topic in spec.topics:
                    await ws.send(json.dumps({"type": "subscribe", "topic": topic}))
                for _ in spec.topics:
                    await ws.recv()
        except Exception:
            self.failed += 1
            first.set()
            return
        self.sockets.append(ws)
        self.ready += 1
        first.set()
        try:
            async for message in ws:
                if self.measuring:
                    if spec.paced:
                        self._count_paced(message)
                    else:
                        self._count(message)
        except Exception:
            pass
        if self.measuring:
            self.closed += 1

    def _count_paced(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            message = message.decode()
        if message.startswith('{"type":"snapshot"'):
            self.paced_frames += 1
        else:
            self.other += 1

    def _count(self, message: str | bytes) -> None:
        now = time.time()
        if isinstance(message, bytes):
            message = message.decode()
        if not message.startswith('{"type":"snapshot"'):
            self.other += 1
            if message.startswith('{"type":"error"'):
                self.errors += 1
            return
        self.frames += 1
        self.first_at = self.first_at or now
        self.last_at = now
        # Cheaper than parsing the JSON: changed_at is a top-level number (or null).
        at = message.find(_STAMP)
        if at >= 0:
            start = at + len(_STAMP)
            end = message.find(",", start)
            raw = message[start:end]
            if raw != "null":
                self.stamps.append(float(raw))
                self.latencies.append(now - self.stamps[-1])

    async def connect_all(self) -> dict[str, Any]:
        started = time.monotonic()
        limit = asyncio.Semaphore(CONNECT_CONCURRENCY)
        events = [asyncio.Event() for _ in self.specs]
        self.tasks = [asyncio.create_task(self._client(s, limit, e))
                      for s, e in zip(self.specs, events, strict=True)]
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), CONNECT_TIMEOUT_S)
        return {"ready": self.ready, "failed": self.failed,
                "seconds": time.monotonic() - started}

    def window(self) -> dict[str, Any]:
        return {"frames": self.frames, "other": self.other, "paced_frames": self.paced_frames,
                "errors": self.errors,
                "closed": self.closed, "latencies": self.latencies.tobytes(),
                "stamps": self.stamps.tobytes(),
                "first_at": self.first_at, "last_at": self.last_at, "gc_pauses": self.gc.take()}

    async def close_all(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def _worker_main(pipe: Any, url: str, key: str, specs: list[ClientSpec], local_ip: str,
                 deflate: bool, nofile: int) -> None:
    import resource

    import uvloop

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = nofile if hard == resource.RLIM_INFINITY else min(nofile, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))

    async def serve() -> None:
        worker = _Worker(url, key, specs, local_ip, deflate)
        loop = asyncio.get_running_loop()
        while True:
            command = await loop.run_in_executor(None, pipe.recv)
            if command == "connect":
                pipe.send(await worker.connect_all())
            elif command == "start":
                worker.reset()
                worker.measuring = True
                pipe.send(time.time())
            elif command == "stop":
                worker.measuring = False
                pipe.send(worker.window())
            elif command == "close":
                await worker.close_all()
                pipe.send("closed")
                return

    uvloop.run(serve())


class Swarm:
    """N clients over `workers` processes; each worker connects from its own loopback address,
    so that tens of thousands of connections do not run out of ephemeral ports."""

    def __init__(self, url: str, key: str, specs: list[ClientSpec], *, workers: int,
                 deflate: bool, nofile: int, address_block: int) -> None:
        ctx = mp.get_context("spawn")
        self.pipes = []
        self.processes = []
        for w in range(workers):
            parent, child = ctx.Pipe()
            process = ctx.Process(
                target=_worker_main, daemon=True,
                args=(child, url, key, specs[w::workers], f"127.0.{address_block}.{w + 1}",
                      deflate, nofile))
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    def _all(self, command: str) -> list[Any]:
        for pipe in self.pipes:
            pipe.send(command)
        return [pipe.recv() for pipe in self.pipes]

    async def command(self, command: str) -> list[Any]:
        return await asyncio.to_thread(self._all, command)

    async def connect(self) -> dict[str, Any]:
        results = await self.command("connect")
        return {"ready": sum(r["ready"] for r in results),
                "failed": sum(r["failed"] for r in results),
                "seconds": max(r["seconds"] for r in results)}

    async def start(self) -> float:
        return min(await self.command("start"))

    async def stop(self) -> WindowStats:
        stats = WindowStats()
        for result in await self.command("stop"):
            stats.merge(result)
        return stats

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.command("close"), 60)
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.terminate()
