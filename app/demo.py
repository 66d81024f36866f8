"""The demo hospital DEMO: 7 departments, 14 doctors with cabins and today's shifts, 140 patients
with tokens in every state, built by replaying a morning through the real lifecycle functions
(with the database clock set back), so timings and history look like a real OPD's.

Idempotent: the structure is upserted; today's tokens are made once per hospital day. Shifts are
laid around the current time, so the demo is live at whatever hour it is started.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from app import clock
from app.notify.events import MESSAGE_EVENTS

HOSPITAL_CODE = "DEMO"
TIMEZONE = "Asia/Kolkata"
LATITUDE, LONGITUDE, GEOFENCE_M = 26.8467, 80.9462, 300

# code, name, consultation minutes, buffer minutes, colour, doctors
DEPARTMENTS = [
    ("GEN", "General Medicine", 10, 2, "#1565C0", ["Dr. Anil Mehta", "Dr. Farah Qureshi"]),
    ("CARD", "Cardiology", 15, 5, "#C62828", ["Dr. Rajesh Iyer", "Dr. Meera Pillai"]),
    ("ORTHO", "Orthopaedics", 12, 3, "#2E7D32", ["Dr. Vikram Singh", "Dr. Kavita Rao"]),
    ("PED", "Paediatrics", 10, 2, "#F9A825", ["Dr. Sunita Sharma", "Dr. Arjun Nair"]),
    ("ENT", "ENT", 8, 2, "#6A1B9A", ["Dr. Pooja Desai", "Dr. Rohan Gupta"]),
    ("DERM", "Dermatology", 8, 2, "#00838F", ["Dr. Neha Kapoor", "Dr. Sameer Khan"]),
    ("GYN", "Obstetrics & Gynaecology", 15, 3, "#AD1457", ["Dr. Lakshmi Menon", "Dr. Ritu Verma"]),
]
FIRST_NAMES = ["Aarav", "Priya", "Rahul", "Ananya", "Vivaan", "Diya", "Mohammed", "Ishita", "Arjun",
               "Kavya", "Sai", "Fatima", "Rohan", "Sneha", "Kabir", "Meera", "Aditya", "Pooja",
               "Harpreet", "Lakshmi", "Imran", "Neha", "Suresh", "Geeta", "Ravi", "Sunita", "Manoj",
               "Asha", "Deepak", "Rekha"]
LAST_NAMES = ["Sharma", "Verma", "Khan", "Patel", "Singh", "Yadav", "Gupta", "Mishra", "Iyer",
              "Reddy", "Das", "Ansari", "Tiwari", "Joshi", "Nair", "Pandey", "Srivastava", "Kaur"]
REASONS = ["fever and cough", "follow-up", "chest pain", "back pain", "skin rash", "ear ache",
           "routine check-up", "knee pain", "headache", "prescription renewal", "child vaccination",
           "breathlessness", "antenatal visit", "sore throat"]
TOKENS_PER_DOCTOR = 10
LATE_DOCTOR_EMP = "ENT-2"  # on today's roster but not yet arrived: drives the DOCTOR_LATE alert


@dataclass(order=True)
class Event:
    at: dt.datetime
    seq: int
    action: str = field(compare=False)
    key: str = field(compare=False)
    args: dict[str, Any] = field(compare=False, default_factory=dict)


async def load_demo(pool: asyncpg.Pool) -> str:
    async with pool.acquire() as conn:
        hospital_id = await _upsert_structure(conn)
        await _register_demo_messages(conn, hospital_id)
        await _set_up_scan_and_share(conn, hospital_id)
        made = await _make_todays_tokens(conn, hospital_id)
        counts = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM departments WHERE hospital_id = $1) AS departments,
                      (SELECT count(*) FROM doctors WHERE hospital_id = $1) AS doctors,
                      (SELECT count(*) FROM patients WHERE hospital_id = $1) AS patients,
                      (SELECT count(*) FROM tokens WHERE hospital_id = $1
                         AND visit_date = hospital_today($1)) AS tokens_today""", hospital_id)
    state = "made today's tokens" if made else "today's tokens were already there"
    return (f"demo hospital {HOSPITAL_CODE}: {counts['departments']} departments, "
            f"{counts['doctors']} doctors, {counts['patients']} patients, "
            f"{counts['tokens_today']} tokens today ({state})")


async def _upsert_structure(conn: asyncpg.Connection) -> uuid.UUID:
    hospital_id = await conn.fetchval(
        """INSERT INTO hospitals (code, name, address, latitude, longitude, geofence_radius, timezone)
           VALUES ($1, 'Sanjivani City Hospital (demo)', 'MG Road, Hazratganj, Lucknow', $2, $3, $4, $5)
           ON CONFLICT (code) DO UPDATE SET updated_at = hospitals.updated_at
           RETURNING hospital_id""", HOSPITAL_CODE, LATITUDE, LONGITUDE, GEOFENCE_M, TIMEZONE)
    for floor, (code, name, minutes, buffer, colour, doctors) in enumerate(DEPARTMENTS, start=1):
        dept_id = await conn.fetchval(
            """INSERT INTO departments (hospital_id, name, code, avg_consultation_time, buffer_time,
                                        max_tokens_per_day, color_code)
               VALUES ($1, $2, $3, $4, $5, 200, $6)
               ON CONFLICT (hospital_id, code) DO UPDATE SET updated_at = departments.updated_at
               RETURNING dept_id""", hospital_id, name, code, minutes, buffer, colour)
        for n, doctor_name in enumerate(doctors, start=1):
            cabin_id = await conn.fetchval(
                """INSERT INTO cabins (dept_id, cabin_number, floor_number) VALUES ($1, $2, $3)
                   ON CONFLICT (dept_id, cabin_number) DO UPDATE SET floor_number = EXCLUDED.floor_number
                   RETURNING cabin_id""", dept_id, f"{code[0]}-{floor}0{n}", floor)
            emp = f"{code}-{n}"
            await conn.execute(
                """INSERT INTO doctors (hospital_id, emp_code, name, specialization, primary_dept_id,
                                        phone, max_tokens_per_session)
                   VALUES ($1, $2, $3, $4, $5, $6, 60) ON CONFLICT (hospital_id, emp_code) DO NOTHING""",
                hospital_id, emp, doctor_name, name, dept_id, f"90000{floor:02d}{n:03d}")
            doctor_id = await conn.fetchval(
                "SELECT doctor_id FROM doctors WHERE hospital_id = $1 AND emp_code = $2", hospital_id, emp)
            await _ensure_shifts(conn, hospital_id, cabin_id, doctor_id, late=emp == LATE_DOCTOR_EMP)
    rng = random.Random(42)  # noqa: S311 - demo data, not security
    for i in range(1, 141):
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        born = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(0, 365 * 80))
        await conn.execute(
            # Most demo patients agreed to SMS at the desk, half of them to WhatsApp too.
            """INSERT INTO patients (hospital_id, uhid, name, phone, date_of_birth, gender, preferred_language,
                                     sms_opt_in, whatsapp_opt_in)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (hospital_id, uhid) DO NOTHING""",
            hospital_id, f"DEMO-{i:04d}", name, f"9{rng.randrange(10**8, 10**9):09d}", born,
            rng.choice(["MALE", "FEMALE"]), rng.choice(["en", "en", "hi"]), i % 10 != 0, i % 2 == 0)
    return uuid.UUID(str(hospital_id))


# A sample HIP id, registered nowhere: a real hospital types its facility id from HFR (docs/abdm.md).
DEMO_HIP_ID = "DEMO-HIP-0001"


async def _set_up_scan_and_share(conn: asyncpg.Connection, hospital_id: uuid.UUID) -> None:
    """ABDM Scan & Share as a hospital would set it up: its HIP id and two counters, so the admin
    page shows the counters and their printable QR posters. (No gateway: shares need
    OPD_ABDM_GATEWAY_URL.) An admin's own edits are kept."""
    await conn.execute("UPDATE hospitals SET abdm_hip_id = COALESCE(abdm_hip_id, $2) WHERE hospital_id = $1",
                       hospital_id, DEMO_HIP_ID)
    await conn.execute(
        """INSERT INTO abdm_counters (hospital_id, context, label, dept_id)
           SELECT $1, c.context, c.label, d.dept_id
           FROM (VALUES ('OPD-GEN', 'OPD registration, ground floor', 'GEN'),
                        ('OPD-PED', 'Paediatrics desk, fourth floor', 'PED')) c(context, label, code)
           JOIN departments d ON d.hospital_id = $1 AND d.code = c.code
           ON CONFLICT (hospital_id, context) DO NOTHING""", hospital_id)


# Sample identifiers, registered nowhere: a real hospital types its own from the DLT portal, its
# gateway and Meta (docs/operations.md, "Sending messages in India").
DEMO_PE_ID = "1101000000000000042"
DEMO_SMS_HEADER = "SNJVNI"


async def _register_demo_messages(conn: asyncpg.Connection, hospital_id: uuid.UUID) -> None:
    """Every message registered the way a hospital would register it, so the demo's preview
    (`python -m app messages-preview`, the admin page) shows each gateway's real request: the
    default texts with the hospital's name as fixed text (a DLT template needs 30 % fixed text)
    and the tracking link under the public URL (the one whitelisted on the DLT portal). An
    admin's own edits are kept."""
    await conn.execute("UPDATE hospitals SET dlt_pe_id = COALESCE(dlt_pe_id, $2) WHERE hospital_id = $1",
                       hospital_id, DEMO_PE_ID)
    await conn.execute(
        """INSERT INTO message_registrations (hospital_id, event_type, language, channel, body, dlt_template_id,
                                              sms_header, gateway_template_id, wa_template_name, wa_language)
           SELECT $1, t.event_type, t.language, c.channel,
                  replace(replace(t.body, '{hospital}', h.name), '{link}',
                          COALESCE((SELECT value FROM app_settings WHERE key = 'public_url'), '') || '/t/{code}'),
                  CASE WHEN c.channel = 'SMS' THEN '1107' || lpad((row_number() OVER ())::text, 15, '0') END,
                  CASE WHEN c.channel = 'SMS' THEN $2 END,
                  CASE WHEN c.channel = 'SMS' THEN 'demo_' || lower(t.event_type) || '_' || t.language END,
                  CASE WHEN c.channel = 'WHATSAPP' THEN 'opd_' || lower(t.event_type) END,
                  CASE WHEN c.channel = 'WHATSAPP' THEN t.language END
           FROM notification_templates t, hospitals h, (VALUES ('SMS'), ('WHATSAPP')) AS c(channel)
           WHERE h.hospital_id = $1 AND t.event_type = ANY($3::text[])
           ON CONFLICT (hospital_id, event_type, language, channel) DO NOTHING""", hospital_id, DEMO_SMS_HEADER,
        list(MESSAGE_EVENTS))


def _local_now() -> dt.datetime:
    return clock.now().astimezone(ZoneInfo(TIMEZONE))


async def _ensure_shifts(conn: asyncpg.Connection, hospital_id: uuid.UUID, cabin_id: Any,
                         doctor_id: Any, *, late: bool) -> None:
    now = _local_now()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = max(day_start + dt.timedelta(minutes=5), now - dt.timedelta(hours=2, minutes=30))
    if late:
        start = max(day_start + dt.timedelta(minutes=5), now - dt.timedelta(minutes=25))
    start = start.replace(minute=start.minute - start.minute % 5, second=0, microsecond=0)
    end = min(start + dt.timedelta(hours=8), day_start + dt.timedelta(hours=23, minutes=59))
    exists = await conn.fetchval(
        "SELECT 1 FROM cabin_doctors WHERE doctor_id = $1 AND shift_date = $2", doctor_id, now.date())
    if not exists:
        await conn.execute(
            """INSERT INTO cabin_doctors (cabin_id, doctor_id, shift_date, shift_start_time, shift_end_time,
                                          status, actual_start_time)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            cabin_id, doctor_id, now.date(), start.time(), end.time(),
            "SCHEDULED" if late else "ACTIVE", None if late else start + dt.timedelta(minutes=3))
    tomorrow = now.date() + dt.timedelta(days=1)
    await conn.execute(
        """INSERT INTO cabin_doctors (cabin_id, doctor_id, shift_date, shift_start_time, shift_end_time)
           VALUES ($1, $2, $3, '09:00', '15:00') ON CONFLICT DO NOTHING""", cabin_id, doctor_id, tomorrow)


async def _make_todays_tokens(conn: asyncpg.Connection, hospital_id: uuid.UUID) -> bool:
    if await conn.fetchval("SELECT 1 FROM tokens WHERE hospital_id = $1 AND visit_date = hospital_today($1) LIMIT 1",
                           hospital_id):
        return False
    rng = random.Random(_local_now().date().toordinal())  # noqa: S311 - demo data
    doctors = await conn.fetch(
        """SELECT d.doctor_id, d.emp_code, dep.dept_id, dep.avg_consultation_time AS minutes, dep.buffer_time,
                  hospital_local_time(d.hospital_id, a.shift_date, a.shift_start_time) AS shift_start,
                  hospital_local_time(d.hospital_id, a.shift_date, a.shift_end_time) AS shift_end,
                  hospital_local_time(d.hospital_id, a.shift_date, '00:00') AS day_start
           FROM doctors d JOIN departments dep ON dep.dept_id = d.primary_dept_id
           JOIN cabin_doctors a ON a.doctor_id = d.doctor_id AND a.shift_date = hospital_today(d.hospital_id)
           WHERE d.hospital_id = $1 ORDER BY dep.code, d.emp_code""", hospital_id)
    patients = [r["patient_id"] for r in await conn.fetch(
        "SELECT patient_id FROM patients WHERE hospital_id = $1 ORDER BY uhid", hospital_id)]
    rng.shuffle(patients)
    now = clock.now()
    events: list[Event] = []
    for doctor in doctors:
        mine = [patients.pop() for _ in range(min(TOKENS_PER_DOCTOR, len(patients)))]
        events += _doctor_morning(rng, doctor, mine, now)
    events.sort()
    tokens: dict[str, Any] = {}
    async with conn.transaction():  # all of the morning, or none of it
        for event in events:
            # Transaction-local: the clock goes back to real time at commit or rollback.
            await conn.execute("SELECT set_config('opd.fake_now', $1, true)", event.at.isoformat())
            await _apply(conn, hospital_id, event, tokens)
    # A notice on every board for the rest of the day, as reception would post one.
    await conn.execute(
        """SELECT post_board_notice($1, NULL, $2, $3, NULL,
                                    hospital_local_time($1, hospital_today($1) + 1, '00:00'), NULL)""",
        hospital_id, "Pharmacy counter 2 is closed today: please use counter 1",
        "फ़ार्मेसी काउंटर 2 आज बंद है: कृपया काउंटर 1 पर जाएँ")
    return True


def _doctor_morning(rng: random.Random, doctor: asyncpg.Record, patients: list[Any],
                    now: dt.datetime) -> list[Event]:
    """One doctor's morning so far: some seen, one no-show, one in consultation, a queue."""
    events: list[Event] = []
    seq = iter(range(10**6))
    key_base = str(doctor["doctor_id"])
    start = max(doctor["shift_start"], now - dt.timedelta(hours=3))
    opened = max(start - dt.timedelta(minutes=20), doctor["day_start"] + dt.timedelta(minutes=1))
    late = doctor["emp_code"] == LATE_DOCTOR_EMP
    slot = dt.timedelta(minutes=doctor["minutes"] + doctor["buffer_time"])
    budget = max(0, int((now - start - dt.timedelta(minutes=5)) / slot)) if not late else 0
    n_seen = min(4, budget)
    # The morning ends now: the patient being called or seen was called a few minutes ago (the
    # demo once showed doctors sitting on a patient called 100 minutes earlier, issue 13).
    durations = [dt.timedelta(minutes=max(2, rng.gauss(doctor["minutes"], doctor["minutes"] / 4)))
                 for _ in range(n_seen)]
    morning = (sum(durations, dt.timedelta()) + n_seen * dt.timedelta(minutes=1 + doctor["buffer_time"])
               + dt.timedelta(minutes=4 if budget > n_seen else 0))
    cursor = max(start + dt.timedelta(minutes=3), now - morning - dt.timedelta(minutes=rng.randint(1, 4)))

    def issue(i: int, at: dt.datetime, **kwargs: Any) -> str:
        key = f"{key_base}:{i}"
        at = min(max(at, opened), now - dt.timedelta(seconds=30))
        events.append(Event(at, next(seq), "issue", key, {
            "doctor_id": doctor["doctor_id"], "patient_id": patients[i],
            "reason": rng.choice(REASONS), **kwargs}))
        return key

    def later(key: str, at: dt.datetime, action: str, **kwargs: Any) -> None:
        events.append(Event(min(at, now - dt.timedelta(seconds=10)), next(seq), action, key, kwargs))

    i = 0
    for duration in durations:  # seen and done
        key = issue(i, cursor - dt.timedelta(minutes=rng.randint(5, 25)))
        later(key, cursor, "status", status="WAITING")
        later(key, cursor + dt.timedelta(minutes=1), "status", status="IN_CONSULTATION")
        later(key, cursor + dt.timedelta(minutes=1) + duration, "status", status="COMPLETED")
        cursor += dt.timedelta(minutes=1) + duration + dt.timedelta(minutes=doctor["buffer_time"])
        i += 1
    if budget > n_seen:  # called and never came
        key = issue(i, cursor - dt.timedelta(minutes=15))
        later(key, cursor, "status", status="WAITING")
        later(key, cursor + dt.timedelta(minutes=3), "status", status="NO_SHOW")
        cursor += dt.timedelta(minutes=4)
        i += 1
    if budget > 0 and cursor <= now - dt.timedelta(minutes=1):  # called, or in consultation now
        key = issue(i, cursor - dt.timedelta(minutes=10))
        later(key, cursor, "status", status="WAITING")
        if doctor["emp_code"].endswith("-1"):
            later(key, cursor + dt.timedelta(minutes=1), "status", status="IN_CONSULTATION")
        i += 1
    key = issue(i, opened + dt.timedelta(minutes=5))  # cancelled by the desk
    later(key, opened + dt.timedelta(minutes=30), "status", status="CANCELLED", reason="patient left")
    i += 1
    # A slot later today, inside the shift (near midnight the shift ends with the day).
    shift_left = min(doctor["shift_start"] + dt.timedelta(hours=7), doctor["shift_end"] - dt.timedelta(minutes=5))
    slot_time = min(now + dt.timedelta(minutes=rng.randint(40, 120)), shift_left)
    key = issue(i, opened, booking_type="ONLINE", scheduled=slot_time.replace(second=0, microsecond=0))
    if doctor["emp_code"].endswith("-2"):  # the patient asked for tomorrow instead
        later(key, opened + dt.timedelta(minutes=2), "reschedule",
              scheduled=doctor["day_start"] + dt.timedelta(days=1, hours=10))
    i += 1
    while i < len(patients):  # the queue now waiting
        kind = rng.random()
        booking = "EMERGENCY" if kind < 0.05 else "WALK_IN"
        priority = 3 if booking == "EMERGENCY" else (2 if kind < 0.2 else 1)
        issue(i, now - dt.timedelta(minutes=rng.randint(2, 60)), booking_type=booking, priority=priority)
        i += 1
    return events


async def _apply(conn: asyncpg.Connection, hospital_id: uuid.UUID, event: Event,
                 tokens: dict[str, Any]) -> None:
    if event.action == "issue":
        a = event.args
        tokens[event.key] = await conn.fetchval(
            "SELECT token_id FROM issue_token($1, $2, $3, NULL, $4, $5, $6, $7)",
            hospital_id, a["patient_id"], a["doctor_id"], a.get("booking_type", "WALK_IN"),
            a.get("priority", 1), a.get("scheduled"), a["reason"])
    elif event.action == "reschedule":
        await conn.execute("SELECT 1 FROM reschedule_token($1, $2, NULL, NULL, 'asked for another day')",
                           tokens[event.key], event.args["scheduled"])
    else:
        await conn.execute("SELECT 1 FROM set_token_status($1, $2, NULL, $3)", tokens[event.key],
                           event.args["status"], event.args.get("reason"))


# Demo sign-ins (printed by `serve --demo`): for trying the product, never for a real hospital.
DEMO_USERS = [("admin", "demo.admin", "demo-admin-pass", None),
              ("receptionist", "demo.desk", "demo-desk-pass", None),
              ("doctor", "demo.doctor", "demo-doctor-pass", "GEN-1")]


async def _ensure_demo_users(conn: asyncpg.Connection, hospital_id: Any) -> None:
    from app.security.accounts import create_user

    for role, username, password, emp in DEMO_USERS:
        if await conn.fetchval("SELECT 1 FROM staff_users WHERE username = $1", username):
            continue
        doctor_id = None if emp is None else await conn.fetchval(
            "SELECT doctor_id FROM doctors WHERE hospital_id = $1 AND emp_code = $2", hospital_id, emp)
        await create_user(conn, hospital_id, username, password, role, doctor_id)


async def demo_key(pool: asyncpg.Pool, hospital_id: Any, key_file: Path | None) -> str:
    """The demo's admin API key: the one kept in key_file while it still works (so every `up`
    does not add another key), else a new one, kept there (readable by this user only)."""
    from app.security.identity import create_api_key, principal_from_api_key

    if key_file is not None and key_file.exists():
        kept = key_file.read_text().strip()
        principal = await principal_from_api_key(pool, kept)
        if principal is not None and principal.hospital_id == hospital_id and principal.role == "admin":
            return kept
    async with pool.acquire() as conn:
        _, key = await create_api_key(conn, hospital_id, role="admin", label="serve --demo")
    if key_file is not None:
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(key + "\n")
    return key


async def demo_banner(pool: asyncpg.Pool, base_url: str, key_file: Path | None = None,
                      messages_file: Path | None = None) -> str:
    """Print-out for `serve --demo`: the admin API key, the demo sign-ins and every page."""
    async with pool.acquire() as conn:
        hospital_id = await conn.fetchval("SELECT hospital_id FROM hospitals WHERE code = $1", HOSPITAL_CODE)
        await _ensure_demo_users(conn, hospital_id)
    key = await demo_key(pool, hospital_id, key_file)
    async with pool.acquire() as conn:
        doctor_id = await conn.fetchval(
            "SELECT doctor_id FROM doctors WHERE hospital_id = $1 AND emp_code = 'GEN-1'", hospital_id)
        cabin_id = await conn.fetchval(
            """SELECT s.cabin_id FROM cabin_doctors s WHERE s.doctor_id = $1
               AND s.shift_date = hospital_today($2)""", doctor_id, hospital_id)
        tracking = await conn.fetchval(
            """SELECT tracking_code FROM tokens WHERE hospital_id = $1 AND visit_date = hospital_today($1)
               AND status = 'CHECKED_IN' ORDER BY serial DESC LIMIT 1""", hospital_id)
    sign_ins = ", ".join(f"{u} / {p} ({r})" for r, u, p, _ in DEMO_USERS)
    lines = [
        "",
        "OPD Queue Board — demo hospital DEMO",
        f"  sign in:              {base_url}/login   ({sign_ins})",
        f"  TV board:             {base_url}/board/DEMO   (sign in first, or pair the screen from Admin)",
        f"  doctor console:       {base_url}/doctor   (as demo.doctor; admins: {base_url}/doctor/{doctor_id})",
        f"  reception desk:       {base_url}/reception",
        f"  cabin door display:   {base_url}/cabin/{cabin_id}",
        f"  a patient's tracker:  {base_url}/t/{tracking}",
        f"  admin:                {base_url}/admin",
        f"  staff API key:        {key}",
        f"  API:                  {base_url}/openapi.json   (docs/api.md)",
        f"  live updates:         ws://{base_url.split('://', 1)[1]}/ws   (docs/protocol.md)",
        f"  make it move:         .venv/bin/python -m app simulate --url {base_url} --key {key} --speed 60",
    ]
    if messages_file is not None:
        lines.append(f"  patient messages:     {messages_file}   "
                     "(no SMS/WhatsApp provider configured: docs/operations.md)")
    lines.append("")
    return "\n".join(lines)
