"""Admin screens (issue 13): the hospital's settings and staff accounts, from the page alone."""

from __future__ import annotations

import asyncpg
import pytest
from playwright.async_api import expect

from tests.support import factory
from tests.support.app_server import AppServer
from tests.web.conftest import NewContext, make_staff, sign_in

pytestmark = pytest.mark.browser


async def test_admin_changes_settings_and_deactivates_a_receptionist(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    receptionist = await make_staff(pool, hospital, "receptionist")
    page = await (await new_context(viewport={"width": 1366, "height": 768})).new_page()
    await sign_in(page, server.base_url, await make_staff(pool, hospital, "admin"), then="/admin")
    form = page.locator("#hospital-form")
    await form.get_by_label("after (minutes)", exact=False).first.fill("5")
    await form.get_by_label("Mark such a patient absent", exact=False).fill("20")
    await form.get_by_role("button", name="Save settings").click()
    await expect(page.locator("#toast")).to_have_text("Settings saved.")
    row = await pool.fetchrow(
        "SELECT called_not_seen_minutes, auto_absent_minutes FROM hospitals WHERE hospital_id = $1",
        hospital.hospital_id)
    assert (row["called_not_seen_minutes"], row["auto_absent_minutes"]) == (5, 20)

    # A server-side refusal (the browser's own checks bypassed) says which field and changes nothing.
    absent = form.get_by_label("Mark such a patient absent", exact=False)
    await absent.evaluate("el => { el.min = ''; el.value = '1'; }")
    await form.get_by_role("button", name="Save settings").click()
    await expect(page.locator("#toast")).to_contain_text("auto_absent_minutes")
    assert await pool.fetchval("SELECT auto_absent_minutes FROM hospitals WHERE hospital_id = $1",
                               hospital.hospital_id) == 20

    user = page.locator("#users li", has_text=receptionist)
    page.once("dialog", lambda dialog: dialog.accept())
    await user.get_by_role("button", name="Deactivate").click()
    await expect(page.locator("#users li", has_text=receptionist)).to_contain_text("inactive")
    assert await pool.fetchval("SELECT is_active FROM staff_users WHERE username = $1", receptionist) is False
