"""Named SQL queries: each `-- name: some_query` line in sql/queries/*.sql starts one query."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from app.settings import REPO_ROOT

QUERIES_DIR = REPO_ROOT / "sql" / "queries"
_NAME_LINE = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def parse_queries(text: str, source: str = "<string>") -> dict[str, str]:
    """The named queries in one file's text (comments and blank lines around them kept)."""
    parts = _NAME_LINE.split(text)
    found: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in found:
            raise ValueError(f"{source}: query {name!r} is defined twice")
        found[name] = body.strip()
    return found


@functools.cache
def _all_queries(directory: Path = QUERIES_DIR) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        for name, sql in parse_queries(path.read_text(), path.name).items():
            if name in merged:
                raise ValueError(f"{path.name}: query {name!r} is also defined in another file")
            merged[name] = sql
    return merged


def query(name: str) -> str:
    """The SQL of the query called `name` (files are read once per process)."""
    try:
        return _all_queries()[name]
    except KeyError:
        raise KeyError(f"no query named {name!r} in {QUERIES_DIR}") from None
