"""The ETA model (docs/eta.md): learned pace, late starts, breaks, no-shows, the range, the record
of what patients were told, and the accuracy report, all on a fake clock."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from typing import Any

import asyncpg
import pytest

from app.eta_report import eta_report
from tests.db.helpers import issue_on, local_time, set_clock
from tests.support import factory

pytestmark = pytest.mark.calendar

QUEUE = "SELECT * FROM doctor_queue($1, hospital_today($2)) WHERE queue_position > 0 ORDER BY queue_position"


async def queue(conn: asyncpg.Connection, hospital: factory.Hospital,
                doctor: factory.Doctor | None = None) -> list[asyncpg.Record]:
    return await conn.fetch(QUEUE, (doctor or hospital.doctor).doctor_id, hospital.hospital_id)


async def see_patients(conn: asyncpg.Connection, doctor: factory.Doctor, start: dt.datetime, n: int,
                       minutes: float, no_show: bool = False) -> dt.datetime:
    """The doctor calls and sees (or marks absent) n patients, one every `minutes`; returns the clock."""
    at = start
    for _ in range(n):
        await set_clock(conn, at)
        token = await conn.fetchrow("SELECT * FROM call_next_token($1, NULL)", doctor.doctor_id)
        at += dt.timedelta(minutes=minutes)
        await set_clock(conn, at)
        if no_show:
            await conn.execute("SELECT 1 FROM set_token_status($1, 'NO_SHOW', NULL)", token["token_id"])
        else:
            await conn.execute("SELECT 1 FROM set_token_status($1, 'IN_CONSULTATION', NULL)", token["token_id"])
            await conn.execute("SELECT 1 FROM set_token_status($1, 'COMPLETED', NULL)", token["token_id"])
    await set_clock(conn, at)
    return at


async def hospital_with_queue(pool: asyncpg.Pool, conn: asyncpg.Connection, waiting: int,
                              doctors: int = 1, **kwargs: Any) -> tuple[factory.Hospital, dt.datetime]:
    hospital = await factory.make_hospital(pool, doctors=doctors, avg_minutes=10, buffer_minutes=5, **kwargs)
    start = await local_time(conn, hospital, "09:00")
    await set_clock(conn, start - dt.timedelta(minutes=30))
    for doctor in hospital.doctors:
        for _ in range(waiting):
            await issue_on(conn, pool, hospital, doctor=doctor)
    return hospital, start


async def test_a_fast_doctor_gets_shorter_etas_within_ten_patients(pool: asyncpg.Pool,
                                                                   clock_conn: asyncpg.Connection) -> None:
    hospital, start = await hospital_with_queue(pool, clock_conn, waiting=25)
    await set_clock(clock_conn, start)
    before = await queue(clock_conn, hospital)
    # Without history the configured 10 + 5 minutes is read as an upper bound (half of it as the
    # pace, less expected no-shows), and the cautious end still covers the configured figure.
    assert before[9]["eta_minutes"] >= 9 * 5 and before[9]["eta_high_minutes"] >= 9 * 15
    now = await see_patients(clock_conn, hospital.doctor, start, 10, minutes=3)
    after = await queue(clock_conn, hospital)
    # Ten patients ahead at ~3 minutes each: about half an hour, not the configured 2.5 hours.
    assert 20 <= after[9]["eta_minutes"] <= 50, after[9]["eta_minutes"]
    pace = await clock_conn.fetchrow("SELECT * FROM doctor_pace WHERE doctor_id = $1", hospital.doctor.doctor_id)
    assert 2.5 <= pace["attended_mins"] <= 5 and pace["calls_today"] == 10
    assert now > start


async def test_no_shows_shorten_the_time_per_patient(pool: asyncpg.Pool, clock_conn: asyncpg.Connection) -> None:
    hospital, start = await hospital_with_queue(pool, clock_conn, waiting=20, doctors=2)
    seen, absent = hospital.doctors
    await see_patients(clock_conn, seen, start, 6, minutes=6)
    await see_patients(clock_conn, absent, start, 6, minutes=6, no_show=False)
    # The second doctor's next six called patients never come (marked absent after 2 minutes).
    await see_patients(clock_conn, absent, start + dt.timedelta(minutes=36), 6, minutes=2, no_show=True)
    await set_clock(clock_conn, start + dt.timedelta(minutes=80))
    regular, with_no_shows = await queue(clock_conn, hospital, seen), await queue(clock_conn, hospital, absent)
    share = await clock_conn.fetchval("SELECT noshow_share FROM doctor_pace WHERE doctor_id = $1", absent.doctor_id)
    assert share > 0.2
    assert with_no_shows[4]["eta_minutes"] < regular[4]["eta_minutes"]


async def test_a_doctor_not_started_is_expected_at_the_shift_start_plus_usual_lateness(
        pool: asyncpg.Pool, clock_conn: asyncpg.Connection) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    await pool.execute("""UPDATE cabin_doctors SET shift_start_time = '10:00', shift_end_time = '16:00',
                          status = 'SCHEDULED' WHERE doctor_id = $1""", hospital.doctor.doctor_id)
    await set_clock(clock_conn, await local_time(clock_conn, hospital, "09:20"))
    for _ in range(3):
        await issue_on(clock_conn, pool, hospital)
    first = (await queue(clock_conn, hospital))[0]
    # 40 minutes to the shift start, plus the usual lateness of a doctor without history.
    assert first["eta_minutes"] >= 40
    late = await clock_conn.fetchval("SELECT (doctor_pace_now($1)).late_mins", hospital.doctor.doctor_id)
    assert first["eta_high_minutes"] >= 40 + late
    # Overdue at 10:30 with nobody called: expected in a few minutes, never "free now".
    await set_clock(clock_conn, await local_time(clock_conn, hospital, "10:30"))
    overdue = (await queue(clock_conn, hospital))[0]
    assert overdue["eta_minutes"] >= 1 and overdue["eta_high_minutes"] >= 3


async def test_an_overdue_doctor_who_is_sometimes_very_late_is_expected_from_their_own_late_days(
        pool: asyncpg.Pool, clock_conn: asyncpg.Connection) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    doctor_id = hospital.doctor.doctor_id
    await pool.execute("""UPDATE cabin_doctors SET shift_start_time = '10:00', shift_end_time = '16:00',
                          status = 'SCHEDULED' WHERE doctor_id = $1""", doctor_id)
    # On time most days, 30-40 minutes late on some: no normal curve fits that.
    await pool.execute("INSERT INTO doctor_pace SELECT (doctor_pace_prior($1)).*", doctor_id)
    await pool.execute("""UPDATE doctor_pace SET late_recent = '{0, 1, -2, 30, 0, 40, 2, 35}',
                          late_mins = 13, late_var = 250, evidence = 20, source = 'doctor'
                          WHERE doctor_id = $1""", doctor_id)
    await set_clock(clock_conn, await local_time(clock_conn, hospital, "09:40"))
    await issue_on(clock_conn, pool, hospital)
    await set_clock(clock_conn, await local_time(clock_conn, hospital, "10:10"))
    first = (await queue(clock_conn, hospital))[0]
    # Ten minutes overdue: this doctor's late days lasted 30, 40 and 35 minutes, so about 25 more.
    assert 20 <= first["eta_minutes"] <= 30, first["eta_minutes"]


async def test_seniors_arriving_before_the_doctor_starts_will_go_ahead(pool: asyncpg.Pool,
                                                                       clock_conn: asyncpg.Connection) -> None:
    hospital = await factory.make_hospital(pool, doctors=1)
    doctor_id = hospital.doctor.doctor_id
    await pool.execute("""UPDATE cabin_doctors SET shift_start_time = '10:00', shift_end_time = '16:00',
                          status = 'SCHEDULED' WHERE doctor_id = $1""", doctor_id)
    basis = "SELECT * FROM doctor_eta_basis($1, hospital_today($2))"
    await set_clock(clock_conn, await local_time(clock_conn, hospital, "09:10"))
    for _ in range(5):
        await issue_on(clock_conn, pool, hospital)
    assert (await clock_conn.fetchrow(basis, doctor_id, hospital.hospital_id))["early_jumps_2"] == 0
    plain = (await queue(clock_conn, hospital))[-1]["eta_minutes"]
    for _ in range(3):
        await issue_on(clock_conn, pool, hospital, priority=2)
    now = await clock_conn.fetchrow(basis, doctor_id, hospital.hospital_id)
    # Three seniors in the last half hour, about an hour before the doctor is expected: about
    # six more will come and go ahead of the patients already waiting.
    assert now["early_jumps_2"] == pytest.approx(3 / 30 * now["free_mins"])
    assert now["early_jumps_3"] == 0
    last = (await queue(clock_conn, hospital))[-1]
    assert last["priority"] == 1 and last["eta_minutes"] > plain + 3 * now["call_mins"]


async def test_a_new_doctor_starts_from_the_pace_other_doctors_of_the_hospital_keep(
        pool: asyncpg.Pool, clock_conn: asyncpg.Connection) -> None:
    hospital, start = await hospital_with_queue(pool, clock_conn, waiting=12, doctors=2)
    seasoned, new = hospital.doctors
    # The new doctor is in another department, configured 20 + 10 minutes.
    other_dept = await pool.fetchval(
        """INSERT INTO departments (hospital_id, name, code, avg_consultation_time, buffer_time, max_tokens_per_day)
           VALUES ($1, 'Orthopaedics', 'ORTH', 20, 10, 500) RETURNING dept_id""", hospital.hospital_id)
    await pool.execute("UPDATE doctors SET primary_dept_id = $1 WHERE doctor_id = $2", other_dept, new.doctor_id)
    assert (await clock_conn.fetchrow("SELECT * FROM doctor_pace_prior($1)", new.doctor_id))["source"] == "configured"
    await see_patients(clock_conn, seasoned, start, 8, minutes=3)
    prior = await clock_conn.fetchrow("SELECT * FROM doctor_pace_prior($1)", new.doctor_id)
    seasoned_pace = await clock_conn.fetchval("SELECT attended_mins FROM doctor_pace WHERE doctor_id = $1",
                                              seasoned.doctor_id)
    # The seasoned doctor works at about a fifth of their configured 15 minutes: the new doctor
    # is expected at the same share of their own configured 30.
    assert prior["source"] == "hospital"
    assert prior["attended_mins"] == pytest.approx(seasoned_pace / 15 * 30)


async def test_a_paused_doctor_includes_the_rest_of_the_break(pool: asyncpg.Pool,
                                                              clock_conn: asyncpg.Connection) -> None:
    hospital, start = await hospital_with_queue(pool, clock_conn, waiting=5)
    now = await see_patients(clock_conn, hospital.doctor, start, 2, minutes=5)
    working = (await queue(clock_conn, hospital))[0]["eta_minutes"]
    await clock_conn.execute("SELECT 1 FROM set_doctor_paused($1, true)", hospital.doctor.doctor_id)
    paused = (await queue(clock_conn, hospital))[0]["eta_minutes"]
    assert paused >= working + 10  # a break of a doctor without history: about 15 minutes
    await set_clock(clock_conn, now + dt.timedelta(minutes=12))
    assert (await queue(clock_conn, hospital))[0]["eta_minutes"] < paused
    await clock_conn.execute("SELECT 1 FROM set_doctor_paused($1, false)", hospital.doctor.doctor_id)
    learned = await clock_conn.fetchrow("SELECT break_mins, break_since_call FROM doctor_pace WHERE doctor_id = $1",
                                        hospital.doctor.doctor_id)
    assert 12 <= learned["break_mins"] <= 15 and learned["break_since_call"] == pytest.approx(12)


async def test_the_range_holds_the_median_and_widens_with_position(pool: asyncpg.Pool,
                                                                   clock_conn: asyncpg.Connection) -> None:
    hospital, start = await hospital_with_queue(pool, clock_conn, waiting=20)
    await see_patients(clock_conn, hospital.doctor, start, 5, minutes=6)
    rows = await queue(clock_conn, hospital)
    widths = [r["eta_high_minutes"] - r["eta_low_minutes"] for r in rows]
    assert all(r["eta_low_minutes"] <= r["eta_minutes"] <= r["eta_high_minutes"] for r in rows)
    assert widths == sorted(widths) and widths[-1] > widths[1]
    assert not any(r["eta_beyond_shift"] for r in rows)  # the test shift runs to 23:59


async def test_past_the_shift_end_the_answer_is_likely_not_today(pool: asyncpg.Pool,
                                                                 clock_conn: asyncpg.Connection) -> None:
    hospital, start = await hospital_with_queue(pool, clock_conn, waiting=30)
    await pool.execute("UPDATE cabin_doctors SET shift_start_time = '08:00', shift_end_time = '11:00' "
                       "WHERE doctor_id = $1", hospital.doctor.doctor_id)
    await see_patients(clock_conn, hospital.doctor, start, 3, minutes=10)
    rows = await queue(clock_conn, hospital)
    assert not rows[0]["eta_beyond_shift"] and rows[-1]["eta_beyond_shift"]


async def test_the_pace_survives_a_restart(pool: asyncpg.Pool, clock_conn: asyncpg.Connection,
                                           database: str) -> None:
    hospital, start = await hospital_with_queue(pool, clock_conn, waiting=12)
    now = await see_patients(clock_conn, hospital.doctor, start, 6, minutes=4)
    before = [r["eta_minutes"] for r in await queue(clock_conn, hospital)]
    fresh = await asyncpg.connect(database)  # a new engine leader's session: nothing held in memory
    try:
        await set_clock(fresh, now)
        assert [r["eta_minutes"] for r in await queue(fresh, hospital)] == before
    finally:
        await fresh.close()


async def test_what_patients_were_told_is_recorded_and_reported(pool: asyncpg.Pool,
                                                                clock_conn: asyncpg.Connection) -> None:
    hospital, start = await hospital_with_queue(pool, clock_conn, waiting=3)
    await set_clock(clock_conn, start)
    await clock_conn.execute("SELECT write_back_queue($1, hospital_today($2))", hospital.doctor.doctor_id,
                             hospital.hospital_id)
    told = await clock_conn.fetch("SELECT * FROM eta_told WHERE doctor_id = $1 ORDER BY queue_position",
                                  hospital.doctor.doctor_id)
    assert [t["queue_position"] for t in told] == [1, 2, 3]
    # Rewritten within the minute: nothing new is recorded (bounded size).
    await clock_conn.execute("SELECT write_back_queue($1, hospital_today($2))", hospital.doctor.doctor_id,
                             hospital.hospital_id)
    assert await clock_conn.fetchval("SELECT count(*) FROM eta_told WHERE doctor_id = $1",
                                     hospital.doctor.doctor_id) == 3
    # The three are called 0, 10 and 20 minutes after they were told.
    for minutes in (0, 10, 20):
        await set_clock(clock_conn, start + dt.timedelta(minutes=minutes))
        token = await clock_conn.fetchrow("SELECT * FROM call_next_token($1, NULL)", hospital.doctor.doctor_id)
        await clock_conn.execute("SELECT 1 FROM set_token_status($1, 'NO_SHOW', NULL)", token["token_id"])
    errors = [t["eta_minutes"] - m for t, m in zip(told, (0, 10, 20), strict=True)]
    inside = [t["eta_low_minutes"] <= m <= t["eta_high_minutes"] for t, m in zip(told, (0, 10, 20), strict=True)]
    first, last, report = await eta_report(pool, hospital.code, None, None)
    overall = report["overall"]["all"]
    assert overall["estimates"] == 3
    assert overall["mae"] == pytest.approx(sum(abs(e) for e in errors) / 3, abs=0.01)
    assert overall["bias"] == pytest.approx(sum(errors) / 3, abs=0.01)
    assert overall["in_range"] == pytest.approx(sum(inside) / 3)
    assert set(report["position"]) == {"1-4"} and first <= told[0]["visit_date"] <= last


@pytest.mark.parametrize("args, message", [
    (["--from", "2027-13-01"], "is not a date"),
    (["--hospital", "NO-SUCH"], "no hospital with code"),
    (["--from", "2027-03-10", "--to", "2027-03-01"], "is after"),
])
def test_bad_eta_report_arguments_get_a_clear_error(database: str, args: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "app", "eta-report", *args], capture_output=True, text=True,
                            env={**os.environ, "DATABASE_URL": database}, timeout=60)
    assert result.returncode != 0
    assert message in result.stderr


async def test_delayed_goes_out_once_when_the_median_passes_the_quote_and_stays(
        pool: asyncpg.Pool, clock_conn: asyncpg.Connection) -> None:
    hospital, start = await hospital_with_queue(pool, clock_conn, waiting=4)
    doctor_id = hospital.doctor.doctor_id
    write_back = "SELECT write_back_queue($1, hospital_today($2))"
    delayed = ("SELECT count(*) FROM notifications_log n JOIN tokens t USING (token_id) "
               "WHERE t.doctor_id = $1 AND n.event_type = 'DELAYED'")
    await set_clock(clock_conn, start)
    current = await clock_conn.fetchrow("SELECT * FROM call_next_token($1, NULL)", doctor_id)
    await clock_conn.execute("SELECT 1 FROM set_token_status($1, 'IN_CONSULTATION', NULL)", current["token_id"])
    await clock_conn.execute(write_back, doctor_id, hospital.hospital_id)
    last = (await queue(clock_conn, hospital))[-1]
    quoted = await clock_conn.fetchval("SELECT notified_expected_at FROM tokens WHERE token_id = $1",
                                       last["token_id"])
    assert quoted == start + dt.timedelta(minutes=last["eta_high_minutes"])   # the cautious end

    # The consultation runs on and on: the expected time slides past the quote. Still inside
    # the quote's margin: nothing.
    await set_clock(clock_conn, start + dt.timedelta(minutes=20))
    await clock_conn.execute(write_back, doctor_id, hospital.hospital_id)
    assert await clock_conn.fetchval(delayed, doctor_id) == 0
    # Well past it: pending first, not sent (a passing jitter would send nothing) ...
    late = quoted + dt.timedelta(minutes=40)
    await set_clock(clock_conn, late)
    await clock_conn.execute(write_back, doctor_id, hospital.hospital_id)
    assert await clock_conn.fetchval(delayed, doctor_id) == 0
    pending = await clock_conn.fetchval("SELECT delay_pending_since FROM tokens WHERE token_id = $1",
                                        last["token_id"])
    assert pending == late
    # ... and sent once it has stayed that late for five minutes, then not again.
    for minutes in (6, 7):
        await set_clock(clock_conn, late + dt.timedelta(minutes=minutes))
        await clock_conn.execute(write_back, doctor_id, hospital.hospital_id)
    sent = await clock_conn.fetchval(delayed, doctor_id)
    assert sent >= 1
    assert await clock_conn.fetchval(
        "SELECT count(DISTINCT token_id) FROM notifications_log WHERE event_type = 'DELAYED' AND token_id = $1",
        last["token_id"]) == 1
    await set_clock(clock_conn, late + dt.timedelta(minutes=9))
    await clock_conn.execute(write_back, doctor_id, hospital.hospital_id)
    assert await clock_conn.fetchval(delayed, doctor_id) == sent
    message = await clock_conn.fetchval(
        "SELECT message FROM notifications_log WHERE event_type = 'DELAYED' AND token_id = $1 AND language = 'en' "
        "LIMIT 1", last["token_id"])
    # A clock time and a range, the clock time being the range's cautious end.
    assert "is delayed; now expected by " in message and " min)" in message, message


async def test_the_lateness_residual_holds_far_from_the_mean(pool: asyncpg.Pool) -> None:
    # Hours before a shift the lateness is tens of standard deviations away: exp() of its square
    # would underflow, which PostgreSQL raises, and the engine could not recompute that doctor.
    for z, expected in ((-40.0, 40.0), (-6.5, 6.5), (0.0, 0.7979), (5.0, 0.1903)):
        value = await pool.fetchval("SELECT normal_mean_residual($1)", z)
        assert value == pytest.approx(expected, abs=0.01), (z, value)
