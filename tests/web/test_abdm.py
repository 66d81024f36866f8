"""ABDM Scan & Share on the screens (issue 18): the admin sets the HIP id and adds a counter, prints
its QR code (which opens ABDM's share-profile page for this facility and counter), and the desk
marks a token that came through Scan & Share."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from playwright.async_api import expect

from tests.support import factory
from tests.support.app_server import AppServer
from tests.web.conftest import NewContext, make_staff, sign_in
from tests.web.qr import decode_qr

pytestmark = pytest.mark.browser


async def test_admin_sets_up_a_counter_prints_its_qr_and_the_desk_marks_abha_tokens(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital, new_context: NewContext) -> None:
    page = await (await new_context(viewport={"width": 1366, "height": 768})).new_page()
    await sign_in(page, server.base_url, await make_staff(pool, hospital, "admin"), then="/admin")
    card = page.locator("#abdm-card")
    await expect(card).to_contain_text("no ABDM gateway set up")  # the suite's server has none
    hip_id = "IN" + uuid.uuid4().hex[:10].upper()
    await card.get_by_label("HIP id").fill(hip_id)
    await card.locator("#abdm-facility-form").get_by_role("button", name="Save").click()
    await expect(page.locator("#toast")).to_have_text("Saved.")
    counter_form = card.locator("#abdm-counter-form")
    await counter_form.get_by_label("Counter code").fill("REG-1")
    await counter_form.get_by_label("Label").fill("Registration, ground floor")
    await counter_form.get_by_role("button", name="Add counter").click()
    item = card.locator("#abdm-counters li", has_text="REG-1")
    await expect(item).to_contain_text("Registration, ground floor → CARD")
    # A code already in use is refused and says so.
    await counter_form.get_by_label("Counter code").fill("REG-1")
    await counter_form.get_by_label("Label").fill("Again")
    await counter_form.get_by_role("button", name="Add counter").click()
    await expect(page.locator("#toast")).to_contain_text("exists already")

    async with page.context.expect_page() as opened:
        await item.get_by_role("link", name="QR code to print").click()
    poster = await opened.value
    await expect(poster.locator("h1")).to_have_text("Skip the registration queue")
    expected = f"https://phrsbx.abdm.gov.in/share-profile?hip-id={hip_id}&counter-id=REG-1"
    assert decode_qr(await poster.locator("#abdm-qr svg").screenshot()) == expected
    await expect(poster.locator("#abdm-qr-url")).to_have_text(expected)

    # A share at that counter (as the gateway's call would record it) shows on the desk.
    share = await pool.fetchrow(
        """SELECT * FROM abdm_receive_share($1, $2, 'REG-1', '91234567890123', 'kamla.devi@sbx', 'Kamla Devi',
                                            'FEMALE', 1962, NULL, '+919812345670', NULL, 3600, 60)""",
        str(uuid.uuid4()), hip_id)
    assert share["status"] == "SUCCESS", share["reason"]
    await page.goto(server.base_url + "/reception")
    row = page.locator(f'tr[data-token-id="{share["token_id"]}"]')
    await expect(row.locator(".via-abha")).to_have_text("via ABHA")
    await expect(row).to_contain_text("Kamla Devi")
    # Closing the counter from the admin page.
    await page.goto(server.base_url + "/admin")
    page.once("dialog", lambda dialog: dialog.accept())
    await page.locator("#abdm-counters li", has_text="REG-1").get_by_role("button", name="Close").click()
    await expect(page.locator("#abdm-counters li", has_text="REG-1")).to_contain_text("closed")
    assert await pool.fetchval("SELECT active FROM abdm_counters WHERE hospital_id = $1 AND context = 'REG-1'",
                               hospital.hospital_id) is False
