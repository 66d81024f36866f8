"""Public screens (tracker, TV board, cabin door) never show a phone number or a full name: not
in the HTML, not in any WebSocket frame they receive."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.support import factory
from tests.support.app_server import AppServer
from tests.web.conftest import NewContext, desk, pair_display, tracking_code

pytestmark = pytest.mark.browser

# Distinctive, so a hit can only be a leak.
PATIENTS = [("Zephyrine Quillfeather", "9123400001"), ("Balthazar Okonkwo-Marchetti", "9123400002"),
            ("Ottoline Vanderkloot", "9123400003")]


class Recorder:
    """The page's final HTML and every WebSocket frame it received."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.frames: list[str] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload: Any) -> None:
        self.frames.append(payload if isinstance(payload, str) else payload.decode("utf-8", "replace"))

    async def everything(self) -> str:
        assert self.frames, f"{self.page.url} received no WebSocket frame"
        return await self.page.content() + "\n" + "\n".join(self.frames)


async def seat_patients(pool: asyncpg.Pool, hospital: factory.Hospital) -> list[asyncpg.Record]:
    """Three patients of doctor 1: the first called, the others waiting."""
    tokens = []
    for name, phone in PATIENTS:
        patient_id = await factory.make_patient(pool, hospital, name=name, phone=phone)
        tokens.append(await factory.issue(pool, hospital, patient_id=patient_id))
    await pool.execute("SELECT * FROM call_next_token($1, NULL)", hospital.doctors[0].doctor_id)
    return tokens


async def paired_screen(new_context: NewContext, server: AppServer,
                        hospital: factory.Hospital) -> BrowserContext:
    context = await new_context(viewport={"width": 1920, "height": 1080})
    page = await context.new_page()
    await pair_display(page, server.base_url, f"/board/{hospital.code}", hospital.keys["admin"])
    await page.close()
    return context


def assert_private(text: str, where: str) -> None:
    for name, phone in PATIENTS:
        assert phone not in text, f"{where} shows the phone number {phone}"
        assert name not in text, f"{where} shows the full name {name}"
        assert name.split()[-1] not in text, f"{where} shows the surname of {name}"


async def test_public_pages_show_no_names_or_phones(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    tokens = await seat_patients(pool, hospital)
    doctor = hospital.doctors[0]
    screen = await paired_screen(new_context, server, hospital)

    board = Recorder(await screen.new_page())
    await board.page.goto(f"{server.base_url}/board/{hospital.code}")
    await expect(desk(board.page, doctor).locator(".serving .token")).to_have_text(tokens[0]["token_number"])
    await expect(desk(board.page, doctor).locator(".next li")).to_have_text(
        [t["token_number"] for t in tokens[1:]])
    await expect(desk(board.page, doctor).locator(".serving .name")).to_have_text("")

    door = Recorder(await screen.new_page())
    await door.page.goto(f"{server.base_url}/cabin/{doctor.cabin_id}")
    await expect(door.page.locator(".door-serving")).to_have_text(tokens[0]["token_number"])

    tracker = Recorder(await (await new_context()).new_page())
    await tracker.page.goto(f"{server.base_url}/t/{await tracking_code(pool, tokens[0]['token_id'])}")
    await expect(tracker.page.locator("#call-now")).to_have_text("Please go to cabin C\u2011101 now")

    for recorder in (board, door, tracker):
        assert_private(await recorder.everything(), recorder.page.url)


async def test_board_of_a_hospital_that_opts_in_shows_first_name_and_initial(
        server: AppServer, pool: asyncpg.Pool, new_context: NewContext) -> None:
    hospital = await factory.make_hospital(pool, shows_names=True)
    tokens = await seat_patients(pool, hospital)
    doctor = hospital.doctors[0]
    screen = await paired_screen(new_context, server, hospital)

    board = Recorder(await screen.new_page())
    await board.page.goto(f"{server.base_url}/board/{hospital.code}")
    serving = desk(board.page, doctor).locator(".serving")
    await expect(serving.locator(".token")).to_have_text(tokens[0]["token_number"])
    await expect(serving.locator(".name")).to_have_text("Zephyrine Q.")
    await expect(desk(board.page, doctor).locator(".next li")).to_have_text([
        f"{tokens[1]['token_number']} · Balthazar O.", f"{tokens[2]['token_number']} · Ottoline V."])

    assert_private(await board.everything(), board.page.url)
