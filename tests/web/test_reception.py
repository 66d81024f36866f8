"""Reception issues a token; the printed slip's QR code opens the patient's live tracker."""

from __future__ import annotations

import re

import asyncpg
import pytest
from playwright.async_api import expect

from tests.support import factory
from tests.support.app_server import AppServer
from tests.web.conftest import NewContext, make_staff, sign_in
from tests.web.qr import decode_qr

pytestmark = pytest.mark.browser


async def test_issued_slip_qr_code_opens_the_tracker(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    page = await (await new_context(viewport={"width": 1280, "height": 800})).new_page()
    await sign_in(page, server.base_url, await make_staff(pool, hospital, "receptionist"))
    assert page.url.endswith("/reception")

    form = page.locator("#issue-form")
    await form.get_by_label("Name").fill("Rukmini Devi Acharya")
    await form.get_by_label("Phone").fill("9812345670")
    await form.get_by_label("Doctor").select_option(str(hospital.doctors[1].doctor_id))
    await form.get_by_label("Reason for visit").fill("follow-up")
    async with page.expect_navigation(url="**/reception/slip/**"):
        await form.get_by_role("button", name="Issue token").click()

    number = (await page.locator("#slip-number").inner_text()).strip()
    assert number.startswith(f"{hospital.dept_code}-")
    await expect(page.locator(".slip")).to_contain_text("Dr. Test 2 · Cabin C-102")
    # A walk-in in the hall: a clock time and a range (docs/eta.md).
    await expect(page.locator("#slip-eta")).to_have_text(re.compile(r"Expected around \d\d:\d\d · in \d+–\d+ min"))
    row = await pool.fetchrow(
        """SELECT t.tracking_code, t.status, p.name FROM tokens t JOIN patients p USING (patient_id)
           WHERE t.hospital_id = $1 AND t.token_number = $2""", hospital.hospital_id, number)
    assert (row["name"], row["status"]) == ("Rukmini Devi Acharya", "CHECKED_IN")

    url = decode_qr(await page.locator("#slip-qr svg").screenshot())
    assert url == f"{server.base_url}/t/{row['tracking_code']}"
    await expect(page.locator("#slip-url")).to_have_text(url)

    phone = await (await new_context(viewport={"width": 390, "height": 844}, is_mobile=True)).new_page()
    await phone.goto(url)
    await expect(phone.locator("#token-number")).to_have_text(number)
    await expect(phone.locator("#status")).to_have_text("In the queue")
    await expect(phone.locator("#doctor")).to_have_text("Dr. Test 2 · Cabin C-102 · Cardiology")


async def test_a_patient_registered_in_hindi_gets_a_bilingual_slip_and_tracker(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    page = await (await new_context(viewport={"width": 1280, "height": 800})).new_page()
    await sign_in(page, server.base_url, await make_staff(pool, hospital, "receptionist"))
    form = page.locator("#issue-form")
    await form.get_by_label("Name").fill("Ramesh Yadav")
    await form.get_by_label("Phone").fill("9812345671")
    await form.get_by_label("Language").select_option("hi")
    await form.get_by_label("Doctor").select_option(str(hospital.doctors[0].doctor_id))
    async with page.expect_navigation(url="**/reception/slip/**"):
        await form.get_by_role("button", name="Issue token").click()
    await expect(page.locator(".slip")).to_contain_text("अनुमानित समय लगभग")
    await expect(page.locator(".slip")).to_contain_text("Expected around")   # staff read English
    await expect(page.locator("#slip-qr")).to_contain_text("अपनी बारी लाइव देखने के लिए स्कैन करें")
    phone = await (await new_context(viewport={"width": 390, "height": 844}, is_mobile=True)).new_page()
    await phone.goto((await page.locator("#slip-url").inner_text()).strip())
    await expect(phone.locator("#status")).to_have_text("कतार में")


async def test_a_phone_already_registered_is_said_before_a_second_record_is_made(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    existing = await factory.make_patient(pool, hospital, name="Kamla Devi", phone="+919812300001")
    page = await (await new_context(viewport={"width": 1280, "height": 800})).new_page()
    await sign_in(page, server.base_url, await make_staff(pool, hospital, "receptionist"))
    form = page.locator("#issue-form")
    await form.get_by_label("Name").fill("Kamala Devi")     # the same woman, spelt otherwise
    await form.get_by_label("Phone").fill("98123 00001")
    await form.get_by_label("Phone").press("Tab")
    warning = page.locator("#same-phone")
    await expect(warning).to_contain_text("Already registered with this phone")
    await expect(warning.get_by_role("button", name="Use Kamla Devi", exact=False)).to_be_visible()
    # Issuing without choosing asks once first; nothing is made.
    await form.get_by_role("button", name="Issue token").click()
    await expect(page.locator("#issue-result")).to_contain_text("press Issue token again")
    assert await pool.fetchval("SELECT count(*) FROM patients WHERE hospital_id = $1 AND name LIKE 'Kam%'",
                               hospital.hospital_id) == 1
    # Choosing her issues the token to the existing record.
    await warning.get_by_role("button", name="Use Kamla Devi", exact=False).click()
    async with page.expect_navigation(url="**/reception/slip/**"):
        await form.get_by_role("button", name="Issue token").click()
    assert await pool.fetchval("SELECT count(*) FROM tokens WHERE patient_id = $1", existing) == 1


async def test_a_refused_phone_is_named_by_its_label_and_nothing_is_written(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    """The API says "patient.phone"; the receptionist reads "Phone", and the box is outlined."""
    page = await (await new_context(viewport={"width": 1366, "height": 768})).new_page()
    await sign_in(page, server.base_url, await make_staff(pool, hospital, "receptionist"))
    form = page.locator("#issue-form")
    await form.get_by_label("Name").fill("Sita Ram")
    await form.get_by_label("Phone").fill("12345")
    await form.get_by_role("button", name="Issue token").click()
    message = "Phone: '12345' is not a phone number; give a 10-digit mobile number"
    await expect(page.locator("#toast")).to_contain_text(message)
    await expect(page.locator("#issue-result")).to_contain_text(message)
    phone = form.get_by_label("Phone")
    await expect(phone).to_have_attribute("aria-invalid", "true")
    await expect(phone).to_be_focused()
    assert await pool.fetchval("SELECT count(*) FROM patients WHERE hospital_id = $1 AND name = 'Sita Ram'",
                               hospital.hospital_id) == 0
    await phone.fill("98765 43210")   # typing again clears the mark
    await expect(phone).not_to_have_attribute("aria-invalid", "true")
