"""Board notices over the API: who may post and remove them, what is refused, and that the
department's board topic carries them (and the hospital's settings) at once, not at the next
safety refresh (sql: post_board_notice, notify_hospital_layout)."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
import pytest

from app import clock
from tests.ops.conftest import StaffHttp
from tests.support import factory
from tests.support.app_server import AppServer
from tests.support.ws_client import live_client

pytestmark = pytest.mark.calendar


def utc_in(hours: float) -> str:
    return (clock.now() + dt.timedelta(hours=hours)).isoformat()


async def test_a_notice_reaches_the_department_board_and_goes_when_removed(
        pool: asyncpg.Pool, server: AppServer, staff_http: StaffHttp) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    other = await factory.make_hospital(pool, doctors=1)
    topic = f"department:{hospital.dept_id}"
    async with live_client(server.ws_url, hospital.keys["admin"]) as ws, \
            staff_http(hospital.keys["receptionist"]) as desk:
        await ws.subscribed(topic)
        await ws.data_where(topic, lambda d: d["notices"] == [], what="the board without notices")

        posted = await desk.post("/board-notices", json={
            "text_en": "  Dr. Test 1 starts at 11:00  ", "text_hi": "", "dept_id": str(hospital.dept_id),
            "ends_at": utc_in(2)})
        assert posted.status_code == 201, posted.text
        notice = posted.json()
        assert (notice["text_en"], notice["text_hi"]) == ("Dr. Test 1 starts at 11:00", None)
        await ws.data_where(topic, lambda d: [n["text_en"] for n in d["notices"]] == ["Dr. Test 1 starts at 11:00"],
                            what="the notice on the board")

        # A hospital setting the boards show travels the same way.
        await pool.execute("UPDATE hospitals SET board_shows_names = true WHERE hospital_id = $1",
                           hospital.hospital_id)
        async with staff_http(other.keys["admin"]) as stranger:
            elsewhere = await stranger.post(f"/board-notices/{notice['notice_id']}/remove", json={})
            assert elsewhere.status_code == 404, elsewhere.text
        assert [n["notice_id"] for n in (await desk.get("/board-notices")).json()] == [notice["notice_id"]]

        removed = await desk.post(f"/board-notices/{notice['notice_id']}/remove", json={})
        assert removed.status_code == 200, removed.text
        await ws.data_where(topic, lambda d: d["notices"] == [], what="the board after the removal")
        assert (await desk.post(f"/board-notices/{notice['notice_id']}/remove", json={})).status_code == 404
        assert (await desk.get("/board-notices")).json() == []


async def test_bad_notices_are_refused_and_write_nothing(pool: asyncpg.Pool, staff_http: StaffHttp) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    other = await factory.make_hospital(pool, doctors=1)
    cases = [
        ("receptionist", {"text_en": "   ", "ends_at": utc_in(1)}, 422, "text_en"),
        ("receptionist", {"text_en": "x" * 201, "ends_at": utc_in(1)}, 422, "text_en"),
        ("receptionist", {"text_en": "Closed", "ends_at": utc_in(-1)}, 422, "ends_at"),
        ("receptionist", {"text_en": "Closed", "ends_at": utc_in(3), "starts_at": utc_in(4)}, 422, "ends_at"),
        ("receptionist", {"text_en": "Closed"}, 422, "ends_at"),
        ("receptionist", {"text_en": "Closed", "ends_at": utc_in(1), "dept_id": str(other.dept_id)}, 404, None),
        ("receptionist", {"text_en": "Closed", "ends_at": utc_in(1), "dept_id": str(uuid.uuid4())}, 404, None),
        ("doctor", {"text_en": "Closed", "ends_at": utc_in(1)}, 403, None),
    ]
    for role, body, status, field in cases:
        async with staff_http(hospital.keys[role]) as http:
            response = await http.post("/board-notices", json=body)
        assert response.status_code == status, (body, response.text)
        if field:
            assert response.json()["error"]["field"] == field, response.text
    assert await pool.fetchval("SELECT count(*) FROM board_notices WHERE hospital_id = $1", hospital.hospital_id) == 0
