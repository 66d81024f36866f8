"""The patient's tracker: check-in by location at the geofence, and what a phone downloads."""

from __future__ import annotations

import asyncpg
import pytest
from playwright.async_api import Response, expect

from app import clock
from tests.support import factory
from tests.support.app_server import AppServer
from tests.web.conftest import NewContext, token_status, tracking_code

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
TRACKER_BUDGET_BYTES = 30 * 1024  # a patient on a slow mobile link: document, CSS, JS and fonts
METRES_PER_DEGREE_LAT = 111_320


async def booked_online(pool: asyncpg.Pool, hospital: factory.Hospital) -> asyncpg.Record:
    # Booked for now, not a few minutes on: just before midnight (18:30 UTC) "later" is tomorrow,
    # when the doctor has no shift.
    token = await factory.issue(pool, hospital, booking_type="ONLINE", scheduled=clock.now())
    assert token["status"] == "BOOKED"
    return token


async def test_check_in_outside_the_geofence_says_how_far_and_what_to_do(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    token = await booked_online(pool, hospital)
    away_m = 1_500
    context = await new_context(**PHONE, permissions=["geolocation"], geolocation={
        "latitude": hospital.latitude + away_m / METRES_PER_DEGREE_LAT, "longitude": hospital.longitude})
    page = await context.new_page()
    await page.goto(f"{server.base_url}/t/{await tracking_code(pool, token['token_id'])}")
    await expect(page.locator("#status")).to_have_text("Booked — check in when you arrive")

    await page.get_by_role("button", name="I have arrived — check in").click()

    message = page.locator("#check-in-message")
    await expect(message).to_contain_text("m away")
    text = await message.inner_text()
    distance = int(text.split("You are ", 1)[1].split(" m away", 1)[0])
    assert abs(distance - away_m) < 20, text
    assert f"within {hospital.radius_m} m of the hospital" in text
    assert "Come closer, or ask at reception." in text
    await expect(page.locator("#status")).to_have_text("Booked — check in when you arrive")
    assert await token_status(pool, token["token_id"]) == "BOOKED"


async def test_check_in_inside_the_geofence_joins_the_queue(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    token = await booked_online(pool, hospital)
    context = await new_context(**PHONE, permissions=["geolocation"], geolocation={
        "latitude": hospital.latitude + 50 / METRES_PER_DEGREE_LAT, "longitude": hospital.longitude})
    page = await context.new_page()
    await page.goto(f"{server.base_url}/t/{await tracking_code(pool, token['token_id'])}")
    await expect(page.locator("#check-in")).to_be_visible()

    await page.get_by_role("button", name="I have arrived — check in").click()

    await expect(page.locator("#status")).to_have_text("In the queue")
    await expect(page.locator("#check-in-message")).to_have_text("You are checked in.")
    await expect(page.locator("#check-in")).to_be_hidden()
    assert await token_status(pool, token["token_id"]) == "CHECKED_IN"


async def test_walking_into_the_geofence_after_a_refusal_checks_in(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    """The patient is told to come closer, does so, and taps again: the new position counts.

    Fails while static/js/tracker.js asks for a position with maximumAge 30000: the second tap
    within 30 s gets the cached, far-away position back and is refused again.
    """
    token = await booked_online(pool, hospital)
    context = await new_context(**PHONE, permissions=["geolocation"], geolocation={
        "latitude": hospital.latitude + 0.01, "longitude": hospital.longitude})
    page = await context.new_page()
    await page.goto(f"{server.base_url}/t/{await tracking_code(pool, token['token_id'])}")
    button = page.get_by_role("button", name="I have arrived — check in")
    await button.click()
    await expect(page.locator("#check-in-message")).to_contain_text("m away")

    await context.set_geolocation({"latitude": hospital.latitude, "longitude": hospital.longitude})
    await button.click()

    await expect(page.locator("#status")).to_have_text("In the queue")
    assert await token_status(pool, token["token_id"]) == "CHECKED_IN"


async def test_tracker_first_load_is_small(server: AppServer, pool: asyncpg.Pool,
                                           hospital: factory.Hospital,
                                           new_context: NewContext) -> None:
    token = await factory.issue(pool, hospital)
    page = await (await new_context(**PHONE)).new_page()
    responses: list[Response] = []
    page.on("response", lambda response: responses.append(response))
    await page.goto(f"{server.base_url}/t/{await tracking_code(pool, token['token_id'])}")
    await expect(page.locator("#status")).to_have_text("In the queue")

    sizes: dict[str, int] = {}
    for response in responses:
        if response.request.resource_type in ("document", "stylesheet", "script", "font"):
            sizes[response.url.replace(server.base_url, "")] = len(await response.body())
    total = sum(sizes.values())
    print(f"\ntracker first load: {total} bytes ({total / 1024:.1f} KiB) in {len(sizes)} files: {sizes}")
    assert {r.split("?")[0].rsplit("/", 1)[-1] for r in sizes} >= {"tracker.css", "live.js", "tracker.js"}
    assert total < TRACKER_BUDGET_BYTES


# A WebSocket that never connects: a network or proxy that blocks them.
NO_WEBSOCKETS = """
window.WebSocket = function () {
  var self = this;
  this.readyState = 3;
  this.send = function () {};
  this.close = function () {};
  setTimeout(function () { if (self.onclose) { self.onclose({}); } }, 10);
};
"""


async def test_tracker_shows_position_and_eta_without_websockets(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    tokens = [await factory.issue(pool, hospital) for _ in range(3)]
    context = await new_context(**PHONE)
    await context.add_init_script(NO_WEBSOCKETS)
    page = await context.new_page()
    await page.goto(f"{server.base_url}/t/{await tracking_code(pool, tokens[2]['token_id'])}")
    # In the page as served: no socket needed.
    await expect(page.locator("#position")).to_have_text("3")
    await expect(page.locator("#eta-range")).to_contain_text("min")
    await expect(page.locator("#status")).to_have_text("In the queue")
    # The doctor calls the first patient: the page learns it by asking the API itself.
    await pool.execute("SELECT * FROM call_next_token($1, NULL)", hospital.doctor.doctor_id)
    await expect(page.locator("#position")).to_have_text("2", timeout=30_000)
    await expect(page.locator("#updated")).to_contain_text("updated")
    await expect(page.locator("#serving")).to_contain_text(tokens[0]["token_number"])


async def test_tracker_opens_in_the_patients_language_with_our_devanagari_font(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    patient_id = await factory.make_patient(pool, hospital)
    await pool.execute("UPDATE patients SET preferred_language = 'hi' WHERE patient_id = $1", patient_id)
    token = await factory.issue(pool, hospital, patient_id=patient_id)
    page = await (await new_context(**PHONE)).new_page()
    await page.goto(f"{server.base_url}/t/{await tracking_code(pool, token['token_id'])}")
    await expect(page.locator("#status")).to_have_text("कतार में")
    await expect(page.locator("#lang")).to_have_text("English")
    # The machine's fonts are out of the picture: the vendored face is what loads, and it shapes
    # Devanagari (a conjunct is narrower than its letters apart; boxes would be wider).
    fonts = await page.evaluate("""async () => {
        await document.fonts.load('40px "OPD Devanagari"', 'न्दी');
        await document.fonts.ready;
        const faces = [...document.fonts].filter(f => f.family.replace(/"/g, '') === 'OPD Devanagari');
        const canvas = document.createElement('canvas').getContext('2d');
        canvas.font = '40px "OPD Devanagari"';
        const width = s => canvas.measureText(s).width;
        return {status: faces.map(f => f.status), conjunct: width('न्दी'),
                apart: width('न') + width('द') + width('ी')};
    }""")
    assert "loaded" in fonts["status"], fonts
    assert fonts["conjunct"] < fonts["apart"], fonts


async def test_the_patient_says_they_will_be_late_then_cancels(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    token = await factory.issue(pool, hospital)
    page = await (await new_context(**PHONE)).new_page()
    await page.goto(f"{server.base_url}/t/{await tracking_code(pool, token['token_id'])}")
    await page.get_by_role("button", name="I'll be late").click()
    await page.locator("#late-pick button[data-minutes='30']").click()
    await expect(page.locator("#self-message")).to_contain_text("about 30 min late")
    late = await pool.fetchrow("""SELECT change_reason, metadata FROM token_history WHERE token_id = $1
                                  AND metadata ? 'running_late_minutes'""", token["token_id"])
    assert late["change_reason"] == "patient: running late, about 30 min"
    assert await pool.fetchval("SELECT token_running_late_until($1) > opd_now()", token["token_id"])
    # Cancelling asks first; "No" keeps the token.
    await page.get_by_role("button", name="Cancel my token").click()
    await page.get_by_role("button", name="No, keep it").click()
    assert await token_status(pool, token["token_id"]) == "CHECKED_IN"
    await page.get_by_role("button", name="Cancel my token").click()
    await page.get_by_role("button", name="Yes, cancel").click()
    await expect(page.locator("#status")).to_have_text("Cancelled")
    await expect(page.locator("#self-service")).to_be_hidden()
    assert await token_status(pool, token["token_id"]) == "CANCELLED"
    reason = await pool.fetchval("""SELECT change_reason FROM token_history WHERE token_id = $1
                                    AND new_status = 'CANCELLED'""", token["token_id"])
    assert reason == "cancelled by the patient (tracker)"


async def test_notify_me_asks_the_browser_and_says_when_notifications_are_blocked(
        server: AppServer, pool: asyncpg.Pool, hospital: factory.Hospital,
        new_context: NewContext) -> None:
    """The button is there while the token can still be called, and a refused permission is
    said, not hidden. (A real subscription needs the browser's own push service, which a test
    machine cannot reach: the server's side is tested in tests/notify/test_web_push.py.)"""
    token = await factory.issue(pool, hospital)
    page = await (await new_context(**PHONE)).new_page()
    await page.goto(f"{server.base_url}/t/{await tracking_code(pool, token['token_id'])}")
    button = page.get_by_role("button", name="Notify me when my turn is near")
    await expect(button).to_be_visible()
    assert await page.evaluate("Notification.permission") != "granted"

    await button.click()

    await expect(page.locator("#push-message")).to_have_text("Notifications are blocked in this browser's settings.")
    await expect(button).to_have_attribute("aria-pressed", "false")
    assert await pool.fetchval("SELECT count(*) FROM push_subscriptions WHERE token_id = $1", token["token_id"]) == 0
    await page.locator("#lang").click()
    await expect(page.get_by_role("button", name="मेरी बारी पास आने पर सूचना दें")).to_be_visible()
