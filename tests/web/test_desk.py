"""The reception desk runs the day from the page (issue 13): today's tokens, live, with the
actions a receptionist may take; at 1366×768, the common desk screen."""

from __future__ import annotations

import asyncpg
import pytest
from playwright.async_api import expect

from tests.ops.helpers import add_shift
from tests.support import factory
from tests.support.app_server import AppServer
from tests.web.conftest import NewContext, make_staff, sign_in, token_status, tracking_code

pytestmark = pytest.mark.browser
DESK_SCREEN = {"width": 1366, "height": 768}


async def test_reception_puts_a_no_show_back_in_line_and_the_tracker_follows(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    token = await factory.issue(pool, hospital)
    await pool.execute("SELECT token_id FROM set_token_status($1, 'WAITING', NULL)", token["token_id"])
    await pool.execute("SELECT token_id FROM set_token_status($1, 'NO_SHOW', NULL)", token["token_id"])

    phone = await (await new_context(viewport={"width": 390, "height": 844}, is_mobile=True)).new_page()
    await phone.goto(f"{server.base_url}/t/{await tracking_code(pool, token['token_id'])}")
    await expect(phone.locator("#status")).to_have_text("Marked absent — please see reception")

    page = await (await new_context(viewport=DESK_SCREEN)).new_page()
    await sign_in(page, server.base_url, await make_staff(pool, hospital, "receptionist"))
    desk = page.locator("#desk")
    await desk.get_by_label("Search today's tokens").fill(token["token_number"])
    row = desk.locator(f'tr[data-token-id="{token["token_id"]}"]')
    await expect(row).to_contain_text("no show")
    await expect(desk.locator("tbody tr")).to_have_count(1)
    await row.get_by_role("button", name="Back in line").click()

    await expect(row).to_contain_text("checked in")
    assert await token_status(pool, token["token_id"]) == "CHECKED_IN"
    await expect(phone.locator("#status")).to_have_text("In the queue")
    history = await pool.fetchval(
        "SELECT change_reason FROM token_history WHERE token_id = $1 ORDER BY history_id DESC LIMIT 1",
        token["token_id"])
    assert history == "back in line at reception"


async def test_desk_search_by_part_of_a_phone_and_a_refused_action_changes_nothing(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    patient_id = await factory.make_patient(pool, hospital, name="Lakshmi Narayanan", phone="+919123456780")
    token = await factory.issue(pool, hospital, patient_id=patient_id)
    await factory.issue(pool, hospital)  # someone else, who must not match
    page = await (await new_context(viewport=DESK_SCREEN)).new_page()
    await sign_in(page, server.base_url, await make_staff(pool, hospital, "receptionist"))
    desk = page.locator("#desk")
    await desk.get_by_label("Search today's tokens").fill("45678")
    await expect(desk.locator("tbody tr")).to_have_count(1)
    row = desk.locator(f'tr[data-token-id="{token["token_id"]}"]')
    await expect(row).to_contain_text("Lakshmi Narayanan")
    # "Find a patient" takes the same: any part of the phone, or part of the name.
    for query in ("45678", "narayan"):
        await page.get_by_label("Phone, name or UHID").fill(query)
        await page.locator("#find-form").get_by_role("button", name="Find").click()
        await expect(page.locator("#found li")).to_have_count(1)
        await expect(page.locator("#found")).to_contain_text("Lakshmi Narayanan · +919123456780")
    # The issue form's doctor list says, live, how many wait for each doctor.
    option = page.locator(f'#issue-form select[name="doctor_id"] option[value="{hospital.doctor.doctor_id}"]')
    await expect(option).to_contain_text("2 waiting, last in line ~")

    # Cancel asks why; dismissing the question cancels nothing.
    page.once("dialog", lambda dialog: dialog.dismiss())
    await row.get_by_role("button", name="Cancel").click()
    await expect(row).to_contain_text("checked in")
    assert await token_status(pool, token["token_id"]) == "CHECKED_IN"

    page.once("dialog", lambda dialog: dialog.accept("patient went home"))
    await row.get_by_role("button", name="Cancel").click()
    await expect(row).to_contain_text("cancelled")
    assert await token_status(pool, token["token_id"]) == "CANCELLED"


async def test_desk_reschedules_to_a_hospital_time_whatever_the_desk_computer_zone(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    token = await factory.issue(pool, hospital)
    tomorrow = await pool.fetchval("SELECT hospital_today($1) + 1", hospital.hospital_id)
    await add_shift(pool, hospital.doctor, tomorrow, "09:00", "14:00")
    page = await (await new_context(viewport=DESK_SCREEN, timezone_id="UTC")).new_page()
    await sign_in(page, server.base_url, await make_staff(pool, hospital, "receptionist"))
    row = page.locator(f'#desk tr[data-token-id="{token["token_id"]}"]')
    await row.get_by_label(f"New time for {token['token_number']}").fill(f"{tomorrow.isoformat()}T10:00")
    await row.get_by_role("button", name="Reschedule").click()
    await expect(page.locator("#toast")).to_contain_text("New token")
    assert await token_status(pool, token["token_id"]) == "RESCHEDULED"
    scheduled = await pool.fetchval("SELECT scheduled_time FROM tokens WHERE rescheduled_from_token_id = $1",
                                    token["token_id"])
    assert scheduled == await pool.fetchval("SELECT hospital_local_time($1, $2, '10:00')",
                                            hospital.hospital_id, tomorrow)
