"""Clients for the other roles of the test hospital (the admin client is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api.helpers import client
from tests.support import factory
from tests.support.app_server import AppServer


@pytest.fixture
async def receptionist(server: AppServer, hospital: factory.Hospital) -> AsyncIterator[httpx.AsyncClient]:
    async with client(server.base_url, hospital.keys["receptionist"]) as http:
        yield http


@pytest.fixture
async def doctor(server: AppServer, hospital: factory.Hospital) -> AsyncIterator[httpx.AsyncClient]:
    """The client of hospital.doctors[0]'s own key."""
    async with client(server.base_url, hospital.keys["doctor"]) as http:
        yield http


@pytest.fixture
async def anonymous(server: AppServer) -> AsyncIterator[httpx.AsyncClient]:
    async with client(server.base_url, None) as http:
        yield http
