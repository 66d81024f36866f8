"""How fast this machine is while a benchmark runs: two fixed pieces of pure-Python work, done
once a second in a process of its own, each timed in the CPU time it took.

Waiting for a core (our own load) shows in wall time, not in CPU time; CPU time for the same
work grows only when the machine itself is slower. The first piece is arithmetic that stays in
a core's own cache (a lower clock, a busy sibling thread); the second walks 64 MB in an order
no cache can follow (memory and the shared last-level cache, which the host's other tenants use
too, and so does our own load). On this machine kind the same code's p99 has moved 5x within
minutes, using a quarter more CPU for the same work in its slow runs (docs/performance.md).
The probe is there to tell a slow machine from a slow change; so far it has caught the cores
changing speed between runs, but not every slow run (docs/performance.md, "Fewer bytes on the
bus"). Costs about 1 % of one core, and 0.4 GB of memory.
"""

from __future__ import annotations

import multiprocessing
import random
import statistics
import time
from multiprocessing.connection import Connection
from typing import Any

EVERY_S = 1.0
WORK = 60_000  # iterations of the arithmetic: about 3 ms of CPU on the machines measured
SPREAD = 8_000_000  # list entries the memory walk reaches over (64 MB of pointers, and the ints)
STEPS = 20_000  # ... and reads per walk: about 10 ms of CPU


def arithmetic() -> int:
    total = 0
    for i in range(WORK):
        total += i * i % 7
    return total


def memory_walk(data: list[int], order: list[int]) -> int:
    total = 0
    for i in order:
        total += data[i]
    return total


def _timed(work: Any, *args: Any) -> float:
    cpu = time.thread_time()
    work(*args)
    return (time.thread_time() - cpu) * 1e3


def _probe(out: Connection, stop: Any) -> None:
    data = list(range(SPREAD))
    order = random.Random(1).sample(range(SPREAD), STEPS)
    while not stop.is_set():
        wall = time.perf_counter()
        cpu_ms = _timed(arithmetic)
        wall_ms = (time.perf_counter() - wall) * 1e3
        out.send((time.time(), cpu_ms, wall_ms, _timed(memory_walk, data, order)))
        stop.wait(EVERY_S)
    out.close()


class CpuProbe:
    def __init__(self) -> None:
        self._stop = multiprocessing.Event()
        self._receive, send = multiprocessing.Pipe(duplex=False)
        self._process = multiprocessing.Process(target=_probe, args=(send, self._stop), daemon=True,
                                                name="bench-cpu-probe")
        self.samples: list[tuple[float, float, float, float]] = []  # (epoch s, CPU ms, wall ms, memory ms)

    def start(self) -> None:
        self._process.start()

    def collect(self) -> None:
        try:
            while self._receive.poll():
                self.samples.append(self._receive.recv())
        except (EOFError, OSError):  # the probe has stopped and closed its end
            pass

    def stop(self) -> None:
        self._stop.set()
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
        self.collect()

    def figures(self, start: float, end: float) -> dict[str, Any]:
        """Per piece of work between start and end (epoch seconds): the arithmetic's CPU and wall
        milliseconds and the memory walk's CPU milliseconds, with the fastest of the whole run
        (the machine at its best)."""
        self.collect()
        window = [s for s in self.samples if start <= s[0] <= end]
        if not window:
            return {}
        cpu = [s[1] for s in window]
        wall = [s[2] for s in window]
        memory = [s[3] for s in window]
        return {"cpu_ms_p50": round(statistics.median(cpu), 2), "cpu_ms_max": round(max(cpu), 2),
                "wall_ms_p50": round(statistics.median(wall), 2), "wall_ms_max": round(max(wall), 2),
                "cpu_ms_best_of_run": round(min(s[1] for s in self.samples), 2),
                "memory_ms_p50": round(statistics.median(memory), 2), "memory_ms_max": round(max(memory), 2),
                "memory_ms_best_of_run": round(min(s[3] for s in self.samples), 2), "samples": len(window)}
