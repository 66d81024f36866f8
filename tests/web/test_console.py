"""The doctor's console: a double click calls one patient; Undo reverses a no-show."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from playwright.async_api import Page, expect

from tests.support import factory
from tests.support.app_server import AppServer
from tests.web.conftest import NewContext, make_staff, sign_in, token_status

pytestmark = pytest.mark.browser

DB_WAIT_S = 15.0


async def status_becomes(pool: asyncpg.Pool, token_id: uuid.UUID, wanted: str) -> None:
    """Wait (bounded) until the token's status in the database is `wanted`."""
    async def poll() -> None:
        while await token_status(pool, token_id) != wanted:
            await asyncio.sleep(0.1)
    try:
        await asyncio.wait_for(poll(), DB_WAIT_S)
    except TimeoutError:
        raise AssertionError(f"token status is {await token_status(pool, token_id)}, not {wanted}") from None


async def open_console(server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
                       new_context: NewContext) -> Page:
    page = await (await new_context(viewport={"width": 1280, "height": 800})).new_page()
    await sign_in(page, server.base_url,
                  await make_staff(pool, hospital, "doctor", hospital.doctors[0].doctor_id))
    await expect(page.locator("[data-live-status]")).to_have_text("live")
    return page


async def test_double_click_on_call_next_calls_one_patient(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    first = await factory.issue(pool, hospital)
    second = await factory.issue(pool, hospital)
    page = await open_console(server, pool, hospital, new_context)
    await expect(page.locator("#waiting-count")).to_have_text("(2)")
    calls: list[str] = []
    page.on("request", lambda request: calls.append(request.url) if "/call-next" in request.url else None)

    await page.get_by_role("button", name="Call next").dblclick()

    await expect(page.locator('[data-field="token_number"]')).to_have_text(first["token_number"])
    await expect(page.locator("#waiting-count")).to_have_text("(1)")
    statuses = await pool.fetch(
        "SELECT token_id, status FROM tokens WHERE doctor_id = $1 ORDER BY serial",
        hospital.doctors[0].doctor_id)
    assert [(r["token_id"], r["status"]) for r in statuses] == [
        (first["token_id"], "WAITING"), (second["token_id"], "CHECKED_IN")]
    assert len(calls) == 1, calls
    await expect(page.locator("#toast")).to_be_hidden()


async def test_undo_after_no_show_puts_the_patient_back_in_place(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    first = await factory.issue(pool, hospital)
    second = await factory.issue(pool, hospital)
    page = await open_console(server, pool, hospital, new_context)
    await expect(page.locator("#waiting-count")).to_have_text("(2)")
    await page.get_by_role("button", name="Call next").click()
    await expect(page.locator('[data-field="status"]')).to_have_text("called")
    await expect(page.locator('[data-field="token_number"]')).to_have_text(first["token_number"])

    await page.get_by_role("button", name="No-show").click()
    await status_becomes(pool, first["token_id"], "NO_SHOW")
    undo = page.locator("#undo")
    await expect(undo).to_contain_text("Undo no-show")
    await expect(page.locator("[data-empty]")).to_be_visible()
    await expect(page.locator("#waiting-count")).to_have_text("(1)")

    await undo.click()

    # The SQL transition NO_SHOW -> CHECKED_IN keeps the token's old place in the queue.
    await status_becomes(pool, first["token_id"], "CHECKED_IN")
    await expect(undo).to_be_hidden()
    await expect(page.locator("#waiting-count")).to_have_text("(2)")
    await expect(page.locator("#waiting tr").first).to_contain_text(first["token_number"])
    await expect(page.locator("#waiting tr").nth(1)).to_contain_text(second["token_number"])
    assert await token_status(pool, second["token_id"]) == "CHECKED_IN"


async def test_a_patient_called_long_ago_prompts_the_doctor(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital, new_context: NewContext) -> None:
    """Issue 13: past the hospital's limit (3 min by default) the console says how long ago the
    patient was called and offers recall, mark absent or start; marking absent clears it."""
    token = await factory.issue(pool, hospital, doctor=hospital.doctors[0])
    # Called, recalled once, five minutes ago: one transaction, so its NOTIFY brings the engine
    # the final state (a recall sets called_time to now, so the clock is turned back after it).
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT token_id FROM set_token_status($1, 'WAITING', NULL)", token["token_id"])
        await conn.execute("UPDATE tokens SET call_count = 2 WHERE token_id = $1", token["token_id"])
        await conn.execute("UPDATE tokens SET called_time = opd_now() - interval '5 minutes' WHERE token_id = $1",
                           token["token_id"])
    page = await open_console(server, pool, hospital, new_context)
    prompt = page.locator("#not-seen")
    await expect(prompt).to_be_visible()
    await expect(prompt).to_contain_text(f"Token {token['token_number']} has not come in 5 min after the call.")
    await expect(page.locator('[data-field="called"]')).to_have_text("Called 5 min ago · called 2 times")
    await prompt.get_by_role("button", name="Mark absent").click()
    await status_becomes(pool, token["token_id"], "NO_SHOW")
    await expect(prompt).to_be_hidden()
