"""Which doctors' queues the engine recomputes next (engine.py): the doctors a change marked, with
the earliest commit time among their changes, and the doctors a safety sweep or a rebuild still
has to redo. Pure bookkeeping, no I/O and no clock: the engine asks it for launches when a
recompute slot is free and tells it when one ended.

The rules (each measured or learned the hard way; docs/architecture.md):
- at most `concurrency` recomputes at once, and one doctor never twice at once (its publishes
  stay in order); changes that arrive for a doctor in flight wait and are taken together;
- clicks first, earliest commit first; timer work (no commit time) after them; then the sweep,
  at most `sweep_concurrency` of the slots, so a rebuild of a large hospital group never holds
  up the click waiting to reach the screens;
- a failed recompute keeps its work (its change, the tokens it was to read, its sweep) and
  reads every view again when it is retried.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

RECOMPUTE_CONCURRENCY = 12  # doctors recomputed at once (8 and 16 measured worse at 100 changes/s)
SWEEP_CONCURRENCY = 2       # of those, at most this many serve a refresh or rebuild


@dataclass(frozen=True)
class Launch:
    doctor_id: str
    changed_at: float | None     # the earliest commit among the changes it takes in
    extras: list[str]            # tokens to read besides the open ones (they left the queue)
    all_of_day: bool             # every token of the day (a rebuild)
    full_views: bool             # read every open view again, trust none held


class RecomputeSchedule:
    def __init__(self, concurrency: int = RECOMPUTE_CONCURRENCY,
                 sweep_concurrency: int = SWEEP_CONCURRENCY) -> None:
        self.concurrency = concurrency
        self.sweep_concurrency = sweep_concurrency
        self.dirty: dict[str, float | None] = {}        # doctor_id -> earliest commit time
        self.extra_tokens: dict[str, set[str]] = {}     # doctor_id -> tokens that left its queue
        self.full_views: set[str] = set()               # doctors whose every view is read again
        self.sweep: dict[str, bool] = {}                # doctor_id -> with every token of the day
        self.sweeping: set[str] = set()                 # doctors in flight for the sweep
        self.in_flight: set[str] = set()

    # What the engine learns ---------------------------------------------------------------
    def mark(self, doctor_id: str, at: float | None) -> bool:
        """The doctor's queue changed at `at` (None: timer work). True when this change joins
        work already waiting or under way (coalesced)."""
        previous = self.dirty.get(doctor_id)
        coalesced = previous is not None or doctor_id in self.in_flight
        self.dirty[doctor_id] = at if previous is None else min(previous, at or previous)
        return coalesced

    def note_token(self, doctor_id: str, token_id: str) -> None:
        """The doctor's next recompute also reads this token (it changed, or left the queue)."""
        self.extra_tokens.setdefault(doctor_id, set()).add(token_id)

    def want_full_views(self, doctor_id: str) -> None:
        self.full_views.add(doctor_id)

    def add_to_sweep(self, doctor_id: str, all_of_day: bool) -> None:
        self.sweep[doctor_id] = self.sweep.get(doctor_id, False) or all_of_day

    # What the engine asks -----------------------------------------------------------------
    def next_launches(self, may_start: Callable[[str], bool]) -> list[Launch]:
        """The recomputes to start now, counted as in flight. `may_start` says whether a changed
        doctor can go yet (the engine holds back a doctor whose hospital it has not laid out)."""
        free = self.concurrency - len(self.in_flight)
        launches = []
        waiting = sorted((d for d in self.dirty if d not in self.in_flight and may_start(d)),
                         key=lambda d: self.dirty[d] or math.inf)
        for doctor_id in waiting[:max(free, 0)]:
            full = doctor_id in self.full_views or doctor_id in self.sweep
            if doctor_id in self.sweep:
                self.sweeping.add(doctor_id)
            self.full_views.discard(doctor_id)
            launches.append(Launch(doctor_id, self.dirty.pop(doctor_id),
                                   sorted(self.extra_tokens.pop(doctor_id, ())),
                                   self.sweep.pop(doctor_id, False),  # a sweep due anyway is done now
                                   full))
            self.in_flight.add(doctor_id)
            free -= 1
        for doctor_id in list(self.sweep):
            if free <= 0 or len(self.sweeping) >= self.sweep_concurrency:
                break
            if doctor_id in self.in_flight:
                continue
            self.sweeping.add(doctor_id)
            # The safety net and rebuilds trust nothing they knew: every view.
            launches.append(Launch(doctor_id, self.dirty.pop(doctor_id, None),
                                   sorted(self.extra_tokens.pop(doctor_id, ())), self.sweep.pop(doctor_id), True))
            self.full_views.discard(doctor_id)
            self.in_flight.add(doctor_id)
            free -= 1
        return launches

    def failed(self, launch: Launch) -> bool:
        """A recompute failed: its work waits again, with every view read afresh (positions may
        have been written back without their views reaching the bus). Returns mark()'s answer.
        The doctor stays in flight until finished(), but frees its sweep slot at once: a doctor
        that keeps failing must not hold up the other doctors' sweeps."""
        coalesced = self.mark(launch.doctor_id, launch.changed_at)
        self.extra_tokens.setdefault(launch.doctor_id, set()).update(launch.extras)
        self.full_views.add(launch.doctor_id)
        if launch.all_of_day:
            self.sweep[launch.doctor_id] = True
        self.sweeping.discard(launch.doctor_id)
        return coalesced

    def finished(self, doctor_id: str) -> None:
        self.in_flight.discard(doctor_id)
        self.sweeping.discard(doctor_id)

    def sweeping_doctors(self) -> set[str]:
        """Doctors a sweep still has to do or is doing."""
        return set(self.sweep) | self.sweeping

    def waiting_count(self) -> int:
        """Doctors whose queue waits for a recompute: changed, or due in a sweep (metrics)."""
        return len(self.dirty.keys() | self.sweep.keys())
