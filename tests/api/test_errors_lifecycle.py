"""Refused lifecycle steps (sql/functions.sql, token_transitions): 409, and nothing written."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import httpx
import pytest

from tests.api.helpers import API, assert_error, db_now, issue, unchanged
from tests.support import factory

pytestmark = pytest.mark.calendar


async def _state(http: httpx.AsyncClient, hospital: factory.Hospital, *, status: str) -> str:
    """A token of hospital.doctor in `status`; the doctor is free unless the state needs them."""
    token = await issue(http, hospital.doctor)
    token_id = token["token_id"]
    steps = {
        "CHECKED_IN": [],
        "WAITING": ["call"],
        "IN_CONSULTATION": ["start"],
        "COMPLETED": ["start", "complete"],
        "NO_SHOW": ["no-show"],
        "CANCELLED": ["cancel"],
    }
    for step in steps[status]:
        response = await http.post(f"{API}/tokens/{token_id}/{step}", json={"reason": "setup"})
        assert response.status_code == 200, response.text
    return token_id


ILLEGAL = [
    ("CHECKED_IN", "complete"),
    ("CHECKED_IN", "recall"),
    ("CHECKED_IN", "check-in"),
    ("WAITING", "complete"),
    ("WAITING", "transfer"),
    ("IN_CONSULTATION", "no-show"),
    ("IN_CONSULTATION", "cancel"),
    ("IN_CONSULTATION", "requeue"),
    ("IN_CONSULTATION", "transfer"),
    ("IN_CONSULTATION", "reschedule"),
    ("COMPLETED", "cancel"),
    ("COMPLETED", "no-show"),
    ("COMPLETED", "requeue"),
    ("COMPLETED", "reschedule"),
    ("COMPLETED", "check-in"),
    ("COMPLETED", "call"),
    ("NO_SHOW", "start"),
    ("NO_SHOW", "transfer"),
    ("NO_SHOW", "complete"),
    ("CANCELLED", "requeue"),
    ("CANCELLED", "call"),
    ("CANCELLED", "recall"),
    ("CANCELLED", "start"),
]

# Each action names a step of the lifecycle, not just a target status: "start" must not reopen
# a completed consultation (that is undo-complete), "undo-start" must not call a queued patient.
WRONG_STATE = [
    ("COMPLETED", "start"),
    ("IN_CONSULTATION", "call"),
    ("CHECKED_IN", "undo-start"),
    ("CHECKED_IN", "undo-complete"),
    ("WAITING", "undo-complete"),
    ("WAITING", "undo-start"),
]

# Repeating the step a token already took is refused like any other conflict (check-in does so
# already: "token CARD-001 is already CHECKED_IN"), rather than answering 200 and changing nothing
# (or, for cancel, silently rewriting the reason of a closed token without an audit row).
SAME_STATE = [
    ("CHECKED_IN", "requeue"),
    ("WAITING", "call"),
    ("IN_CONSULTATION", "start"),
    ("COMPLETED", "complete"),
    ("NO_SHOW", "no-show"),
    ("CANCELLED", "cancel"),
]


async def _refused(
    admin: httpx.AsyncClient,
    pool: asyncpg.Pool,
    hospital: factory.Hospital,
    status: str,
    action: str,
) -> None:
    token_id = await _state(admin, hospital, status=status)
    body: dict[str, Any] = {
        "transfer": {"to_doctor_id": str(hospital.doctors[1].doctor_id)},
        "reschedule": {
            "scheduled_time": (await db_now(pool) + dt.timedelta(minutes=30)).isoformat()
        },
        "check-in": {"override_reason": "desk"},
        "cancel": {"reason": "again"},
    }.get(action, {})
    async with unchanged(pool, hospital):
        response = await admin.post(f"{API}/tokens/{token_id}/{action}", json=body)
    error = assert_error(response, 409)
    assert error["code"] in ("illegal_transition", "duplicate"), error


@pytest.mark.parametrize(("status", "action"), ILLEGAL, ids=[f"{s}-{a}" for s, a in ILLEGAL])
async def test_illegal_transitions_are_409(
    admin: httpx.AsyncClient,
    pool: asyncpg.Pool,
    hospital: factory.Hospital,
    status: str,
    action: str,
) -> None:
    await _refused(admin, pool, hospital, status, action)


@pytest.mark.parametrize(
    ("status", "action"), WRONG_STATE, ids=[f"{s}-{a}" for s, a in WRONG_STATE]
)
async def test_an_action_from_the_wrong_state_is_409(
    admin: httpx.AsyncClient,
    pool: asyncpg.Pool,
    hospital: factory.Hospital,
    status: str,
    action: str,
) -> None:
    await _refused(admin, pool, hospital, status, action)


@pytest.mark.parametrize(("status", "action"), SAME_STATE, ids=[f"{s}-{a}" for s, a in SAME_STATE])
async def test_repeating_the_current_step_is_409(
    admin: httpx.AsyncClient,
    pool: asyncpg.Pool,
    hospital: factory.Hospital,
    status: str,
    action: str,
) -> None:
    await _refused(admin, pool, hospital, status, action)


async def test_requeue_cannot_check_in_a_booked_token(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital, ids: dict[str, str]
) -> None:
    """'requeue' undoes a call or a no-show; it must not bypass the geofence check-in."""
    async with unchanged(pool, hospital):
        response = await admin.post(f"{API}/tokens/{ids['booked']}/requeue")
    assert_error(response, 409, "illegal_transition")


async def test_second_call_while_one_is_called_is_409(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital
) -> None:
    await issue(admin, hospital.doctor)
    second = await issue(admin, hospital.doctor)
    assert (
        await admin.post(f"{API}/doctors/{hospital.doctor.doctor_id}/call-next")
    ).status_code == 200
    async with unchanged(pool, hospital):
        by_id = await admin.post(f"{API}/tokens/{second['token_id']}/call")
        by_next = await admin.post(f"{API}/doctors/{hospital.doctor.doctor_id}/call-next")
        started = await admin.post(f"{API}/tokens/{second['token_id']}/start")
    for response in (by_id, by_next, started):
        error = assert_error(response, 409, "illegal_transition")
        assert "CARD-001 is called" in error["message"]


async def test_call_next_with_nobody_waiting_is_409(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital
) -> None:
    async with unchanged(pool, hospital):
        response = await admin.post(
            f"{API}/doctors/{hospital.doctor.doctor_id}/call-next", json={"complete_current": True}
        )
    error = assert_error(response, 409, "queue_empty")
    assert "nobody is waiting" in error["message"]


async def test_undo_complete_while_another_patient_is_called_is_409(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital
) -> None:
    done = await _state(admin, hospital, status="COMPLETED")
    await issue(admin, hospital.doctor)
    assert (
        await admin.post(f"{API}/doctors/{hospital.doctor.doctor_id}/call-next")
    ).status_code == 200
    async with unchanged(pool, hospital):
        response = await admin.post(f"{API}/tokens/{done}/undo-complete")
    assert_error(response, 409)
