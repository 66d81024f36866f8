"""The operations dashboard page: live loads, doctors and alerts, and recent metrics as charts."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from app.web.pages import staff_member
from app.web.templating import render


async def operations_page(request: Request) -> Response:
    """The operations dashboard: live loads, doctors and alerts; metrics charts of recent days."""
    staff = await staff_member(request, "admin", "receptionist")
    if isinstance(staff, Response):
        return staff
    pool = request.app.state.pool
    hospital = await pool.fetchrow("SELECT hospital_id, code, name, timezone, hospital_today(hospital_id) AS today "
                                   "FROM hospitals WHERE hospital_id = $1", staff.hospital_id)
    metrics = await pool.fetch(
        """SELECT m.metric_date, d.name AS doctor_name, dep.code AS dept_code, m.tokens_completed,
                  m.tokens_no_show, m.avg_wait_time_mins, m.utilization_rate
           FROM doctor_performance_metrics m JOIN doctors d USING (doctor_id)
           JOIN departments dep ON dep.dept_id = d.primary_dept_id
           WHERE d.hospital_id = $1 AND m.metric_date > $2::date - 14
           ORDER BY m.metric_date, dep.code, d.name""", staff.hospital_id, hospital["today"])
    # How accurate the ETAs shown to patients were, per department, over the last 7 days
    # (docs/eta.md; `python -m app eta-report` has the full breakdown).
    accuracy = await pool.fetch("SELECT * FROM eta_accuracy_by_department($1, $2::date - 6, $2::date)",
                                staff.hospital_id, hospital["today"])
    # The notice form: departments to choose from, and "until" two hours from now, hospital time.
    departments = await pool.fetch("SELECT dept_id, code, name FROM departments WHERE hospital_id = $1 "
                                   "AND status = 'ACTIVE' ORDER BY code", staff.hospital_id)
    notice_until = await pool.fetchval(
        "SELECT to_char((opd_now() + interval '2 hours') AT TIME ZONE timezone, 'YYYY-MM-DD\"T\"HH24:MI') "
        "FROM hospitals WHERE hospital_id = $1", staff.hospital_id)
    return render(request, "operations.html", {"hospital": hospital, "topic": f"operations:{staff.hospital_id}",
                                               "charts": charts(metrics, hospital["today"]),
                                               "accuracy": accuracy, "departments": departments,
                                               "notice_until": notice_until}, principal=staff)


def charts(metrics: list[Any], today: Any) -> dict[str, Any]:
    """Bar data for the dashboard's two charts, scaled to 0..1 for the SVG template."""
    latest = [m for m in metrics if m["metric_date"] == today] or metrics[-14:]
    by_day: dict[Any, dict[str, int]] = {}
    for m in metrics:
        by_day.setdefault(m["metric_date"], {}).setdefault(m["dept_code"], 0)
        by_day[m["metric_date"]][m["dept_code"]] += m["tokens_completed"]
    departments = sorted({m["dept_code"] for m in metrics})
    peak = max((n for day in by_day.values() for n in day.values()), default=1) or 1
    return {
        "doctors": [{"label": m["doctor_name"], "value": float(m["utilization_rate"] or 0),
                     "wait": m["avg_wait_time_mins"], "completed": m["tokens_completed"]} for m in latest],
        "departments": departments,
        "days": [{"day": day.strftime("%d %b"),
                  "values": [{"dept": code, "n": counts.get(code, 0), "scaled": counts.get(code, 0) / peak}
                             for code in departments]} for day, counts in sorted(by_day.items())],
    }
