"""A hospital's registered message texts (docs/operations.md, "Sending messages in India"): per
event, language and channel, the text as registered on the DLT portal or approved by Meta, and the
identifiers the provider needs. Checked when saved (sql: message_registration_problems)."""

from __future__ import annotations

from typing import Any

from app.api import schemas
from app.api.errors import ApiError
from app.api.registry import Call, api, query_param
from app.notify.events import MESSAGE_EVENTS

TAG = "messages"
CHANNELS = ("SMS", "WHATSAPP")
LANGUAGES = ("en", "hi")
_COLUMNS = ("body", "dlt_template_id", "sms_header", "gateway_template_id", "wa_template_name", "wa_language")


def _key(call: Call) -> tuple[str, str, str]:
    event, language, channel = (call.request.path_params[k] for k in ("event_type", "language", "channel"))
    if event not in MESSAGE_EVENTS:
        raise ApiError(422, f"event_type must be one of {', '.join(MESSAGE_EVENTS)}", code="invalid")
    if language not in LANGUAGES:
        raise ApiError(422, f"language must be one of {', '.join(LANGUAGES)}", code="invalid")
    if channel not in CHANNELS:
        raise ApiError(422, f"channel must be one of {', '.join(CHANNELS)}", code="invalid")
    return event, language, channel


@api.op("GET", "/message-registrations", tag=TAG,
        summary="The hospital's registered message texts, each with what is wrong with it now")
async def list_registrations(call: Call) -> list[dict[str, Any]]:
    call.staff.require_role("admin")
    rows = await call.pool.fetch(
        """SELECT r.event_type, r.language, r.channel, r.body, r.dlt_template_id, r.sms_header,
                  r.gateway_template_id, r.wa_template_name, r.wa_language, r.updated_at,
                  message_registration_problems(r.channel, r.body,
                      (SELECT value FROM app_settings WHERE key = 'public_url')) AS problems
           FROM message_registrations r WHERE r.hospital_id = $1
           ORDER BY r.event_type, r.language, r.channel""", call.staff.hospital_id)
    return [dict(r.items()) for r in rows]


@api.op("PUT", "/message-registrations/{event_type}/{language}/{channel}", tag=TAG,
        body=schemas.MESSAGE_REGISTRATION, responses={422: "the text would not pass DLT or is incomplete"},
        summary="Register the text and identifiers of one event's message in one language and channel")
async def put_registration(call: Call) -> dict[str, Any]:
    call.staff.require_role("admin")
    event, language, channel = _key(call)
    values = {c: call.body.get(c) for c in _COLUMNS}
    if channel == "SMS" and not values["dlt_template_id"]:
        raise ApiError(422, "an SMS needs its DLT template ID (dlt_template_id)", code="invalid")
    if channel == "WHATSAPP" and not (values["wa_template_name"] and values["wa_language"]):
        raise ApiError(422, "a WhatsApp message needs its approved template's name and language "
                            "(wa_template_name, wa_language)", code="invalid")
    problems = await call.pool.fetchval(
        "SELECT message_registration_problems($1, $2, (SELECT value FROM app_settings WHERE key = 'public_url'))",
        channel, values["body"])
    if problems:
        raise ApiError(422, "; ".join(problems), code="invalid", problems=problems)
    row = await call.pool.fetchrow(
        f"""INSERT INTO message_registrations (hospital_id, event_type, language, channel, {", ".join(_COLUMNS)},
                                               updated_by, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now())
            ON CONFLICT (hospital_id, event_type, language, channel) DO UPDATE SET
                {", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS)}, updated_by = EXCLUDED.updated_by,
                updated_at = now()
            RETURNING event_type, language, channel, {", ".join(_COLUMNS)}, updated_at""",
        call.staff.hospital_id, event, language, channel, *values.values(), call.staff.actor_id)
    return {**dict(row.items()), "problems": []}


@api.op("DELETE", "/message-registrations/{event_type}/{language}/{channel}", tag=TAG,
        summary="Remove a registration: the message goes back to the default text")
async def delete_registration(call: Call) -> dict[str, Any]:
    call.staff.require_role("admin")
    event, language, channel = _key(call)
    deleted = await call.pool.fetchval(
        """DELETE FROM message_registrations WHERE hospital_id = $1 AND event_type = $2 AND language = $3
           AND channel = $4 RETURNING true""", call.staff.hospital_id, event, language, channel)
    if not deleted:
        raise ApiError(404, "no such registration", code="not_found")
    return {"deleted": True}


@api.op("GET", "/message-preview", tag=TAG,
        query=[query_param("event", "TOKEN_CREATED, T_MINUS_3, CALL_NOW, DELAYED, RESCHEDULED or CANCELLED",
                           required=True),
               query_param("language", "en or hi", required=True)],
        responses={409: "the hospital has no token yet to build a message from"},
        summary="Each message as each provider would receive it (built from the hospital's latest token, "
                "never sent; credentials shown as placeholders)")
async def message_preview(call: Call) -> list[dict[str, Any]]:
    from app.notify.preview import PreviewError, preview_messages

    call.staff.require_role("admin")
    event, language = call.query("event"), call.query("language")
    if event not in MESSAGE_EVENTS:
        raise ApiError(422, f"event must be one of {', '.join(MESSAGE_EVENTS)}", code="invalid", field="event")
    if language not in LANGUAGES:
        raise ApiError(422, "language must be en or hi", code="invalid", field="language")
    try:
        results = await preview_messages(call.pool, call.request.app.state.settings, call.staff.hospital_id,
                                         event, language)
    except PreviewError as exc:
        raise ApiError(409, str(exc), code="conflict") from None
    return [r.as_dict() for r in results]
