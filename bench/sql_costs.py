"""What each statement on a queue change's path costs PostgreSQL alone, with nothing beside it.

`python -m bench.sql_costs [--doctors N] [--queue-length N] [--repeat N]` builds the fan-out
bench's hospital in a fresh database, then runs each hot-path statement `--repeat` times on one
connection, each in its own transaction that is rolled back (so every repetition meets the same
state: a queue that has just moved), and prints the time per call (p50 / p90, microseconds) and
the backend's CPU per call. bench.fanout says where the time goes under load (its "DB time per
change" line); this says what one call costs, so a change to the SQL can be compared before and
after in a minute, without a 10,000-client run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from bench import hospital as bench_hospital

Step = Callable[[asyncpg.Connection, dict[str, Any]], Awaitable[Any]]


async def _live_views(conn: asyncpg.Connection, s: dict[str, Any]) -> Any:
    # As the engine calls it after a call-next: the views it holds are known, the two tokens
    # whose rows changed are asked for.
    return await conn.fetchval("SELECT doctor_live_views($1, $2, false, $3)",
                               s["doctor"], s["changed"], s["known"])


async def _live_views_every_view(conn: asyncpg.Connection, s: dict[str, Any]) -> Any:
    # As the safety refresh calls it: every open view read again from the database.
    return await conn.fetchval("SELECT doctor_live_views($1, $2, false, NULL)", s["doctor"], [])


async def _snapshot(conn: asyncpg.Connection, s: dict[str, Any]) -> Any:
    return await conn.fetchval("SELECT doctor_queue_snapshot($1, hospital_today($2), false)",
                               s["doctor"], s["hospital"])


async def _enqueue(conn: asyncpg.Connection, s: dict[str, Any]) -> Any:
    return await conn.fetchval("SELECT enqueue_notification($1, 'CALLED')", s["waiting"])


async def _write_back(conn: asyncpg.Connection, s: dict[str, Any]) -> Any:
    # After a call-next every waiting patient's position changed: the realistic write-back.
    await conn.execute("SELECT 1 FROM call_next_token($1, NULL, true)", s["doctor"])
    return await conn.fetchval("SELECT write_back_queues($1)", [s["doctor"]])


async def _call_next(conn: asyncpg.Connection, s: dict[str, Any]) -> Any:
    return await conn.fetchval("SELECT token_id FROM call_next_token($1, NULL, true)", s["doctor"])


async def _issue(conn: asyncpg.Connection, s: dict[str, Any]) -> Any:
    return await conn.fetchval(
        "SELECT token_id FROM issue_token($1, $2, $3, NULL, 'WALK_IN', 1, NULL, 'bench')",
        s["hospital"], s["patient"], s["doctor"])


async def _operations(conn: asyncpg.Connection, s: dict[str, Any]) -> Any:
    # The operations dashboard's read of every doctor's status and the open alerts.
    return await conn.fetchval("SELECT hospital_operations($1)", s["hospital"])


STEPS: dict[str, Step] = {
    "doctor_live_views (engine, after a call)": _live_views,
    "doctor_live_views (refresh, every view)": _live_views_every_view,
    "doctor_queue_snapshot": _snapshot,
    "enqueue_notification (CALLED)": _enqueue,
    "call_next_token (the click)": _call_next,
    "issue_token (the click)": _issue,
    "call_next_token + write_back_queues": _write_back,
    "hospital_operations (the dashboard, per hospital)": _operations,
}


async def _state(conn: asyncpg.Connection, hospital: bench_hospital.BenchHospital) -> dict[str, Any]:
    doctor = hospital.doctor_ids[0]
    open_ids = [r["token_id"] for r in await conn.fetch(
        """SELECT token_id FROM tokens WHERE doctor_id = $1
           AND status IN ('BOOKED', 'CHECKED_IN', 'WAITING', 'IN_CONSULTATION')""", doctor)]
    waiting = await conn.fetchval(
        "SELECT token_id FROM tokens WHERE doctor_id = $1 AND status = 'CHECKED_IN' LIMIT 1", doctor)
    patient = await conn.fetchval(
        "SELECT patient_id FROM patients WHERE hospital_id = $1 LIMIT 1", hospital.hospital_id)
    return {"doctor": doctor, "hospital": hospital.hospital_id, "known": open_ids,
            "changed": open_ids[:2], "waiting": waiting, "patient": patient}


async def _measure(conn: asyncpg.Connection, step: Step, state: dict[str, Any], repeat: int
                   ) -> tuple[list[float], float]:
    pid = conn.get_server_pid()
    wall: list[float] = []
    cpu_before = _backend_cpu(pid)
    for _ in range(repeat):
        tx = conn.transaction()
        await tx.start()
        started = time.perf_counter()
        try:
            await step(conn, state)
        finally:
            wall.append(time.perf_counter() - started)
            await tx.rollback()
    return wall, (_backend_cpu(pid) - cpu_before) / repeat


def _backend_cpu(pid: int) -> float:
    """The PostgreSQL backend's user+system CPU seconds (the server is on this machine)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(args: argparse.Namespace) -> None:
    hospital = await bench_hospital.build_hospital(
        args.database_url, doctors=args.doctors, departments=max(1, args.doctors // 4),
        queue_length=args.queue_length, tail=1)
    try:
        settings = {**bench_hospital.clock_settings(), **dict(item.split("=", 1) for item in args.set)}
        conn = await asyncpg.connect(hospital.dsn, server_settings=settings)
        try:
            state = await _state(conn, hospital)
            print(f"{args.doctors} doctors, {args.queue_length} waiting each; {args.repeat} calls "
                  f"per statement, each in a transaction rolled back\n")
            print(f"{'statement':44} {'p50 µs':>8} {'p90 µs':>8} {'CPU µs':>8}")
            for name, step in STEPS.items():
                await _measure(conn, step, state, max(5, args.repeat // 10))  # plans cached
                wall, cpu = await _measure(conn, step, state, args.repeat)
                deciles = statistics.quantiles(wall, n=10)
                print(f"{name:44} {statistics.median(wall) * 1e6:8.0f} {deciles[8] * 1e6:8.0f} "
                      f"{cpu * 1e6:8.0f}", flush=True)
        finally:
            await conn.close()
    finally:
        await bench_hospital.drop_database(args.database_url, hospital.database)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.sql_costs", description=__doc__.split("\n")[0])
    p.add_argument("--doctors", type=int, default=196)
    p.add_argument("--queue-length", type=int, default=63)
    p.add_argument("--repeat", type=int, default=300)
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a PostgreSQL setting for the session (e.g. plan_cache_mode=force_generic_plan)")
    p.add_argument("--database-url", default=os.environ.get(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    asyncio.run(run(p.parse_args(argv)))


if __name__ == "__main__":
    main()
