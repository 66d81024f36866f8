"""The OpenAPI document (app/api/openapi.py) and /healthz."""

from __future__ import annotations

import re

import httpx

# Every operation of the staff and patient API, written out so a route that loses its
# declaration (or gains an undocumented one) fails here.
EXPECTED_OPERATIONS = {
    ("get", "/api/v1/hospital"),
    ("patch", "/api/v1/hospital"),
    ("get", "/api/v1/departments"),
    ("post", "/api/v1/departments"),
    ("patch", "/api/v1/departments/{dept_id}"),
    ("get", "/api/v1/cabins"),
    ("post", "/api/v1/cabins"),
    ("patch", "/api/v1/cabins/{cabin_id}"),
    ("get", "/api/v1/doctors"),
    ("post", "/api/v1/doctors"),
    ("patch", "/api/v1/doctors/{doctor_id}"),
    ("post", "/api/v1/doctors/{doctor_id}/pause"),
    ("post", "/api/v1/doctors/{doctor_id}/resume"),
    ("post", "/api/v1/doctors/{doctor_id}/call-next"),
    ("get", "/api/v1/shifts"),
    ("post", "/api/v1/shifts"),
    ("patch", "/api/v1/shifts/{assignment_id}"),
    ("get", "/api/v1/patients"),
    ("post", "/api/v1/patients"),
    ("get", "/api/v1/patients/{patient_id}"),
    ("post", "/api/v1/tokens"),
    ("get", "/api/v1/tokens/{token_id}"),
    ("get", "/api/v1/tokens/{token_id}/history"),
    *{
        ("post", f"/api/v1/tokens/{{token_id}}/{action}")
        for action in (
            "check-in",
            "call",
            "start",
            "complete",
            "no-show",
            "requeue",
            "undo-start",
            "undo-complete",
            "cancel",
            "recall",
            "transfer",
            "reschedule",
        )
    },
    ("get", "/api/v1/queues/doctors/{doctor_id}"),
    ("get", "/api/v1/queues/departments/{dept_id}"),
    ("get", "/api/v1/track/{code}"),
    ("post", "/api/v1/track/{code}/check-in"),
}


async def test_openapi_lists_every_operation(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    listed = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert EXPECTED_OPERATIONS <= listed, sorted(EXPECTED_OPERATIONS - listed)
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["summary"], (method, path)
            # Public: the patient's own endpoints, and provider callbacks that prove themselves
            # otherwise (an HMAC signature, Meta's verify token, a secret in the URL, the ABDM
            # gateway's signed JWT).
            public = path.startswith(("/api/v1/track/", "/api/v1/notifications/receipts",
                                      "/api/v1/notifications/whatsapp", "/api/v3/hip/"))
            assert ("security" in op) is not public, (method, path)


async def test_every_documented_operation_is_routed(anonymous: httpx.AsyncClient) -> None:
    """Each documented path answers as an operation (401 or its own 4xx), never as an unknown
    route (Starlette's plain "Not Found") or a wrong method (405)."""
    doc = (await anonymous.get("/openapi.json")).json()
    for path, ops in doc["paths"].items():
        url = re.sub(r"{code}", "A" * 24, path)
        url = re.sub(r"{\w+}", "00000000-0000-4000-8000-000000000000", url)
        for method, op in ops.items():
            if "security" not in op and not path.startswith("/api/v1/track/"):
                continue  # a public operation of another module: not probed blindly
            response = await anonymous.request(method.upper(), url, json={})
            assert response.status_code != 405, (method, path)
            body = response.json()
            assert body.get("error", {}).get("message") != "Not Found", (method, path)
            if "security" in op:
                assert response.status_code == 401, (method, path, response.text)


async def test_openapi_describes_request_bodies(anonymous: httpx.AsyncClient) -> None:
    doc = (await anonymous.get("/openapi.json")).json()
    issue = doc["paths"]["/api/v1/tokens"]["post"]
    schema = issue["requestBody"]["content"]["application/json"]["schema"]
    assert {"doctor_id", "dept_id", "patient", "booking_type", "priority"} <= set(
        schema["properties"]
    )
    assert "201" in issue["responses"]


async def test_healthz(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert (body["checks"]["database"], body["checks"]["bus"]) == ("ok", "ok")
