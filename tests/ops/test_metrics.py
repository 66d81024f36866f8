"""GET /metrics: the figures move as the app works (values, not just names), route templates
and never ids in labels, the guard, and several processes added up (app/metrics.py)."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.ops.conftest import StaffHttp
from tests.support import factory
from tests.support.app_server import AppServer
from tests.support.ws_client import live_client

pytestmark = pytest.mark.calendar

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(base_url: str, **headers: str) -> tuple[Samples, str]:
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as http:
        response = await http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples, response.text


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every sample of `name` whose labels include `labels`."""
    return sum(v for (n, have), v in samples.items()
               if n == name and set(labels.items()) <= set(have))


async def test_figures_move_as_tokens_change(server: AppServer, pool: asyncpg.Pool,
                                             staff_http: StaffHttp) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    before, _ = await scrape(server.base_url)
    topic = f"department:{hospital.dept_id}"
    async with live_client(server.ws_url, hospital.keys["admin"]) as ws, \
            staff_http(hospital.keys["receptionist"]) as desk:
        await ws.subscribed(topic)
        issued = await desk.post("/tokens", json={
            "doctor_id": str(hospital.doctor.doctor_id), "booking_type": "WALK_IN", "priority": 1,
            "patient": {"name": "Metric Patient", "phone": "98765 43210", "sms_opt_in": True}})
        assert issued.status_code == 201, issued.text
        token_id = issued.json()["token_id"]
        assert (await desk.get(f"/tokens/{token_id}")).status_code == 200
        assert (await desk.get("/tokens/not-a-uuid")).status_code == 404
        await ws.data_where(topic, lambda d: any(x["waiting_count"] == 1 for x in d["desks"]),
                            what="the new token on the board")
        await ws.send({"type": "subscribe", "topic": "doctor:not-a-doctor"})   # refused

        async def moved() -> tuple[Samples, str]:
            while True:
                after, text = await scrape(server.base_url)
                if value(after, "opd_notifications_total", provider="log", result="sent") > \
                        value(before, "opd_notifications_total", provider="log", result="sent"):
                    return after, text
                await asyncio.sleep(0.2)

        after, text = await asyncio.wait_for(moved(), timeout=15)
        # While the socket is open: it and its subscription are counted.
        assert value(after, "opd_ws_connections") >= 1
        assert value(after, "opd_ws_subscriptions", kind="department") >= 1

    def grew(name: str, by: float = 1, **labels: str) -> None:
        assert value(after, name, **labels) - value(before, name, **labels) >= by, (name, labels)

    grew("opd_http_requests_total", method="POST", route="/api/v1/tokens", status="201")
    grew("opd_http_requests_total", method="GET", route="/api/v1/tokens/{token_id}", status="200")
    grew("opd_http_requests_total", method="GET", route="/api/v1/tokens/{token_id}", status="404")
    grew("opd_http_request_seconds_count", method="POST", route="/api/v1/tokens")
    grew("opd_changes_total")
    grew("opd_commit_to_publish_seconds_count")
    grew("opd_recompute_seconds_count")
    grew("opd_ws_frames_sent_total")
    grew("opd_ws_subscribe_errors_total", reason="denied")
    grew("opd_notification_send_seconds_count", provider="log")
    assert value(after, "opd_engine_leader") == 1
    assert value(after, "opd_db_pool_connections", state="max") == 24
    # The publish latency is a duration: its sum grew by a positive, plausible amount.
    latency = (value(after, "opd_commit_to_publish_seconds_sum")
               - value(before, "opd_commit_to_publish_seconds_sum"))
    assert 0 < latency < 60 * (value(after, "opd_commit_to_publish_seconds_count")
                               - value(before, "opd_commit_to_publish_seconds_count"))
    # Bounded labels: no id of a token, doctor or hospital, no patient data.
    for secret in (token_id, str(hospital.doctor.doctor_id), str(hospital.hospital_id), "Metric Patient",
                   "9876543210"):
        assert secret not in text


async def test_the_guard(server: AppServer, database: str, redis_url: str) -> None:
    # No token configured: this machine only. A request relayed by a (trusted, local) proxy
    # for a remote client is refused.
    async with httpx.AsyncClient(base_url=server.base_url, timeout=15) as http:
        assert (await http.get("/metrics")).status_code == 200
        remote = await http.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
        assert remote.status_code == 403, remote.text
        assert "OPD_METRICS_TOKEN" in remote.json()["error"]["message"]

    token = secrets.token_urlsafe(16)
    guarded = await asyncio.to_thread(AppServer(
        database, redis_url, f"opdmetrics{secrets.token_hex(4)}",
        extra_env={"OPD_METRICS_TOKEN": token, "OPD_ENGINE": "off"}).start)
    try:
        async with httpx.AsyncClient(base_url=guarded.base_url, timeout=15) as http:
            assert (await http.get("/metrics")).status_code == 401
            assert (await http.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
            allowed = await http.get("/metrics", headers={"Authorization": f"Bearer {token}",
                                                          "X-Forwarded-For": "203.0.113.9"})
            assert allowed.status_code == 200
            assert "opd_http_requests_total" in allowed.text
    finally:
        guarded.stop()


async def test_several_processes_add_up(database: str, redis_url: str, tmp_path: Path) -> None:
    """Two processes sharing PROMETHEUS_MULTIPROC_DIR (as uvicorn workers do): either one,
    scraped, reports both's sockets and requests."""
    namespace = f"opdmetrics{secrets.token_hex(4)}"
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "OPD_ENGINE": "off"}
    first, second = await asyncio.gather(*(asyncio.to_thread(AppServer(database, redis_url, namespace,
                                                                       extra_env=env).start)
                                           for _ in range(2)))
    try:
        before, _ = await scrape(first.base_url)
        async with httpx.AsyncClient(base_url=second.base_url, timeout=15) as http:
            for _ in range(3):
                assert (await http.get("/healthz")).status_code == 200
        async with live_client(first.ws_url), live_client(second.ws_url), live_client(second.ws_url):
            async def three_sockets() -> Samples:
                while True:   # each process writes its gauges every few seconds
                    samples, _ = await scrape(first.base_url)
                    if value(samples, "opd_ws_connections") == 3:
                        return samples
                    await asyncio.sleep(0.5)

            after = await asyncio.wait_for(three_sockets(), timeout=20)
        assert value(after, "opd_http_requests_total", route="/healthz", status="200") - \
            value(before, "opd_http_requests_total", route="/healthz", status="200") >= 3
    finally:
        first.stop()
        second.stop()
