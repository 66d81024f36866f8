"""Web Push to the patient's tracker page (RFC 8030 delivery, RFC 8291 encryption, RFC 8292 VAPID).

A tracker that tapped "Notify me when my turn is near" left its browser's subscription: the push
service's endpoint (Google's, Mozilla's, Apple's, Microsoft's) and the keys to encrypt for it.
Each PUSH message of that token is encrypted for every subscription (http_ece, aes128gcm) and
POSTed to its endpoint, signed with this deployment's VAPID key (py_vapid). Both libraries are
the ones pywebpush is built on (github.com/web-push-libs); the transport is our own httpx client,
like every other provider's, so timeouts and retries are the dispatcher's.

Push is a nudge beside SMS and WhatsApp, never the only channel: a push service keeps a message
only for its TTL, a phone may be asleep, and iPhones deliver Web Push only to a tracker added to
the home screen.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import http_ece
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from app.db.queries import query
from app.notify.providers import _ERROR_TEXT_CHARS, Message, PermanentFailure, RetryableFailure
from app.settings import Settings

# How long a push service keeps an undelivered message (the TTL header, seconds): a call is
# useless after a few minutes; "three ahead" a little longer; news about the day longer still.
TTL_S = {"CALL_NOW": 180, "T_MINUS_3": 600}
DEFAULT_TTL_S = 1800
HIGH_URGENCY = {"CALL_NOW", "T_MINUS_3"}   # wakes a phone in battery saving (RFC 8030 5.3)
VAPID_VALIDITY_S = 12 * 3600                # a VAPID JWT may be valid at most 24 h (RFC 8292 2)

GoneCallback = Callable[[list[str]], Awaitable[None]]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def endpoint_problem(endpoint: str, allowed_hosts: tuple[str, ...]) -> str | None:
    """Why a subscription's endpoint is refused, or None: https (plain http only to a loopback
    development push service), and a host in the allowed list ("*.example.com" for subdomains)."""
    parsed = urllib.parse.urlsplit(endpoint)
    host = (parsed.hostname or "").lower()
    if parsed.scheme not in ("https", "http") or not host:
        return "endpoint must be an https URL of a push service"
    if parsed.scheme == "http" and host not in ("127.0.0.1", "localhost", "::1"):
        return "endpoint must be an https URL of a push service"
    for pattern in allowed_hosts:
        pattern = pattern.lower()
        if host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return None
    return f"push service {host} is not one this hospital sends to"


def key_problem(p256dh: str, auth: str) -> str | None:
    """Why a subscription's keys cannot encrypt a message, or None."""
    try:
        point = b64url_decode(p256dh)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except (ValueError, TypeError):
        return "keys.p256dh is not a base64url P-256 public key"
    try:
        if len(b64url_decode(auth)) != 16:
            return "keys.auth must be 16 bytes, base64url"
    except (ValueError, TypeError):
        return "keys.auth must be 16 bytes, base64url"
    return None


@dataclass(frozen=True)
class VapidKey:
    """This deployment's VAPID key: signs each request; its public half goes to the tracker page
    (applicationServerKey), and a subscription only accepts requests signed with that key."""
    private_pem: str

    @property
    def signer(self) -> Vapid02:
        return Vapid02.from_pem(self.private_pem.encode())

    @property
    def public_key(self) -> str:
        """The uncompressed P-256 point, base64url: what PushManager.subscribe() wants."""
        public = serialization.load_pem_private_key(self.private_pem.encode(), None).public_key()
        return b64url(public.public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint))


def generate_private_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


async def load_vapid_key(pool: asyncpg.Pool, settings: Settings) -> VapidKey:
    """OPD_VAPID_PRIVATE_KEY when set; else the key generated once and kept in the database, so
    every process and node signs with the key the browsers subscribed with."""
    if settings.vapid_private_key:
        return VapidKey(str(settings.vapid_private_key))
    for _ in range(2):  # a concurrent first insert is invisible to this statement's snapshot
        pem = await pool.fetchval(query("vapid_private_key"), generate_private_pem())
        if pem:
            return VapidKey(pem)
    raise RuntimeError("could not read or store the VAPID key (web_push_vapid)")


def vapid_subject(settings: Settings) -> str:
    """The contact push services may write to about our traffic (RFC 8292 2.1)."""
    if settings.vapid_subject:
        return settings.vapid_subject
    base = settings.base_url()
    return base if base.startswith("https://") else "mailto:opd@localhost"


def push_payload(message: Message) -> bytes:
    """What the service worker (static/push-sw.js) shows: the text, the token as the title, the
    tracker to open on a tap, and a tag so a newer message replaces the older on the screen."""
    return json.dumps({
        "title": f"Token {message.token_number}" if message.token_number else "OPD",
        "body": message.message,
        "url": f"/t/{message.tracking_code}" if message.tracking_code else None,
        "tag": str(message.token_id) if message.token_id else str(message.notification_id),
        "urgent": message.event_type in HIGH_URGENCY,
    }, ensure_ascii=False).encode()


def encrypt(payload: bytes, p256dh: str, auth: str) -> bytes:
    """The aes128gcm body of RFC 8291: a fresh sender key and salt per message."""
    return http_ece.encrypt(payload, salt=os.urandom(16), private_key=ec.generate_private_key(ec.SECP256R1()),
                            dh=b64url_decode(p256dh), auth_secret=b64url_decode(auth), version="aes128gcm")


class WebPushProvider:
    """Sends a PUSH message to each of its token's Web Push subscriptions."""

    name = "webpush"

    def __init__(self, client: httpx.AsyncClient, key: VapidKey, subject: str, on_gone: GoneCallback) -> None:
        self._client, self._key, self._subject, self._on_gone = client, key, subject, on_gone
        self._signer = key.signer
        self._headers_by_audience: dict[str, tuple[float, dict[str, str]]] = {}

    def _authorization(self, endpoint: str) -> dict[str, str]:
        """The VAPID header for the endpoint's push service, signed once per service per hour."""
        parts = urllib.parse.urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        cached = self._headers_by_audience.get(audience)
        now = time.time()
        if cached is None or cached[0] < now + 3600:
            expires = now + VAPID_VALIDITY_S
            cached = (expires, self._signer.sign({"aud": audience, "sub": self._subject, "exp": int(expires)}))
            self._headers_by_audience[audience] = cached
        return cached[1]

    async def send(self, message: Message) -> str | None:
        subscriptions = message.web_push or []
        if not subscriptions:
            raise PermanentFailure("no Web Push subscription for this token any more")
        payload = push_payload(message)
        headers = {
            "TTL": str(TTL_S.get(message.event_type, DEFAULT_TTL_S)),
            "Urgency": "high" if message.event_type in HIGH_URGENCY else "normal",
            # One topic per token: a newer message replaces one the phone has not fetched yet.
            "Topic": (message.token_id or message.notification_id).hex,
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
        }
        delivered: list[str] = []
        gone: list[str] = []
        retryable: list[str] = []
        refused: list[str] = []
        for subscription in subscriptions:
            endpoint = subscription["endpoint"]
            body = encrypt(payload, subscription["p256dh"], subscription["auth"])
            try:
                response = await self._client.post(endpoint, content=body,
                                                   headers={**headers, **self._authorization(endpoint)})
            except httpx.TransportError as exc:
                retryable.append(f"{exc.__class__.__name__}")
                continue
            if response.status_code in (404, 410):
                gone.append(endpoint)
            elif response.is_success:
                delivered.append(response.headers.get("Location") or endpoint)
            elif response.status_code == 429 or response.status_code >= 500:
                retryable.append(f"HTTP {response.status_code}")
            else:
                refused.append(f"HTTP {response.status_code}: {response.text[:_ERROR_TEXT_CHARS]}")
        if gone:
            await self._on_gone(gone)
        if delivered:
            return delivered[0]   # the push service's message URL (its Location header)
        if retryable:
            raise RetryableFailure(f"push service unavailable: {'; '.join(retryable)}")
        if refused:
            raise PermanentFailure(f"push service refused: {'; '.join(refused)}")
        raise PermanentFailure("every Web Push subscription of this token has expired (404/410); removed")


def subscription_fields(body: dict[str, Any]) -> tuple[str, str, str]:
    """endpoint, p256dh, auth of a PushSubscription.toJSON() body (shape checked by the API's schema)."""
    return body["endpoint"], body["keys"]["p256dh"], body["keys"]["auth"]
