"""Leader election and the LISTEN connection.

Exactly one process recomputes (each shard: shards.py): the holder of the engine lease
(sql/migrations/003_engine_lease.sql),
renewed every LEASE_RENEW_S on the dedicated connection that also LISTENs (never a pooled one:
a released pooled connection runs UNLISTEN *). A leader that dies, loses its connection or
freezes stops renewing; the lease lapses after LEASE_TTL_S and a follower, trying every
LEADER_RETRY_S, takes it with a new term, within about two seconds. The term fences the bus: a
frozen leader that resumes is refused at its first publish (bus.Deposed) and finds its lease
gone at its next renewal, whichever comes first, and stops. A leader also steps down by itself
when it has not renewed for longer than the lease lasts (its own clock says it was frozen).
After every (re)connect the engine treats every queue as stale, because notifications sent
while nobody listened are lost.

Beside the lease, the leader holds the session advisory lock of the same key when it can: it
only serves the check that refuses a second process on the in-process bus (runtime.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from typing import Protocol

import asyncpg

from app import jsonutil, metrics
from app.live.engine import QueueEngine
from app.live.timers import REFRESH, TimerSchedule

log = logging.getLogger(__name__)

CHANNEL = "opd_changes"
LEASE_TTL_S = 1.5           # a lease not renewed for this long lapses ...
LEASE_RENEW_S = 0.3         # ... and the leader renews it this often
LEADER_RETRY_S = 0.25       # how often a follower tries to take a lapsed lease
RECONNECT_MAX_S = 10.0      # backoff ceiling when PostgreSQL is unreachable
STOP_WAIT_S = 1.0           # how long a lost leader waits for its engine tasks to stop ...
STOP_ATTEMPTS = 5           # ... cancelling them again each time
BUS_CHECK_S = 1.0           # how soon the engine notices that Redis restarted empty
SHARE_CHECK_S = 0.5         # how often a shard's leader asks whether to hand it back


class TakingRule(Protocol):
    """Whether this process may take, or must hand back, a shard (shards.FairShare)."""
    held: set[int]
    def may_take(self, shard: int) -> bool: ...
    def must_yield(self, shard: int) -> bool: ...


class LeaderLoop:
    """Leads one shard of the queue engine (shards.py; shard 0 of 1 unless OPD_ENGINE_SHARDS)."""

    def __init__(self, dsn: str, lock_key: int, make_engine: Callable[[], QueueEngine],
                 safety_refresh_s: float, eta_tick_s: float, *, shard: int = 0,
                 share: TakingRule | None = None, holder: str | None = None) -> None:
        self._dsn = dsn
        self._lock_key = lock_key
        self._make_engine = make_engine
        self._safety_refresh_s = safety_refresh_s
        self._eta_tick_s = eta_tick_s
        self.shard = shard
        self._share = share      # None: take the lease whenever it is free (one shard)
        self.engine: QueueEngine | None = None
        self.is_leader = False
        self.leader_terms = 0  # how many times this process became leader
        self.term = 0          # the lease term this process holds or last held
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"

    async def run(self) -> None:
        """Follow, lead when the lease is free (and the share allows), follow again. A follower
        keeps its connection between attempts rather than opening one four times a second."""
        delay = 0.2
        conn: asyncpg.Connection | None = None
        try:
            while True:
                try:
                    if self._share is not None and not self._share.may_take(self.shard):
                        await asyncio.sleep(LEADER_RETRY_S)
                        continue
                    if conn is None or conn.is_closed():
                        conn = await asyncpg.connect(self._dsn, timeout=10)
                    term = await conn.fetchval("SELECT engine_lease_acquire($1, $2, $3)",
                                               self._lock_key, self.holder, int(LEASE_TTL_S * 1000),
                                               timeout=RECONNECT_MAX_S)
                    delay = 0.2
                    if term is None:
                        await asyncio.sleep(LEADER_RETRY_S)
                        continue
                    # The term owns the connection (its LISTEN and its renewals) and closes it.
                    leading, conn = conn, None
                    await self._lead(leading, term)
                except Exception as exc:  # PostgreSQL or Redis away: whatever it was, lead again later
                    log.warning("leader loop of shard %d failed (%r); retrying in %.1fs",
                                self.shard, exc, delay)
                    if conn is not None:
                        conn.terminate()
                        conn = None
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RECONNECT_MAX_S)
        finally:
            if conn is not None:
                conn.terminate()

    async def _lead(self, conn: asyncpg.Connection, term: int) -> None:
        """Lead with the lease of this term until the lease or the connection is lost (or the
        share says hand it back)."""
        try:
            renewed_at = time.monotonic()
            await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_key)
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn: lost.set())
            # A new engine per term: a new epoch, so every client resyncs from our snapshots.
            engine = self._make_engine()
            engine.term = term
            self.engine = engine
            self.term = term

            def on_notify(_conn: object, _pid: int, _channel: str, payload: str) -> None:
                try:
                    engine.note_change(jsonutil.loads(payload))
                except (ValueError, TypeError):
                    log.warning("ignored a malformed notification: %r", payload[:200])

            await conn.add_listener(CHANNEL, on_notify)
            self.is_leader = True
            if self._share is not None:
                self._share.held.add(self.shard)
            self.leader_terms += 1
            metrics.LEADER_TERMS.inc()
            engine.mark_everything_stale()
            log.info("this process leads shard %d of the queue engine (term %d, epoch %s)",
                     self.shard, term, engine.epoch)
            tasks = [asyncio.create_task(engine.run(), name="queue-engine"),
                     asyncio.create_task(self._timers(engine), name="engine-timers"),
                     asyncio.create_task(self._watch_bus(engine), name="engine-bus-watch"),
                     asyncio.create_task(engine.follow_watching(), name="engine-watching"),
                     asyncio.create_task(self._renew(conn, term, renewed_at), name="lease-renewal"),
                     asyncio.create_task(self._watch(conn, lost), name="leader-watch")]
            if self._share is not None:
                tasks.append(asyncio.create_task(self._hand_back_when_asked(), name="share-watch"))
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
            finally:
                # The lease is gone or going: this process is no longer the leader, whatever its
                # tasks still do while they wind down (the term fences what they publish).
                self.is_leader = False
                if self._share is not None:
                    self._share.held.discard(self.shard)
                if lost.is_set():
                    metrics.LISTEN_LOST.inc()
                engine.stop()
                pending = set(tasks)
                for _ in range(STOP_ATTEMPTS):
                    for task in pending:
                        task.cancel()
                    _, pending = await asyncio.wait(pending, timeout=STOP_WAIT_S)
                    if not pending:
                        break
                for task in pending:  # say where it hangs
                    log.warning("engine task %s still running after %d cancellations, at %s",
                                task.get_name(), STOP_ATTEMPTS, task.get_stack(limit=8))
                with contextlib.suppress(Exception):  # hand over at once, not after the lapse
                    await asyncio.wait_for(conn.execute("SELECT engine_lease_release($1, $2, $3)",
                                                        self._lock_key, self.holder, term), timeout=1)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=2)

    async def _hand_back_when_asked(self) -> None:
        """Returns (ending the term, which releases the lease) when another engine process has
        joined and this one leads more than its share."""
        assert self._share is not None
        while not self._share.must_yield(self.shard):
            await asyncio.sleep(SHARE_CHECK_S)
        log.info("handing shard %d to another engine process (fair share)", self.shard)

    async def _renew(self, conn: asyncpg.Connection, term: int, renewed_at: float) -> None:
        """The heartbeat. Returns (ending the term) when the lease is lost: taken by another
        process, not renewable in time, or lapsed while this process was frozen."""
        ttl_ms = int(LEASE_TTL_S * 1000)
        while True:
            await asyncio.sleep(LEASE_RENEW_S)
            if time.monotonic() - renewed_at > LEASE_TTL_S:
                log.warning("lease term %d lapsed (last renewed %.1fs ago: was this process frozen?); "
                            "stepping down", term, time.monotonic() - renewed_at)
                return
            sent = time.monotonic()  # the lease runs from when the renewal was sent, not answered
            try:
                held = await asyncio.wait_for(
                    conn.fetchval("SELECT engine_lease_renew($1, $2, $3, $4)",
                                  self._lock_key, self.holder, term, ttl_ms),
                    timeout=max(LEASE_TTL_S - (time.monotonic() - renewed_at), 0.05))
            except TimeoutError:
                log.warning("lease term %d could not be renewed in time; stepping down", term)
                return
            if not held:
                log.warning("lease term %d was taken over; stepping down", term)
                return
            renewed_at = sent

    async def _watch(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Returns when the connection is gone. (A silent dead connection fails the lease
        renewal within LEASE_TTL_S; no query here, asyncpg runs one at a time per connection.)"""
        await lost.wait()
        log.warning("lost the LISTEN connection; leadership released")

    async def _watch_bus(self, engine: QueueEngine) -> None:
        """Redis may restart empty between two publishes without the engine seeing an error:
        check its marker every second and republish everything when it is gone."""
        while True:
            await asyncio.sleep(BUS_CHECK_S)
            try:
                survived = await engine.bus_state_survived()
            except Exception as exc:  # Redis away: look again in a second
                log.debug("bus check failed (%r)", exc)
                continue
            if not survived:
                log.warning("the bus lost its stored snapshots; republishing every topic")
                engine.bus_state_lost()

    async def _timers(self, engine: QueueEngine) -> None:
        loop = asyncio.get_running_loop()
        schedule = TimerSchedule(loop.time(), self._eta_tick_s, self._safety_refresh_s)
        while True:
            at, kind = schedule.next()
            await asyncio.sleep(max(0.0, at - loop.time()))
            schedule.fired(kind, loop.time())
            if kind == REFRESH:
                engine.mark_live_queues_stale()
            else:
                engine.mark_active_queues()
