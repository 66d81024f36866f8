"""Wires the live parts of one process: bus, hub, topic access, and (when elected) the engine."""

from __future__ import annotations

import logging

import asyncpg

from app.live.access import TopicAccess
from app.live.bus import MemoryBus
from app.live.hub import Hub
from app.live.supervise import Supervised
from app.live.wiring import EngineParts
from app.notify.dispatcher import prepare_dispatcher, run_dispatcher
from app.settings import Settings

log = logging.getLogger(__name__)


class SingleWorkerOnly(RuntimeError):
    pass


class LiveRuntime:
    def __init__(self, settings: Settings, dsn: str, pool: asyncpg.Pool) -> None:
        self.settings = settings
        self.pool = pool
        self._dsn = dsn
        self._parts = EngineParts(settings, dsn, pool)
        self.bus = self._parts.bus
        self.hub = Hub(self.bus)
        self.access = TopicAccess(pool)
        self.leader = self._parts.engines
        self._tasks: list[Supervised] = []

    async def start(self) -> None:
        await self.bus.connect()
        if isinstance(self.bus, MemoryBus):
            if self.settings.engine == "off":
                raise SingleWorkerOnly("OPD_ENGINE=off needs REDIS_URL: the engine process's "
                                       "frames reach this one through Redis")
            await self._refuse_second_worker()
        # Every process sends notifications (unless a `python -m app dispatcher` process does);
        # claims with SKIP LOCKED keep them from sending twice. Checked first: a provider
        # misconfiguration then stops start-up before any task runs.
        if self.settings.dispatcher != "off":
            await prepare_dispatcher(self.pool, self.settings)
        # Each long-lived task is supervised: a failure is logged and the task started again,
        # and /healthz says 503 while one is down (app/live/supervise.py).
        self._tasks = [Supervised("hub", self.hub.run),
                       Supervised("hub-watching", lambda: self.hub.announce_watching(self.settings.watch_refresh_s))]
        if self.settings.dispatcher != "off":
            self._tasks.append(Supervised("notify-dispatcher", lambda: run_dispatcher(self.pool, self.settings)))
        if self.settings.engine != "off":  # off: a `python -m app engine` process leads instead
            self._tasks.append(Supervised("leader", self.leader.run))

    async def _refuse_second_worker(self) -> None:
        """Without Redis, frames cannot cross processes: a second process would show nothing."""
        locked = await self.pool.fetchval(
            """SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
               WHERE l.locktype = 'advisory' AND l.objid = $1 AND l.granted
                 AND d.datname = current_database()""",
            self.settings.leader_lock_key)
        if locked:
            raise SingleWorkerOnly(
                "another process already serves this database with the in-process bus; "
                "set REDIS_URL to run more than one worker")

    async def stop(self) -> None:
        for task in self._tasks:
            await task.stop()
        await self._parts.close()

    async def health(self) -> dict[str, str]:
        engine = "off" if self.settings.engine == "off" else "leader" if self.leader.is_leader else "follower"
        checks = {"bus": await self.bus.health(), "engine": engine}
        if self.settings.engine != "off" and self.leader.count > 1:
            checks["engine_shards"] = self.leader.describe()
        for task in self._tasks:
            checks[f"task:{task.name}"] = task.status
        if self.hub.trouble is not None:
            checks["hub"] = f"error: {self.hub.trouble}"
        return checks
