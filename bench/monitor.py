"""CPU and memory of the processes under test, sampled in a thread; and what machine this is."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

SAMPLE_S = 0.5


def processes_named(name: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == name:
            found.append(process)
    return found


@dataclass
class Usage:
    cpu_percent: float = 0.0       # average over the window, 100 = one core
    cpu_peak: float = 0.0          # highest sample
    rss_peak_mb: float = 0.0
    rss_end_mb: float = 0.0


@dataclass
class Group:
    """Some processes, found again at every sample (PostgreSQL starts and ends backends)."""
    find: Callable[[], list[psutil.Process]]
    # t, cumulative CPU seconds of the group (only what was used since the previous sample is
    # added, so a process that exits takes nothing away), RSS bytes
    samples: list[tuple[float, float, float]] = field(default_factory=list)
    _last: dict[int, float] = field(default_factory=dict)
    _cpu: float = 0.0

    def sample(self) -> None:
        rss = 0.0
        seen: dict[int, float] = {}
        for process in self.find():
            try:
                times = process.cpu_times()
                seen[process.pid] = times.user + times.system
                rss += process.memory_info().rss
            except psutil.Error:
                continue
        if self.samples:  # the first sample is the baseline
            self._cpu += sum(max(0.0, cpu - self._last.get(pid, 0.0)) for pid, cpu in seen.items())
        self._last = seen
        self.samples.append((time.monotonic(), self._cpu, rss))

    def usage(self, since: float, until: float) -> Usage:
        window = [s for s in self.samples if since <= s[0] <= until]
        if len(window) < 2:
            return Usage()
        steps = [(b[1] - a[1]) / (b[0] - a[0]) * 100 for a, b in zip(window, window[1:], strict=False)]
        total = (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0]) * 100
        return Usage(cpu_percent=total, cpu_peak=max(steps),
                     rss_peak_mb=max(s[2] for s in window) / 2**20,
                     rss_end_mb=window[-1][2] / 2**20)


def by_pids(pids: Callable[[], list[int]]) -> Callable[[], list[psutil.Process]]:
    cache: dict[int, psutil.Process] = {}

    def find() -> list[psutil.Process]:
        found = []
        for pid in pids():
            if pid not in cache:
                try:
                    cache[pid] = psutil.Process(pid)
                except psutil.Error:
                    continue
            found.append(cache[pid])
        return found
    return find


class Monitor:
    def __init__(self) -> None:
        self.groups: dict[str, Group] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, name: str, find: Callable[[], list[psutil.Process]]) -> None:
        self.groups[name] = Group(find)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for group in list(self.groups.values()):
                group.sample()
            self._stop.wait(SAMPLE_S)

    def stop(self) -> None:
        self._stop.set()
        # Not started when the app failed to come up: the run's cleanup (servers, the database)
        # must still happen; it used to stop here and leave the bench database behind.
        if self._thread.is_alive():
            self._thread.join(5)

    def usage(self, since: float, until: float) -> dict[str, Usage]:
        return {name: g.usage(since, until) for name, g in self.groups.items()}

    def rss_now_mb(self, name: str) -> float:
        total = 0.0
        for process in self.groups[name].find():
            try:
                total += process.memory_info().rss
            except psutil.Error:
                continue
        return total / 2**20


def machine_info() -> dict[str, str]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        node = subprocess.run(["node", "--version"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except OSError:
        node = "not found"
    try:
        pg = subprocess.run(["psql", "--version"], capture_output=True, text=True,
                            timeout=10).stdout.strip()
    except OSError:
        pg = "psql not found"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": node,
        "postgresql": pg,
    }
