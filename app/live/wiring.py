"""How the live parts of a process are built, in one place for both process kinds: a web process
(runtime.py: bus, hub, topic access, and the engine when it may lead) and an engine process
(engine_process.py: bus and engine only)."""

from __future__ import annotations

import asyncpg

from app.live.bus import Bus, create_bus
from app.live.design_keys import DesignKeys
from app.live.engine import QueueEngine
from app.live.shards import EngineGroup
from app.settings import Settings


class EngineParts:
    """The bus, the design's Redis keys (with Redis only) and this process's engine shards."""

    def __init__(self, settings: Settings, dsn: str, pool: asyncpg.Pool) -> None:
        self.bus: Bus = create_bus(settings.redis_url, settings.bus_namespace)
        self.design_keys = DesignKeys.connect(settings.redis_url) if settings.redis_url else None
        bus, design_keys = self.bus, self.design_keys
        self.engines = EngineGroup(
            dsn, pool, settings,
            lambda shard, shards: QueueEngine(pool, bus, settings, design_keys, shard, shards))

    async def close(self) -> None:
        if self.design_keys is not None:
            await self.design_keys.close()
        await self.bus.close()
