"""The dispatcher against real PostgreSQL and a real local HTTP provider, run in-process batch by batch."""

from __future__ import annotations

import asyncio
import base64
import json

import asyncpg
import pytest

from app.notify.dispatcher import retry_delay_s
from app.notify.providers import sign
from tests.notify.helpers import WEBHOOK_SECRET, dispatcher, issue, notify_settings, only_row
from tests.notify.provider_server import ProviderServer
from tests.support import factory

pytestmark = pytest.mark.usefixtures("quiet_outbox")


def test_retry_delays_double_from_the_base_up_to_an_hour() -> None:
    assert [retry_delay_s(30, n) for n in range(1, 7)] == [30, 60, 120, 240, 480, 960]
    assert retry_delay_s(30, 12) == 3600


async def test_webhook_send_is_signed_and_marked_sent(
        outbox_pool: asyncpg.Pool, outbox_hospital: factory.Hospital, provider: ProviderServer) -> None:
    token = await issue(outbox_pool, outbox_hospital)
    async with dispatcher(outbox_pool, notify_settings(provider.url)) as d:
        assert await d.run_batch() == 1
    row = await only_row(outbox_pool, token["token_id"])
    assert (row["delivery_status"], row["retry_count"]) == ("SENT", 0)
    assert row["sent_at"] is not None and row["external_id"] == f"ext-{row['notification_id']}"
    [seen] = provider.requests
    assert seen.path == "/hook" and seen.key == str(row["notification_id"])
    assert seen.headers["x-opd-signature"] == sign(WEBHOOK_SECRET, seen.body)
    body = seen.json()
    assert (body["event_type"], body["channel"], body["message"]) == ("TOKEN_CREATED", "SMS", row["message"])
    assert body["to"] == row["phone_number"]


async def test_sms_goes_out_in_twilio_format(
        outbox_pool: asyncpg.Pool, outbox_hospital: factory.Hospital, provider: ProviderServer) -> None:
    # A hospital outside India (country code 44): the text goes as it is. To Indian numbers Twilio
    # sends only DLT-registered texts (tests/notify/test_india.py).
    token = await issue(outbox_pool, outbox_hospital)
    settings = notify_settings(provider.url, notify_provider=("twilio",), notify_country_code="44",
                               public_url="https://opd.example.org")
    async with dispatcher(outbox_pool, settings) as d:
        await d.run_batch()
    row = await only_row(outbox_pool, token["token_id"])
    assert row["delivery_status"] == "SENT" and row["external_id"] == f"SM-{row['notification_id']}"
    [seen] = provider.requests
    assert seen.path == "/2010-04-01/Accounts/AC123/Messages.json"
    assert seen.headers["authorization"] == "Basic " + base64.b64encode(b"AC123:twilio-token").decode()
    assert seen.key == str(row["notification_id"])
    assert seen.form() == {"To": "+44" + row["phone_number"], "From": "+15005550006", "Body": row["message"],
                           "StatusCallback": "https://opd.example.org/api/v1/notifications/receipts/twilio"}


async def test_whatsapp_goes_out_in_cloud_api_format(
        outbox_pool: asyncpg.Pool, outbox_hospital: factory.Hospital, provider: ProviderServer) -> None:
    # No template registered: free text, allowed because the patient wrote within 24 hours
    # (tests/notify/test_india.py covers templates and the closed window).
    token = await issue(outbox_pool, outbox_hospital, sms=False, whatsapp=True)
    phone = await outbox_pool.fetchval("SELECT phone_number FROM notifications_log WHERE token_id = $1",
                                       token["token_id"])
    await outbox_pool.execute("INSERT INTO whatsapp_inbound (message_id, phone, body, received_at) "
                              "VALUES ($1, $2, 'hello', now() - interval '1 hour')", f"wamid.in-{phone}", phone)
    settings = notify_settings(provider.url, notify_provider=("whatsapp", "webhook"))
    async with dispatcher(outbox_pool, settings) as d:
        await d.run_batch()
    row = await only_row(outbox_pool, token["token_id"])
    assert row["channel"] == "WHATSAPP" and row["delivery_status"] == "SENT"
    assert row["external_id"] == f"wamid-{row['notification_id']}"
    [seen] = provider.requests
    assert seen.path == "/v21.0/10655/messages"
    assert seen.headers["authorization"] == "Bearer wa-token" and seen.key == str(row["notification_id"])
    assert seen.json() == {"messaging_product": "whatsapp", "to": "91" + row["phone_number"], "type": "text",
                           "text": {"body": row["message"]}}


async def test_server_error_is_retried_after_a_backoff(
        outbox_pool: asyncpg.Pool, outbox_hospital: factory.Hospital, provider: ProviderServer) -> None:
    token = await issue(outbox_pool, outbox_hospital)
    provider.script(500)
    async with dispatcher(outbox_pool, notify_settings(provider.url)) as d:
        await d.run_batch()
        row = await only_row(outbox_pool, token["token_id"])
        assert (row["delivery_status"], row["retry_count"]) == ("PENDING", 1)
        assert "HTTP 500" in row["failed_reason"]
        assert await outbox_pool.fetchval("SELECT $1 > now() + interval '20 seconds'", row["next_attempt_at"])
        await d.run_batch()
        assert len(provider.requests) == 1  # not due yet
        await outbox_pool.execute(  # the 30 s backoff has passed
            "UPDATE notifications_log SET next_attempt_at = now() WHERE notification_id = $1",
            row["notification_id"])
        await d.run_batch()
    row = await only_row(outbox_pool, token["token_id"])
    assert (row["delivery_status"], row["retry_count"], row["failed_reason"]) == ("SENT", 1, None)
    assert provider.keys() == [str(row["notification_id"])] * 2


async def test_timeout_is_retryable(
        outbox_pool: asyncpg.Pool, outbox_hospital: factory.Hospital, provider: ProviderServer) -> None:
    token = await issue(outbox_pool, outbox_hospital)
    provider.script("hold")
    settings = notify_settings(provider.url, notify_timeout_s=0.5, notify_retry_base_s=0.0)
    async with dispatcher(outbox_pool, settings) as d:
        await d.run_batch()
        row = await only_row(outbox_pool, token["token_id"])
        assert (row["delivery_status"], row["retry_count"]) == ("PENDING", 1)
        assert "timed out" in row["failed_reason"]
        provider.release.set()
        await d.run_batch()
    row = await only_row(outbox_pool, token["token_id"])
    assert (row["delivery_status"], row["retry_count"]) == ("SENT", 1)


@pytest.mark.parametrize(("status", "outcome"), [(400, "FAILED"), (404, "FAILED"), (429, "PENDING"),
                                                 (503, "PENDING")])
async def test_client_errors_are_permanent_except_429(
        outbox_pool: asyncpg.Pool, outbox_hospital: factory.Hospital, provider: ProviderServer,
        status: int, outcome: str) -> None:
    token = await issue(outbox_pool, outbox_hospital)
    provider.script(status)
    async with dispatcher(outbox_pool, notify_settings(provider.url, notify_retry_base_s=0.0)) as d:
        await d.run_batch()
    row = await only_row(outbox_pool, token["token_id"])
    assert row["delivery_status"] == outcome and f"HTTP {status}" in row["failed_reason"]
    assert row["retry_count"] == (0 if outcome == "FAILED" else 1)


async def test_gives_up_after_the_last_retry(
        outbox_pool: asyncpg.Pool, outbox_hospital: factory.Hospital, provider: ProviderServer) -> None:
    token = await issue(outbox_pool, outbox_hospital)
    provider.script(500, 502, 503, 504)
    settings = notify_settings(provider.url, notify_retry_base_s=0.0, notify_max_retries=2)
    async with dispatcher(outbox_pool, settings) as d:
        for _ in range(4):
            await d.run_batch()
    row = await only_row(outbox_pool, token["token_id"])
    assert (row["delivery_status"], row["retry_count"]) == ("FAILED", 2)
    assert row["failed_reason"].startswith("gave up after 2 retries") and "HTTP 503" in row["failed_reason"]
    assert len(provider.requests) == 3


async def test_two_dispatchers_never_send_the_same_message(
        outbox_pool: asyncpg.Pool, outbox_hospital: factory.Hospital, provider: ProviderServer) -> None:
    tokens = [await issue(outbox_pool, outbox_hospital, whatsapp=True) for _ in range(8)]
    settings = notify_settings(provider.url)
    async with dispatcher(outbox_pool, settings) as one, dispatcher(outbox_pool, settings) as two:
        await asyncio.gather(one.run_batch(), two.run_batch(), one.run_batch(), two.run_batch())
    ids = {str(r["notification_id"]) for t in tokens
           for r in await outbox_pool.fetch("SELECT notification_id FROM notifications_log WHERE token_id = $1",
                                            t["token_id"])}
    assert len(ids) == 16
    assert await outbox_pool.fetchval(
        "SELECT bool_and(delivery_status = 'SENT') FROM notifications_log WHERE notification_id = ANY($1::uuid[])",
        list(ids))
    assert sorted(provider.keys()) == sorted(ids)  # each exactly once
    assert {json.loads(s.body)["channel"] for s in provider.requests} == {"SMS", "WHATSAPP"}
