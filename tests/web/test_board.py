"""The waiting-hall board read from afar: every size fits without overflow, every department is
shown in turn, tokens are big, labels bilingual, sound that the browser blocks is said so (a lost
connection: tests/web/test_live_pages.py)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from playwright.async_api import Page, expect

from tests.support import factory
from tests.support.app_server import AppServer
from tests.web.conftest import NewContext, pair_display

pytestmark = pytest.mark.browser

SIZES = [(1280, 720), (1920, 1080), (3840, 2160)]
# Department codes up to the schema's 10 letters: their tokens are the longest a board shows.
EXTRA_DEPARTMENTS = ["ORTHOPAEDX", "ENT", "MED", "PAED", "GYN", "DERM"]


async def add_department(pool: asyncpg.Pool, hospital: factory.Hospital, code: str,
                         doctors: int) -> list[factory.Doctor]:
    made = []
    async with pool.acquire() as conn, conn.transaction():
        dept_id = await conn.fetchval(
            """INSERT INTO departments (hospital_id, name, code, avg_consultation_time, buffer_time,
                                        max_tokens_per_day)
               VALUES ($1, $2, $3, 10, 5, 500) RETURNING dept_id""",
            hospital.hospital_id, f"Department {code.title()}", code)
        for n in range(doctors):
            cabin_id = await conn.fetchval(
                "INSERT INTO cabins (dept_id, cabin_number) VALUES ($1, $2) RETURNING cabin_id",
                dept_id, f"{code[:3]}-{n + 1}")
            emp = f"E{code}{n}"
            doctor_id = await conn.fetchval(
                """INSERT INTO doctors (hospital_id, emp_code, name, specialization, primary_dept_id, phone)
                   VALUES ($1, $2, $3, 'x', $4, '9000000000') RETURNING doctor_id""",
                hospital.hospital_id, emp, f"Dr. {code.title()} {n + 1}", dept_id)
            await conn.execute(
                """INSERT INTO cabin_doctors (cabin_id, doctor_id, shift_date, shift_start_time,
                                              shift_end_time, status)
                   VALUES ($1, $2, hospital_today($3), '00:00', '23:59:59', 'ACTIVE')""",
                cabin_id, doctor_id, hospital.hospital_id)
            made.append(factory.Doctor(doctor_id, cabin_id, f"Dr. {code.title()} {n + 1}", emp))
    return made


async def busy_hospital(pool: asyncpg.Pool) -> factory.Hospital:
    """Seven departments of two doctors, each serving a patient with five waiting."""
    hospital = await factory.make_hospital(pool, doctors=2)
    doctors = list(hospital.doctors)
    for code in EXTRA_DEPARTMENTS:
        doctors += await add_department(pool, hospital, code, 2)
    for doctor in doctors:
        for _ in range(6):
            await factory.issue(pool, hospital, doctor=doctor)
        await pool.execute("SELECT * FROM call_next_token($1, NULL)", doctor.doctor_id)
    return hospital


OVERFLOWS = """() => {
    const over = [];
    for (const el of document.querySelectorAll('.dept:not([hidden]) .token, .dept:not([hidden]) .next li, '
                                              + '.dept:not([hidden]) .dept-name, .board-head h1')) {
        if (el.scrollWidth > el.clientWidth + 1) { over.push(el.className + ': ' + el.textContent); }
    }
    for (const el of document.querySelectorAll('.dept:not([hidden])')) {
        if (el.getBoundingClientRect().bottom > window.innerHeight + 1) { over.push('below: ' + el.dataset.dept); }
    }
    if (document.documentElement.scrollHeight > window.innerHeight + 1) { over.push('page scrolls'); }
    return over;
}"""


async def departments_over_pages(page: Page, pages: int) -> set[str]:
    seen: set[str] = set()
    for _ in range(pages):
        assert await page.evaluate(OVERFLOWS) == []
        seen |= set(await page.locator(".dept:not([hidden])").evaluate_all("els => els.map(e => e.dataset.dept)"))
        await asyncio.sleep(3.2)
    return seen


@pytest.mark.parametrize("width, height", SIZES)
async def test_every_size_fits_and_every_department_is_shown_in_turn(
        server: AppServer, pool: asyncpg.Pool, new_context: NewContext, width: int, height: int) -> None:
    hospital = await busy_hospital(pool)
    board = await (await new_context(viewport={"width": width, "height": height})).new_page()
    await pair_display(board, server.base_url, f"/board/{hospital.code}?page_seconds=3", hospital.keys["admin"])
    await expect(board.locator(".dept")).to_have_count(7)
    pager = board.locator("#pager")
    await expect(pager).to_be_visible()  # seven departments never fit one screen at this size
    pages = int((await pager.inner_text()).split("/")[1].split()[0])
    assert 2 <= pages <= 7
    assert await departments_over_pages(board, pages + 1) == {"CARD", *EXTRA_DEPARTMENTS}
    # Tokens are big enough to read across a hall: about a tenth of the screen's height.
    size = await board.locator('.dept:not([hidden]) .serving .token').first.evaluate(
        "el => parseFloat(getComputedStyle(el).fontSize)")
    assert size >= 0.08 * height, size
    # Labels in both languages (the factory hospital announces in English and Hindi).
    await expect(board.locator('.dept:not([hidden]) .serving .label').first).to_contain_text("Now serving · अभी")


async def test_sound_blocked_is_shown_and_a_tap_enables_it(server: AppServer, pool: asyncpg.Pool,
                                                           hospital: factory.Hospital,
                                                           new_context: NewContext) -> None:
    board = await (await new_context(viewport={"width": 1280, "height": 720})).new_page()
    await pair_display(board, server.base_url, f"/board/{hospital.code}", hospital.keys["admin"])
    # Headless Chromium without --autoplay-policy=no-user-gesture-required: no sound until a tap.
    await expect(board.locator("#sound-blocked")).to_be_visible()
    await board.locator("#enable-sound").click()
    await expect(board.locator("#enable-sound")).to_be_hidden()
    await expect(board.locator("#sound-blocked")).to_be_hidden()


async def test_the_whole_hospital_board_announces_new_calls_in_any_department_and_not_old_ones(
        server: AppServer, pool: asyncpg.Pool, new_context: NewContext) -> None:
    # Seven departments, each with a patient called before the board opens: the board follows
    # each department's topic (app/web/pages.py), and each topic's first snapshot is the state
    # it finds, not calls to announce.
    hospital = await busy_hospital(pool)
    board = await (await new_context(viewport={"width": 1920, "height": 1080})).new_page()
    await pair_display(board, server.base_url, f"/board/{hospital.code}", hospital.keys["admin"])
    await expect(board.locator(".dept")).to_have_count(7)
    topics = (await board.locator("#board").get_attribute("data-topics") or "").split(",")
    assert len(topics) == 7 and all(t.startswith("department:") for t in topics), topics
    await asyncio.sleep(1.5)
    await expect(board.locator("#announcement")).to_be_hidden()

    # A call in the last department to load is announced.
    derm = await pool.fetchrow(
        """SELECT d.doctor_id, c.cabin_number FROM doctors d
           JOIN departments dep ON dep.dept_id = d.primary_dept_id AND dep.code = 'DERM'
           JOIN cabin_doctors cd ON cd.doctor_id = d.doctor_id
           JOIN cabins c ON c.cabin_id = cd.cabin_id
           WHERE d.hospital_id = $1
           ORDER BY d.name LIMIT 1""", hospital.hospital_id)
    await pool.execute(
        """SELECT token_id FROM set_token_status(
               (SELECT token_id FROM tokens WHERE doctor_id = $1 AND status = 'WAITING'), 'NO_SHOW', NULL)""",
        derm["doctor_id"])
    called = await pool.fetchrow("SELECT token_number FROM call_next_token($1, NULL)", derm["doctor_id"])
    await expect(board.locator("#announcement")).to_have_text(
        f"{called['token_number']} → Cabin {derm['cabin_number']} · केबिन {derm['cabin_number']}")
