"""Admin screens (issue 13): the hospital's settings and staff accounts, from the page alone."""

from __future__ import annotations

import datetime as dt

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
    await expect(page.locator("#toast")).to_contain_text("Mark such a patient absent by itself after")
    await expect(absent).to_have_attribute("aria-invalid", "true")
    assert await pool.fetchval("SELECT auto_absent_minutes FROM hospitals WHERE hospital_id = $1",
                               hospital.hospital_id) == 20

    user = page.locator("#users li", has_text=receptionist)
    page.once("dialog", lambda dialog: dialog.accept())
    await user.get_by_role("button", name="Deactivate").click()
    await expect(page.locator("#users li", has_text=receptionist)).to_contain_text("inactive")
    assert await pool.fetchval("SELECT is_active FROM staff_users WHERE username = $1", receptionist) is False


async def test_admin_adds_a_doctor_puts_them_on_today_roster_and_the_board_shows_them(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    page = await (await new_context(viewport={"width": 1366, "height": 768})).new_page()
    await sign_in(page, server.base_url, await make_staff(pool, hospital, "admin"), then="/admin")
    # A cabin of its own first: a duplicate cabin number is refused and adds nothing.
    cabin_form = page.locator("#cabin-form")
    await cabin_form.get_by_label("Cabin number").fill("C-101")
    await cabin_form.get_by_role("button", name="Add cabin").click()
    await expect(page.locator("#toast")).to_be_visible()
    await cabin_form.get_by_label("Cabin number").fill("C-909")
    async with page.expect_navigation():
        await cabin_form.get_by_role("button", name="Add cabin").click()
    assert await pool.fetchval(
        """SELECT count(*) FROM cabins c JOIN departments d USING (dept_id)
           WHERE d.hospital_id = $1 AND cabin_number = 'C-909'""",
        hospital.hospital_id) == 1
    doctor_form = page.locator("#doctor-form")
    await doctor_form.get_by_label("Name").fill("Dr. Nandini Rao")
    await doctor_form.get_by_label("Employee code").fill("EMP-NEW-1")
    await doctor_form.get_by_label("Specialisation").fill("Cardiology")
    await doctor_form.get_by_label("Phone").fill("98450 12345")
    async with page.expect_navigation():
        await doctor_form.get_by_role("button", name="Add doctor").click()
    doctor = await pool.fetchrow(
        "SELECT doctor_id, phone FROM doctors WHERE hospital_id = $1 AND emp_code = 'EMP-NEW-1'", hospital.hospital_id)
    assert doctor["phone"] == "+919845012345"

    # Bad input: a shift that ends before it starts is refused by the database's rule and adds nothing.
    shift_form = page.locator("#shift-form")
    await shift_form.get_by_label("Doctor").select_option(str(doctor["doctor_id"]))
    await shift_form.get_by_label("Cabin").select_option(label=f"{hospital.dept_code} · Cabin C-909")
    await shift_form.get_by_label("From", exact=True).fill("14:00")
    await shift_form.get_by_label("To", exact=True).fill("09:00")
    await shift_form.get_by_role("button", name="Add shift").click()
    await expect(page.locator("#toast")).to_be_visible()
    assert await pool.fetchval("SELECT count(*) FROM cabin_doctors WHERE doctor_id = $1", doctor["doctor_id"]) == 0

    await shift_form.get_by_label("From", exact=True).fill("00:00")
    await shift_form.get_by_label("To", exact=True).fill("23:59")
    await shift_form.get_by_role("button", name="Add shift").click()
    await expect(page.locator("#shifts")).to_contain_text("Dr. Nandini Rao")

    board = await (await new_context(viewport={"width": 1920, "height": 1080},
                                     storage_state=await page.context.storage_state())).new_page()
    await board.goto(f"{server.base_url}/board/{hospital.code}")
    await expect(board.locator("body")).to_contain_text("Dr. Nandini Rao")


async def test_leave_recorded_and_approved_from_the_page_moves_the_patients(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    """Planned leave awaits approval; the list says how many patients approving moves; the
    times typed are the hospital's (IST), whatever zone the browser is in."""
    away, colleague = hospital.doctors[0], hospital.doctors[1]
    for _ in range(2):
        await factory.issue(pool, hospital, doctor=away)
    day = await pool.fetchval("SELECT hospital_today($1)", hospital.hospital_id)
    page = await (await new_context(viewport={"width": 1366, "height": 768}, timezone_id="UTC")).new_page()
    await sign_in(page, server.base_url, await make_staff(pool, hospital, "admin"), then="/admin")
    form = page.locator("#leave-form")
    await form.get_by_label("Doctor").select_option(str(away.doctor_id))
    await form.get_by_label("Kind").select_option("PLANNED_LEAVE")
    await form.get_by_label("From", exact=True).fill(f"{day.isoformat()}T00:00")
    # Ends tomorrow noon: still to come at any hour the suite runs (the list shows leave not yet over).
    await form.get_by_label("To", exact=True).fill(f"{(day + dt.timedelta(days=1)).isoformat()}T12:00")
    await form.get_by_label("Reason").fill("conference")
    await form.get_by_role("button", name="Record leave").click()
    pending = page.locator("#leave li", has_text="awaits approval")
    await expect(pending).to_contain_text("approving moves 2 booked or waiting patient(s)")
    # Who goes to whom, before anyone approves.
    await expect(pending.locator(".plan li")).to_have_count(2)
    await expect(pending.locator(".plan li").first).to_contain_text(f"→ {colleague.name}")
    start = await pool.fetchval("SELECT start_datetime FROM schedule_exceptions WHERE doctor_id = $1", away.doctor_id)
    assert start == await pool.fetchval("SELECT hospital_local_time($1, $2, '00:00')", hospital.hospital_id, day)

    page.once("dialog", lambda dialog: dialog.accept())
    await pending.get_by_role("button", name="Approve").click()
    await expect(page.locator("#toast")).to_contain_text("Approved: 2 patient(s) moved.")
    moved = await pool.fetchval("SELECT count(*) FROM tokens WHERE doctor_id = $1 AND status = 'CHECKED_IN'",
                                colleague.doctor_id)
    assert moved == 2


async def test_admin_changes_and_closes_a_department_a_cabin_and_a_doctor(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    page = await (await new_context(viewport={"width": 1366, "height": 900})).new_page()
    await sign_in(page, server.base_url, await make_staff(pool, hospital, "admin"), then="/admin")
    card = page.locator("#change-or-close")

    department = card.locator("#department-edit-form")
    await expect(department.get_by_label("Name")).to_have_value("Cardiology")  # filled from the choice
    await department.get_by_label("Minutes per patient").fill("7")
    await department.get_by_label("Status").select_option("INACTIVE")
    async with page.expect_navigation():   # saved, then the page reloads itself
        await department.get_by_role("button", name="Save department").click()
    row = await pool.fetchrow("SELECT avg_consultation_time, status FROM departments WHERE dept_id = $1",
                              hospital.dept_id)
    assert (row["avg_consultation_time"], row["status"]) == (7, "INACTIVE")

    cabin = page.locator("#cabin-edit-form")
    await cabin.locator("select[name=id]").select_option(str(hospital.doctors[1].cabin_id))
    await expect(cabin.get_by_label("Cabin number")).to_have_value("C-102")
    await cabin.get_by_label("Status").select_option("MAINTENANCE")
    async with page.expect_navigation():   # saved, then the page reloads itself
        await cabin.get_by_role("button", name="Save cabin").click()
    assert await pool.fetchval("SELECT status FROM cabins WHERE cabin_id = $1",
                               hospital.doctors[1].cabin_id) == "MAINTENANCE"

    doctor = page.locator("#doctor-edit-form")
    await doctor.locator("select[name=id]").select_option(str(hospital.doctors[1].doctor_id))
    await doctor.get_by_label("Name").fill("Dr. Test Two")
    await doctor.get_by_label("Status").select_option("INACTIVE")
    async with page.expect_navigation():   # saved, then the page reloads itself
        await doctor.get_by_role("button", name="Save doctor").click()
    row = await pool.fetchrow("SELECT name, status FROM doctors WHERE doctor_id = $1", hospital.doctors[1].doctor_id)
    assert (row["name"], row["status"]) == ("Dr. Test Two", "INACTIVE")


async def test_admin_registers_a_dlt_message_and_sees_what_would_be_refused(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    page = await (await new_context(viewport={"width": 1366, "height": 900})).new_page()
    await sign_in(page, server.base_url, await make_staff(pool, hospital, "admin"), then="/admin")
    card = page.locator("#messages-card")
    await card.get_by_label("DLT principal entity ID").fill("1101234567890123456")
    await card.locator("#dlt-form").get_by_role("button", name="Save").click()
    await expect(page.locator("#toast")).to_have_text("Saved.")
    assert await pool.fetchval("SELECT dlt_pe_id FROM hospitals WHERE hospital_id = $1",
                               hospital.hospital_id) == "1101234567890123456"
    form = card.locator("#message-form")
    await form.get_by_label("Text as registered").fill("{token} {doctor} {cabin} {hospital}")
    await form.get_by_label("DLT template ID").fill("1107161234567890123")
    await form.get_by_role("button", name="Register message").click()
    await expect(page.locator("#toast")).to_contain_text("DLT needs at least 30%")
    await form.get_by_label("Text as registered").fill(
        "{hospital}: token {token}, please go to cabin {cabin} now. Thank you for waiting.")
    await form.get_by_label("Event").select_option("CALL_NOW")
    await form.get_by_label("Header").fill("SNJVNI")
    await form.get_by_role("button", name="Register message").click()
    await expect(card.locator("#messages li")).to_contain_text("CALL_NOW · en · SMS · 1107161234567890123")
    assert await pool.fetchval("SELECT count(*) FROM message_registrations WHERE hospital_id = $1",
                               hospital.hospital_id) == 1

    # What each gateway would receive for it, from a token of today, sent nowhere.
    await factory.issue(pool, hospital)
    preview = card.locator("#preview-form")
    await preview.get_by_label("Event").select_option("CALL_NOW")
    await preview.get_by_role("button", name="Show the requests").click()
    shown = card.locator("#message-preview")
    await expect(shown.locator("summary").first).to_contain_text("SMS via msg91")
    await expect(shown).to_contain_text("dltTemplateId=1107161234567890123")     # Gupshup's form
    await expect(shown).to_contain_text("DltEntityId=1101234567890123456")       # Exotel's form
    await expect(shown).to_contain_text("no MSG91 template ID registered")        # no gateway template ID given
    await expect(shown).to_contain_text("WHATSAPP via whatsapp")
