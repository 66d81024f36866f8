"""Each message as each provider would receive it, without sending anything.

A hospital setting up DLT templates and WhatsApp templates needs to see the exact request a
gateway will get — the template IDs, the PE ID, the variables in order, the text the operator's
scrubber compares — before the first patient is waiting for it. This builds the message the real
way (enqueue_notification() on one of the hospital's tokens, in a transaction that is rolled
back) and hands it to every provider of its channel, whose HTTP client is given a transport that
records the request and never reaches the network. Credentials are placeholders: the preview never
shows a secret.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import urllib.parse
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.notify.events import MESSAGE_EVENTS
from app.notify.india_sms import ExotelProvider, GupshupProvider, Msg91Provider
from app.notify.providers import Message, PermanentFailure, Provider, TwilioProvider, WhatsAppProvider
from app.notify.web_push import VapidKey, WebPushProvider, b64url, generate_private_pem, push_payload
from app.settings import Secret, Settings

EVENTS = tuple(MESSAGE_EVENTS)
# What the queue engine passes with T_MINUS_3 and DELAYED; sample values for the preview.
SAMPLE_VARIABLES = {"position": "3", "eta": "15", "low": "10", "high": "25", "by": "10:40"}
PREVIEW_PUSH_ENDPOINT = "https://fcm.googleapis.com/fcm/send/preview-only"


class PreviewError(ValueError):
    """The preview cannot be made (no token to build it from, unknown event)."""


@dataclass(frozen=True)
class PreviewedRequest:
    provider: str
    channel: str
    refused: str | None          # why the provider would refuse to send (nothing would go out)
    method: str | None = None
    url: str | None = None
    headers: dict[str, str] | None = None
    body: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _placeholder_settings(settings: Settings) -> Settings:
    """The real base URLs and sender settings, every credential a named placeholder."""
    def ph(name: str) -> Secret:
        return Secret(f"<{name}>")
    return dataclasses.replace(
        settings,
        twilio_account_sid=settings.twilio_account_sid or "<OPD_TWILIO_ACCOUNT_SID>",
        twilio_auth_token=ph("OPD_TWILIO_AUTH_TOKEN"),
        twilio_from=settings.twilio_from or "<OPD_TWILIO_FROM>",
        whatsapp_phone_number_id=settings.whatsapp_phone_number_id or "<OPD_WHATSAPP_PHONE_NUMBER_ID>",
        whatsapp_token=ph("OPD_WHATSAPP_TOKEN"),
        msg91_authkey=ph("OPD_MSG91_AUTHKEY"),
        exotel_sid=settings.exotel_sid or "<OPD_EXOTEL_SID>",
        exotel_api_key=settings.exotel_api_key or "<OPD_EXOTEL_API_KEY>",
        exotel_api_token=ph("OPD_EXOTEL_API_TOKEN"),
        gupshup_userid=settings.gupshup_userid or "<OPD_GUPSHUP_USERID>",
        gupshup_password=ph("OPD_GUPSHUP_PASSWORD"),
        notify_receipt_token=ph("OPD_NOTIFY_RECEIPT_TOKEN"),
    )


def _providers(channel: str, settings: Settings, client: httpx.AsyncClient) -> list[Provider]:
    if channel == "SMS":
        return [Msg91Provider(client, settings), ExotelProvider(client, settings),
                GupshupProvider(client, settings), TwilioProvider(client, settings)]
    if channel == "WHATSAPP":
        return [WhatsAppProvider(client, settings)]
    if channel == "PUSH":
        async def nothing_gone(endpoints: list[str]) -> None:
            return None
        # A throwaway key: the preview's signature is for no real subscription.
        return [WebPushProvider(client, VapidKey(generate_private_pem()), "mailto:opd@localhost", nothing_gone)]
    return []


def _shown_headers(request: httpx.Request) -> dict[str, str]:
    shown = {}
    for name, value in request.headers.items():
        if name in ("content-length", "accept", "accept-encoding", "connection", "user-agent", "host"):
            continue
        if name == "authorization" and value.startswith("Basic "):
            value = "Basic base64(" + base64.b64decode(value[6:]).decode() + ")"
        shown[name] = value
    return shown


def _shown_body(request: httpx.Request, message: Message) -> str:
    if request.headers.get("content-encoding") == "aes128gcm":
        return (f"(aes128gcm, {len(request.content)} bytes, readable only by the subscribed browser) of:\n"
                + json.dumps(json.loads(push_payload(message)), ensure_ascii=False, indent=2))
    text = request.content.decode()
    if request.headers.get("content-type", "").startswith("application/json"):
        return json.dumps(json.loads(text), ensure_ascii=False, indent=2)
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return "\n".join(f"{k}={v}" for k, v in httpx.QueryParams(text).multi_items())
    return text


# A success answer in each provider's own shape, so each send() completes as it would.
_ANSWER = {"id": "preview", "sid": "preview", "messages": [{"id": "preview"}], "type": "success",
           "message": "preview", "SMSMessage": {"Sid": "preview"}, "response": {"status": "success", "id": "preview"}}


async def _capture(provider: Provider, message: Message, client_box: list[httpx.Request]) -> PreviewedRequest:
    client_box.clear()
    try:
        await provider.send(message)
    except PermanentFailure as exc:
        return PreviewedRequest(provider.name, message.channel, refused=str(exc))
    if not client_box:
        return PreviewedRequest(provider.name, message.channel, refused="no request made")
    request = client_box[-1]
    return PreviewedRequest(provider.name, message.channel, refused=None, method=request.method,
                            url=urllib.parse.unquote(str(request.url)), headers=_shown_headers(request),
                            body=_shown_body(request, message))


def _browser_keys() -> tuple[str, str]:
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return b64url(point), b64url(os.urandom(16))


async def preview_messages(pool: asyncpg.Pool, settings: Settings, hospital_id: Any, event: str,
                           language: str) -> list[PreviewedRequest]:
    """Every request the hospital's message for `event` in `language` would make, per provider."""
    if event not in EVENTS:
        raise PreviewError(f"event must be one of {', '.join(EVENTS)}")
    if language not in ("en", "hi"):
        raise PreviewError("language must be en or hi")
    p256dh, auth = _browser_keys()
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            rows = await conn.fetch("SELECT * FROM preview_notification_rows($1, $2, $3, $4, $5, $6, $7)",
                                    hospital_id, event, language, SAMPLE_VARIABLES, PREVIEW_PUSH_ENDPOINT,
                                    p256dh, auth)
        finally:
            await transaction.rollback()   # nothing of the preview stays: no row, no consent, no NOTIFY
    if not rows:
        raise PreviewError("the hospital has no token yet to build a message from: issue one first")
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json=_ANSWER)

    shown_settings = _placeholder_settings(settings)
    results: list[PreviewedRequest] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as client:
        for row in rows:
            message = Message(**dict(row.items()))
            for provider in _providers(message.channel, shown_settings, client):
                results.append(await _capture(provider, message, requests))
    return results


def format_preview(results: list[PreviewedRequest]) -> str:
    """The CLI's text: one block per provider."""
    blocks = []
    for r in results:
        head = f"== {r.channel} via {r.provider}"
        if r.refused:
            blocks.append(f"{head}: NOT SENT — {r.refused}")
            continue
        headers = "\n".join(f"{k}: {v}" for k, v in (r.headers or {}).items())
        blocks.append(f"{head}\n{r.method} {r.url}\n{headers}\n\n{r.body}")
    return "\n\n".join(blocks)
