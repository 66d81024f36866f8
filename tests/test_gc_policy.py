"""The garbage-collector policy (app/gc_policy.py) really freezes and unfreezes the collector."""

from __future__ import annotations

import asyncio
import gc
import weakref

from app import metrics
from app.gc_policy import PauseMeter, run_gc_policy


async def test_policy_freezes_long_lived_objects_and_leaves_the_collector_as_found() -> None:
    assert gc.get_freeze_count() == 0
    survivors = [[n] for n in range(1000)]  # tracked objects that outlive the next freeze
    task = asyncio.create_task(run_gc_policy(0.05, 3600))
    for _ in range(100):
        await asyncio.sleep(0.02)
        if gc.get_freeze_count() >= len(survivors):
            break
    assert gc.get_freeze_count() >= len(survivors)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()


async def test_policy_runs_full_collections_that_free_frozen_cycles() -> None:
    class Node:
        def __init__(self) -> None:
            self.other: Node | None = None

    task = asyncio.create_task(run_gc_policy(0.05, 0.3))
    try:
        a, b = Node(), Node()
        a.other, b.other = b, a           # a reference cycle, alive while frozen
        alive = weakref.ref(a)
        await asyncio.sleep(0.12)         # frozen at least once
        del a, b                          # now garbage that only a collection can free
        gc.collect()                      # an ordinary full collection skips frozen objects
        assert alive() is not None
        for _ in range(100):              # the policy's own full collection frees it
            await asyncio.sleep(0.05)
            if alive() is None:
                break
        assert alive() is None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_zero_interval_leaves_python_default() -> None:
    await run_gc_policy(0, 3600)  # returns at once
    assert gc.get_freeze_count() == 0


async def test_policy_measures_every_collection_as_a_pause() -> None:
    def pauses() -> float:
        return sum(s.value for m in metrics.GC_PAUSE.collect() for s in m.samples
            if s.name == "opd_gc_pause_seconds_count" and s.labels.get("generation") == "0")

    before = pauses()
    task = asyncio.create_task(run_gc_policy(0.05, 3600))
    try:
        for _ in range(100):
            gc.collect(0)
            await asyncio.sleep(0.02)
            if pauses() > before:
                break
        assert pauses() > before
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert all(not isinstance(cb, PauseMeter) for cb in gc.callbacks)  # removed with the policy
