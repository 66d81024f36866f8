"""JSON in and out: one encoder for UUIDs, dates and decimals, used by the API and the bus.

orjson, not the standard library: the queue engine serializes every snapshot it publishes and
the API every response, and at a hundred changes a second json.dumps was a fifth of the
engine's CPU (profiled; docs/performance.md). orjson encodes UUIDs and dates itself, in the same
forms (`str(uuid)`, ISO 8601) the standard library's default gave.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import orjson


def _default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


# Non-string keys (an int-keyed dict) are written as strings, as json.dumps did.
_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> str:
    return orjson.dumps(value, default=_default, option=_OPTIONS).decode()


def dumps_bytes(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=_OPTIONS)


loads = orjson.loads


def strip_private(value: Any) -> Any:
    """Drop the engine-only fields (names starting with '_') from a snapshot."""
    if isinstance(value, dict):
        return {k: strip_private(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [strip_private(v) for v in value]
    return value
