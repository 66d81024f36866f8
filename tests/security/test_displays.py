"""Paired displays (app/web/displays.py, app/live/access.py): the pairing flow, board topics
only, revocation, and no reach into another hospital."""

from __future__ import annotations

import re

import asyncpg
import httpx

from tests.security.helpers import (
    API,
    bearer,
    cookie_header,
    is_error,
    pair_display,
    pairing_code,
    set_cookies,
    ws_client,
)
from tests.support import factory
from tests.support.app_server import AppServer


async def test_pairing_flow(anon: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital) -> None:
    first = await anon.get(f"/board/{hospital.code}")
    assert first.status_code == 200
    code = pairing_code(first.text)
    credential = set_cookies(first)["opd_display"]
    assert credential["httponly"] is True and credential["samesite"].lower() == "lax"
    as_screen = cookie_header(opd_display=credential.value)
    # Unpaired: the same screen keeps its code, and sees no queue data.
    again = await anon.get(f"/board/{hospital.code}", headers=as_screen)
    assert pairing_code(again.text) == code
    assert hospital.doctor.name not in again.text
    assert (await anon.get("/pair/status", headers=as_screen)).json() == {"paired": False}
    # Only an admin may confirm the code.
    for role in ("receptionist", "doctor"):
        refused = await anon.post(f"{API}/displays/pair", json={"code": code, "label": "TV"},
                                  headers=bearer(hospital.keys[role]))
        assert refused.status_code == 403
    paired = await anon.post(f"{API}/displays/pair", json={"code": code, "label": "TV"},
                             headers=bearer(hospital.keys["admin"]))
    assert paired.status_code == 201
    assert (await anon.get("/pair/status", headers=as_screen)).json() == {"paired": True}
    board = await anon.get(f"/board/{hospital.code}", headers=as_screen)
    assert board.status_code == 200
    assert 'id="pair-code"' not in board.text
    # The whole hospital's board follows each department's topic (app/web/pages.py).
    assert f"department:{hospital.dept_id}" in board.text
    # A used code pairs nothing else.
    reused = await anon.post(f"{API}/displays/pair", json={"code": code, "label": "TV 2"},
                             headers=bearer(hospital.keys["admin"]))
    assert reused.status_code == 404


async def test_display_watches_boards_but_not_doctors(anon: httpx.AsyncClient, server: AppServer,
                                                      hospital: factory.Hospital) -> None:
    credential, _ = await pair_display(anon, hospital)
    async with ws_client(server.ws_url, cookies={"opd_display": credential}, origin=server.base_url) as ws:
        for topic in (f"hospital:{hospital.hospital_id}", f"department:{hospital.dept_id}",
                      f"cabin:{hospital.doctor.cabin_id}"):
            assert not is_error(await ws.subscribed(topic)), topic
        reply = await ws.subscribed(f"doctor:{hospital.doctor.doctor_id}")
        assert is_error(reply), reply
        assert not ws.snapshots_of(f"doctor:{hospital.doctor.doctor_id}")


async def test_display_of_a_cannot_watch_b(anon: httpx.AsyncClient, server: AppServer,
                                           hospital: factory.Hospital, other: factory.Hospital) -> None:
    credential, _ = await pair_display(anon, hospital)
    async with ws_client(server.ws_url, cookies={"opd_display": credential}, origin=server.base_url) as ws:
        for topic in (f"hospital:{other.hospital_id}", f"department:{other.dept_id}",
                      f"cabin:{other.doctor.cabin_id}", f"doctor:{other.doctor.doctor_id}"):
            reply = await ws.subscribed(topic)
            assert is_error(reply) and "not found" in reply["message"] or "only boards" in reply["message"], reply
    # B's board page shows A's screen a pairing code, not B's queues.
    page = await anon.get(f"/board/{other.code}", headers=cookie_header(opd_display=credential))
    assert 'id="pair-code"' in page.text and str(other.hospital_id) not in page.text
    cabin = await anon.get(f"/cabin/{other.doctor.cabin_id}", headers=cookie_header(opd_display=credential))
    assert 'id="pair-code"' in cabin.text and f"cabin:{other.doctor.cabin_id}" not in cabin.text


async def test_revoked_display_is_unpaired(anon: httpx.AsyncClient, server: AppServer,
                                           hospital: factory.Hospital) -> None:
    credential, device_id = await pair_display(anon, hospital)
    as_screen = cookie_header(opd_display=credential)
    revoked = await anon.post(f"{API}/displays/{device_id}/revoke", json={},
                              headers=bearer(hospital.keys["admin"]))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    page = await anon.get(f"/board/{hospital.code}", headers=as_screen)
    assert page.status_code == 200 and 'id="pair-code"' in page.text
    assert set_cookies(page)["opd_display"].value != credential  # a new pairing, a new credential
    assert (await anon.get("/pair/status", headers=as_screen)).json() == {"paired": False}
    async with ws_client(server.ws_url, cookies={"opd_display": credential}, origin=server.base_url) as ws:
        for topic in (f"hospital:{hospital.hospital_id}", f"cabin:{hospital.doctor.cabin_id}"):
            assert is_error(await ws.subscribed(topic)), topic


async def test_revocation_reaches_an_open_socket(anon: httpx.AsyncClient, server: AppServer,
                                                 hospital: factory.Hospital) -> None:
    """Revoke is "unpair a display at once": a socket opened before it may not add topics after."""
    credential, device_id = await pair_display(anon, hospital)
    async with ws_client(server.ws_url, cookies={"opd_display": credential}, origin=server.base_url) as ws:
        assert not is_error(await ws.subscribed(f"hospital:{hospital.hospital_id}"))
        revoked = await anon.post(f"{API}/displays/{device_id}/revoke", json={},
                                  headers=bearer(hospital.keys["admin"]))
        assert revoked.status_code == 200
        if not ws.closed:
            reply = await ws.subscribed(f"cabin:{hospital.doctor.cabin_id}")
            assert is_error(reply), f"a revoked display still subscribes on its open socket: {reply}"


async def test_a_whole_hospital_board_follows_its_departments_up_to_the_topic_limit(
        anon: httpx.AsyncClient, pool: asyncpg.Pool, hospital: factory.Hospital) -> None:
    """app/web/pages.py: one topic per department (the page's data-topics), the hospital topic
    only when there are more departments than a connection may follow."""
    from app.ws_limits import MAX_TOPICS_PER_CONNECTION

    credential, _ = await pair_display(anon, hospital)
    as_screen = cookie_header(opd_display=credential)

    async def board_topics() -> list[str]:
        page = await anon.get(f"/board/{hospital.code}", headers=as_screen)
        assert page.status_code == 200
        match = re.search(r'data-topics="([^"]*)"', page.text)
        assert match, "no data-topics on the board"
        return match.group(1).split(",")

    async def add_departments(count: int, start: int) -> None:
        await pool.executemany(
            """INSERT INTO departments (hospital_id, name, code, avg_consultation_time, buffer_time,
                                        max_tokens_per_day)
               VALUES ($1, $2, $3, 10, 5, 100)""",
            [(hospital.hospital_id, f"Extra {n}", f"X{n}") for n in range(start, start + count)])

    await add_departments(MAX_TOPICS_PER_CONNECTION - 1, 0)  # with the factory's: the limit
    topics = await board_topics()
    assert len(topics) == MAX_TOPICS_PER_CONNECTION
    assert all(t.startswith("department:") for t in topics)
    assert f"department:{hospital.dept_id}" in topics

    await add_departments(1, MAX_TOPICS_PER_CONNECTION)
    assert await board_topics() == [f"hospital:{hospital.hospital_id}"]
