"""What the SQL side writes to the outbox (sql/functions.sql): opt-ins, language, links, once-only."""

from __future__ import annotations

import asyncpg

from app.db.queries import query
from tests.notify.helpers import issue, outbox_rows
from tests.support import factory


async def test_rows_follow_the_patients_opt_ins(
        outbox_pool: asyncpg.Pool, outbox_hospital: factory.Hospital) -> None:
    no_sms = await issue(outbox_pool, outbox_hospital, sms=False, whatsapp=True)
    assert [r["channel"] for r in await outbox_rows(outbox_pool, no_sms["token_id"])] == ["WHATSAPP"]
    nothing = await issue(outbox_pool, outbox_hospital, sms=False, whatsapp=False)
    assert await outbox_rows(outbox_pool, nothing["token_id"]) == []
    everything = await issue(outbox_pool, outbox_hospital, whatsapp=True, fcm_token="device-token-1")
    rows = await outbox_rows(outbox_pool, everything["token_id"])
    assert sorted(r["channel"] for r in rows) == ["PUSH", "SMS", "WHATSAPP"]
    assert all(r["delivery_status"] == "PENDING" and r["event_type"] == "TOKEN_CREATED" for r in rows)
    push = next(r for r in rows if r["channel"] == "PUSH")
    assert push["phone_number"] is None


async def test_message_is_in_the_patients_language_with_the_public_link(
        outbox_pool: asyncpg.Pool, outbox_hospital: factory.Hospital) -> None:
    await outbox_pool.execute(query("publish_public_url"), "https://opd.example.org")
    hindi = await issue(outbox_pool, outbox_hospital, language="hi")
    [row] = await outbox_rows(outbox_pool, hindi["token_id"])
    assert row["language"] == "hi"
    assert f"आपका टोकन {hindi['token_number']} है" in row["message"]
    assert row["message"].endswith(f"https://opd.example.org/t/{hindi['tracking_code']}")
    english = await issue(outbox_pool, outbox_hospital)
    [row] = await outbox_rows(outbox_pool, english["token_id"])
    assert row["language"] == "en" and f"your token is {english['token_number']}" in row["message"]


async def test_public_url_is_upserted(outbox_pool: asyncpg.Pool) -> None:
    await outbox_pool.execute(query("publish_public_url"), "https://first.example")
    await outbox_pool.execute(query("publish_public_url"), "https://second.example")
    assert await outbox_pool.fetchval("SELECT value FROM app_settings WHERE key = 'public_url'") \
        == "https://second.example"


async def test_t_minus_3_is_written_once_however_the_position_wobbles(
        outbox_pool: asyncpg.Pool, outbox_hospital: factory.Hospital) -> None:
    doctor = outbox_hospital.doctor.doctor_id
    tokens = [await issue(outbox_pool, outbox_hospital) for _ in range(5)]
    fourth, day = tokens[3]["token_id"], tokens[3]["visit_date"]

    async def recompute() -> int | None:
        await outbox_pool.execute("SELECT doctor_queue_snapshot($1, $2, true)", doctor, day)
        position: int | None = await outbox_pool.fetchval(
            "SELECT queue_position FROM tokens WHERE token_id = $1", fourth)
        return position

    async def t_minus_3(token_id: object) -> list[asyncpg.Record]:
        return [r for r in await outbox_rows(outbox_pool, token_id) if r["event_type"] == "T_MINUS_3"]

    assert await recompute() == 4
    assert [len(await t_minus_3(t["token_id"])) for t in tokens] == [1, 1, 1, 1, 0]
    emergency = await factory.issue(outbox_pool, outbox_hospital, booking_type="EMERGENCY", priority=3)
    assert await recompute() == 5
    await outbox_pool.execute("UPDATE tokens SET status = 'CANCELLED' WHERE token_id = $1",
                              emergency["token_id"])
    assert await recompute() == 4
    assert await recompute() == 4
    [row] = await t_minus_3(fourth)
    assert "(4 in line" in row["message"]
