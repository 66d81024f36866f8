"""The design's Redis keys (shared/seed/opd-schema-design.md, "Cache Keys Schema"), kept for
integrations and dashboards that read Redis directly. Nothing in the app reads them back.

Deviations (docs/schema.md): token details carry no patient name; the geofence key stores each
hospital's own location, longitude first as GEOADD requires.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from redis.exceptions import ResponseError

log = logging.getLogger(__name__)

DOCTOR_STATUS_TTL_S = 300  # the design's 5 minutes: a doctor with no recompute goes stale
TOKEN_DETAILS_TTL_S = 2 * 24 * 3600
GEO_MAX_LATITUDE = 85.05112878  # Redis GEO's limit (Web Mercator)


class DesignKeys:
    def __init__(self, redis: Any) -> None:
        self._redis = redis

    @staticmethod
    async def _execute(pipe: Any) -> None:
        """These keys serve outside readers only: bad data here must never stop the engine."""
        try:
            await pipe.execute()
        except ResponseError as exc:
            log.warning("could not write the design's Redis keys: %s", exc)

    async def write_doctor(self, queue: dict[str, Any]) -> None:
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
        async with self._redis.pipeline(transaction=True) as pipe:
            active_key = f"queue:doctor:{doctor_id}:active"
            pipe.delete(active_key)
            members = {w["token_id"]: w["position"] for w in waiting}
            if serving is not None:
                members[serving["token_id"]] = 0
            if members:
                pipe.zadd(active_key, members)
            for entry in ([serving] if serving else []) + waiting:
                key = f"token:{entry['token_id']}:details"
                pipe.hset(key, mapping={
                    "token_number": entry["token_number"], "status": entry["status"],
                    "position": entry.get("position", 0), "eta": entry.get("eta_minutes", 0),
                    "doctor_id": doctor_id, "cabin_number": queue.get("cabin_number") or "",
                })
                pipe.expire(key, TOKEN_DETAILS_TTL_S)
            pipe.set(f"doctor:{doctor_id}:status", status, ex=DOCTOR_STATUS_TTL_S)
            await self._execute(pipe)

    async def write_department_counts(self, counts: dict[str, int]) -> None:
        if counts:
            try:
                await self._redis.mset({f"dept:{d}:queue_count": n for d, n in counts.items()})
            except ResponseError as exc:
                log.warning("could not write department counts: %s", exc)

    async def write_geofences(self, layouts: Iterable[dict[str, Any]]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for layout in layouts:
                latitude, longitude = float(layout["latitude"]), float(layout["longitude"])
                if abs(latitude) > GEO_MAX_LATITUDE:
                    continue  # Redis cannot index the polar caps; the database geofence still works
                # GEOADD takes longitude first (the design had latitude first).
                pipe.geoadd(f"hospital:{layout['hospital_id']}:geofence",
                            (longitude, latitude, layout["hospital_id"]))
            await self._execute(pipe)
