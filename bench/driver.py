"""Drives queue changes through the HTTP API at a fixed overall rate, as the doctors' consoles
and the registration desk would.

Each doctor cycles through three changes: complete the patient in consultation and call the
next, issue a walk-in token (so the queue never runs dry), start the called patient's
consultation. The schedule is open-loop: a change that is late runs at once (until the deadline), and the
achieved rate is reported.

Doctors are spread evenly over the rate, and a third of them each start one and two steps later,
so that at any moment the three kinds of change are mixed, as in a real OPD (they ramp up
over the first two steps, inside the warm-up). With lockstep every doctor does the same kind of
change in the same window: every doctor presses call-next within the same 2 seconds, then
nobody does for 4; the first benchmarks ran that way (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field

from bench.http import HttpError, KeepAliveClient, Response

API = "/api/v1"
STEPS = ("call_next", "issue", "start")


@dataclass
class DriveStats:
    changes: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    api_ms: list[float] = field(default_factory=list)
    by_step: dict[str, int] = field(default_factory=dict)
    started: float = 0.0    # epoch seconds
    sent_at: list[tuple[float, str]] = field(default_factory=list)  # per change: (epoch, step)

    def changed_between(self, start: float, end: float) -> DriveStats:
        """The changes sent in [start, end) (epoch seconds); failures are not split."""
        part = DriveStats(failures=self.failures, seconds=end - start, started=start)
        for (at, name), ms in zip(self.sent_at, self.api_ms, strict=True):
            if start <= at < end:
                part.changes += 1
                part.api_ms.append(ms)
                part.by_step[name] = part.by_step.get(name, 0) + 1
                part.sent_at.append((at, name))
        return part

    @property
    def rate(self) -> float:
        return self.changes / self.seconds if self.seconds else 0.0


class Driver:
    def __init__(self, base_url: str, key: str, doctor_ids: list[str], rate: float,
                 seconds: float, lockstep: bool = False) -> None:
        self.base_url, self.key, self.doctor_ids = base_url, key, doctor_ids
        self.rate, self.seconds, self.lockstep = rate, seconds, lockstep
        self.stats = DriveStats()

    async def run(self) -> DriveStats:
        # One keep-alive connection per doctor, as each cabin console has its own, on a lean
        # client (bench/http.py): this process shares the cores with the server it measures.
        clients = [KeepAliveClient(self.base_url, {"Authorization": f"Bearer {self.key}"})
                   for _ in self.doctor_ids]
        try:
            started = time.monotonic()
            self.stats.started = time.time()
            deadline = started + self.seconds
            interval = len(self.doctor_ids) / self.rate  # between two changes of one doctor
            await asyncio.gather(*(
                self._doctor(http, doctor_id,
                             started + i / self.rate + (0 if self.lockstep else i % 3) * interval,
                             interval, deadline)
                for i, (http, doctor_id) in enumerate(zip(clients, self.doctor_ids, strict=True))))
            self.stats.seconds = time.monotonic() - started
        finally:
            await asyncio.gather(*(http.aclose() for http in clients))
        return self.stats

    async def _doctor(self, http: KeepAliveClient, doctor_id: str, first: float,
                      interval: float, deadline: float) -> None:
        called: str | None = None   # the token called and not yet started
        step = 0
        while True:
            due = first + step * interval
            # A late schedule is not caught up past the deadline: the run stays bounded.
            if due >= deadline or time.monotonic() >= deadline:
                return
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            name = STEPS[step % len(STEPS)]
            if name == "call_next":
                response = await self._post(http, name, f"{API}/doctors/{doctor_id}/call-next",
                                            {"complete_current": True})
                called = response.json()["token_id"] if response is not None else None
            elif name == "issue":
                await self._post(http, name, f"{API}/tokens", {
                    "doctor_id": doctor_id,
                    "patient": {"name": "Bench Walk-in", "phone": f"97{secrets.randbelow(10**8):08d}"}})
            elif called is not None:
                await self._post(http, name, f"{API}/tokens/{called}/start", {})
            step += 1

    async def _post(self, http: KeepAliveClient, name: str, path: str,
                    body: dict[str, object]) -> Response | None:
        sent = time.monotonic()
        sent_wall = time.time()
        try:
            response = await http.post(path, body)
        except HttpError as exc:
            key = f"{name}: {str(exc).split(':', 1)[0]}"
            self.stats.failures[key] = self.stats.failures.get(key, 0) + 1
            return None
        api_ms = (time.monotonic() - sent) * 1000
        if response.status_code >= 300:
            key = f"{name}: HTTP {response.status_code} {response.text[:80]}"
            self.stats.failures[key] = self.stats.failures.get(key, 0) + 1
            return None
        self.stats.api_ms.append(api_ms)
        self.stats.sent_at.append((sent_wall, name))
        self.stats.changes += 1
        self.stats.by_step[name] = self.stats.by_step.get(name, 0) + 1
        return response
