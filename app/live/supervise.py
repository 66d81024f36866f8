"""Long-lived tasks that never die silently: each runs under a supervisor that logs its failure
with the cause and starts it again with backoff, and reports whether it is running.

A process whose hub, leader loop or dispatcher has stopped cannot deliver what it promises; its
/healthz says so (503) while the task is down, so a load balancer and the screens react.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 0.2
MAX_BACKOFF_S = 10.0
STEADY_AFTER_S = 30.0  # a run this long resets the backoff


class Supervised:
    """One task, restarted whenever it ends or fails. `status` is "ok" while it runs, and
    "error: ..." between a failure and the restart that follows it; `report_trouble` lets the
    task itself say it cannot do its work although it has not failed (e.g. a hub that cannot
    resync), and `report_ok` clears that."""

    def __init__(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self._run = run
        self.restarts = 0
        self.last_error: str | None = None
        self._trouble: str | None = None
        self._down = False
        self.task: asyncio.Task[None] = asyncio.create_task(self._supervise(), name=f"supervise-{name}")

    @property
    def status(self) -> str:
        if self._down:
            return f"error: restarting after {self.last_error}"
        if self._trouble is not None:
            return f"error: {self._trouble}"
        return "ok"

    def report_trouble(self, what: str) -> None:
        self._trouble = what

    def report_ok(self) -> None:
        self._trouble = None

    async def _supervise(self) -> None:
        backoff = FIRST_BACKOFF_S
        while True:
            started = time.monotonic()
            self._down = False
            try:
                await self._run()
                self.last_error = "it returned"
                log.error("task %s ended; starting it again in %.1fs", self.name, backoff)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = f"{exc.__class__.__name__}: {exc}"[:200]
                log.exception("task %s failed; starting it again in %.1fs", self.name, backoff)
            self._down = True
            self.restarts += 1
            if time.monotonic() - started > STEADY_AFTER_S:
                backoff = FIRST_BACKOFF_S
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task
