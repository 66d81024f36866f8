"""Two app processes share the database and Redis: frames cross processes, and when the leader
dies the other process takes over the queue engine."""

from __future__ import annotations

import secrets

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
