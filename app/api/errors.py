"""Errors for people: every failure becomes a JSON body that says what was wrong."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from app import metrics
from app.errors import ApiError, not_found  # noqa: F401  (re-exported: the API's modules raise them)

log = logging.getLogger(__name__)


# Our own SQLSTATEs, raised by sql/functions.sql.
_SQLSTATE_TO_HTTP = {
    "OPD10": (409, "illegal_transition"),
    "OPD11": (409, "full"),
    "OPD12": (409, "queue_empty"),
    "OPD13": (422, "outside_geofence"),
    "OPD14": (409, "doctor_unavailable"),
    "OPD15": (404, "not_found"),
    "OPD16": (422, "invalid"),
}

# Standard SQLSTATEs that bad input can still reach (a constraint caught what validation let by).
_CLASS_TO_HTTP = {
    "23505": (409, "duplicate"),
    "23503": (422, "unknown_reference"),
    "23514": (422, "constraint_violated"),
    "23502": (422, "missing_value"),
    "22P02": (422, "invalid_value"),
    "22021": (422, "invalid_value"),   # a character PostgreSQL cannot store (NUL)
    "22001": (422, "value_too_long"),
    "22003": (422, "value_out_of_range"),
    "22007": (422, "invalid_datetime"),
    "22008": (422, "invalid_datetime"),
}


def from_postgres(exc: asyncpg.PostgresError) -> ApiError | None:
    state = getattr(exc, "sqlstate", None) or ""
    if state in _SQLSTATE_TO_HTTP:
        status, code = _SQLSTATE_TO_HTTP[state]
        extra: dict[str, Any] = {}
        detail = getattr(exc, "detail", None)
        if detail and detail.startswith("{"):
            import json

            extra = json.loads(detail)
        return ApiError(status, exc.args[0] if exc.args else str(exc), code=code, **extra)
    if state in _CLASS_TO_HTTP:
        status, code = _CLASS_TO_HTTP[state]
        constraint = getattr(exc, "constraint_name", None)
        message = getattr(exc, "message", None) or str(exc)
        extra = {"constraint": constraint} if constraint else {}
        return ApiError(status, message, code=code, **extra)
    return None


def error_response(err: ApiError) -> JSONResponse:
    body = {"error": {"code": err.code, "message": err.message, **err.extra}}
    return JSONResponse(body, status_code=err.status)


async def handle_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc)


# Seconds a client is asked to wait when the database is unreachable: a restart or failover
# takes a few seconds; the pool reconnects on its own.
RETRY_AFTER_S = 2
# SQLSTATE classes meaning "the database cannot serve right now", not "your request is wrong":
# connection exceptions (08), operator intervention (57: shutdown, starting up), too many
# connections (53300).
_UNAVAILABLE_SQLSTATES = ("08", "57P", "53300")


def database_unavailable(exc: BaseException) -> bool:
    """The request failed because PostgreSQL is away (restart, failover, network), so the same
    request may well work in a moment."""
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        # 55000 is also "object not in prerequisite state" in general; only this one is about
        # connecting (a database closed to connections during maintenance or a failover).
        closed = state == "55000" and "not currently accepting connections" in str(exc)
        return state.startswith(_UNAVAILABLE_SQLSTATES) or closed
    # InternalClientError: asyncpg's state machine on a connection the server cut mid-query
    # ("cannot switch to state ..."); the pool replaces the connection, a retry works.
    return isinstance(exc, (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.InternalClientError))


def unavailable_response() -> JSONResponse:
    response = error_response(ApiError(
        503, "the database is briefly unavailable; retry in a few seconds", code="unavailable"))
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


async def handle_postgres_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, asyncpg.PostgresError)
    if database_unavailable(exc):
        log.warning("database unavailable on %s %s: %r", request.method, request.url.path, exc)
        metrics.DB_ERRORS.labels("unavailable").inc()
        return unavailable_response()
    mapped = from_postgres(exc)
    if mapped is None:
        log.exception("database error on %s %s", request.method, request.url.path, exc_info=exc)
        metrics.DB_ERRORS.labels("unexpected").inc()
        mapped = ApiError(500, "internal database error", code="internal")
    else:
        metrics.DB_ERRORS.labels("refused").inc()  # a rule of ours or a constraint said no
    return error_response(mapped)


async def handle_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(ApiError(exc.status_code, str(exc.detail), code=code))


# Exceptions that mean "PostgreSQL is away" when they reach a route: handled by their class (the
# ExceptionMiddleware answers and the connection lives on), not by the catch-all, which
# Starlette's ServerErrorMiddleware re-raises after answering, closing the client's keep-alive
# connection.
UNAVAILABLE_CLASSES: tuple[type[Exception], ...] = (
    OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.InternalClientError)


BUSY_RETRY_AFTER_S = 1


async def handle_busy(request: Request, exc: Exception) -> JSONResponse:
    """No database connection within OPD_DB_WAIT_S (app/db/bounded.py): nothing ran, so the same
    request can be sent again after Retry-After."""
    log.warning("busy: no database connection within the wait for %s %s", request.method, request.url.path)
    response = error_response(ApiError(503, "the server is busy; nothing was changed, retry in a second",
                                       code="busy"))
    response.headers["Retry-After"] = str(BUSY_RETRY_AFTER_S)
    return response


async def handle_unavailable(request: Request, exc: Exception) -> JSONResponse:
    if database_unavailable(exc):
        log.warning("database unavailable on %s %s: %r", request.method, request.url.path, exc)
        metrics.DB_ERRORS.labels("unavailable").inc()
        return unavailable_response()
    return await handle_unexpected(request, exc)


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    if database_unavailable(exc):
        log.warning("database unavailable on %s %s: %r", request.method, request.url.path, exc)
        return unavailable_response()
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(ApiError(500, "internal error", code="internal"))
