"""What a test run wrote to a shared Redis, removed at the end of the run.

The suite runs against the machine's Redis when REDIS_URL is set (as CI does). Its servers'
snapshot keys live under their bus namespaces, and the engine writes the design's keys
(`token:{id}:details`, ...) for the suite's hospitals; all expire after two days, but a busy CI
machine would carry tens of thousands of them from every run meanwhile.
"""

from __future__ import annotations

import asyncpg
import redis

from app.live import design_keys

# Every bus namespace an AppServer of this run used (tests/support/app_server.py adds to it).
NAMESPACES_USED: set[str] = set()


async def design_keys_of(dsn: str) -> list[str]:
    """The design's Redis keys for everything in the suite's database."""
    conn = await asyncpg.connect(dsn)
    try:
        return await design_keys.keys_of_database(conn)
    finally:
        await conn.close()


def delete_keys(url: str, keys: list[str], namespaces: set[str]) -> None:
    """Delete the given keys and every key of the given namespaces."""
    client = redis.Redis.from_url(url)
    try:
        for namespace in namespaces:
            keys = keys + [k.decode() for k in client.scan_iter(match=f"{namespace}:*", count=1000)]
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start:start + 1000])
    finally:
        client.close()
