"""How this long-running server collects cyclic garbage without stopping the world for a second.

With 10,000 WebSocket clients a process tracks millions of objects, and CPython's automatic
full collection walks all of them: the benchmark measured pauses growing to a full second, every
few seconds under load, and every click and frame waited behind them. Nearly all of those
objects live as long as their connection, so the policy is:

- every `freeze_every_s`, move every tracked object into the permanent generation (gc.freeze),
  so collections only ever walk what is new since;
- every `full_every_s`, unfreeze and do one full collection (the one long pause, at a known,
  rare time), which frees cycles that were frozen while still alive and died later.

No collection of the young generations before each freeze: the hub replaces a topic's frame
and each client's pending one at every change, so the young generations fill with objects while
CPython's allocation counter, which counts allocations minus deallocations, stays near zero.
In the bench the web process held 75,000-120,000 young objects after 10 s; collecting them took
70-120 ms every 10 s (and an automatic young collection up to 127 ms), which was the periodic
spike in the screens' p99 (docs/performance.md, "The web process's 100 ms pauses"). Those
collections found 0-2 objects of garbage each time. Freezing is a constant-time list splice;
the rare young cycle waits for the next full collection instead.

Frozen objects are still freed by reference counting as soon as nothing points at them; only
garbage in reference cycles waits for the next full collection.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

from app import metrics

log = logging.getLogger(__name__)


class PauseMeter:
    """Every collection's pause, as (epoch seconds at its start, generation, seconds). The
    policy hands them to opd_gc_pause_seconds{generation}: a process that stands still for
    100 ms every few seconds shows there before it shows in the screens' p99 (it took a probe
    in the processes to find, docs/performance.md); the benchmark uses it on its own processes
    (bench/gc_pauses.py). The callback only notes the pause: the metric takes a lock that the
    code a collection interrupted may hold, so it is fed outside, from take()."""

    def __init__(self) -> None:
        self._started = 0.0
        self._started_wall = 0.0
        self._pauses: list[tuple[float, int, float]] = []

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started, self._started_wall = time.perf_counter(), time.time()
        else:
            self._pauses.append((self._started_wall, info["generation"], time.perf_counter() - self._started))

    def install(self) -> PauseMeter:
        gc.callbacks.append(self)
        return self

    def uninstall(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)

    def take(self) -> list[tuple[float, int, float]]:
        """The pauses noted since the last take."""
        pauses, self._pauses = self._pauses, []
        return pauses


async def run_gc_policy(freeze_every_s: float, full_every_s: float) -> None:
    """Until cancelled. freeze_every_s <= 0 leaves CPython's default behaviour."""
    if freeze_every_s <= 0:
        return
    meter = PauseMeter().install()
    last_full = time.monotonic()
    try:
        while True:
            await asyncio.sleep(freeze_every_s)
            for _, generation, seconds in meter.take():
                metrics.GC_PAUSE.labels(str(generation)).observe(seconds)
            if time.monotonic() - last_full >= full_every_s:
                started = time.perf_counter()
                gc.unfreeze()
                freed = gc.collect()
                last_full = time.monotonic()
                log.info("full garbage collection: %d objects freed in %.0f ms",
                         freed, (time.perf_counter() - started) * 1000)
            gc.freeze()
    finally:
        meter.uninstall()
        gc.unfreeze()  # leave the collector as we found it (tests run many apps in one process)
