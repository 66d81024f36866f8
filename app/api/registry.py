"""Declares API operations once: the route, its authentication, its body schema, and its entry
in the OpenAPI document are all made from the same declaration."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app import jsonutil
from app.api.auth import Principal, authenticate
from app.api.errors import ApiError
from app.api.validation import parse_uuid, read_json
from app.db.bounded import REQUEST_DB, BoundedPool, RequestTransaction
from app.logs import HOSPITAL_ID

API_PREFIX = "/api/v1"


class JSONBody(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return jsonutil.dumps_bytes(content)


@dataclass
class Call:
    """What an operation's handler gets: the request, its caller and its validated body."""

    request: Request
    principal: Principal | None
    body: dict[str, Any]

    @property
    def pool(self) -> BoundedPool:
        """The database, with a bounded wait for a connection (503 busy beyond it); for a
        one-transaction operation, that request's connection and transaction."""
        pool: BoundedPool = self.request.scope.get(REQUEST_DB) or self.request.app.state.api_pool
        return pool

    @property
    def staff(self) -> Principal:
        assert self.principal is not None
        return self.principal

    def path_id(self, name: str, what: str) -> uuid.UUID:
        return parse_uuid(self.request.path_params[name], what)

    def query(self, name: str) -> str | None:
        value = self.request.query_params.get(name)
        if value is not None and "\x00" in value:
            raise ApiError(422, f"{name} contains a NUL character", code="invalid", field=name)
        return value


Handler = Callable[[Call], Awaitable[Any]]


@dataclass
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: dict[str, Any] | None = None
    auth: bool = True
    status: int = 200
    query: list[dict[str, Any]] = field(default_factory=list)
    responses: dict[int, str] = field(default_factory=dict)
    prefix: str = API_PREFIX  # another only for a path fixed by someone else (the ABDM gateway's)
    one_transaction: bool = False  # the credential check and the handler in one transaction

    @property
    def full_path(self) -> str:
        return self.prefix + self.path


class Api:
    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def op(self, method: str, path: str, *, summary: str, tag: str,
           body: dict[str, Any] | None = None, auth: bool = True, status: int = 200,
           query: list[dict[str, Any]] | None = None,
           responses: dict[int, str] | None = None, prefix: str = API_PREFIX,
           one_transaction: bool = False) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.operations.append(Operation(method, path, handler, summary, tag, body, auth,
                                             status, query or [], responses or {}, prefix, one_transaction))
            return handler
        return register

    def routes(self) -> list[Route]:
        return [Route(op.full_path, _endpoint(op), methods=[op.method],
                      name=op.handler.__name__) for op in self.operations]


def _endpoint(op: Operation) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        if op.one_transaction:
            # A click: the credential check, the checks and the change in one transaction on one
            # connection (issue 19); it commits before the answer is sent, or not at all.
            api_pool: BoundedPool = request.app.state.api_pool
            async with api_pool.acquire() as conn, conn.transaction():
                request.scope[REQUEST_DB] = RequestTransaction(conn)
                try:
                    return await run(request)
                finally:
                    del request.scope[REQUEST_DB]
        return await run(request)

    async def run(request: Request) -> Response:
        principal = await authenticate(request) if op.auth else None
        if principal is not None:
            HOSPITAL_ID.set(str(principal.hospital_id))  # on this request's log lines
        if op.body is not None:
            body = await read_json(request, op.body)
        else:
            body = {}
        result = await op.handler(Call(request, principal, body))
        if isinstance(result, Response):
            return result
        return JSONBody(result, status_code=op.status)
    return endpoint


def query_param(name: str, description: str, *, required: bool = False,
                schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or {"type": "string"}}


def require_found(row: Any, what: str) -> Any:
    if row is None:
        raise ApiError(404, f"{what} not found", code="not_found")
    return row


api = Api()
