"""Request body schemas (a JSON Schema subset, see validation.py)."""

from __future__ import annotations

from typing import Any

UUID: dict[str, Any] = {"type": "string", "format": "uuid"}
UUID_OR_NULL: dict[str, Any] = {"type": ["string", "null"], "format": "uuid"}
PHONE: dict[str, Any] = {"type": "string", "format": "phone", "maxLength": 24,
                         "description": "a mobile number as people write it (\"98765 43210\", \"+91 98765-43210\", "
                                        "\"098765 43210\"); stored and returned as E.164, \"+919876543210\""}
REASON: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 255}
NAME: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 255}
COORD_LAT: dict[str, Any] = {"type": "number", "minimum": -90, "maximum": 90}
COORD_LON: dict[str, Any] = {"type": "number", "minimum": -180, "maximum": 180}
DATE_TIME: dict[str, Any] = {"type": "string", "format": "date-time"}


def obj(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or [],
            "additionalProperties": False, **extra}


EMPTY = obj({})

PATIENT_NEW = obj({
    "name": NAME,
    "phone": PHONE,
    "uhid": {"type": "string", "pattern": r"^[A-Za-z0-9/_-]{1,50}$", "maxLength": 50},
    "email": {"type": ["string", "null"], "maxLength": 255},
    "date_of_birth": {"type": ["string", "null"], "format": "date"},
    "gender": {"type": ["string", "null"], "enum": ["MALE", "FEMALE", "OTHER", None]},
    "preferred_language": {"type": "string", "enum": ["en", "hi"]},
    "sms_opt_in": {"type": "boolean"},
    "whatsapp_opt_in": {"type": "boolean"},
}, ["name", "phone"])

TOKEN_ISSUE = obj({
    "doctor_id": UUID_OR_NULL,
    "dept_id": UUID_OR_NULL,
    "patient_id": UUID_OR_NULL,
    "patient": PATIENT_NEW,
    "booking_type": {"type": "string", "enum": ["WALK_IN", "ONLINE", "EMERGENCY"]},
    "priority": {"type": "integer", "enum": [1, 2, 3]},
    "scheduled_time": DATE_TIME,
    "visit_reason": {"type": ["string", "null"], "maxLength": 500},
}, [], **{"x-one-of-required": [["doctor_id", "dept_id"], ["patient_id", "patient"]]})

CHECK_IN = obj({
    "latitude": COORD_LAT,
    "longitude": COORD_LON,
    "override_reason": REASON,
})

CANCEL = obj({"reason": REASON})
REASON_OPTIONAL = obj({"reason": REASON})
TRANSFER = obj({"to_doctor_id": UUID, "reason": REASON}, ["to_doctor_id"])
RESCHEDULE = obj({"scheduled_time": DATE_TIME, "doctor_id": UUID, "reason": REASON},
                 ["scheduled_time"])
CALL_NEXT = obj({"complete_current": {"type": "boolean"}})

DEPARTMENT = obj({
    "name": {"type": "string", "minLength": 1, "maxLength": 100},
    "code": {"type": "string", "pattern": r"^[A-Z0-9]{1,10}$"},
    "avg_consultation_time": {"type": "integer", "minimum": 1, "maximum": 240},
    "buffer_time": {"type": "integer", "minimum": 0, "maximum": 120},
    "max_tokens_per_day": {"type": "integer", "minimum": 1, "maximum": 100000},
    "color_code": {"type": "string", "pattern": r"^#[0-9A-Fa-f]{6}$"},
    "status": {"type": "string", "enum": ["ACTIVE", "INACTIVE"]},
}, ["name", "code", "avg_consultation_time"])

CABIN = obj({
    "dept_id": UUID,
    "cabin_number": {"type": "string", "minLength": 1, "maxLength": 20},
    "floor_number": {"type": ["integer", "null"], "minimum": -10, "maximum": 200},
    "status": {"type": "string", "enum": ["AVAILABLE", "OCCUPIED", "MAINTENANCE"]},
}, ["dept_id", "cabin_number"])

DOCTOR = obj({
    "emp_code": {"type": "string", "minLength": 1, "maxLength": 50},
    "name": NAME,
    "specialization": {"type": "string", "minLength": 1, "maxLength": 100},
    "primary_dept_id": UUID,
    "phone": PHONE,
    "email": {"type": ["string", "null"], "maxLength": 255},
    "avg_consultation_time": {"type": ["integer", "null"], "minimum": 1, "maximum": 240},
    "max_tokens_per_session": {"type": "integer", "minimum": 1, "maximum": 1000},
    "status": {"type": "string", "enum": ["ACTIVE", "ON_LEAVE", "INACTIVE"]},
}, ["emp_code", "name", "specialization", "primary_dept_id", "phone"])

SHIFT = obj({
    "cabin_id": UUID,
    "doctor_id": UUID,
    "shift_date": {"type": "string", "format": "date"},
    "shift_start_time": {"type": "string", "format": "time"},
    "shift_end_time": {"type": "string", "format": "time"},
    "planned_tokens": {"type": "integer", "minimum": 0, "maximum": 1000},
    "status": {"type": "string", "enum": ["SCHEDULED", "ACTIVE", "COMPLETED", "CANCELLED"]},
}, ["cabin_id", "doctor_id", "shift_date", "shift_start_time", "shift_end_time"])

COPY_WEEK = obj({
    "from_date": {"type": "string", "format": "date", "description": "first day of the week to copy"},
    "to_date": {"type": "string", "format": "date", "description": "first day of the week to fill"},
}, ["from_date", "to_date"])

HOSPITAL_PATCH = obj({
    "name": NAME,
    "address": {"type": "string", "minLength": 1, "maxLength": 1000},
    "latitude": COORD_LAT,
    "longitude": COORD_LON,
    "geofence_radius": {"type": "integer", "minimum": 10, "maximum": 50000},
    "timezone": {"type": "string", "maxLength": 50},
    "board_shows_names": {"type": "boolean"},
    "called_not_seen_minutes": {"type": "integer", "minimum": 1, "maximum": 120,
                                "description": "minutes after a call before the console prompts and an alert opens"},
    "auto_absent_minutes": {"type": ["integer", "null"], "minimum": 2, "maximum": 240,
                            "description": "mark a called, unseen patient absent after this long (null: never)"},
    "dlt_pe_id": {"type": ["string", "null"], "pattern": "^[0-9]{10,30}$",
                  "description": "the hospital's DLT principal entity ID, sent with every SMS"},
    "sms_service_implicit": {
        "type": "boolean", "description": "SMS registered as DLT 'service implicit': sent without an explicit opt-in"},
})

MESSAGE_REGISTRATION = obj({
    "body": {"type": "string", "minLength": 1, "maxLength": 2000,
             "description": "the text exactly as registered, with {variables} where the template has {#var#}"},
    "dlt_template_id": {"type": ["string", "null"], "pattern": "^[0-9]{10,30}$",
                        "description": "SMS: the DLT content template ID"},
    "sms_header": {"type": ["string", "null"], "pattern": "^[A-Za-z0-9]{3,11}$",
                   "description": "SMS: the registered header (sender ID)"},
    "gateway_template_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 64,
                            "description": "SMS: the gateway's own template ID (MSG91)"},
    "wa_template_name": {"type": ["string", "null"], "pattern": "^[a-z0-9_]+$", "maxLength": 512,
                         "description": "WhatsApp: the approved template's name"},
    "wa_language": {"type": ["string", "null"], "pattern": "^[a-z]{2}(_[A-Z]{2})?$",
                    "description": "WhatsApp: the approved template's language code (en, hi, en_US)"},
}, ["body"])


def partial(schema: dict[str, Any]) -> dict[str, Any]:
    """The same object schema with nothing required: for PATCH."""
    return {**schema, "required": []}
