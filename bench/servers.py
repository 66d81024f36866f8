"""The two servers under test: the app (as `python -m app serve` runs it) and the Node reference."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = Path(__file__).resolve().parent / "node_ws_server"
STARTUP_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AppProcess:
    def __init__(self, dsn: str, redis_url: str, namespace: str, extra_env: dict[str, str],
                 engine_process: bool = False) -> None:
        self.port = free_port()
        self.log_path = Path(f"/tmp/opd-bench-app-{self.port}.log")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPD_")}
        env.update({"DATABASE_URL": dsn, "REDIS_URL": redis_url, "OPD_BUS_NAMESPACE": namespace,
                    "OPD_PUBLIC_URL": self.base_url, "OPD_SECRET_KEY": "bench-secret-not-for-production",
                    "OPD_LOG_LEVEL": "WARNING", **extra_env})
        self.engine: subprocess.Popen[bytes] | None = None
        if engine_process:  # `python -m app engine` leads; the server only serves and fans out
            with self.log_path.with_suffix(".engine.log").open("wb") as log:
                self.engine = subprocess.Popen([sys.executable, "-m", "app", "engine"], cwd=REPO_ROOT,
                                               env=env, stdout=log, stderr=subprocess.STDOUT)
            env["OPD_ENGINE"] = "off"
        with self.log_path.open("wb") as log:
            # The production entry point, so uvicorn gets the same WebSocket settings.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self._wait_healthy()

    @property
    def pid(self) -> int:
        return self.process.pid

    def processes(self) -> list[psutil.Process]:
        """The server and its uvicorn workers when there are several."""
        return self._tree([self.process.pid])

    def engine_processes(self) -> list[psutil.Process]:
        """The engine process, when the run has one."""
        return self._tree([self.engine.pid] if self.engine else [])

    @staticmethod
    def _tree(pids: list[int]) -> list[psutil.Process]:
        found = []
        for pid in pids:
            try:
                main = psutil.Process(pid)
                found += [main, *main.children(recursive=True)]
            except psutil.Error:
                pass
        return found

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app server exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"app server not healthy:\n{self.log_path.read_text()[-3000:]}")

    def log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        stop_process(self.process)
        if self.engine is not None:
            stop_process(self.engine)


def ensure_node_modules() -> None:
    """`npm ci` on first use: the repository carries package-lock.json, not node_modules."""
    if (NODE_DIR / "node_modules" / "ws").is_dir():
        return
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=NODE_DIR, check=True,
                   timeout=300)


class NodeProcess:
    def __init__(self, deflate: bool) -> None:
        ensure_node_modules()
        env = {**os.environ, "PORT": "0", "PERMESSAGE_DEFLATE": "1" if deflate else "0"}
        self.process = subprocess.Popen(["node", "server.js"], cwd=NODE_DIR, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = re.match(r"listening (\d+)", line)
        if match is None:
            self.stop()
            raise RuntimeError(f"node server did not start: {line!r}")
        self.port = int(match.group(1))

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def control_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/control"

    def stats(self) -> dict[str, int]:
        data: dict[str, int] = httpx.get(f"http://127.0.0.1:{self.port}/stats", timeout=5).json()
        return data

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen) -> None:  # type: ignore[type-arg]
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
