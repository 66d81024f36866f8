"""The queue engine split across processes (OPD_ENGINE_SHARDS; issue 19, docs/architecture.md).

Hospitals are hashed to a fixed number of shards. Each shard is led like the single engine was:
by the holder of its own lease (key OPD_LEADER_LOCK_KEY + shard), with its own term fencing its
own publishes (leader.py, bus.py). Every engine process runs one LeaderLoop per shard and beats
in `engine_members`; a free shard goes to a member leading fewer than its fair share,
ceil(shards / live members), and no more than any other; a member leading more than its share,
or two more than another, hands its highest shard back. So a process that joins is
handed shards within a second or two, and the shards of one that dies or freezes lapse and are
taken by the others within seconds. With one shard (the default) nothing of this runs: the one
lease is taken by whoever comes first, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import secrets
import socket
from collections.abc import Callable

import asyncpg

from app.live.engine import QueueEngine
from app.live.leader import LeaderLoop
from app.settings import Settings

log = logging.getLogger(__name__)

MEMBER_BEAT_S = 0.5   # each process beats this often ...
MEMBER_TTL_S = 1.5    # ... and counts as a member while its last beat is this recent (as a lease)
BEATS_BEFORE_TAKING = 2  # processes started together see each other before any takes a shard
MAX_SHARDS = 64


def process_holder() -> str:
    """How a process names itself in engine_lease and engine_members."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class FairShare:
    """How many shards this process should lead, from the group's live membership. Pure: the
    heartbeat (EngineGroup._beat) feeds it, the leader loops ask it."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.held: set[int] = set()   # the shards this process leads now
        self.members = 0              # live members sharing our shard count, this one included
        self.disagreeing = 0          # live members configured with another shard count
        self.fewest_held = 0          # the fewest shards a live member leads
        self.beats = 0

    def observed(self, members: int, disagreeing: int, fewest_held: int = 0) -> None:
        if disagreeing and not self.disagreeing:
            log.error("engine processes disagree on OPD_ENGINE_SHARDS (%d here, %d other members "
                      "differ): taking no new shard until they agree", self.count, disagreeing)
        self.members, self.disagreeing, self.fewest_held = members, disagreeing, fewest_held
        self.beats += 1

    def quota(self) -> int:
        return math.ceil(self.count / max(self.members, 1))

    def may_take(self, shard: int) -> bool:
        """A free shard goes to a member that leads fewer than its quota and no more than any
        other member: so the member that just handed one over does not take it straight back,
        and a newcomer gets it. (While shards are free some member is below its quota, and the
        one leading fewest always is: nothing stays unled.)"""
        if self.count == 1:
            return True
        if self.beats < BEATS_BEFORE_TAKING or self.disagreeing or shard in self.held:
            return False
        return len(self.held) < self.quota() and len(self.held) <= self.fewest_held

    def must_yield(self, shard: int) -> bool:
        """True for this process's highest shard while it leads more than its quota, or two
        more than some other member (one has joined, or come back): one shard at a time, until
        the shares differ by at most one."""
        if self.count == 1 or shard not in self.held or self.beats < BEATS_BEFORE_TAKING:
            return False
        held = len(self.held)
        over = held > self.quota() or held - self.fewest_held >= 2
        return over and shard == max(self.held)


class EngineGroup:
    """This process's part in leading the queue engine: one LeaderLoop per shard."""

    def __init__(self, dsn: str, pool: asyncpg.Pool, settings: Settings,
                 make_engine: Callable[[int, int], QueueEngine]) -> None:
        self.count = settings.engine_shards
        self.holder = process_holder()
        self.share = FairShare(self.count)
        self._pool = pool
        self._key = settings.leader_lock_key
        self.loops = [
            LeaderLoop(dsn, settings.leader_lock_key + shard, functools.partial(make_engine, shard, self.count),
                       settings.safety_refresh_s, settings.eta_tick_s,
                       shard=shard, share=self.share if self.count > 1 else None, holder=self.holder)
            for shard in range(self.count)]

    @property
    def is_leader(self) -> bool:
        return any(loop.is_leader for loop in self.loops)

    @property
    def held_shards(self) -> list[int]:
        return [loop.shard for loop in self.loops if loop.is_leader]

    @property
    def engines(self) -> list[QueueEngine]:
        return [loop.engine for loop in self.loops if loop.is_leader and loop.engine is not None]

    @property
    def leader_terms(self) -> int:
        return sum(loop.leader_terms for loop in self.loops)

    def describe(self) -> str:
        """For /healthz: which shards this process leads."""
        held = ",".join(map(str, self.held_shards)) or "none"
        return f"{held} of {self.count} (members {self.share.members})"

    async def run(self) -> None:
        tasks = [asyncio.create_task(loop.run(), name=f"leader-shard-{loop.shard}") for loop in self.loops]
        if self.count > 1:
            tasks.append(asyncio.create_task(self._beat(), name="engine-membership"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _beat(self) -> None:
        ttl_ms = int(MEMBER_TTL_S * 1000)
        try:
            while True:
                try:
                    row = await self._pool.fetchrow(
                        "SELECT members, disagreeing, fewest_held FROM engine_member_beat($1, $2, $3, $4)",
                        self._key, self.holder, self.count, ttl_ms, timeout=MEMBER_TTL_S)
                    if row is not None:
                        self.share.observed(row["members"], row["disagreeing"], row["fewest_held"])
                except Exception as exc:  # the database away: the leases say what matters meanwhile
                    log.debug("engine membership beat failed (%r)", exc)
                await asyncio.sleep(MEMBER_BEAT_S)
        finally:
            with contextlib.suppress(Exception):  # leave at once: the others need not wait for the lapse
                await asyncio.wait_for(
                    self._pool.execute("SELECT engine_member_leave($1, $2)", self._key, self.holder), 1)
