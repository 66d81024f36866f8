"""The shape of a change notice: what the database's triggers NOTIFY on channel `opd_changes`
(sql/functions.sql: tokens_after_write for `token`, the doctor, cabin and shift triggers for
`doctor`, hospital_layout_changed for `hospital`) and the engine reads (app/live/engine.py)."""

from __future__ import annotations

from typing import Literal, TypedDict


class ChangeNotice(TypedDict, total=False):
    kind: Literal["token", "doctor", "hospital"]
    at: float                      # clock_timestamp() of the change, seconds since the epoch
    hospital_id: str
    doctor_id: str                 # token and doctor notices
    dept_id: str
    token_id: str                  # token notices only
    visit_date: str
    old_doctor_id: str | None      # the doctor a transferred token left
    status: str
    old_status: str | None
