"""The public views derived from doctors' queues: department and hospital boards, cabin doors.

Pure functions of the engine's latest doctor snapshots and the hospital layout; no database.
Nothing here may carry a phone number or a full name: boards show token numbers, or a first
name and initial when the hospital opts in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.live.shapes import DoctorQueue, Layout, LayoutCabin, LayoutDepartment

# A visit is open in these statuses: its patient's view shows who is being served
# (token_views in sql/functions.sql).
OPEN_STATUSES = frozenset({"BOOKED", "CHECKED_IN", "WAITING", "IN_CONSULTATION"})
BOARD_NEXT = 5  # tokens listed after "now serving" on a TV board
DOOR_NEXT = 2  # ... and on a cabin door display


def board_name(full_name: str | None, shows_names: bool) -> str | None:
    """'Asha Kumari Verma' -> 'Asha V.' when the hospital opts in, else None."""
    if not shows_names or not full_name:
        return None
    parts = full_name.split()
    if len(parts) == 1:
        return parts[0]
    return f"{parts[0]} {parts[-1][0]}."


def desk(queue: DoctorQueue, shows_names: bool, next_count: int) -> dict[str, Any]:
    """One doctor at one cabin: who is being served and who is next."""
    serving = queue.get("now_serving")
    return {
        "doctor_id": queue["doctor_id"],
        "doctor_name": queue["doctor_name"],
        "cabin_id": queue.get("cabin_id"),
        "cabin_number": queue.get("cabin_number"),
        "paused": queue.get("paused", False),
        "on_leave": queue.get("on_leave", False),
        "on_shift": queue.get("shift") is not None,
        "now_serving": None if serving is None else {
            "token_number": serving["token_number"],
            "status": serving["status"],
            "called_time": serving.get("called_time"),
            "call_count": serving.get("call_count", 0),
            "display_name": board_name(serving.get("patient_name"), shows_names),
        },
        # Token numbers and times only: a board never names a patient it has moved past.
        "recent_calls": [{"token_number": c["token_number"], "called_time": c["called_time"]}
                         for c in queue.get("recent_calls", [])],
        "next": [{"token_number": w["token_number"], "eta_minutes": w["eta_minutes"],
                  "display_name": board_name(w.get("patient_name"), shows_names)}
                 for w in queue.get("waiting", [])[:next_count]],
        "waiting_count": len(queue.get("waiting", [])),
    }


def department_view(layout: Layout, dept: LayoutDepartment,
                    queues: Mapping[str, DoctorQueue]) -> dict[str, Any]:
    shows = bool(layout.get("board_shows_names"))
    desks = [desk(queues[d], shows, BOARD_NEXT) for d in dept["doctor_ids"]
             if d in queues and queues[d].get("shift") is not None]
    desks.sort(key=lambda x: (x["cabin_number"] or "", x["doctor_name"]))
    return {
        "dept_id": dept["dept_id"], "code": dept["code"], "name": dept["name"],
        "color_code": dept["color_code"], "hospital_id": layout["hospital_id"],
        "desks": desks, "waiting_count": sum(d["waiting_count"] for d in desks),
        "notices": notices_for(layout, dept["dept_id"]),
    }


def notices_for(layout: Layout, dept_id: str) -> list[dict[str, Any]]:
    """The notices a department's board and doors show: the hospital's and its own."""
    return [n for n in layout.get("notices", []) if n["dept_id"] in (None, dept_id)]


def hospital_view(layout: Layout, departments: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "hospital_id": layout["hospital_id"], "code": layout["code"], "name": layout["name"],
        "timezone": layout["timezone"], "announcement_languages": layout["announcement_languages"],
        "departments": departments,
    }


def cabin_view(layout: Layout, dept: LayoutDepartment, cabin: LayoutCabin,
               queues: Mapping[str, DoctorQueue]) -> dict[str, Any]:
    shows = bool(layout.get("board_shows_names"))
    desks = [desk(q, shows, DOOR_NEXT) for q in queues.values()
             if q.get("cabin_id") == cabin["cabin_id"] and q.get("shift") is not None]
    return {
        "cabin_id": cabin["cabin_id"], "cabin_number": cabin["cabin_number"],
        "dept_code": dept["code"], "dept_name": dept["name"], "color_code": dept["color_code"],
        "hospital_id": layout["hospital_id"], "desks": desks,
        "notices": notices_for(layout, dept["dept_id"]),
    }


def operations_view(layout: Layout, departments: list[dict[str, Any]],
                    queues: Mapping[str, DoctorQueue], operations: dict[str, Any]) -> dict[str, Any]:
    """The operations dashboard: department loads, doctors' statuses, open alerts (staff only)."""
    def last_in_line_eta(doctor_id: str) -> int | None:
        queue = queues.get(doctor_id)
        waiting = queue["waiting"] if queue is not None else []
        return waiting[-1]["eta_minutes"] if waiting else None

    def longest_eta(dept: dict[str, Any]) -> int:
        tails = [eta for desk in dept["desks"] if (eta := last_in_line_eta(desk["doctor_id"])) is not None]
        return max(tails, default=0)

    loads = [{"dept_id": d["dept_id"], "code": d["code"], "name": d["name"], "color_code": d["color_code"],
              "waiting_count": d["waiting_count"], "desks": len(d["desks"]), "longest_eta": longest_eta(d)}
             for d in departments]
    # Each doctor's wait for the last one in line, from the engine's queues: reception shows it
    # beside the doctor when issuing a token (issue 13).
    doctors = [{**d, "last_in_line_eta": last_in_line_eta(d["doctor_id"])} for d in operations.get("doctors", [])]
    return {"hospital_id": layout["hospital_id"], "departments": loads, **operations, "doctors": doctors}
