"""A client that reconnects says which (epoch, version) it has; the server sends a snapshot
only when that is not the current one."""

from __future__ import annotations

from tests.live.actions import api_queue, api_track, call_next, issue_token
from tests.support.ws_client import live_client


async def settled_snapshot(server, hospital, admin, topic):
    """The topic's snapshot once it shows the database's state (nothing else will change)."""
    expected = await api_queue(admin, hospital.doctor.doctor_id)
    async with live_client(server.ws_url, hospital.keys["admin"]) as client:
        await client.subscribe(topic)
        await client.data_where(topic, lambda d: d == expected)
        return client.snapshots[topic]


async def no_snapshot_after(client, since, topic):
    """Round-trip a ping: replies come in order, so a snapshot sent before the pong has arrived."""
    mark = len(client.messages)
    await client.send({"type": "ping"})
    await client.expect(lambda m: m["type"] == "pong", since=mark, what="pong")
    assert [m for m in client.messages[since:] if m["type"] == "snapshot"
            and m["topic"] == topic] == []


async def test_resume_sends_snapshot_only_when_client_is_behind(server, hospital, admin):
    doctor = hospital.doctor
    topic = f"doctor:{doctor.doctor_id}"
    for _ in range(3):
        await issue_token(admin, doctor.doctor_id)
    await call_next(admin, doctor.doctor_id)
    current = await settled_snapshot(server, hospital, admin, topic)
    epoch, version = current["epoch"], current["version"]

    async with live_client(server.ws_url, hospital.keys["admin"]) as client:
        older = await client.subscribed(topic, epoch=epoch, version=version - 1)
        assert older["type"] == "snapshot"
        assert (older["epoch"], older["version"]) == (epoch, version)
        assert older["data"] == current["data"]

    async with live_client(server.ws_url, hospital.keys["admin"]) as client:
        since = len(client.messages)
        reply = await client.subscribed(topic, epoch=epoch, version=version)
        assert reply == {"type": "subscribed", "topic": topic, "epoch": epoch,
                         "version": version, "current": True}
        await no_snapshot_after(client, since, topic)

        # Resubscribing on the same connection with what it has is also just acknowledged.
        since = len(client.messages)
        again = await client.subscribed(topic, epoch=epoch, version=version)
        assert again["type"] == "subscribed" and again["current"] is True
        await no_snapshot_after(client, since, topic)

    async with live_client(server.ws_url, hospital.keys["admin"]) as client:
        # Another engine's epoch: versions are not comparable, so the full view comes.
        other = await client.subscribed(topic, epoch="0123456789ab", version=version + 1000)
        assert other["type"] == "snapshot"
        assert (other["epoch"], other["version"]) == (epoch, version)
        assert other["data"] == current["data"]

    async with live_client(server.ws_url, hospital.keys["admin"]) as client:
        fresh = await client.subscribed(topic)  # no epoch or version: a first visit
        assert fresh["type"] == "snapshot" and fresh["version"] == version


async def test_patient_resumes_token_topic(server, hospital, admin):
    token = await issue_token(admin, hospital.doctor.doctor_id)
    topic = f"token:{token['tracking_code']}"
    expected = await api_track(admin, token["tracking_code"])
    async with live_client(server.ws_url) as patient:
        await patient.subscribe(topic)
        # The engine's snapshot (a not-yet-published token is first read from the database).
        first = await patient.until(
            lambda c: (s := c.snapshots.get(topic)) and s["epoch"] != "db"
            and s["data"] == expected and s, what="the engine's snapshot of the token")
    async with live_client(server.ws_url) as patient:
        since = len(patient.messages)
        reply = await patient.subscribed(topic, epoch=first["epoch"], version=first["version"])
        assert reply["type"] == "subscribed" and reply["current"] is True, reply
        await no_snapshot_after(patient, since, topic)
        behind = await patient.subscribed(topic, epoch=first["epoch"], version=first["version"] - 1)
        assert behind["type"] == "snapshot" and behind["data"] == first["data"]
