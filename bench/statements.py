"""Transactions per change, counted from PostgreSQL's own statement log (`--statement-log PATH`).

pg_stat_database's xact counters are flushed by each backend lazily (PostgreSQL 15: when it goes
idle, at most once a second, and not at all by some idle connections for many seconds), so the
work of setting up a run — seeding tokens, thousands of clients' subscription checks — leaks into
the drive's window and the per-change figure comes out high by up to one. Here the bench's own
database logs every statement (`log_statement = all`, set on that database only, before the app
connects), the bench writes a marker statement before and after the drive, and the lines
between the markers are counted: a statement outside an explicit transaction is one
transaction, BEGIN ... COMMIT is one. Needs read access to the server's log file, e.g.
/var/log/postgresql/postgresql-15-main.log on Debian.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg

MARKER = "opd-bench-marker"
_LINE = re.compile(r"\[(?P<pid>\d+)\] \S*@(?P<db>\S+) LOG:  (?:execute [^:]+|statement): (?P<sql>.*)$")


async def enable(admin_dsn: str, database: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f"ALTER DATABASE \"{database}\" SET log_statement = 'all'")
    finally:
        await conn.close()


async def mark(dsn: str, label: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"SELECT '{MARKER} {label}'")
    finally:
        await conn.close()


def kind_of(sql: str) -> str:
    """A statement's kind: its text up to the first parenthesis or 60 characters."""
    text = re.sub(r"\s+", " ", sql.strip())
    return re.split(r"\(", text, maxsplit=1)[0][:60] if text.upper().startswith("SELECT") else text[:60]


def count(path: Path, database: str, start: str, end: str) -> dict[str, Any]:
    """Transactions between the markers `start` and `end`, in all and by kind (the first
    statement of an explicit transaction names it)."""
    inside, in_block = False, set()
    total = 0
    by_kind: Counter[str] = Counter()
    with path.open(errors="replace") as log:
        for line in log:
            match = _LINE.search(line)
            if match is None or match["db"] != database:
                continue
            sql, pid = match["sql"], match["pid"]
            if MARKER in sql:
                if f"{MARKER} {start}" in sql:
                    inside = True
                elif f"{MARKER} {end}" in sql:
                    break
                continue
            if not inside:
                continue
            word = sql.strip().rstrip(";").upper()
            if word in ("BEGIN", "START TRANSACTION"):
                in_block.add(pid)
                total += 1
                continue
            if word in ("COMMIT", "ROLLBACK", "END"):
                in_block.discard(pid)
                continue
            if pid in in_block:
                continue
            total += 1
            by_kind[kind_of(sql)] += 1
    explicit = total - sum(by_kind.values())
    if explicit:
        by_kind["BEGIN ... COMMIT"] = explicit
    return {"transactions": total, "by_kind": dict(by_kind.most_common())}
