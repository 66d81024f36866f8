"""Reading a profile share (POST /api/v3/hip/patient/share, ABDM v3). Real payloads vary between
ABHA apps and gateway versions (`pincode` or `pinCode`, numbers as strings or integers, an ABHA
number with or without hyphens), so this accepts every form seen and refuses only what a token
really cannot be issued without: the facility (hipId), the counter (context), who the patient is
(an ABHA number or address) and their name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from app.phones import normalise_phone

GENDERS = {"M": "MALE", "MALE": "MALE", "F": "FEMALE", "FEMALE": "FEMALE", "O": "OTHER", "OTHER": "OTHER",
           "T": "OTHER", "U": None}
ABHA_NUMBER = re.compile(r"^[0-9]{14}$")
ABHA_ADDRESS = re.compile(r"^[A-Za-z0-9._-]{3,64}@[A-Za-z0-9]{2,20}$")
CODE = re.compile(r"^[A-Za-z0-9_-]{1,50}$")


class ShareInvalid(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class SharedProfile:
    hip_id: str
    context: str
    abha_number: str | None
    abha_address: str | None
    name: str
    gender: str | None
    birth_year: int | None
    birth_date: date | None
    phone: str | None
    address: str | None


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        value = str(int(value))
    if not isinstance(value, str) or "\x00" in value:  # PostgreSQL text cannot hold a NUL
        return None
    return value.strip() or None


def _integer(value: Any) -> int | None:
    text = _text(value)
    return int(text) if text is not None and text.isdigit() else None


def _object(parent: dict[str, Any], *names: str) -> dict[str, Any] | None:
    for name in names:
        value = parent.get(name)
        if isinstance(value, dict):
            return value
    return None


def _first(parent: dict[str, Any], *names: str) -> Any:
    for name in names:
        if parent.get(name) not in (None, ""):
            return parent[name]
    return None


def read_share(body: Any, hip_id_header: str | None, today: date) -> SharedProfile:
    if not isinstance(body, dict):
        raise ShareInvalid("body", "must be a JSON object")
    intent = _text(body.get("intent"))
    if intent is not None and intent.upper() != "PROFILE_SHARE":
        raise ShareInvalid("intent", f"{intent!r} is not PROFILE_SHARE")
    meta = _object(body, "metaData", "metadata", "meta") or {}
    hip_id = _text(_first(meta, "hipId", "hipID", "hip_id")) or _text(hip_id_header)
    if hip_id is None or not CODE.match(hip_id):
        raise ShareInvalid("metaData.hipId", "missing or not a HIP id")
    context = _text(_first(meta, "context", "counterId", "counter_id"))
    if context is None or not CODE.match(context):
        raise ShareInvalid("metaData.context", "missing or not a counter code")
    profile = _object(body, "profile") or {}
    patient = _object(profile, "patient") or _object(body, "patient")
    if patient is None:
        raise ShareInvalid("profile.patient", "missing")

    number = _text(_first(patient, "abhaNumber", "healthIdNumber", "abha_number"))
    number = re.sub(r"[\s-]", "", number) if number else None
    number = number if number and ABHA_NUMBER.match(number) else None
    address = _text(_first(patient, "abhaAddress", "healthId", "abha_address"))
    address = address.lower() if address and ABHA_ADDRESS.match(address) else None
    if number is None and address is None:
        raise ShareInvalid("profile.patient.abhaNumber", "an ABHA number (14 digits) or ABHA address is needed")

    name = _text(patient.get("name"))
    if name is None:
        parts = [_text(patient.get(k)) for k in ("firstName", "middleName", "lastName")]
        name = " ".join(p for p in parts if p) or None
    if name is None:
        raise ShareInvalid("profile.patient.name", "missing")
    name = re.sub(r"\s+", " ", name)[:255]

    gender = GENDERS.get((_text(patient.get("gender")) or "U").upper())
    year = _integer(_first(patient, "yearOfBirth", "birthYear"))
    year = year if year is not None and 1890 <= year <= today.year else None
    month, day = _integer(patient.get("monthOfBirth")), _integer(patient.get("dayOfBirth"))
    birth_date = None
    if year and month and day:
        try:
            birth_date = date(year, month, day)
        except ValueError:
            birth_date = None
        if birth_date is not None and birth_date > today:
            birth_date = None
    phone_text = _text(_first(patient, "phoneNumber", "mobile", "phone", "mobileNumber"))
    phone = normalise_phone(phone_text) if phone_text else None
    return SharedProfile(hip_id, context, number, address, name, gender, year, birth_date, phone,
                         _address(patient.get("address")))


def _address(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip()[:500] or None
    if not isinstance(value, dict):
        return None
    parts = [_text(value.get(k)) for k in ("line", "district", "state")]
    pincode = _text(_first(value, "pincode", "pinCode", "pin_code", "pin"))
    text = ", ".join(p for p in parts if p)
    if pincode:
        text = f"{text} {pincode}".strip()
    return text[:500] or None
