"""Which engine shard a hospital belongs to (shards.py). Its own module because the engine routes
each NOTIFY by it and shards.py builds engines: neither may import the other for it."""

from __future__ import annotations

import hashlib


def shard_of(hospital_id: str, count: int) -> int:
    """The hospital's shard: the first 32 bits of the md5 of its id as text, modulo the count;
    the same as SQL's engine_shard() (sql/functions.sql; a test holds the two equal)."""
    if count <= 1:
        return 0
    return int(hashlib.md5(str(hospital_id).encode(), usedforsecurity=False).hexdigest()[:8], 16) % count
