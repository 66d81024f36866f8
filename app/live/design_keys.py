"""The design's Redis keys (shared/seed/opd-schema-design.md, "Cache Keys Schema"), kept for
integrations and dashboards that read Redis directly. Nothing in the app reads them back.

Deviations (docs/schema.md): token details carry no patient name; the geofence key stores each
hospital's own location, longitude first as GEOADD requires.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

DOCTOR_STATUS_TTL_S = 300  # the design's 5 minutes: a doctor with no recompute goes stale
TOKEN_DETAILS_TTL_S = 2 * 24 * 3600


class DesignKeys:
    def __init__(self, redis: Any) -> None:
        self._redis = redis

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
            await pipe.execute()

    async def write_department_counts(self, counts: dict[str, int]) -> None:
        if counts:
            await self._redis.mset({f"dept:{d}:queue_count": n for d, n in counts.items()})

    async def write_geofences(self, layouts: Iterable[dict[str, Any]]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for layout in layouts:
                # GEOADD takes longitude first (the design had latitude first).
                pipe.geoadd(f"hospital:{layout['hospital_id']}:geofence",
                            (float(layout["longitude"]), float(layout["latitude"]), layout["hospital_id"]))
            await pipe.execute()
