"""Through the running app: a token issued over the API reaches the webhook, and providers report
back on POST /api/v1/notifications/receipts (HMAC-signed)."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from app.notify.providers import sign
from tests.notify.helpers import WEBHOOK_SECRET, issue
from tests.notify.provider_server import ProviderServer, eventually
from tests.support import factory
from tests.support.app_server import AppServer

RECEIPTS = "/api/v1/notifications/receipts"


@pytest.fixture(scope="module")
def webhook() -> Iterator[ProviderServer]:
    server = ProviderServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app_server(outbox_dsn: str, webhook: ProviderServer) -> Iterator[AppServer]:
    """The app with the webhook provider; it lives for this module only, so its dispatcher never
    competes with the in-process dispatchers of the other modules."""
    server = AppServer(outbox_dsn, None, namespace=f"opdnotify{secrets.token_hex(4)}", extra_env={
        "OPD_NOTIFY_PROVIDER": "webhook", "OPD_NOTIFY_WEBHOOK_URL": f"{webhook.url}/hook",
        "OPD_NOTIFY_WEBHOOK_SECRET": WEBHOOK_SECRET, "OPD_NOTIFY_POLL_S": "0.2"}).start()
    yield server
    server.stop()


@pytest.fixture
async def http(app_server: AppServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=app_server.base_url, timeout=15) as client:
        yield client


async def sent_row(pool: asyncpg.Pool, token_id: uuid.UUID, event: str = "TOKEN_CREATED") -> asyncpg.Record:
    """The token's message about event, once the app's dispatcher has sent it."""
    row: asyncpg.Record = await eventually(lambda: pool.fetchrow(
        """SELECT * FROM notifications_log
           WHERE token_id = $1 AND event_type = $2 AND delivery_status = 'SENT'""", token_id, event),
        what="the app to send the message")
    return row


async def post_receipt(http: httpx.AsyncClient, body: dict[str, Any], secret: str = WEBHOOK_SECRET,
                       signature: str | None = None) -> httpx.Response:
    raw = json.dumps(body).encode()
    return await http.post(RECEIPTS, content=raw, headers={
        "Content-Type": "application/json", "X-OPD-Signature": signature or sign(secret, raw)})


async def test_token_issued_over_the_api_reaches_the_webhook(
        app_server: AppServer, webhook: ProviderServer, outbox_pool: asyncpg.Pool,
        outbox_hospital: factory.Hospital) -> None:
    async with httpx.AsyncClient(base_url=app_server.base_url, timeout=15, headers={
            "Authorization": f"Bearer {outbox_hospital.keys['receptionist']}"}) as staff:
        response = await staff.post("/api/v1/tokens", json={
            "doctor_id": str(outbox_hospital.doctor.doctor_id),
            "patient": {"name": "Ravi Shankar", "phone": "9876543210", "sms_opt_in": True,
                        "whatsapp_opt_in": False}})
    assert response.status_code == 201, response.text
    token = response.json()

    def delivered() -> list[Any]:
        return [s for s in webhook.requests  # (the engine may add T_MINUS_3: first in line)
                if (s.json()["token_id"], s.json()["event_type"]) == (token["token_id"], "TOKEN_CREATED")]
    [seen] = await eventually(delivered, what="the webhook to receive TOKEN_CREATED")
    body = seen.json()
    assert (body["event_type"], body["channel"], body["to"]) == ("TOKEN_CREATED", "SMS", "+919876543210")
    assert token["token_number"] in body["message"]
    assert body["message"].endswith(f"{app_server.base_url}/t/{token['tracking_code']}")  # public_url
    assert seen.headers["x-opd-signature"] == sign(WEBHOOK_SECRET, seen.body)
    row = await sent_row(outbox_pool, uuid.UUID(token["token_id"]), "TOKEN_CREATED")
    assert seen.key == str(row["notification_id"]) and row["external_id"] == f"ext-{seen.key}"


async def test_receipts_mark_messages_delivered_or_failed(
        app_server: AppServer, http: httpx.AsyncClient, outbox_pool: asyncpg.Pool,
        outbox_hospital: factory.Hospital) -> None:
    first = await sent_row(outbox_pool, (await issue(outbox_pool, outbox_hospital))["token_id"])
    second = await sent_row(outbox_pool, (await issue(outbox_pool, outbox_hospital))["token_id"])

    response = await post_receipt(http, {"external_id": first["external_id"], "status": "DELIVERED"})
    assert response.status_code == 200, response.text
    assert response.json() == {"notification_id": str(first["notification_id"]), "delivery_status": "DELIVERED"}
    response = await post_receipt(http, {"notification_id": str(second["notification_id"]), "status": "FAILED",
                                         "reason": "handset unreachable"})
    assert response.status_code == 200, response.text
    rows = {r["notification_id"]: r for r in await outbox_pool.fetch(
        "SELECT * FROM notifications_log WHERE notification_id = ANY($1::uuid[])",
        [first["notification_id"], second["notification_id"]])}
    assert rows[first["notification_id"]]["delivery_status"] == "DELIVERED"
    assert rows[first["notification_id"]]["delivered_at"] is not None
    assert (rows[second["notification_id"]]["delivery_status"], rows[second["notification_id"]]["failed_reason"]) \
        == ("FAILED", "handset unreachable")

    # Providers repeat callbacks: the same answer is fine, a contradicting one is refused.
    again = await post_receipt(http, {"external_id": first["external_id"], "status": "DELIVERED"})
    assert again.status_code == 200
    contradiction = await post_receipt(http, {"external_id": first["external_id"], "status": "FAILED"})
    assert contradiction.status_code == 409
    assert contradiction.json()["error"]["delivery_status"] == "DELIVERED"


async def test_receipts_with_a_bad_signature_or_body_change_nothing(
        app_server: AppServer, http: httpx.AsyncClient, outbox_pool: asyncpg.Pool,
        outbox_hospital: factory.Hospital) -> None:
    row = await sent_row(outbox_pool, (await issue(outbox_pool, outbox_hospital))["token_id"])
    body = {"notification_id": str(row["notification_id"]), "status": "DELIVERED"}
    refused = [
        (await post_receipt(http, body, secret="not-the-secret"), 401),
        (await post_receipt(http, body, signature="sha256=" + "0" * 64), 401),
        (await http.post(RECEIPTS, json=body), 401),
        (await post_receipt(http, {**body, "status": "SENT"}), 422),
        (await post_receipt(http, {**body, "external_id": "x"}), 422),
        (await post_receipt(http, {"status": "DELIVERED"}), 422),
        (await post_receipt(http, {**body, "notification_id": str(uuid.uuid4())}), 404),
        (await post_receipt(http, {"external_id": "no-such-id", "status": "FAILED"}), 404),
    ]
    for response, status in refused:
        assert response.status_code == status, response.text
        assert response.json()["error"]["message"]
    assert await outbox_pool.fetchval(
        "SELECT delivery_status FROM notifications_log WHERE notification_id = $1", row["notification_id"]) == "SENT"
