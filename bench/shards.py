"""`python -m bench.shards`: the queue engine split across engine processes (OPD_ENGINE_SHARDS).

Builds a database of many hospitals, starts engine processes that share the shards, then
measures what a state-wide deployment cares about:
  - start: how long until the shards are shared out evenly and every hospital's board is out;
  - loss: one engine process is killed (SIGKILL) and at that moment a doctor of every hospital
    it led calls the next patient; how long until the survivors lead every shard, and until
    every one of those calls is on its doctor's screen (read from the stored frames);
  - join: a new engine process starts; how long until it has been handed its share.
Prints the figures; docs/performance.md keeps them with the machine and date.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import redis.asyncio as redis

from app import jsonutil
from app.db.migrate import upgrade
from app.live.frames import Frame
from app.live.shard_hash import shard_of
from bench import hospital as bench_hospital
from bench.monitor import machine_info

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCK_KEY = 727001  # the default: the database is the bench's own


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--hospitals", type=int, default=100)
    parser.add_argument("--doctors", type=int, default=4, help="per hospital")
    parser.add_argument("--queue", type=int, default=10, help="waiting tokens per doctor")
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--engines", type=int, default=3)
    return parser.parse_args(argv)


class Engines:
    def __init__(self, dsn: str, redis_url: str, namespace: str, shards: int) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OPD_")}
        self.env.update({"DATABASE_URL": dsn, "REDIS_URL": redis_url, "OPD_BUS_NAMESPACE": namespace,
                         "OPD_ENGINE_SHARDS": str(shards), "OPD_LOG_LEVEL": "WARNING",
                         **bench_hospital.clock_env()})
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        with open(f"/tmp/opd-bench-shards-{len(self.running)}.log", "wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "app", "engine"], cwd=REPO_ROOT,
                                       env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.running.append(process)
        return process

    def stop(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.terminate()
        for process in self.running:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


async def build(dsn: str, hospitals: int, doctors: int, queue: int) -> dict[str, list[str]]:
    """hospital_id -> doctor ids, every doctor with a patient in consultation and a queue."""
    conn = await asyncpg.connect(dsn, server_settings=bench_hospital.clock_settings())
    built: dict[str, list[str]] = {}
    try:
        for _ in range(hospitals):
            async with conn.transaction():
                hospital_id, _, doctor_ids = await bench_hospital._structure(conn, doctors, 1)
                await bench_hospital._queues(conn, hospital_id, doctor_ids, queue)
            built[str(hospital_id)] = [str(d) for d in doctor_ids]
    finally:
        await conn.close()
    return built


async def holders(conn: asyncpg.Connection, shards: int) -> dict[int, int]:
    """shard -> pid of the process leading it now."""
    rows = await conn.fetch(
        """SELECT lease_key - $1 AS shard, holder FROM engine_lease
           WHERE lease_key >= $1 AND lease_key < $1 + $2 AND expires_at > clock_timestamp()""",
        LOCK_KEY, shards)
    return {r["shard"]: int(r["holder"].split(":")[1]) for r in rows}


async def until(condition, what: str, timeout: float = 120.0) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await condition():
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise RuntimeError(f"not {what} within {timeout:.0f} s")


async def run(args: argparse.Namespace) -> None:
    name, dsn = await bench_hospital.create_database(args.dsn)
    namespace = f"opdbenchshards{secrets.token_hex(4)}"
    engines = Engines(dsn, args.redis, namespace, args.shards)
    client = redis.Redis.from_url(args.redis)
    try:
        await upgrade(dsn)
        started = time.monotonic()
        built = await build(dsn, args.hospitals, args.doctors, args.queue)
        print(f"built {len(built)} hospitals x {args.doctors} doctors x {args.queue} waiting "
              f"in {time.monotonic() - started:.1f} s; {args.shards} shards, {args.engines} engine processes")
        conn = await asyncpg.connect(dsn)

        def even(pids: set[int]):  # type: ignore[no-untyped-def]
            async def check() -> bool:
                led = await holders(conn, args.shards)
                counts = [list(led.values()).count(pid) for pid in pids]
                return (len(led) == args.shards and set(led.values()) <= pids
                        and max(counts) - min(counts) <= 1)
            return check

        # Every department's board: the TVs' topic (the hospital topic goes out only while watched).
        departments = [r["dept_id"] for r in await conn.fetch("SELECT dept_id FROM departments")]

        async def boards_out() -> bool:
            keys = [f"{namespace}:frame:department:{d}" for d in departments]
            return all(await client.mget(keys))

        for _ in range(args.engines):
            engines.start()
        pids = {p.pid for p in engines.running}
        shared = await until(even(pids), "shared out")
        boards = await until(boards_out, "every board out", timeout=600)
        print(f"start: shards shared out evenly after {shared:.2f} s; every hospital's board out "
              f"after {shared + boards:.2f} s")
        await asyncio.sleep(3)

        # Loss: kill the process leading most shards; a doctor of each of its hospitals calls.
        led = await holders(conn, args.shards)
        victim = max(engines.running, key=lambda p: list(led.values()).count(p.pid))
        lost_shards = {s for s, pid in led.items() if pid == victim.pid}
        moved = [h for h in built if shard_of(h, args.shards) in lost_shards]
        victim.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        called: dict[str, int] = {}
        for hospital_id in moved:
            doctor_id = built[hospital_id][0]
            row = await conn.fetchrow("SELECT token_number FROM call_next_token($1, NULL, true)", doctor_id)
            called[doctor_id] = row["token_number"]
        survivors = {p.pid for p in engines.running if p is not victim}
        await until(even(survivors), "taken over")
        taken = time.monotonic() - killed_at
        shown_after: dict[str, float] = {}

        async def calls_shown() -> bool:
            pending = [d for d in called if d not in shown_after]
            values = await client.mget([f"{namespace}:frame:doctor:{d}" for d in pending])
            for doctor_id, value in zip(pending, values, strict=True):
                if value is None:
                    continue
                data = jsonutil.loads(Frame.decode(value.decode()).text)["data"]
                if (data.get("now_serving") or {}).get("token_number") == called[doctor_id]:
                    shown_after[doctor_id] = time.monotonic() - killed_at
            return len(shown_after) == len(called)

        await until(calls_shown, "every call shown")
        times = sorted(shown_after.values())
        print(f"loss: {len(lost_shards)} shards ({len(moved)} hospitals) of the killed process led by "
              f"the others after {taken:.2f} s; the {len(called)} calls made at the kill shown after "
              f"median {statistics.median(times):.2f} s, last {times[-1]:.2f} s; none lost")

        # Join: a new process is handed its share.
        joined_at = time.monotonic()
        newcomer = engines.start()
        await until(even(survivors | {newcomer.pid}), "handed a share")
        led = await holders(conn, args.shards)
        print(f"join: the new process leads {list(led.values()).count(newcomer.pid)} shards after "
              f"{time.monotonic() - joined_at:.2f} s (from its start, Python import included)")
        await conn.close()
        info = machine_info()
        print(f"machine: {info.get('cpu', '?')}, {os.cpu_count()} cores")
    finally:
        engines.stop()
        keys = [k async for k in client.scan_iter(f"{namespace}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
        await bench_hospital.drop_database(args.dsn, name)


def main(argv: list[str] | None = None) -> int:
    asyncio.run(run(parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
