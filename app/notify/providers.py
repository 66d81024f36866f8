"""Where patient messages go: one small class per provider, chosen per channel by configuration.

Every send carries the message's notification_id as its idempotency key, so a message sent again
after a dispatcher died mid-send can be recognised by the provider. A provider either returns the
provider's own message id (or None) or raises RetryableFailure / PermanentFailure.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from app.settings import Settings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-OPD-Signature"
KNOWN_PROVIDERS = ("log", "webhook", "twilio", "msg91", "exotel", "gupshup", "whatsapp")
SMS_PROVIDERS = ("twilio", "msg91", "exotel", "gupshup")  # at most one of them carries the SMS
_ERROR_TEXT_CHARS = 300  # of a provider's error body kept in failed_reason


class RetryableFailure(Exception):
    """The provider may accept the same message later (5xx, 429, timeout, connection error)."""


class PermanentFailure(Exception):
    """Sending again would fail the same way (4xx, missing phone number)."""


class NotifyConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Message:
    notification_id: uuid.UUID
    patient_id: uuid.UUID
    token_id: uuid.UUID | None
    channel: str
    event_type: str
    language: str
    message: str
    phone_number: str | None
    retry_count: int
    push_token: str | None = None
    variables: list[dict[str, str]] | None = None   # [{name, value}] in the text's order
    registration: dict[str, Any] | None = None      # the hospital's registered identifiers, if any
    window_open: bool = False                       # WhatsApp: the patient wrote within 24 h
    web_push: list[dict[str, str]] | None = None    # PUSH: the token's subscriptions (app/notify/web_push.py)
    token_number: str | None = None                 # PUSH: the notification's title
    tracking_code: str | None = None                # PUSH: the tracker a tap opens

    @property
    def idempotency_key(self) -> str:
        return str(self.notification_id)


class Provider(Protocol):
    name: str

    async def send(self, message: Message) -> str | None: ...


def sign(secret: str, body: bytes) -> str:
    """The X-OPD-Signature value of body: `sha256=<hex HMAC-SHA256>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, body: bytes, header: str | None) -> bool:
    return header is not None and hmac.compare_digest(sign(secret, body), header.strip())


def e164(phone: str, country_code: str) -> str:
    """+<country><number>; stored numbers without a leading + are national numbers."""
    return phone if phone.startswith("+") else f"+{country_code}{phone.lstrip('0')}"


def _need_phone(message: Message) -> str:
    if not message.phone_number:
        raise PermanentFailure(f"{message.channel} message without a phone number")
    return message.phone_number


async def _post(client: httpx.AsyncClient, url: str, message: Message, **kwargs: Any) -> httpx.Response:
    """POST and sort the outcome into success, retryable or permanent."""
    headers = {"Idempotency-Key": message.idempotency_key, **kwargs.pop("headers", {})}
    try:
        response = await client.post(url, headers=headers, **kwargs)
    except httpx.TimeoutException as exc:
        raise RetryableFailure(f"timed out ({exc.__class__.__name__})") from exc
    except httpx.TransportError as exc:
        raise RetryableFailure(f"connection error ({exc.__class__.__name__}: {exc})") from exc
    if response.is_success:
        return response
    detail = f"HTTP {response.status_code}: {response.text[:_ERROR_TEXT_CHARS]}"
    if response.status_code == 429 or response.status_code >= 500:
        raise RetryableFailure(detail)
    raise PermanentFailure(detail)


def _json_field(response: httpx.Response, *path: str | int) -> str | None:
    """A value deep in a JSON response, or None (a provider owes us no particular body)."""
    try:
        value: Any = response.json()
        for step in path:
            value = value[step]
    except (ValueError, LookupError, TypeError):
        return None
    return str(value) if value is not None else None


class LogProvider:
    """No provider configured (a demo, development): each message is logged, or appended to a
    file (OPD_NOTIFY_LOG_FILE; the demo's var/messages.log, so hundreds of messages do not bury
    the server's own log)."""

    name = "log"

    def __init__(self, path: Path | None = None) -> None:
        self._path = path

    async def send(self, message: Message) -> str | None:
        # No phone number or device token: logs are read by more people than the outbox.
        line = f"notification {message.notification_id} {message.channel} {message.event_type}: {message.message}"
        if self._path is None:
            log.info("%s", line)
        else:
            with self._path.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
        return None


class WebhookProvider:
    name = "webhook"

    def __init__(self, client: httpx.AsyncClient, url: str, secret: str) -> None:
        self._client, self._url, self._secret = client, url, secret

    async def send(self, message: Message) -> str | None:
        body = json.dumps({
            "notification_id": str(message.notification_id),
            "patient_id": str(message.patient_id),
            "token_id": str(message.token_id) if message.token_id else None,
            "channel": message.channel,
            "event_type": message.event_type,
            "language": message.language,
            "to": message.phone_number,
            "push_token": message.push_token,
            "message": message.message,
        }, ensure_ascii=False).encode()
        response = await _post(self._client, self._url, message, content=body, headers={
            "Content-Type": "application/json", SIGNATURE_HEADER: sign(self._secret, body)})
        return _json_field(response, "external_id") or _json_field(response, "id")


class TwilioProvider:
    """SMS through Twilio's Messages API (form-encoded, HTTP basic auth).

    Twilio takes no DLT identifiers per request: for India the hospital registers its PE ID,
    header and templates with Twilio, which matches each text to them. So to an Indian number
    (OPD_NOTIFY_COUNTRY_CODE 91) a message is sent only with a registered DLT template that its
    text matches, as with the Indian gateways; elsewhere it goes as it is. A Messaging Service
    (OPD_TWILIO_MESSAGING_SERVICE_SID) replaces From; StatusCallback brings Twilio's delivery
    reports back, signed with X-Twilio-Signature."""

    name = "twilio"

    def __init__(self, client: httpx.AsyncClient, settings: Settings) -> None:
        assert settings.twilio_account_sid and settings.twilio_auth_token
        assert settings.twilio_from or settings.twilio_messaging_service_sid
        self._client = client
        self._url = (f"{settings.twilio_base_url.rstrip('/')}/2010-04-01/Accounts/"
                     f"{settings.twilio_account_sid}/Messages.json")
        self._auth = (settings.twilio_account_sid, str(settings.twilio_auth_token))
        self._sender = ({"MessagingServiceSid": settings.twilio_messaging_service_sid}
                        if settings.twilio_messaging_service_sid else {"From": str(settings.twilio_from)})
        self._country_code = settings.notify_country_code
        self._callback = f"{settings.base_url()}/api/v1/notifications/receipts/twilio"

    async def send(self, message: Message) -> str | None:
        to = e164(_need_phone(message), self._country_code)
        if to.startswith("+91"):
            from app.notify.india_sms import dlt_registration

            dlt_registration(message)   # refuses a text Twilio's DLT matching would block
        form = {"To": to, **self._sender, "Body": message.message, "StatusCallback": self._callback}
        response = await _post(self._client, self._url, message, data=form, auth=self._auth)
        return _json_field(response, "sid")


class WhatsAppProvider:
    """Meta's WhatsApp Cloud API (JSON, Bearer token). A message the business starts must be an
    approved template (name, language, body parameters: the registered text's variables in
    order); free text only within 24 hours of the patient's own last message (the customer
    service window, Message.window_open), e.g. the reply to STATUS."""

    name = "whatsapp"

    def __init__(self, client: httpx.AsyncClient, settings: Settings) -> None:
        assert settings.whatsapp_phone_number_id and settings.whatsapp_token
        self._client = client
        self._url = (f"{settings.whatsapp_base_url.rstrip('/')}/{settings.whatsapp_api_version}/"
                     f"{settings.whatsapp_phone_number_id}/messages")
        self._headers = {"Authorization": f"Bearer {settings.whatsapp_token}"}
        self._country_code = settings.notify_country_code

    async def send(self, message: Message) -> str | None:
        to = e164(_need_phone(message), self._country_code).lstrip("+")  # the API wants digits only
        registration = message.registration or {}
        payload: dict[str, Any]
        if registration.get("wa_template_name") and not message.window_open:
            payload = {"messaging_product": "whatsapp", "to": to, "type": "template", "template": {
                "name": registration["wa_template_name"], "language": {"code": registration["wa_language"]},
                "components": [{"type": "body", "parameters": [
                    {"type": "text", "text": v["value"]} for v in message.variables or []]}]}}
        elif message.window_open:
            payload = {"messaging_product": "whatsapp", "to": to, "type": "text",
                       "text": {"body": message.message}}
        else:
            raise PermanentFailure(
                f"no approved WhatsApp template registered for {message.event_type} ({message.language}), "
                "and free text is allowed only within 24 h of the patient's own message")
        response = await _post(self._client, self._url, message, json=payload, headers=self._headers)
        return _json_field(response, "messages", 0, "id")


# Settings each provider cannot work without, by environment variable name.
_REQUIRED = {
    "webhook": {"OPD_NOTIFY_WEBHOOK_URL": "notify_webhook_url",
                "OPD_NOTIFY_WEBHOOK_SECRET": "notify_webhook_secret"},
    "twilio": {"OPD_TWILIO_ACCOUNT_SID": "twilio_account_sid", "OPD_TWILIO_AUTH_TOKEN": "twilio_auth_token"},
    "whatsapp": {"OPD_WHATSAPP_PHONE_NUMBER_ID": "whatsapp_phone_number_id",
                 "OPD_WHATSAPP_TOKEN": "whatsapp_token"},
    "msg91": {"OPD_MSG91_AUTHKEY": "msg91_authkey"},
    "exotel": {"OPD_EXOTEL_SID": "exotel_sid", "OPD_EXOTEL_API_KEY": "exotel_api_key",
               "OPD_EXOTEL_API_TOKEN": "exotel_api_token"},
    "gupshup": {"OPD_GUPSHUP_USERID": "gupshup_userid", "OPD_GUPSHUP_PASSWORD": "gupshup_password"},
}


def check_settings(settings: Settings) -> None:
    """Refuse a configuration that could not send, at start-up rather than at the first message."""
    unknown = [name for name in settings.notify_provider if name not in KNOWN_PROVIDERS]
    if unknown or not settings.notify_provider:
        raise NotifyConfigError(f"OPD_NOTIFY_PROVIDER: unknown provider {', '.join(unknown) or '(empty)'}; "
                                f"use a comma-separated list of {', '.join(KNOWN_PROVIDERS)}")
    for provider in settings.notify_provider:
        missing = [env for env, attr in _REQUIRED.get(provider, {}).items() if not getattr(settings, attr)]
        if missing:
            raise NotifyConfigError(f"the {provider} provider needs {', '.join(missing)}")
    if "twilio" in settings.notify_provider and not (settings.twilio_from or settings.twilio_messaging_service_sid):
        raise NotifyConfigError("the twilio provider needs OPD_TWILIO_FROM or OPD_TWILIO_MESSAGING_SERVICE_SID")
    sms_providers = [name for name in settings.notify_provider if name in SMS_PROVIDERS]
    if len(sms_providers) > 1:
        raise NotifyConfigError(f"OPD_NOTIFY_PROVIDER: one SMS provider at a time, not {', '.join(sms_providers)}")
    if settings.notify_lease_s <= settings.notify_timeout_s:
        # A lease that ends while a send is still waiting would let a second process send it too.
        raise NotifyConfigError("OPD_NOTIFY_LEASE_S must be longer than OPD_NOTIFY_TIMEOUT_S")


class ProviderRouter:
    """SMS to the configured SMS gateway, WhatsApp to the WhatsApp API, push to the tracker's
    Web Push subscriptions (or, for an app's device token, the webhook); a channel whose provider
    is not configured goes to the webhook, or else to the log."""

    def __init__(self, settings: Settings, client: httpx.AsyncClient, web_push: Provider | None = None) -> None:
        check_settings(settings)
        enabled = set(settings.notify_provider)
        fallback: Provider = LogProvider(settings.notify_log_file)
        if "webhook" in enabled:
            assert settings.notify_webhook_url and settings.notify_webhook_secret
            fallback = WebhookProvider(client, settings.notify_webhook_url, settings.notify_webhook_secret)
        from app.notify.india_sms import ExotelProvider, GupshupProvider, Msg91Provider

        sms: Provider = fallback
        if "twilio" in enabled:
            sms = TwilioProvider(client, settings)
        elif "msg91" in enabled:
            sms = Msg91Provider(client, settings)
        elif "exotel" in enabled:
            sms = ExotelProvider(client, settings)
        elif "gupshup" in enabled:
            sms = GupshupProvider(client, settings)
        self._by_channel: dict[str, Provider] = {
            "SMS": sms,
            "WHATSAPP": WhatsAppProvider(client, settings) if "whatsapp" in enabled else fallback,
        }
        self._fallback = fallback
        self._web_push = web_push

    def for_message(self, message: Message) -> Provider:
        if message.channel == "PUSH" and message.web_push and self._web_push is not None:
            return self._web_push
        return self._by_channel.get(message.channel, self._fallback)
