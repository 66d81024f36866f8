"""Positions and ETAs to the tokens table, after the screens have them.

The queue engine publishes positions straight from the queue it computes; its recompute writes
nothing, so a click's path neither waits for nor holds a row lock. This writes the computed
`queue_position` / `estimated_wait_time` of the doctors it recomputed, at most once per DELAY_S
each, through `write_back_queues` (sql/functions.sql), which also decides the T_MINUS_3 and
DELAYED messages.

Each doctor has a fixed slot in the DELAY_S cycle (a hash of its id), and each round writes the
doctors of the slots that came up, if they were recomputed since they were last written. Slots
spread the work evenly whatever the clicks do: writing a doctor DELAY_S after its first
recompute, as before, kept the doctors recomputed together (every doctor at a start, a morning
rush) written together, a burst of database work every 10-12 s. The bench could not tell the
two apart within its spread (docs/performance.md, "The web process's 100 ms pauses, write-back
in slots"); the slots remove the burst by construction.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib

import asyncpg

log = logging.getLogger(__name__)

# Positions and ETAs reach the tokens table about this late at most ... Screens never wait for
# it (they get the engine's computed queue); what reads the columns — T_MINUS_3 and DELAYED
# messages, the desk list, the accuracy record (once a minute per token) — can be 10 s late. A
# busy doctor recomputed every 2 s is written once per 10 s instead of once per 3 s: the
# write-back was the largest database cost per change once it carried the ETA range
# (docs/performance.md, 2026-12-05).
DELAY_S = 10.0
ROUND_S = 0.2  # ... in rounds this often (small and steady, not a burst per interval)
SLOTS = round(DELAY_S / ROUND_S)  # one per round of the cycle
CHUNK = 16  # doctors per round trip (each a short transaction)


def slot_of(doctor_id: str) -> int:
    """The doctor's round in the cycle: stable across restarts and engine processes."""
    return zlib.crc32(doctor_id.encode()) % SLOTS


class PositionWriteBack:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._due: list[set[str]] = [set() for _ in range(SLOTS)]  # by slot: recomputed, not written
        self._retry: set[str] = set()  # skipped or failed: the next round tries again
        self._last_round: int | None = None

    def note(self, doctor_id: str) -> None:
        """The doctor's queue was recomputed: write it back when its slot comes up."""
        self._due[slot_of(doctor_id)].add(doctor_id)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(ROUND_S - time.monotonic() % ROUND_S)
            try:
                await self.write(self.take_due(int(time.monotonic() / ROUND_S)))
            except Exception as exc:  # database away: the doctors stay due; next round
                log.warning("write-back of positions failed (%r); retrying", exc)

    def take_due(self, this_round: int) -> list[str]:
        """The doctors of every slot since the last round (a late round catches up), and those
        to retry. Rounds are numbered on the monotonic clock: round n is slot n % SLOTS."""
        first = this_round if self._last_round is None else self._last_round + 1
        self._last_round = this_round
        doctors = self._retry
        self._retry = set()
        for round_number in range(max(first, this_round - SLOTS + 1), this_round + 1):
            slot = self._due[round_number % SLOTS]
            doctors |= slot
            slot.clear()
        return list(doctors)

    async def write(self, doctor_ids: list[str]) -> None:
        for start in range(0, len(doctor_ids), CHUNK):
            try:
                skipped = await self._pool.fetchval("SELECT write_back_queues($1::uuid[])",
                                                    doctor_ids[start:start + CHUNK])
            except BaseException:
                self._retry.update(doctor_ids[start:])
                raise
            # an API transaction held its rows: the next round
            self._retry.update(str(doctor_id) for doctor_id in skipped)
