"""What the queue engine publishes (engine.py): one frame per topic whose visible content changed,
staged during a recompute and sent in one bus round trip (flush). It owns the engine's epoch (a
new engine rebuilds everything, so clients resync), the versions (from the clock in
microseconds, so they keep growing across engines) and the term that fences the bus: a flush
refused for an older term marks the publisher deposed. Pure but for the bus it is given.

A topic may also be withdrawn: its stored snapshot deleted rather than replaced (a patient view
or a whole-hospital topic nobody watches, interest.py). What the bus stores for a topic is then
either its current snapshot or nothing, never an outdated one: a subscriber who finds nothing
waits for the engine to publish it (or reads a patient's view from the database: ws.py)."""

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
        self._withdrawing: dict[str, None] = {}                     # topics to withdraw, in order
        self._absent: set[str] = set()                              # topics withdrawn since
        self.frames = 0            # frames published (stats)
        self.withdrawn = 0         # stored snapshots withdrawn (stats)

    def stage(self, topic: str, data: Any, changed_at: float | None) -> None:
        """Stage the topic's new snapshot, unless nothing visible changed (sent by flush)."""
        if isinstance(data, dict) and "computed_at" in data:
            data = {k: v for k, v in data.items() if k != "computed_at"}
        text = jsonutil.dumps(data)
        self._withdrawing.pop(topic, None)
        if self._published.get(topic) == text:
            return
        self._version += 1
        self._staged.append((Frame.snapshot_of_json(topic, self.epoch, self._version, text, changed_at), text,
                             changed_at))

    def withdraw(self, topic: str) -> None:
        """Delete the topic's stored snapshot at the next flush instead of replacing it (unless
        this engine has already; one it never published may hold an older engine's)."""
        if topic not in self._absent:
            self._withdrawing[topic] = None

    def is_published(self, topic: str) -> bool:
        """This engine's last snapshot of the topic is the stored one."""
        return topic in self._published

    async def flush(self) -> None:
        """Send the staged frames (and withdrawals) in one bus round trip; only then count them as
        published. Raises Deposed (and stays deposed) when a newer term has published; any other
        failure keeps them staged for the next flush."""
        staged, self._staged = self._staged, []
        withdrawing, self._withdrawing = self._withdrawing, {}
        if not staged and not withdrawing:
            return
        try:
            await self._bus.publish_many([frame for frame, _, _ in staged], self.term, self.shard,
                                         list(withdrawing))
        except Deposed:
            log.warning("a newer leadership term has published; this engine (term %d) stops", self.term)
            self.deposed = True
            raise
        except BaseException:
            self._staged = staged + self._staged
            self._withdrawing = {**withdrawing, **self._withdrawing}
            raise
        now = time.time()
        for frame, text, changed_at in staged:
            self._published[frame.topic] = text
            self._absent.discard(frame.topic)
            if changed_at is not None:
                metrics.COMMIT_TO_PUBLISH.observe(max(0.0, now - changed_at))
        for topic in withdrawing:
            self._published.pop(topic, None)
            self._absent.add(topic)
        self.frames += len(staged)
        self.withdrawn += len(withdrawing)
        patient_views = sum(1 for topic in withdrawing if topic.startswith("token:"))
        if patient_views:
            metrics.PATIENT_VIEWS_WITHDRAWN.inc(patient_views)

    @property
    def pending(self) -> int:
        """Frames (and withdrawals) staged and not yet sent."""
        return len(self._staged) + len(self._withdrawing)

    def forget(self, topic: str) -> None:
        """Keep no record of the topic: it will not change again (a closed visit's view). Its
        record would otherwise stay for the engine's life, one per token of every day."""
        self._published.pop(topic, None)
        self._absent.discard(topic)

    def forget_published(self) -> None:
        """The bus lost its stored snapshots: the next stage of every topic goes out again."""
        self._published.clear()
        self._absent.clear()

    async def bus_state_survived(self) -> bool:
        return await self._bus.state_survived(self.epoch, self.shard)
