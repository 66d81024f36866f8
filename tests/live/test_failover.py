"""Two app processes share the database and Redis: frames cross processes, and when the leader
dies the other process takes over the queue engine."""

from __future__ import annotations

import asyncio
import secrets
import signal

from tests.live.actions import api_queue, issue_token, same_queue
from tests.live.conftest import engine_role, staff_http, wait_for_role
from tests.support.ws_client import live_client


def waiting_numbers(data):
    return [w["token_number"] for w in data["waiting"]]


async def test_action_on_one_process_reaches_clients_of_the_other_and_survives_leader_death(
        start_server, lock_key, hospital):
    namespace = f"opdfail{secrets.token_hex(4)}"
    first = await start_server(namespace=namespace, lock_key=lock_key)
    second = await start_server(namespace=namespace, lock_key=lock_key)
    await wait_for_role(first, "leader")
    assert await engine_role(second) == "follower"

    key = hospital.keys["admin"]
    doctor = hospital.doctor
    topic = f"doctor:{doctor.doctor_id}"
    async with live_client(first.ws_url, key) as on_first, \
            live_client(second.ws_url, key) as on_second, \
            staff_http(first, key) as http_first, staff_http(second, key) as http_second:
        await on_first.subscribed(topic)
        await on_second.subscribed(topic)

        # Through the leader's process, seen by the follower's client, and the other way round.
        one = await issue_token(http_first, doctor.doctor_id)
        await on_second.data_where(topic, lambda d: waiting_numbers(d) == [one["token_number"]])
        two = await issue_token(http_second, doctor.doctor_id)
        expected = [one["token_number"], two["token_number"]]
        await on_first.data_where(topic, lambda d: waiting_numbers(d) == expected)
        await on_second.data_where(topic, lambda d: waiting_numbers(d) == expected)

        # The leader dies without a goodbye; its lock goes with its connection.
        first.kill()
        await wait_for_role(second, "leader", timeout=15)
        three = await issue_token(http_second, doctor.doctor_id)
        expected.append(three["token_number"])
        data = await on_second.data_where(topic, lambda d: waiting_numbers(d) == expected,
                                          timeout=15)
        assert same_queue(data, await api_queue(http_second, doctor.doctor_id))
        await on_first.until(lambda c: c.closed, what="close of the killed process's socket")

    # A new client of the survivor starts from the new engine's state.
    async with live_client(second.ws_url, key) as late:
        reply = await late.subscribed(topic)
        assert reply["type"] == "snapshot" and waiting_numbers(reply["data"]) == expected


async def test_a_frozen_leader_is_replaced_and_publishes_nothing_when_it_resumes(
        start_server, lock_key, hospital):
    namespace = f"opdfreeze{secrets.token_hex(4)}"
    first = await start_server(namespace=namespace, lock_key=lock_key)
    await wait_for_role(first, "leader")
    second = await start_server(namespace=namespace, lock_key=lock_key)
    assert await engine_role(second) == "follower"
    key = hospital.keys["admin"]
    doctor = hospital.doctor
    topic = f"doctor:{doctor.doctor_id}"
    async with live_client(second.ws_url, key) as screen, staff_http(second, key) as http:
        await screen.subscribed(topic)
        one = await issue_token(http, doctor.doctor_id)
        await screen.data_where(topic, lambda d: waiting_numbers(d) == [one["token_number"]])
        old_epoch = screen.snapshots[topic]["epoch"]

        # The leader freezes (SIGSTOP: its connections stay open, so only the lease can tell).
        first.process.send_signal(signal.SIGSTOP)
        try:
            await wait_for_role(second, "leader", timeout=15)
            two = await issue_token(http, doctor.doctor_id)
            expected = [one["token_number"], two["token_number"]]
            await screen.data_where(topic, lambda d: waiting_numbers(d) == expected, timeout=15)
            new_epoch = screen.snapshots[topic]["epoch"]
            assert new_epoch != old_epoch
            mark = len(screen.messages)
        finally:
            first.process.send_signal(signal.SIGCONT)
        # Resumed, it finds its lease gone and steps down; whatever it had pending when it froze
        # is refused by the bus (an older term), so no screen sees a frame of its epoch again.
        await wait_for_role(first, "follower", timeout=15)
        three = await issue_token(http, doctor.doctor_id)
        expected.append(three["token_number"])
        await screen.data_where(topic, lambda d: waiting_numbers(d) == expected, timeout=15)
        await asyncio.sleep(1)
        late = [m for m in screen.messages[mark:] if m.get("type") == "snapshot"]
        assert late and all(m["epoch"] == new_epoch for m in late), [m["epoch"] for m in late]


async def test_a_new_leader_never_shows_a_board_missing_a_desk(start_server, lock_key, hospital):
    namespace = f"opddesk{secrets.token_hex(4)}"
    first = await start_server(namespace=namespace, lock_key=lock_key)
    await wait_for_role(first, "leader")
    second = await start_server(namespace=namespace, lock_key=lock_key)
    topic = f"department:{hospital.dept_id}"
    key = hospital.keys["admin"]
    async with live_client(second.ws_url, key) as board, staff_http(second, key) as http:
        await board.subscribed(topic)
        token = await issue_token(http, hospital.doctor.doctor_id)
        await board.data_where(topic, lambda d: d["waiting_count"] == 1)
        first.kill()
        await wait_for_role(second, "leader", timeout=15)
        more = await issue_token(http, hospital.doctors[1].doctor_id)
        await board.data_where(topic, lambda d: d["waiting_count"] == 2, timeout=15)
        # The new leader publishes the board once it has loaded both doctors' queues, never
        # with one desk while the other is still loading.
        desks = [len(m["data"]["desks"]) for m in board.snapshots_of(topic)]
        assert set(desks) == {2}, desks
        assert token["token_number"] != more["token_number"]
