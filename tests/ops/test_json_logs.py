"""OPD_LOG_FORMAT=json: one JSON object per line, each line of a request with its request id
(the caller's X-Request-ID, or a new one sent back), and no password or patient data."""

from __future__ import annotations

import asyncio
import json
import re
import secrets

import httpx

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
