"""The operations dashboard: the operations:<hospital_id> topic (staff only), the alerts the
engine checks on its safety refresh, the rebalance remedy, and the /operations page."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import asyncpg
import pytest

from tests.ops.conftest import StaffHttp
from tests.security import helpers as security
from tests.support import factory
from tests.support.app_server import AppServer
from tests.support.ws_client import live_client

pytestmark = pytest.mark.calendar


def topic_of(hospital: factory.Hospital) -> str:
    return f"operations:{hospital.hospital_id}"


async def test_an_admin_watches_departments_doctors_and_alerts(pool: asyncpg.Pool, server: AppServer) -> None:
    hospital = await factory.make_hospital(pool, doctors=2)
    topic = topic_of(hospital)
    async with live_client(server.ws_url, hospital.keys["admin"]) as ws:
        reply = await ws.subscribed(topic)
        assert reply["type"] != "error", reply
        await factory.issue(pool, hospital)   # a change the engine publishes (and lays the hospital out)

        def ready(data: dict[str, Any]) -> bool:
            return bool(data["departments"]) and data["departments"][0]["waiting_count"] == 1
        data = await ws.data_where(topic, ready, what="the operations snapshot with one patient waiting")
    assert data["hospital_id"] == str(hospital.hospital_id)
    assert [d["dept_id"] for d in data["departments"]] == [str(hospital.dept_id)]
    assert data["departments"][0]["desks"] == 2
    assert {d["doctor_id"] for d in data["doctors"]} == {str(d.doctor_id) for d in hospital.doctors}
    assert all(d["on_leave"] is False for d in data["doctors"])
    assert isinstance(data["alerts"], list)
    assert "phone" not in str(data)


async def test_the_receptionist_may_watch_too(pool: asyncpg.Pool, server: AppServer) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    async with live_client(server.ws_url, hospital.keys["receptionist"]) as ws:
        assert (await ws.subscribed(topic_of(hospital)))["type"] != "error"


@pytest.mark.parametrize("who", ["doctor", "other hospital's admin"])
async def test_a_doctor_or_another_hospital_gets_an_error_frame(pool: asyncpg.Pool, server: AppServer,
                                                                 who: str) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    key = hospital.keys["doctor"] if who == "doctor" else (await factory.make_hospital(pool, doctors=1)).keys["admin"]
    async with live_client(server.ws_url, key) as ws:
        reply = await ws.subscribed(topic_of(hospital))
        assert reply["type"] == "error" and reply["message"], reply
        assert not ws.snapshots_of(topic_of(hospital))


async def test_a_display_gets_an_error_frame(pool: asyncpg.Pool, server: AppServer) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    async with security.plain_client(server.base_url) as http:
        credential, _ = await security.pair_display(http, hospital)
    async with security.ws_client(server.ws_url, cookies={"opd_display": credential}, origin=server.base_url) as ws:
        assert (await ws.subscribed(f"department:{hospital.dept_id}"))["type"] != "error"   # boards are fine
        reply = await ws.subscribed(topic_of(hospital))
        assert reply["type"] == "error", reply


async def test_the_engine_checks_alerts_on_its_safety_refresh(pool: asyncpg.Pool, database: str,
                                                              redis_url: str) -> None:
    """Nobody calls the check: the engine's periodic pass raises BOTTLENECK and publishes it."""
    hospital = await factory.make_hospital(pool, doctors=1)
    for _ in range(21):
        await factory.issue(pool, hospital)
    # A private server whose engine refreshes every second (own leader lock and bus namespace,
    # as tests/live/conftest.py explains), so the test need not wait for the default 30 s.
    app = AppServer(database, redis_url, f"opdops{secrets.token_hex(4)}",
                    extra_env={"OPD_LEADER_LOCK_KEY": str(700_000 + secrets.randbelow(90_000)),
                               "OPD_SAFETY_REFRESH_S": "1"})
    await asyncio.to_thread(app.start)
    try:
        async with live_client(app.ws_url, hospital.keys["admin"]) as ws:
            await ws.subscribed(topic_of(hospital))
            data = await ws.data_where(topic_of(hospital), lambda d: any(
                a["alert_type"] == "BOTTLENECK" and a["entity_id"] == str(hospital.dept_id) for a in d["alerts"]),
                what="a BOTTLENECK alert on the operations topic")
        assert data["departments"][0]["waiting_count"] == 21
    finally:
        await asyncio.to_thread(app.stop)


async def test_rebalance_evens_out_the_queues(pool: asyncpg.Pool, staff_http: StaffHttp) -> None:
    hospital = await factory.make_hospital(pool, doctors=3)
    a, b, c = hospital.doctors
    emergency = await factory.issue(pool, hospital, doctor=a, booking_type="EMERGENCY")
    a_tokens = [emergency] + [await factory.issue(pool, hospital, doctor=a) for _ in range(6)]
    await factory.issue(pool, hospital, doctor=b)

    async with staff_http(hospital.keys["doctor"]) as http:
        assert (await http.post(f"/departments/{hospital.dept_id}/rebalance", json={})).status_code == 403
    other = await factory.make_hospital(pool, doctors=1)
    async with staff_http(other.keys["admin"]) as http:
        assert (await http.post(f"/departments/{hospital.dept_id}/rebalance", json={})).status_code == 404

    async with staff_http(hospital.keys["receptionist"]) as http:
        response = await http.post(f"/departments/{hospital.dept_id}/rebalance", json={})
        assert response.status_code == 200, response.text
        assert response.json() == {"moved": 4}
        counts = await waiting_counts(pool, hospital)
        assert sum(counts.values()) == 8 and max(counts.values()) - min(counts.values()) < 2, counts
        assert counts[a.doctor_id] == 3
        # The emergency and the earliest arrivals stay; the last to join moved.
        stayed = {r["token_id"] for r in await pool.fetch(
            "SELECT token_id FROM tokens WHERE doctor_id = $1 AND status = 'CHECKED_IN'", a.doctor_id)}
        assert stayed == {t["token_id"] for t in a_tokens[:3]}
        assert (await http.post(f"/departments/{hospital.dept_id}/rebalance", json={})).json() == {"moved": 0}
    assert c.doctor_id in counts


async def waiting_counts(pool: asyncpg.Pool, hospital: factory.Hospital) -> dict[Any, int]:
    rows = await pool.fetch("""SELECT d.doctor_id, count(t.token_id) AS n FROM doctors d
                               LEFT JOIN tokens t ON t.doctor_id = d.doctor_id AND t.status = 'CHECKED_IN'
                               WHERE d.hospital_id = $1 GROUP BY d.doctor_id""", hospital.hospital_id)
    return {r["doctor_id"]: r["n"] for r in rows}


@pytest.mark.parametrize(("role", "status"), [("admin", 200), ("receptionist", 200), ("doctor", 403)])
async def test_the_operations_page_is_for_admins_and_the_front_desk(pool: asyncpg.Pool, server: AppServer,
                                                                    role: str, status: int) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    username, _ = await security.make_user(pool, hospital, role)
    async with security.plain_client(server.base_url) as http:
        session = await security.sign_in(http, username)
        page = await http.get("/operations", headers=security.cookie_header(opd_session=session))
    assert page.status_code == status, page.text[:500]
    if status == 200:
        assert f'data-topic="operations:{hospital.hospital_id}"' in page.text
        assert "js/operations.js" in page.text
    else:
        assert "cannot open this page" in page.text


async def test_the_operations_page_sends_strangers_to_sign_in(server: AppServer) -> None:
    async with security.plain_client(server.base_url) as http:
        page = await http.get("/operations")
    assert page.status_code in (302, 303, 307) and "/login" in page.headers["location"]


async def test_the_page_charts_computed_metrics(pool: asyncpg.Pool, server: AppServer) -> None:
    hospital = await factory.make_hospital(pool, doctors=2)
    await pool.execute("SELECT compute_doctor_metrics($1, hospital_today($1))", hospital.hospital_id)
    username, _ = await security.make_user(pool, hospital, "admin")
    async with security.plain_client(server.base_url) as http:
        session = await security.sign_in(http, username)
        page = await http.get("/operations", headers=security.cookie_header(opd_session=session))
    assert page.status_code == 200
    assert all(d.name in page.text for d in hospital.doctors), "the utilization chart names each doctor"


async def test_the_page_shows_last_weeks_eta_accuracy_per_department(pool: asyncpg.Pool,
                                                                      server: AppServer) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    doctor_id = hospital.doctor.doctor_id
    tokens = [await factory.issue(pool, hospital) for _ in range(3)]
    # The write-back records what each waiting patient is told; then all three are called.
    await pool.execute("SELECT write_back_queue($1, hospital_today($2))", doctor_id, hospital.hospital_id)
    told = {r["token_id"]: r["eta_minutes"] for r in await pool.fetch(
        "SELECT token_id, eta_minutes FROM eta_told WHERE doctor_id = $1", doctor_id)}
    assert set(told) == {t["token_id"] for t in tokens}
    for _ in tokens:
        called = await pool.fetchrow("SELECT * FROM call_next_token($1, NULL)", doctor_id)
        await pool.execute("SELECT 1 FROM set_token_status($1, 'NO_SHOW', NULL)", called["token_id"])
    rows = await pool.fetch("SELECT * FROM eta_accuracy_by_department($1, hospital_today($1) - 6, "
                            "hospital_today($1))", hospital.hospital_id)
    assert [(r["dept_code"], r["estimates"]) for r in rows] == [(hospital.dept_code, 3)]
    # Called at once: each error is what the patient was told (give or take the seconds between).
    assert rows[0]["mae"] == pytest.approx(sum(told.values()) / 3, abs=0.1)

    username, _ = await security.make_user(pool, hospital, "admin")
    async with security.plain_client(server.base_url) as http:
        session = await security.sign_in(http, username)
        page = await http.get("/operations", headers=security.cookie_header(opd_session=session))
    assert page.status_code == 200
    section = page.text.split('id="eta-accuracy"', 1)[1].split("</section>", 1)[0]
    assert "ETA accuracy, last 7 days" in section
    assert f"<td>{rows[0]['dept_name']}</td><td>3</td>" in section
    assert f"{round(rows[0]['mae'])} min" in section
