"""What the live tests do through the HTTP API, and what they read back from the database."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from typing import Any

import asyncpg
import httpx

from app.live.write_back import DELAY_S as WRITE_BACK_DELAY_S

API = "/api/v1"


def unique_phone() -> str:
    return "+9197" + f"{secrets.randbelow(10**8):08d}"


async def issue_token(http: httpx.AsyncClient, doctor_id: uuid.UUID, name: str | None = None,
                      phone: str | None = None, **extra: Any) -> dict[str, Any]:
    """A walk-in token for a new patient; the token row as the API returns it."""
    body = {"doctor_id": str(doctor_id),
            "patient": {"name": name or f"Patient {secrets.token_hex(3)}",
                        "phone": phone or unique_phone()},
            **extra}
    response = await http.post(f"{API}/tokens", json=body)
    assert response.status_code == 201, response.text
    token: dict[str, Any] = response.json()
    return token


async def call_next(http: httpx.AsyncClient, doctor_id: uuid.UUID,
                    complete_current: bool = False) -> dict[str, Any]:
    response = await http.post(f"{API}/doctors/{doctor_id}/call-next",
                               json={"complete_current": complete_current})
    assert response.status_code == 200, response.text
    token: dict[str, Any] = response.json()
    return token


async def token_action(http: httpx.AsyncClient, token_id: str, action: str,
                       body: dict[str, Any] | None = None) -> dict[str, Any]:
    """start, complete, no-show, requeue, cancel, recall, ... on one token."""
    response = await http.post(f"{API}/tokens/{token_id}/{action}", json=body or {})
    assert response.status_code == 200, response.text
    token: dict[str, Any] = response.json()
    return token


async def api_queue(http: httpx.AsyncClient, doctor_id: uuid.UUID) -> dict[str, Any]:
    """GET /queues/doctors/{id}, without computed_at (the live topic leaves it out)."""
    response = await http.get(f"{API}/queues/doctors/{doctor_id}")
    assert response.status_code == 200, response.text
    queue: dict[str, Any] = response.json()
    queue.pop("computed_at", None)
    return queue


async def api_track(http: httpx.AsyncClient, code: str) -> dict[str, Any]:
    response = await http.get(f"{API}/track/{code}")
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


# The ETA of a patient behind one who was called but is not in yet counts the minutes since the
# call (docs/eta.md), so two readings a moment apart may differ by a rounded minute.
ETA_FIELDS = ("eta_minutes", "eta_low_minutes", "eta_high_minutes")


def _etas_blurred(value: Any, etas: list[int]) -> Any:
    """value with every ETA field replaced by None; the ETAs are appended to etas in order."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in ETA_FIELDS and isinstance(item, int):
                etas.append(item)
                out[key] = None
            else:
                out[key] = _etas_blurred(item, etas)
        return out
    if isinstance(value, list):
        return [_etas_blurred(item, etas) for item in value]
    return value


def same_queue(a: Any, b: Any, eta_slack: int = 1) -> bool:
    """a and b are the same snapshot, ETAs allowed to differ by eta_slack minutes."""
    etas_a: list[int] = []
    etas_b: list[int] = []
    if _etas_blurred(a, etas_a) != _etas_blurred(b, etas_b) or len(etas_a) != len(etas_b):
        return False
    return all(abs(x - y) <= eta_slack for x, y in zip(etas_a, etas_b, strict=True))


def assert_etas_grow(waiting: list[dict[str, Any]]) -> None:
    """Each patient further back waits longer, inside a range that holds the median."""
    etas = [w["eta_minutes"] for w in waiting]
    assert all(a < b for a, b in zip(etas, etas[1:], strict=False)), etas
    assert all(w["eta_low_minutes"] <= w["eta_minutes"] <= w["eta_high_minutes"]
               for w in waiting), waiting


def queue_summary(queue: dict[str, Any]) -> tuple[Any, list[tuple[str, int, int]]]:
    """(now serving token number, [(token number, position, eta minutes), ...])."""
    serving = queue.get("now_serving")
    return ((serving or {}).get("token_number"),
            [(w["token_number"], w["position"], w["eta_minutes"]) for w in queue["waiting"]])


async def db_positions(pool: asyncpg.Pool, doctor_id: uuid.UUID) -> list[tuple[str, int, int]]:
    """What the engine wrote back: (token number, queue_position, estimated_wait_time) of
    every token waiting for the doctor today, in queue order."""
    rows = await pool.fetch(
        """SELECT token_number, queue_position, estimated_wait_time FROM tokens t
           WHERE doctor_id = $1 AND visit_date = hospital_today(hospital_id)
             AND status = 'CHECKED_IN'
           ORDER BY queue_position NULLS LAST, token_number""", doctor_id)
    return [(r["token_number"], r["queue_position"], r["estimated_wait_time"]) for r in rows]


async def wait_for_db(pool: asyncpg.Pool, doctor_id: uuid.UUID,
                      expected: list[tuple[str, int, int]], timeout: float = WRITE_BACK_DELAY_S + 10.0,
                      eta_slack: int = 1) -> None:
    """Wait (bounded) until the engine's write-back matches expected (ETAs within eta_slack
    minutes: the write-back computes the queue again a moment later)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = await db_positions(pool, doctor_id)
        if [g[:2] for g in got] == [e[:2] for e in expected] and all(
                g[2] is not None and abs(g[2] - e[2]) <= eta_slack
                for g, e in zip(got, expected, strict=True)):
            return
        if loop.time() > deadline:
            raise AssertionError(f"database positions {got} never became {expected}")
        await asyncio.sleep(0.1)


# Convergence: every topic a hospital's screens watch agrees with the database -----------------
BOARD_NEXT, DOOR_NEXT = 5, 2  # as app/live/views.py lists them


def desk_summary(desk: dict[str, Any]) -> tuple[Any, ...]:
    serving = desk["now_serving"]
    return (desk["doctor_id"], serving and serving["token_number"],
            [n["token_number"] for n in desk["next"]], desk["waiting_count"])


# The API reads the queue later than the engine published it: an ETA that counts the minutes since
# a call may differ by a couple of rounded minutes; the boards compare token numbers (ETAs on
# the doctor and token topics, within this slack).
CONVERGE_ETA_SLACK = 2


def queue_as_desk(queue: dict[str, Any], next_count: int) -> tuple[Any, ...]:
    serving = queue["now_serving"]
    return (queue["doctor_id"], serving and serving["token_number"],
            [w["token_number"] for w in queue["waiting"][:next_count]],
            len(queue["waiting"]))


async def final_state(http: httpx.AsyncClient, hospital: Any, codes: list[str]) -> dict[str, Any]:
    """What every topic should show now, read through the API (i.e. from the database)."""
    queues = {str(d.doctor_id): await api_queue(http, d.doctor_id) for d in hospital.doctors}
    return {"queues": queues,
            "tracks": {code: await api_track(http, code) for code in codes}}


def topics_for(hospital: Any) -> list[str]:
    return ([f"doctor:{d.doctor_id}" for d in hospital.doctors]
            + [f"cabin:{d.cabin_id}" for d in hospital.doctors]
            + [f"department:{hospital.dept_id}", f"hospital:{hospital.hospital_id}"])


async def wait_converged(staff: Any, patient: Any | None, http: httpx.AsyncClient, hospital: Any,
                         codes: list[str], timeout: float = 15.0) -> None:
    """Wait until the staff client's doctor and board topics and the patient client's token
    topics all show the database's current state."""
    state = await final_state(http, hospital, codes)
    queues = state["queues"]
    for doctor_id, queue in queues.items():
        await staff.data_where(f"doctor:{doctor_id}", lambda d, q=queue: same_queue(d, q, CONVERGE_ETA_SLACK), timeout,
                               f"doctor:{doctor_id} equal to the API's queue "
                               f"{queue_summary(queue)}")
    board_desks = sorted(queue_as_desk(q, BOARD_NEXT) for q in queues.values())
    await staff.data_where(f"department:{hospital.dept_id}",
                           lambda d: sorted(map(desk_summary, d["desks"])) == board_desks,
                           timeout, f"department board showing {board_desks}")
    await staff.data_where(
        f"hospital:{hospital.hospital_id}",
        lambda d: sorted(map(desk_summary, d["departments"][0]["desks"])) == board_desks,
        timeout, f"hospital board showing {board_desks}")
    for doctor in hospital.doctors:
        door = [queue_as_desk(queues[str(doctor.doctor_id)], DOOR_NEXT)]
        await staff.data_where(f"cabin:{doctor.cabin_id}",
                               lambda d, door=door: list(map(desk_summary, d["desks"])) == door,
                               timeout, f"cabin door showing {door}")
    if patient is not None:
        for code, view in state["tracks"].items():
            await patient.data_where(f"token:{code}", lambda d, v=view: same_queue(d, v, CONVERGE_ETA_SLACK), timeout,
                                     f"token:{code} equal to GET /track ({view['status']}, "
                                     f"position {view['position']})")
