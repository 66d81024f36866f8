"""The newest value per key, handed to one consumer in the order keys first arrived.

Both the hub's per-client writer and the design-keys writer need it: a consumer that falls
behind skips straight to the latest value of each key instead of working through stale ones.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestByKey(Generic[T]):
    def __init__(self) -> None:
        self._items: dict[str, T] = {}
        self._ready = asyncio.Event()

    def put(self, key: str, value: T) -> bool:
        """Hold value for key; True if it replaced a value not yet taken."""
        replaced = key in self._items
        self._items[key] = value
        self._ready.set()
        return replaced

    async def take(self) -> tuple[str, T]:
        """The oldest key still held and its newest value; waits while there is none."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        key = next(iter(self._items))
        return key, self._items.pop(key)
