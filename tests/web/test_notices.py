"""Notices on the boards: reception posts one from the operations page, in English and Hindi;
the waiting-hall board and the cabin door show it at once, and take it off when removed."""

from __future__ import annotations

import asyncpg
import pytest
from playwright.async_api import expect

from tests.support import factory
from tests.support.app_server import AppServer
from tests.web.conftest import NewContext, make_staff, pair_display, sign_in

pytestmark = pytest.mark.browser


async def test_reception_posts_a_notice_and_the_boards_show_it_live(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    await pool.execute("UPDATE hospitals SET announcement_languages = '{en,hi}' WHERE hospital_id = $1",
                       hospital.hospital_id)
    board = await (await new_context(viewport={"width": 1280, "height": 720})).new_page()
    await pair_display(board, server.base_url, f"/board/{hospital.code}", hospital.keys["admin"])
    notices = board.locator("#notices")
    await expect(notices).to_be_hidden()

    desk = await (await new_context(viewport={"width": 1366, "height": 768})).new_page()
    await sign_in(desk, server.base_url, await make_staff(pool, hospital, "receptionist"), then="/operations")
    form = desk.locator("#notice-form")
    await form.get_by_label("Notice (English)").fill("Dr. Test 1 starts at 11:00 today")
    await form.get_by_label("Notice (Hindi, optional)").fill("डॉ. टेस्ट 1 आज 11 बजे से")
    await form.get_by_role("button", name="Show on the boards").click()
    await expect(desk.locator("#toast")).to_have_text("On the boards now.")

    # On the board without a reload: the layout changed, the engine republished at once.
    await expect(notices).to_have_text("Dr. Test 1 starts at 11:00 today · डॉ. टेस्ट 1 आज 11 बजे से")
    row = await pool.fetchrow("SELECT dept_id, posted_by, ends_at > opd_now() AS live FROM board_notices "
                              "WHERE hospital_id = $1", hospital.hospital_id)
    assert row["dept_id"] is None and row["posted_by"] is not None and row["live"]

    item = desk.locator("#notices li", has_text="Dr. Test 1 starts at 11:00 today")
    await expect(item).to_contain_text("All boards")
    await item.get_by_role("button", name="Remove").click()
    await expect(notices).to_be_hidden()
    await expect(desk.locator("#notices")).to_contain_text("No notice on the boards.")


async def test_a_notice_that_has_already_ended_is_refused_and_nothing_is_written(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    desk = await (await new_context(viewport={"width": 1366, "height": 768})).new_page()
    await sign_in(desk, server.base_url, await make_staff(pool, hospital, "receptionist"), then="/operations")
    form = desk.locator("#notice-form")
    await form.get_by_label("Notice (English)").fill("Pharmacy closes early")
    await form.get_by_label("Until").fill("2020-01-01T10:00")
    await form.get_by_role("button", name="Show on the boards").click()
    await expect(desk.locator("#toast")).to_contain_text("Until: must be in the future")
    await expect(form.get_by_label("Until")).to_have_attribute("aria-invalid", "true")
    assert await pool.fetchval("SELECT count(*) FROM board_notices WHERE hospital_id = $1", hospital.hospital_id) == 0
