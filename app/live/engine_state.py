"""What the queue engine holds between recomputes (engine.py): every doctor's latest queue, the
hospitals' layouts with their indexes, the department boards as last built, and the open
patient views as last computed (published while watched: interest.py). As a queue moves, the
held views are brought up to date from it (patched_views) instead of being read again: a
call-next reads two views, not one per waiting patient. Pure: no I/O; the engine decides what
to read and what to publish."""

from __future__ import annotations

from typing import Any

from app.live import views
from app.live.shapes import DoctorQueue, Layout, LayoutCabin, LayoutDepartment, TokenView

# What a waiting patient's view takes from the computed queue (doctor_queue; docs/eta.md): its
# position, eta_minutes, eta_low_minutes, eta_high_minutes and eta_beyond_shift.


class EngineState:
    def __init__(self) -> None:
        self.queues: dict[str, DoctorQueue] = {}        # doctor_id -> latest queue (private)
        self.by_cabin: dict[str, dict[str, DoctorQueue]] = {}  # cabin_id -> doctor_id -> queue
        self.layouts: dict[str, Layout] = {}            # hospital_id -> layout
        self.doctor_hospital: dict[str, str] = {}
        self.department_views: dict[str, dict[str, Any]] = {}  # dept_id -> its board, as last built
        self._doctor_departments: dict[str, list[LayoutDepartment]] = {}  # doctor_id -> departments
        self._cabin_department: dict[str, LayoutDepartment] = {}  # cabin_id -> its department
        # The open patient views as last computed, by doctor, and where each token's is held.
        self._views: dict[str, dict[str, tuple[str, TokenView]]] = {}  # doctor -> token -> (code, view)
        self._view_doctor: dict[str, str] = {}
        self._code_token: dict[str, str] = {}  # tracking code -> token, of the views held

    # Layouts ------------------------------------------------------------------------------
    def set_layouts(self, layouts: list[Layout]) -> set[str]:
        """The hospitals' layouts as just read. Returns the hospitals that gained a doctor whose
        queue was computed before its hospital was known: their boards must go out now."""
        self.layouts = {layout["hospital_id"]: layout for layout in layouts}
        self.department_views.clear()
        known_before = self.doctor_hospital
        self.doctor_hospital = {
            doctor_id: hospital_id
            for hospital_id, layout in self.layouts.items()
            for dept in layout["departments"] for doctor_id in dept["doctor_ids"]
        }
        due = {hospital_id for doctor_id, hospital_id in self.doctor_hospital.items()
               if doctor_id not in known_before and doctor_id in self.queues}
        self._doctor_departments = {}
        self._cabin_department = {}
        for layout in self.layouts.values():
            for dept in layout["departments"]:
                for doctor_id in dept["doctor_ids"]:
                    self._doctor_departments.setdefault(doctor_id, []).append(dept)
                for cabin in dept["cabins"]:
                    self._cabin_department[cabin["cabin_id"]] = dept
        return due

    def layout_of_doctor(self, doctor_id: str) -> Layout | None:
        return self.layouts.get(self.doctor_hospital.get(doctor_id, ""))

    def departments_showing(self, doctor_id: str, queue: DoctorQueue) -> list[LayoutDepartment]:
        """The departments whose boards show this doctor: its own, and the one its cabin belongs
        to (a doctor may sit in another department's cabin)."""
        departments = {d["dept_id"]: d for d in self._doctor_departments.get(doctor_id, [])}
        seated = self._cabin_department.get(queue.get("cabin_id") or "")
        if seated is not None:
            departments.setdefault(seated["dept_id"], seated)
        return list(departments.values())

    # Queues and boards ------------------------------------------------------------------------
    def set_queue(self, doctor_id: str, queue: DoctorQueue) -> None:
        """The doctor's latest queue, also filed under its cabin for the door displays."""
        previous = self.queues.get(doctor_id)
        cabin = queue.get("cabin_id") or ""
        if previous is not None and (previous.get("cabin_id") or "") != cabin:
            self.by_cabin.get(previous.get("cabin_id") or "", {}).pop(doctor_id, None)
        self.queues[doctor_id] = queue
        # In place when the cabin is the same: a door display lists its doctors in a stable order.
        self.by_cabin.setdefault(cabin, {})[doctor_id] = queue

    def department_ready(self, dept: LayoutDepartment) -> bool:
        """Every doctor of the department computed: a new engine's first boards once showed a
        department with one of its two desks for a moment (issue 20)."""
        return all(doctor_id in self.queues for doctor_id in dept["doctor_ids"])

    def build_department(self, layout: Layout, dept: LayoutDepartment) -> dict[str, Any]:
        view = self.department_views[dept["dept_id"]] = views.department_view(layout, dept, self.queues)
        return view

    def cabin_view(self, layout: Layout, dept: LayoutDepartment, cabin: LayoutCabin) -> dict[str, Any]:
        return views.cabin_view(layout, dept, cabin, self.by_cabin.get(cabin["cabin_id"], {}))

    # Patient views ------------------------------------------------------------------------------
    def held_tokens(self, doctor_id: str) -> list[str] | None:
        held = self._views.get(doctor_id)
        return None if held is None else list(held)

    def held_view(self, code: str) -> TokenView | None:
        """The open view of the token with this tracking code, as last brought up to date."""
        token_id = self._code_token.get(code)
        doctor_id = self._view_doctor.get(token_id or "")
        held = self._views.get(doctor_id or "", {}).get(token_id or "")
        return held[1] if held is not None else None

    def forget_views(self, doctor_id: str) -> None:
        for token_id, (code, _view) in self._views.pop(doctor_id, {}).items():
            self._view_doctor.pop(token_id, None)
            self._code_token.pop(code, None)

    def hold_view(self, code: str, view: TokenView) -> str:
        """Keep a view read from the database while its visit is open (a closed one no longer
        follows the queue); under its token's doctor, which a transfer changes."""
        token_id: str = view["token_id"]
        previous = self._view_doctor.pop(token_id, None)
        if previous is not None:
            self._views.get(previous, {}).pop(token_id, None)
        self._code_token.pop(code, None)
        if view["status"] in views.OPEN_STATUSES:
            self._views.setdefault(view["doctor_id"], {})[token_id] = (code, view)
            self._view_doctor[token_id] = view["doctor_id"]
            self._code_token[code] = token_id
        return token_id

    def patched_views(self, doctor_id: str, queue: DoctorQueue,
                      read: set[str]) -> list[tuple[str, TokenView]]:
        """Bring the doctor's held patient views up to date from the queue just computed (a
        waiting patient's position and ETA, and for every open visit who is being served, as
        token_views in sql/functions.sql would build them); returns (code, view) of those that
        changed. Views in `read` came from the database just now and are left alone."""
        held = self._views.get(doctor_id)
        if not held:
            return []
        serving_now = queue.get("now_serving")
        serving = serving_now["token_number"] if serving_now else None
        waiting = {w["token_id"]: w for w in queue.get("waiting") or []}
        changed = []
        for token_id, (code, view) in list(held.items()):
            if token_id in read:
                continue
            if view["visit_date"] != queue["visit_date"]:  # a visit left open at the day's end
                del held[token_id]
                self._view_doctor.pop(token_id, None)
                self._code_token.pop(code, None)
                continue
            patched = view.copy()
            patched["now_serving"] = serving
            if view["status"] == "CHECKED_IN":
                place = waiting.get(token_id)
                if place is None:  # its own change is not here yet: its NOTIFY brings the view
                    continue
                patched["position"] = place["position"]
                patched["eta_minutes"] = place["eta_minutes"]
                patched["eta_low_minutes"] = place["eta_low_minutes"]
                patched["eta_high_minutes"] = place["eta_high_minutes"]
                patched["eta_beyond_shift"] = place["eta_beyond_shift"]
            if patched == view:
                continue
            held[token_id] = (code, patched)
            changed.append((code, patched))
        return changed
