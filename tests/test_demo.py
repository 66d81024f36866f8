"""The demo hospital loads on any date and at any hour (run under the calendar clocks too)."""

from __future__ import annotations

import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from app import clock
from app.demo import HOSPITAL_CODE, demo_banner, load_demo
from app.notify.providers import LogProvider, Message

pytestmark = pytest.mark.calendar


async def test_demo_loads_today_on_any_clock(pool: asyncpg.Pool) -> None:
    first = await load_demo(pool)
    assert "made today's tokens" in first or "already there" in first
    hospital = await pool.fetchrow(
        "SELECT hospital_id, hospital_today(hospital_id) AS today, timezone FROM hospitals WHERE code = $1",
        HOSPITAL_CODE)
    # The app's clock and the database's agree on the hospital's day.
    assert hospital["today"] == clock.now().astimezone(ZoneInfo(hospital["timezone"])).date()

    # Every token is today's, but the bookings moved to tomorrow ("asked for another day").
    days = await pool.fetch(
        """SELECT DISTINCT visit_date FROM tokens
           WHERE hospital_id = $1 AND NOT (status = 'BOOKED' AND visit_date = $2::date + 1)""",
        hospital["hospital_id"], hospital["today"])
    assert [r["visit_date"] for r in days] == [hospital["today"]]
    rostered = await pool.fetch(
        """SELECT d.doctor_id, d.emp_code FROM doctors d JOIN cabin_doctors a USING (doctor_id)
           WHERE d.hospital_id = $1 AND a.shift_date = $2""", hospital["hospital_id"], hospital["today"])
    assert len(rostered) == 14
    for doctor in rostered:  # every queue of the day computes, whatever the hour
        queue = await pool.fetch("SELECT * FROM doctor_queue($1, $2)", doctor["doctor_id"], hospital["today"])
        assert queue, f"{doctor['emp_code']} has nobody waiting"
        assert all(row["eta_minutes"] is None or row["eta_minutes"] >= 0 for row in queue)

    again = await load_demo(pool)
    assert "already there" in again
    banner = await demo_banner(pool, "http://127.0.0.1:8000")
    assert "/t/None" not in banner and "staff API key" in banner


async def test_the_demo_key_is_kept_and_reused(pool: asyncpg.Pool, tmp_path: Path) -> None:
    await load_demo(pool)
    key_file = tmp_path / "demo-api-key"
    first = await demo_banner(pool, "http://127.0.0.1:8000", key_file, tmp_path / "messages.log")
    key = key_file.read_text().strip()
    assert key in first and "messages.log" in first
    assert key_file.stat().st_mode & 0o077 == 0   # the key is readable by its owner only
    keys = await pool.fetchval("SELECT count(*) FROM api_keys")
    again = await demo_banner(pool, "http://127.0.0.1:8000", key_file)
    assert key in again and await pool.fetchval("SELECT count(*) FROM api_keys") == keys
    # A revoked or foreign key is replaced, not reused.
    key_file.write_text("opd_not_a_real_key\n")
    await demo_banner(pool, "http://127.0.0.1:8000", key_file)
    assert key_file.read_text().strip() != "opd_not_a_real_key"


async def test_without_a_provider_messages_can_go_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "messages.log"
    message = Message(uuid.uuid4(), uuid.uuid4(), None, "SMS", "TOKEN_ISSUED", "en", "Token CARD-001 issued",
                      "+919876543210", 0)
    assert await LogProvider(out).send(message) is None
    text = out.read_text()
    assert "TOKEN_ISSUED: Token CARD-001 issued" in text and "+91" not in text


def test_down_stops_the_embedded_postgresql(tmp_path: Path) -> None:
    from app.db.embedded import embedded_database_url, stop_embedded

    dsn = embedded_database_url(tmp_path, "downtest")
    assert dsn.startswith("postgresql://")
    assert "stopped the embedded PostgreSQL" in stop_embedded(tmp_path)
    assert "no embedded PostgreSQL running" in stop_embedded(tmp_path)


async def test_the_demo_shows_each_message_as_each_provider_receives_it(pool: asyncpg.Pool) -> None:
    from app.notify.preview import preview_messages
    from app.settings import Settings

    await load_demo(pool)
    hospital_id = await pool.fetchval("SELECT hospital_id FROM hospitals WHERE code = $1", HOSPITAL_CODE)
    assert await pool.fetchval("SELECT count(*) FROM message_registrations WHERE hospital_id = $1", hospital_id) == 24
    results = await preview_messages(pool, Settings(), hospital_id, "CALL_NOW", "hi")

    assert [(r.channel, r.provider) for r in results] == [
        ("SMS", "msg91"), ("SMS", "exotel"), ("SMS", "gupshup"), ("SMS", "twilio"), ("WHATSAPP", "whatsapp"),
        ("PUSH", "webpush")]
    assert [r.refused for r in results] == [None] * 6
    by_provider = {r.provider: r for r in results}
    assert '"template_id": "demo_call_now_hi"' in (by_provider["msg91"].body or "")
    assert "dltTemplateId=1107" in (by_provider["gupshup"].body or "") and "msg_type=Unicode_Text" in (
        by_provider["gupshup"].body or "")
    assert '"name": "opd_call_now"' in (by_provider["whatsapp"].body or "")
    assert (by_provider["webpush"].headers or {})["urgency"] == "high"
    # Credentials are the names of the settings that hold them, never a value.
    assert (by_provider["msg91"].headers or {})["authkey"] == "<OPD_MSG91_AUTHKEY>"
    assert "9800000001" in (by_provider["exotel"].body or "")    # a sample number, not the patient's
    # The preview was rolled back: no message, no changed patient, no subscription stayed.
    left = await pool.fetchrow(
        """SELECT (SELECT count(*) FROM notifications_log WHERE phone_number = '+919800000001') AS outbox,
                  (SELECT count(*) FROM patients WHERE phone = '+919800000001') AS patients,
                  (SELECT count(*) FROM push_subscriptions WHERE endpoint LIKE '%/preview-only') AS push""")
    assert dict(left) == {"outbox": 0, "patients": 0, "push": 0}
