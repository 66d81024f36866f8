"""Bad client messages get an error frame that says what was wrong, and the connection's
existing subscriptions keep working."""

from __future__ import annotations

import json

import pytest
import websockets

from tests.live.actions import issue_token
from tests.support import factory
from tests.support.ws_client import live_client


async def error_for(client, message, topic=None):
    since = len(client.messages)
    await client.send(message)
    error = await client.expect(lambda m: m["type"] == "error", since=since,
                                what=f"error frame for {str(message)[:80]!r}")
    assert error.get("topic") == topic, error
    assert isinstance(error["message"], str) and error["message"]
    return error["message"]


async def test_bad_messages_get_errors_and_subscriptions_survive(server, hospital, admin, pool):
    other = await factory.make_hospital(pool)
    doctor = hospital.doctor
    topic = f"doctor:{doctor.doctor_id}"
    token = await issue_token(admin, doctor.doctor_id)
    token_topic = f"token:{token['tracking_code']}"
    async with live_client(server.ws_url, hospital.keys["admin"]) as staff, \
            live_client(server.ws_url) as patient, \
            live_client(server.ws_url, hospital.keys["doctor"]) as doctor_screen:
        await staff.subscribed(topic)
        await patient.subscribed(token_topic)

        assert "JSON" in await error_for(staff, "{not json")
        assert "object" in await error_for(staff, "[1, 2, 3]")
        assert "unknown message type" in await error_for(staff, {"type": "dance"})
        assert "unknown message type" in await error_for(staff, {"type": "dance", "topic": topic},
                                                         topic=topic)
        assert "topic" in await error_for(staff, {"type": "subscribe"})
        assert "unknown topic" in await error_for(
            staff, {"type": "subscribe", "topic": "weather:today"}, topic="weather:today")
        assert "unknown topic" in await error_for(
            staff, {"type": "subscribe", "topic": "doctor"}, topic="doctor")
        assert "version" in await error_for(
            staff, {"type": "subscribe", "topic": topic, "epoch": "e", "version": "7"}, topic=topic)
        assert "4096" in await error_for(
            staff, json.dumps({"type": "subscribe", "topic": topic, "pad": "x" * 5000}))
        foreign = f"doctor:{other.doctor.doctor_id}"
        assert "not found" in await error_for(staff, {"type": "subscribe", "topic": foreign},
                                              topic=foreign)
        unknown = "doctor:00000000-0000-4000-8000-000000000000"
        assert "not found" in await error_for(staff, {"type": "subscribe", "topic": unknown},
                                              topic=unknown)
        assert "not found" in await error_for(staff, {"type": "subscribe", "topic": "doctor:42"},
                                              topic="doctor:42")
        colleague = f"doctor:{hospital.doctors[1].doctor_id}"
        assert "own" in await error_for(doctor_screen, {"type": "subscribe", "topic": colleague},
                                        topic=colleague)

        # Patients (no credential) reach token topics only, and only with a real code.
        for staff_topic in (topic, f"department:{hospital.dept_id}",
                            f"hospital:{hospital.hospital_id}", f"cabin:{doctor.cabin_id}"):
            assert "credential" in await error_for(
                patient, {"type": "subscribe", "topic": staff_topic}, topic=staff_topic)
        for bad_code in ("token:nonsense", "token:" + "A" * 24,
                         "token:" + token["tracking_code"][:-1] + "?"):
            assert "tracking code" in await error_for(
                patient, {"type": "subscribe", "topic": bad_code}, topic=bad_code)
        assert "4096" in await error_for(patient, "y" * 10_000)

        # Both connections still work: ping, and the next change arrives on both topics.
        since = len(staff.messages)
        await staff.send({"type": "ping"})
        await staff.expect(lambda m: m == {"type": "pong"}, since=since, what="pong")
        await admin.post(f"/api/v1/doctors/{doctor.doctor_id}/call-next", json={})
        await staff.data_where(topic, lambda d: (d["now_serving"] or {}).get("token_number")
                               == token["token_number"])
        await patient.data_where(token_topic, lambda d: d["status"] == "WAITING")
        assert not staff.closed and not patient.closed


async def test_every_pipelined_bad_message_gets_its_own_error(server, hospital):
    """Errors are replies, not snapshots: several bad messages sent back to back must each get
    an error frame (naming its topic), none overwritten by the next."""
    bad_topics = [f"nowhere:{n}" for n in range(5)]
    async with live_client(server.ws_url, hospital.keys["admin"]) as staff:
        for topic in bad_topics:
            await staff.subscribe(topic)
        mark = len(staff.messages)
        await staff.send({"type": "ping"})
        await staff.expect(lambda m: m["type"] == "pong", since=mark, what="pong")
        errors = [m.get("topic") for m in staff.messages if m["type"] == "error"]
        assert errors == bad_topics


async def test_bad_credential_is_refused(server):
    # Accepted, told why, then closed 4401: a browser sees the code (a refused handshake is 1006).
    async with websockets.connect(server.ws_url, open_timeout=10,
                                  additional_headers={"Authorization": "Bearer opd_wrong"}) as ws:
        first = json.loads(await ws.recv())
        assert first["type"] == "error" and first["message"], first
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 4401
