"""Fixtures of the Scan & Share tests: a fake ABDM gateway, an app process that talks to it, and
a hospital registered as a HIP with one counter."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from tests.abdm.fake_gateway import CLIENT_ID, CLIENT_SECRET, FakeGateway
from tests.support import factory
from tests.support.app_server import AppServer

SHARE_PATH = "/api/v3/hip/patient/share"


@pytest.fixture(scope="module")
def gateway() -> Iterator[FakeGateway]:
    fake = FakeGateway().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def abdm_server(database: str, redis_url: str, gateway: FakeGateway) -> Iterator[AppServer]:
    # OPD_ENGINE=off: the suite's shared server leads the engine; this one only serves the bridge
    # and runs the dispatcher (which sends the on-share replies).
    app = AppServer(database, redis_url, namespace=f"opdabdm{secrets.token_hex(4)}",
                    extra_env={"OPD_ABDM_GATEWAY_URL": gateway.url, "OPD_ABDM_CLIENT_ID": CLIENT_ID,
                               "OPD_ABDM_CLIENT_SECRET": CLIENT_SECRET, "OPD_ENGINE": "off",
                               "OPD_SAFETY_REFRESH_S": "300", "OPD_ETA_TICK_S": "300"}).start()
    yield app
    app.stop()


@dataclass
class Facility:
    hospital: factory.Hospital
    hip_id: str
    context: str
    counter_id: uuid.UUID


async def register_facility(pool: asyncpg.Pool, hospital: factory.Hospital) -> Facility:
    hip_id = "IN" + "".join(secrets.choice("0123456789") for _ in range(10))
    await pool.execute("UPDATE hospitals SET abdm_hip_id = $2 WHERE hospital_id = $1", hospital.hospital_id, hip_id)
    counter_id = await pool.fetchval(
        """INSERT INTO abdm_counters (hospital_id, context, label, dept_id)
           VALUES ($1, 'OPD1', 'OPD registration', $2) RETURNING counter_id""",
        hospital.hospital_id, hospital.dept_id)
    return Facility(hospital, hip_id, "OPD1", counter_id)


@pytest.fixture
async def facility(pool: asyncpg.Pool) -> Facility:
    return await register_facility(pool, await factory.make_hospital(pool))


@pytest.fixture
async def bridge(abdm_server: AppServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=abdm_server.base_url, timeout=30) as client:
        yield client


_abha_number_start = 10**13 + secrets.randbelow(8 * 10**13)
_abha_numbers = iter(range(_abha_number_start, _abha_number_start + 10**6))  # 14 digits each


def new_patient(**overrides: Any) -> dict[str, Any]:
    number = str(next(_abha_numbers))
    patient = {"abhaNumber": f"{number[:2]}-{number[2:6]}-{number[6:10]}-{number[10:]}",
               "abhaAddress": f"patient{number}@sbx", "name": "Sunita Devi", "gender": "F",
               "dayOfBirth": "12", "monthOfBirth": "4", "yearOfBirth": "1984",
               "address": {"line": "12 Ring Road", "district": "South Delhi", "state": "Delhi", "pincode": "110017"},
               "phoneNumber": "98" + number[-8:]}
    patient.update(overrides)
    return patient


def share_body(facility: Facility, patient: dict[str, Any], *, context: str | None = None,
               hip_id: str | None = None) -> dict[str, Any]:
    return {"intent": "PROFILE_SHARE",
            "metaData": {"hipId": hip_id or facility.hip_id, "context": context or facility.context,
                         "hprId": "", "latitude": "28.6139", "longitude": "77.2090"},
            "profile": {"patient": patient}}


def share_headers(gateway: FakeGateway, request_id: str | None = None, **bearer: Any) -> dict[str, str]:
    return {"Authorization": gateway.bearer(**bearer), "REQUEST-ID": request_id or str(uuid.uuid4()),
            "TIMESTAMP": "2026-12-06T10:00:00.000Z", "X-CM-ID": "sbx"}
