"""A small in-process sliding-window limiter for login and the public patient endpoints.

Per process: with several workers an address gets the limit once per worker, which still stops
guessing at scale (docs/security.md). Logins are also limited in the database, across workers.
"""

from __future__ import annotations

import time
from collections import deque


class RateLimiter:
    MAX_KEYS = 100_000  # beyond this the oldest windows are dropped

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self.MAX_KEYS:
                self._hits.pop(next(iter(self._hits)))
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        return True
