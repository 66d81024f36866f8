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
TRACKER_BUDGET_BYTES = 100 * 1024  # a patient on a slow mobile link: document + CSS + JS
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
        if response.request.resource_type in ("document", "stylesheet", "script"):
            sizes[response.url.replace(server.base_url, "")] = len(await response.body())
    total = sum(sizes.values())
    print(f"\ntracker first load: {total} bytes ({total / 1024:.1f} KiB) in {len(sizes)} files: {sizes}")
    assert {r.split("?")[0].rsplit("/", 1)[-1] for r in sizes} >= {"tracker.css", "live.js", "tracker.js"}
    assert total < TRACKER_BUDGET_BYTES
