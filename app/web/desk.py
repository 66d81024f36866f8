"""The reception desk's list of today's tokens (issue 13): an htmx fragment the page reloads
whenever the hospital's operations topic moves, and after each of its own actions.

Filters: status, department, and a search over token number, patient name and any part (4+
digits) of the phone number. The actions themselves are the JSON API's (check-in with an
override reason, requeue, no-show, cancel, transfer), so the rules and the audit are the same.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.phones import phone_digits
from app.web.desk_filters import STATUSES
from app.web.pages import staff_member, uuid_or_none
from app.web.templating import render

LIST_LIMIT = 200

_TOKENS_SQL = """
SELECT t.token_id, t.token_number, t.status, t.booking_type, t.priority, t.dept_id, t.doctor_id,
       t.queue_position, t.estimated_wait_time, t.call_count,
       to_char(t.scheduled_time AT TIME ZONE h.timezone, 'HH24:MI') AS scheduled_local,
       to_char(t.called_time AT TIME ZONE h.timezone, 'HH24:MI') AS called_local,
       CASE WHEN t.status IN ('BOOKED', 'CHECKED_IN') THEN
           to_char(token_running_late_until(t.token_id) AT TIME ZONE h.timezone, 'HH24:MI') END AS late_until_local,
       p.name AS patient_name, p.phone, d.name AS doctor_name, dep.code AS dept_code,
       EXISTS (SELECT 1 FROM abdm_shares s WHERE s.token_id = t.token_id) AS via_abha
FROM tokens t
JOIN hospitals h ON h.hospital_id = t.hospital_id
JOIN patients p ON p.patient_id = t.patient_id
JOIN doctors d ON d.doctor_id = t.doctor_id
JOIN departments dep ON dep.dept_id = t.dept_id
WHERE t.hospital_id = $1 AND t.visit_date = hospital_today($1)
  AND ($2 = '' OR t.status = $2)
  AND ($3::uuid IS NULL OR t.dept_id = $3)
  AND ($4 = ''
       OR t.token_number ILIKE '%' || $4 || '%'
       OR p.name ILIKE '%' || $4 || '%'
       OR phone_contains(p.phone, $5))
ORDER BY array_position(ARRAY['WAITING', 'NO_SHOW', 'BOOKED', 'CHECKED_IN', 'IN_CONSULTATION',
                              'COMPLETED', 'RESCHEDULED', 'CANCELLED']::text[], t.status::text),
         t.queue_position NULLS LAST, t.token_number
LIMIT $6"""

_DOCTORS_SQL = """
SELECT d.doctor_id, d.name, d.primary_dept_id AS dept_id FROM doctors d
WHERE d.hospital_id = $1 AND d.status = 'ACTIVE' ORDER BY d.name"""


async def desk_tokens(request: Request) -> Response:
    staff = await staff_member(request, "receptionist", "admin")
    if isinstance(staff, Response):
        return staff
    params = request.query_params
    status = params.get("status", "")
    status = status if status in STATUSES else ""
    search = params.get("q", "").strip()[:50].replace("\x00", "").replace("%", "").replace("_", "")
    digits = "" if any(ch.isalpha() for ch in search) else phone_digits(search)
    pool = request.app.state.pool
    tokens = await pool.fetch(_TOKENS_SQL, staff.hospital_id, status, uuid_or_none(params.get("dept", "")),
                              search, digits, LIST_LIMIT)
    doctors = await pool.fetch(_DOCTORS_SQL, staff.hospital_id)
    return render(request, "_desk_tokens.html",
                  {"tokens": tokens, "doctors": doctors, "limit": LIST_LIMIT, "search": search},
                  principal=staff)
