"""OPD_LOG_FORMAT=json: one JSON object per line, each line of a request with its request id
(the caller's X-Request-ID, or a new one sent back), and no password or patient data."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import uuid

import asyncpg
import httpx

from tests.support import factory
from tests.support.app_server import AppServer


async def test_log_lines_are_json_and_carry_the_request_id(database: str, redis_url: str) -> None:
    server = await asyncio.to_thread(AppServer(
        database, redis_url, f"opdlogs{secrets.token_hex(4)}",
        extra_env={"OPD_LOG_FORMAT": "json", "OPD_LOG_LEVEL": "INFO", "OPD_ENGINE": "off"}).start)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=15) as http:
            page = await http.get("/login")
            form_token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
            assert form_token is not None
            refused = await http.post("/login", headers={"X-Request-ID": "req-json-test-0001"}, data={
                "username": "nobody-here", "password": "secret-password-xyz",
                "login_csrf": form_token.group(1)})
            assert refused.status_code == 401
            assert refused.headers["x-request-id"] == "req-json-test-0001"
            # No id given (or one that does not look like one): a fresh one comes back.
            fresh = await http.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
            assert re.fullmatch(r"[0-9a-f]{16}", fresh.headers["x-request-id"])
    finally:
        server.stop()
    lines = server.log_path.read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert records, lines
    refusal = [r for r in records if "sign-in refused" in r["message"]]
    assert len(refusal) == 1, records
    assert refusal[0]["request_id"] == "req-json-test-0001"
    assert refusal[0]["level"] == "WARNING" and refusal[0]["logger"] == "app.web.login"
    assert "secret-password-xyz" not in server.log_path.read_text()
    # Every line once the app had started is JSON (uvicorn's first lines come before it).
    started = next(i for i, line in enumerate(lines) if line.startswith("{"))
    assert all(line.startswith("{") for line in lines[started:]), lines[started:]


async def test_the_request_id_reaches_the_audit_trail(server: AppServer, pool: asyncpg.Pool,
                                                      hospital: factory.Hospital) -> None:
    """token_history rows name the request that made them (metadata.request_id), so an audit row
    joins the log lines of its request: issue, call-next and a lifecycle step."""
    headers = {"Authorization": f"Bearer {hospital.keys['admin']}"}
    async with httpx.AsyncClient(base_url=server.base_url + "/api/v1", timeout=15, headers=headers) as http:
        issued = await http.post("/tokens", json={"doctor_id": str(hospital.doctor.doctor_id), "patient": {
            "name": "Audit Trail", "phone": "9876501234"}}, headers={"X-Request-ID": "req-audit-issue"})
        assert issued.status_code == 201, issued.text
        token_id = issued.json()["token_id"]
        called = await http.post(f"/doctors/{hospital.doctor.doctor_id}/call-next", json={},
                                 headers={"X-Request-ID": "req-audit-call"})
        assert called.status_code == 200 and called.json()["token_id"] == token_id, called.text
        started = await http.post(f"/tokens/{token_id}/start", json={}, headers={"X-Request-ID": "req-audit-start"})
        assert started.status_code == 200, started.text
    rows = await pool.fetch("SELECT new_status, metadata->>'request_id' AS request_id FROM token_history "
                            "WHERE token_id = $1 ORDER BY history_id", uuid.UUID(token_id))
    assert [(r["new_status"], r["request_id"]) for r in rows] == [
        ("CHECKED_IN", "req-audit-issue"), ("WAITING", "req-audit-call"), ("IN_CONSULTATION", "req-audit-start")]
