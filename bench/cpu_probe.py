"""How fast this machine's CPU is while a benchmark runs: a fixed piece of pure-Python work,
done once a second in a process of its own, timed in the CPU time it took.

Waiting for a core (our own load) shows in wall time, not in CPU time; CPU time for the same
work grows only when the core itself is slower: another tenant of the host on the same
physical core or cache, a lower clock. On this machine kind the same code's p99 has moved 5x
within minutes (docs/performance.md); the probe says whether the machine moved with it, so a
slow run can be told from a slow change. Costs about 0.3 % of one core.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from multiprocessing.connection import Connection
from typing import Any

EVERY_S = 1.0
WORK = 60_000  # iterations: about 3 ms of CPU on the machines measured


def fixed_work() -> int:
    total = 0
    for i in range(WORK):
        total += i * i % 7
    return total


def _probe(out: Connection, stop: Any) -> None:
    while not stop.is_set():
        cpu, wall = time.thread_time(), time.perf_counter()
        fixed_work()
        out.send((time.time(), (time.thread_time() - cpu) * 1e3, (time.perf_counter() - wall) * 1e3))
        stop.wait(EVERY_S)
    out.close()


class CpuProbe:
    def __init__(self) -> None:
        self._stop = multiprocessing.Event()
        self._receive, send = multiprocessing.Pipe(duplex=False)
        self._process = multiprocessing.Process(target=_probe, args=(send, self._stop), daemon=True,
                                                name="bench-cpu-probe")
        self.samples: list[tuple[float, float, float]] = []  # (epoch s, CPU ms, wall ms)

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
        """The probe's CPU and wall milliseconds per piece of work between start and end (epoch
        seconds), and its fastest piece of the whole run (the machine at its best)."""
        self.collect()
        window = [s for s in self.samples if start <= s[0] <= end]
        if not window:
            return {}
        cpu = [s[1] for s in window]
        wall = [s[2] for s in window]
        return {"cpu_ms_p50": round(statistics.median(cpu), 2), "cpu_ms_max": round(max(cpu), 2),
                "wall_ms_p50": round(statistics.median(wall), 2), "wall_ms_max": round(max(wall), 2),
                "cpu_ms_best_of_run": round(min(s[1] for s in self.samples), 2), "samples": len(window)}
