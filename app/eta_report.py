"""`python -m app eta-report`: how accurate the ETAs shown to patients were (docs/eta.md)."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import asyncpg

POSITION_BUCKETS = ((1, 4), (5, 9), (10, 19), (20, 29), (30, None))
ROWS = """
    SELECT dep.code AS dept, d.name AS doctor, a.queue_position, a.error_minutes, a.within_range,
           a.before_range_end
    FROM eta_accuracy_rows($1, $2, $3) a
    JOIN departments dep ON dep.dept_id = a.dept_id
    JOIN doctors d ON d.doctor_id = a.doctor_id
"""


def accuracy(rows: Iterable[Any]) -> dict[str, float]:
    """MAE, median and 90th-percentile absolute error, bias (told minus real: positive means
    called earlier than told), and how often the call fell inside the range / before its end."""
    rows = list(rows)
    if not rows:
        return {"estimates": 0}
    errors = [r["error_minutes"] for r in rows]
    absolute = sorted(abs(e) for e in errors)
    return {
        "estimates": len(rows),
        "mae": statistics.fmean(absolute),
        "median": statistics.median(absolute),
        "p90": absolute[round(0.9 * (len(absolute) - 1))],
        "bias": statistics.fmean(errors),
        "in_range": sum(bool(r["within_range"]) for r in rows) / len(rows),
        "before_end": sum(bool(r["before_range_end"]) for r in rows) / len(rows),
    }


def bucket_of(position: int) -> str:
    for low, high in POSITION_BUCKETS:
        if position >= low and (high is None or position <= high):
            return f"{low}-{high}" if high else f"{low}+"
    return "?"


async def eta_report(pool: asyncpg.Pool, hospital_code: str | None, first: dt.date | None,
                     last: dt.date | None) -> tuple[dt.date, dt.date, dict[str, dict[str, dict[str, float]]]]:
    """The figures overall and by department, doctor and queue position, for [first, last]."""
    hospital_id = None
    if hospital_code:
        hospital_id = await pool.fetchval("SELECT hospital_id FROM hospitals WHERE code = $1", hospital_code)
        if hospital_id is None:
            raise ValueError(f"no hospital with code {hospital_code!r}")
    today: dt.date = await pool.fetchval(
        "SELECT (opd_now() AT TIME ZONE COALESCE((SELECT timezone FROM hospitals WHERE hospital_id = $1), "
        "'Asia/Kolkata'))::date", hospital_id)
    last = last or today
    first = first or last - dt.timedelta(days=6)
    if first > last:
        raise ValueError(f"--from {first} is after --to {last}")
    rows = await pool.fetch(ROWS, hospital_id, first, last)
    groups: dict[str, dict[str, list[Any]]] = {"overall": defaultdict(list), "department": defaultdict(list),
                                               "doctor": defaultdict(list), "position": defaultdict(list)}
    for row in rows:
        groups["overall"]["all"].append(row)
        groups["department"][row["dept"]].append(row)
        groups["doctor"][row["doctor"]].append(row)
        groups["position"][bucket_of(row["queue_position"])].append(row)
    return first, last, {name: {key: accuracy(rs) for key, rs in sorted(by.items())} for name, by in groups.items()}


def format_report(first: dt.date, last: dt.date, report: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = [f"ETA accuracy {first} to {last} (minutes; bias > 0: called earlier than told)"]
    header = (f"  {'':<24} {'estimates':>9} {'MAE':>6} {'median':>6} {'p90':>6} {'bias':>6} "
              f"{'in range':>8} {'before end':>10}")
    for name, by in report.items():
        lines += ["", f"by {name}" if name != "overall" else "overall", header]
        for key, f in by.items():
            if not f.get("estimates"):
                lines.append(f"  {key:<24} {0:>9}")
                continue
            lines.append(f"  {key[:24]:<24} {int(f['estimates']):>9} {f['mae']:>6.1f} {f['median']:>6.1f} "
                         f"{f['p90']:>6.1f} {f['bias']:>+6.1f} {100 * f['in_range']:>7.0f}% "
                         f"{100 * f['before_end']:>9.0f}%")
    if not report["overall"]:
        lines.append("  no called patient with a recorded estimate in this period")
    return "\n".join(lines)
