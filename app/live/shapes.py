"""The shapes the database builds for the engine (json_build_object in sql/functions.sql), written
down once so that a key read in Python is a key the SQL writes. Values arrive through the JSON
codec (app/db/pool.py): ids, dates and times as strings."""

from __future__ import annotations

from typing import TypedDict


class LayoutCabin(TypedDict):
    cabin_id: str
    cabin_number: str


class LayoutDepartment(TypedDict):
    dept_id: str
    code: str
    name: str
    color_code: str | None
    doctor_ids: list[str]                # its active doctors, by name
    cabins: list[LayoutCabin]


class Layout(TypedDict):
    """hospital_layout(): what the boards of one hospital are built on."""
    hospital_id: str
    code: str
    name: str
    board_shows_names: bool
    timezone: str
    latitude: float
    longitude: float
    geofence_radius: int
    announcement_languages: list[str]
    notices: list[dict[str, object]]
    departments: list[LayoutDepartment]


class Waiting(TypedDict):
    """One waiting patient of a doctor's queue (private: staff topics only)."""
    token_id: str
    token_number: str
    position: int
    eta_minutes: int | None
    eta_low_minutes: int | None
    eta_high_minutes: int | None
    eta_beyond_shift: bool | None
    priority: int
    status: str
    booking_type: str
    patient_name: str
    visit_reason: str | None


class Serving(TypedDict):
    token_id: str
    token_number: str
    status: str                          # WAITING (called) or IN_CONSULTATION
    priority: int
    booking_type: str
    called_time: str | None
    call_count: int
    consultation_start_time: str | None
    visit_reason: str | None
    patient_name: str
    date_of_birth: str | None
    gender: str | None


class Shift(TypedDict):
    start: str
    end: str
    status: str


class RecentCall(TypedDict):
    token_number: str
    called_time: str
    status: str


class DoctorQueue(TypedDict):
    """doctor_queue_snapshot(): a doctor's queue of one day, as the engine holds it."""
    doctor_id: str
    doctor_name: str
    dept_id: str
    dept_code: str
    dept_name: str
    color_code: str | None
    hospital_id: str
    visit_date: str
    paused: bool
    on_leave: bool
    doctor_status: str
    cabin_id: str | None
    cabin_number: str | None
    shift: Shift | None
    now_serving: Serving | None
    waiting: list[Waiting]
    recent_calls: list[RecentCall]
    booked_count: int
    completed_count: int
    computed_at: str


class TokenView(TypedDict):
    """token_views(): a token as its patient sees it (the token: topic); no name, no phone."""
    token_id: str
    token_number: str
    status: str
    visit_date: str
    booking_type: str
    priority: int
    scheduled_time: str | None
    position: int | None
    eta_minutes: int | None
    eta_low_minutes: int | None
    eta_high_minutes: int | None
    eta_beyond_shift: bool | None
    called_time: str | None
    call_count: int
    doctor_id: str
    doctor_name: str
    dept_name: str
    dept_code: str
    cabin_id: str | None
    cabin_number: str | None
    hospital_id: str
    hospital_name: str
    now_serving: str | None
    replaced_by: str | None
