"""Messages in India (docs/operations.md, "Sending messages in India"): registered DLT texts checked
when saved, MSG91 and Exotel requests as their APIs document them, WhatsApp templates outside the
24-hour window, receipts and the WhatsApp webhook in each provider's own format, and consent."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from app.api.provider_callbacks import twilio_signature
from tests.notify.helpers import dispatcher, issue, notify_settings, only_row, outbox_rows, patient
from tests.notify.provider_server import ProviderServer
from tests.support import factory
from tests.support.app_server import AppServer

RECEIPT_TOKEN = "receipt-" + secrets.token_hex(8)
WA_SECRET, WA_VERIFY = "wa-app-secret", "wa-verify-token"
PE_ID, DLT_ID = "1101234567890123456", "1107161234567890123"
TWILIO_TOKEN = "twilio-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def india_server(outbox_dsn: str) -> Iterator[AppServer]:
    """The app for the API and the providers' callbacks. Its dispatcher looks for due messages
    once an hour: the tests below send with dispatchers of their own."""
    server = AppServer(outbox_dsn, None, namespace=f"opdindia{secrets.token_hex(4)}", extra_env={
        "OPD_NOTIFY_POLL_S": "3600", "OPD_NOTIFY_RECEIPT_TOKEN": RECEIPT_TOKEN,
        "OPD_WHATSAPP_APP_SECRET": WA_SECRET, "OPD_WHATSAPP_VERIFY_TOKEN": WA_VERIFY,
        "OPD_TWILIO_AUTH_TOKEN": TWILIO_TOKEN}).start()
    yield server
    server.stop()


@pytest.fixture
async def http(india_server: AppServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=india_server.base_url, timeout=15) as client:
        yield client


async def register(pool: asyncpg.Pool, hospital: factory.Hospital, event: str, language: str, channel: str,
                   body: str, **fields: Any) -> None:
    await pool.execute("UPDATE hospitals SET dlt_pe_id = $2 WHERE hospital_id = $1", hospital.hospital_id, PE_ID)
    columns = ["hospital_id", "event_type", "language", "channel", "body", *fields]
    await pool.execute(
        f"INSERT INTO message_registrations ({', '.join(columns)}) "
        f"VALUES ({', '.join(f'${i}' for i in range(1, len(columns) + 1))})",
        hospital.hospital_id, event, language, channel, body, *fields.values())


async def public_url(pool: asyncpg.Pool) -> str:
    url: str = await pool.fetchval("SELECT value FROM app_settings WHERE key = 'public_url'")
    return url


async def test_a_registration_is_checked_when_saved(india_server: AppServer, http: httpx.AsyncClient,
                                                    outbox_pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(outbox_pool)
    url = await public_url(outbox_pool)
    headers = {"Authorization": f"Bearer {hospital.keys['admin']}"}
    path = "/api/v1/message-registrations/TOKEN_CREATED/en/SMS"
    cases = [
        ({"body": "{token} {doctor} {cabin} {hospital}", "dlt_template_id": DLT_ID}, "fixed text is"),
        ({"body": "Your token at the hospital is {token}. Track: {link}", "dlt_template_id": DLT_ID}, "{link}"),
        ({"body": "Your token is {token}. Track: https://elsewhere.example/t/{code}", "dlt_template_id": DLT_ID},
         "not under the hospital's public URL"),
        ({"body": "Your token is {token} and {unknown}", "dlt_template_id": DLT_ID}, "unknown variables {unknown}"),
        ({"body": "Your token is {token} at the hospital today"}, "DLT template ID"),
    ]
    for body, expected in cases:
        response = await http.put(path, json=body, headers=headers)
        assert response.status_code == 422 and expected in response.text, (body, response.text)
    good = {"body": f"{{hospital}}: your token is {{token}} for {{doctor}}. Follow it live: {url}/t/{{code}}",
            "dlt_template_id": DLT_ID, "sms_header": "SNJVNI", "gateway_template_id": "64f0c2msg91"}
    response = await http.put(path, json=good, headers=headers)
    assert response.status_code == 200, response.text
    listed = (await http.get("/api/v1/message-registrations", headers=headers)).json()
    assert [(r["event_type"], r["channel"], r["problems"]) for r in listed] == [("TOKEN_CREATED", "SMS", [])]
    receptionist = {"Authorization": f"Bearer {hospital.keys['receptionist']}"}
    assert (await http.put(path, json=good, headers=receptionist)).status_code == 403


async def test_msg91_gets_its_template_id_and_the_variables_by_name(
        india_server: AppServer, outbox_pool: asyncpg.Pool, provider: ProviderServer, quiet_outbox: None) -> None:
    hospital = await factory.make_hospital(outbox_pool)
    url = await public_url(outbox_pool)
    await register(outbox_pool, hospital, "TOKEN_CREATED", "en", "SMS",
                   f"{{hospital}}: your token is {{token}} for {{doctor}}. Follow it live: {url}/t/{{code}}",
                   dlt_template_id=DLT_ID, sms_header="SNJVNI", gateway_template_id="64f0c2msg91")
    token = await issue(outbox_pool, hospital)
    settings = notify_settings(provider.url, notify_provider=("msg91",), msg91_base_url=provider.url,
                               msg91_authkey="msg91-key")
    async with dispatcher(outbox_pool, settings) as d:
        await d.run_batch()
    row = await only_row(outbox_pool, token["token_id"])
    assert (row["delivery_status"], row["external_id"]) == ("SENT", f"req-{row['notification_id']}")
    [seen] = provider.requests
    assert seen.path == "/api/v5/flow/" and seen.headers["authkey"] == "msg91-key"
    code = await outbox_pool.fetchval("SELECT tracking_code FROM tokens WHERE token_id = $1", token["token_id"])
    assert seen.json() == {"template_id": "64f0c2msg91", "short_url": "0", "recipients": [{
        "mobiles": "91" + row["phone_number"], "hospital": f"Hospital {hospital.code}"[:30],
        "token": token["token_number"], "doctor": "Dr. Test 1", "code": code}]}
    assert row["message"].endswith(f"{url}/t/{code}")


async def test_exotel_gets_the_text_with_its_dlt_identifiers(
        india_server: AppServer, outbox_pool: asyncpg.Pool, provider: ProviderServer, quiet_outbox: None) -> None:
    hospital = await factory.make_hospital(outbox_pool)
    await register(outbox_pool, hospital, "TOKEN_CREATED", "hi", "SMS",
                   "{hospital}: आपका टोकन {token} है, {doctor}। कृपया समय पर आएँ।",
                   dlt_template_id=DLT_ID, sms_header="SNJVNI")
    token = await issue(outbox_pool, hospital, language="hi")
    settings = notify_settings(provider.url, notify_provider=("exotel",), exotel_base_url=provider.url,
                               exotel_sid="sanjivani1", exotel_api_key="exo-key", exotel_api_token="exo-token",
                               public_url="https://opd.example.in", notify_receipt_token=RECEIPT_TOKEN)
    async with dispatcher(outbox_pool, settings) as d:
        await d.run_batch()
    row = await only_row(outbox_pool, token["token_id"])
    assert (row["delivery_status"], row["external_id"]) == ("SENT", f"exo-{row['notification_id']}")
    [seen] = provider.requests
    assert seen.path == "/v1/Accounts/sanjivani1/Sms/send.json"
    assert seen.headers["authorization"] == "Basic " + base64.b64encode(b"exo-key:exo-token").decode()
    assert seen.form() == {
        "From": "SNJVNI", "To": "+91" + row["phone_number"], "Body": row["message"], "DltEntityId": PE_ID,
        "DltTemplateId": DLT_ID, "SmsType": "transactional", "EncodingType": "unicode",
        "StatusCallback": f"https://opd.example.in/api/v1/notifications/receipts/exotel/{RECEIPT_TOKEN}"}


async def test_gupshup_gets_the_text_with_mask_and_dlt_identifiers(
        india_server: AppServer, outbox_pool: asyncpg.Pool, provider: ProviderServer, quiet_outbox: None) -> None:
    hospital = await factory.make_hospital(outbox_pool)
    await register(outbox_pool, hospital, "TOKEN_CREATED", "hi", "SMS",
                   "{hospital}: आपका टोकन {token} है, {doctor}। कृपया समय पर आएँ।",
                   dlt_template_id=DLT_ID, sms_header="SNJVNI")
    token = await issue(outbox_pool, hospital, language="hi")
    async with dispatcher(outbox_pool, notify_settings(provider.url, notify_provider=("gupshup",))) as d:
        await d.run_batch()
    row = await only_row(outbox_pool, token["token_id"])
    assert (row["delivery_status"], row["external_id"]) == ("SENT", f"gs-{row['notification_id']}")
    [seen] = provider.requests
    assert seen.path == "/GatewayAPI/rest"
    assert seen.form() == {
        "method": "SendMessage", "v": "1.1", "format": "json", "auth_scheme": "plain", "userid": "2000123456",
        "password": "gupshup-password", "send_to": "91" + row["phone_number"], "msg": row["message"],
        "msg_type": "Unicode_Text", "mask": "SNJVNI", "principalEntityId": PE_ID, "dltTemplateId": DLT_ID}


async def test_twilio_sends_to_india_only_a_dlt_registered_text(
        india_server: AppServer, outbox_pool: asyncpg.Pool, provider: ProviderServer, quiet_outbox: None) -> None:
    settings = notify_settings(provider.url, notify_provider=("twilio",), twilio_from=None,
                               twilio_messaging_service_sid="MG0123456789abcdef0123456789abcdef")
    unregistered = await issue(outbox_pool, await factory.make_hospital(outbox_pool))
    hospital = await factory.make_hospital(outbox_pool)
    await register(outbox_pool, hospital, "TOKEN_CREATED", "en", "SMS",
                   "{hospital}: your token is {token} for {doctor}. Please wait for your call.",
                   dlt_template_id=DLT_ID, sms_header="SNJVNI")
    registered = await issue(outbox_pool, hospital)
    async with dispatcher(outbox_pool, settings) as d:
        await d.run_batch()
    refused, sent = await only_row(outbox_pool, unregistered["token_id"]), await only_row(outbox_pool,
                                                                                          registered["token_id"])
    assert refused["delivery_status"] == "FAILED" and "no DLT template registered" in refused["failed_reason"]
    assert sent["delivery_status"] == "SENT"
    [seen] = provider.requests
    assert seen.form()["MessagingServiceSid"] == "MG0123456789abcdef0123456789abcdef"
    assert "From" not in seen.form() and seen.form()["Body"] == sent["message"]


def test_the_twilio_signature_matches_twilios_own_example() -> None:
    # The example of Twilio's request validator (github.com/twilio/twilio-python, tests).
    params = [("CallSid", "CA1234567890ABCDE"), ("Caller", "+14158675309"), ("Digits", "1234"),
              ("From", "+14158675309"), ("To", "+18005551212")]
    assert twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params) == \
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="


async def test_gupshup_and_twilio_receipts(
        india_server: AppServer, http: httpx.AsyncClient, outbox_pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(outbox_pool)
    rows = []
    for external_id in (f"{uuid.uuid4().int}-1", f"{uuid.uuid4().int}-2", f"SM{uuid.uuid4().hex}",
                        f"SM{uuid.uuid4().hex}"):
        token = await issue(outbox_pool, hospital)
        await outbox_pool.execute("UPDATE notifications_log SET delivery_status = 'SENT', external_id = $2 "
                                  "WHERE token_id = $1", token["token_id"], external_id)
        rows.append((token["token_id"], external_id))
    gupshup = f"/api/v1/notifications/receipts/gupshup/{RECEIPT_TOKEN}"
    report = {"externalId": rows[0][1], "deliveredTS": "1764990000000", "status": "SUCCESS", "cause": "SUCCESS",
              "phoneNo": "919800000000", "errCode": "000", "noOfFrags": "1"}
    assert (await http.get("/api/v1/notifications/receipts/gupshup/guessed", params=report)).status_code == 401
    assert (await http.get(gupshup, params=report)).status_code == 200
    pushed = [{"externalId": rows[1][1], "eventType": "FAILED", "eventTs": 1764990000000,
               "destAddr": "919800000000", "srcAddr": "SNJVNI", "cause": "ABSENT_SUBSCRIBER", "errCode": "005",
               "channel": "SMS", "noOfFrags": 1}]
    assert (await http.post(gupshup, json=pushed)).status_code == 200
    malformed = await http.post(gupshup, content=b"not json", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 422 and "Gupshup" in malformed.json()["error"]["message"]

    twilio = "/api/v1/notifications/receipts/twilio"
    for (token_id, sid), status in zip(rows[2:], ("delivered", "undelivered"), strict=True):
        form = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC123", "To": "+919800000000",
                **({"ErrorCode": "30003"} if status == "undelivered" else {})}
        signature = twilio_signature(TWILIO_TOKEN, india_server.base_url + twilio, list(form.items()))
        forged = twilio_signature("not-the-token", india_server.base_url + twilio, list(form.items()))
        assert (await http.post(twilio, data=form, headers={"X-Twilio-Signature": forged})).status_code == 401
        assert (await only_row(outbox_pool, token_id))["delivery_status"] == "SENT"
        assert (await http.post(twilio, data=form, headers={"X-Twilio-Signature": signature})).status_code == 200
    statuses = [(await only_row(outbox_pool, token_id))["delivery_status"] for token_id, _ in rows]
    assert statuses == ["DELIVERED", "FAILED", "DELIVERED", "FAILED"]
    assert "ABSENT_SUBSCRIBER" in (await only_row(outbox_pool, rows[1][0]))["failed_reason"]
    assert "30003" in (await only_row(outbox_pool, rows[3][0]))["failed_reason"]


async def test_an_sms_not_matching_a_registered_template_is_never_sent(
        india_server: AppServer, outbox_pool: asyncpg.Pool, provider: ProviderServer, quiet_outbox: None) -> None:
    settings = notify_settings(provider.url, notify_provider=("exotel",), exotel_base_url=provider.url,
                               exotel_sid="s", exotel_api_key="k", exotel_api_token="t")
    unregistered_hospital = await factory.make_hospital(outbox_pool)
    unregistered = await issue(outbox_pool, unregistered_hospital)
    hospital = await factory.make_hospital(outbox_pool)
    await register(outbox_pool, hospital, "TOKEN_CREATED", "en", "SMS",
                   "{hospital}: your token is {token} for {doctor}. Please wait for your call.",
                   dlt_template_id=DLT_ID, sms_header="SNJVNI")
    altered = await issue(outbox_pool, hospital)
    await outbox_pool.execute("UPDATE notifications_log SET message = message || ' Reply YES.' WHERE token_id = $1",
                              altered["token_id"])
    async with dispatcher(outbox_pool, settings) as d:
        await d.run_batch()
    first, second = await only_row(outbox_pool, unregistered["token_id"]), await only_row(outbox_pool,
                                                                                         altered["token_id"])
    assert first["delivery_status"] == "FAILED" and "no DLT template registered" in first["failed_reason"]
    assert second["delivery_status"] == "FAILED" and "does not match the DLT template" in second["failed_reason"]
    assert provider.requests == []


async def test_whatsapp_sends_the_template_outside_the_window_and_text_inside(
        india_server: AppServer, outbox_pool: asyncpg.Pool, provider: ProviderServer, quiet_outbox: None) -> None:
    hospital = await factory.make_hospital(outbox_pool)
    await register(outbox_pool, hospital, "TOKEN_CREATED", "hi", "WHATSAPP",
                   "{hospital}: आपका टोकन {token} है, {doctor} ({department})।",
                   wa_template_name="opd_token_created", wa_language="hi")
    token = await issue(outbox_pool, hospital, sms=False, whatsapp=True, language="hi")
    settings = notify_settings(provider.url, notify_provider=("whatsapp",))
    async with dispatcher(outbox_pool, settings) as d:
        await d.run_batch()
    row = await only_row(outbox_pool, token["token_id"])
    assert row["delivery_status"] == "SENT"
    [seen] = provider.requests
    assert seen.json() == {"messaging_product": "whatsapp", "to": "91" + row["phone_number"], "type": "template",
                           "template": {"name": "opd_token_created", "language": {"code": "hi"}, "components": [
                               {"type": "body", "parameters": [
                                   {"type": "text", "text": f"Hospital {hospital.code}"},
                                   {"type": "text", "text": token["token_number"]},
                                   {"type": "text", "text": "Dr. Test 1"},
                                   {"type": "text", "text": "Cardiology"}]}]}}
    # The patient writes: within 24 hours a message without a template goes as text.
    await outbox_pool.execute("INSERT INTO whatsapp_inbound (message_id, phone, body, received_at) "
                              "VALUES ($1, $2, 'ok', now())", f"wamid.{uuid.uuid4()}", row["phone_number"])
    await outbox_pool.execute("SELECT * FROM call_next_token($1, NULL)", hospital.doctor.doctor_id)
    async with dispatcher(outbox_pool, settings) as d:
        await d.run_batch()
    call_now = [r for r in await outbox_rows(outbox_pool, token["token_id"]) if r["event_type"] == "CALL_NOW"][0]
    assert call_now["delivery_status"] == "SENT"
    assert provider.requests[-1].json()["type"] == "text"


async def test_provider_receipts_need_the_receipt_token(
        india_server: AppServer, http: httpx.AsyncClient, outbox_pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(outbox_pool)
    rows = []
    for external_id in (f"exo-{uuid.uuid4()}", f"req-{uuid.uuid4()}", f"req-{uuid.uuid4()}"):
        token = await issue(outbox_pool, hospital)
        await outbox_pool.execute("UPDATE notifications_log SET delivery_status = 'SENT', external_id = $2 "
                                  "WHERE token_id = $1", token["token_id"], external_id)
        rows.append((token["token_id"], external_id))
    exotel = f"/api/v1/notifications/receipts/exotel/{RECEIPT_TOKEN}"
    form = {"SmsSid": rows[0][1], "To": "+919800000000", "Status": "sent", "DetailedStatus": "DELIVERED_TO_HANDSET"}
    assert (await http.post("/api/v1/notifications/receipts/exotel/guessed", data=form)).status_code == 401
    assert (await http.post(exotel, data=form)).status_code == 200
    msg91 = f"/api/v1/notifications/receipts/msg91/{RECEIPT_TOKEN}"
    v3 = {"requestId": rows[1][1], "number": "919800000000", "status": "1", "desc": "DELIVERED"}
    assert (await http.post(msg91, json=v3)).status_code == 200
    v2 = [{"requestId": rows[2][1], "report": [{"number": "919800000000", "status": "17", "desc": "Blocked"}]}]
    assert (await http.post(msg91, data={"data": json.dumps(v2)})).status_code == 200
    statuses = [(await only_row(outbox_pool, token_id))["delivery_status"] for token_id, _ in rows]
    assert statuses == ["DELIVERED", "DELIVERED", "FAILED"]
    assert "Blocked" in (await only_row(outbox_pool, rows[2][0]))["failed_reason"]


def wa_post(value: dict[str, Any], secret: str = WA_SECRET) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps({"object": "whatsapp_business_account",
                      "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": value}]}]}).encode()
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"Content-Type": "application/json", "X-Hub-Signature-256": signature}


async def test_the_whatsapp_webhook_verifies_records_and_answers(
        india_server: AppServer, http: httpx.AsyncClient, outbox_pool: asyncpg.Pool) -> None:
    verify = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": WA_VERIFY}
    response = await http.get("/api/v1/notifications/whatsapp", params=verify)
    assert (response.status_code, response.text) == (200, "1158201444")
    assert (await http.get("/api/v1/notifications/whatsapp",
                           params={**verify, "hub.verify_token": "x"})).status_code == 403

    hospital = await factory.make_hospital(outbox_pool)
    phone = "+9198" + f"{secrets.randbelow(10**8):08d}"
    patient_id = await patient(outbox_pool, hospital, sms=False, whatsapp=True)
    await outbox_pool.execute("UPDATE patients SET phone = $2 WHERE patient_id = $1", patient_id, phone)
    token = await factory.issue(outbox_pool, hospital, patient_id=patient_id)
    await outbox_pool.execute("UPDATE notifications_log SET delivery_status = 'SENT', external_id = 'wamid.OUT1' "
                              "WHERE token_id = $1", token["token_id"])
    # A forged post is refused; Meta's signed one is taken.
    raw, headers = wa_post({"statuses": [{"id": "wamid.OUT1", "status": "delivered", "timestamp": "1"}]})
    assert (await http.post("/api/v1/notifications/whatsapp", content=raw,
                            headers={**headers, "X-Hub-Signature-256": "sha256=00"})).status_code == 401
    assert (await http.post("/api/v1/notifications/whatsapp", content=raw, headers=headers)).status_code == 200
    assert (await only_row(outbox_pool, token["token_id"]))["delivery_status"] == "DELIVERED"

    def wrote(text: str) -> dict[str, Any]:
        return {"messages": [{"from": phone.lstrip("+"), "id": f"wamid.{uuid.uuid4()}", "timestamp": "1764900000",
                              "type": "text", "text": {"body": text}}]}
    raw, headers = wa_post(wrote("status"))
    assert (await http.post("/api/v1/notifications/whatsapp", content=raw, headers=headers)).status_code == 200
    reply = await outbox_pool.fetchrow("SELECT * FROM notifications_log WHERE token_id = $1 AND "
                                       "event_type = 'STATUS_REPLY'", token["token_id"])
    assert reply["channel"] == "WHATSAPP" and token["token_number"] in reply["message"]
    assert "1 in line" in reply["message"]
    raw, headers = wa_post(wrote("STOP"))
    assert (await http.post("/api/v1/notifications/whatsapp", content=raw, headers=headers)).status_code == 200
    assert not await outbox_pool.fetchval("SELECT whatsapp_opt_in FROM patients WHERE patient_id = $1", patient_id)
    events = await outbox_pool.fetch("SELECT channel, granted, source FROM consent_events WHERE patient_id = $1 "
                                     "ORDER BY event_id", patient_id)
    assert [tuple(e) for e in events][-1] == ("WHATSAPP", False, "whatsapp STOP")


async def test_nothing_goes_on_a_channel_without_consent(outbox_pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(outbox_pool)
    silent = await issue(outbox_pool, hospital, sms=False, whatsapp=False)
    assert await outbox_rows(outbox_pool, silent["token_id"]) == []
    # A hospital whose SMS are DLT "service implicit" texts every patient.
    await outbox_pool.execute("UPDATE hospitals SET sms_service_implicit = true WHERE hospital_id = $1",
                              hospital.hospital_id)
    implicit = await issue(outbox_pool, hospital, sms=False, whatsapp=False)
    assert [r["channel"] for r in await outbox_rows(outbox_pool, implicit["token_id"])] == ["SMS"]
    # Consent given and withdrawn is recorded, with when and by whom.
    patient_id = await patient(outbox_pool, hospital, sms=False)
    await outbox_pool.execute("SELECT set_config('opd.consent_source', 'reception', false)")
    await outbox_pool.execute("UPDATE patients SET sms_opt_in = true WHERE patient_id = $1", patient_id)
    await outbox_pool.execute("UPDATE patients SET sms_opt_in = false WHERE patient_id = $1", patient_id)
    events = await outbox_pool.fetch("SELECT channel, granted FROM consent_events WHERE patient_id = $1 "
                                     "ORDER BY event_id", patient_id)
    assert [tuple(e) for e in events][-2:] == [("SMS", True), ("SMS", False)]


async def test_the_message_preview_api(india_server: AppServer, http: httpx.AsyncClient,
                                       outbox_pool: asyncpg.Pool) -> None:
    hospital = await factory.make_hospital(outbox_pool)
    admin = {"Authorization": f"Bearer {hospital.keys['admin']}"}
    response = await http.get("/api/v1/message-preview", params={"event": "CALL_NOW", "language": "en"},
                              headers=admin)
    assert response.status_code == 409 and "no token yet" in response.text
    await issue(outbox_pool, hospital)
    response = await http.get("/api/v1/message-preview", params={"event": "CALL_NOW", "language": "en"},
                              headers=admin)
    assert response.status_code == 200, response.text
    sms = [r for r in response.json() if r["channel"] == "SMS"]
    assert [r["provider"] for r in sms] == ["msg91", "exotel", "gupshup", "twilio"]
    assert all("no DLT template registered" in r["refused"] for r in sms)   # nothing registered yet
    bad = await http.get("/api/v1/message-preview", params={"event": "HELLO", "language": "en"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "event"
    receptionist = {"Authorization": f"Bearer {hospital.keys['receptionist']}"}
    assert (await http.get("/api/v1/message-preview", params={"event": "CALL_NOW", "language": "en"},
                           headers=receptionist)).status_code == 403
