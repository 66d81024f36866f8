"""WebSocket access (app/live/ws.py, app/live/access.py): staff topics need a credential of the
topic's hospital, and a cookie credential is accepted only from this site's own Origin."""

from __future__ import annotations

import asyncpg
import httpx

from tests.security.helpers import (
    API,
    assert_ws_refused,
    bearer,
    is_error,
    make_user,
    sign_in,
    ws_client,
)
from tests.support import factory
from tests.support.app_server import AppServer


def staff_topics(hospital: factory.Hospital) -> list[str]:
    return [f"doctor:{hospital.doctor.doctor_id}", f"department:{hospital.dept_id}",
            f"hospital:{hospital.hospital_id}", f"cabin:{hospital.doctor.cabin_id}"]


async def test_staff_topics_need_a_credential(server: AppServer, hospital: factory.Hospital) -> None:
    async with ws_client(server.ws_url) as ws:
        for topic in staff_topics(hospital):
            reply = await ws.subscribed(topic)
            assert is_error(reply), reply
            assert not ws.snapshots_of(topic)


async def test_key_of_a_cannot_watch_b(server: AppServer, hospital: factory.Hospital,
                                       other: factory.Hospital) -> None:
    async with ws_client(server.ws_url, key=hospital.keys["admin"]) as ws:
        assert not is_error(await ws.subscribed(f"doctor:{hospital.doctor.doctor_id}"))
        for topic in staff_topics(other):
            reply = await ws.subscribed(topic)
            assert is_error(reply) and reply["message"].endswith("not found"), reply


async def test_doctor_watches_only_their_own_queue(server: AppServer, hospital: factory.Hospital) -> None:
    async with ws_client(server.ws_url, key=hospital.keys["doctor"]) as ws:
        assert not is_error(await ws.subscribed(f"doctor:{hospital.doctor.doctor_id}"))
        assert is_error(await ws.subscribed(f"doctor:{hospital.doctors[1].doctor_id}"))


async def test_invalid_key_is_refused_at_upgrade(server: AppServer) -> None:
    await assert_ws_refused(server.ws_url, code=4401, key="opd_" + "x" * 43)


async def test_cookie_needs_this_sites_origin(anon: httpx.AsyncClient, pool: asyncpg.Pool,
                                              server: AppServer, hospital: factory.Hospital) -> None:
    session = await sign_in(anon, (await make_user(pool, hospital, "admin"))[0])
    cookies = {"opd_session": session}
    for origin in ("https://evil.example", "null", None):
        await assert_ws_refused(server.ws_url, cookies=cookies, origin=origin)
    async with ws_client(server.ws_url, cookies=cookies, origin=server.base_url) as ws:
        assert not is_error(await ws.subscribed(f"doctor:{hospital.doctor.doctor_id}"))


async def test_revoked_key_cannot_subscribe_on_its_open_socket(anon: httpx.AsyncClient, server: AppServer,
                                                               hospital: factory.Hospital) -> None:
    admin = bearer(hospital.keys["admin"])
    created = (await anon.post(f"{API}/api-keys", json={"role": "admin"}, headers=admin)).json()
    async with ws_client(server.ws_url, key=created["key"]) as ws:
        assert not is_error(await ws.subscribed(f"hospital:{hospital.hospital_id}"))
        await anon.post(f"{API}/api-keys/{created['key_id']}/revoke", json={}, headers=admin)
        await assert_ws_refused(server.ws_url, key=created["key"])
        if not ws.closed:
            reply = await ws.subscribed(f"doctor:{hospital.doctor.doctor_id}")
            assert is_error(reply), f"a revoked key still subscribes on its open socket: {reply['type']}"
