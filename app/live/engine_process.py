"""`python -m app engine`: the queue engine in a process of its own.

Web workers serve the API and thousands of WebSockets on one event loop each; at a hundred
changes a second the engine's awaits queued behind that work (docs/performance.md). Here the
engine's loop does nothing else. It competes for the same engine lease as any process, so with
`OPD_ENGINE=off` on the web workers it is the only candidate (run two for a standby); with the
default `auto` a web worker takes over when no engine process runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from app import metrics
from app.db.migrate import upgrade
from app.db.pool import create_pool
from app.gc_policy import run_gc_policy
from app.live.wiring import EngineParts
from app.settings import Settings

log = logging.getLogger(__name__)


class EngineNeedsRedis(RuntimeError):
    pass


async def run_engine_process(settings: Settings, dsn: str) -> None:
    """Lead (or stand by to lead) until SIGTERM or SIGINT."""
    if not settings.redis_url:
        raise EngineNeedsRedis("a separate engine process needs REDIS_URL: its frames must reach "
                               "the web processes")
    await upgrade(dsn)
    pool = await create_pool(dsn, max_size=settings.engine_pool_size, warm=True)
    parts = EngineParts(settings, dsn, pool)
    await parts.bus.connect()
    leader = parts.engines
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(leader.run(), name="leader"),
             asyncio.create_task(run_gc_policy(settings.gc_freeze_s, settings.gc_full_s), name="gc-policy"),
             asyncio.create_task(metrics.keep_engine_state(leader), name="metrics-gauges")]
    log.info("engine process started; waiting for the engine lock")
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await parts.close()
        try:  # recomputes cancelled mid-query may hold connections a moment longer
            await asyncio.wait_for(pool.close(), timeout=5)
        except TimeoutError:
            pool.terminate()
        metrics.process_exited()
