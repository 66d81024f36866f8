"""The patient's own token, reached by its tracking code (no staff credential)."""

from __future__ import annotations

from typing import Any

from app.api import schemas
from app.api.errors import ApiError
from app.api.registry import Call, api
from app.security.identity import TRACKING_CODE_PATTERN

TAG = "patient"


async def token_id_for_code(call: Call, code: str) -> Any:
    """The token behind a tracking code, if the code is valid today (until the visit day ends)."""
    import re

    address = call.request.client.host if call.request.client else "unknown"
    if not call.request.app.state.public_limiter.allow(address):
        raise ApiError(429, "too many requests from this address; wait a minute", code="rate_limited")
    if not re.match(TRACKING_CODE_PATTERN, code):
        raise ApiError(404, "unknown or expired tracking link", code="not_found")
    token_id = await call.pool.fetchval(
        """SELECT t.token_id FROM tokens t
           WHERE t.tracking_code = $1 AND t.visit_date >= hospital_today(t.hospital_id)""", code)
    if token_id is None:
        raise ApiError(404, "unknown or expired tracking link", code="not_found")
    return token_id


@api.op("GET", "/track/{code}", summary="A patient's token: status, position, ETA (no personal data)",
        tag=TAG, auth=False)
async def track_token(call: Call) -> dict[str, Any]:
    token_id = await token_id_for_code(call, call.request.path_params["code"])
    view: dict[str, Any] = await call.pool.fetchval("SELECT token_public_view($1)", token_id)
    return view


@api.op("POST", "/track/{code}/check-in", tag=TAG, auth=False, body=schemas.obj(
            {"latitude": schemas.COORD_LAT, "longitude": schemas.COORD_LON}, ["latitude", "longitude"]),
        summary="The patient checks in from their phone, inside the hospital's geofence")
async def track_check_in(call: Call) -> dict[str, Any]:
    token_id = await token_id_for_code(call, call.request.path_params["code"])
    await call.pool.execute("SELECT 1 FROM check_in_token($1, $2, $3, NULL, NULL)", token_id,
                            call.body["latitude"], call.body["longitude"])
    view: dict[str, Any] = await call.pool.fetchval("SELECT token_public_view($1)", token_id)
    return view


@api.op("POST", "/track/{code}/cancel", tag=TAG, auth=False, body=schemas.EMPTY,
        responses={409: "already called, seen or closed"},
        summary="The patient cancels their own token from the tracker (audited; rate-limited)")
async def track_cancel(call: Call) -> dict[str, Any]:
    token_id = await token_id_for_code(call, call.request.path_params["code"])
    # Only before the call: a called patient is at the cabin door, where staff can cancel.
    await call.pool.execute("SELECT 1 FROM set_token_status($1, 'CANCELLED', NULL, $2, $3)", token_id,
                            "cancelled by the patient (tracker)", ["BOOKED", "CHECKED_IN"])
    view: dict[str, Any] = await call.pool.fetchval("SELECT token_public_view($1)", token_id)
    return view


@api.op("POST", "/track/{code}/late", tag=TAG, auth=False, body=schemas.obj(
            {"minutes": {"type": "integer", "minimum": 5, "maximum": 120,
                         "description": "about how late the patient will be"}}, ["minutes"]),
        responses={409: "already called, seen or closed"},
        summary="The patient says they will be late (noted for reception; their place is kept)")
async def track_late(call: Call) -> dict[str, Any]:
    token_id = await token_id_for_code(call, call.request.path_params["code"])
    until = await call.pool.fetchval("SELECT patient_running_late($1, $2)", token_id, call.body["minutes"])
    return {"running_late_until": until}


PUSH_KEY = {"type": "string", "minLength": 16, "maxLength": 128, "pattern": r"^[A-Za-z0-9_-]+=*$"}
PUSH_SUBSCRIPTION = schemas.obj({
    "endpoint": {"type": "string", "minLength": 12, "maxLength": 1024,
                 "description": "the push service URL from PushSubscription.toJSON()"},
    "expirationTime": {"type": ["number", "null"]},
    "keys": schemas.obj({"p256dh": PUSH_KEY, "auth": {**PUSH_KEY, "minLength": 16, "maxLength": 32}},
                        ["p256dh", "auth"]),
}, ["endpoint", "keys"])
MAX_SUBSCRIPTIONS_PER_TOKEN = 5   # the patient's phone and a relative's or two; the oldest goes first


@api.op("POST", "/track/{code}/push-subscriptions", tag=TAG, auth=False, body=PUSH_SUBSCRIPTION, status=201,
        responses={409: "the token is already seen or closed", 422: "endpoint or keys unusable"},
        summary="The tracker's \"Notify me when my turn is near\": store the browser's Web Push subscription")
async def track_push_subscribe(call: Call) -> dict[str, Any]:
    from app.notify.web_push import endpoint_problem, key_problem, subscription_fields

    token_id = await token_id_for_code(call, call.request.path_params["code"])
    endpoint, p256dh, auth = subscription_fields(call.body)
    problem = endpoint_problem(endpoint, call.request.app.state.settings.web_push_hosts)
    if problem:
        raise ApiError(422, problem, code="invalid", field="endpoint")
    problem = key_problem(p256dh, auth)
    if problem:
        raise ApiError(422, problem, code="invalid", field="keys")
    stored = await call.pool.fetchval(
        "SELECT store_push_subscription($1, $2, $3, $4, $5)", token_id, endpoint, p256dh, auth,
        MAX_SUBSCRIPTIONS_PER_TOKEN)
    if not stored:
        raise ApiError(409, "this token is already seen or closed: there is nothing left to notify",
                       code="conflict")
    return {"subscribed": True}


@api.op("DELETE", "/track/{code}/push-subscriptions", tag=TAG, auth=False,
        body=schemas.obj({"endpoint": PUSH_SUBSCRIPTION["properties"]["endpoint"]}, ["endpoint"]),
        summary="The tracker's \"Stop notifications\": forget this browser's subscription")
async def track_push_unsubscribe(call: Call) -> dict[str, Any]:
    token_id = await token_id_for_code(call, call.request.path_params["code"])
    await call.pool.execute("DELETE FROM push_subscriptions WHERE token_id = $1 AND endpoint = $2",
                            token_id, call.body["endpoint"])
    return {"subscribed": False}
