"""Fixtures of the browser tests: one headless Chromium, a fresh context per page owner, and
helpers that sign staff in and pair screens the way people do it."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from app.security.accounts import create_user
from tests.support import factory

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct-horse-battery"  # create_user wants at least 10 characters
# Generous: a loaded CI machine may need seconds for a recompute; the wait ends at the first match.
UI_TIMEOUT_MS = 15_000
# pair.js polls /pair/status every 4 s; leave room for a slow poll and the reload after it.
PAIRING_TIMEOUT_MS = 20_000

expect.set_options(timeout=UI_TIMEOUT_MS)

NewContext = Callable[..., Awaitable[BrowserContext]]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        await chromium.close()


@pytest.fixture
async def new_context(browser: Browser) -> AsyncIterator[NewContext]:
    """Open browser contexts (each its own cookies: one per device); all closed after the test."""
    opened: list[BrowserContext] = []

    async def make(**options: Any) -> BrowserContext:
        context = await browser.new_context(**options)
        context.set_default_timeout(UI_TIMEOUT_MS)
        opened.append(context)
        return context

    yield make
    for context in opened:
        await context.close()


async def make_staff(pool: asyncpg.Pool, hospital: factory.Hospital, role: str,
                     doctor_id: uuid.UUID | None = None) -> str:
    """A new staff account of the hospital; its username (the password is PASSWORD)."""
    username = f"{role}-{secrets.token_hex(4)}"
    async with pool.acquire() as conn:
        await create_user(conn, hospital.hospital_id, username, PASSWORD, role, doctor_id)
    return username


async def sign_in(page: Page, base_url: str, username: str, then: str | None = None) -> None:
    """Sign in through /login as a person would; lands on the role's home page (or `then`)."""
    await page.goto(base_url + "/login" + (f"?next={then}" if then else ""))
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    async with page.expect_navigation():
        await page.click("button[type=submit]")
    assert "/login" not in page.url, f"sign-in of {username} failed: {page.url}"


async def pair_display(page: Page, base_url: str, path: str, admin_key: str, *,
                       wait_for_reload: bool = False) -> None:
    """Open `path` on an unpaired screen, confirm its code as an admin, and open the screen.

    With wait_for_reload the page must reload itself (pair.js); otherwise the test reloads it, to
    save the polling interval.
    """
    await page.goto(base_url + path)
    code = (await page.locator("#pair-code").inner_text()).strip()
    assert len(code.replace(" ", "")) == 6, f"pairing code looks wrong: {code!r}"
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as http:
        response = await http.post("/api/v1/displays/pair", json={"code": code, "label": "Test TV"},
                                   headers={"Authorization": f"Bearer {admin_key}"})
    assert response.status_code == 201, response.text
    if not wait_for_reload:
        await page.goto(base_url + path)
    await expect(page.locator("#pair-code")).to_have_count(0, timeout=PAIRING_TIMEOUT_MS)
    await expect(page.locator("[data-live-status]").first).to_have_text("live")


async def tracking_code(pool: asyncpg.Pool, token_id: uuid.UUID) -> str:
    code: str = await pool.fetchval("SELECT tracking_code FROM tokens WHERE token_id = $1", token_id)
    return code


async def token_status(pool: asyncpg.Pool, token_id: uuid.UUID) -> str:
    status: str = await pool.fetchval("SELECT status FROM tokens WHERE token_id = $1", token_id)
    return status


def desk(page: Page, doctor: factory.Doctor) -> Any:
    """The board's (or door display's) block of one doctor."""
    return page.locator(f'article.desk[data-doctor="{doctor.doctor_id}"]')
