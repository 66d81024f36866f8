"""Builds small hospitals straight in the database, one per test, so tests never share rows."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from app.api.auth import create_api_key


@dataclass
class Doctor:
    doctor_id: uuid.UUID
    cabin_id: uuid.UUID
    name: str
    emp_code: str


@dataclass
class Hospital:
    hospital_id: uuid.UUID
    code: str
    dept_id: uuid.UUID
    dept_code: str
    doctors: list[Doctor]
    latitude: float
    longitude: float
    radius_m: int
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def doctor(self) -> Doctor:
        return self.doctors[0]


async def make_hospital(pool: asyncpg.Pool, *, doctors: int = 2, max_tokens_per_day: int = 500,
                        max_tokens_per_session: int = 200, timezone: str = "Asia/Kolkata",
                        avg_minutes: int = 10, buffer_minutes: int = 5,
                        shows_names: bool = False) -> Hospital:
    """A hospital with one department, `doctors` doctors each in a cabin, all on shift all day."""
    code = "T" + secrets.token_hex(4).upper()
    lat, lon, radius = 28.6139, 77.2090, 200
    async with pool.acquire() as conn, conn.transaction():
        hospital_id = await conn.fetchval(
            """INSERT INTO hospitals (code, name, address, latitude, longitude, geofence_radius, timezone,
                                      board_shows_names)
               VALUES ($1, $2, 'Test Road', $3, $4, $5, $6, $7) RETURNING hospital_id""",
            code, f"Hospital {code}", lat, lon, radius, timezone, shows_names)
        dept_id = await conn.fetchval(
            """INSERT INTO departments (hospital_id, name, code, avg_consultation_time, buffer_time,
                                        max_tokens_per_day)
               VALUES ($1, 'Cardiology', 'CARD', $2, $3, $4) RETURNING dept_id""",
            hospital_id, avg_minutes, buffer_minutes, max_tokens_per_day)
        made: list[Doctor] = []
        for n in range(1, doctors + 1):
            cabin_id = await conn.fetchval(
                "INSERT INTO cabins (dept_id, cabin_number) VALUES ($1, $2) RETURNING cabin_id",
                dept_id, f"C-10{n}")
            doctor_id = await conn.fetchval(
                """INSERT INTO doctors (hospital_id, emp_code, name, specialization, primary_dept_id, phone,
                                        max_tokens_per_session)
                   VALUES ($1, $2, $3, 'Cardiology', $4, '9000000000', $5) RETURNING doctor_id""",
                hospital_id, f"E{n}", f"Dr. Test {n}", dept_id, max_tokens_per_session)
            await conn.execute(
                """INSERT INTO cabin_doctors (cabin_id, doctor_id, shift_date, shift_start_time,
                                              shift_end_time, status)
                   VALUES ($1, $2, hospital_today($3), '00:00', '23:59:59', 'ACTIVE')""",
                cabin_id, doctor_id, hospital_id)
            made.append(Doctor(doctor_id, cabin_id, f"Dr. Test {n}", f"E{n}"))
        hospital = Hospital(hospital_id, code, dept_id, "CARD", made, lat, lon, radius)
        for role in ("admin", "receptionist"):
            _, hospital.keys[role] = await create_api_key(conn, hospital_id, role=role)
        _, hospital.keys["doctor"] = await create_api_key(conn, hospital_id, role="doctor",
                                                          doctor_id=made[0].doctor_id)
    return hospital


_patient_counter = 0


async def make_patient(pool: asyncpg.Pool, hospital: Hospital, name: str = "Asha Kumari Verma",
                       phone: str | None = None) -> uuid.UUID:
    global _patient_counter
    _patient_counter += 1
    phone = phone or f"98{secrets.randbelow(10**8):08d}"
    patient_id: uuid.UUID = await pool.fetchval(
        # A patient who agreed to SMS and WhatsApp at the desk (nothing is sent otherwise).
        """INSERT INTO patients (hospital_id, uhid, name, phone, sms_opt_in, whatsapp_opt_in)
           VALUES ($1, $2, $3, $4, true, true) RETURNING patient_id""",
        hospital.hospital_id, f"U{_patient_counter:05d}{secrets.token_hex(2)}", name, phone)
    return patient_id


async def issue(pool: asyncpg.Pool, hospital: Hospital, *, doctor: Doctor | None = None,
                booking_type: str = "WALK_IN", priority: int = 1, scheduled: Any = None,
                patient_id: uuid.UUID | None = None) -> asyncpg.Record:
    """Issue a token through the SQL lifecycle function (what the API calls)."""
    doctor = doctor or hospital.doctor
    patient_id = patient_id or await make_patient(pool, hospital)
    row: asyncpg.Record = await pool.fetchrow(
        "SELECT * FROM issue_token($1, $2, $3, NULL, $4, $5, $6, 'test')",
        hospital.hospital_id, patient_id, doctor.doctor_id, booking_type, priority, scheduled)
    return row
