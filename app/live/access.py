"""Who may subscribe to which topic (docs/protocol.md, docs/security.md).

token:<code> needs only the code (it is the patient's secret); every other topic needs a staff
credential of the topic's hospital, and a doctor sees only their own doctor: topic.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import asyncpg

from app.live.frames import BOARD_KINDS, parse_topic
from app.security.identity import Principal

CACHE_TTL_S = 60.0   # how long an id's hospital or a code's validity is remembered
CACHE_MAX = 50_000

_OWNER_SQL = {
    "doctor": "SELECT hospital_id FROM doctors WHERE doctor_id = $1",
    "department": "SELECT hospital_id FROM departments WHERE dept_id = $1",
    "hospital": "SELECT hospital_id FROM hospitals WHERE hospital_id = $1",
    "operations": "SELECT hospital_id FROM hospitals WHERE hospital_id = $1",
    "cabin": "SELECT d.hospital_id FROM cabins c JOIN departments d USING (dept_id) WHERE c.cabin_id = $1",
}
_CODE_SQL = """SELECT token_id FROM tokens
               WHERE tracking_code = $1 AND visit_date >= hospital_today(hospital_id)"""


class TopicDenied(Exception):
    pass


class TopicAccess:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._cache: dict[str, tuple[float, Any]] = {}

    async def _lookup(self, key: str, sql: str, arg: Any) -> Any:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = await self._pool.fetchval(sql, arg)
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[key] = (now + CACHE_TTL_S, value)
        return value

    async def check(self, principal: Principal | None, topic: str) -> tuple[str, str]:
        """Return (kind, id) if principal may watch topic; raise TopicDenied with the reason."""
        parsed = parse_topic(topic)
        if parsed is None:
            raise TopicDenied("unknown topic; use doctor:<id>, department:<id>, hospital:<id>, cabin:<id>, "
                              "operations:<hospital id> or token:<code>")
        kind, ident = parsed
        if kind == "token":
            if await self._lookup(topic, _CODE_SQL, ident) is None:
                raise TopicDenied("unknown or expired tracking code")
            return parsed
        if principal is None:
            raise TopicDenied(f"{kind} topics need a staff or display credential")
        if principal.role == "display" and kind not in BOARD_KINDS:
            raise TopicDenied("a display may watch only boards and door displays")
        try:
            entity_id = uuid.UUID(ident)
        except ValueError:
            raise TopicDenied(f"{kind} not found") from None
        owner = await self._lookup(topic, _OWNER_SQL[kind], entity_id)
        if owner is None or owner != principal.hospital_id:
            raise TopicDenied(f"{kind} not found")
        if kind == "doctor" and principal.role == "doctor" and principal.doctor_id != entity_id:
            raise TopicDenied("a doctor may watch only their own queue")
        if kind == "operations" and principal.role not in ("admin", "receptionist"):
            raise TopicDenied("the operations dashboard is for admins and the front desk")
        return parsed
