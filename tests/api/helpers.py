"""Helpers shared by the API tests: issuing tokens over HTTP, error-shape checks, and a
fingerprint of a hospital's rows to prove a refused request changed nothing."""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx

from tests.support import factory

API = "/api/v1"


def client(base_url: str, key: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(base_url=base_url, timeout=15, headers=headers)


def fill(value: Any, names: dict[str, str]) -> Any:
    """A request template with its {placeholders} replaced, at any depth."""
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, dict):
        return {k: fill(v, names) for k, v in value.items()}
    return value


def new_patient(name: str = "Asha Kumari Verma", phone: str | None = None) -> dict[str, Any]:
    return {"name": name, "phone": phone or f"98{secrets.randbelow(10**8):08d}"}


async def issue(
    http: httpx.AsyncClient,
    doctor: factory.Doctor,
    *,
    priority: int | None = None,
    booking_type: str = "WALK_IN",
    scheduled_time: str | None = None,
    patient: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Issue a token through POST /tokens and return its JSON (asserting 201)."""
    body: dict[str, Any] = {
        "doctor_id": str(doctor.doctor_id),
        "patient": patient or new_patient(),
        "booking_type": booking_type,
    }
    if priority is not None:
        body["priority"] = priority
    if scheduled_time is not None:
        body["scheduled_time"] = scheduled_time
    response = await http.post(f"{API}/tokens", json=body)
    assert response.status_code == 201, response.text
    token: dict[str, Any] = response.json()
    return token


async def db_now(pool: asyncpg.Pool) -> dt.datetime:
    now: dt.datetime = await pool.fetchval("SELECT opd_now()")
    return now


async def key_id(pool: asyncpg.Pool, hospital: factory.Hospital, role: str) -> uuid.UUID:
    found: uuid.UUID = await pool.fetchval(
        "SELECT key_id FROM api_keys WHERE hospital_id = $1 AND role = $2 "
        "ORDER BY created_at LIMIT 1",
        hospital.hospital_id,
        role,
    )
    return found


def assert_error(
    response: httpx.Response, status: int, code: str | None = None, field: str | None = None
) -> dict[str, Any]:
    """The response is `status` with a JSON body {"error": {"code", "message", ...}}."""
    assert response.status_code == status, (
        f"expected {status}, got {response.status_code}: {response.text}"
    )
    assert response.headers["content-type"].startswith("application/json"), response.headers
    error = response.json()["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and len(error["message"]) >= 5, error
    assert "Traceback" not in response.text
    if code is not None:
        assert error["code"] == code, error
    if field is not None:
        assert error.get("field") == field, error
    return dict(error)


# Columns that the live engine rewrites on its own after any change (the ETA write-back, sql:
# write_back_queue, at any moment) or that a refused call may touch harmlessly; they are not
# part of "what the request changed". (Only four of the write-back's columns were listed, and a
# write-back that landed inside a 422 test's block failed it.)
_TOKEN_VOLATILE = ("- 'queue_position' - 'estimated_wait_time' - 'eta_low_minutes' - 'eta_high_minutes' "
                   "- 'eta_updated_at' - 'eta_told_at' - 'eta_told_expected_at' - 'notified_expected_at' "
                   "- 'delay_pending_since'")


async def db_state(pool: asyncpg.Pool, hospital_id: uuid.UUID) -> dict[str, list[str]]:
    """Every row that belongs to a hospital, as text, per table."""
    queries = {
        "tokens": (
            f"SELECT (to_jsonb(t) {_TOKEN_VOLATILE})::text FROM tokens t "
            "WHERE hospital_id = $1 ORDER BY token_id"
        ),
        "token_history": (
            "SELECT to_jsonb(h)::text FROM token_history h WHERE token_id IN "
            "(SELECT token_id FROM tokens WHERE hospital_id = $1) ORDER BY history_id"
        ),
        "patients": (
            "SELECT to_jsonb(p)::text FROM patients p WHERE hospital_id = $1 ORDER BY patient_id"
        ),
        "hospitals": "SELECT to_jsonb(h)::text FROM hospitals h WHERE hospital_id = $1",
        "departments": (
            "SELECT to_jsonb(d)::text FROM departments d WHERE hospital_id = $1 ORDER BY dept_id"
        ),
        "cabins": (
            "SELECT to_jsonb(c)::text FROM cabins c JOIN departments d USING (dept_id) "
            "WHERE d.hospital_id = $1 ORDER BY cabin_id"
        ),
        "doctors": (
            "SELECT (to_jsonb(d) - 'last_active_at')::text FROM doctors d "
            "WHERE hospital_id = $1 ORDER BY doctor_id"
        ),
        "cabin_doctors": (
            "SELECT to_jsonb(a)::text FROM cabin_doctors a JOIN doctors d USING (doctor_id) "
            "WHERE d.hospital_id = $1 ORDER BY assignment_id"
        ),
        "token_counters": (
            "SELECT to_jsonb(c)::text FROM token_counters c JOIN departments d "
            "USING (dept_id) WHERE d.hospital_id = $1 ORDER BY dept_id, visit_date"
        ),
    }
    return {
        table: [r[0] for r in await pool.fetch(sql, hospital_id)] for table, sql in queries.items()
    }


async def counts(pool: asyncpg.Pool, hospital_id: uuid.UUID) -> dict[str, int]:
    row = await pool.fetchrow(
        """SELECT (SELECT count(*) FROM tokens WHERE hospital_id = $1) AS tokens,
                  (SELECT count(*) FROM token_history WHERE token_id IN
                       (SELECT token_id FROM tokens WHERE hospital_id = $1)) AS token_history,
                  (SELECT count(*) FROM patients WHERE hospital_id = $1) AS patients""",
        hospital_id,
    )
    return dict(row.items())


@contextlib.asynccontextmanager
async def unchanged(pool: asyncpg.Pool, *hospitals: factory.Hospital) -> AsyncIterator[None]:
    """Assert that nothing belonging to these hospitals changed inside the block."""
    before = [
        (await counts(pool, h.hospital_id), await db_state(pool, h.hospital_id)) for h in hospitals
    ]
    yield
    after = [
        (await counts(pool, h.hospital_id), await db_state(pool, h.hospital_id)) for h in hospitals
    ]
    for (count_before, state_before), (count_after, state_after) in zip(before, after, strict=True):
        assert count_after == count_before, f"row counts changed: {count_before} -> {count_after}"
        for table, rows in state_before.items():
            assert state_after[table] == rows, f"{table} changed"
