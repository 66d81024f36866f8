"""Fan-out benchmark: queue changes through the HTTP API, snapshot frames to many WebSocket clients.

    .venv/bin/python -m bench.fanout [--clients N] [--rate M] [--seconds S] [--idle K] ...

One run: a fresh database (dropped at the end) with a hospital sized for N clients; the app
server as production runs it; N clients in worker processes; M changes per second for S
seconds. Then the frames the engine published are replayed into the app's hub and into a
minimal Node.js `ws` server with the same clients, to compare fan-out alone. See README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import secrets
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

from app.live import design_keys
from bench import hospital as bench_hospital
from bench import load, report
from bench import statements as bench_statements
from bench.contention import CpuHog
from bench.cpu_probe import CpuProbe
from bench.monitor import Monitor, by_pids, machine_info, processes_named
from bench.servers import AppProcess

NOFILE = 200_000                # descriptors for the server and each swarm worker
BOARD_CLIENTS_PER_TOPIC = 2     # TVs per hospital/department board


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=500, help="WebSocket clients (default 500)")
    p.add_argument("--rate", type=float, default=20, help="queue changes per second (default 20)")
    p.add_argument("--seconds", type=float, default=15, help="how long to drive changes (default 15)")
    p.add_argument("--warmup-seconds", type=float, default=10,
                   help="drive this long first, reported apart from the measured --seconds (default 10)")
    p.add_argument("--lockstep", action="store_true",
                   help="every doctor does the same kind of change at the same time (the old schedule)")
    p.add_argument("--phones-per-doctor", type=int, default=50)
    p.add_argument("--doctors", type=int, help="default: enough for ~50 phones each")
    p.add_argument("--departments", type=int, help="default: one per 4 doctors")
    p.add_argument("--workers", type=int, default=2, help="client swarm processes (default 2)")
    p.add_argument("--no-deflate", action="store_true",
                   help="clients do not offer permessage-deflate (browsers do)")
    p.add_argument("--flat-out-seconds", type=float, default=10,
                   help="replay as fast as each server takes frames, for this long (0: skip)")
    p.add_argument("--skip-node", action="store_true", help="no comparison with the Node server")
    p.add_argument("--idle", type=int, metavar="K",
                   help="idle mode: K connections on token topics, report memory; no changes")
    p.add_argument("--engine-process", action="store_true",
                   help="run the queue engine as `python -m app engine`, the server with OPD_ENGINE=off")
    p.add_argument("--app-workers", type=int, default=1,
                   help="uvicorn worker processes of the app (OPD_WORKERS; default 1)")
    p.add_argument("--keep-timers", action="store_true",
                   help="keep the app's ETA tick and safety refresh (off by default so every "
                        "frame and query comes from a change)")
    p.add_argument("--app-env", action="append", default=[], metavar="NAME=VALUE", type=_name_value,
                   help="a setting for the app's processes, e.g. OPD_COALESCE_MS=3 (repeatable)")
    p.add_argument("--contention", type=float, metavar="SHARE",
                   help="run a CPU hog taking this share of one core beside the run (e.g. 0.3; issue 19)")
    p.add_argument("--statement-log", type=Path, metavar="PATH",
                   help="PostgreSQL's log file: count the drive's transactions per change from the "
                        "statements the bench's database logs (bench/statements.py)")
    p.add_argument("--database-url", default=os.environ.get(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    return p.parse_args(argv)


def plan(args: argparse.Namespace) -> dict[str, int]:
    """Doctors, departments, queue length and phones per doctor for the run."""
    if args.idle:
        doctors = args.doctors or max(2, math.ceil(args.idle / 200))
        return {"doctors": doctors, "departments": args.departments or max(1, round(doctors / 4)),
                "tail": 100, "queue_length": 100}
    doctors = args.doctors or max(2, round(args.clients / (args.phones_per_doctor + 1)))
    departments = args.departments or max(1, round(doctors / 4))
    boards = (1 + departments) * BOARD_CLIENTS_PER_TOPIC + load.RECEPTION_DESKS
    phones = max(doctors, args.clients - doctors - boards)
    tail = math.ceil(phones / doctors)
    # Every third change is a call: the subscribed tail must still be waiting at the end.
    calls = math.ceil(args.rate * args.seconds / 3 / doctors)
    return {"doctors": doctors, "departments": departments, "tail": tail, "phones": phones,
            "queue_length": tail + math.ceil(calls * 1.2) + 5}


async def wait_for_engine(redis_url: str, namespace: str, dept_ids: list[str]) -> float:
    """Until the engine has published every department's board (it does so once every doctor
    of the department is computed). Not the hospital topic: the engine publishes that only
    while someone watches it."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(redis_url)
    started = time.monotonic()
    try:
        while time.monotonic() - started < 300:
            if await client.exists(*[f"{namespace}:frame:department:{d}" for d in dept_ids]) == len(dept_ids):
                return time.monotonic() - started
            await asyncio.sleep(0.2)
    finally:
        await client.aclose()
    raise RuntimeError("the engine published nothing within 300 s")


async def versions(dsn: str, redis_url: str) -> dict[str, str]:
    import redis.asyncio as redis

    conn = await asyncpg.connect(dsn)
    try:
        pg = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    client = redis.Redis.from_url(redis_url)
    try:
        info = await client.info("server")
    finally:
        await client.aclose()
    return {"postgresql": str(pg), "redis": str(info.get("redis_version"))}


async def design_keys_of(hospital: bench_hospital.BenchHospital) -> list[str]:
    """The design's Redis keys the run's engine wrote for its hospital (not namespaced)."""
    conn = await asyncpg.connect(hospital.dsn)
    try:
        return await design_keys.keys_of_database(conn)
    finally:
        await conn.close()


async def drop_namespace(redis_url: str, namespace: str, also: list[str]) -> None:
    """The run's snapshot keys and its hospital's design keys: Redis is shared, and a run left
    ~15 MB of snapshots and ~12,000 design keys (which expire only after two days) behind."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{namespace}:*", count=1000)] + also
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start:start + 1000])
    finally:
        await client.aclose()


async def run(args: argparse.Namespace, command: str) -> int:
    layout = plan(args)
    namespace = f"bench{secrets.token_hex(4)}"
    machine = machine_info()
    print(f"plan: {layout}; namespace {namespace}", flush=True)
    started = time.monotonic()
    hospital = await bench_hospital.build_hospital(
        args.database_url, doctors=layout["doctors"], departments=layout["departments"],
        queue_length=layout["queue_length"], tail=layout["tail"])
    if args.statement_log:   # before the app connects: the setting applies to new sessions
        await bench_statements.enable(args.database_url, hospital.database)
    print(f"database {hospital.database}: {layout['doctors']} doctors, "
          f"{layout['doctors'] * (layout['queue_length'] + 1)} tokens, "
          f"built in {time.monotonic() - started:.1f}s", flush=True)
    monitor = Monitor()
    app: AppProcess | None = None
    hog = CpuHog(args.contention) if args.contention else None
    probe = CpuProbe()
    try:
        probe.start()
        if hog is not None:
            hog_pid = hog.start()
            monitor.watch("contention", by_pids(lambda: [hog_pid]))
            print(f"contention: a process busy {args.contention:.0%} of one core (pid {hog_pid})", flush=True)
        machine.update(await versions(hospital.dsn, args.redis_url))
        env = {"OPD_WORKERS": str(args.app_workers), **bench_hospital.clock_env()}
        if not args.keep_timers:
            env.update({"OPD_ETA_TICK_S": "3600", "OPD_SAFETY_REFRESH_S": "3600"})
        env.update(args.app_env)
        app = AppProcess(hospital.dsn, args.redis_url, namespace, env, args.engine_process)
        monitor.watch("app", lambda: app.processes() if app else [])
        if args.engine_process:
            monitor.watch("engine", lambda: app.engine_processes() if app else [])
        monitor.watch("postgres", lambda: processes_named("postgres"))
        monitor.watch("redis", lambda: processes_named("redis-server"))
        monitor.watch("bench", by_pids(lambda: [os.getpid()]))  # driver, capture, replayer
        monitor.start()
        waited = await wait_for_engine(args.redis_url, namespace, hospital.dept_ids)
        print(f"app pid {app.pid} on {app.base_url}; first full publish took {waited:.1f}s", flush=True)
        context = load.Context(args, hospital, app, monitor, namespace, layout, probe)
        if args.idle:
            lines, data = await load.idle_mode(context)
            title = f"Idle connections: {args.idle}"
        else:
            lines, data = await load.load_mode(context)
            title = f"Fan-out: {args.clients} clients, {args.rate:g} changes/s, {args.seconds:g} s"
    finally:
        monitor.stop()
        probe.stop()
        if hog is not None:
            hog.stop()
        if app is not None:
            app.stop()
        leftover_keys = await design_keys_of(hospital)
        await bench_hospital.drop_database(args.database_url, hospital.database)
        await drop_namespace(args.redis_url, namespace, leftover_keys)
    block = report.summary_block(title, command, machine, lines)
    path = report.save("idle" if args.idle else "fanout",
                       {"command": command, "plan": layout, "machine": machine, **data})
    print("\n" + block + f"\n\n(saved {path})")
    return 0


def _name_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Tens of thousands of sockets: the app server and the swarm workers inherit this. Raising
    # the hard limit needs CAP_SYS_RESOURCE; without it we get the hard limit, and say so.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        print(f"file descriptors: hard limit {hard} (could not raise it to {NOFILE})", flush=True)
    command = "python -m bench.fanout " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    return asyncio.run(_cancellable(run(args, command)))


async def _cancellable(work: Any) -> int:
    """SIGTERM (a `timeout` wrapper, a CI runner) cancels the run, so its finally blocks stop
    the servers and the swarm and drop the database."""
    task = asyncio.ensure_future(work)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return int(await task)
    except asyncio.CancelledError:
        print("cancelled: servers stopped, database dropped", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
