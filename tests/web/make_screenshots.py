"""Screenshots of every screen at its real size, with the demo hospital loaded, for docs/.

Run: DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \
     .venv/bin/python -m tests.web.make_screenshots

DATABASE_URL is an admin DSN: a fresh database is created on that server and dropped at the end.
Not a test (no test_ prefix): pytest does not collect it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

import asyncpg
import httpx
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from app.api.auth import create_api_key
from app.db.migrate import upgrade
from app.db.pool import create_pool
from app.demo import HOSPITAL_CODE, load_demo
from app.security.accounts import create_user
from tests.support.app_server import AppServer
from tests.support.pg_server import create_database, drop_database
from tests.web.conftest import CHROMIUM, PASSWORD, UI_TIMEOUT_MS

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
TV = {"width": 1920, "height": 1080}
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1280, "height": 800}
DOOR = {"width": 800, "height": 480}
SLIP = {"width": 420, "height": 760}
SLIP_POSTER = {"width": 640, "height": 900}  # a counter's Scan & Share poster, A5-ish


async def main() -> None:
    admin_dsn = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    dsn = await create_database(admin_dsn)
    try:
        await upgrade(dsn)
        pool = await create_pool(dsn, min_size=1, max_size=4)
        try:
            print(await load_demo(pool))
            # The alert check the safety refresh runs every 30 s, before the server's first
            # snapshots: the operations page shows the morning's alerts at once.
            await pool.fetchval("SELECT check_hospital_alerts(hospital_id) FROM hospitals WHERE code = $1",
                                HOSPITAL_CODE)
            accounts = await make_accounts(pool)
            app = AppServer(dsn, redis_url, f"opdshots{secrets.token_hex(4)}").start()
            try:
                async with async_playwright() as p:
                    browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True)
                    await shoot_all(browser, app.base_url, pool, accounts)
                    await browser.close()
            finally:
                app.stop()
        finally:
            await pool.close()
    finally:
        await drop_database(admin_dsn, dsn.rsplit("/", 1)[1].split("?")[0])
    print(f"screenshots in {OUT}")


async def make_accounts(pool: asyncpg.Pool) -> dict[str, str]:
    """Users of the demo hospital, its busiest doctor, and an admin key for pairing screens."""
    hospital_id = await pool.fetchval("SELECT hospital_id FROM hospitals WHERE code = $1", HOSPITAL_CODE)
    doctor_id = await pool.fetchval(
        """SELECT doctor_id FROM tokens WHERE hospital_id = $1 AND visit_date = hospital_today($1)
           GROUP BY doctor_id
           ORDER BY bool_or(status IN ('WAITING', 'IN_CONSULTATION')) DESC,
                    count(*) FILTER (WHERE status = 'CHECKED_IN') DESC
           LIMIT 1""", hospital_id)
    async with pool.acquire() as conn:
        for role, doctor in (("admin", None), ("receptionist", None), ("doctor", doctor_id)):
            await create_user(conn, hospital_id, f"shots-{role}", PASSWORD, role, doctor)
        _, key = await create_api_key(conn, hospital_id, role="admin")
    cabin_id = await pool.fetchval(
        """SELECT cabin_id FROM cabin_doctors WHERE doctor_id = $1 AND shift_date = hospital_today($2)""",
        doctor_id, hospital_id)
    return {"admin_key": key, "cabin_id": str(cabin_id), "hospital_id": str(hospital_id)}


async def signed_in(browser: Browser, base_url: str, role: str, viewport: dict[str, int]) -> Page:
    context = await browser.new_context(viewport=viewport)
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = await context.new_page()
    await page.goto(base_url + "/login")
    await page.fill("input[name=username]", f"shots-{role}")
    await page.fill("input[name=password]", PASSWORD)
    async with page.expect_navigation():
        await page.click("button[type=submit]")
    return page


async def tracker_code(pool: asyncpg.Pool, status: str) -> str:
    code: str = await pool.fetchval(
        """SELECT t.tracking_code FROM tokens t JOIN hospitals h USING (hospital_id)
           WHERE h.code = $1 AND t.visit_date = hospital_today(h.hospital_id) AND t.status = $2
           ORDER BY t.queue_position NULLS LAST, t.serial DESC LIMIT 1""", HOSPITAL_CODE, status)
    return code


async def shoot_all(browser: Browser, base_url: str, pool: asyncpg.Pool, accounts: dict[str, str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)

    # An unpaired TV shows its code; an admin confirms it; the screen becomes the board.
    tv: BrowserContext = await browser.new_context(viewport=TV)
    board = await tv.new_page()
    await board.goto(f"{base_url}/board/{HOSPITAL_CODE}")
    code = (await board.locator("#pair-code").inner_text()).strip()
    await board.screenshot(path=OUT / "pairing.png")
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as http:
        response = await http.post("/api/v1/displays/pair", json={"code": code, "label": "Waiting hall TV"},
                                   headers={"Authorization": f"Bearer {accounts['admin_key']}"})
        response.raise_for_status()
    await expect(board.locator("#departments .desk").first).to_be_visible(timeout=20_000)
    await expect(board.locator("[data-live-status]")).to_have_text("live")
    await board.screenshot(path=OUT / "board.png")
    # The same board at 720p and 4K (the layout scales with the screen's height).
    for size, name in (({"width": 1280, "height": 720}, "board-720p.png"),
                       ({"width": 3840, "height": 2160}, "board-4k.png")):
        await board.set_viewport_size(size)
        await board.wait_for_timeout(500)
        await board.screenshot(path=OUT / name)
    await board.set_viewport_size(TV)

    door = await (await browser.new_context(viewport=DOOR, storage_state=await tv.storage_state())).new_page()
    await door.goto(f"{base_url}/cabin/{accounts['cabin_id']}")
    await expect(door.locator(".door-desk").first).to_be_visible()
    await door.screenshot(path=OUT / "cabin.png")

    phone = await (await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)).new_page()
    for status, name in (("CHECKED_IN", "tracker.png"), ("WAITING", "tracker-called.png")):
        await phone.goto(f"{base_url}/t/{await tracker_code(pool, status)}")
        await expect(phone.locator("[data-live-status]")).to_have_text("live")
        await expect(phone.locator("#status")).not_to_have_text("…")
        await phone.screenshot(path=OUT / name)
    # The tracker in Hindi, as a patient registered in Hindi first sees it.
    await phone.evaluate("() => localStorage.setItem('opd.lang', 'hi')")
    await phone.goto(f"{base_url}/t/{await tracker_code(pool, 'CHECKED_IN')}")
    await expect(phone.locator("#status")).to_have_text("कतार में")
    await phone.evaluate("() => document.fonts.ready")
    await phone.screenshot(path=OUT / "tracker-hindi.png")

    doctor = await signed_in(browser, base_url, "doctor", DESK)
    await expect(doctor.locator("#waiting tr").first).to_be_visible()
    await doctor.screenshot(path=OUT / "doctor.png")

    reception = await signed_in(browser, base_url, "receptionist", {"width": 1366, "height": 768})
    await expect(reception.locator("#desk-tokens tr[data-token-id]").first).to_be_visible()
    await reception.screenshot(path=OUT / "reception.png")
    token_id = await pool.fetchval(
        """SELECT t.token_id FROM tokens t JOIN hospitals h USING (hospital_id)
           WHERE h.code = $1 AND t.status = 'CHECKED_IN' ORDER BY t.serial DESC LIMIT 1""", HOSPITAL_CODE)
    slip = await (await reception.context.browser.new_context(  # type: ignore[union-attr]
        viewport=SLIP, storage_state=await reception.context.storage_state())).new_page()
    await slip.goto(f"{base_url}/reception/slip/{token_id}")
    await slip.screenshot(path=OUT / "slip.png", full_page=True)

    admin = await signed_in(browser, base_url, "admin", DESK)
    await expect(admin.locator("#displays li").first).to_contain_text("Waiting hall TV")
    await expect(admin.locator("#users li").first).to_be_visible()
    await admin.screenshot(path=OUT / "admin.png", full_page=True)
    # A Scan & Share counter's poster, as printed for the registration counter.
    counter_id = await pool.fetchval(
        """SELECT c.counter_id FROM abdm_counters c JOIN hospitals h USING (hospital_id)
           WHERE h.code = $1 AND c.context = 'OPD-GEN'""", HOSPITAL_CODE)
    poster = await (await browser.new_context(viewport=SLIP_POSTER, storage_state=await admin.context.storage_state())
                    ).new_page()
    await poster.goto(f"{base_url}/admin/abdm/counters/{counter_id}/qr")
    await expect(poster.locator("#abdm-qr svg")).to_be_visible()
    await poster.evaluate("() => document.fonts.ready")
    await poster.screenshot(path=OUT / "abdm-poster.png", full_page=True)
    await admin.set_viewport_size({"width": 1366, "height": 768})
    await admin.goto(f"{base_url}/operations")
    await expect(admin.locator("#loads tr").first).to_be_visible()
    await admin.screenshot(path=OUT / "operations.png", full_page=True)


if __name__ == "__main__":
    asyncio.run(main())
