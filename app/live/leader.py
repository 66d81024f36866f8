"""Leader election and the LISTEN connection.

Exactly one process recomputes: the holder of a session-level advisory lock, taken on the
dedicated connection that also LISTENs (never a pooled one: a released pooled connection runs
UNLISTEN *). If that connection dies, the lock goes with it and another process takes over
within LEADER_RETRY_S. After every (re)connect the engine treats every queue as stale, because
notifications sent while nobody listened are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from app import jsonutil
from app.live.engine import QueueEngine

log = logging.getLogger(__name__)

CHANNEL = "opd_changes"
LEADER_RETRY_S = 2.0        # how often a follower tries to become leader
RECONNECT_MAX_S = 10.0      # backoff ceiling when PostgreSQL is unreachable
HEALTH_CHECK_S = 5.0        # a silent dead connection is noticed within this
STOP_WAIT_S = 1.0           # how long a lost leader waits for its engine tasks to stop ...
STOP_ATTEMPTS = 5           # ... cancelling them again each time
BUS_CHECK_S = 1.0           # how soon the engine notices that Redis restarted empty


class LeaderLoop:
    def __init__(self, dsn: str, lock_key: int, make_engine: Callable[[], QueueEngine],
                 safety_refresh_s: float, eta_tick_s: float) -> None:
        self._dsn = dsn
        self._lock_key = lock_key
        self._make_engine = make_engine
        self._safety_refresh_s = safety_refresh_s
        self._eta_tick_s = eta_tick_s
        self.engine: QueueEngine | None = None
        self.is_leader = False
        self.leader_terms = 0  # how many times this process became leader

    async def run(self) -> None:
        delay = 0.2
        while True:
            try:
                became_leader = await self._lead_once()
                delay = 0.2
                if not became_leader:
                    await asyncio.sleep(LEADER_RETRY_S)
            except Exception as exc:  # PostgreSQL or Redis away: whatever it was, lead again later
                log.warning("leader loop failed (%r); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)

    async def _lead_once(self) -> bool:
        """Try to become leader; if so, lead until the connection fails. False if not leader."""
        conn = await asyncpg.connect(self._dsn, timeout=10)
        try:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_key):
                return False
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn: lost.set())
            # A new engine per term: a new epoch, so every client resyncs from our snapshots.
            engine = self._make_engine()
            self.engine = engine

            def on_notify(_conn: object, _pid: int, _channel: str, payload: str) -> None:
                try:
                    engine.note_change(jsonutil.loads(payload))
                except (ValueError, TypeError):
                    log.warning("ignored a malformed notification: %r", payload[:200])

            await conn.add_listener(CHANNEL, on_notify)
            self.is_leader = True
            self.leader_terms += 1
            engine.mark_everything_stale()
            log.info("this process is the queue engine leader (epoch %s)", engine.epoch)
            tasks = [asyncio.create_task(engine.run(), name="queue-engine"),
                     asyncio.create_task(self._timers(engine), name="engine-timers"),
                     asyncio.create_task(self._watch_bus(engine), name="engine-bus-watch"),
                     asyncio.create_task(self._watch(conn, lost), name="leader-watch")]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
            finally:
                # The lock went with the connection: this process is no longer the leader, whatever
                # its tasks still do while they wind down.
                self.is_leader = False
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
            return True
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=2)

    async def _watch(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Returns when the connection is gone (terminated, or a health check fails)."""
        while not lost.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(lost.wait(), timeout=HEALTH_CHECK_S)
            if lost.is_set() or conn.is_closed():
                break
            await asyncio.wait_for(conn.fetchval("SELECT 1"), timeout=HEALTH_CHECK_S)
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
        next_refresh = loop.time() + self._safety_refresh_s
        while True:
            await asyncio.sleep(min(self._eta_tick_s, self._safety_refresh_s))
            if loop.time() >= next_refresh:
                engine.mark_live_queues_stale()
                next_refresh = loop.time() + self._safety_refresh_s
            else:
                engine.mark_active_queues()
