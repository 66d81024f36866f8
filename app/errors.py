"""The error every layer raises for a refusal a person must read: HTTP turns it into a JSON body
(app/api/errors.py), WebSockets into an error frame. It lives below the layers so that identity,
the live pipe and the pages can raise it without importing the API."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, code: str = "error", **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.extra = extra


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found", code="not_found")
