"""Fixtures of the operations tests: the dedicated clock connection, HTTP clients per role."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest

from tests.db.conftest import clock_conn  # noqa: F401  (reused: a connection with its own opd.fake_now)
from tests.support.app_server import AppServer

StaffHttp = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def staff_http(server: AppServer) -> StaffHttp:
    """An HTTP client of the session server with the given API key."""
    def make(key: str) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return httpx.AsyncClient(base_url=server.base_url + "/api/v1", timeout=15,
                                 headers={"Authorization": f"Bearer {key}"})
    return make

