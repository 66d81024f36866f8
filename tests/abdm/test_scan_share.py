"""ABDM Scan & Share (issue 18): the gateway posts a patient's profile to the bridge callback;
the hospital issues a real token in its queue and answers with an on-share reply. Against a
real local HTTP server playing the gateway (tests/abdm/fake_gateway.py)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import pytest

from tests.abdm.conftest import SHARE_PATH, Facility, new_patient, share_body, share_headers
from tests.abdm.fake_gateway import FakeGateway, new_key, sign
from tests.support import factory

# The repeat rule is "the same hospital day": run under every calendar clock too (year end, the
# evening hour when the hospital's day is already tomorrow).
pytestmark = pytest.mark.calendar


async def shares_of(pool: asyncpg.Pool, hospital_id: uuid.UUID) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM abdm_shares WHERE hospital_id = $1 ORDER BY received_at", hospital_id)


async def test_a_share_issues_a_walk_in_token_and_the_on_share_says_its_number(
        bridge: httpx.AsyncClient, gateway: FakeGateway, facility: Facility, pool: asyncpg.Pool) -> None:
    patient = new_patient()
    headers = share_headers(gateway)
    response = await bridge.post(SHARE_PATH, json=share_body(facility, patient), headers=headers)
    assert response.status_code == 202, response.text

    [reply] = await asyncio.to_thread(gateway.wait_for_on_shares, headers["REQUEST-ID"])
    token = await pool.fetchrow(
        """SELECT t.*, p.name, p.phone, p.abha_number, p.abha_address, p.gender, p.date_of_birth, p.address
           FROM tokens t JOIN patients p USING (patient_id) WHERE t.hospital_id = $1""",
        facility.hospital.hospital_id)
    assert reply.body == {
        "acknowledgement": {"status": "SUCCESS", "abhaAddress": patient["abhaAddress"],
                            "profile": {"context": "OPD1", "tokenNumber": token["token_number"], "expiry": "3600"}},
        "response": {"requestId": headers["REQUEST-ID"]}}
    assert reply.headers["authorization"].startswith("Bearer gw-session-")
    assert reply.headers["x-cm-id"] == "sbx" and reply.headers["timestamp"].endswith("Z")
    uuid.UUID(reply.headers["request-id"])

    # A real token in the counter's department, in the queue at once, like a walk-in at the desk.
    assert (token["booking_type"], token["status"], token["dept_id"]) == ("WALK_IN", "CHECKED_IN",
                                                                         facility.hospital.dept_id)
    assert token["abha_number"] == patient["abhaNumber"].replace("-", "")
    assert (token["name"], token["phone"], token["gender"]) == ("Sunita Devi", "+91" + patient["phoneNumber"], "FEMALE")
    assert token["date_of_birth"].isoformat() == "1984-04-12" and "110017" in token["address"]
    history = await pool.fetchrow("SELECT * FROM token_history WHERE token_id = $1", token["token_id"])
    assert history["metadata"] == {"request_id": headers["REQUEST-ID"], "via": "ABDM Scan & Share"}
    assert history["changed_by"] is None and history["changed_by_key"] is None
    # The usual first message with the tracking link goes to the patient's phone.
    message = await pool.fetchrow(
        "SELECT * FROM notifications_log WHERE token_id = $1 AND event_type = 'TOKEN_CREATED'", token["token_id"])
    assert message is not None and token["tracking_code"] in message["message"]
    [share] = await shares_of(pool, facility.hospital.hospital_id)
    assert share["status"] == "SUCCESS" and share["token_id"] == token["token_id"]
    await wait_until_sent(pool, share["share_id"])


async def wait_until_sent(pool: asyncpg.Pool, share_id: uuid.UUID, timeout: float = 20.0) -> asyncpg.Record:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        row = await pool.fetchrow("SELECT * FROM abdm_shares WHERE share_id = $1", share_id)
        if row["sent_at"] is not None:
            return row
        assert asyncio.get_running_loop().time() < deadline, f"never marked sent: {dict(row)}"
        await asyncio.sleep(0.1)


async def test_the_same_patient_again_gets_the_same_token_and_a_redelivery_is_answered_once(
        bridge: httpx.AsyncClient, gateway: FakeGateway, facility: Facility, pool: asyncpg.Pool) -> None:
    patient = new_patient()
    first = share_headers(gateway)
    assert (await bridge.post(SHARE_PATH, json=share_body(facility, patient), headers=first)).status_code == 202
    # The gateway delivers the same request twice: one share, one reply.
    again = {**first, "Authorization": gateway.bearer()}
    assert (await bridge.post(SHARE_PATH, json=share_body(facility, patient), headers=again)).status_code == 202
    # The patient scans once more, minutes later: a new request, the same token back.
    second = share_headers(gateway)
    assert (await bridge.post(SHARE_PATH, json=share_body(facility, patient), headers=second)).status_code == 202

    [one] = await asyncio.to_thread(gateway.wait_for_on_shares, first["REQUEST-ID"])
    [two] = await asyncio.to_thread(gateway.wait_for_on_shares, second["REQUEST-ID"])
    number = one.body["acknowledgement"]["profile"]["tokenNumber"]
    assert two.body["acknowledgement"]["profile"]["tokenNumber"] == number
    assert await pool.fetchval("SELECT count(*) FROM tokens WHERE hospital_id = $1",
                               facility.hospital.hospital_id) == 1
    shares = await shares_of(pool, facility.hospital.hospital_id)
    assert len(shares) == 2 and shares[1]["repeat_of"] == shares[0]["share_id"]
    await asyncio.sleep(1.0)  # time for a second reply to the redelivered request, if one were sent
    assert len(gateway.wait_for_on_shares(first["REQUEST-ID"])) == 1


async def test_concurrent_shares_get_gap_free_numbers_and_a_double_scan_one_token(
        bridge: httpx.AsyncClient, gateway: FakeGateway, facility: Facility, pool: asyncpg.Pool) -> None:
    twenty = [share_headers(gateway) for _ in range(20)]
    patients = [new_patient(name=f"Patient {i}") for i in range(20)]
    twice = new_patient(name="Double Scan")
    doubles = [share_headers(gateway) for _ in range(5)]
    answers = await asyncio.gather(
        *(bridge.post(SHARE_PATH, json=share_body(facility, p), headers=h)
          for p, h in zip(patients, twenty, strict=True)),
        *(bridge.post(SHARE_PATH, json=share_body(facility, twice), headers=h) for h in doubles))
    assert [a.status_code for a in answers] == [202] * 25, [a.text for a in answers if a.status_code != 202]

    serials = [r["serial"] for r in await pool.fetch(
        "SELECT serial FROM tokens WHERE hospital_id = $1 ORDER BY serial", facility.hospital.hospital_id)]
    assert serials == list(range(serials[0], serials[0] + 21)), serials  # 20 patients + 1 double scanner
    numbers = {r.body["acknowledgement"]["profile"]["tokenNumber"]
               for h in doubles for r in await asyncio.to_thread(gateway.wait_for_on_shares, h["REQUEST-ID"])}
    assert len(numbers) == 1
    replies = [await asyncio.to_thread(gateway.wait_for_on_shares, h["REQUEST-ID"]) for h in twenty]
    assert len({r[0].body["acknowledgement"]["profile"]["tokenNumber"] for r in replies}) == 20


async def test_a_forged_expired_or_missing_signature_is_refused_and_writes_nothing(
        bridge: httpx.AsyncClient, gateway: FakeGateway, facility: Facility, pool: asyncpg.Pool) -> None:
    body = share_body(facility, new_patient())
    forged = share_headers(gateway, key=new_key())                  # signed by someone else, same key id
    expired = share_headers(gateway, expires_in=-600)
    unknown_key = share_headers(gateway, kid="not-published")
    hmac_trick = share_headers(gateway)
    header, payload, _ = hmac_trick["Authorization"][7:].split(".")
    none_alg = {**hmac_trick, "Authorization": "Bearer " + sign(new_key(), {"exp": 9999999999}, alg="none")}
    cases = {"forged": forged, "expired": expired, "unknown key": unknown_key, "alg none": none_alg,
             "truncated": {**hmac_trick, "Authorization": f"Bearer {header}.{payload}."},
             "missing": {k: v for k, v in hmac_trick.items() if k != "Authorization"}}
    for what, headers in cases.items():
        response = await bridge.post(SHARE_PATH, json=body, headers=headers)
        assert response.status_code == 401, (what, response.text)
        assert response.json()["error"]["code"] == "unauthorized"
    assert await shares_of(pool, facility.hospital.hospital_id) == []
    assert await pool.fetchval("SELECT count(*) FROM tokens WHERE hospital_id = $1", facility.hospital.hospital_id) == 0


async def test_payload_variants_are_accepted_and_only_what_is_missing_is_refused(
        bridge: httpx.AsyncClient, gateway: FakeGateway, facility: Facility, pool: asyncpg.Pool) -> None:
    variants = [
        new_patient(address={"line": "Gali 4", "district": "Agra", "state": "UP", "pinCode": "282001"}),
        new_patient(abhaNumber=None, gender="M", yearOfBirth=1990, dayOfBirth=None, monthOfBirth=None),
        {**new_patient(name=None), "firstName": "Ravi", "lastName": "Kumar"},
        new_patient(abhaNumber=int(new_patient()["abhaNumber"].replace("-", "")), phoneNumber="+91-98100 12345"),
    ]
    for patient in variants:
        headers = share_headers(gateway)
        response = await bridge.post(SHARE_PATH, json=share_body(facility, patient), headers=headers)
        assert response.status_code == 202, (patient, response.text)
        [reply] = await asyncio.to_thread(gateway.wait_for_on_shares, headers["REQUEST-ID"])
        assert reply.body["acknowledgement"]["status"] == "SUCCESS", reply.body
    # The HIP id in the header instead of the body.
    body = share_body(facility, new_patient())
    del body["metaData"]["hipId"]
    headers = {**share_headers(gateway), "X-HIP-ID": facility.hip_id}
    assert (await bridge.post(SHARE_PATH, json=body, headers=headers)).status_code == 202
    names = {r["name"] for r in await pool.fetch(
        "SELECT p.name FROM tokens t JOIN patients p USING (patient_id) WHERE t.hospital_id = $1",
        facility.hospital.hospital_id)}
    assert "Ravi Kumar" in names and len(names) >= 2

    missing = [
        ("profile.patient.abhaNumber", new_patient(abhaNumber=None, abhaAddress=None)),
        ("profile.patient.name", new_patient(name=" ")),
    ]
    before = await pool.fetchval("SELECT count(*) FROM abdm_shares WHERE hospital_id = $1",
                                 facility.hospital.hospital_id)
    for field, patient in missing:
        response = await bridge.post(SHARE_PATH, json=share_body(facility, patient), headers=share_headers(gateway))
        assert response.status_code == 422 and response.json()["error"]["field"] == field, response.text
    no_context = share_body(facility, new_patient())
    del no_context["metaData"]["context"]
    response = await bridge.post(SHARE_PATH, json=no_context, headers=share_headers(gateway))
    assert response.status_code == 422 and response.json()["error"]["field"] == "metaData.context"
    response = await bridge.post(SHARE_PATH, json=share_body(facility, new_patient()),
                                 headers={k: v for k, v in share_headers(gateway).items() if k != "REQUEST-ID"})
    assert response.status_code == 422 and response.json()["error"]["field"] == "REQUEST-ID"
    assert await pool.fetchval("SELECT count(*) FROM abdm_shares WHERE hospital_id = $1",
                               facility.hospital.hospital_id) == before


async def test_what_cannot_be_issued_is_answered_failed_with_its_reason_and_leaves_nothing(
        bridge: httpx.AsyncClient, gateway: FakeGateway, pool: asyncpg.Pool) -> None:
    from tests.abdm.conftest import register_facility

    full = await register_facility(pool, await factory.make_hospital(pool, max_tokens_per_day=1))
    assert (await bridge.post(SHARE_PATH, json=share_body(full, new_patient()), headers=share_headers(gateway))
            ).status_code == 202
    patients_before = await pool.fetchval("SELECT count(*) FROM patients WHERE hospital_id = $1",
                                          full.hospital.hospital_id)
    closed = await register_facility(pool, await factory.make_hospital(pool))
    await pool.execute("UPDATE departments SET status = 'INACTIVE' WHERE dept_id = $1", closed.hospital.dept_id)
    cases = [
        ("OPD-DAY-FULL", full, {}),
        ("OPD-UNKNOWN-HIP", full, {"hip_id": "IN0000000000"}),
        ("OPD-UNKNOWN-COUNTER", full, {"context": "NOSUCH"}),
        ("OPD-DEPARTMENT-CLOSED", closed, {}),
        ("OPD-NO-PHONE", full, {"phone": None}),
    ]
    for code, facility, change in cases:
        patient = new_patient(phoneNumber=None) if "phone" in change else new_patient()
        body = share_body(facility, patient, context=change.get("context"), hip_id=change.get("hip_id"))
        headers = share_headers(gateway)
        assert (await bridge.post(SHARE_PATH, json=body, headers=headers)).status_code == 202
        [reply] = await asyncio.to_thread(gateway.wait_for_on_shares, headers["REQUEST-ID"])
        assert reply.body["acknowledgement"] == {"status": "FAILED", "abhaAddress": patient["abhaAddress"],
                                                 "profile": {"context": body["metaData"]["context"]}}, code
        assert reply.body["error"]["code"] == code and reply.body["error"]["message"], reply.body
        assert reply.body["response"] == {"requestId": headers["REQUEST-ID"]}
    # Nothing of a refused share stays: no patient, no token, no message.
    assert await pool.fetchval("SELECT count(*) FROM patients WHERE hospital_id = $1",
                               full.hospital.hospital_id) == patients_before
    assert await pool.fetchval("SELECT count(*) FROM tokens WHERE hospital_id = ANY($1::uuid[])",
                               [full.hospital.hospital_id, closed.hospital.hospital_id]) == 1
    reasons = [r["reason"] for r in await shares_of(pool, full.hospital.hospital_id) if r["status"] == "FAILED"]
    assert any("full" in r for r in reasons), reasons


async def test_with_the_gateway_down_the_on_share_is_retried_and_delivered_once(
        bridge: httpx.AsyncClient, gateway: FakeGateway, facility: Facility, pool: asyncpg.Pool) -> None:
    gateway.answer_next(503, 500)
    headers = share_headers(gateway)
    assert (await bridge.post(SHARE_PATH, json=share_body(facility, new_patient()), headers=headers)).status_code == 202
    attempts = await asyncio.to_thread(gateway.wait_for_on_shares, headers["REQUEST-ID"], 3, 30.0)
    assert [a.status for a in attempts] == [503, 500, 202]
    assert len({a.headers["request-id"] for a in attempts}) == 1        # one request, tried three times
    assert len({str(a.body) for a in attempts}) == 1
    [share] = await shares_of(pool, facility.hospital.hospital_id)
    share = await wait_until_sent(pool, share["share_id"])
    assert share["attempts"] == 3 and share["last_error"] == "HTTP 500"
    await asyncio.sleep(1.5)   # nothing more goes out once it was taken
    assert len(gateway.wait_for_on_shares(headers["REQUEST-ID"], 3)) == 3


async def test_the_desk_and_the_admin_api_see_shares(
        bridge: httpx.AsyncClient, gateway: FakeGateway, facility: Facility, pool: asyncpg.Pool) -> None:
    headers = share_headers(gateway)
    await bridge.post(SHARE_PATH, json=share_body(facility, new_patient(name="Meena Kumari")), headers=headers)
    await asyncio.to_thread(gateway.wait_for_on_shares, headers["REQUEST-ID"])
    key = {"Authorization": f"Bearer {facility.hospital.keys['admin']}"}
    shares = (await bridge.get("/api/v1/abdm/shares", headers=key)).json()
    assert [(s["status"], s["patient_name"], s["context"]) for s in shares] == [("SUCCESS", "Meena Kumari", "OPD1")]
    facility_info = (await bridge.get("/api/v1/abdm", headers=key)).json()
    assert facility_info["hip_id"] == facility.hip_id and facility_info["gateway_configured"] is True
    # Counters: a second one for a doctor; a duplicate code and another hospital's doctor refused.
    doctor = facility.hospital.doctors[1].doctor_id
    made = await bridge.post("/api/v1/abdm/counters", headers=key, json={
        "context": "OPD2", "label": "First floor", "dept_id": str(facility.hospital.dept_id), "doctor_id": str(doctor)})
    assert made.status_code == 201 and made.json()["doctor_id"] == str(doctor)
    again = await bridge.post("/api/v1/abdm/counters", headers=key, json={
        "context": "OPD2", "label": "x", "dept_id": str(facility.hospital.dept_id)})
    assert again.status_code == 409 and again.json()["error"]["field"] == "context"
    other = await factory.make_hospital(pool)
    foreign = await bridge.post("/api/v1/abdm/counters", headers=key, json={
        "context": "OPD3", "label": "x", "dept_id": str(other.dept_id)})
    assert foreign.status_code == 404 and foreign.json()["error"]["field"] == "dept_id"
    closed = await bridge.patch(f"/api/v1/abdm/counters/{made.json()['counter_id']}", headers=key,
                                json={"active": False})
    assert closed.json()["active"] is False
    taken = await bridge.put("/api/v1/abdm", headers={"Authorization": f"Bearer {other.keys['admin']}"},
                             json={"hip_id": facility.hip_id})
    assert taken.status_code == 409
    # Bad input is refused by name and changes nothing.
    bad_hip = await bridge.put("/api/v1/abdm", headers=key, json={"hip_id": "IN 123; DROP"})
    assert bad_hip.status_code == 422 and bad_hip.json()["error"]["field"] == "hip_id"
    bad_code = await bridge.post("/api/v1/abdm/counters", headers=key, json={
        "context": "a counter", "label": "x", "dept_id": str(facility.hospital.dept_id)})
    assert bad_code.status_code == 422 and bad_code.json()["error"]["field"] == "context"
    unknown = await bridge.patch(f"/api/v1/abdm/counters/{uuid.uuid4()}", headers=key, json={"active": False})
    assert unknown.status_code == 404
    assert await pool.fetchval("SELECT abdm_hip_id FROM hospitals WHERE hospital_id = $1",
                               facility.hospital.hospital_id) == facility.hip_id
    assert await pool.fetchval("SELECT count(*) FROM abdm_counters WHERE hospital_id = $1",
                               facility.hospital.hospital_id) == 2
