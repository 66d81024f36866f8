"""`python -m app engine`: the queue engine in its own process, web processes with
OPD_ENGINE=off only fan out; a change through the web API reaches the web's WebSocket clients."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from pathlib import Path

from tests.live.actions import call_next, issue_token, queue_summary
from tests.live.conftest import engine_role, staff_http
from tests.support.ws_client import live_client

REPO_ROOT = Path(__file__).resolve().parents[2]


def start_engine(database: str, redis_url: str | None, namespace: str, lock_key: int,
                 extra_env: dict[str, str] | None = None, log_name: str | None = None
                 ) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"DATABASE_URL": database, "OPD_BUS_NAMESPACE": namespace,
                "OPD_LEADER_LOCK_KEY": str(lock_key), "OPD_LOG_LEVEL": "WARNING", **(extra_env or {})})
    if redis_url:
        env["REDIS_URL"] = redis_url
    log = log_path(log_name or namespace).open("wb")  # a file, not a pipe nobody reads: it would fill and block
    return subprocess.Popen([sys.executable, "-m", "app", "engine"], cwd=REPO_ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def log_path(namespace: str) -> Path:
    return Path(f"/tmp/opd-test-engine-{namespace}.log")


async def test_engine_process_drives_web_processes_that_do_not_lead(
        start_server, lock_key, database, redis_url, hospital):
    namespace = f"opdengine{secrets.token_hex(4)}"
    engine = start_engine(database, redis_url, namespace, lock_key)
    try:
        web = await start_server(namespace=namespace, lock_key=lock_key,
                                 extra_env={"OPD_ENGINE": "off"})
        assert await engine_role(web) == "off"
        doctor = hospital.doctor.doctor_id
        async with staff_http(web, hospital.keys["admin"]) as http, \
                live_client(web.ws_url, hospital.keys["admin"]) as staff:
            await staff.subscribed(f"doctor:{doctor}")
            tokens = [await issue_token(http, doctor) for _ in range(2)]
            await call_next(http, doctor)
            data = await staff.data_where(
                f"doctor:{doctor}", lambda d: (d["now_serving"] or {}).get("token_number")
                == tokens[0]["token_number"], timeout=20)
            assert [(n, p) for n, p, _ in queue_summary(data)[1]] == [
                (tokens[1]["token_number"], 1)]
            assert data["waiting"][0]["eta_minutes"] > 0
        assert engine.poll() is None  # still running
    finally:
        engine.terminate()
        try:
            await asyncio.to_thread(engine.wait, 30)
        except subprocess.TimeoutExpired:
            engine.kill()
            await asyncio.to_thread(engine.wait, 10)
    assert engine.returncode == 0, log_path(namespace).read_text()[-3000:]


async def test_engine_process_refuses_to_run_without_redis(database):
    namespace = f"opdengine{secrets.token_hex(4)}"
    process = start_engine(database, None, namespace, 1)
    await asyncio.to_thread(process.wait, 60)
    assert process.returncode == 2
    assert "needs REDIS_URL" in log_path(namespace).read_text()
