"""The OpenAPI 3.1 document, built from the operations' declarations."""

from __future__ import annotations

import re
from typing import Any

from app.api.registry import Api

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}}},
}


def _openapi_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: (_openapi_schema(v) if isinstance(v, dict) and k != "properties" else
                {n: _openapi_schema(p) for n, p in v.items()} if k == "properties" else v)
            for k, v in schema.items() if not k.startswith("x-")}


def build_openapi(api: Api) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for op in api.operations:
        path = op.full_path
        params = [{"name": name, "in": "path", "required": True,
                   "schema": {"type": "string"} if name == "code" else {"type": "string", "format": "uuid"}}
                  for name in re.findall(r"{(\w+)}", op.path)]
        errors = {"400": "body is not JSON", "404": "not found", "409": "conflicts with the current state",
                  "422": "invalid input"}
        if op.auth:
            errors.update({"401": "no or invalid credential", "403": "not allowed for this role"})
        operation: dict[str, Any] = {
            "operationId": op.handler.__name__,
            "summary": op.summary,
            "tags": [op.tag],
            "parameters": params + op.query,
            "responses": {
                str(op.status): {"description": "success", "content": {"application/json": {"schema": {}}}},
                **{code: {"description": text, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
                   for code, text in errors.items()},
            },
        }
        if op.body is not None:
            operation["requestBody"] = {"required": False, "content": {
                "application/json": {"schema": _openapi_schema(op.body)}}}
        if op.auth:
            operation["security"] = [{"apiKey": []}]
        paths.setdefault(path, {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "OPD Queue Board API", "version": "1"},
        "paths": paths,
        "components": {"securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}}},
    }
