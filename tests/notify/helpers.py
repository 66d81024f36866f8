"""Patients with chosen opt-ins, tokens issued for them, and the outbox rows they produced."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx

from app.notify.dispatcher import Dispatcher
from app.settings import Secret, Settings
from tests.support import factory

WEBHOOK_SECRET = "test-webhook-secret"


def notify_settings(provider_url: str, **overrides: Any) -> Settings:
    """Every provider pointed at the local test server; retries as slow as in production."""
    base = Settings(
        notify_provider=("webhook",), notify_webhook_url=f"{provider_url}/hook",
        notify_webhook_secret=Secret(WEBHOOK_SECRET), notify_timeout_s=5.0, notify_lease_s=10.0,
        twilio_base_url=provider_url, twilio_account_sid="AC123", twilio_auth_token=Secret("twilio-token"),
        twilio_from="+15005550006", gupshup_base_url=provider_url, gupshup_userid="2000123456",
        gupshup_password=Secret("gupshup-password"),
        whatsapp_base_url=provider_url, whatsapp_phone_number_id="10655", whatsapp_token=Secret("wa-token"))
    return dataclasses.replace(base, **overrides)


@contextlib.asynccontextmanager
async def dispatcher(pool: asyncpg.Pool, settings: Settings) -> AsyncIterator[Dispatcher]:
    async with httpx.AsyncClient(timeout=settings.notify_timeout_s) as client:
        yield await Dispatcher.from_settings(pool, settings, client)


async def patient(pool: asyncpg.Pool, hospital: factory.Hospital, *, sms: bool = True, whatsapp: bool = False,
                  language: str = "en", fcm_token: str | None = None) -> uuid.UUID:
    patient_id = await factory.make_patient(pool, hospital)
    await pool.execute(
        """UPDATE patients SET sms_opt_in = $2, whatsapp_opt_in = $3, preferred_language = $4, fcm_token = $5
           WHERE patient_id = $1""", patient_id, sms, whatsapp, language, fcm_token)
    return patient_id


async def issue(pool: asyncpg.Pool, hospital: factory.Hospital, **opt_ins: Any) -> asyncpg.Record:
    """A token for a new patient (by default SMS only, so exactly one outbox row)."""
    return await factory.issue(pool, hospital, patient_id=await patient(pool, hospital, **opt_ins))


async def outbox_rows(pool: asyncpg.Pool, token_id: uuid.UUID) -> list[asyncpg.Record]:
    return list(await pool.fetch(
        "SELECT * FROM notifications_log WHERE token_id = $1 ORDER BY event_type, channel", token_id))


async def only_row(pool: asyncpg.Pool, token_id: uuid.UUID) -> asyncpg.Record:
    rows = await outbox_rows(pool, token_id)
    assert len(rows) == 1, [dict(r) for r in rows]
    return rows[0]
