"""The Procfile as production runs it on one machine (honcho): web workers that neither lead
nor send, an engine process that leads, a dispatcher process that sends; a click reaches a
screen and its message goes out, and /metrics of the web adds up all three."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx

from tests.support import factory
from tests.support.app_server import REPO_ROOT
from tests.support.redis_cleanup import NAMESPACES_USED
from tests.support.redis_server import free_port
from tests.support.ws_client import live_client


async def wait_for(check, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = await check()
            if result:
                return result
        except (httpx.HTTPError, OSError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout:.0f} s")
        await asyncio.sleep(0.3)


async def test_the_procfile_runs_web_engine_and_dispatcher(database: str, redis_url: str,
                                                           pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    port, namespace = free_port(), f"opdprocfile{secrets.token_hex(4)}"
    NAMESPACES_USED.add(namespace)
    venv_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPD_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({"PATH": f"{venv_bin}:{env.get('PATH', '')}", "PORT": str(port), "DATABASE_URL": database,
                "REDIS_URL": redis_url, "OPD_BUS_NAMESPACE": namespace, "OPD_WORKERS": "2",
                "OPD_SECRET_KEY": "test-secret-key-not-for-production", "OPD_LOG_LEVEL": "WARNING",
                "OPD_PUBLIC_URL": f"http://127.0.0.1:{port}",
                # Its own engine lease: the suite's server leads the shared test database's.
                "OPD_LEADER_LOCK_KEY": str(900000 + secrets.randbelow(90000))})
    log_path = Path(f"/tmp/opd-test-procfile-{port}.log")
    with log_path.open("wb") as log:
        honcho = subprocess.Popen([f"{venv_bin}/honcho", "start"], cwd=REPO_ROOT, env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            async def healthy() -> dict | None:  # type: ignore[type-arg]
                response = await http.get("/healthz")
                return response.json() if response.status_code == 200 else None
            health = await wait_for(healthy, 60, "healthy web process")
            # The web workers neither lead the engine nor send messages.
            assert health["checks"]["engine"] == "off"
            assert "task:notify-dispatcher" not in health["checks"]

            # The engine process leads: a token issued reaches a screen through it.
            topic = f"department:{hospital.dept_id}"
            async with live_client(f"ws://127.0.0.1:{port}/ws", hospital.keys["admin"]) as ws:
                await ws.subscribed(topic)
                token = await factory.issue(pool, hospital)
                await ws.data_where(topic, lambda d: any(x["waiting_count"] >= 1 for x in d["desks"]),
                                    what="the new token on the board", timeout=30)

            # The dispatcher process sends its message (the log provider here).
            async def sent() -> bool:
                return bool(await pool.fetchval(
                    "SELECT bool_and(delivery_status = 'SENT') FROM notifications_log WHERE token_id = $1",
                    token["token_id"]))
            await wait_for(sent, 30, "message sent by the dispatcher process")

            # /metrics of a web worker adds up every process of the machine: the engine's leadership.
            async def engine_leads() -> bool:
                text = (await http.get("/metrics")).text
                return "opd_engine_leader 1.0" in text and "opd_commit_to_publish_seconds_count" in text
            await wait_for(engine_leads, 20, "the engine process's leadership in /metrics")
    finally:
        os.killpg(honcho.pid, signal.SIGTERM)
        try:
            honcho.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(honcho.pid, signal.SIGKILL)
            honcho.wait()
