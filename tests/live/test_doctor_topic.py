"""A doctor's live topic follows the API's actions and agrees with the database."""

from __future__ import annotations

from typing import Any

from tests.live.actions import (
    api_queue,
    api_track,
    assert_etas_grow,
    call_next,
    issue_token,
    queue_summary,
    same_queue,
    token_action,
    wait_for_db,
)
from tests.support.ws_client import live_client


async def test_doctor_snapshot_matches_api_and_database(server, hospital, admin, pool):
    doctor = hospital.doctor
    topic = f"doctor:{doctor.doctor_id}"
    async with live_client(server.ws_url, hospital.keys["admin"]) as client:
        reply = await client.subscribed(topic)
        assert reply["type"] in ("snapshot", "subscribed"), reply

        tokens = [await issue_token(admin, doctor.doctor_id, name=f"Queue Patient {n}")
                  for n in range(4)]
        numbers = [t["token_number"] for t in tokens]
        data = await client.data_where(topic, lambda d: len(d["waiting"]) == 4)
        # Nobody is with the doctor: positions 1..4 in arrival order, each waiting longer.
        summary = queue_summary(data)
        assert (summary[0], [(n, p) for n, p, _ in summary[1]]) == (
            None, [(numbers[0], 1), (numbers[1], 2), (numbers[2], 3), (numbers[3], 4)])
        assert_etas_grow(data["waiting"])
        assert same_queue(data, await api_queue(admin, doctor.doctor_id))
        await wait_for_db(pool, doctor.doctor_id, queue_summary(data)[1])

        await call_next(admin, doctor.doctor_id)
        data = await client.data_where(
            topic, lambda d: (d["now_serving"] or {}).get("token_number") == numbers[0])
        summary = queue_summary(data)
        assert (summary[0], [(n, p) for n, p, _ in summary[1]]) == (
            numbers[0], [(numbers[1], 1), (numbers[2], 2), (numbers[3], 3)])
        assert_etas_grow(data["waiting"])
        assert data["now_serving"]["status"] == "WAITING"
        assert same_queue(data, await api_queue(admin, doctor.doctor_id))
        await wait_for_db(pool, doctor.doctor_id, queue_summary(data)[1])

        # Start and complete the first, then "complete and call next" for the second.
        await token_action(admin, tokens[0]["token_id"], "start")
        await call_next(admin, doctor.doctor_id, complete_current=True)
        data = await client.data_where(
            topic, lambda d: (d["now_serving"] or {}).get("token_number") == numbers[1])
        summary = queue_summary(data)
        assert (summary[0], [(n, p) for n, p, _ in summary[1]]) == (
            numbers[1], [(numbers[2], 1), (numbers[3], 2)])
        assert_etas_grow(data["waiting"])
        assert data["completed_count"] == 1
        assert same_queue(data, await api_queue(admin, doctor.doctor_id))
        await wait_for_db(pool, doctor.doctor_id, queue_summary(data)[1])
        # The called token has left the queue: no position; its ETA is "now".
        row = await pool.fetchrow("SELECT status, queue_position, estimated_wait_time FROM tokens "
                                  "WHERE token_id = $1", tokens[1]["token_id"])
        assert (row["status"], row["queue_position"]) == ("WAITING", None)


async def test_other_doctor_topic_is_not_disturbed(server, hospital, admin):
    """A change to one doctor's queue publishes that doctor's topic, not a colleague's."""
    first, second = hospital.doctors
    async with live_client(server.ws_url, hospital.keys["admin"]) as client:
        await client.subscribed(f"doctor:{second.doctor_id}")
        await client.subscribed(f"doctor:{first.doctor_id}")
        token = await issue_token(admin, first.doctor_id)
        await client.data_where(f"doctor:{first.doctor_id}",
                                lambda d: [w["token_number"] for w in d["waiting"]]
                                == [token["token_number"]])
        assert all(not m["data"]["waiting"]
                   for m in client.snapshots_of(f"doctor:{second.doctor_id}"))


async def views_equal_track(phones: Any, http: Any, codes: list[str]) -> None:
    """Every patient topic ends equal to GET /track of its code."""
    for code in codes:
        view = await api_track(http, code)
        await phones.data_where(f"token:{code}", lambda d, v=view: d == v,
                                what=f"token:{code} equal to GET /track")


async def test_patient_topics_follow_every_kind_of_change(server, hospital, admin):
    """The engine rebuilds only the patient views that changed (doctor_live_views); after each
    kind of change every patient's topic must still equal GET /track."""
    doctor = hospital.doctor.doctor_id
    tokens = [await issue_token(admin, doctor) for _ in range(4)]
    codes = [t["tracking_code"] for t in tokens]

    async with live_client(server.ws_url) as phones:
        for code in codes:
            await phones.subscribed(f"token:{code}")
        await views_equal_track(phones, admin, codes)
        tokens.append(await issue_token(admin, doctor))        # a walk-in joins at the end
        codes.append(tokens[-1]["tracking_code"])
        await phones.subscribed(f"token:{codes[-1]}")
        await views_equal_track(phones, admin, codes)
        await call_next(admin, doctor)                          # everyone moves up
        await views_equal_track(phones, admin, codes)
        await token_action(admin, tokens[0]["token_id"], "start")  # same patient, now in the cabin
        await views_equal_track(phones, admin, codes)
        await token_action(admin, tokens[3]["token_id"], "no-show")
        await views_equal_track(phones, admin, codes)                                       # the one behind moves up
        await call_next(admin, doctor, complete_current=True)
        await views_equal_track(phones, admin, codes)


async def test_patient_topics_follow_bookings_transfers_and_check_ins(server, hospital, admin, pool):
    """The engine keeps the open views it published and moves them with the queue itself; a
    booked visit (which shows who is served), a token moved to a colleague and a booking that
    checks in must still end equal to GET /track, on both doctors."""
    first, second = hospital.doctors
    now = (await pool.fetchval("SELECT opd_now()")).isoformat()
    tokens = [await issue_token(admin, first.doctor_id) for _ in range(3)]
    tokens.append(await issue_token(admin, first.doctor_id, booking_type="ONLINE", scheduled_time=now))
    tokens.append(await issue_token(admin, second.doctor_id))
    codes = [t["tracking_code"] for t in tokens]
    assert tokens[3]["status"] == "BOOKED"

    async with live_client(server.ws_url) as phones:
        for code in codes:
            await phones.subscribed(f"token:{code}")
        await views_equal_track(phones, admin, codes)
        await call_next(admin, first.doctor_id)                 # the booking sees the new call
        await views_equal_track(phones, admin, codes)
        await token_action(admin, tokens[2]["token_id"], "transfer",
                           {"to_doctor_id": str(second.doctor_id)})
        await views_equal_track(phones, admin, codes)
        await call_next(admin, second.doctor_id)                # the moved token follows its new queue
        await views_equal_track(phones, admin, codes)
        await token_action(admin, tokens[3]["token_id"], "check-in",
                           {"override_reason": "at the desk"})
        await views_equal_track(phones, admin, codes)
        await token_action(admin, tokens[0]["token_id"], "start")
        await call_next(admin, first.doctor_id, complete_current=True)
        await views_equal_track(phones, admin, codes)
        assert (await api_track(admin, codes[3]))["status"] in ("CHECKED_IN", "WAITING")
