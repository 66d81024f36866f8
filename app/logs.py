"""Logging: plain text for a newcomer, one JSON object per line for a log pipeline
(OPD_LOG_FORMAT=json), each line of a request carrying its request id and hospital.

The request id comes from the caller's X-Request-ID (a proxy's, say) when it looks like one, else
a new one; it is sent back in the response's X-Request-ID, so a complaint ("the 10:42 check-in
failed") leads to its log lines. Our log messages name tokens by number and ids, never a
patient's name or phone (docs/security.md).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import secrets
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("opd_request_id", default=None)
HOSPITAL_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("opd_hospital_id", default=None)
_GIVEN_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id, hospital_id = REQUEST_ID.get(), HOSPITAL_ID.get()
        if request_id:
            line["request_id"] = request_id
        if hospital_id:
            line["hospital_id"] = hospital_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(level: str, log_format: str) -> None:
    """The root logger, and uvicorn's own (which do not propagate), in the chosen format."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    if log_format == "json":
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logger = logging.getLogger(name)
            if logger.handlers:
                logger.handlers = [handler]


class RequestIds:
    """Gives each HTTP request an id (its own or the caller's) for the logs and the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = given if _GIVEN_ID.match(given) else secrets.token_hex(8)
        token = REQUEST_ID.set(request_id)
        hospital = HOSPITAL_ID.set(None)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
            HOSPITAL_ID.reset(hospital)
