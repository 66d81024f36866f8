"""What SMS gateways and WhatsApp send back, each in its own documented format
(docs/operations.md, "Sending messages in India"):

- MSG91, Exotel and Gupshup delivery reports. None signs its callbacks: the URL given to them
  carries OPD_NOTIFY_RECEIPT_TOKEN, compared in constant time.
- Twilio's StatusCallback, signed with X-Twilio-Signature (HMAC-SHA1 under the auth token).
- The WhatsApp Cloud API webhook: Meta's subscribe challenge (OPD_WHATSAPP_VERIFY_TOKEN), then
  posts signed with X-Hub-Signature-256 (HMAC-SHA256 of the raw body under the app secret,
  OPD_WHATSAPP_APP_SECRET). Statuses become receipts; a patient's message opens the 24-hour window
  for free text, "STOP" withdraws their WhatsApp consent, "STATUS" gets their live position back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from starlette.responses import PlainTextResponse, Response

from app.api.errors import ApiError
from app.api.notifications import apply_receipt
from app.api.registry import Call, api
from app.phones import normalise_phone

TAG = "notifications"
# MSG91 report status codes (msg91.com/help): 1 delivered; 2 failed, 9 NDNC, 16/25 rejected, 17 blocked.
MSG91_DELIVERED, MSG91_FAILED = {"1"}, {"2", "9", "16", "17", "25"}
EXOTEL_FAILED = {"failed", "failed_dnd"}
TWILIO_FAILED = {"failed", "undelivered"}


def twilio_signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """X-Twilio-Signature: base64 HMAC-SHA1 of the full URL followed by each POST parameter's name
    and value, sorted by name (then value), under the account's auth token."""
    signed = url + "".join(name + value for name, value in sorted(set(params)))
    return base64.b64encode(hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()).decode()


def _check_receipt_token(call: Call) -> None:
    expected = call.request.app.state.settings.notify_receipt_token
    given = call.request.path_params["token"]
    if expected is None or not hmac.compare_digest(str(expected).encode(), given.encode()):
        raise ApiError(401, "wrong or unset receipt token (OPD_NOTIFY_RECEIPT_TOKEN)", code="unauthenticated")


async def _receipt_by_external_id(call: Call, external_id: str | None, status: str, reason: str | None) -> None:
    """A provider's report about a message it knows by its own id; unknown ids and repeats are
    acknowledged (a non-2xx answer would only make the provider send it again)."""
    if not external_id:
        return
    try:
        await apply_receipt(call.pool, None, external_id, status, reason)
    except ApiError as exc:
        if exc.status not in (404, 409):
            raise


@api.op("POST", "/notifications/receipts/msg91/{token}", tag=TAG, auth=False,
        summary="MSG91 delivery reports (its webhook formats; the URL carries the receipt token)")
async def msg91_receipts(call: Call) -> dict[str, Any]:
    _check_receipt_token(call)
    raw = await call.request.body()
    try:
        if call.request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            reports = json.loads(str((await call.request.form())["data"]))   # the old webhook: data=<JSON>
        else:
            reports = json.loads(raw)
    except (ValueError, KeyError) as exc:
        raise ApiError(422, f"not an MSG91 delivery report: {exc}", code="invalid") from None
    reports = reports if isinstance(reports, list) else [reports]
    recorded = 0
    for report in reports:
        # v2 nests per-number reports; v3 and the new webhook are flat.
        for item in report.get("report") or [report]:
            status = str(item.get("status", ""))
            if status in MSG91_DELIVERED | MSG91_FAILED:
                await _receipt_by_external_id(
                    call, report.get("requestId"), "DELIVERED" if status in MSG91_DELIVERED else "FAILED",
                    item.get("desc") or item.get("failedReason") or item.get("failureReason"))
                recorded += 1
    return {"recorded": recorded}


@api.op("POST", "/notifications/receipts/exotel/{token}", tag=TAG, auth=False,
        summary="Exotel SMS StatusCallback (form-encoded; the URL carries the receipt token)")
async def exotel_receipt(call: Call) -> dict[str, Any]:
    _check_receipt_token(call)
    form = await call.request.form()
    status = str(form.get("Status", ""))
    if status == "sent":
        await _receipt_by_external_id(call, str(form.get("SmsSid") or ""), "DELIVERED", None)
    elif status in EXOTEL_FAILED:
        await _receipt_by_external_id(call, str(form.get("SmsSid") or ""), "FAILED",
                                      f"Exotel: {form.get('DetailedStatus') or status}")
    return {"status": status}


@api.op("GET", "/notifications/receipts/gupshup/{token}", tag=TAG, auth=False,
        summary="Gupshup real-time delivery reports (query parameters; the URL carries the receipt token)")
async def gupshup_receipt(call: Call) -> dict[str, Any]:
    _check_receipt_token(call)
    return await _gupshup_events(call, [dict(call.request.query_params)])


@api.op("POST", "/notifications/receipts/gupshup/{token}", tag=TAG, auth=False,
        summary="Gupshup delivery reports pushed as a JSON array (the URL carries the receipt token)")
async def gupshup_receipts(call: Call) -> dict[str, Any]:
    _check_receipt_token(call)
    try:
        events = json.loads(await call.request.body())
        events = events if isinstance(events, list) else [events]
        # The POST form names its fields eventType (DELIVERED/FAILED); the GET form, status.
        renamed = {"DELIVERED": "SUCCESS", "FAILED": "FAILURE"}
        events = [{**e, "status": renamed.get(e.get("eventType"), e.get("status"))} for e in events]
    except (ValueError, AttributeError) as exc:
        raise ApiError(422, f"not a Gupshup delivery report: {exc}", code="invalid") from None
    return await _gupshup_events(call, events)


async def _gupshup_events(call: Call, events: list[dict[str, Any]]) -> dict[str, Any]:
    recorded = 0
    for event in events:
        status = str(event.get("status") or "").upper()
        if status in ("SUCCESS", "FAILURE"):
            reason = f"Gupshup: {event.get('cause') or 'failed'} (error {event.get('errCode') or '-'})"
            await _receipt_by_external_id(call, event.get("externalId"),
                                          "DELIVERED" if status == "SUCCESS" else "FAILED",
                                          reason if status == "FAILURE" else None)
            recorded += 1
    return {"recorded": recorded}


@api.op("POST", "/notifications/receipts/twilio", tag=TAG, auth=False,
        summary="Twilio StatusCallback (form-encoded, X-Twilio-Signature under the auth token)")
async def twilio_receipt(call: Call) -> dict[str, Any]:
    settings = call.request.app.state.settings
    form = await call.request.form()
    params = [(k, str(v)) for k, v in form.multi_items()]
    # The URL exactly as Twilio called it: the one we gave it (the public URL, behind any proxy).
    url = settings.base_url() + call.request.url.path + (f"?{call.request.url.query}" if call.request.url.query else "")
    given = call.request.headers.get("x-twilio-signature", "")
    if settings.twilio_auth_token is None or not hmac.compare_digest(
            twilio_signature(str(settings.twilio_auth_token), url, params), given):
        raise ApiError(401, "missing or wrong X-Twilio-Signature (OPD_TWILIO_AUTH_TOKEN)", code="bad_signature")
    status = str(form.get("MessageStatus", ""))
    if status == "delivered":
        await _receipt_by_external_id(call, str(form.get("MessageSid") or ""), "DELIVERED", None)
    elif status in TWILIO_FAILED:
        await _receipt_by_external_id(call, str(form.get("MessageSid") or ""), "FAILED",
                                      f"Twilio: {status} (error {form.get('ErrorCode') or '-'})")
    return {"status": status}


@api.op("GET", "/notifications/whatsapp", tag=TAG, auth=False,
        summary="WhatsApp webhook verification (Meta's hub.challenge)")
async def whatsapp_verify(call: Call) -> Response:
    expected = call.request.app.state.settings.whatsapp_verify_token
    params = call.request.query_params
    if (expected is None or params.get("hub.mode") != "subscribe"
            or not hmac.compare_digest(str(expected).encode(), params.get("hub.verify_token", "").encode())):
        raise ApiError(403, "wrong or unset verify token (OPD_WHATSAPP_VERIFY_TOKEN)", code="forbidden")
    return PlainTextResponse(params.get("hub.challenge", ""))


@api.op("POST", "/notifications/whatsapp", tag=TAG, auth=False,
        summary="WhatsApp webhook: statuses, and patients' messages (X-Hub-Signature-256)")
async def whatsapp_webhook(call: Call) -> dict[str, Any]:
    secret = call.request.app.state.settings.whatsapp_app_secret
    raw = await call.request.body()
    header = call.request.headers.get("x-hub-signature-256", "")
    expected = "sha256=" + hmac.new(str(secret or "").encode(), raw, hashlib.sha256).hexdigest()
    if secret is None or not hmac.compare_digest(expected, header.strip()):
        raise ApiError(401, "missing or wrong X-Hub-Signature-256 (OPD_WHATSAPP_APP_SECRET)", code="bad_signature")
    try:
        payload = json.loads(raw)
        values = [change["value"] for entry in payload.get("entry", []) for change in entry.get("changes", [])]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ApiError(422, f"not a WhatsApp webhook payload: {exc}", code="invalid") from None
    handled = {"statuses": 0, "messages": 0}
    for value in values:
        for status in value.get("statuses", []):
            if status.get("status") in ("delivered", "read"):
                await _receipt_by_external_id(call, status.get("id"), "DELIVERED", None)
            elif status.get("status") == "failed":
                errors = status.get("errors") or [{}]
                await _receipt_by_external_id(call, status.get("id"), "FAILED",
                                              f"WhatsApp: {errors[0].get('title') or errors[0].get('message')}")
            handled["statuses"] += 1
        for message in value.get("messages", []):
            await _patient_wrote(call, message)
            handled["messages"] += 1
    return handled


async def _patient_wrote(call: Call, message: dict[str, Any]) -> None:
    sender = "+" + str(message.get("from", "")).lstrip("+")
    phone = normalise_phone(sender) or sender
    text = ((message.get("text") or {}).get("body") or "").strip()
    async with call.pool.acquire() as conn, conn.transaction():
        new = await conn.fetchval(
            """INSERT INTO whatsapp_inbound (message_id, phone, body, received_at)
               VALUES ($1, $2, $3, COALESCE(to_timestamp($4), now()))
               ON CONFLICT (message_id) DO NOTHING RETURNING true""",
            message.get("id"), phone, text, float(message.get("timestamp") or 0) or None)
        if not new:
            return  # Meta delivers a webhook more than once
        command = text.upper()
        if command == "STOP":
            await conn.execute("SELECT set_config('opd.consent_source', 'whatsapp STOP', true)")
            await conn.execute("UPDATE patients SET whatsapp_opt_in = false WHERE phone = $1 AND whatsapp_opt_in",
                               phone)
        elif command == "STATUS":
            await conn.execute("SELECT whatsapp_status_reply($1)", phone)
