"""Web Push from the tracker (RFC 8030/8291/8292): the subscription the tracker hands over, checked;
the request a push service receives for each message (headers, VAPID signature, a body only the
subscriber's keys decrypt); gone subscriptions dropped; consent by subscription."""

from __future__ import annotations

import base64
import json
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import http_ece
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from app.notify.web_push import load_vapid_key
from tests.notify.helpers import dispatcher, issue, notify_settings, outbox_rows
from tests.notify.provider_server import ProviderServer
from tests.support import factory
from tests.support.app_server import AppServer


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Browser:
    """What a browser keeps for one push subscription: its key pair and auth secret."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)

    def subscription(self) -> dict[str, object]:
        point = self.key.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": b64url(point), "auth": b64url(self.auth)}}

    def decrypt(self, body: bytes) -> dict[str, object]:
        data: dict[str, object] = json.loads(http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth,
                                                              version="aes128gcm"))
        return data


@pytest.fixture(scope="module")
def push_server(outbox_dsn: str) -> Iterator[AppServer]:
    """The app, accepting the local test push service (plain http on loopback) besides the
    default hosts; its own dispatcher looks once an hour, the tests send with their own."""
    server = AppServer(outbox_dsn, None, namespace=f"opdpush{secrets.token_hex(4)}", extra_env={
        "OPD_NOTIFY_POLL_S": "3600", "OPD_WEB_PUSH_HOSTS": "127.0.0.1,fcm.googleapis.com"}).start()
    yield server
    server.stop()


@pytest.fixture
async def http(push_server: AppServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=push_server.base_url, timeout=15) as client:
        yield client


async def subscribe(http: httpx.AsyncClient, pool: asyncpg.Pool, token_id: uuid.UUID,
                    browser: Browser) -> httpx.Response:
    code = await pool.fetchval("SELECT tracking_code FROM tokens WHERE token_id = $1", token_id)
    return await http.post(f"/api/v1/track/{code}/push-subscriptions", json=browser.subscription())


async def subscriptions(pool: asyncpg.Pool, token_id: uuid.UUID) -> list[str]:
    return [r["endpoint"] for r in await pool.fetch(
        "SELECT endpoint FROM push_subscriptions WHERE token_id = $1 ORDER BY created_at", token_id)]


async def test_a_call_reaches_the_push_service_encrypted_and_signed(
        http: httpx.AsyncClient, outbox_pool: asyncpg.Pool, outbox_hospital: factory.Hospital,
        provider: ProviderServer, quiet_outbox: None) -> None:
    token = await issue(outbox_pool, outbox_hospital, sms=False)
    browser = Browser(f"{provider.url}/push/fcm-{secrets.token_hex(6)}")
    response = await subscribe(http, outbox_pool, token["token_id"], browser)
    assert response.status_code == 201, response.text

    await outbox_pool.execute("SELECT enqueue_notification($1, 'CALL_NOW')", token["token_id"])
    settings = notify_settings(provider.url, notify_provider=("log",), web_push_hosts=("127.0.0.1",))
    async with dispatcher(outbox_pool, settings) as sender:
        assert await sender.run_batch() == 1

    [seen] = provider.requests
    assert seen.path == urllib_path(browser.endpoint)
    headers = seen.headers
    assert headers["ttl"] == "180" and headers["urgency"] == "high"
    assert headers["topic"] == token["token_id"].hex            # a newer message replaces an undelivered one
    assert headers["content-encoding"] == "aes128gcm"
    # RFC 8292: "vapid t=<JWT for this push service>, k=<our public key>"
    assert Vapid02.verify(headers["authorization"])
    key = await load_vapid_key(outbox_pool, settings)
    assert headers["authorization"].endswith(f"k={key.public_key}")
    claims = json.loads(b64url_decode(headers["authorization"].split("t=", 1)[1].split(",")[0].split(".")[1]))
    assert claims["aud"] == provider.url and claims["sub"].startswith(("mailto:", "https://"))

    payload = browser.decrypt(seen.body)
    [row] = await outbox_rows(outbox_pool, token["token_id"])
    assert row["channel"] == "PUSH" and row["delivery_status"] == "SENT"
    assert payload["body"] == row["message"] and token["token_number"] in str(payload["title"])
    assert payload["url"] == f"/t/{token['tracking_code']}" and payload["urgent"] is True


def urllib_path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


async def test_a_gone_subscription_is_dropped_and_an_outage_retried(
        http: httpx.AsyncClient, outbox_pool: asyncpg.Pool, outbox_hospital: factory.Hospital,
        provider: ProviderServer, quiet_outbox: None) -> None:
    token = await issue(outbox_pool, outbox_hospital, sms=False)
    kept, dropped = Browser(f"{provider.url}/push/kept"), Browser(f"{provider.url}/push/dropped")
    for browser in (kept, dropped):
        assert (await subscribe(http, outbox_pool, token["token_id"], browser)).status_code == 201
    settings = notify_settings(provider.url, notify_provider=("log",))

    # The push service is down: retried later, nothing dropped.
    await outbox_pool.execute("SELECT enqueue_notification($1, 'T_MINUS_3')", token["token_id"])
    provider.script(503, 503)
    async with dispatcher(outbox_pool, settings) as sender:
        await sender.run_batch()
    [row] = await outbox_rows(outbox_pool, token["token_id"])
    assert row["delivery_status"] == "PENDING" and row["retry_count"] == 1
    assert "503" in row["failed_reason"]
    assert len(await subscriptions(outbox_pool, token["token_id"])) == 2

    # One browser unsubscribed (410): that subscription goes; the other still gets the message.
    await outbox_pool.execute("UPDATE notifications_log SET next_attempt_at = opd_now() WHERE token_id = $1",
                              token["token_id"])
    provider.script(410)   # the newest subscription is tried first
    async with dispatcher(outbox_pool, settings) as sender:
        await sender.run_batch()
    [row] = await outbox_rows(outbox_pool, token["token_id"])
    assert row["delivery_status"] == "SENT"
    assert await subscriptions(outbox_pool, token["token_id"]) == [kept.endpoint]
    assert kept.decrypt(provider.requests[-1].body)["body"] == row["message"]

    # The last one expires too: the message fails with the reason, and no subscription is left.
    await outbox_pool.execute("SELECT enqueue_notification($1, 'CALL_NOW')", token["token_id"])
    provider.script(404)
    async with dispatcher(outbox_pool, settings) as sender:
        await sender.run_batch()
    call_now = [r for r in await outbox_rows(outbox_pool, token["token_id"]) if r["event_type"] == "CALL_NOW"][0]
    assert call_now["delivery_status"] == "FAILED" and "expired" in call_now["failed_reason"]
    assert await subscriptions(outbox_pool, token["token_id"]) == []


async def test_no_subscription_no_push(outbox_pool: asyncpg.Pool, outbox_hospital: factory.Hospital) -> None:
    token = await issue(outbox_pool, outbox_hospital, sms=True)
    await outbox_pool.execute("SELECT enqueue_notification($1, 'CALL_NOW')", token["token_id"])
    assert {r["channel"] for r in await outbox_rows(outbox_pool, token["token_id"])} == {"SMS"}


@pytest.mark.parametrize(("change", "field", "says"), [
    ({"endpoint": "https://internal.example.org/push/x"}, "endpoint", "not one this hospital sends to"),
    ({"endpoint": "http://fcm.googleapis.com/fcm/send/x"}, "endpoint", "https"),
    ({"endpoint": "http://10.0.0.7:8080/push/x"}, "endpoint", "https"),
    ({"keys": {"p256dh": "A" * 87, "auth": "B" * 22}}, "keys", "P-256"),
    ({"keys": {"p256dh": None, "auth": "B" * 22}}, "keys.p256dh", ""),
])
async def test_an_unusable_subscription_is_refused_with_the_reason(
        http: httpx.AsyncClient, outbox_pool: asyncpg.Pool, outbox_hospital: factory.Hospital,
        provider: ProviderServer, change: dict[str, object], field: str, says: str) -> None:
    token = await issue(outbox_pool, outbox_hospital)
    code = await outbox_pool.fetchval("SELECT tracking_code FROM tokens WHERE token_id = $1", token["token_id"])
    body = {**Browser(f"{provider.url}/push/x").subscription(), **change}
    response = await http.post(f"/api/v1/track/{code}/push-subscriptions", json=body)
    assert response.status_code in (400, 422), response.text
    error = response.json()["error"]
    assert field in (error.get("field") or "") and says in error["message"], error
    assert await subscriptions(outbox_pool, token["token_id"]) == []


async def test_a_closed_token_takes_no_subscription_and_stop_forgets_it(
        http: httpx.AsyncClient, outbox_pool: asyncpg.Pool, outbox_hospital: factory.Hospital,
        provider: ProviderServer) -> None:
    token = await issue(outbox_pool, outbox_hospital)
    code = await outbox_pool.fetchval("SELECT tracking_code FROM tokens WHERE token_id = $1", token["token_id"])
    browser = Browser(f"{provider.url}/push/stop")
    assert (await subscribe(http, outbox_pool, token["token_id"], browser)).status_code == 201
    assert (await subscribe(http, outbox_pool, token["token_id"], browser)).status_code == 201  # same: kept once
    assert await subscriptions(outbox_pool, token["token_id"]) == [browser.endpoint]

    response = await http.request("DELETE", f"/api/v1/track/{code}/push-subscriptions",
                                  json={"endpoint": browser.endpoint})
    assert response.status_code == 200 and response.json() == {"subscribed": False}
    assert await subscriptions(outbox_pool, token["token_id"]) == []

    await outbox_pool.execute("SELECT 1 FROM set_token_status($1, 'CANCELLED', NULL, 'test', NULL)",
                              token["token_id"])
    response = await subscribe(http, outbox_pool, token["token_id"], browser)
    assert response.status_code == 409 and "closed" in response.json()["error"]["message"]
    assert (await http.post("/api/v1/track/" + "x" * 20 + "/push-subscriptions",
                            json=browser.subscription())).status_code == 404


async def test_the_service_worker_and_the_manifest_are_served_for_the_tracker(
        http: httpx.AsyncClient, outbox_pool: asyncpg.Pool, outbox_hospital: factory.Hospital) -> None:
    worker = await http.get("/push-sw.js")
    assert worker.status_code == 200 and worker.headers["content-type"].startswith("text/javascript")
    assert "showNotification" in worker.text and "notificationclick" in worker.text

    token = await issue(outbox_pool, outbox_hospital)
    code = await outbox_pool.fetchval("SELECT tracking_code FROM tokens WHERE token_id = $1", token["token_id"])
    manifest = await http.get(f"/t/{code}/manifest.webmanifest")
    assert manifest.status_code == 200 and manifest.headers["content-type"].startswith("application/manifest+json")
    assert manifest.json()["start_url"] == f"/t/{code}" and manifest.json()["display"] == "standalone"
    page = await http.get(f"/t/{code}")
    key = await load_vapid_key(outbox_pool, notify_settings("http://unused"))
    assert f'data-vapid="{key.public_key}"' in page.text
