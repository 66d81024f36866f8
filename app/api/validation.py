"""A small JSON Schema subset: the same schemas validate request bodies and describe them in
the OpenAPI document, so the docs cannot drift from what is enforced."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any

from starlette.requests import Request

from app.api.errors import ApiError
from app.phones import HINT as PHONE_HINT
from app.phones import normalise_phone

MAX_BODY_BYTES = 64 * 1024
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME_RE = re.compile(r"^\d{2}:\d{2}(:\d{2})?$")


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "null":
        return value is None
    return False


def _convert(value: Any, schema: dict[str, Any], path: str) -> Any:
    """Check value against schema and return it with formats parsed (uuid, date-time, ...)."""
    kinds = schema.get("type")
    if kinds is not None:
        kinds_list = kinds if isinstance(kinds, list) else [kinds]
        if not any(_type_ok(value, k) for k in kinds_list):
            raise ApiError(422, f"{path} must be {' or '.join(kinds_list)}", code="invalid", field=path)
    if value is None:
        return None
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(str(v) for v in schema["enum"])
        raise ApiError(422, f"{path} must be one of: {allowed}", code="invalid", field=path)
    if isinstance(value, str):
        if "\x00" in value:
            raise ApiError(422, f"{path} contains a NUL character", code="invalid", field=path)
        if len(value) > schema.get("maxLength", 10_000):
            raise ApiError(422, f"{path} is longer than {schema['maxLength']} characters",
                           code="invalid", field=path)
        if len(value) < schema.get("minLength", 0):
            raise ApiError(422, f"{path} must not be empty", code="invalid", field=path)
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise ApiError(422, f"{path} has an invalid format", code="invalid", field=path)
        return _convert_format(value, schema.get("format"), path)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise ApiError(422, f"{path} must be at least {schema['minimum']}", code="invalid", field=path)
        if "maximum" in schema and value > schema["maximum"]:
            raise ApiError(422, f"{path} must be at most {schema['maximum']}", code="invalid", field=path)
    if isinstance(value, dict):
        return _convert_object(value, schema, path)
    if isinstance(value, list):
        return [_convert(v, schema.get("items", {}), f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _convert_format(value: str, fmt: str | None, path: str) -> Any:
    if fmt == "phone":
        phone = normalise_phone(value)
        if phone is None:
            raise ApiError(422, f"{path}: {value!r} is not a phone number; give {PHONE_HINT}",
                           code="invalid", field=path)
        return phone
    try:
        if fmt == "uuid":
            return uuid.UUID(value)
        if fmt == "date-time":
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                raise ValueError("no time zone")
            return parsed
        if fmt == "date":
            if not _DATE_RE.match(value):
                raise ValueError
            return dt.date.fromisoformat(value)
        if fmt == "time":
            if not _TIME_RE.match(value):
                raise ValueError
            return dt.time.fromisoformat(value)
    except ValueError:
        hint = {"uuid": "a UUID", "date-time": "an ISO 8601 date-time with a time zone",
                "date": "a date YYYY-MM-DD", "time": "a time HH:MM"}[fmt or ""]
        raise ApiError(422, f"{path} must be {hint}", code="invalid", field=path) from None
    return value


def _convert_object(value: dict[str, Any], schema: dict[str, Any], path: str) -> dict[str, Any]:
    props: dict[str, Any] = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            raise ApiError(422, f"{_join(path, name)} is required", code="invalid",
                           field=_join(path, name))
    if schema.get("additionalProperties") is False:
        unknown = sorted(set(value) - set(props))
        if unknown:
            raise ApiError(422, f"unknown field {_join(path, unknown[0])}", code="invalid",
                           field=_join(path, unknown[0]))
    out: dict[str, Any] = {}
    for name, item in value.items():
        out[name] = _convert(item, props.get(name, {}), _join(path, name))
    for rule in schema.get("x-one-of-required", []):
        if sum(1 for name in rule if out.get(name) is not None) != 1:
            raise ApiError(422, f"give exactly one of: {', '.join(rule)}", code="invalid")
    return out


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python accepts them, JSON does not


def validate(value: Any, schema: dict[str, Any]) -> Any:
    return _convert(value, schema, "")


async def read_json(request: Request, schema: dict[str, Any]) -> dict[str, Any]:
    """Parse and validate the request body; an empty body counts as {}."""
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, f"body larger than {MAX_BODY_BYTES} bytes", code="too_large")
    if not raw.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(raw, parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "body is not valid JSON", code="bad_json") from None
    if not isinstance(data, dict):
        raise ApiError(422, "body must be a JSON object", code="invalid")
    result: dict[str, Any] = validate(data, schema)
    return result


def parse_uuid(raw: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ApiError(404, f"{what} not found: {raw!r} is not an id", code="not_found") from None


def parse_query_date(raw: str | None, default: dt.date | None = None) -> dt.date | None:
    if raw is None or raw == "":
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ApiError(422, f"date must be YYYY-MM-DD, not {raw!r}", code="invalid", field="date") from None
