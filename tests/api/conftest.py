"""Clients for the other roles of the test hospital (the admin client is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from tests.api.helpers import client, db_now, issue
from tests.support import factory
from tests.support.app_server import AppServer


@pytest.fixture
async def receptionist(
    server: AppServer, hospital: factory.Hospital
) -> AsyncIterator[httpx.AsyncClient]:
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


@pytest.fixture
async def ids(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital
) -> dict[str, str]:
    """Names for path templates: a queued token, a booked one, and the hospital's rows."""
    queued = await issue(admin, hospital.doctor)
    booked = await issue(
        admin,
        hospital.doctor,
        booking_type="ONLINE",
        scheduled_time=(await db_now(pool)).isoformat(),
    )
    shift = await pool.fetchval(
        "SELECT assignment_id FROM cabin_doctors WHERE doctor_id = $1", hospital.doctor.doctor_id
    )
    return {
        "token": queued["token_id"],
        "booked": booked["token_id"],
        "code": booked["tracking_code"],
        "doctor": str(hospital.doctor.doctor_id),
        "doctor2": str(hospital.doctors[1].doctor_id),
        "dept": str(hospital.dept_id),
        "cabin": str(hospital.doctor.cabin_id),
        "shift": str(shift),
        "missing": "00000000-0000-4000-8000-000000000000",
    }
