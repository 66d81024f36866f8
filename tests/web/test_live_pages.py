"""The board, the doctor console and the patient's tracker change together, live, and the board
survives the server going away."""

from __future__ import annotations

import asyncio
import re
import secrets

import asyncpg
import pytest
from playwright.async_api import expect

from tests.support import factory
from tests.support.app_server import AppServer
from tests.support.redis_server import free_port
from tests.web.conftest import (
    PAIRING_TIMEOUT_MS,
    NewContext,
    desk,
    make_staff,
    pair_display,
    sign_in,
    tracking_code,
)

pytestmark = pytest.mark.browser

# The board's backoff tops out at 15 s between tries (static/js/live.js); allow two of those.
RECONNECT_TIMEOUT_MS = 35_000


async def test_call_next_updates_board_and_tracker_without_reload(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    doctor = hospital.doctors[0]
    token = await factory.issue(pool, hospital, doctor=doctor)

    board = await (await new_context(viewport={"width": 1920, "height": 1080})).new_page()
    # The screen must continue by itself once the admin confirms its code.
    await pair_display(board, server.base_url, f"/board/{hospital.code}", hospital.keys["admin"],
                       wait_for_reload=True)
    console = await (await new_context()).new_page()
    await sign_in(console, server.base_url,
                  await make_staff(pool, hospital, "doctor", doctor.doctor_id))
    tracker = await (await new_context()).new_page()
    await tracker.goto(f"{server.base_url}/t/{await tracking_code(pool, token['token_id'])}")

    await expect(desk(board, doctor).locator(".next li")).to_have_text([token["token_number"]])
    await expect(tracker.locator("#status")).to_have_text("In the queue")
    await expect(console.locator("#waiting-count")).to_have_text("(1)")
    # A reload would wipe these; they must survive the update.
    for page in (board, console, tracker):
        await page.evaluate("window.__notReloaded = true")

    await console.get_by_role("button", name="Call next").click()

    await expect(tracker.locator("#call-now")).to_have_text("Please go to cabin C\u2011101 now")
    await expect(tracker.locator("#status")).to_have_text(
        re.compile(r"^Called at \d{1,2}:\d\d.{0,2}[aApP][mM] — go to the cabin$"))
    await expect(desk(board, doctor).locator(".serving .token")).to_have_text(token["token_number"])
    await expect(desk(board, doctor)).to_have_class("desk calling")
    await expect(desk(board, doctor).locator(".next li")).to_have_count(0)
    await expect(console.locator('[data-field="token_number"]')).to_have_text(token["token_number"])
    for page in (board, console, tracker):
        assert await page.evaluate("window.__notReloaded === true"), f"{page.url} reloaded"


async def test_board_shows_reconnecting_and_recovers(
        database: str, redis_url: str, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    # Its own engine leader and bus namespace: the session server must not serve this group.
    env = {"OPD_LEADER_LOCK_KEY": str(700_000 + secrets.randbelow(99_999))}
    namespace, port = f"opdweb{secrets.token_hex(4)}", free_port()
    app = await asyncio.to_thread(AppServer(database, redis_url, namespace, extra_env=env, port=port).start)
    restarted: AppServer | None = None
    try:
        doctor = hospital.doctors[0]
        before = await factory.issue(pool, hospital, doctor=doctor)
        board = await (await new_context(viewport={"width": 1920, "height": 1080})).new_page()
        await pair_display(board, app.base_url, f"/board/{hospital.code}", hospital.keys["admin"])
        status = board.locator("[data-live-status]")
        await expect(desk(board, doctor).locator(".next li")).to_have_text([before["token_number"]])

        lost = board.locator("#connection-lost")
        await expect(lost).to_be_hidden()
        await asyncio.to_thread(app.kill)
        await expect(status).to_have_text("reconnecting…")
        # The last known queue stays on screen while the link is down, under a full-screen
        # warning after a few seconds: a stale "calling" token must not pass for the truth.
        await expect(desk(board, doctor).locator(".next li")).to_have_text([before["token_number"]])
        await expect(lost).to_be_visible()
        await expect(lost).to_contain_text("Connection lost — numbers may be out of date")
        await expect(lost).to_contain_text("कनेक्शन टूट गया")

        restarted = AppServer(database, redis_url, namespace, extra_env=env, port=port)
        await asyncio.to_thread(restarted.start)
        await expect(status).to_have_text("live", timeout=RECONNECT_TIMEOUT_MS)
        await expect(lost).to_be_hidden()
        after = await factory.issue(pool, hospital, doctor=doctor)
        await expect(desk(board, doctor).locator(".next li")).to_have_text(
            [before["token_number"], after["token_number"]], timeout=PAIRING_TIMEOUT_MS)
    finally:
        for process in (app, restarted):
            if process is not None:
                await asyncio.to_thread(process.kill)


async def test_the_board_keeps_a_patient_called_just_before_the_next(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    # Two calls in quick succession (as when a board was cut off meanwhile): the first
    # patient's number stays on the board, under "Called", with the time.
    doctor = hospital.doctors[0]
    first = await factory.issue(pool, hospital, doctor=doctor)
    second = await factory.issue(pool, hospital, doctor=doctor)
    board = await (await new_context(viewport={"width": 1920, "height": 1080})).new_page()
    await pair_display(board, server.base_url, f"/board/{hospital.code}", hospital.keys["admin"],
                       wait_for_reload=True)
    await expect(desk(board, doctor).locator(".next li")).to_have_count(2)
    await pool.fetchrow("SELECT * FROM call_next_token($1, NULL)", doctor.doctor_id)
    await pool.execute("SELECT 1 FROM set_token_status($1, 'NO_SHOW', NULL)", first["token_id"])
    await pool.fetchrow("SELECT * FROM call_next_token($1, NULL)", doctor.doctor_id)

    await expect(desk(board, doctor).locator(".serving .token")).to_have_text(second["token_number"])
    recent = desk(board, doctor).locator(".recent")
    await expect(recent).to_be_visible()
    await expect(recent.locator(".recent-list")).to_contain_text(first["token_number"])
