"""What the queue engine publishes (engine.py): one frame per topic whose visible content changed,
staged during a recompute and sent in one bus round trip (flush). It owns the engine's epoch (a
new engine rebuilds everything, so clients resync), the versions (from the clock in
microseconds, so they keep growing across engines) and the term that fences the bus: a flush
refused for an older term marks the publisher deposed. Pure but for the bus it is given."""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from app import jsonutil, metrics
from app.live.bus import Bus, Deposed
from app.live.frames import Frame

log = logging.getLogger(__name__)


class Publisher:
    def __init__(self, bus: Bus, shard: int = 0) -> None:
        self._bus = bus
        self.shard = shard
        self.epoch = secrets.token_hex(6)
        self.term = 0              # the leadership term (leader.py), which fences the bus
        self.deposed = False       # the bus has seen a newer term: the engine must stop
        self._version = time.time_ns() // 1000
        self._published: dict[str, str] = {}                        # topic -> data last published
        self._staged: list[tuple[Frame, str, float | None]] = []    # (frame, data, changed_at)
        self.frames = 0            # frames published (stats)

    def stage(self, topic: str, data: Any, changed_at: float | None) -> None:
        """Stage the topic's new snapshot, unless nothing visible changed (sent by flush)."""
        if isinstance(data, dict) and "computed_at" in data:
            data = {k: v for k, v in data.items() if k != "computed_at"}
        text = jsonutil.dumps(data)
        if self._published.get(topic) == text:
            return
        self._version += 1
        self._staged.append((Frame.snapshot_of_json(topic, self.epoch, self._version, text, changed_at), text,
                             changed_at))

    async def flush(self) -> None:
        """Send the staged frames in one bus round trip; only then count them as published.
        Raises Deposed (and stays deposed) when a newer term has published; any other failure
        keeps the frames staged for the next flush."""
        staged, self._staged = self._staged, []
        if not staged:
            return
        try:
            await self._bus.publish_many([frame for frame, _, _ in staged], self.term, self.shard)
        except Deposed:
            log.warning("a newer leadership term has published; this engine (term %d) stops", self.term)
            self.deposed = True
            raise
        except BaseException:
            self._staged = staged + self._staged
            raise
        now = time.time()
        for frame, text, changed_at in staged:
            self._published[frame.topic] = text
            if changed_at is not None:
                metrics.COMMIT_TO_PUBLISH.observe(max(0.0, now - changed_at))
        self.frames += len(staged)

    @property
    def pending(self) -> int:
        """Frames staged and not yet published."""
        return len(self._staged)

    def forget_published(self) -> None:
        """The bus lost its stored snapshots: the next stage of every topic goes out again."""
        self._published.clear()

    async def bus_state_survived(self) -> bool:
        return await self._bus.state_survived(self.epoch, self.shard)
