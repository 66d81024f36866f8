"""A fixed CPU load beside a benchmark run (`bench.fanout --contention 0.3`): a process busy
that share of one core, in 10 ms busy / idle slices, so contention is measured, not suffered.
A hospital server also runs backups, the HIS, antivirus (issue 19)."""

from __future__ import annotations

import multiprocessing
import time

SLICE_S = 0.01


def _burn(share: float, stop: multiprocessing.synchronize.Event) -> None:
    busy = SLICE_S * share
    idle = SLICE_S - busy
    while not stop.is_set():
        until = time.perf_counter() + busy
        while time.perf_counter() < until:
            pass
        time.sleep(idle)


class CpuHog:
    """`share` of one core (0 < share < 1) taken by a separate process until stopped."""

    def __init__(self, share: float) -> None:
        if not 0 < share < 1:
            raise ValueError("--contention is a share of one core, between 0 and 1 (e.g. 0.3)")
        self.share = share
        self._stop = multiprocessing.Event()
        self._process = multiprocessing.Process(target=_burn, args=(share, self._stop), daemon=True,
                                                name="bench-cpu-hog")

    def start(self) -> int:
        self._process.start()
        assert self._process.pid is not None
        return self._process.pid

    def stop(self) -> None:
        self._stop.set()
        self._process.join(timeout=2)
        if self._process.is_alive():
            self._process.kill()
