"""Patients: find by phone or UHID, register."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import asyncpg

from app.api import schemas
from app.api.errors import ApiError
from app.api.registry import Call, api, query_param, require_found
from app.phones import HINT as PHONE_HINT
from app.phones import normalise_phone

TAG = "patients"
_COLUMNS = ("name", "phone", "email", "date_of_birth", "gender", "preferred_language",
            "sms_opt_in", "whatsapp_opt_in")


async def find_or_create_patient(conn: asyncpg.Connection, hospital_id: uuid.UUID,
                                 patient: dict[str, Any]) -> uuid.UUID:
    """The patient with this UHID; else, with no UHID given, the one with the same name and
    phone (the same person registered again at the desk must not become two records, issue 13);
    else a new one (a UHID is generated when none is given)."""
    if patient.get("uhid"):
        existing = await conn.fetchval(
            "SELECT patient_id FROM patients WHERE hospital_id = $1 AND uhid = $2",
            hospital_id, patient["uhid"])
    else:
        existing = await conn.fetchval(
            """SELECT patient_id FROM patients
               WHERE hospital_id = $1 AND phone = $2 AND lower(btrim(name)) = lower(btrim($3))
               ORDER BY created_at LIMIT 1""",
            hospital_id, patient["phone"], patient["name"])
    if existing is not None:
        return uuid.UUID(str(existing))
    return await create_patient(conn, hospital_id, patient)


async def create_patient(conn: asyncpg.Connection, hospital_id: uuid.UUID,
                         patient: dict[str, Any]) -> uuid.UUID:
    uhid = patient.get("uhid") or "P" + secrets.token_hex(5).upper()
    columns = [c for c in _COLUMNS if c in patient]
    values = [patient[c] for c in columns]
    placeholders = ", ".join(f"${i}" for i in range(3, 3 + len(columns)))
    sql = (f"INSERT INTO patients (hospital_id, uhid{''.join(', ' + c for c in columns)}) "
           f"VALUES ($1, $2{', ' + placeholders if columns else ''}) RETURNING patient_id")
    patient_id = await conn.fetchval(sql, hospital_id, uhid, *values)
    return uuid.UUID(str(patient_id))


_PATIENT_SELECT = """SELECT patient_id, uhid, name, phone, email, date_of_birth, gender,
                            preferred_language, sms_opt_in, whatsapp_opt_in, created_at
                     FROM patients"""


@api.op("GET", "/patients", summary="Find patients by phone or UHID", tag=TAG,
        query=[query_param("phone", "exact phone number"), query_param("uhid", "exact UHID")])
async def find_patients(call: Call) -> list[dict[str, Any]]:
    call.staff.require_role("admin", "receptionist")
    phone, uhid = call.query("phone"), call.query("uhid")
    if not phone and not uhid:
        raise ApiError(422, "give phone or uhid", code="invalid")
    stored = normalise_phone(phone) if phone else None
    if phone and stored is None:
        raise ApiError(422, f"phone: {phone!r} is not a phone number; give {PHONE_HINT}",
                       code="invalid", field="phone")
    # Rows written before numbers were normalised may hold the ten digits alone.
    national = stored[3:] if stored and stored.startswith("+91") else stored
    rows = await call.pool.fetch(
        f"""{_PATIENT_SELECT} WHERE hospital_id = $1
            AND ($2::text IS NULL OR phone IN ($2, $4)) AND ($3::text IS NULL OR uhid = $3)
            ORDER BY created_at DESC LIMIT 50""",
        call.staff.hospital_id, stored, uhid or None, national)
    return [dict(r.items()) for r in rows]


@api.op("POST", "/patients", summary="Register a patient", tag=TAG, body=schemas.PATIENT_NEW, status=201)
async def register_patient(call: Call) -> dict[str, Any]:
    call.staff.require_role("admin", "receptionist")
    async with call.pool.acquire() as conn:
        patient_id = await create_patient(conn, call.staff.hospital_id, call.body)
        row = await conn.fetchrow(f"{_PATIENT_SELECT} WHERE patient_id = $1", patient_id)
    return dict(row.items())


@api.op("GET", "/patients/{patient_id}", summary="Read a patient", tag=TAG)
async def get_patient(call: Call) -> dict[str, Any]:
    call.staff.require_role("admin", "receptionist")
    patient_id = call.path_id("patient_id", "patient")
    row = await call.pool.fetchrow(f"{_PATIENT_SELECT} WHERE patient_id = $1 AND hospital_id = $2",
                                   patient_id, call.staff.hospital_id)
    return dict(require_found(row, "patient").items())
