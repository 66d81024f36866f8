"""Positions and ETAs to the tokens table, after the screens have them.

The queue engine publishes positions straight from the queue it computes; its recompute writes
nothing, so a click's path neither waits for nor holds a row lock. This writes the computed
`queue_position` / `estimated_wait_time` of the doctors it recomputed, coalesced (a doctor
recomputed three times within DELAY_S is written once) and in small steady rounds, through
`write_back_queues` (sql/functions.sql), which also decides the T_MINUS_3 and DELAYED messages.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

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
CHUNK = 16  # doctors per round trip (each a short transaction)


class PositionWriteBack:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._due: dict[str, float] = {}  # doctor_id -> its first recompute not written back

    def note(self, doctor_id: str) -> None:
        """The doctor's queue was recomputed: write it back once DELAY_S has passed."""
        self._due.setdefault(doctor_id, time.monotonic())

    async def run(self) -> None:
        while True:
            await asyncio.sleep(ROUND_S)
            try:
                await self.write(time.monotonic() - DELAY_S)
            except Exception as exc:  # database away: the doctors stay due; next round
                log.warning("write-back of positions failed (%r); retrying", exc)

    async def write(self, recomputed_before: float = math.inf) -> None:
        """Write the queues of the doctors recomputed before then (monotonic clock; default:
        all of them)."""
        due = [d for d, since in self._due.items() if since <= recomputed_before]
        for doctor_id in due:
            del self._due[doctor_id]
        for start in range(0, len(due), CHUNK):
            try:
                skipped = await self._pool.fetchval("SELECT write_back_queues($1::uuid[])",
                                                    due[start:start + CHUNK])
            except BaseException:
                for doctor_id in due[start:]:
                    self._due.setdefault(doctor_id, recomputed_before)
                raise
            for doctor_id in skipped:  # an API transaction held its rows: next round
                self._due.setdefault(str(doctor_id), recomputed_before)
