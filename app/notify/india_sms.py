"""SMS through Indian gateways under TRAI DLT (docs/operations.md, "Sending messages in India").

Every SMS in India must match a content template registered on the DLT portal, carry that
template's ID and the hospital's principal entity ID (PE ID), and come from a registered header.
The hospital's registrations (table message_registrations) travel with each message
(Message.registration); a message without one, or whose text does not match it, is never sent:
it fails with the reason, since the gateway would refuse or the operator would block it.

MSG91 (v5 Flow API) sends its own template ID with the variables by name; Exotel sends the text
with DltEntityId and DltTemplateId; Gupshup (Enterprise SMS API) the text with principalEntityId
and dltTemplateId. None signs its delivery receipts: their callback URLs carry
OPD_NOTIFY_RECEIPT_TOKEN (app/api/provider_callbacks.py).
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from app.notify.providers import Message, PermanentFailure, _json_field, _need_phone, _post, e164
from app.settings import Settings

# What a DLT {#var#} carries at most; sql/functions.sql sms_variable_max_chars() cuts values to it.
VARIABLE_MAX_CHARS = 30


def matches_registered(body: str, text: str) -> bool:
    """Whether text is body with each {variable} replaced by at most VARIABLE_MAX_CHARS characters:
    what an operator's DLT scrubber checks."""
    fixed_parts = re.split(r"\{[a-z_]+\}", body)
    pattern = f"(?:.{{0,{VARIABLE_MAX_CHARS}}})".join(re.escape(part) for part in fixed_parts)
    return re.fullmatch(pattern, text, flags=re.DOTALL) is not None


def dlt_registration(message: Message) -> dict[str, Any]:
    """The message's DLT registration, checked; PermanentFailure says what is missing."""
    registration = message.registration or {}
    what = f"{message.event_type} ({message.language}) SMS"
    if not registration.get("dlt_template_id"):
        raise PermanentFailure(f"no DLT template registered for {what}: register it on the admin page")
    if not registration.get("pe_id"):
        raise PermanentFailure("the hospital's DLT principal entity ID (PE ID) is not set (admin page)")
    if not matches_registered(registration["body"], message.message):
        raise PermanentFailure(f"the text does not match the DLT template registered for {what}; not sent")
    return registration


class Msg91Provider:
    """MSG91's v5 Flow API: JSON with the MSG91 template ID and the variables by name."""

    name = "msg91"

    def __init__(self, client: httpx.AsyncClient, settings: Settings) -> None:
        assert settings.msg91_authkey
        self._client = client
        self._url = f"{settings.msg91_base_url.rstrip('/')}/api/v5/flow/"
        self._headers = {"authkey": str(settings.msg91_authkey)}
        self._country_code = settings.notify_country_code

    async def send(self, message: Message) -> str | None:
        registration = dlt_registration(message)
        template_id = registration.get("gateway_template_id")
        if not template_id:
            raise PermanentFailure(f"no MSG91 template ID registered for {message.event_type} "
                                   f"({message.language}) SMS (the gateway template ID on the admin page)")
        recipient = {"mobiles": e164(_need_phone(message), self._country_code).lstrip("+")}
        recipient.update({v["name"]: v["value"] for v in message.variables or []})
        payload = {"template_id": template_id, "short_url": "0", "recipients": [recipient]}
        response = await _post(self._client, self._url, message, json=payload, headers=self._headers)
        # MSG91 answers 200 with {"type": "error", "message": ...} for a refused request.
        if _json_field(response, "type") != "success":
            raise PermanentFailure(f"MSG91 refused: {_json_field(response, 'message') or response.text[:200]}")
        return _json_field(response, "message")  # the request id its delivery reports carry


class ExotelProvider:
    """Exotel's SMS API: form-encoded, HTTP basic auth, the text with its DLT identifiers."""

    name = "exotel"

    def __init__(self, client: httpx.AsyncClient, settings: Settings) -> None:
        assert settings.exotel_sid and settings.exotel_api_key and settings.exotel_api_token
        self._client = client
        self._url = f"{settings.exotel_base_url.rstrip('/')}/v1/Accounts/{settings.exotel_sid}/Sms/send.json"
        self._auth = (settings.exotel_api_key, str(settings.exotel_api_token))
        self._country_code = settings.notify_country_code
        self._callback = (f"{settings.base_url()}/api/v1/notifications/receipts/exotel/{settings.notify_receipt_token}"
                          if settings.notify_receipt_token else None)

    async def send(self, message: Message) -> str | None:
        registration = dlt_registration(message)
        if not registration.get("sms_header"):
            raise PermanentFailure(f"no SMS header (sender ID) registered for {message.event_type} "
                                   f"({message.language}) SMS")
        form = {"From": registration["sms_header"], "To": e164(_need_phone(message), self._country_code),
                "Body": message.message, "DltEntityId": registration["pe_id"],
                "DltTemplateId": registration["dlt_template_id"], "SmsType": "transactional",
                "EncodingType": "plain" if message.message.isascii() else "unicode"}
        if self._callback:
            form["StatusCallback"] = self._callback
        response = await _post(self._client, self._url, message, data=form, auth=self._auth)
        return _json_field(response, "SMSMessage", "Sid")


class GupshupProvider:
    """Gupshup's Enterprise SMS API (GatewayAPI/rest, method SendMessage): the text with the
    header as `mask` and its DLT identifiers `principalEntityId` and `dltTemplateId`; user id and
    password in the parameters (auth_scheme=plain, the only scheme it has). Sent as a form POST,
    as Gupshup's client libraries do, so the text and password stay out of proxies' URL logs."""

    name = "gupshup"

    def __init__(self, client: httpx.AsyncClient, settings: Settings) -> None:
        assert settings.gupshup_userid and settings.gupshup_password
        self._client = client
        self._url = f"{settings.gupshup_base_url.rstrip('/')}/GatewayAPI/rest"
        self._userid, self._password = settings.gupshup_userid, str(settings.gupshup_password)
        self._country_code = settings.notify_country_code

    async def send(self, message: Message) -> str | None:
        registration = dlt_registration(message)
        if not registration.get("sms_header"):
            raise PermanentFailure(f"no SMS header (sender ID) registered for {message.event_type} "
                                   f"({message.language}) SMS")
        form = {"method": "SendMessage", "v": "1.1", "format": "json", "auth_scheme": "plain",
                "userid": self._userid, "password": self._password,
                "send_to": e164(_need_phone(message), self._country_code).lstrip("+"),
                "msg": message.message, "msg_type": "TEXT" if message.message.isascii() else "Unicode_Text",
                "mask": registration["sms_header"], "principalEntityId": registration["pe_id"],
                "dltTemplateId": registration["dlt_template_id"]}
        response = await _post(self._client, self._url, message, data=form)
        # Gupshup answers 200 for a refused request too: {"response": {"status": "error", "details": ...}}.
        if _json_field(response, "response", "status") != "success":
            details = _json_field(response, "response", "details") or response.text[:200]
            raise PermanentFailure(f"Gupshup refused: {details}")
        return _json_field(response, "response", "id")   # the externalId its delivery reports carry
