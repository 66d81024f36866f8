"""The design's Redis keys (queue:doctor:{id}:active, token:{id}:details, doctor:{id}:status,
dept:{id}:queue_count) follow the queue, as integrations reading Redis directly expect."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as redis

from tests.live.actions import call_next, issue_token


async def design_keys(client: redis.Redis, doctor_id: str, dept_id: str,
                      token_ids: list[str]) -> dict[str, Any]:
    return {
        "active": await client.zrange(f"queue:doctor:{doctor_id}:active", 0, -1, withscores=True),
        "status": await client.get(f"doctor:{doctor_id}:status"),
        "status_ttl": await client.ttl(f"doctor:{doctor_id}:status"),
        "dept_count": await client.get(f"dept:{dept_id}:queue_count"),
        "details": [await client.hgetall(f"token:{t}:details") for t in token_ids],
    }


async def keys_where(client: redis.Redis, doctor_id: str, dept_id: str, token_ids: list[str],
                     done: Any, timeout: float = 15.0) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    keys = await design_keys(client, doctor_id, dept_id, token_ids)
    while not done(keys):
        if loop.time() > deadline:
            raise AssertionError(f"design keys never reached the expected state: {keys}")
        await asyncio.sleep(0.1)
        keys = await design_keys(client, doctor_id, dept_id, token_ids)
    return keys


async def test_design_keys_follow_the_queue(server, hospital, admin, redis_url):
    doctor_id, dept_id = str(hospital.doctor.doctor_id), str(hospital.dept_id)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        tokens = [await issue_token(admin, hospital.doctor.doctor_id) for _ in range(3)]
        ids = [t["token_id"] for t in tokens]
        keys = await keys_where(client, doctor_id, dept_id, ids,
                                lambda k: len(k["active"]) == 3)
        assert keys["active"] == [(ids[0], 1.0), (ids[1], 2.0), (ids[2], 3.0)]
        assert keys["status"] == "AVAILABLE" and 0 < keys["status_ttl"] <= 300
        assert keys["details"][2]["position"] == "3"
        assert keys["details"][2]["token_number"] == tokens[2]["token_number"]
        assert keys["details"][2]["doctor_id"] == doctor_id
        # The patient's name never goes into Redis.
        assert not any("name" in field for d in keys["details"] for field in d)

        await call_next(admin, hospital.doctor.doctor_id)
        keys = await keys_where(client, doctor_id, dept_id, ids,
                                lambda k: k["status"] == "BUSY" and len(k["active"]) == 3
                                and k["dept_count"] == "2")
        assert keys["active"] == [(ids[0], 0.0), (ids[1], 1.0), (ids[2], 2.0)]
        assert keys["details"][0]["status"] == "WAITING"
        assert [d["position"] for d in keys["details"]] == ["0", "1", "2"]
    finally:
        await client.aclose()
