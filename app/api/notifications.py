"""Delivery receipts: a provider (or a relay in front of one) reports a message delivered or failed.

No staff key: the caller proves itself with X-OPD-Signature, the HMAC-SHA256 of the raw body under
OPD_NOTIFY_WEBHOOK_SECRET (the scheme our webhook posts use, docs/operations.md).
"""

from __future__ import annotations

from typing import Any

from app.api import schemas
from app.api.errors import ApiError
from app.api.registry import Call, api
from app.db.queries import query
from app.notify.providers import SIGNATURE_HEADER, signature_matches

TAG = "notifications"
FINAL_STATUSES = ("DELIVERED", "FAILED")

RECEIPT = schemas.obj({
    "notification_id": schemas.UUID,
    "external_id": {"type": "string", "minLength": 1, "maxLength": 255,
                    "description": "the provider's message id, returned when it accepted the message"},
    "status": {"type": "string", "enum": list(FINAL_STATUSES)},
    "reason": {"type": ["string", "null"], "maxLength": 1000, "description": "why it failed"},
}, ["status"], **{"x-one-of-required": [["notification_id", "external_id"]]})


def _check_signature(call: Call, raw: bytes) -> None:
    secret = call.request.app.state.settings.notify_webhook_secret
    if secret is None:
        raise ApiError(401, "delivery receipts are not accepted: OPD_NOTIFY_WEBHOOK_SECRET is not set",
                       code="unauthenticated")
    if not signature_matches(str(secret), raw, call.request.headers.get(SIGNATURE_HEADER)):
        raise ApiError(401, f"missing or wrong {SIGNATURE_HEADER}: send sha256=<hex HMAC-SHA256 of the "
                            "body> keyed with the shared webhook secret", code="bad_signature")


@api.op("POST", "/notifications/receipts", tag=TAG, auth=False, body=RECEIPT,
        responses={401: "missing or wrong X-OPD-Signature"},
        summary="A provider reports a message DELIVERED or FAILED (HMAC-signed, no staff key)")
async def record_delivery_receipt(call: Call) -> dict[str, Any]:
    _check_signature(call, await call.request.body())  # the body is cached: these are the signed bytes
    return await apply_receipt(call.pool, call.body.get("notification_id"), call.body.get("external_id"),
                               call.body["status"], call.body.get("reason"))


async def apply_receipt(pool: Any, notification_id: Any, external_id: str | None, status: str,
                        reason: str | None) -> dict[str, Any]:
    """Record DELIVERED or FAILED for the message with that id (ours, or the provider's)."""
    async with pool.acquire() as conn, conn.transaction():
        if notification_id is not None:
            rows = await conn.fetch(query("lock_notification_by_id"), notification_id)
        else:
            rows = await conn.fetch(query("lock_notifications_by_external_id"), external_id)
        if not rows:
            raise ApiError(404, "no notification with that id", code="not_found")
        if len(rows) > 1:
            raise ApiError(409, "several notifications share that external_id; send notification_id",
                           code="ambiguous")
        current = rows[0]
        if current["delivery_status"] == status:  # providers repeat callbacks: the same answer again
            return {"notification_id": current["notification_id"], "delivery_status": status}
        if current["delivery_status"] in FINAL_STATUSES:
            raise ApiError(409, f"the notification is already {current['delivery_status']}",
                           code="illegal_transition", delivery_status=current["delivery_status"])
        updated = await conn.fetchrow(query("record_delivery_receipt"), current["notification_id"],
                                      status, reason or "reported failed by the provider")
    return {"notification_id": updated["notification_id"], "delivery_status": updated["delivery_status"]}
