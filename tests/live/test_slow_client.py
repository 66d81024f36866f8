"""A client that never reads cannot hold up anyone else: each client has its own writer and
a latest-per-topic mailbox."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import websockets

from tests.live.actions import api_queue, call_next, issue_token, queue_summary, same_queue, token_action
from tests.support.ws_client import live_client

REASON = "follow-up; " + "long history of symptoms, " * 15  # bigger frames fill buffers sooner


async def test_client_that_never_reads_does_not_delay_others(server, hospital, admin):
    first, second = hospital.doctors
    tokens = [await issue_token(admin, first.doctor_id, visit_reason=REASON) for _ in range(40)]
    tokens += [await issue_token(admin, second.doctor_id, visit_reason=REASON) for _ in range(10)]
    topic = f"doctor:{first.doctor_id}"
    busy_topics = ([f"doctor:{d.doctor_id}" for d in hospital.doctors]
                   + [f"cabin:{d.cabin_id}" for d in hospital.doctors]
                   + [f"department:{hospital.dept_id}", f"hospital:{hospital.hospital_id}"]
                   + [f"token:{t['tracking_code']}" for t in tokens])

    # A tiny kernel receive buffer and a one-message client queue: once a few frames have
    # come, this socket stops reading and the server's sends to it block.
    url = urlsplit(server.ws_url)
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    raw.connect((url.hostname, url.port))
    raw.setblocking(False)
    stuck = await websockets.connect(server.ws_url, sock=raw, max_queue=1, open_timeout=10,
                                     additional_headers={
                                         "Authorization": f"Bearer {hospital.keys['admin']}"})
    try:
        for busy in busy_topics:
            await stuck.send(f'{{"type":"subscribe","topic":"{busy}"}}')

        async with live_client(server.ws_url, hospital.keys["admin"]) as watcher:
            await watcher.subscribed(topic)
            numbers = [t["token_number"] for t in tokens[:40]]
            # Every one of 60 changes (30 calls, 30 starts) reaches the reading client.
            for n in range(30):
                called = await call_next(admin, first.doctor_id, complete_current=n > 0)
                await token_action(admin, called["token_id"], "start")
                number, left = numbers[n], 39 - n
                await watcher.data_where(
                    topic, lambda d, number=number, left=left:
                    (d["now_serving"] or {}).get("token_number") == number
                    and d["now_serving"]["status"] == "IN_CONSULTATION"
                    and len(d["waiting"]) == left,
                    what=f"{number} in consultation, {left} waiting")
            data = watcher.snapshots[topic]["data"]
            assert same_queue(data, await api_queue(admin, first.doctor_id))
            assert queue_summary(data)[0] == numbers[29]
            assert data["completed_count"] == 29
    finally:
        stuck.transport.abort()
