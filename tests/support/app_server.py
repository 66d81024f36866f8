"""Runs the real app in a subprocess (uvicorn), as production does, for HTTP/WebSocket tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.redis_cleanup import NAMESPACES_USED
from tests.support.redis_server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 30.0


class AppServer:
    def __init__(self, dsn: str, redis_url: str | None, namespace: str, *,
                 extra_env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.dsn = dsn
        self.redis_url = redis_url
        self.namespace = namespace
        NAMESPACES_USED.add(namespace)
        self.port = port or free_port()
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = Path(f"/tmp/opd-test-server-{self.port}.log")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> AppServer:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.update({
            "DATABASE_URL": self.dsn,
            "OPD_BUS_NAMESPACE": self.namespace,
            "OPD_PUBLIC_URL": self.base_url,
            "OPD_SECRET_KEY": "test-secret-key-not-for-production",
            "OPD_LOG_LEVEL": "WARNING",
            **self.extra_env,
        })
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--ws-ping-interval", "5", "--ws-ping-timeout", "5",
             "--ws-per-message-deflate", "false",
             "--log-level", "warning"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.wait_healthy()
        return self

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"app server exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"app server did not become healthy:\n{self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)
