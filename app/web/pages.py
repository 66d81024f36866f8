"""The screens (issue: TV board, doctor console, patient tracker, reception, cabin door, admin).

Each page is rendered once with what it needs to subscribe; live data then arrives over /ws.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response

from app.errors import ApiError
from app.notify.events import MESSAGE_EVENTS
from app.phones import phone_digits
from app.security.identity import TRACKING_CODE_PATTERN, Principal, optional_principal
from app.web.desk_filters import STATUSES
from app.web.displays import pairing_page
from app.web.login import HOME_BY_ROLE, login_redirect
from app.web.templating import STATIC_DIR, render
from app.ws_limits import MAX_TOPICS_PER_CONNECTION


def uuid_or_none(raw: str) -> uuid.UUID | None:
    """A path or query id; None when it is not one (the page then says "not found")."""
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


async def staff_member(request: Request, *roles: str) -> Principal | Response:
    """The signed-in staff member with one of roles, or the response to send instead."""
    try:
        principal = await optional_principal(request)
    except ApiError:
        principal = None
    if principal is None or principal.role == "display":
        return login_redirect(request)
    if roles and principal.role not in roles:
        return render(request, "error.html", {"message": "Your account cannot open this page."},
                      principal=principal, status_code=403)
    return principal


async def home(request: Request) -> Response:
    principal = await optional_principal(request)
    if principal is None or principal.role == "display":
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(HOME_BY_ROLE[principal.role], status_code=303)


async def board(request: Request) -> Response:
    code = request.path_params["hospital_code"]
    pool = request.app.state.pool
    hospital = await pool.fetchrow(
        "SELECT hospital_id, code, name, timezone, announcement_languages FROM hospitals WHERE code = $1", code)
    if hospital is None:
        return render(request, "error.html", {"message": f"No hospital {code!r}."}, status_code=404)
    principal = await optional_principal(request)
    if principal is None or principal.hospital_id != hospital["hospital_id"]:
        return await pairing_page(request, f"waiting-hall board of {hospital['name']}")
    wanted = [c.strip().upper() for c in request.query_params.get("dept", "").split(",") if c.strip()]
    departments = await pool.fetch(
        """SELECT dept_id, code, name FROM departments
           WHERE hospital_id = $1 AND status = 'ACTIVE' AND (cardinality($2::text[]) = 0 OR code = ANY($2))
           ORDER BY code""", hospital["hospital_id"], wanted)
    # The whole hospital too is one topic per department, not the hospital topic: a call reaches
    # the TV in the same publish as the doctor's console, and a change sends the one department
    # it touched (a few KB) rather than every department (187 KB for a hospital of 49, up to 20
    # times a second before; docs/performance.md). Only a hospital with more departments than a
    # connection may hold topics uses the hospital topic, rebuilt once a second.
    topics = [f"department:{d['dept_id']}" for d in departments]
    if not wanted and (not topics or len(topics) > MAX_TOPICS_PER_CONNECTION):
        topics = [f"hospital:{hospital['hospital_id']}"]
    # ?page_seconds=N: how long each page of departments stays when they do not fit one screen.
    try:
        page_seconds = min(max(int(request.query_params.get("page_seconds", "12")), 3), 120)
    except ValueError:
        page_seconds = 12
    return render(request, "board.html", {"hospital": hospital, "topics": topics, "page_seconds": page_seconds,
                                          "languages": list(hospital["announcement_languages"])},
                  principal=principal)


async def cabin(request: Request) -> Response:
    cabin_id = uuid_or_none(request.path_params["cabin_id"])
    pool = request.app.state.pool
    row = None if cabin_id is None else await pool.fetchrow(
        """SELECT c.cabin_id, c.cabin_number, d.hospital_id, d.name AS dept_name, h.name AS hospital_name
           FROM cabins c JOIN departments d USING (dept_id) JOIN hospitals h USING (hospital_id)
           WHERE c.cabin_id = $1""", cabin_id)
    if row is None:
        return render(request, "error.html", {"message": "No such cabin."}, status_code=404)
    principal = await optional_principal(request)
    if principal is None or principal.hospital_id != row["hospital_id"]:
        return await pairing_page(request, f"door display of cabin {row['cabin_number']}")
    return render(request, "cabin.html", {"cabin": row, "topic": f"cabin:{row['cabin_id']}"},
                  principal=principal)


async def doctor_console(request: Request) -> Response:
    staff = await staff_member(request, "doctor", "admin")
    if isinstance(staff, Response):
        return staff
    pool = request.app.state.pool
    raw = request.path_params.get("doctor_id")
    if raw is None and staff.role == "doctor":
        doctor_id = staff.doctor_id
    elif raw is not None and staff.role == "admin":
        doctor_id = uuid_or_none(raw)
    elif raw is not None and staff.role == "doctor" and uuid_or_none(raw) == staff.doctor_id:
        doctor_id = staff.doctor_id
    elif raw is None:  # an admin without a doctor: choose one
        doctors = await pool.fetch(
            """SELECT d.doctor_id, d.name, dep.code
               FROM doctors d JOIN departments dep ON dep.dept_id = d.primary_dept_id
               WHERE d.hospital_id = $1 ORDER BY dep.code, d.name""", staff.hospital_id)
        return render(request, "doctor_pick.html", {"doctors": doctors}, principal=staff)
    else:
        return render(request, "error.html", {"message": "A doctor opens only their own console."},
                      principal=staff, status_code=403)
    doctor = None if doctor_id is None else await pool.fetchrow(
        """SELECT d.doctor_id, d.name, d.primary_dept_id, d.hospital_id, dep.name AS dept_name,
                  h.called_not_seen_minutes, opd_now() AS server_now
           FROM doctors d JOIN departments dep ON dep.dept_id = d.primary_dept_id
           JOIN hospitals h ON h.hospital_id = d.hospital_id WHERE d.doctor_id = $1""",
        doctor_id)
    if doctor is None or doctor["hospital_id"] != staff.hospital_id:
        return render(request, "error.html", {"message": "No such doctor."}, principal=staff, status_code=404)
    colleagues = await pool.fetch(
        """SELECT doctor_id, name FROM doctors
           WHERE primary_dept_id = $1 AND doctor_id <> $2 AND status = 'ACTIVE' ORDER BY name""",
        doctor["primary_dept_id"], doctor["doctor_id"])
    return render(request, "doctor.html", {"doctor": doctor, "colleagues": colleagues,
                                           "topic": f"doctor:{doctor['doctor_id']}"}, principal=staff)


async def tracker(request: Request) -> Response:
    import re

    code = request.path_params["code"]
    limiter = request.app.state.public_limiter
    if not limiter.allow(request.client.host if request.client else "unknown"):
        return render(request, "error.html", {"message": "Too many requests. Wait a minute."}, status_code=429)
    token = None
    if re.match(TRACKING_CODE_PATTERN, code):
        token = await request.app.state.pool.fetchrow(
            """SELECT t.token_number, h.name AS hospital_name, h.timezone, p.preferred_language,
                      token_public_view(t.token_id) AS view
               FROM tokens t JOIN hospitals h USING (hospital_id) JOIN patients p USING (patient_id)
               WHERE t.tracking_code = $1 AND t.visit_date >= hospital_today(t.hospital_id)""", code)
    if token is None:
        return render(request, "tracker_expired.html", {}, status_code=404)
    # The view as it is now goes out with the page, so position and ETA show without a
    # WebSocket (a network or proxy may block them; static/js/tracker.js then polls).
    view = token["view"] if isinstance(token["view"], dict) else json.loads(token["view"])
    return render(request, "tracker.html", {"code": code, "token": token, "topic": f"token:{code}",
                                            "view": view, "lang": token["preferred_language"],
                                            "vapid_public_key": request.app.state.vapid_public_key})


async def tracker_manifest(request: Request) -> Response:
    """The web app manifest of one tracker: on an iPhone, Web Push works only for a page added
    to the home screen, and it opens this token's tracker."""
    import re

    code = request.path_params["code"]
    if not re.match(TRACKING_CODE_PATTERN, code):
        return JSONResponse({"error": {"code": "not_found", "message": "unknown tracking link"}}, status_code=404)
    return JSONResponse({"name": "OPD token", "short_name": "OPD token", "start_url": f"/t/{code}",
                         "scope": "/t/", "display": "standalone", "background_color": "#ffffff",
                         "theme_color": "#0b5394"}, media_type="application/manifest+json")


async def push_service_worker(request: Request) -> Response:
    """The tracker's service worker, from the site's root so that it may control /t/ pages."""
    return FileResponse(STATIC_DIR / "js" / "push-sw.js", media_type="text/javascript",
                        headers={"Cache-Control": "no-cache"})


async def reception(request: Request) -> Response:
    staff = await staff_member(request, "receptionist", "admin")
    if isinstance(staff, Response):
        return staff
    pool = request.app.state.pool
    departments = await pool.fetch(
        "SELECT dept_id, code, name FROM departments WHERE hospital_id = $1 AND status = 'ACTIVE' ORDER BY code",
        staff.hospital_id)
    doctors = await pool.fetch(
        """SELECT d.doctor_id, d.name, dep.code AS dept_code, d.primary_dept_id AS dept_id FROM doctors d
           JOIN departments dep ON dep.dept_id = d.primary_dept_id
           WHERE d.hospital_id = $1 AND d.status = 'ACTIVE' ORDER BY dep.code, d.name""", staff.hospital_id)
    return render(request, "reception.html", {"departments": departments, "doctors": doctors,
                                              "statuses": STATUSES, "topic": f"operations:{staff.hospital_id}",
                                              "timezone": await pool.fetchval(
                                                  "SELECT timezone FROM hospitals WHERE hospital_id = $1",
                                                  staff.hospital_id)},
                  principal=staff)


async def slip(request: Request) -> Response:
    """A printable token slip with a QR code of the tracking link."""
    import segno

    staff = await staff_member(request, "receptionist", "admin")
    if isinstance(staff, Response):
        return staff
    token_id = uuid_or_none(request.path_params["token_id"])
    row = None if token_id is None else await request.app.state.pool.fetchrow(
        # The ETA is computed now (doctor_queue), not read from the token's stored columns: the
        # slip prints right after the token is issued, before the engine writes it back.
        """SELECT t.token_number, t.tracking_code, t.hospital_id, t.scheduled_time,
                  t.status, d.name AS doctor_name, c.cabin_number, dep.name AS dept_name,
                  h.name AS hospital_name, h.timezone, p.preferred_language,
                  to_char(t.created_at AT TIME ZONE h.timezone, 'DD Mon YYYY HH24:MI') AS issued_local,
                  to_char(COALESCE(opd_now() + make_interval(mins => q.eta_minutes), t.scheduled_time)
                          AT TIME ZONE h.timezone, 'HH24:MI') AS expected_local,
                  q.eta_low_minutes, q.eta_high_minutes, q.eta_beyond_shift
           FROM tokens t JOIN doctors d USING (doctor_id) JOIN departments dep ON dep.dept_id = t.dept_id
           JOIN hospitals h ON h.hospital_id = t.hospital_id LEFT JOIN cabins c ON c.cabin_id = t.cabin_id
           JOIN patients p ON p.patient_id = t.patient_id
           LEFT JOIN LATERAL (SELECT * FROM doctor_queue(t.doctor_id, t.visit_date) x
                              WHERE x.token_id = t.token_id AND t.status = 'CHECKED_IN') q ON true
           WHERE t.token_id = $1""", token_id)
    if row is None or row["hospital_id"] != staff.hospital_id:
        return render(request, "error.html", {"message": "No such token."}, principal=staff, status_code=404)
    url = f"{request.app.state.settings.base_url()}/t/{row['tracking_code']}"
    qr_svg = segno.make(url, error="m").svg_inline(scale=4, omitsize=False)
    return render(request, "slip.html", {"token": row, "tracking_url": url, "qr_svg": qr_svg}, principal=staff)


async def abdm_counter_qr(request: Request) -> Response:
    """A counter's Scan & Share poster: the QR code an ABHA app scans, which opens ABDM's
    share-profile page with the hospital's HIP id and the counter's code (docs/abdm.md)."""
    from urllib.parse import urlencode

    import segno

    staff = await staff_member(request, "admin", "receptionist")
    if isinstance(staff, Response):
        return staff
    counter_id = uuid_or_none(request.path_params["counter_id"])
    pool = request.app.state.pool
    counter = None if counter_id is None else await pool.fetchrow(
        """SELECT c.context, c.label, d.name AS dept_name FROM abdm_counters c JOIN departments d USING (dept_id)
           WHERE c.counter_id = $1 AND c.hospital_id = $2""", counter_id, staff.hospital_id)
    if counter is None:
        return render(request, "error.html", {"message": "No such counter."}, principal=staff, status_code=404)
    hospital = await pool.fetchrow("SELECT name, abdm_hip_id FROM hospitals WHERE hospital_id = $1",
                                   staff.hospital_id)
    share_url = qr_svg = None
    if hospital["abdm_hip_id"]:
        share_url = (request.app.state.settings.abdm_share_url + "?"
                     + urlencode({"hip-id": hospital["abdm_hip_id"], "counter-id": counter["context"]}))
        qr_svg = segno.make(share_url, error="m").svg_inline(scale=6, omitsize=True)
    return render(request, "abdm_counter_qr.html", {"counter": counter, "hospital": hospital,
                                                    "share_url": share_url, "qr_svg": qr_svg}, principal=staff)


async def admin_page(request: Request) -> Response:
    staff = await staff_member(request, "admin")
    if isinstance(staff, Response):
        return staff
    pool = request.app.state.pool
    hospital = await pool.fetchrow(
        """SELECT hospital_id, code, name, timezone, geofence_radius, board_shows_names, called_not_seen_minutes,
                  auto_absent_minutes, dlt_pe_id, sms_service_implicit, abdm_hip_id,
                  (SELECT value FROM app_settings WHERE key = 'public_url') AS public_url
           FROM hospitals WHERE hospital_id = $1""", staff.hospital_id)
    doctors = await pool.fetch(
        """SELECT doctor_id, name, phone, primary_dept_id, status FROM doctors WHERE hospital_id = $1
           ORDER BY name""", staff.hospital_id)
    cabins = await pool.fetch(
        """SELECT c.cabin_id, c.cabin_number, c.floor_number, c.status, d.code FROM cabins c
           JOIN departments d USING (dept_id)
           WHERE d.hospital_id = $1 ORDER BY d.code, c.cabin_number""", staff.hospital_id)
    # Every department, closed ones too, for the "change or close" forms.
    all_departments = await pool.fetch(
        """SELECT dept_id, code, name, avg_consultation_time, buffer_time, status FROM departments
           WHERE hospital_id = $1 ORDER BY code""", staff.hospital_id)
    today = await pool.fetchval("SELECT hospital_today($1)", staff.hospital_id)
    departments = await pool.fetch(
        "SELECT dept_id, code, name FROM departments WHERE hospital_id = $1 AND status = 'ACTIVE' ORDER BY code",
        staff.hospital_id)
    return render(request, "admin.html", {"hospital": hospital, "doctors": doctors, "cabins": cabins,
                                          "today": today, "departments": departments,
                                          "all_departments": all_departments,
                                          "message_events": MESSAGE_EVENTS,
                                          "abdm_on": request.app.state.abdm_gateway is not None,
                                          "timedelta": dt.timedelta}, principal=staff)




async def patient_results(request: Request) -> Response:
    """htmx fragment: patients matching a UHID, a name, or any part (4+ digits) of a phone number,
    written as people write it ("98765 43210")."""
    staff = await staff_member(request, "receptionist", "admin")
    if isinstance(staff, Response):
        return staff
    query = request.query_params.get("q", "").strip()[:50].replace("\x00", "")
    digits = phone_digits(query) if not any(ch.isalpha() for ch in query) else ""
    patients = [] if not query else await request.app.state.pool.fetch(
        """SELECT patient_id, uhid, name, phone FROM patients
           WHERE hospital_id = $1
             AND (uhid = $2
                  OR phone_contains(phone, $3)
                  OR (length($2) >= 2 AND $3 = '' AND name ILIKE '%' || replace(replace($2, '%', ''), '_', '') || '%'))
           ORDER BY created_at DESC LIMIT 20""",
        staff.hospital_id, query, digits)
    return render(request, "_patient_results.html", {"patients": patients, "query": query}, principal=staff)


_ADMIN_LISTS = {
    "displays": """SELECT d.device_id, d.label, d.revoked_at,
                          to_char(d.paired_at AT TIME ZONE h.timezone, 'DD Mon HH24:MI') AS paired_local
                   FROM display_devices d JOIN hospitals h USING (hospital_id)
                   WHERE d.hospital_id = $1 ORDER BY d.paired_at DESC""",
    "users": """SELECT user_id, username, role, is_active, locked_until > now() AS locked_until FROM staff_users
                WHERE hospital_id = $1 ORDER BY username""",
    # Shifts of the hospital's today and the coming week.
    "shifts": """SELECT a.assignment_id, a.status, d.name AS doctor_name, c.cabin_number,
                        to_char(a.shift_date, 'Dy DD Mon') AS day, a.shift_date = hospital_today($1) AS today,
                        to_char(a.shift_start_time, 'HH24:MI') AS start_local,
                        to_char(a.shift_end_time, 'HH24:MI') AS end_local
                 FROM cabin_doctors a JOIN doctors d USING (doctor_id) JOIN cabins c USING (cabin_id)
                 WHERE d.hospital_id = $1 AND a.shift_date BETWEEN hospital_today($1) AND hospital_today($1) + 7
                 ORDER BY a.shift_date, c.cabin_number, a.shift_start_time""",
    # Leave awaiting approval or still to come (what approving would do: _LEAVE_PLAN).
    "leave": """SELECT e.exception_id, e.exception_type, e.reason, d.name AS doctor_name,
                       e.needs_approval AND e.approved_at IS NULL AS pending,
                       to_char(e.start_datetime AT TIME ZONE h.timezone, 'DD Mon HH24:MI') AS start_local,
                       to_char(e.end_datetime AT TIME ZONE h.timezone, 'DD Mon HH24:MI') AS end_local
                FROM schedule_exceptions e JOIN doctors d USING (doctor_id) JOIN hospitals h USING (hospital_id)
                WHERE d.hospital_id = $1 AND e.end_datetime > opd_now()
                ORDER BY pending DESC, e.start_datetime LIMIT 50""",
    "abdm_counters": """SELECT c.counter_id, c.context, c.label, c.active, d.code AS dept_code, doc.name AS doctor_name
                        FROM abdm_counters c JOIN departments d USING (dept_id)
                        LEFT JOIN doctors doc ON doc.doctor_id = c.doctor_id
                        WHERE c.hospital_id = $1 ORDER BY c.active DESC, c.context""",
    # Scan & Share today: what each patient got, or why not, and whether their app was answered.
    "abdm_shares": """SELECT s.status, s.reason, s.token_number, s.repeat_of IS NOT NULL AS repeat, s.context,
                             p.name AS patient_name, s.sent_at IS NOT NULL AS answered,
                             s.gave_up_at IS NOT NULL AS gave_up, s.attempts, s.last_error,
                             to_char(s.received_at AT TIME ZONE h.timezone, 'HH24:MI') AS received_local
                      FROM abdm_shares s JOIN hospitals h USING (hospital_id)
                      LEFT JOIN patients p ON p.patient_id = s.patient_id
                      WHERE s.hospital_id = $1 AND s.share_day = hospital_today($1)
                      ORDER BY s.received_at DESC LIMIT 50""",
    "keys": """SELECT key_id, key_prefix, role, label, revoked_at FROM api_keys
               WHERE hospital_id = $1 ORDER BY created_at DESC""",
    # Registered message texts, each with what would stop it now (docs/operations.md).
    "messages": """SELECT r.event_type, r.language, r.channel, r.body, r.dlt_template_id, r.wa_template_name,
                          message_registration_problems(r.channel, r.body,
                              (SELECT value FROM app_settings WHERE key = 'public_url')) AS problems
                   FROM message_registrations r WHERE r.hospital_id = $1
                   ORDER BY r.event_type, r.language, r.channel""",
}


async def admin_list(request: Request) -> Response:
    """htmx fragment: one of the admin page's lists."""
    staff = await staff_member(request, "admin")
    if isinstance(staff, Response):
        return staff
    which = request.path_params["which"]
    if which not in _ADMIN_LISTS:
        return Response(status_code=404)
    pool = request.app.state.pool
    rows = await pool.fetch(_ADMIN_LISTS[which], staff.hospital_id)
    plans = {}
    if which == "leave":   # pending leave: who approving would move, and to whom
        plans = {row["exception_id"]: await pool.fetch(_LEAVE_PLAN, row["exception_id"], staff.hospital_id)
                 for row in rows if row["pending"]}
    return render(request, "_admin_lists.html", {"which": which, "rows": rows, "plans": plans},
                  principal=staff)


_LEAVE_PLAN = """SELECT p.token_number, p.outcome, p.to_doctor_name, to_char(p.visit_date, 'Dy DD Mon') AS day,
                        to_char(p.to_time AT TIME ZONE h.timezone, 'Dy DD Mon HH24:MI') AS to_local
                 FROM preview_schedule_exception($1) p, hospitals h WHERE h.hospital_id = $2"""



async def message_preview(request: Request) -> Response:
    """htmx fragment of the admin page: each message as each provider would receive it."""
    from app.notify.preview import PreviewError, preview_messages

    staff = await staff_member(request, "admin")
    if isinstance(staff, Response):
        return staff
    event, language = request.query_params.get("event", ""), request.query_params.get("language", "")
    context: dict[str, object] = {"results": [], "problem": None}
    try:
        context["results"] = await preview_messages(request.app.state.pool, request.app.state.settings,
                                                    staff.hospital_id, event, language)
    except PreviewError as exc:
        context["problem"] = str(exc)
    return render(request, "_message_preview.html", context, principal=staff)
