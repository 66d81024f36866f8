"""The design's Redis keys (shared/seed/opd-schema-design.md, "Cache Keys Schema"), kept for
integrations and dashboards that read Redis directly. Nothing in the app reads them back.

Deviations (docs/schema.md): token details carry no patient name; the geofence key stores each
hospital's own location, longitude first as GEOADD requires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

import asyncpg
from redis.exceptions import ResponseError

from app import jsonutil
from app.live.bus import redis_client
from app.live.mailbox import LatestByKey
from app.live.shapes import DoctorQueue, Layout

log = logging.getLogger(__name__)

DOCTOR_STATUS_TTL_S = 300  # the design's 5 minutes: a doctor with no recompute goes stale
TOKEN_DETAILS_TTL_S = 2 * 24 * 3600
GEO_MAX_LATITUDE = 85.05112878  # Redis GEO's limit (Web Mercator)


# The key names, in one place.
def token_details_key(token_id: Any) -> str:
    return f"token:{token_id}:details"


def doctor_queue_key(doctor_id: Any) -> str:
    return f"queue:doctor:{doctor_id}:active"


def doctor_status_key(doctor_id: Any) -> str:
    return f"doctor:{doctor_id}:status"


def department_count_key(dept_id: Any) -> str:
    return f"dept:{dept_id}:queue_count"


def geofence_key(hospital_id: Any) -> str:
    return f"hospital:{hospital_id}:geofence"


async def keys_of_database(conn: asyncpg.Connection) -> list[str]:
    """Every design key that the hospitals of a database may have in Redis: for a benchmark's
    or a test run's clean-up before its database is dropped (the keys are not namespaced)."""
    tokens = await conn.fetch("SELECT token_id FROM tokens")
    doctors = await conn.fetch("SELECT doctor_id FROM doctors")
    departments = await conn.fetch("SELECT dept_id FROM departments")
    hospitals = await conn.fetch("SELECT hospital_id FROM hospitals")
    return ([token_details_key(r[0]) for r in tokens]
            + [k for r in doctors for k in (doctor_queue_key(r[0]), doctor_status_key(r[0]))]
            + [department_count_key(r[0]) for r in departments]
            + [geofence_key(r[0]) for r in hospitals])


# KEYS: the doctor's active sorted set, the doctor's status key. ARGV: JSON {members: [score,
# member, ...], tokens: [{key, fields: [field, value, ...]}]}, status, status TTL, details TTL.
WRITE_DOCTOR_LUA = """
local data = cjson.decode(ARGV[1])
redis.call('DEL', KEYS[1])
for i = 1, #data.members, 2 do
    redis.call('ZADD', KEYS[1], data.members[i], data.members[i + 1])
end
if #data.members > 0 then
    redis.call('EXPIRE', KEYS[1], ARGV[4])
end
for _, token in ipairs(data.tokens) do
    redis.call('HSET', token.key, unpack(token.fields))
    redis.call('EXPIRE', token.key, ARGV[4])
end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
return #data.tokens
"""

# KEYS: department count keys; ARGV: TTL, then the counts in KEYS' order. Every key expires, so
# departments and doctors that are gone do not stay in Redis for ever.
WRITE_COUNTS_LUA = """
for i, key in ipairs(KEYS) do
    redis.call('SET', key, ARGV[i + 1], 'EX', ARGV[1])
end
return #KEYS
"""


class DesignKeys:
    """Writes the design's keys through a Redis handle of its own (not the bus's): the bus is
    one interface with two backends, and these keys exist only with Redis."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis
        self._write_doctor_script = redis.register_script(WRITE_DOCTOR_LUA)
        self._write_counts_script = redis.register_script(WRITE_COUNTS_LUA)
        self._pending: LatestByKey[DoctorQueue] = LatestByKey()  # doctor_id -> latest queue
        self._writer: asyncio.Task[None] | None = None

    def queue_doctor(self, queue: DoctorQueue) -> None:
        """Write the doctor's keys soon, off the engine's critical path: a click reaches the
        screens without waiting for these. A queue still pending is replaced by the newer one;
        one writer keeps each doctor's writes in order."""
        self._pending.put(queue["doctor_id"], queue)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending(), name="design-keys")

    # One doctor per call. Writing the doctors changed in the last 50 ms together saved the
    # engine a few points of a core but made each script hold Redis for milliseconds, and the
    # screens' frames waited behind it: p99 up by 25-30 ms in three A/B pairs
    # (docs/performance.md, "Patient views only while watched").
    async def _write_pending(self) -> None:
        while True:
            _, queue = await self._pending.take()
            try:
                await self.write_doctor(queue)
            except Exception as exc:  # Redis away: the next recompute writes them again
                log.warning("could not write the design's Redis keys: %r", exc)

    @classmethod
    def connect(cls, redis_url: str) -> DesignKeys:
        return cls(redis_client(redis_url))

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        await self._redis.aclose()

    @staticmethod
    async def _execute(pipe: Any) -> None:
        """These keys serve outside readers only: bad data here must never stop the engine."""
        try:
            await pipe.execute()
        except ResponseError as exc:
            log.warning("could not write the design's Redis keys: %s", exc)

    async def write_doctor(self, queue: DoctorQueue) -> None:
        doctor_id = queue["doctor_id"]
        serving = queue.get("now_serving")
        waiting = queue.get("waiting", [])
        if queue.get("shift") is None:
            status = "OFFLINE"
        elif serving is not None:
            status = "BUSY"
        elif queue.get("paused"):
            status = "ON_BREAK"
        else:
            status = "AVAILABLE"
        tokens = [{"key": token_details_key(entry["token_id"]), "fields": [
                       "token_number", entry["token_number"], "status", entry["status"],
                       "position", entry.get("position") or 0, "eta", entry.get("eta_minutes") or 0,
                       "doctor_id", doctor_id, "cabin_number", queue.get("cabin_number") or ""]}
                  for entry in ([serving] if serving else []) + waiting]
        members = [x for w in waiting for x in (w["position"], w["token_id"])]
        if serving is not None:
            members += [0, serving["token_id"]]
        # One script call, not two commands per token: redis-py's per-command cost was most of
        # the engine's CPU when every call moves 60 patients up.
        try:
            await self._write_doctor_script(
                keys=[doctor_queue_key(doctor_id), doctor_status_key(doctor_id)],
                args=[jsonutil.dumps({"members": members, "tokens": tokens}), status,
                      DOCTOR_STATUS_TTL_S, TOKEN_DETAILS_TTL_S])
        except ResponseError as exc:  # these keys serve outside readers only: never stop the engine
            log.warning("could not write the design's Redis keys: %s", exc)

    async def write_department_counts(self, counts: dict[str, int]) -> None:
        if counts:
            try:
                await self._write_counts_script(keys=[department_count_key(d) for d in counts],
                                                args=[TOKEN_DETAILS_TTL_S, *counts.values()])
            except ResponseError as exc:
                log.warning("could not write department counts: %s", exc)

    async def write_geofences(self, layouts: Iterable[Layout]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for layout in layouts:
                latitude, longitude = float(layout["latitude"]), float(layout["longitude"])
                if abs(latitude) > GEO_MAX_LATITUDE:
                    continue  # Redis cannot index the polar caps; the database geofence still works
                # GEOADD takes longitude first (the design had latitude first).
                pipe.geoadd(geofence_key(layout["hospital_id"]),
                            (longitude, latitude, layout["hospital_id"]))
            await self._execute(pipe)
